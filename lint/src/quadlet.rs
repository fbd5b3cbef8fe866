//! Quadlet units (`.container`, `.pod`, `.kube`, `.network`, `.volume`): the keys Podman turns into
//! `podman run` flags.

use semble_policy::diag::Pos;
use semble_policy::yaml::{Node, Value};

use crate::common::{check_env_value, check_image, BASELINE_CAPS};
use crate::context::{cap_name, Ctx};

/// Whether a file is a Quadlet unit (by extension, or a `[Container]`-style section).
pub(crate) fn is_quadlet(file: &str, source: &str) -> bool {
    const EXT: &[&str] = &[".container", ".pod", ".kube", ".network", ".volume"];
    EXT.iter().any(|e| file.ends_with(e))
        || source.lines().any(|l| matches!(l.trim(), "[Container]" | "[Pod]" | "[Kube]"))
}

/// Quadlet units: `[Container]` / `[Pod]` keys Podman turns into `podman run` flags.
pub(crate) fn lint(ctx: &mut Ctx) {
    let source = ctx.source.to_string();
    let mut section = String::new();
    for (i, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let (key, value) = (key.trim(), value.trim());
        let col = u32::try_from(raw.find(value).unwrap_or(0) + 1).unwrap_or(1);
        let pos = Pos { line: u32::try_from(i + 1).unwrap_or(u32::MAX), column: col };
        let what = format!("[{section}]");
        let runtime_flag = |a: &str| a == "--runtime" || a.starts_with("--runtime=");
        if matches!(section.as_str(), "Container" | "Pod")
            && key == "PodmanArgs"
            && value.split_whitespace().any(runtime_flag)
        {
            ctx.add("SB058", pos, format!("{what} passes --runtime, a global flag `podman run` rejects"));
        }
        match (section.as_str(), key) {
            ("Container", "Image") => {
                let node = Node { value: Value::String(value.to_string()), pos };
                check_image(ctx, &node);
            }
            ("Container" | "Pod", "Network") if value == "host" => {
                ctx.add("SB030", pos, format!("{what} uses the host's network"))
            }
            ("Container" | "Pod", "PodmanArgs") if value.split_whitespace().any(|a| a == "--privileged") => {
                ctx.add("SB001", pos, format!("{what} passes --privileged"))
            }
            ("Container", "AddCapability") => {
                for cap in value.split_whitespace() {
                    let n = cap_name(cap);
                    let dangerous = semble_policy::caps::Capability::parse(&n).is_some_and(|c| c.is_dangerous());
                    if n == "ALL" || dangerous || !BASELINE_CAPS.contains(&n.as_str()) {
                        ctx.add("SB005", pos, format!("{what} adds capability {n}"));
                    }
                }
            }
            ("Container", "SeccompProfile") if value == "unconfined" => {
                ctx.add("SB008", pos, format!("{what} runs without seccomp"))
            }
            ("Container" | "Pod", "PublishPort") => {
                let parts: Vec<&str> = value.split(':').collect();
                if parts.len() <= 2 || parts[0].is_empty() || parts[0] == "0.0.0.0" {
                    ctx.add("SB031", pos, format!("{what} publishes {value} on every address"));
                }
            }
            ("Container", "Environment") => {
                for kv in value.split_whitespace() {
                    if let Some((k, v)) = kv.trim_matches('"').split_once('=') {
                        check_env_value(ctx, k, v, pos);
                    }
                }
            }
            _ => {}
        }
    }
}
