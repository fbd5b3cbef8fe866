//! `semble-shim doctor`: is this node ready to run sandboxes?
//!
//! Checks what an operator needs before pointing a RuntimeClass (or Podman, or containerd) at
//! semble-shim, each as one ✓/!/✗ line with the fix for anything wrong:
//!
//! * semble-init is found and executable;
//! * each backend is found (runc, runsc, embedded) and — with `--run` — actually starts a
//!   container: a busybox `/bin/true` bundle run through this very shim with the built-in
//!   policy;
//! * kernel: Landlock ABI, seccomp user notification (and whether runc accepts
//!   `listenerPath`), cgroup v2, SELinux state;
//! * whether Landlock refusals can be explained (Landlock ABI 7 and the kernel's audit);
//! * the policy directory and every policy in it;
//! * GPUs ([`crate::doctor_gpu`]): the NVIDIA device nodes, the driver, the CDI specs an engine
//!   would apply (and their hooks), what each installed GPU policy would grant here;
//! * run by an ordinary user, rootless Podman's needs ([`crate::doctor_rootless`]): subordinate
//!   ids, the id-map helpers, the runtime directory, the network helper, delegated cgroups;
//! * containerd's configuration (the file and its `imports`): each handler whose `BinaryName` is
//!   semble-shim (or a `semble-shim-*` link) must point at an existing file, and the backend the
//!   link selects must be present; Podman's and CRI-O's configuration naming the shim.
//!
//! The exit status is 1 when anything is ✗ (a handler would fail), 0 otherwise; `!` lines are
//! warnings (a policy needing what is missing would be refused, fail-closed).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::backend;
use crate::bundle::BackendKind;
use crate::settings::{is_executable, Settings};

/// One check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// `ok`, `warn` or `fail`.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it (empty when ok).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but a policy needing this would be refused.
    Warn,
    /// Something that is configured would fail.
    Fail,
}

/// Options of `doctor`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Start a container under each backend found.
    pub run: bool,
    /// containerd's main configuration file.
    pub containerd_config: PathBuf,
    /// A busybox binary for the `--run` bundle.
    pub busybox: PathBuf,
    /// CDI spec directories (default `/etc/cdi`, `/var/run/cdi`).
    pub cdi_dirs: Vec<PathBuf>,
}

pub(crate) fn check(
    name: impl Into<String>,
    status: Status,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check { name: name.into(), status, detail: detail.into(), fix: fix.into() }
}

fn version_of(bin: &Path, arg: &str) -> String {
    Command::new(bin)
        .arg(arg)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "version unknown".into())
}

/// Run every check.
pub fn run(settings: &Settings, opts: &Options) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(check("semble-shim", Status::Ok, format!("version {}", env!("CARGO_PKG_VERSION")), ""));
    match settings.init_binary() {
        Some(p) if is_executable(&p) => out.push(check("semble-init", Status::Ok, p.display().to_string(), "")),
        Some(p) => out.push(check(
            "semble-init",
            Status::Fail,
            format!("{} is not an executable file", p.display()),
            "install the static semble-init beside semble-shim (or pass --init PATH)",
        )),
        None => out.push(check(
            "semble-init",
            Status::Fail,
            "not found beside semble-shim",
            "install the static semble-init beside semble-shim (or pass --init PATH)",
        )),
    }
    let mut found = Vec::new();
    for kind in [BackendKind::Runc, BackendKind::Runsc, BackendKind::Embedded] {
        match backend::find(settings, kind) {
            Ok(b) => {
                let detail = match kind {
                    BackendKind::Embedded => "built in (youki's libcontainer)".to_string(),
                    _ => format!("{} ({})", b.binary.display(), version_of(&b.binary, "--version")),
                };
                out.push(check(format!("backend {}", kind.as_str()), Status::Ok, detail, ""));
                found.push(kind);
            }
            Err(e) => out.push(check(
                format!("backend {}", kind.as_str()),
                Status::Warn,
                e.to_string(),
                match kind {
                    _ if !e.installable() => "policies that name only this backend are refused here; see the detail",
                    BackendKind::Runc => "apt-get install runc (or pass --runc PATH)",
                    BackendKind::Runsc => "install runsc (gVisor) on PATH, or pass --runsc PATH; policies whose backend is gvisor without a fallback are refused",
                    BackendKind::Embedded => "use a build of semble-shim with the embedded runtime",
                },
            )),
        }
    }
    if opts.run {
        for kind in &found {
            out.push(start_container(settings, *kind, opts));
        }
    }
    out.extend(kernel_checks(settings));
    let status = crate::sys::audit::status().ok();
    out.push(crate::doctor_gpu::landlock_audit_check(crate::sys::landlock_abi(), status, settings.enable_audit));
    out.extend(policy_checks(settings));
    let mut host = crate::doctor_gpu::GpuHost::default();
    if !opts.cdi_dirs.is_empty() {
        host.cdi_dirs = opts.cdi_dirs.clone();
    }
    let majors = crate::host::nvidia_majors(&std::fs::read_to_string(&host.proc_devices).unwrap_or_default());
    out.extend(crate::doctor_gpu::checks(&host, &gpu_policies(settings), &settings.allowed_hooks, &majors));
    out.extend(containerd_checks(settings, &opts.containerd_config));
    out.extend(engine_mentions());
    if settings.rootless {
        out.extend(crate::doctor_rootless::checks(&crate::doctor_rootless::RootlessHost::probe()));
    }
    out
}

