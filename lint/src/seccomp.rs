//! seccomp profiles (OCI/Docker/Podman JSON): a default that allows, an allow-list nothing can
//! start under. The same checks run on a pod's `Localhost` profile when it is among the linted
//! files ([`weaknesses`]).

use std::collections::BTreeSet;

use semble_policy::diag::Pos;
use semble_policy::yaml::Node;

use crate::context::{get, str_of, Ctx};

pub(crate) fn lint(ctx: &mut Ctx, root: &Node) {
    for (id, pos, msg) in weaknesses(root) {
        ctx.add(id, pos, msg);
    }
}

/// What makes a profile weak: `(rule, where in the profile, message)`.
pub(crate) fn weaknesses(root: &Node) -> Vec<(&'static str, Pos, String)> {
    if let Some(d) = get(root, "defaultAction") {
        if matches!(d.scalar_text().as_deref(), Some("SCMP_ACT_ALLOW" | "SCMP_ACT_LOG")) {
            let msg =
                format!("defaultAction {} lets every syscall not listed through", d.scalar_text().unwrap_or_default());
            return vec![("SB040", d.pos, msg)];
        }
    }
    let mut allowed = BTreeSet::new();
    for s in get(root, "syscalls").and_then(Node::as_seq).unwrap_or(&[]) {
        if str_of(get(s, "action")).as_deref() == Some("SCMP_ACT_ALLOW") {
            for n in get(s, "names").and_then(Node::as_seq).unwrap_or(&[]) {
                if let Some(t) = n.scalar_text() {
                    allowed.insert(t);
                }
            }
        }
    }
    let needed = ["execve", "mmap", "exit_group", "brk"];
    let missing: Vec<&str> = needed.iter().copied().filter(|n| !allowed.contains(*n)).collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let pos = get(root, "syscalls").map_or(root.pos, |n| n.pos);
    let msg = format!("{} syscalls allowed, without {}: no program can start", allowed.len(), missing.join(", "));
    vec![("SB041", pos, msg)]
}
