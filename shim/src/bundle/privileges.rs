//! Host-level requests: privileged mode, sysctls, and the SELinux level.

use super::*;

pub(super) fn check_privileged(cfg: &Value, policy: &str) -> Result<(), Refusal> {
    if let Some(devs) = cfg.pointer("/linux/resources/devices").and_then(Value::as_array) {
        for d in devs {
            let allow = d.get("allow").and_then(Value::as_bool).unwrap_or(false);
            let kind = d.get("type").and_then(Value::as_str).unwrap_or("a");
            if allow && kind == "a" && d.get("major").is_none() && d.get("minor").is_none() {
                return Err(Refusal::Privileged("every device is allowed".into(), policy.into()));
            }
        }
    }
    if let Some(b) = cap_names(cfg.pointer("/process/capabilities/bounding")) {
        if ["CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO"].iter().all(|c| b.contains(*c)) {
            return Err(Refusal::Privileged("every capability is requested".into(), policy.into()));
        }
    }
    Ok(())
}

pub(super) fn check_sysctls(cfg: &Value, policy: &str) -> Result<(), Refusal> {
    if let Some(s) = cfg.pointer("/linux/sysctl").and_then(Value::as_object) {
        for k in s.keys() {
            if !semble_policy::facts::is_safe_sysctl_newest(k) {
                return Err(Refusal::Sysctl(k.clone(), policy.into()));
            }
        }
    }
    Ok(())
}

/// A unique-enough MCS category pair derived from the container ID.
pub(super) fn auto_level(id: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    let a = h % 1024;
    let mut b = (h >> 20) % 1024;
    if a == b {
        b = (b + 1) % 1024;
    }
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    format!("s0:c{lo},c{hi}")
}
