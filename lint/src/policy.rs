//! SandboxPolicies: every validation error, and what validates but is weak.

use semble_policy::yaml::Node;

use crate::context::Ctx;

pub(crate) fn lint(ctx: &mut Ctx, root: &Node) {
    let parsed = match semble_policy::parse(ctx.source) {
        Ok(p) => p,
        Err(e) => {
            for d in e.diagnostics.iter().filter(|d| d.severity == semble_policy::Severity::Error) {
                let msg = match &d.help {
                    Some(h) => format!("{}; {h}", d.message),
                    None => d.message.clone(),
                };
                ctx.add("SP000", d.pos.unwrap_or(root.pos), msg.replace(['\n', '\r'], " "));
            }
            return;
        }
    };
    let p = &parsed.policy;
    let pos = |path: &str| p.pos(path).unwrap_or(root.pos);
    for (i, r) in p.network.egress.iter().enumerate() {
        if r.host == semble_policy::model::HostPattern::Any {
            ctx.add(
                "SB050",
                pos(&format!("spec.network.egress[{i}].host")),
                "`host: \"*\"` lets the workload reach any name".into(),
            );
        }
        if r.credential.is_some() && !r.tls {
            ctx.add(
                "SB052",
                pos(&format!("spec.network.egress[{i}].credential")),
                format!(
                    "credential `{}` would travel in clear text to {}",
                    r.credential.clone().unwrap_or_default(),
                    r.host
                ),
            );
        }
    }
    for (i, name) in p.seccomp.allow.iter().enumerate() {
        if let Some(g) = semble_seccomp::baseline::NEVER_BY_DEFAULT.iter().find(|g| g.names.contains(&name.as_str())) {
            ctx.add(
                "SB054",
                pos(&format!("spec.seccomp.allow[{i}]")),
                format!("`{name}` is removed by every baseline: {}", g.reason),
            );
        }
    }
    if let Some(fs) = &p.filesystem {
        let untrusted = p.runtime.backend == Some(semble_policy::model::Backend::Gvisor) || !p.seccomp.deny.is_empty();
        if fs.enforcement == semble_policy::model::Enforcement::BestEffort && untrusted {
            ctx.add(
                "SB051",
                pos("spec.filesystem.enforcement"),
                "Landlock may silently be off on an old kernel".into(),
            );
        }
    }
    for d in semble_policy::checks::egress_shadowing(&p.network.egress, "spec.network.egress") {
        ctx.add("SB055", pos(&d.path), d.message);
    }
    for d in semble_policy::checks::credential_on_wildcard(&p.network.egress, "spec.network.egress") {
        ctx.add("SB056", pos(&d.path), d.message);
    }
    if p.seccomp.dangerously_allow_notify_listener {
        ctx.add(
            "SB057",
            pos("spec.seccomp.dangerouslyAllowNotifyListener"),
            "the workload may create seccomp notify listeners: once semble's supervisor is gone it can let through what the policy refuses".into(),
        );
    }
    if p.network.mode == semble_policy::model::NetworkMode::Proxy
        && p.network.proxy.placement == semble_policy::model::ProxyPlacement::Sidecar
    {
        ctx.add(
            "SB053",
            pos("spec.network.proxy.placement"),
            "a NetworkPolicy cannot keep the workload's egress narrower than its sidecar proxy's".into(),
        );
    }
}
