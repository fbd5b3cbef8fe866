//! The process: user, capabilities, no_new_privs, rlimits (also for `exec` processes).

use super::*;

/// What [`apply_process`] did.
#[derive(Debug, Clone)]
pub struct ProcessReport {
    /// Final uid.
    pub uid: u32,
    /// Final gid.
    pub gid: u64,
    /// `uid N gid M`.
    pub user: String,
    /// Final no_new_privs.
    pub nnp: bool,
    /// Limits set.
    pub rlimits: Vec<String>,
}

/// Apply the process part of the policy (also used for `exec` processes).
pub fn apply_process(
    process: &mut Value,
    policy: &SandboxPolicy,
    facts: &HostFacts,
    allowed_caps: &BTreeSet<String>,
) -> Result<ProcessReport, Refusal> {
    let p = process.as_object_mut().ok_or(Refusal::WrongType("process"))?;
    // User.
    let user = p.entry("user").or_insert_with(|| json!({"uid": 0, "gid": 0}));
    let user = user.as_object_mut().ok_or(Refusal::WrongType("process.user"))?;
    if let Some(uid) = policy.process.user {
        user.insert("uid".into(), json!(uid));
        user.insert("gid".into(), json!(policy.process.group.unwrap_or(uid)));
        if policy.process.supplementary_groups.is_empty() {
            user.remove("additionalGids");
        } else {
            user.insert("additionalGids".into(), json!(policy.process.supplementary_groups));
        }
    } else if let Some(gid) = policy.process.group {
        user.insert("gid".into(), json!(gid));
    }
    let uid = user.get("uid").and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let gid = user.get("gid").and_then(Value::as_u64).unwrap_or(0);
    if uid == 0 && policy.process.run_as_non_root {
        return Err(Refusal::Root(policy.name.clone()));
    }
    // Capabilities: every set is the allowed set (ambient makes them effective for non-root).
    let caps: Vec<Value> = allowed_caps.iter().map(|c| json!(c)).collect();
    let mut set = Map::new();
    for k in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
        set.insert(k.into(), Value::Array(caps.clone()));
    }
    p.insert("capabilities".into(), Value::Object(set));
    // no_new_privs: the policy's, or the request's when it is stricter.
    let nnp = policy.process.no_new_privileges || p.get("noNewPrivileges").and_then(Value::as_bool).unwrap_or(false);
    p.insert("noNewPrivileges".into(), Value::Bool(nnp));
    // rlimits: the lower of request, policy and what this host can grant.
    let mut report = Vec::new();
    let rl = p.entry("rlimits").or_insert_with(|| json!([]));
    if !rl.is_array() {
        *rl = json!([]);
    }
    if let Value::Array(list) = rl {
        for (kind, v) in &policy.process.rlimits {
            let name = kind.oci_name();
            let cap = facts.hard_limits.get(kind).copied().unwrap_or(u64::MAX);
            let existing = list.iter_mut().find(|e| e.get("type").and_then(Value::as_str) == Some(name.as_str()));
            let (soft, hard) = match &existing {
                Some(e) => {
                    let s = e.get("soft").and_then(Value::as_u64).unwrap_or(u64::MAX);
                    let h = e.get("hard").and_then(Value::as_u64).unwrap_or(u64::MAX);
                    (s.min(v.soft).min(cap), h.min(v.hard).min(cap))
                }
                None => (v.soft.min(cap), v.hard.min(cap)),
            };
            let soft = soft.min(hard);
            let entry = json!({"type": name, "soft": soft, "hard": hard});
            match existing {
                Some(e) => *e = entry,
                None => list.push(entry),
            }
            report.push(format!("{name} {soft}/{hard}"));
        }
    }
    Ok(ProcessReport { uid, gid, user: format!("uid {uid} gid {gid}"), nnp, rlimits: report })
}

/// Whether a capability name (OCI form) is one the policy grants.
pub fn granted_names(policy: &SandboxPolicy) -> BTreeSet<String> {
    policy.capabilities.granted().iter().map(|c: &Capability| c.oci_name()).collect()
}

/// Environment variables pointing HTTP clients at the bridge.
pub fn proxy_env(port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}");
    vec![
        ("HTTP_PROXY".into(), url.clone()),
        ("HTTPS_PROXY".into(), url.clone()),
        ("http_proxy".into(), url.clone()),
        ("https_proxy".into(), url),
        ("NO_PROXY".into(), "localhost,127.0.0.1,::1".into()),
        ("no_proxy".into(), "localhost,127.0.0.1,::1".into()),
    ]
}

/// Set environment variables in a process, replacing earlier values.
pub fn set_env(process: &mut Map<String, Value>, vars: &[(String, String)]) {
    let env = process.entry("env").or_insert_with(|| json!([]));
    if !env.is_array() {
        *env = json!([]);
    }
    if let Value::Array(list) = env {
        for (k, v) in vars {
            let prefix = format!("{k}=");
            list.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
            list.push(Value::String(format!("{k}={v}")));
        }
    }
}
