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
    in_pod: bool,
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
        // Limits the policy does not name: never above what this host grants the shim, and no
        // real-time or raised scheduling priority (RLIMIT_RTPRIO lets a task run SCHED_FIFO
        // outside the CPU quota; RLIMIT_NICE lets it raise its priority).
        let named: BTreeSet<String> = policy.process.rlimits.keys().map(|k| k.oci_name()).collect();
        for e in list.iter_mut() {
            let Some(name) = e.get("type").and_then(Value::as_str).map(str::to_string) else { continue };
            if named.contains(&name) {
                continue;
            }
            let kind = semble_policy::model::Rlimit::ALL.iter().find(|(_, r)| r.oci_name() == name).map(|(_, r)| *r);
            let Some(kind) = kind else {
                return Err(Refusal::Field(
                    "/process/rlimits".into(),
                    policy.name.clone(),
                    format!("`{name}` is not a resource limit semble knows"),
                ));
            };
            let ceiling = match kind {
                semble_policy::model::Rlimit::Rtprio | semble_policy::model::Rlimit::Nice => 0,
                k => facts.hard_limits.get(&k).copied().unwrap_or(u64::MAX),
            };
            let s = e.get("soft").and_then(Value::as_u64).unwrap_or(u64::MAX);
            let h = e.get("hard").and_then(Value::as_u64).unwrap_or(u64::MAX);
            if s > ceiling || h > ceiling {
                let (s, h) = (s.min(ceiling), h.min(ceiling));
                *e = json!({"type": name, "soft": s.min(h), "hard": h});
                report.push(format!("{name} {}/{h} (lowered)", s.min(h)));
            }
        }
    }
    check_process_extras(p, policy, in_pod)?;
    Ok(ProcessReport { uid, gid, user: format!("uid {uid} gid {gid}"), nnp, rlimits: report })
}

/// The lowest `oomScoreAdj` a container may have: 0 (a negative value makes the host's OOM
/// killer take others first); in a Kubernetes pod the kubelet's Guaranteed value, -997.
pub const OOM_SCORE_ADJ_FLOOR: i64 = 0;
/// See [`OOM_SCORE_ADJ_FLOOR`].
pub const OOM_SCORE_ADJ_FLOOR_POD: i64 = -997;

/// The process fields the runtime applies as root before the capabilities drop (I/O and CPU
/// scheduling), the OOM score, and the LSM profiles a request may not turn off.
fn check_process_extras(p: &mut Map<String, Value>, policy: &SandboxPolicy, in_pod: bool) -> Result<(), Refusal> {
    let refuse = |field: &str, why: String| Refusal::Field(format!("/process/{field}"), policy.name.clone(), why);
    let floor = if in_pod { OOM_SCORE_ADJ_FLOOR_POD } else { OOM_SCORE_ADJ_FLOOR };
    if let Some(v) = p.get("oomScoreAdj").and_then(Value::as_i64) {
        if v < floor {
            p.insert("oomScoreAdj".into(), json!(floor));
        }
    }
    if let Some(a) = p.get("apparmorProfile").and_then(Value::as_str) {
        if a == "unconfined" {
            return Err(refuse(
                "apparmorProfile",
                "`unconfined` turns AppArmor off; remove it to keep the engine's profile".into(),
            ));
        }
    }
    if let Some(l) = p.get("selinuxLabel").and_then(Value::as_str) {
        if l.split(':').any(|part| matches!(part, "spc_t" | "unconfined_t" | "kernel_t" | "init_t")) {
            return Err(refuse("selinuxLabel", format!("`{l}` is an unconfined SELinux domain")));
        }
    }
    if let Some(class) = p.get("ioPriority").and_then(|i| i.get("class")).and_then(Value::as_str) {
        if class == "IOPRIO_CLASS_RT" {
            return Err(refuse(
                "ioPriority",
                "the real-time I/O class starves the host's I/O; use best-effort or idle".into(),
            ));
        }
    }
    if let Some(s) = p.get("scheduler") {
        let policy_name = s.get("policy").and_then(Value::as_str).unwrap_or("");
        if matches!(policy_name, "SCHED_FIFO" | "SCHED_RR" | "SCHED_DEADLINE") {
            return Err(refuse(
                "scheduler",
                format!("`{policy_name}` is a real-time policy: it runs outside the CPU quota"),
            ));
        }
        if s.get("nice").and_then(Value::as_i64).is_some_and(|n| n < 0) {
            return Err(refuse(
                "scheduler",
                "a negative nice value raises the container above the host's processes".into(),
            ));
        }
    }
    Ok(())
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
