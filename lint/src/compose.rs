//! Compose files (`docker compose`, `podman compose`): services' images, privileges, host
//! network, published ports and default credentials.

use semble_policy::yaml::{Node, Value};

use crate::common::{check_caps, check_env_value, check_image};
use crate::context::{get, str_of, Ctx};

pub(crate) fn lint(ctx: &mut Ctx, root: &Node) {
    let Some(services) = get(root, "services").and_then(Node::as_map) else { return };
    for (name, svc) in services.iter() {
        let what = format!("service `{}`", name.name);
        if let Some(img) = get(svc, "image") {
            check_image(ctx, img);
        }
        if let Some(p) = get(svc, "privileged") {
            if p.as_bool() == Some(true) {
                ctx.add("SB001", p.pos, format!("{what} is privileged"));
            }
        }
        if let Some(n) = get(svc, "network_mode") {
            if n.scalar_text().as_deref() == Some("host") {
                ctx.add("SB030", n.pos, format!("{what} uses the host's network"));
            }
        }
        if let Some(c) = get(svc, "cap_add") {
            check_caps(ctx, c, &what);
        }
        for o in get(svc, "security_opt").and_then(Node::as_seq).unwrap_or(&[]) {
            let t = o.scalar_text().unwrap_or_default();
            if t.replace('=', ":") == "seccomp:unconfined" {
                ctx.add("SB008", o.pos, format!("{what} runs without seccomp"));
            }
        }
        for p in get(svc, "ports").and_then(Node::as_seq).unwrap_or(&[]) {
            let published_everywhere = match &p.value {
                Value::String(s) => {
                    let parts: Vec<&str> = s.split(':').collect();
                    parts.len() <= 2 || parts[0].is_empty() || parts[0] == "0.0.0.0"
                }
                Value::Int(_) => true,
                Value::Map(_) => {
                    str_of(get(p, "host_ip")).is_none_or(|h| h == "0.0.0.0") && get(p, "published").is_some()
                }
                _ => false,
            };
            if published_everywhere {
                ctx.add(
                    "SB031",
                    p.pos,
                    format!("{what} publishes {} on every address", p.scalar_text().unwrap_or_else(|| "a port".into())),
                );
            }
        }
        match get(svc, "environment").map(|e| &e.value) {
            Some(Value::Map(m)) => {
                for (k, v) in m.iter() {
                    check_env_value(ctx, &k.name, &v.scalar_text().unwrap_or_default(), v.pos);
                }
            }
            Some(Value::Seq(items)) => {
                for i in items {
                    if let Some((k, v)) = i.scalar_text().as_deref().and_then(|t| t.split_once('=')) {
                        check_env_value(ctx, k, v, i.pos);
                    }
                }
            }
            _ => {}
        }
    }
}
