//! Devices: judged by type and number, never by name alone.

use super::*;

/// `(type, major, minor)` of devices the container may use.
pub(super) type DeviceId = (String, i64, Option<i64>);

/// The host's device nodes at the paths a configuration's `linux.devices` names: the type
/// (`c`, `b`) and numbers of each, `None` where the host has no device node there.
pub type HostDevices = BTreeMap<String, Option<(String, i64, i64)>>;

/// Look at the host's `/dev` for each device a configuration asks for (I/O; the merge is pure).
pub fn host_devices(cfg: &Value) -> HostDevices {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = HostDevices::new();
    for d in cfg.pointer("/linux/devices").and_then(Value::as_array).into_iter().flatten() {
        let Some(path) = d.get("path").and_then(Value::as_str) else { continue };
        let node = std::fs::symlink_metadata(path).ok().and_then(|m| {
            let t = m.file_type();
            let kind = if t.is_char_device() {
                "c"
            } else if t.is_block_device() {
                "b"
            } else {
                return None;
            };
            let rdev = m.rdev();
            Some((
                kind.to_string(),
                i64::try_from(nix::sys::stat::major(rdev)).unwrap_or(-1),
                i64::try_from(nix::sys::stat::minor(rdev)).unwrap_or(-1),
            ))
        });
        out.insert(path.to_string(), node);
    }
    out
}

/// Whether `path` is a per-GPU NVIDIA node (`/dev/nvidia0`, `/dev/nvidia7`…): the nodes a
/// policy cannot list in advance, which the Landlock ruleset gets one rule each for.
pub fn is_nvidia_gpu_node(path: &str) -> bool {
    path.strip_prefix("/dev/nvidia").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `path` is one of the NVIDIA driver's device node names.
pub fn is_nvidia_name(path: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some(rest) = path.strip_prefix("/dev/nvidia") else { return false };
    digits(rest)
        || matches!(rest, "ctl" | "-uvm" | "-uvm-tools" | "-modeset" | "-nvswitchctl")
        || rest.strip_prefix("-caps/nvidia-cap").is_some_and(digits)
        || rest.strip_prefix("-nvswitch").is_some_and(digits)
}

/// What the request's devices come to: the device-cgroup entries, the controls to report, and
/// the per-GPU NVIDIA nodes (judged by number) that the Landlock ruleset must open.
#[derive(Debug, Default)]
pub(super) struct DeviceVerdict {
    pub allowed: Vec<DeviceId>,
    pub controls: Vec<Control>,
    pub gpu_nodes: Vec<String>,
}

pub(super) fn check_devices(
    cfg: &Value,
    policy: &SandboxPolicy,
    facts: &HostFacts,
    host: &HostDevices,
) -> Result<DeviceVerdict, Refusal> {
    let mut allowed = Vec::new();
    let mut names = Vec::new();
    let mut gpu_nodes = Vec::new();
    let refuse = |path: &str, why: String| Refusal::DeviceNumber(path.into(), policy.name.clone(), why);
    if let Some(devs) = cfg.pointer("/linux/devices").and_then(Value::as_array) {
        for d in devs {
            let path = d.get("path").and_then(Value::as_str).unwrap_or("");
            let kind = d.get("type").and_then(Value::as_str).unwrap_or("").to_string();
            let major = d.get("major").and_then(Value::as_i64);
            let minor = d.get("minor").and_then(Value::as_i64);
            if kind == "p" {
                // A FIFO reaches no hardware: nothing to judge, no device-cgroup rule.
                names.push(path.to_string());
                continue;
            }
            let (Some(major), Some(minor)) = (major, minor) else {
                return Err(refuse(path, "it has no device number; give its type, major and minor".into()));
            };
            if policy.devices.gpu.is_some() && is_nvidia_name(path) {
                if kind != "c" || !facts.nvidia_majors.contains(&major) {
                    let majors: Vec<String> = facts.nvidia_majors.iter().map(ToString::to_string).collect();
                    return Err(refuse(
                        path,
                        format!(
                            "`{kind} {major}:{minor}` is not an NVIDIA device (a character device with major {})",
                            majors.join(" or ")
                        ),
                    ));
                }
                if is_nvidia_gpu_node(path) {
                    gpu_nodes.push(path.to_string());
                }
            } else if policy.devices.allow.iter().any(|a| a.path == path) {
                match host.get(path).cloned().flatten() {
                    Some((hk, hmaj, hmin)) if hk == kind && hmaj == major && hmin == minor => {}
                    Some((hk, hmaj, hmin)) => {
                        return Err(refuse(
                            path,
                            format!(
                            "the request says `{kind} {major}:{minor}` and the host's `{path}` is `{hk} {hmaj}:{hmin}`"
                        ),
                        ))
                    }
                    None => {
                        return Err(refuse(
                            path,
                            format!("the host has no device node `{path}` to check its number against"),
                        ))
                    }
                }
            } else {
                return Err(Refusal::Device(path.into(), policy.name.clone()));
            }
            allowed.push((kind, major, Some(minor)));
            names.push(path.to_string());
        }
    }
    let mut controls = Vec::new();
    if !names.is_empty() || policy.devices.gpu.is_some() {
        let mut detail = names.join(", ");
        if policy.devices.gpu.is_some() {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            let majors: Vec<String> = facts.nvidia_majors.iter().map(ToString::to_string).collect();
            detail.push_str(&format!("NVIDIA (char majors {})", majors.join(", ")));
        }
        controls.push(Control { control: "devices", by: "runtime (device cgroup)", detail });
    }
    Ok(DeviceVerdict { allowed, controls, gpu_nodes })
}
