//! What changes between two sets of manifests: the connections a change adds, removes or
//! changes, in np-guard's `netpol-analyzer diff` terms.
//!
//! Both connectivity lists are computed over the same address blocks (each side's space is cut
//! on the ipBlocks of both), so an address range means the same on both sides. A pair listed
//! only in the new set is `added`, only in the old set `removed`, in both with a different
//! connection `changed`; a workload that exists on one side only is named (`workload X added`).
//! What a pull request *opens* ([`DiffLine::opened`]) is every added pair, and every changed
//! pair that allows something it did not.

use std::collections::{BTreeMap, BTreeSet};

use super::connlist::{conn_string, INGRESS_CONTROLLER};
use super::{Cluster, Ports};

/// How a pair changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Connections allowed before and after, but not the same.
    Changed,
    /// Nothing was allowed before.
    Added,
    /// Nothing is allowed after.
    Removed,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Changed => "changed",
            Change::Added => "added",
            Change::Removed => "removed",
        }
    }
}

/// One changed pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    /// How it changed.
    pub change: Change,
    /// Source peer.
    pub src: String,
    /// Destination peer.
    pub dst: String,
    /// What the old manifests allow (empty: nothing).
    pub old: Ports,
    /// What the new manifests allow.
    pub new: Ports,
    /// `workload X added` / `workload X and Y removed`, when a peer exists on one side only.
    pub workloads: Option<String>,
}

impl DiffLine {
    /// Whether the change lets through something that was not allowed before.
    pub fn opened(&self) -> bool {
        !self.new.subtract(&self.old).is_empty()
    }

    /// What is allowed now that was not before.
    pub fn opened_ports(&self) -> Ports {
        self.new.subtract(&self.old)
    }

    /// np-guard's text line: `diff-type: added, source: …, destination: …, dir1:  No
    /// Connections, dir2: TCP 8080[, workloads-diff-info: …]`.
    pub fn line(&self) -> String {
        let line = format!(
            "diff-type: {}, source: {}, destination: {}, dir1:  {}, dir2: {}",
            self.change.as_str(),
            self.src,
            self.dst,
            conn_string(&self.old),
            conn_string(&self.new)
        );
        match &self.workloads {
            Some(w) => format!("{line}, workloads-diff-info: {w}"),
            None => line,
        }
    }

    /// The JSON form: `{"diff-type", "src", "dst", "old", "new", "opened", "workloads"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "diff-type": self.change,
            "src": self.src,
            "dst": self.dst,
            "old": conn_string(&self.old),
            "new": conn_string(&self.new),
        });
        if self.opened() {
            v["opened"] = serde_json::json!(conn_string(&self.opened_ports()));
        }
        if let Some(w) = &self.workloads {
            v["workloads"] = serde_json::json!(w);
        }
        v
    }
}

/// The differences between two sets of manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Every changed pair, in np-guard's order: changed, added, removed; within each, pairs
    /// from policies before pairs from the ingress controller, lines sorted.
    pub lines: Vec<DiffLine>,
}

impl Diff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The pairs the change opens.
    pub fn opened(&self) -> impl Iterator<Item = &DiffLine> {
        self.lines.iter().filter(|l| l.opened())
    }

    /// np-guard's text output: `Connectivity diff:` and one line per changed pair.
    pub fn text(&self) -> String {
        let mut out = String::from("Connectivity diff:\n");
        for l in &self.lines {
            out.push_str(&l.line());
            out.push('\n');
        }
        out
    }
}

/// Compare the connectivity of `old` and `new`.
pub fn diff(old: &Cluster, new: &Cluster) -> Diff {
    let (old_src, old_dst) = old.referenced_blocks();
    let (new_src, new_dst) = new.referenced_blocks();
    let before = old.connlist_with_blocks(&new_src, &new_dst);
    let after = new.connlist_with_blocks(&old_src, &old_dst);
    let (old_w, new_w) = (old.workload_labels(), new.workload_labels());
    let index = |list: Vec<super::Connection>| -> BTreeMap<(String, String), Ports> {
        list.into_iter().map(|c| ((c.src, c.dst), c.ports)).collect()
    };
    let (before, after) = (index(before), index(after));
    let pairs: BTreeSet<&(String, String)> = before.keys().chain(after.keys()).collect();
    let mut lines = Vec::new();
    for key in pairs {
        let (o, n) = (before.get(key), after.get(key));
        let change = match (o, n) {
            (Some(o), Some(n)) if o == n => continue,
            (Some(_), Some(_)) => Change::Changed,
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (None, None) => continue,
        };
        // A workload peer present on one side only (addresses and the controller are not workloads).
        let one_side = |p: &str| match change {
            Change::Added => new_w.contains(p) && !old_w.contains(p),
            Change::Removed => old_w.contains(p) && !new_w.contains(p),
            Change::Changed => false,
        };
        let named: Vec<&str> = [key.0.as_str(), key.1.as_str()].into_iter().filter(|p| one_side(p)).collect();
        let workloads = (!named.is_empty()).then(|| format!("workload {} {}", named.join(" and "), change.as_str()));
        lines.push(DiffLine {
            change,
            src: key.0.clone(),
            dst: key.1.clone(),
            old: o.cloned().unwrap_or_default(),
            new: n.cloned().unwrap_or_default(),
            workloads,
        });
    }
    // np-guard's order: by category, policy pairs before ingress-controller pairs, then the
    // text lines sorted.
    lines.sort_by(|a, b| {
        let key = |l: &DiffLine| (l.src == INGRESS_CONTROLLER, l.change);
        key(a).cmp(&key(b)).then_with(|| a.line().cmp(&b.line()))
    });
    Diff { lines }
}
