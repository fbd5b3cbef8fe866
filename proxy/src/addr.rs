//! Which addresses the proxy refuses to connect to, whatever name led there.
//!
//! A name on the allow-list can still resolve somewhere it must not: an attacker who controls a
//! DNS zone (or a compromised upstream's zone) points it at `169.254.169.254` and reads the
//! node's cloud credentials. So every resolved address is classified, and anything that is not
//! ordinary public unicast is refused unless a rule's `allowAddresses` or the operator's
//! `--allow-cidr` names its range.
//!
//! IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
//! `::a.b.c.d`, NAT64 `64:ff9b::/96`) are judged by the address they carry, so
//! `::ffff:169.254.169.254` and `64:ff9b::a9fe:a9fe` are the metadata address. 6to4
//! (`2002::/16`) and Teredo (`2001::/32`) are refused outright: they are tunnels to wherever the
//! embedded address points, and nothing legitimate needs them from a sandbox.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is not ordinary public unicast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    /// A short name of the range (`loopback`, `link-local`, …).
    pub kind: &'static str,
    /// For IPv6 forms carrying an IPv4 address, that address.
    pub embeds: Option<Ipv4Addr>,
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind)?;
        if let Some(v4) = self.embeds {
            write!(f, " carrying {v4}")?;
            if let Some(inner) = classify_v4(v4) {
                write!(f, " ({inner})")?;
            }
        }
        Ok(())
    }
}

/// The metadata services of the clouds semble runs on.
const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

fn v4_in(a: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(a) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn v6_in(a: Ipv6Addr, net: [u16; 8], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    (u128::from(a) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

/// Classify an IPv4 address; `None` is ordinary public unicast.
pub fn classify_v4(a: Ipv4Addr) -> Option<&'static str> {
    const TABLE: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "\"this network\" (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
        ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
        ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
        ([192, 0, 0, 0], 24, "IETF protocol assignments (192.0.0.0/24)"),
        ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
        ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
        ([168, 63, 129, 16], 32, "the Azure platform endpoint (168.63.129.16)"),
        ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
        ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
        ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
    ];
    if a == METADATA_V4 {
        return Some("the cloud metadata address");
    }
    TABLE.iter().find(|(net, len, _)| v4_in(a, *net, *len)).map(|(_, _, name)| *name)
}

/// Classify an address; `None` is ordinary public unicast.
pub fn classify(addr: IpAddr) -> Option<Reserved> {
    let plain = |kind| Some(Reserved { kind, embeds: None });
    match addr {
        IpAddr::V4(a) => classify_v4(a).map(|kind| Reserved { kind, embeds: None }),
        IpAddr::V6(a) => {
            let seg = a.segments();
            let o = a.octets();
            let low_v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
            if a == METADATA_V6 {
                return plain("the cloud metadata address (fd00:ec2::254)");
            }
            if a.is_unspecified() {
                return plain("unspecified (::)");
            }
            if a.is_loopback() {
                return plain("loopback (::1)");
            }
            if let Some(v4) = a.to_ipv4_mapped() {
                return Some(Reserved { kind: "IPv4-mapped", embeds: Some(v4) }).filter(|_| classify_v4(v4).is_some());
            }
            if seg[..6] == [0, 0, 0, 0, 0, 0] {
                return Some(Reserved { kind: "IPv4-compatible (deprecated)", embeds: Some(low_v4) });
            }
            if v6_in(a, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
                return Some(Reserved { kind: "NAT64", embeds: Some(low_v4) })
                    .filter(|_| classify_v4(low_v4).is_some());
            }
            if v6_in(a, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
                return Some(Reserved { kind: "6to4", embeds: Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])) });
            }
            const TABLE: &[([u16; 8], u32, &str)] = &[
                ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local-use NAT64 (64:ff9b:1::/48)"),
                ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (100::/64)"),
                ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "Teredo (2001::/32)"),
                ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "documentation (2001:db8::/32)"),
                ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "IETF protocol assignments (2001::/23)"),
                ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation (3fff::/20)"),
                ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "segment routing (5f00::/16)"),
                ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique local (fc00::/7)"),
                ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (fe80::/10)"),
                ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local (fec0::/10)"),
                ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
            ];
            if let Some((_, _, name)) = TABLE.iter().find(|(net, len, _)| v6_in(a, *net, *len)) {
                return plain(name);
            }
            // Only global unicast (2000::/3) is ordinary; the rest of the space is unassigned.
            if !v6_in(a, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
                return plain("unassigned IPv6 space");
            }
            None
        }
    }
}

/// Whether `addr` is covered by one of `allowed`. An IPv6 form carrying an IPv4 address is
/// covered when the carried address is (so `--allow-cidr 127.0.0.1/32` admits `::ffff:127.0.0.1`
/// as well).
pub fn covered(addr: IpAddr, allowed: &[IpNet]) -> bool {
    if allowed.iter().any(|n| n.contains(&addr)) {
        return true;
    }
    if let IpAddr::V6(a) = addr {
        if let Some(v4) = a.to_ipv4_mapped() {
            return allowed.iter().any(|n| n.contains(&IpAddr::V4(v4)));
        }
    }
    false
}

/// The reason `addr` may not be used, or `None` when it may: public unicast, or reserved but
/// covered by `rule_allowed` or `operator_allowed`.
pub fn refusal(addr: IpAddr, rule_allowed: &[IpNet], operator_allowed: &[IpNet]) -> Option<Reserved> {
    let reserved = classify(addr)?;
    if covered(addr, rule_allowed) || covered(addr, operator_allowed) {
        return None;
    }
    Some(reserved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<String> {
        classify(s.parse().unwrap()).map(|r| r.to_string())
    }

    #[test]
    fn metadata_in_every_spelling() {
        for a in [
            "169.254.169.254",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::",
            "::169.254.169.254",
        ] {
            let c = class(a).unwrap_or_default();
            assert!(c.contains("metadata") || c.contains("169.254.169.254"), "{a}: {c}");
        }
    }

    #[test]
    fn reserved_v4() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.0.170",
            "168.63.129.16",
        ] {
            assert!(class(a).is_some(), "{a}");
        }
        for a in ["8.8.8.8", "52.94.0.1", "172.32.0.1", "100.128.0.1", "168.63.129.17"] {
            assert_eq!(class(a), None, "{a}");
        }
    }

    #[test]
    fn reserved_v6() {
        for a in [
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "64:ff9b:1::1",
            "::ffff:10.0.0.1",
            "100::1",
            "4000::1",
        ] {
            assert!(class(a).is_some(), "{a}");
        }
        for a in ["2600:1f18::1", "64:ff9b::808:808", "::ffff:8.8.8.8"] {
            assert_eq!(class(a), None, "{a}");
        }
    }

    #[test]
    fn allowances() {
        let lo: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        assert!(refusal("127.0.0.1".parse().unwrap(), &[], &lo).is_none());
        assert!(refusal("::ffff:127.0.0.1".parse().unwrap(), &lo, &[]).is_none());
        assert!(refusal("127.0.0.2".parse().unwrap(), &lo, &[]).is_some());
        assert!(refusal("169.254.169.254".parse().unwrap(), &lo, &lo).is_some());
        assert!(refusal("8.8.8.8".parse().unwrap(), &[], &[]).is_none());
    }
}
