//! `semble-shim doctor`'s GPU checks: the NVIDIA device nodes (judged by type and number, as
//! `create` will judge them), the driver's version and its `nvidia-uvm` module, the CDI specs an
//! engine would apply (and whether their hooks would be refused), what each installed GPU policy
//! would grant here, and whether Landlock refusals can be explained (audit).
//!
//! Every host path comes in through [`GpuHost`], so the checks run against fakes in tests.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use semble_policy::compile::landlock::{GPU_CAPS_DIR, GPU_NODES, GPU_PROC};
use semble_policy::SandboxPolicy;

use crate::bundle::is_nvidia_name;
use crate::doctor::{Check, Status};

/// Where the GPU checks look.
#[derive(Debug, Clone)]
pub struct GpuHost {
    /// The device directory (`/dev`).
    pub dev: PathBuf,
    /// The NVIDIA driver's procfs directory (`/proc/driver/nvidia`).
    pub proc_nvidia: PathBuf,
    /// The kernel's list of device majors (`/proc/devices`).
    pub proc_devices: PathBuf,
    /// CDI spec directories, lowest priority first (`/etc/cdi`, `/var/run/cdi`).
    pub cdi_dirs: Vec<PathBuf>,
}

impl Default for GpuHost {
    fn default() -> GpuHost {
        GpuHost {
            dev: "/dev".into(),
            proc_nvidia: "/proc/driver/nvidia".into(),
            proc_devices: "/proc/devices".into(),
            cdi_dirs: vec!["/etc/cdi".into(), "/var/run/cdi".into()],
        }
    }
}

fn check(name: &str, status: Status, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name: name.into(), status, detail: detail.into(), fix: fix.into() }
}

/// An NVIDIA-named node of the host: its name under `/dev`, type and numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `/dev/...`.
    pub path: String,
    /// `c`, `b` or `-` (not a device).
    pub kind: char,
    /// Major.
    pub major: i64,
    /// Minor.
    pub minor: i64,
}

