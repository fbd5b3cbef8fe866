//! NetworkPolicies: egress open to everything, DNS on UDP only.

use semble_policy::yaml::Node;

use crate::context::{get, path, str_of, Ctx};

pub(crate) fn lint(ctx: &mut Ctx, root: &Node) {
    for rule in path(root, &["spec", "egress"]).and_then(Node::as_seq).unwrap_or(&[]) {
        for peer in get(rule, "to").and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(b) = get(peer, "ipBlock") {
                let cidr = str_of(get(b, "cidr")).unwrap_or_default();
                let except: Vec<String> = get(b, "except")
                    .and_then(Node::as_seq)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(Node::scalar_text)
                    .collect();
                let open = cidr == "0.0.0.0/0" || cidr == "::/0";
                let guards_metadata = except.iter().any(|e| {
                    e == "169.254.0.0/16"
                        || e == "169.254.169.254/32"
                        || e.starts_with("fe80::")
                        || e.starts_with("fc00::")
                        || e.starts_with("fd00:")
                });
                if open && !guards_metadata {
                    ctx.add(
                        "SB020",
                        b.pos,
                        format!("egress to {cidr} reaches private ranges and the metadata address"),
                    );
                }
            }
        }
        let ports: Vec<(i64, String)> = get(rule, "ports")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|p| {
                Some((get(p, "port")?.as_i64()?, str_of(get(p, "protocol")).unwrap_or_else(|| "TCP".into())))
            })
            .collect();
        if ports.iter().any(|(p, pr)| *p == 53 && pr == "UDP") && !ports.iter().any(|(p, pr)| *p == 53 && pr == "TCP") {
            let pos = get(rule, "ports").map_or(rule.pos, |n| n.pos);
            ctx.add("SB021", pos, "DNS is allowed on UDP 53 only".into());
        }
    }
}
