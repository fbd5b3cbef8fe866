//! cgroup limits: the lower of request and policy; devices denied first.

use super::*;

pub(super) fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a.filter(|v| *v > 0), b.filter(|v| *v > 0)) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

pub(super) fn apply_resources(
    linux: &mut Map<String, Value>,
    policy: &SandboxPolicy,
    allowed: &[DeviceId],
    nvidia_majors: &std::collections::BTreeSet<i64>,
) -> Result<String, Refusal> {
    let res = linux.entry("resources").or_insert_with(|| json!({}));
    if res.is_null() {
        *res = json!({});
    }
    let res = res.as_object_mut().ok_or(Refusal::WrongType("linux.resources"))?;
    let r = &policy.resources;
    let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut detail = Vec::new();

    let mem = res.entry("memory").or_insert_with(|| json!({}));
    if let Some(m) = mem.as_object_mut() {
        let limit = min_opt(m.get("limit").and_then(Value::as_i64), r.memory.map(to_i64));
        if let Some(l) = limit {
            m.insert("limit".into(), json!(l));
            let swap = min_opt(m.get("swap").and_then(Value::as_i64), Some(l)).unwrap_or(l);
            m.insert("swap".into(), json!(swap.max(l)));
            detail.push(format!("memory {}", semble_policy::quantity::format_bytes(u64::try_from(l).unwrap_or(0))));
        }
    }
    if let Some(policy_m) = r.cpu {
        let cpu = res.entry("cpu").or_insert_with(|| json!({}));
        if let Some(c) = cpu.as_object_mut() {
            let period = c
                .get("period")
                .and_then(Value::as_u64)
                .filter(|p| *p > 0)
                .unwrap_or(semble_policy::compile::oci::CPU_PERIOD_US);
            let policy_quota = to_i64(policy_m.saturating_mul(period) / 1000);
            let quota = min_opt(c.get("quota").and_then(Value::as_i64), Some(policy_quota)).unwrap_or(policy_quota);
            c.insert("period".into(), json!(period));
            c.insert("quota".into(), json!(quota));
            detail.push(format!("cpu quota {quota}/{period}us"));
        }
    }
    if let Some(p) = r.pids {
        let pids = res.entry("pids").or_insert_with(|| json!({}));
        if let Some(o) = pids.as_object_mut() {
            let limit = min_opt(o.get("limit").and_then(Value::as_i64), Some(i64::from(p))).unwrap_or(i64::from(p));
            o.insert("limit".into(), json!(limit));
            detail.push(format!("pids {limit}"));
        }
    }
    // Devices: deny everything, then allow only what the policy justifies.
    let incoming = res.get("devices").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut devices = vec![json!({"allow": false, "access": "rwm"})];
    for d in incoming {
        if !d.get("allow").and_then(Value::as_bool).unwrap_or(false) {
            continue;
        }
        let kind = d.get("type").and_then(Value::as_str).unwrap_or("a");
        let major = d.get("major").and_then(Value::as_i64);
        let minor = d.get("minor").and_then(Value::as_i64);
        // Exactly a device the container was given; or, for a GPU policy, an NVIDIA major.
        let ok =
            major.is_some_and(|maj| {
                allowed.iter().any(|(k, am, an)| k == kind && *am == maj && minor.is_some() && *an == minor)
            }) || (policy.devices.gpu.is_some() && kind == "c" && major.is_some_and(|m| nvidia_majors.contains(&m)));
        if ok {
            devices.push(d);
        }
    }
    if policy.devices.gpu.is_some() {
        for m in nvidia_majors {
            let rule = json!({"allow": true, "type": "c", "major": m, "access": "rwm"});
            if !devices.contains(&rule) {
                devices.push(rule);
            }
        }
    }
    for (kind, major, minor) in allowed {
        let rule = match minor {
            Some(mi) => {
                json!({"allow": true, "type": kind, "major": major, "minor": mi, "access": "rwm"})
            }
            None => json!({"allow": true, "type": kind, "major": major, "access": "rwm"}),
        };
        if !devices.contains(&rule) {
            devices.push(rule);
        }
    }
    res.insert("devices".into(), Value::Array(devices));
    Ok(if detail.is_empty() { "none set".into() } else { detail.join(", ") })
}