/// The NVIDIA-named nodes under `dev` (and `dev/nvidia-caps`), as `/dev/...` paths.
pub fn nodes(dev: &Path) -> Vec<Node> {
    let mut out = Vec::new();
    for (dir, prefix) in [(dev.to_path_buf(), "/dev"), (dev.join("nvidia-caps"), "/dev/nvidia-caps")] {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = format!("{prefix}/{name}");
            if !is_nvidia_name(&path) {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(e.path()) else { continue };
            let t = m.file_type();
            let kind = if t.is_char_device() {
                'c'
            } else if t.is_block_device() {
                'b'
            } else {
                '-'
            };
            let rdev = m.rdev();
            let major = i64::try_from(nix::sys::stat::major(rdev)).unwrap_or(-1);
            let minor = i64::try_from(nix::sys::stat::minor(rdev)).unwrap_or(-1);
            out.push(Node { path, kind, major, minor });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The driver's version from `/proc/driver/nvidia/version` (`NVRM version: … 580.65.06 …`).
pub fn driver_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version"))?;
    line.split_whitespace()
        .find(|w| {
            w.split('.').count() >= 2 && w.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// A CDI spec file: its kind, device names, and the hook programs it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdiSpec {
    /// The file.
    pub file: PathBuf,
    /// `vendor/class`.
    pub kind: String,
    /// Device names (`0`, `all`, a UUID…).
    pub devices: Vec<String>,
    /// Hook programs (paths), from the common edits and every device's.
    pub hooks: Vec<String>,
}

/// Read the CDI specs of `dirs` (YAML or JSON); a file that cannot be read is reported as such.
pub fn cdi_specs(dirs: &[PathBuf]) -> Vec<Result<CdiSpec, (PathBuf, String)>> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else { continue };
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")))
            .collect();
        files.sort();
        for f in files {
            out.push(read_cdi(&f).map_err(|e| (f.clone(), e)));
        }
    }
    out
}

fn read_cdi(f: &Path) -> Result<CdiSpec, String> {
    let text = std::fs::read_to_string(f).map_err(|e| format!("cannot read it: {e}"))?;
    let v = semble_policy::yaml::parse(&text).map_err(|e| format!("not YAML or JSON: {}", e.message))?.to_json();
    let kind = v.get("kind").and_then(|k| k.as_str()).ok_or("no `kind`")?.to_string();
    let hooks_of = |edits: Option<&serde_json::Value>| -> Vec<String> {
        edits
            .and_then(|e| e.get("hooks"))
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
            .filter_map(|h| h.get("path").and_then(|p| p.as_str()).map(str::to_string))
            .collect()
    };
    let mut hooks = hooks_of(v.get("containerEdits"));
    let mut devices = Vec::new();
    for d in v.get("devices").and_then(|d| d.as_array()).into_iter().flatten() {
        if let Some(n) = d.get("name").and_then(|n| n.as_str()) {
            devices.push(n.to_string());
        }
        hooks.extend(hooks_of(d.get("containerEdits")));
    }
    hooks.sort();
    hooks.dedup();
    Ok(CdiSpec { file: f.to_path_buf(), kind, devices, hooks })
}

/// Every GPU check. `gpu_policies`: the installed policies with `devices.gpu`; `allowed_hooks`:
/// the shim's `--allow-hook` list; `nvidia_majors`: the NVIDIA majors `create` accepts.
pub fn checks(
    host: &GpuHost,
    gpu_policies: &[SandboxPolicy],
    allowed_hooks: &[PathBuf],
    nvidia_majors: &std::collections::BTreeSet<i64>,
) -> Vec<Check> {
    let mut out = Vec::new();
    let wanted = !gpu_policies.is_empty();
    let found = nodes(&host.dev);
    let majors: Vec<String> = nvidia_majors.iter().map(i64::to_string).collect();
    // Nodes: each judged as `create` judges a request's.
    let bad: Vec<&Node> = found.iter().filter(|n| n.kind != 'c' || !nvidia_majors.contains(&n.major)).collect();
    if !bad.is_empty() {
        let list: Vec<String> =
            bad.iter().map(|n| format!("{} is `{} {}:{}`", n.path, n.kind, n.major, n.minor)).collect();
        out.push(check(
            "gpu devices",
            Status::Fail,
            format!(
                "{}: not NVIDIA devices (character devices with major {}); a GPU container given them is refused",
                list.join(", "),
                majors.join(" or ")
            ),
            "remove or recreate those nodes (`nvidia-modprobe`, or the driver's own udev rules)",
        ));
    }
    let good: Vec<&Node> = found.iter().filter(|n| n.kind == 'c' && nvidia_majors.contains(&n.major)).collect();
    let gpus: Vec<&str> =
        good.iter().map(|n| n.path.as_str()).filter(|p| crate::bundle::is_nvidia_gpu_node(p)).collect();
    if good.is_empty() {
        out.push(check(
            "gpu devices",
            if wanted { Status::Warn } else { Status::Ok },
            "no NVIDIA device nodes",
            if wanted {
                "load the NVIDIA driver (`nvidia-smi` creates the nodes), or GPU policies' containers get no GPU"
            } else {
                ""
            },
        ));
    } else {
        let list: Vec<String> = good.iter().map(|n| format!("{} ({}:{})", n.path, n.major, n.minor)).collect();
        out.push(check("gpu devices", Status::Ok, format!("{} GPU(s): {}", gpus.len(), list.join(", ")), ""));
    }
    // The driver.
    match std::fs::read_to_string(host.proc_nvidia.join("version")) {
        Ok(text) => {
            let v = driver_version(&text).unwrap_or_else(|| "version unreadable".into());
            let uvm = std::fs::read_to_string(&host.proc_devices)
                .map(|d| d.lines().any(|l| l.split_whitespace().nth(1) == Some("nvidia-uvm")))
                .unwrap_or(false);
            if uvm {
                out.push(check("gpu driver", Status::Ok, format!("NVIDIA {v}, nvidia-uvm loaded"), ""));
            } else {
                out.push(check(
                    "gpu driver",
                    Status::Warn,
                    format!("NVIDIA {v}, but nvidia-uvm is not loaded: CUDA cannot allocate memory"),
                    "`modprobe nvidia-uvm` (or `nvidia-modprobe -u -c 0`) before starting GPU containers",
                ));
            }
        }
        Err(_) => out.push(check(
            "gpu driver",
            if wanted { Status::Warn } else { Status::Ok },
            format!("no NVIDIA driver loaded ({} is missing)", host.proc_nvidia.join("version").display()),
            if wanted { "install and load the NVIDIA driver" } else { "" },
        )),
    }
    // CDI specs.
    let specs = cdi_specs(&host.cdi_dirs);
    if specs.is_empty() {
        let dirs: Vec<String> = host.cdi_dirs.iter().map(|d| d.display().to_string()).collect();
        out.push(check(
            "cdi specs",
            if wanted { Status::Warn } else { Status::Ok },
            format!("none in {}", dirs.join(", ")),
            if wanted {
                "`nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` for `podman run --device nvidia.com/gpu=all`; without one, list the nodes in the container's configuration"
            } else {
                ""
            },
        ));
    }
    for s in specs {
        match s {
            Ok(spec) => {
                let refused: Vec<&String> =
                    spec.hooks.iter().filter(|h| !allowed_hooks.iter().any(|a| a.as_os_str() == h.as_str())).collect();
                let detail = format!(
                    "{}: {} ({} device(s): {}), hooks: {}",
                    spec.file.display(),
                    spec.kind,
                    spec.devices.len(),
                    spec.devices.join(", "),
                    if spec.hooks.is_empty() { "none".into() } else { spec.hooks.join(", ") }
                );
                if refused.is_empty() {
                    out.push(check("cdi spec", Status::Ok, detail, ""));
                } else {
                    let list: Vec<&str> = refused.iter().map(|h| h.as_str()).collect();
                    out.push(check(
                        "cdi spec",
                        Status::Warn,
                        format!("{detail}; containers given these devices are refused: hook {} runs on the host and is not allowed", list.join(", ")),
                        format!("allow it (semble-shim --allow-hook {}) — it then runs with its own environment, never the container's — or generate the spec without hooks", list.join(",")),
                    ));
                }
            }
            Err((f, why)) => out.push(check(
                "cdi spec",
                Status::Warn,
                format!("{}: {why}", f.display()),
                "engines refuse devices from a broken spec: regenerate it",
            )),
        }
    }
    // What each GPU policy would grant here.
    for p in gpu_policies {
        let caps = nodes(&host.dev).iter().filter(|n| n.path.starts_with(GPU_CAPS_DIR)).count();
        let mut grant = vec![
            format!("device cgroup: character majors {}", majors.join(", ")),
            format!(
                "Landlock read, write, ioctl: {}{}",
                GPU_NODES.join(", "),
                if gpus.is_empty() {
                    ", and each /dev/nvidiaN given".to_string()
                } else {
                    format!(", {}", gpus.join(", "))
                }
            ),
            format!("Landlock read: {GPU_CAPS_DIR} ({caps} MIG capability node(s))"),
            format!("Landlock read and write of existing files: {GPU_PROC} (CUDA names its threads there)"),
            "seccomp: get_mempolicy, set_mempolicy, mbind".to_string(),
        ];
        if p.filesystem.is_none() {
            grant.retain(|g| !g.starts_with("Landlock"));
            grant.push("no Landlock (the policy has no filesystem section)".into());
        }
        out.push(check(&format!("gpu policy {}", p.name), Status::Ok, grant.join("; "), ""));
    }
    out
}

/// Whether the kernel logs Landlock refusals and semble can read them: the Landlock ABI, and
/// audit's state (`status`: `None` when it could not be read).
pub fn landlock_audit_check(abi: Option<u32>, status: Option<crate::sys::audit::Status>, enable: bool) -> Check {
    let name = "landlock refusals";
    match abi {
        Some(a) if a >= 7 => {}
        Some(a) => {
            return check(
                name,
                Status::Warn,
                format!("not explained: Landlock ABI {a} does not log refusals (Linux 6.15, ABI 7)"),
                "`semble-shim explain-bundle BUNDLE` lists each path's Landlock rights",
            )
        }
        None => return check(name, Status::Ok, "no Landlock", ""),
    }
    match status {
        None => check(
            name,
            Status::Warn,
            "the kernel logs them (ABI 7); audit's state is unreadable (doctor needs root)",
            "run doctor as root",
        ),
        Some(s) if s.enabled == 0 && !enable => check(
            name,
            Status::Warn,
            "not explained: audit is off, so the kernel logs nothing",
            "start auditd (or `auditctl -e 1`), or give the shim --enable-audit (host-wide: the kernel then also prints each audit record in its log)",
        ),
        Some(s) if s.enabled == 0 => {
            check(name, Status::Ok, "explained: audit is off; the shim turns it on at the first container (--enable-audit)", "")
        }
        Some(s) => check(
            name,
            Status::Ok,
            if s.pid != 0 {
                format!("explained: audit on, auditd (pid {}) keeps a copy", s.pid)
            } else {
                "explained: audit on, no auditd".into()
            },
            "",
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mknod(p: &Path, kind: nix::sys::stat::SFlag, major: u64, minor: u64) -> bool {
        nix::sys::stat::mknod(
            p,
            kind,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(major, minor),
        )
        .is_ok()
    }

    fn policy(spec: &str) -> SandboxPolicy {
        let src =
            format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: gpu}}\nspec:\n{spec}");
        semble_policy::parse(&src).unwrap().policy
    }

    fn host(t: &Path) -> GpuHost {
        GpuHost {
            dev: t.join("dev"),
            proc_nvidia: t.join("proc/driver/nvidia"),
            proc_devices: t.join("proc/devices"),
            cdi_dirs: vec![t.join("etc/cdi"), t.join("run/cdi")],
        }
    }

    #[test]
    fn the_driver_version_comes_from_its_proc_file() {
        let v = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  (dvs-builder@U16-I3-B03-4-3)  Sun Jul 27 06:54:38 UTC 2025\nGCC version:  gcc version 12.2.0\n";
        assert_eq!(driver_version(v).as_deref(), Some("580.65.06"));
        assert_eq!(driver_version("nothing"), None);
    }

    #[test]
    fn a_fake_gpu_host_is_judged_like_a_request() {
        let t = tempfile::tempdir().unwrap();
        let h = host(t.path());
        for d in ["dev/nvidia-caps", "proc/driver/nvidia", "etc/cdi", "run/cdi"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        use nix::sys::stat::SFlag;
        if !mknod(&h.dev.join("nvidia0"), SFlag::S_IFCHR, 195, 0) {
            return; // not root: mknod needs CAP_MKNOD (the e2e doctor test runs as root)
        }
        assert!(mknod(&h.dev.join("nvidia1"), SFlag::S_IFCHR, 195, 1));
        assert!(mknod(&h.dev.join("nvidiactl"), SFlag::S_IFCHR, 195, 255));
        assert!(mknod(&h.dev.join("nvidia-uvm"), SFlag::S_IFCHR, 237, 0));
        assert!(mknod(&h.dev.join("nvidia-caps/nvidia-cap1"), SFlag::S_IFCHR, 238, 1));
        std::fs::write(h.dev.join("null"), "").unwrap(); // not an NVIDIA name: ignored
        std::fs::write(
            h.proc_nvidia.join("version"),
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Release Build\n",
        )
        .unwrap();
        std::fs::write(
            &h.proc_devices,
            "Character devices:\n195 nvidia\n237 nvidia-uvm\n238 nvidia-caps\n\nBlock devices:\n",
        )
        .unwrap();
        std::fs::write(
            h.cdi_dirs[0].join("nvidia.yaml"),
            "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n  containerEdits: {deviceNodes: [{path: /dev/nvidia0}]}\n- name: all\n  containerEdits: {deviceNodes: [{path: /dev/nvidia0}]}\ncontainerEdits:\n  hooks:\n  - {hookName: createContainer, path: /usr/bin/nvidia-ctk, args: [nvidia-ctk, hook, update-ldcache]}\n",
        )
        .unwrap();
        let majors = crate::host::nvidia_majors(&std::fs::read_to_string(&h.proc_devices).unwrap());
        let gpu = policy(
            "  filesystem: {readOnly: [/usr], execute: [/bin]}\n  devices: {gpu: nvidia}\n  network: {mode: none}\n",
        );
        let c = checks(&h, std::slice::from_ref(&gpu), &[], &majors);
        let get = |name: &str| c.iter().find(|x| x.name == name).unwrap().clone();
        let dev = get("gpu devices");
        assert_eq!(dev.status, Status::Ok, "{dev:?}");
        assert!(
            dev.detail.starts_with("2 GPU(s)") && dev.detail.contains("/dev/nvidia-caps/nvidia-cap1 (238:1)"),
            "{dev:?}"
        );
        assert_eq!(get("gpu driver").detail, "NVIDIA 580.95.05, nvidia-uvm loaded");
        let spec = get("cdi spec");
        assert_eq!(spec.status, Status::Warn, "its hook is not allowed: {spec:?}");
        assert!(spec.fix.contains("--allow-hook /usr/bin/nvidia-ctk"), "{spec:?}");
        let grant = get("gpu policy gpu");
        assert!(
            grant.detail.contains("/dev/nvidia0, /dev/nvidia1") && grant.detail.contains("1 MIG capability node"),
            "{grant:?}"
        );
        // With the hook allowed the spec is fine.
        let c = checks(&h, std::slice::from_ref(&gpu), &[PathBuf::from("/usr/bin/nvidia-ctk")], &majors);
        assert_eq!(c.iter().find(|x| x.name == "cdi spec").unwrap().status, Status::Ok);
        // A disk under an NVIDIA name fails, as `create` would refuse it.
        assert!(mknod(&h.dev.join("nvidia7"), SFlag::S_IFBLK, 7, 0));
        let c = checks(&h, &[gpu], &[], &majors);
        let bad = c.iter().find(|x| x.name == "gpu devices" && x.status == Status::Fail).unwrap();
        assert!(bad.detail.contains("/dev/nvidia7 is `b 7:0`"), "{bad:?}");
        // Without the driver and GPU policies, nothing is wrong.
        let empty = host(&t.path().join("none"));
        let c = checks(&empty, &[], &[], &majors);
        assert!(c.iter().all(|x| x.status == Status::Ok), "{c:?}");
    }

    #[test]
    fn landlock_refusals_are_explained_only_where_audit_can_be_read() {
        use crate::sys::audit::Status as A;
        assert_eq!(landlock_audit_check(Some(6), None, false).status, Status::Warn);
        let off = landlock_audit_check(Some(7), Some(A { enabled: 0, pid: 0 }), false);
        assert!(off.status == Status::Warn && off.fix.contains("--enable-audit"), "{off:?}");
        assert_eq!(landlock_audit_check(Some(7), Some(A { enabled: 0, pid: 0 }), true).status, Status::Ok);
        assert!(landlock_audit_check(Some(7), Some(A { enabled: 1, pid: 42 }), false).detail.contains("pid 42"));
    }
}
