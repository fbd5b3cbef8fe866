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

/// Whether a value counts as set (a refused field set to its zero value asks for nothing).
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_set),
        Value::Object(o) => o.values().any(is_set),
    }
}

/// The table's word on the request: every field it does not know, and every field whose row
/// says **refuse**, is a refusal naming the field. Hooks are judged apart ([`check_hooks`]).
pub(super) fn check_table(cfg: &Value, policy: &str) -> Result<(), Refusal> {
    let unknown = table::unknown_fields(cfg, &[]);
    if let Some(first) = unknown.first() {
        let more = if unknown.len() > 1 { format!(" (and {} more)", unknown.len() - 1) } else { String::new() };
        return Err(Refusal::UnknownField(first.clone(), more, policy.into()));
    }
    for row in table::FIELDS.iter().filter(|r| r.action == table::Action::Refuse && r.path != "/hooks") {
        for (path, v) in table::values_at(cfg, row.path) {
            if is_set(v) {
                return Err(Refusal::Field(path, policy.into(), row.how.into()));
            }
        }
    }
    Ok(())
}

/// `ociVersion` must be a version (`1.0.2`, `1.2.0-dev`): a runtime cannot honour a
/// configuration written for a spec it cannot name.
pub(super) fn check_oci_version(cfg: &Value, policy: &str) -> Result<(), Refusal> {
    let Some(v) = cfg.get("ociVersion").and_then(Value::as_str) else { return Ok(()) };
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts[0] == "1"
    {
        return Ok(());
    }
    Err(Refusal::Field("/ociVersion".into(), policy.into(), format!("`{v}` is not an OCI runtime spec version 1.x.y")))
}

/// The environment an allowed hook gets when its entry names none. runc runs a hook with the
/// entry's `env`, and one without any inherits the caller's environment: for `createContainer`
/// hooks that is `runc init`'s, which already holds the container's `process.env` — the image
/// author's. An `LD_PRELOAD` set in an image would then load the image's library into a program
/// running as root on the host (CVE-2025-23266, "NVIDIAScape", through the NVIDIA Container
/// Toolkit's CDI hooks, whose working directory is the container's root filesystem).
pub const HOOK_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether setting `var` makes a program load code (or a shell run a script) chosen by whoever
/// sets it: the dynamic loader's variables, glibc's tunables and gconv modules, interpreters'
/// start-up hooks.
pub fn loads_code(var: &str) -> bool {
    var.starts_with("LD_")
        || matches!(
            var,
            "GCONV_PATH"
                | "GLIBC_TUNABLES"
                | "BASH_ENV"
                | "ENV"
                | "PYTHONPATH"
                | "PYTHONSTARTUP"
                | "PYTHONHOME"
                | "PERL5LIB"
                | "PERL5OPT"
                | "RUBYLIB"
                | "RUBYOPT"
                | "NODE_OPTIONS"
        )
}

/// Hooks run on the host, as root, before (or after) the container: refused unless the
/// operator allowed that program (`--allow-hook PATH`). An allowed hook runs with the
/// environment its entry names — [`HOOK_ENV`] when it names none, never the container's — and
/// an entry naming a variable that loads code ([`loads_code`]) is refused. Returns what was
/// kept, for the log.
pub(super) fn check_hooks(cfg: &mut Value, allowed: &[PathBuf], policy: &str) -> Result<Vec<String>, Refusal> {
    let Some(hooks) = cfg.get_mut("hooks").and_then(Value::as_object_mut) else { return Ok(Vec::new()) };
    let mut kept = Vec::new();
    for (kind, list) in hooks.iter_mut() {
        let Some(list) = list.as_array_mut() else { continue };
        for h in list.iter_mut() {
            let path = h.get("path").and_then(Value::as_str).unwrap_or("").to_string();
            if !allowed.iter().any(|a| a.as_os_str() == path.as_str()) {
                return Err(Refusal::Hook(kind.clone(), path, policy.into()));
            }
            let env: Vec<String> = h
                .get("env")
                .and_then(Value::as_array)
                .map(|e| e.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            if let Some(bad) = env.iter().find(|e| loads_code(e.split('=').next().unwrap_or(""))) {
                let var = bad.split('=').next().unwrap_or("");
                return Err(Refusal::Field(
                    format!("/hooks/{kind}"),
                    policy.into(),
                    format!("hook `{path}` sets `{var}`, which would make a program running as root on the host load code named by the request; remove it from the hook (or from the CDI spec that adds it)"),
                ));
            }
            if env.is_empty() {
                if let Some(o) = h.as_object_mut() {
                    o.insert("env".into(), Value::Array(vec![Value::String(HOOK_ENV.into())]));
                }
            }
            kept.push(format!("{kind}: {path}"));
        }
    }
    Ok(kept)
}

/// User namespaces are kept, but no range may make a container id the host's root.
pub(super) fn check_id_mappings(cfg: &Value, policy: &str) -> Result<(), Refusal> {
    for (key, what) in [("uidMappings", "uid"), ("gidMappings", "gid")] {
        for m in cfg.pointer(&format!("/linux/{key}")).and_then(Value::as_array).into_iter().flatten() {
            let host = m.get("hostID").and_then(Value::as_u64).unwrap_or(0);
            let size = m.get("size").and_then(Value::as_u64).unwrap_or(0);
            let container = m.get("containerID").and_then(Value::as_u64).unwrap_or(0);
            if size > 0 && host == 0 {
                return Err(Refusal::Field(
                    format!("/linux/{key}"),
                    policy.into(),
                    format!("container {what} {container} would be the host's {what} 0; map the container onto unprivileged host ids"),
                ));
            }
        }
    }
    Ok(())
}

/// `rootfsPropagation: shared` would let the container's mounts appear on the host; `..` in
/// `cgroupsPath` would put the container in another's cgroup.
pub(super) fn check_linux_misc(cfg: &Value, policy: &str) -> Result<(), Refusal> {
    if let Some(p) = cfg.pointer("/linux/rootfsPropagation").and_then(Value::as_str) {
        if matches!(p, "shared" | "rshared") {
            return Err(Refusal::Field(
                "/linux/rootfsPropagation".into(),
                policy.into(),
                format!("`{p}` propagation would let the container's mounts reach the host; use `private` or `slave`"),
            ));
        }
    }
    if let Some(c) = cfg.pointer("/linux/cgroupsPath").and_then(Value::as_str) {
        if c.split(['/', ':']).any(|p| p == "..") {
            return Err(Refusal::Field(
                "/linux/cgroupsPath".into(),
                policy.into(),
                format!("`{c}` climbs out with `..`"),
            ));
        }
    }
    Ok(())
}