/// Start `/bin/true` in a busybox bundle under `kind`, through this shim, with the built-in
/// policy, in a scratch state directory; clean up whatever happens.
fn start_container(settings: &Settings, kind: BackendKind, opts: &Options) -> Check {
    let name = format!("run under {}", kind.as_str());
    let fail = |detail: String| {
        check(
            name.clone(),
            Status::Fail,
            detail,
            format!(
                "run `semble-shim --backend {} --debug run ...` on a test bundle to see the whole error",
                kind.as_str()
            ),
        )
    };
    if !opts.busybox.is_file() {
        return check(
            name,
            Status::Warn,
            format!("not tried: {} is missing", opts.busybox.display()),
            "apt-get install busybox-static, or pass --busybox PATH",
        );
    }
    let Ok(dir) = tempfile::Builder::new().prefix("semble-doctor-").tempdir() else {
        return fail("cannot create a temporary directory".into());
    };
    let rootfs = dir.path().join("bundle/rootfs");
    let setup = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(rootfs.join("bin"))?;
        for d in ["proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d))?;
        }
        std::fs::copy(&opts.busybox, rootfs.join("bin/busybox"))?;
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/true"))?;
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh"))?;
        let mut spec = oci_spec::runtime::Spec::default();
        if let Some(p) = spec.process_mut() {
            p.set_args(Some(vec!["/bin/true".into()]));
            p.set_terminal(Some(false));
        }
        let text = serde_json::to_vec_pretty(&spec).map_err(std::io::Error::other)?;
        std::fs::write(dir.path().join("bundle/config.json"), text)
    })();
    if let Err(e) = setup {
        return fail(format!("cannot build the test bundle: {e}"));
    }
    let Ok(me) = std::env::current_exe() else { return fail("cannot find this executable".into()) };
    let id = format!("semble-doctor-{}", std::process::id());
    let mut cmd = Command::new(&me);
    cmd.arg("--root").arg(dir.path().join("state")).arg("--backend").arg(kind.as_str());
    if let Some(p) = &settings.runc {
        cmd.arg("--runc").arg(p);
    }
    if let Some(p) = &settings.runsc {
        cmd.arg("--runsc").arg(p);
    }
    if let Some(p) = &settings.init {
        cmd.arg("--init").arg(p);
    }
    if let Some(p) = &settings.runsc_platform {
        cmd.arg("--runsc-platform").arg(p);
    }
    // A minimal policy for this backend: not the directory's default, which may ask for more
    // than a probe needs.
    let backend = match kind {
        BackendKind::Runc => "runc",
        BackendKind::Runsc => "gvisor",
        BackendKind::Embedded => "embedded",
    };
    let policy = format!(
        "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: semble-doctor}}\nspec:\n  runtime: {{backend: {backend}}}\n  network: {{mode: none}}\n"
    );
    let policy_file = dir.path().join("doctor.yaml");
    if let Err(e) = std::fs::write(&policy_file, policy) {
        return fail(format!("cannot write the test policy: {e}"));
    }
    cmd.arg("--policy").arg(&policy_file);
    cmd.args(["run", "--bundle"]).arg(dir.path().join("bundle")).arg(&id);
    cmd.env_remove("SEMBLE_POLICY");
    let started = std::time::Instant::now();
    let out = cmd.output();
    let _ = Command::new(&me).arg("--root").arg(dir.path().join("state")).args(["delete", "--force", &id]).output();
    match out {
        Ok(o) if o.status.success() => {
            check(name, Status::Ok, format!("a container ran and exited 0 in {:.0?}", started.elapsed()), "")
        }
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let line = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
            fail(format!("exit {}: {line}", o.status.code().unwrap_or(-1)))
        }
        Err(e) => fail(format!("cannot run {}: {e}", me.display())),
    }
}

