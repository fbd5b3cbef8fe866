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
    let detail =
        clamp_limits(res, policy, true).map_err(|(field, why)| Refusal::Field(field, policy.name.clone(), why))?;
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

/// The cgroup limits of `linux.resources` (or of `semble-shim update --resources`) held to the
/// policy: memory, swap, reservation; CPU quota, period, burst; pids; the cgroup v2 `unified`
/// files. `Err((field, why))` for what cannot be allowed at all. Returns what was set.
/// With `add`, the policy's limits are set where the request has none (`create`); without it,
/// only the limits the request names are held to the policy (`update` changes nothing else).
pub fn clamp_limits(
    res: &mut Map<String, Value>,
    policy: &SandboxPolicy,
    add: bool,
) -> Result<Vec<String>, (String, String)> {
    let policy_resources = policy.resources.clone();
    let mut r = policy_resources.clone();
    if !add {
        let has = |p: &str| {
            let (section, field) = p.split_once('/').unwrap_or((p, ""));
            res.get(section).and_then(|o| o.get(field)).is_some_and(|v| !v.is_null())
        };
        if !has("memory/limit") {
            r.memory = None;
        }
        if !has("cpu/quota") {
            r.cpu = None;
        }
        if !has("pids/limit") {
            r.pids = None;
        }
    }
    let r = &r;
    let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut detail = Vec::new();
    let mem = res.entry("memory").or_insert_with(|| json!({}));
    if let Some(m) = mem.as_object_mut() {
        let limit = min_opt(m.get("limit").and_then(Value::as_i64), r.memory.map(to_i64));
        if let Some(l) = limit {
            m.insert("limit".into(), json!(l));
            // memory+swap, never beyond the limit: no swap.
            m.insert("swap".into(), json!(l));
            if m.get("reservation").and_then(Value::as_i64).is_some_and(|v| v > l) {
                m.insert("reservation".into(), json!(l));
            }
            detail.push(format!("memory {}", semble_policy::quantity::format_bytes(u64::try_from(l).unwrap_or(0))));
        }
        // memory+swap never above the policy's memory, whatever else the request says.
        if let (Some(pm), Some(sw)) = (policy_resources.memory.map(to_i64), m.get("swap").and_then(Value::as_i64)) {
            if sw < 0 || sw > pm {
                m.insert("swap".into(), json!(pm));
            }
        }
    }
    let cpu = res.entry("cpu").or_insert_with(|| json!({}));
    if let Some(c) = cpu.as_object_mut() {
        if let Some(p) = c.get("period").and_then(Value::as_u64) {
            c.insert("period".into(), json!(p.clamp(CPU_PERIOD_MIN_US, CPU_PERIOD_MAX_US)));
        }
        if let Some(policy_m) = r.cpu {
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
        let quota = c.get("quota").and_then(Value::as_i64).filter(|q| *q > 0);
        if let (Some(b), Some(q)) = (c.get("burst").and_then(Value::as_u64), quota) {
            if b > u64::try_from(q).unwrap_or(0) {
                c.insert("burst".into(), json!(q));
            }
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
    let r = &policy_resources;
    if let Some(Value::Object(unified)) = res.get_mut("unified") {
        for (key, v) in unified.iter_mut() {
            let text = v.as_str().unwrap_or("").trim().to_string();
            let field = format!("/linux/resources/unified/{key}");
            let set = |v: &mut Value, n: i64| *v = json!(n.to_string());
            let number = |t: &str| if t == "max" { Some(i64::MAX) } else { t.parse::<i64>().ok() };
            match key.as_str() {
                "memory.max" | "memory.high" | "memory.low" | "memory.min" => {
                    let n = number(&text).ok_or_else(|| (field.clone(), format!("`{text}` is not a byte count")))?;
                    if let Some(l) = r.memory.map(to_i64) {
                        if n > l {
                            set(v, l);
                        }
                    }
                }
                "memory.swap.max" => {
                    if r.memory.is_some() {
                        set(v, 0);
                    }
                }
                "pids.max" => {
                    let n = number(&text).ok_or_else(|| (field.clone(), format!("`{text}` is not a number")))?;
                    if let Some(p) = r.pids.map(i64::from) {
                        if n > p {
                            set(v, p);
                        }
                    }
                }
                "cpu.max" => {
                    let mut parts = text.split_whitespace();
                    let quota = parts.next().and_then(number);
                    let period = parts
                        .next()
                        .and_then(|p| p.parse::<u64>().ok())
                        .unwrap_or(semble_policy::compile::oci::CPU_PERIOD_US)
                        .clamp(CPU_PERIOD_MIN_US, CPU_PERIOD_MAX_US);
                    let quota = quota.ok_or_else(|| (field.clone(), format!("`{text}` is not `QUOTA PERIOD`")))?;
                    let quota = match r.cpu {
                        Some(m) => quota.min(to_i64(m.saturating_mul(period) / 1000)),
                        None => quota,
                    };
                    *v = json!(if quota == i64::MAX { format!("max {period}") } else { format!("{quota} {period}") });
                }
                "memory.oom.group" | "cpu.weight" | "cpu.weight.nice" | "cpu.idle" | "io.weight" | "cpu.max.burst" => {}
                other => {
                    return Err((
                        field,
                        format!(
                            "`{other}` is not a cgroup file semble can hold to the policy; use the OCI resource fields"
                        ),
                    ))
                }
            }
        }
    }
    Ok(detail)
}

/// The limits of `linux.resources` set through a controller this host does not delegate to a
/// rootless container ([`crate::host::Undelegated`]). The policy's `resources.enforcement`
/// decides: `required` refuses the container, naming them; `best-effort` takes them out (a
/// rootless runc would fail on them) and returns what was taken, for the log. `Ok(None)`: none.
pub(super) fn without_undelegated(
    linux: &mut Map<String, Value>,
    policy: &SandboxPolicy,
    undelegated: &crate::host::Undelegated,
) -> Result<Option<String>, Refusal> {
    let Some(Value::Object(res)) = linux.get_mut("resources") else {
        return Ok(None);
    };
    let set = |v: Option<&Value>| v.is_some_and(|v| !v.is_null() && v != &json!({}) && v != &json!([]));
    // (controller, section, fields of the section; empty: the whole section)
    const FIELDS: &[(&str, &str, &[&str])] = &[
        ("memory", "memory", &[]),
        ("cpu", "cpu", &["shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "idle"]),
        ("cpuset", "cpu", &["cpus", "mems"]),
        ("pids", "pids", &[]),
        ("hugetlb", "hugepageLimits", &[]),
        ("io", "blockIO", &[]),
        ("rdma", "rdma", &[]),
    ];
    let mut used: Vec<String> = Vec::new();
    for (controller, section, fields) in FIELDS {
        if !undelegated.controllers.contains(*controller) {
            continue;
        }
        let named: Vec<String> = match res.get(*section) {
            Some(Value::Object(o)) if !fields.is_empty() => {
                fields.iter().filter(|f| set(o.get(**f))).map(|f| format!("{section}.{f}")).collect()
            }
            v if fields.is_empty() && set(v) => {
                let inner = v.and_then(Value::as_object).map(|o| {
                    o.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| format!("{section}.{k}")).collect::<Vec<_>>()
                });
                inner.filter(|i| !i.is_empty()).unwrap_or_else(|| vec![(*section).to_string()])
            }
            _ => Vec::new(),
        };
        if named.is_empty() {
            continue;
        }
        used.extend(named);
        match res.get_mut(*section) {
            Some(Value::Object(o)) if !fields.is_empty() => {
                for f in *fields {
                    o.remove(*f);
                }
            }
            _ => {
                res.remove(*section);
            }
        }
    }
    if let Some(Value::Object(unified)) = res.get_mut("unified") {
        let keys: Vec<String> = unified
            .keys()
            .filter(|k| k.split('.').next().is_some_and(|c| undelegated.controllers.contains(c)))
            .cloned()
            .collect();
        for k in keys {
            unified.remove(&k);
            used.push(format!("unified.{k}"));
        }
    }
    if used.is_empty() {
        return Ok(None);
    }
    let what = format!("the cgroup limits `{}`", used.join("`, `"));
    match policy.resources.enforcement {
        Enforcement::Required => Err(Refusal::NoCgroupLimits(policy.name.clone(), what, undelegated.why.clone())),
        Enforcement::BestEffort => Ok(Some(what)),
    }
}

/// The CFS period semble accepts: 1 ms to 1 s (the kernel's range).
pub const CPU_PERIOD_MIN_US: u64 = 1_000;
/// See [`CPU_PERIOD_MIN_US`].
pub const CPU_PERIOD_MAX_US: u64 = 1_000_000;
