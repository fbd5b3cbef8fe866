//! Network namespaces: a private one for `none`/`proxy`, the engine's kept only for ingress or a
//! pod (then with the egress guard), never the host's.

use super::*;

/// Decisions about the network namespace.
#[derive(Debug, Clone)]
pub(super) struct NetPlan {
    /// A namespace with interfaces, prepared by the engine, is kept.
    pub(super) kept: bool,
    pub(super) detail: String,
    pub(super) note: Option<String>,
    pub(super) cut_by_landlock: bool,
}

pub(super) fn ns_is_host(path: &str, facts: &HostFacts, kind: &str) -> bool {
    match (crate::host::ns_id(Path::new(path)), facts.host_namespaces.get(kind)) {
        (Some(a), Some(b)) => a == *b,
        _ => false,
    }
}

pub(super) fn apply_namespaces(cfg: &mut Value, inputs: &Inputs<'_>, is_pod: bool) -> Result<NetPlan, Refusal> {
    let name = inputs.policy.name.clone();
    let linux = obj(cfg, "linux")?;
    let ns = linux.entry("namespaces").or_insert_with(|| json!([]));
    let list = ns.as_array_mut().ok_or(Refusal::WrongType("linux.namespaces"))?;
    let find =
        |list: &Vec<Value>, kind: &str| list.iter().position(|n| n.get("type").and_then(Value::as_str) == Some(kind));
    for kind in ["pid", "ipc", "mount"] {
        match find(list, kind) {
            None => return Err(Refusal::HostNamespace(kind.into(), name)),
            Some(i) => {
                if let Some(p) = list[i].get("path").and_then(Value::as_str) {
                    if ns_is_host(p, inputs.facts, kind) {
                        return Err(Refusal::HostNamespace(kind.into(), name));
                    }
                }
            }
        }
    }
    let net_idx = find(list, "network");
    let net_path = net_idx.and_then(|i| list[i].get("path").and_then(Value::as_str).map(str::to_string));
    let host_net = net_idx.is_none() || net_path.as_deref().is_some_and(|p| ns_is_host(p, inputs.facts, "network"));
    let policy = inputs.policy;
    let fresh = json!({"type": "network"});
    match policy.network.mode {
        NetworkMode::Open => {
            if host_net {
                return Err(Refusal::HostNetwork(name));
            }
            Ok(NetPlan {
                kept: net_path.is_some(),
                detail: "the runtime's network namespace (mode open)".into(),
                note: None,
                cut_by_landlock: false,
            })
        }
        NetworkMode::None | NetworkMode::Proxy => {
            let mode = policy.network.mode.as_str();
            if host_net {
                match net_idx {
                    Some(i) => list[i] = fresh,
                    None => list.push(fresh),
                }
                return Ok(NetPlan {
                    kept: false,
                    detail: "private namespace, loopback only".into(),
                    note: Some(format!("network: the host's network namespace was replaced by a private one (policy `{name}`, mode `{mode}`)")),
                    cut_by_landlock: false,
                });
            }
            match (net_idx, net_path) {
                (Some(i), Some(_)) if !is_pod && policy.network.ingress.is_empty() => {
                    list[i] = fresh;
                    Ok(NetPlan {
                        kept: false,
                        detail: "private namespace, loopback only".into(),
                        note: Some(format!("network: the runtime's network namespace was replaced by a private one (policy `{name}`, mode `{mode}`, no ingress)")),
                        cut_by_landlock: false,
                    })
                }
                (Some(_), Some(_)) => Ok(NetPlan {
                    kept: true,
                    detail: format!("the {} network namespace, kept for ingress; egress cut by the egress guard (and TCP by Landlock), other IP sockets by seccomp", if is_pod { "pod's" } else { "runtime's" }),
                    note: None,
                    cut_by_landlock: true,
                }),
                _ => Ok(NetPlan { kept: false, detail: "private namespace, loopback only".into(), note: None, cut_by_landlock: false }),
            }
        }
    }
}