fn kernel_checks(settings: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    match crate::sys::landlock_abi() {
        Some(v) => out.push(check("landlock", Status::Ok, format!("ABI {v}"), "")),
        None => out.push(check(
            "landlock",
            Status::Warn,
            "not available: policies with `filesystem.enforcement: required` are refused",
            "boot a kernel ≥ 5.13 with CONFIG_SECURITY_LANDLOCK and `lsm=...,landlock`",
        )),
    }
    let actions = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
    if actions.split_whitespace().any(|a| a == "user_notif") {
        let runc_notify = backend::find(settings, BackendKind::Runc)
            .ok()
            .and_then(|b| Command::new(&b.binary).arg("features").output().ok())
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("SCMP_ACT_NOTIFY"));
        let detail = match runc_notify {
            Some(true) => "user notification available; runc accepts SCMP_ACT_NOTIFY and listenerPath",
            Some(false) => "user notification available; this runc does not list SCMP_ACT_NOTIFY",
            None => "user notification available",
        };
        out.push(check("seccomp notify", Status::Ok, detail, ""));
    } else {
        out.push(check(
            "seccomp notify",
            Status::Warn,
            "the kernel does not offer SECCOMP_RET_USER_NOTIF",
            "denials are still enforced (errno); live explanations need Linux ≥ 5.0",
        ));
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let ctl = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        let missing: Vec<&str> =
            ["memory", "pids", "cpu"].into_iter().filter(|c| !ctl.split_whitespace().any(|x| x == *c)).collect();
        if missing.is_empty() {
            out.push(check("cgroups", Status::Ok, "v2 (unified), memory, pids and cpu controllers", ""));
        } else {
            out.push(check(
                "cgroups",
                Status::Warn,
                format!("v2 without the {} controller(s): those limits cannot be enforced", missing.join(", ")),
                "enable the controllers in the root cgroup's cgroup.subtree_control",
            ));
        }
    } else {
        out.push(check("cgroups", Status::Warn, "v1 (legacy)", "boot with systemd.unified_cgroup_hierarchy=1"));
    }
    let selinux = match std::fs::read_to_string("/sys/fs/selinux/enforce").map(|s| s.trim().to_string()) {
        Ok(s) if s == "1" => "enforcing",
        Ok(_) => "permissive",
        Err(_) => "disabled (policies with `selinux.enforcement: required` are refused)",
    };
    out.push(check("selinux", Status::Ok, selinux, ""));
    out
}

