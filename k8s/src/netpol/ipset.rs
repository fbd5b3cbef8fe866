//! Sets of IPv4 addresses as sorted, disjoint, inclusive intervals, and the partition of the
//! address space np-guard lists connections over.
//!
//! np-guard does not list one line per address: it splits `0.0.0.0/0` into blocks on the
//! boundaries of every ipBlock the policies name (`cidr` minus `except`, one block per range),
//! so that every address of a block is treated alike by every rule, and lists each block as
//! `first-last` ranges (`0.0.0.0-9.255.255.255`). [`disjoint`] computes the same blocks the same
//! way (models `netset.DisjointIPBlocks`: smallest blocks first, each new block split around the
//! ones already placed), so the lines agree with np-guard's.

use std::net::Ipv4Addr;

/// A set of IPv4 addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpSet(Vec<(u32, u32)>);

impl IpSet {
    /// Every IPv4 address (`0.0.0.0/0`).
    pub fn all() -> IpSet {
        IpSet(vec![(0, u32::MAX)])
    }

    /// The addresses of a CIDR (`None` for IPv6).
    pub fn from_net(net: &ipnet::IpNet) -> Option<IpSet> {
        match net {
            ipnet::IpNet::V4(n) => Some(IpSet(vec![(u32::from(n.network()), u32::from(n.broadcast()))])),
            ipnet::IpNet::V6(_) => None,
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many addresses.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|(a, b)| u64::from(*b) - u64::from(*a) + 1).sum()
    }

    /// The first address.
    pub fn first(&self) -> Option<Ipv4Addr> {
        self.0.first().map(|(a, _)| Ipv4Addr::from(*a))
    }

    fn normalise(mut v: Vec<(u32, u32)>) -> IpSet {
        v.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if u64::from(a) <= u64::from(last.1) + 1 => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        IpSet(out)
    }

    /// `self ∪ other`.
    pub fn union(&self, other: &IpSet) -> IpSet {
        IpSet::normalise(self.0.iter().chain(other.0.iter()).copied().collect())
    }

    /// `self ∩ other`.
    pub fn intersect(&self, other: &IpSet) -> IpSet {
        let mut out = Vec::new();
        for (a1, b1) in &self.0 {
            for (a2, b2) in &other.0 {
                let (lo, hi) = ((*a1).max(*a2), (*b1).min(*b2));
                if lo <= hi {
                    out.push((lo, hi));
                }
            }
        }
        IpSet::normalise(out)
    }

    /// `self \ other`.
    pub fn subtract(&self, other: &IpSet) -> IpSet {
        IpSet(subtract_ranges(self.0.clone(), &other.0, |x| x - 1, |x| x + 1))
    }

    /// One set per interval.
    pub fn split(&self) -> Vec<IpSet> {
        self.0.iter().map(|r| IpSet(vec![*r])).collect()
    }

    /// np-guard's rendering: `first-last` per interval, joined with `, `.
    pub fn ranges(&self) -> String {
        self.0
            .iter()
            .map(|(a, b)| format!("{}-{}", Ipv4Addr::from(*a), Ipv4Addr::from(*b)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The blocks of `sets` ∪ {everything}, disjoint, as np-guard computes them.
pub fn disjoint(sets: &[IpSet]) -> Vec<IpSet> {
    let mut list: Vec<IpSet> = sets.iter().filter(|s| !s.is_empty()).cloned().collect();
    list.push(IpSet::all());
    list.sort_by_key(IpSet::count);
    let mut out: Vec<IpSet> = Vec::new();
    for new in list {
        out = add_to(new, out);
    }
    if out.is_empty() {
        out.push(IpSet::all());
    }
    out
}

fn add_to(mut new: IpSet, mut list: Vec<IpSet>) -> Vec<IpSet> {
    let mut extra = Vec::new();
    for existing in list.iter_mut() {
        let common = existing.intersect(&new);
        if common.is_empty() {
            continue;
        }
        new = new.subtract(&common);
        if *existing != common {
            *existing = existing.subtract(&common);
            extra.push(common);
        }
        if new.is_empty() {
            break;
        }
    }
    list.extend(new.split());
    list.extend(extra);
    list
}

/// Inclusive ranges `cur` minus the inclusive ranges `other` (`pred`/`succ`: the value before
/// and after one, never called at the type's ends: a range is cut only strictly inside it).
pub(crate) fn subtract_ranges<T: Copy + Ord>(
    mut cur: Vec<(T, T)>,
    other: &[(T, T)],
    pred: impl Fn(T) -> T,
    succ: impl Fn(T) -> T,
) -> Vec<(T, T)> {
    for &(lo, hi) in other {
        let mut next = Vec::with_capacity(cur.len() + 1);
        for (a, b) in cur {
            if hi < a || lo > b {
                next.push((a, b));
                continue;
            }
            if lo > a {
                next.push((a, pred(lo)));
            }
            if hi < b {
                next.push((succ(hi), b));
            }
        }
        cur = next;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpSet {
        IpSet::from_net(&s.parse().unwrap()).unwrap()
    }

    #[test]
    fn a_lone_policy_block_splits_the_space_around_it() {
        let mut blocks: Vec<String> = disjoint(&[net("10.0.0.0/8")]).iter().map(IpSet::ranges).collect();
        blocks.sort();
        assert_eq!(blocks, ["0.0.0.0-9.255.255.255", "10.0.0.0-10.255.255.255", "11.0.0.0-255.255.255.255"]);
    }

    #[test]
    fn the_whole_space_is_one_block_without_policy_blocks() {
        let b = disjoint(&[]);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].ranges(), "0.0.0.0-255.255.255.255");
        assert_eq!(b[0].count(), 1 << 32);
    }

    #[test]
    fn blocks_cover_the_space_exactly_once() {
        let inputs = [net("10.0.0.0/8"), net("10.1.0.0/16"), net("172.16.0.0/12"), net("0.0.0.0/1")];
        let blocks = disjoint(&inputs);
        let total: u64 = blocks.iter().map(IpSet::count).sum();
        assert_eq!(total, 1 << 32);
        for (i, a) in blocks.iter().enumerate() {
            for b in &blocks[i + 1..] {
                assert!(a.intersect(b).is_empty(), "{} and {} overlap", a.ranges(), b.ranges());
            }
            // Every block is inside or outside each input, never across.
            for s in &inputs {
                let common = a.intersect(s);
                assert!(common.is_empty() || common == *a, "{} straddles {}", a.ranges(), s.ranges());
            }
        }
    }

    #[test]
    fn subtracting_an_inner_range_leaves_two_intervals() {
        let s = net("10.0.0.0/8").subtract(&net("10.1.0.0/16"));
        assert_eq!(s.ranges(), "10.0.0.0-10.0.255.255, 10.2.0.0-10.255.255.255");
    }
}