fn policy_checks(settings: &Settings) -> Vec<Check> {
    let dir = &settings.policy_dir;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![check(
            "policies",
            Status::Warn,
            format!("{} does not exist: only --policy and the built-in default can be used", dir.display()),
            format!("install -d {} and copy policies there (NAME.yaml)", dir.display()),
        )];
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut good = 0;
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                out.push(check(
                    format!("policy {}", f.display()),
                    Status::Fail,
                    format!("cannot read it: {e}"),
                    "fix its permissions",
                ));
                continue;
            }
        };
        match semble_policy::parse(&text) {
            Ok(p) => {
                let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                if p.policy.name != stem && stem != "default" {
                    out.push(check(
                        format!("policy {}", f.display()),
                        Status::Fail,
                        format!(
                            "its metadata.name is `{}`, but the annotation semble.dev/policy={stem} selects this file",
                            p.policy.name
                        ),
                        format!("rename the file to {}.yaml or the policy to `{stem}`", p.policy.name),
                    ));
                } else {
                    good += 1;
                }
            }
            Err(e) => {
                let first = e.diagnostics.first().map(|d| d.render(Some(&f.display().to_string()))).unwrap_or_default();
                out.push(check(
                    format!("policy {}", f.display()),
                    Status::Fail,
                    first.lines().next().unwrap_or("invalid").to_string(),
                    format!("containers selecting it are refused; run `semble-policy validate {}`", f.display()),
                ));
            }
        }
    }
    out.insert(0, check("policies", Status::Ok, format!("{good} valid in {}", dir.display()), ""));
    out
}

/// The installed policies that pass GPUs through.
fn gpu_policies(settings: &Settings) -> Vec<semble_policy::SandboxPolicy> {
    let Ok(rd) = std::fs::read_dir(&settings.policy_dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        rd.flatten().map(|e| e.path()).filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml")).collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|t| semble_policy::parse(&t).ok())
        .map(|p| p.policy)
        .filter(|p| p.devices.gpu.is_some())
        .collect()
}

/// containerd's configuration: the file and every file its `imports` name.
fn containerd_checks(settings: &Settings, config: &Path) -> Vec<Check> {
    let Ok(main) = std::fs::read_to_string(config) else {
        return vec![check(
            "containerd",
            Status::Ok,
            format!("{} not present (containerd not configured here)", config.display()),
            "",
        )];
    };
    let mut texts = vec![(config.to_path_buf(), main.clone())];
    for pattern in imports(&main) {
        for f in glob_simple(&pattern, config) {
            if let Ok(t) = std::fs::read_to_string(&f) {
                texts.push((f, t));
            }
        }
    }
    let mut out = Vec::new();
    let merges_by_plugin = containerd_major().is_some_and(|major| major < 2);
    let mut handlers = 0;
    for (i, (file, text)) in texts.iter().enumerate() {
        let Ok(doc) = text.parse::<toml::Table>() else {
            out.push(check(
                format!("containerd {}", file.display()),
                Status::Fail,
                "not valid TOML",
                "fix the file; containerd will not start with it",
            ));
            continue;
        };
        let cri = doc.get("plugins").and_then(|p| p.get("io.containerd.grpc.v1.cri"));
        if i > 0 && merges_by_plugin && cri.is_some() {
            // containerd 1.x merges an import by replacing each plugin's whole section.
            out.push(check(
                format!("containerd {}", file.display()),
                Status::Warn,
                format!("this imported file replaces the whole CRI section of {} on containerd 1.x: unless it repeats the node's full CRI configuration, the node's own settings (sandbox_image, SystemdCgroup, other handlers) are lost", config.display()),
                "move its tables into config.toml itself (deploy/node/install.sh does this for semble's handlers)",
            ));
        }
        let runtimes = cri.and_then(|c| c.get("containerd")).and_then(|c| c.get("runtimes")).and_then(|r| r.as_table());
        for (name, rt) in runtimes.into_iter().flatten() {
            let Some(bin) = rt.get("options").and_then(|o| o.get("BinaryName")).and_then(|b| b.as_str()) else {
                continue;
            };
            let base = Path::new(bin).file_name().and_then(|f| f.to_str()).unwrap_or("");
            if !base.starts_with("semble-shim") {
                continue;
            }
            handlers += 1;
            let label = format!("containerd handler {name}");
            if !is_executable(Path::new(bin)) {
                out.push(check(
                    label,
                    Status::Fail,
                    format!("BinaryName {bin} does not exist"),
                    "install semble-shim and its handler links (deploy/node/install.sh)",
                ));
                continue;
            }
            let needs = match base {
                "semble-shim-runsc" => Some(BackendKind::Runsc),
                "semble-shim-runc" => Some(BackendKind::Runc),
                _ => None,
            };
            match needs.map(|k| (k, backend::find(settings, k))) {
                Some((k, Err(e))) => out.push(check(
                    label,
                    Status::Fail,
                    format!("{bin} selects the {} backend: {e}", k.as_str()),
                    format!("install {} on this node, or remove the handler from {}", k.as_str(), file.display()),
                )),
                _ => {
                    let ann = rt
                        .get("pod_annotations")
                        .and_then(|a| a.as_array())
                        .is_some_and(|a| a.iter().any(|v| v.as_str().is_some_and(|s| s.starts_with("semble.dev/"))));
                    if ann {
                        out.push(check(label, Status::Ok, format!("{bin} ({})", file.display()), ""));
                    } else {
                        out.push(check(
                            label,
                            Status::Warn,
                            format!(
                                "{bin}: pod_annotations does not pass semble.dev/*, so pods cannot choose a policy"
                            ),
                            format!("add pod_annotations = [\"semble.dev/*\"] to the handler in {}", file.display()),
                        ));
                    }
                }
            }
        }
    }
    if handlers == 0 {
        // containerd is configured on this node, but a RuntimeClass naming a semble handler
        // would fail here.
        out.push(check(
            "containerd",
            Status::Fail,
            format!("no runtime handler in {} (or its imports) runs semble-shim", config.display()),
            "run deploy/node/install.sh, or add the tables of deploy/containerd/semble.toml to config.toml itself (containerd 1.x: an imported file would replace the whole CRI section; containerd 2.x: deploy/containerd/semble-v3.toml in conf.d/)",
        ));
    }
    out
}

/// containerd's major version, from `containerd --version` on PATH.
fn containerd_major() -> Option<u32> {
    let bin = crate::settings::find_executable(None, "containerd")?;
    let out = std::process::Command::new(bin).arg("--version").output().ok()?;
    // "containerd github.com/containerd/containerd 1.6.20~ds1 <commit>"
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .map(|v| v.trim_start_matches('v'))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
}

/// The `imports` of a containerd configuration.
fn imports(text: &str) -> Vec<String> {
    text.parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("imports").and_then(|i| i.as_array()).cloned())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Expand `DIR/*.toml`-style patterns (what containerd's imports use); a relative path is
/// relative to the configuration file's directory.
fn glob_simple(pattern: &str, config: &Path) -> Vec<PathBuf> {
    let p = Path::new(pattern);
    let p = if p.is_absolute() { p.to_path_buf() } else { config.parent().unwrap_or(Path::new("/")).join(p) };
    let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) else { return Vec::new() };
    if let Some((pre, post)) = name.split_once('*') {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(pre) && n.ends_with(post)))
            .collect();
        v.sort();
        v
    } else {
        vec![p]
    }
}

/// Podman and CRI-O configurations that name semble-shim (informational).
fn engine_mentions() -> Vec<Check> {
    let mut out = Vec::new();
    for (engine, paths) in [
        ("podman", vec!["/etc/containers/containers.conf", "/etc/containers/containers.conf.d"]),
        ("cri-o", vec!["/etc/crio/crio.conf", "/etc/crio/crio.conf.d"]),
    ] {
        let mut files = Vec::new();
        for p in paths {
            let p = Path::new(p);
            if p.is_dir() {
                files.extend(std::fs::read_dir(p).into_iter().flatten().filter_map(|e| e.ok().map(|e| e.path())));
            } else if p.is_file() {
                files.push(p.to_path_buf());
            }
        }
        let named: Vec<String> = files
            .iter()
            .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("semble-shim")))
            .map(|f| f.display().to_string())
            .collect();
        if !named.is_empty() {
            out.push(check(engine, Status::Ok, format!("semble-shim configured in {}", named.join(", ")), ""));
        }
    }
    out
}

/// Print checks as text; the exit status.
pub fn print_text(checks: &[Check]) -> i32 {
    for c in checks {
        let mark = match c.status {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        };
        println!("{mark} {}: {}", c.name, c.detail);
        if !c.fix.is_empty() && c.status != Status::Ok {
            println!("    fix: {}", c.fix);
        }
    }
    exit_status(checks)
}

/// 1 when anything failed.
pub fn exit_status(checks: &[Check]) -> i32 {
    i32::from(checks.iter().any(|c| c.status == Status::Fail))
}
