//! The commands. `create`/`run` and `exec` apply the policy; everything else finds the
//! container's backend and passes the command through unchanged.
//!
//! A failing command returns a [`Failure`]: one line that says what, where and how to fix it.
//! `create` either succeeds completely or leaves nothing behind: no record, no container, the
//! bundle's `config.json` as it was.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::SystemTime;

use serde_json::{json, Value};

use semble_policy::compile::oci::POLICY_ANNOTATION;
use semble_policy::model::Backend as PolicyBackend;

use crate::backend::{self, embedded, Backend};
use crate::bundle::{self, BackendKind, Inputs, Mounts};
use crate::cli::{BackendArg, CreateArgs, ExecArgs, UpdateArgs};
use crate::host;
use crate::log::Logger;
use crate::resolve;
use crate::settings::Settings;
use crate::state::{self, Paths, Record, ORIGINAL_CONFIG};
use crate::supervisor;

/// A command that failed, with the one line that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl<T: std::fmt::Display> From<T> for Failure {
    fn from(e: T) -> Self {
        Failure(e.to_string())
    }
}

/// Result of a command: an exit code.
pub type Outcome = Result<i32, Failure>;

fn fail<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(msg.into()))
}

fn code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Which backend a container gets, and why a fallback was used if one was.
///
/// The policy lists the backends it accepts: `runtime.backend`, then `runtime.fallback` in
/// order. A `--backend` flag (a RuntimeClass handler) must name one of them and is then tried
/// first. A policy naming no backend accepts runc, else the embedded runtime.
pub fn choose_backend(
    settings: &Settings,
    policy: &semble_policy::SandboxPolicy,
) -> Result<(Backend, Option<String>), Failure> {
    let map = |b: PolicyBackend| match b {
        PolicyBackend::Gvisor => BackendKind::Runsc,
        PolicyBackend::Runc => BackendKind::Runc,
        PolicyBackend::Embedded => BackendKind::Embedded,
    };
    let flag = settings.backend.map(|b| match b {
        BackendArg::Runc => BackendKind::Runc,
        BackendArg::Runsc => BackendKind::Runsc,
        BackendArg::Embedded => BackendKind::Embedded,
    });
    let mut accepted: Vec<BackendKind> = match policy.runtime.backend {
        Some(b) => std::iter::once(b).chain(policy.runtime.fallback.iter().copied()).map(map).collect(),
        None => vec![BackendKind::Runc, BackendKind::Embedded],
    };
    if let Some(f) = flag {
        if !accepted.contains(&f) {
            let names: Vec<&str> = accepted.iter().map(|b| b.as_str()).collect();
            return fail(format!(
                "policy `{}` accepts the backends {}; this runtime handler asks for `{}` (--backend); use a handler for one of them or change the policy",
                policy.name,
                names.join(", "),
                f.as_str()
            ));
        }
        if policy.runtime.backend.is_none() {
            // No preference in the policy: the handler's choice is the only one.
            accepted = vec![f];
        } else {
            accepted.retain(|b| *b != f);
            accepted.insert(0, f);
        }
    }
    let mut missing: Vec<String> = Vec::new();
    for kind in &accepted {
        match backend::find(settings, *kind) {
            Ok(b) => {
                let reason = (!missing.is_empty()).then(|| {
                    format!("{}; using `{}` as policy `{}` allows", missing.join("; "), kind.as_str(), policy.name)
                });
                return Ok((b, reason));
            }
            Err(why) => missing.push(why.to_string()),
        }
    }
    let hint = if policy.runtime.fallback.is_empty() && policy.runtime.backend.is_some() {
        "; install it, or give the policy a `runtime.fallback`"
    } else {
        "; install one of them"
    };
    fail(format!("cannot run policy `{}`: {}{hint}", policy.name, missing.join(", and ")))
}

/// Whether an ELF executable is statically linked (has no `PT_INTERP`).
pub fn is_static_elf(path: &Path) -> Result<bool, String> {
    use std::io::Read;
    // The ELF header and program headers sit at the start of the file.
    let mut data = Vec::with_capacity(4096);
    fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut data))
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let rd16 = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let rd32 = |o: usize| data.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let rd64 = |o: usize| data.get(o..o + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes);
    if data.get(..4) != Some(b"\x7fELF") || data.get(4) != Some(&2) || data.get(5) != Some(&1) {
        return Err(format!("`{}` is not a 64-bit little-endian ELF executable", path.display()));
    }
    let bad = || format!("`{}` has a damaged ELF header", path.display());
    let phoff = usize::try_from(rd64(0x20).ok_or_else(bad)?).map_err(|_| bad())?;
    let phentsize = usize::from(rd16(0x36).ok_or_else(bad)?);
    let phnum = usize::from(rd16(0x38).ok_or_else(bad)?);
    for i in 0..phnum {
        const PT_INTERP: u32 = 3;
        if rd32(phoff + i * phentsize).ok_or_else(bad)? == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

/// serde_json's message without its trailing position (we print the position ourselves).
pub fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn read_config(path: &Path) -> Result<Value, Failure> {
    let text = fs::read_to_string(path).map_err(|e| Failure(format!("cannot read `{}`: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Failure(format!(
            "cannot parse `{}` at line {} column {}: {}; fix the JSON",
            path.display(),
            e.line(),
            e.column(),
            json_reason(&e)
        ))
    })
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), Failure> {
    // Atomic, not flushed: runtime state lives as long as the container (runc does the same).
    semble_files::write_with(path, data, false)
        .map_err(|e| Failure(format!("cannot write `{}`: {e}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Failure(format!("cannot set permissions of `{}`: {e}", path.display())))
}

fn mkdir(path: &Path, mode: u32) -> Result<(), Failure> {
    fs::create_dir_all(path).map_err(|e| Failure(format!("cannot create `{}`: {e}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Failure(format!("cannot set permissions of `{}`: {e}", path.display())))
}

/// Compile a profile to BPF for this host, or reuse the program compiled for the same profile
/// before (`ROOT/cache/seccomp/`). Most containers of a node share a few policies, so nearly
/// every start is a cache hit.
fn compile_cached(
    settings: &Settings,
    profile: &semble_policy::seccomp_profile::SeccompProfile,
) -> Result<Vec<u8>, String> {
    use std::hash::{Hash, Hasher};
    let json = serde_json::to_vec(profile).map_err(|e| e.to_string())?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut h);
    std::env::consts::ARCH.hash(&mut h);
    let dir = settings.root.join("cache").join("seccomp");
    let key = format!("{:016x}", h.finish());
    let (json_path, bpf_path) = (dir.join(format!("{key}.json")), dir.join(format!("{key}.bpf")));
    // A hit must match the whole profile, not only its hash.
    if let (Ok(cached_json), Ok(bpf)) = (fs::read(&json_path), fs::read(&bpf_path)) {
        if cached_json == json && !bpf.is_empty() {
            return Ok(bpf);
        }
    }
    let bpf = semble_seccomp::bpf::compile(profile, semble_seccomp::bpf::Arch::native()).map_err(|e| e.to_string())?;
    if fs::create_dir_all(&dir).is_ok() {
        // Program first, profile second: a reader that finds the profile finds the program.
        let _ = semble_files::write_with(&bpf_path, &bpf, false);
        let _ = semble_files::write_with(&json_path, &json, false);
    }
    Ok(bpf)
}

/// Everything `create` prepared, for undoing it.
struct Prepared {
    paths: Paths,
    bundle: PathBuf,
    wrote_config: bool,
    rootfs_mountpoint: Option<PathBuf>,
    /// The seccomp supervisor started for the container (settings, container ID).
    supervised: Option<(Settings, String)>,
    /// The cgroup semble made for the container's egress guard.
    guard_cgroup: Option<PathBuf>,
}

impl Prepared {
    fn undo(&self, backend: Option<(&Backend, &Settings, &str)>) {
        if let Some((b, s, id)) = backend {
            if b.embedded() {
                let _ = embedded::delete(&b.root, id, true);
            } else {
                let _ = b
                    .command(s, "delete", vec!["--force".into(), id.into()])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
        if self.wrote_config {
            restore_config(&self.bundle);
        }
        if let Some((settings, id)) = &self.supervised {
            supervisor::stop(settings, &self.paths, id);
        }
        if let Some(cg) = &self.guard_cgroup {
            remove_cgroup(cg);
        }
        let _ = fs::remove_dir_all(&self.paths.dir);
        if let Some(mp) = &self.rootfs_mountpoint {
            // The runtime may have created the mountpoint in a plain-directory rootfs.
            let _ = fs::remove_file(mp.join("init"));
            let _ = fs::remove_dir(mp.join("proxy"));
            let _ = fs::remove_dir(mp);
        }
    }
}

/// Remove a cgroup semble made, once its processes are gone (they may take a moment to exit).
fn remove_cgroup(dir: &Path) {
    for _ in 0..200 {
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn restore_config(bundle: &Path) {
    let orig = bundle.join(ORIGINAL_CONFIG);
    if orig.exists() {
        let _ = fs::rename(&orig, bundle.join("config.json"));
    }
}

/// How `create` ends.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// `create`: the backend creates; `start` follows later.
    Create,
    /// `run`: create, start, and wait unless detached.
    Run {
        /// `--detach`
        detach: bool,
        /// `--keep`
        keep: bool,
    },
}

/// `create` and `run`.
pub fn create(settings: &Settings, log: &mut Logger, args: &CreateArgs, mode: Mode) -> Outcome {
    let id = args.id.as_str();
    if !state::valid_id(id) {
        return fail(format!("invalid container ID `{id}`: use letters, digits, `_`, `+`, `-` and `.`"));
    }
    log.with("container", id);
    let bundle = absolute(&args.bundle);
    if !bundle.is_dir() {
        return fail(format!(
            "bundle `{}` does not exist; pass --bundle with the directory holding config.json",
            bundle.display()
        ));
    }
    let config_path = bundle.join("config.json");
    if !config_path.is_file() {
        return fail(format!("bundle `{}` has no config.json; create one with `semble-shim spec`", bundle.display()));
    }
    let records = settings.records_dir();
    if state::load(&records, id)?.is_some() {
        return fail(format!("container `{id}` already exists"));
    }
    // A config.json semble rewrote before (a container created again from the same bundle)
    // starts again from the original; a config.json the runtime wrote anew replaces it.
    let original_path = bundle.join(ORIGINAL_CONFIG);
    let current = read_config(&config_path)?;
    let ours = bundle::has_annotation(&current, bundle::BACKEND_ANNOTATION);
    let config = if ours && original_path.is_file() {
        log.warn("config.json was prepared by semble for a container that no longer exists; starting again from config.semble-original.json", &[]);
        read_config(&original_path)?
    } else {
        current
    };
    let keep_original = ours && original_path.is_file();
    let annotation = bundle::annotation(&config, POLICY_ANNOTATION);
    let resolved = match pod_policy(settings, &config) {
        // A container of a Kubernetes pod gets its pod's policy, whatever its own annotations
        // say (a runtime configured to pass container annotations could otherwise let one
        // container of a pod pick a laxer policy).
        Some(pod) => {
            if let Some(asked) = annotation.filter(|a| *a != pod.policy.name) {
                log.warn(&format!("container annotation {POLICY_ANNOTATION}=`{asked}` ignored: the containers of a pod get the pod's policy `{}`", pod.policy.name), &[]);
            }
            pod
        }
        None => resolve::resolve(settings, annotation, bundle::pod_namespace(&config))?,
    };
    let policy = &resolved.policy;
    log.with("policy", policy.name.as_str());
    let (backend, fallback_reason) = choose_backend(settings, policy)?;
    log.with("backend", backend.kind.as_str());
    if let Some(reason) = &fallback_reason {
        log.warn(&format!("backend fallback: {reason}"), &[]);
    }
    // The embedded backend runs semble-init's code in-process; the others mount the binary.
    let init_binary = if backend.embedded() {
        PathBuf::new()
    } else {
        let init_binary = settings.init_binary().ok_or_else(|| Failure("semble-init not found beside semble-shim or in /usr/local/lib/semble; pass --init PATH to a static build (see docs/install-podman.md)".into()))?;
        match is_static_elf(&init_binary) {
            Ok(true) => {}
            Ok(false) => return fail(format!("semble-init at `{}` is dynamically linked and would not run in containers without its libraries; install the static build (`dev/build`)", init_binary.display())),
            Err(e) => return fail(e),
        }
        init_binary
    };
    log.debug("policy and backend chosen", &[]);
    let record_to = record_target(settings, log, id, &config);
    if let Some(out) = &record_to {
        let dir = out.parent().unwrap_or(Path::new("/"));
        if !dir.is_dir() {
            return fail(format!(
                "--record {}: directory `{}` does not exist; create it or record elsewhere",
                out.display(),
                dir.display()
            ));
        }
    }
    let facts = host::probe();
    let paths = Paths::new(&records, id);
    let runsc_inputs =
        (backend.kind == BackendKind::Runsc).then(|| runsc_inputs(settings, &backend, &bundle, &config, policy));
    let resolvers = settings.resolvers_for(policy);
    let sources = crate::mounts::resolve_sources(&config, &bundle);
    let devices = bundle::host_devices(&config);
    let mounts = Mounts {
        box_dir: paths.box_dir(),
        init_binary: init_binary.clone(),
        proxy_dir: settings.proxy_dir.join(&policy.name),
    };
    let applied = bundle::apply(
        &config,
        &Inputs {
            id,
            policy,
            facts: &facts,
            backend: backend.kind,
            mounts: &mounts,
            runsc: runsc_inputs.as_ref(),
            record: record_to.is_some(),
            resolvers: &resolvers,
            sources: &sources,
            devices: &devices,
            allowed_hooks: &settings.allowed_hooks,
        },
    )?;
    let mut backend = backend;
    backend.extra = applied.backend_flags.clone();
    for n in &applied.notes {
        log.warn(n, &[]);
    }

    // Nothing has been written so far. From here on, undo on failure.
    let rootfs = config.pointer("/root/path").and_then(Value::as_str).map(|r| {
        if Path::new(r).is_absolute() {
            PathBuf::from(r)
        } else {
            bundle.join(r)
        }
    });
    let rootfs_mountpoint = rootfs.map(|r| r.join(".semble")).filter(|p| !p.exists());
    // The embedded runtime leaves a new network namespace's loopback down: make the namespace
    // here, with loopback up, and have the container join it.
    let mut applied = applied;
    let _netns = if backend.embedded() { fresh_netns_for_embedded(&mut applied.config)? } else { None };
    let mut prepared = Prepared {
        paths: paths.clone(),
        bundle: bundle.clone(),
        wrote_config: false,
        rootfs_mountpoint,
        supervised: None,
        guard_cgroup: None,
    };
    let mut supervisor_child = None;
    let mut filters = semble_init::Filters::default();
    let result = (|| -> Result<(), Failure> {
        mkdir(&records, 0o711)?;
        mkdir(&paths.dir, 0o700)?;
        let box_dir = paths.box_dir();
        mkdir(&box_dir, 0o755)?;
        if let Some(init) = &applied.init {
            write_file(&box_dir.join("init.json"), &serde_json::to_vec_pretty(init)?, 0o644)?;
            write_file(&box_dir.join("init"), b"", 0o644)?;
            if init.proxy_bridge.is_some() {
                mkdir(&box_dir.join("proxy"), 0o755)?;
                // The proxy's sockets carry the policy's credentials: no other local user may
                // reach them. PROXY_DIR is root's alone (0700) when the shim makes it; each
                // policy's directory below is mounted into its containers, whose users need to
                // traverse it (the directories above a mount are not checked from inside).
                if !settings.proxy_dir.exists() {
                    mkdir(&settings.proxy_dir, 0o700)?;
                }
                mkdir(&mounts.proxy_dir, 0o755)?;
            }
        }
        if let Some(p) = &applied.policy_seccomp {
            let bpf = compile_cached(settings, p)
                .map_err(|e| Failure(format!("policy `{}`: the seccomp profile does not compile: {e}", policy.name)))?;
            write_file(&box_dir.join("policy.bpf"), &bpf, 0o644)?;
            filters.policy = Some(bpf);
        }
        if let Some(extra) = &applied.extra_seccomp {
            let bpf = compile_cached(settings, extra)
                .map_err(|e| Failure(format!("the container's own seccomp profile does not compile: {e}")))?;
            write_file(&box_dir.join("seccomp.bpf"), &bpf, 0o644)?;
            filters.extra = Some(bpf);
        }
        write_file(&paths.policy(), resolved.text.as_bytes(), 0o600)?;
        let record = Record {
            version: state::RECORD_VERSION,
            id: id.to_string(),
            backend: backend.kind,
            policy: policy.name.clone(),
            policy_source: resolved.source.to_string(),
            bundle: bundle.clone(),
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            fallback_reason: fallback_reason.clone(),
            backend_flags: applied.backend_flags.clone(),
            guard_cgroup: None,
        };
        write_file(&paths.record(), &serde_json::to_vec_pretty(&record)?, 0o600)?;
        if let Some(m) = applied.notify {
            let mode = match (m, &record_to) {
                (bundle::NotifyMode::Record, Some(out)) => supervisor::Mode::Record(out.clone()),
                _ => supervisor::Mode::Explain,
            };
            supervisor_child = Some(supervisor::spawn(settings, &paths, id, &mode)?);
            if backend.embedded() {
                filters.notify = Some(std::sync::Arc::new(supervisor::connect(&paths)?));
            }
        }
        if !keep_original {
            // A hard link keeps the original bytes without copying them (and costs no new inode
            // on the bundle's filesystem); the rename below then swaps in the new config.json.
            let _ = fs::remove_file(&original_path);
            fs::hard_link(&config_path, &original_path)
                .or_else(|_| fs::copy(&config_path, &original_path).map(|_| ()))
                .map_err(|e| Failure(format!("cannot keep the original `{}`: {e}", config_path.display())))?;
        }
        let mut out = serde_json::to_vec_pretty(&applied.config)?;
        out.push(b'\n');
        write_file(&config_path, &out, 0o644)?;
        Ok(())
    })();
    if supervisor_child.is_some() {
        prepared.supervised = Some((settings.clone(), id.to_string()));
    }
    if let Err(e) = result {
        prepared.wrote_config = original_path.exists();
        prepared.undo(None);
        return Err(e);
    }
    prepared.wrote_config = true;

    log.debug("bundle prepared", &[]);
    let enforced: Vec<Value> =
        applied.controls.iter().map(|c| json!({"control": c.control, "by": c.by, "detail": c.detail})).collect();
    log.info(
        &format!("policy `{}` applied ({})", policy.name, resolved.source),
        &[("enforced", Value::Array(enforced))],
    );

    if backend.embedded() {
        let payload = embedded::Payload { init: applied.init.clone(), filters };
        let opts = embedded::CreateOpts {
            pid_file: args.pid_file.as_deref().map(absolute),
            console_socket: args.console_socket.clone(),
            no_pivot: args.no_pivot,
            preserve_fds: args.preserve_fds,
            systemd: settings.passthrough.systemd_cgroup,
        };
        let detach = match mode {
            Mode::Create => true,
            Mode::Run { detach, .. } => detach,
        };
        log.debug("starting the backend", &[]);
        let container = match embedded::create(&backend.root, id, &bundle, &opts, payload, detach) {
            Ok(c) => c,
            Err(e) => {
                prepared.undo(Some((&backend, settings, id)));
                return fail(format!("{}; nothing was left behind", e.0));
            }
        };
        if let Some(guard) = &applied.egress {
            let pid = container.pid().and_then(|p| u32::try_from(p.as_raw()).ok());
            let attached = match pid {
                Some(pid) => attach_guard(guard, id, pid, true),
                None => fail(format!("container `{id}` has no process to guard")),
            };
            match attached {
                Ok(own) => prepared.guard_cgroup = own,
                Err(e) => {
                    prepared.undo(Some((&backend, settings, id)));
                    return fail(format!("{}; nothing was left behind", e.0));
                }
            }
            if let Some(own) = &prepared.guard_cgroup {
                let mut record = state::load(&records, id).ok().flatten();
                if let Some(r) = record.as_mut() {
                    r.guard_cgroup = Some(own.clone());
                    write_file(&paths.record(), &serde_json::to_vec_pretty(r)?, 0o600)?;
                }
            }
        }
        // libcontainer reads the configuration again for `exec` and checks the network
        // namespace's path: name the container's own, which lives as long as it does (the
        // namespace semble or the engine made may be gone by then).
        if let (Some(pid), Some(list)) =
            (container.pid(), applied.config.pointer_mut("/linux/namespaces").and_then(Value::as_array_mut))
        {
            if let Some(net) = list
                .iter_mut()
                .find(|n| n.get("type").and_then(Value::as_str) == Some("network") && n.get("path").is_some())
            {
                net["path"] = json!(format!("/proc/{}/ns/net", pid.as_raw()));
                let mut out = serde_json::to_vec_pretty(&applied.config)?;
                out.push(b'\n');
                write_file(&bundle.join("config.json"), &out, 0o644)?;
            }
        }
        return match mode {
            Mode::Create => Ok(0),
            Mode::Run { detach, keep } => {
                if let Err(e) = embedded::start(&backend.root, id) {
                    prepared.undo(Some((&backend, settings, id)));
                    return Err(e);
                }
                if detach {
                    return Ok(0);
                }
                let status = embedded::wait(&container);
                log.debug("backend exited", &[]);
                if !keep {
                    let _ = embedded::delete(&backend.root, id, true);
                    prepared.undo(None);
                }
                Ok(status)
            }
        };
    }

    let mut flags: Vec<OsString> = vec!["--bundle".into(), bundle.clone().into()];
    if let Some(p) = &args.pid_file {
        flags.push("--pid-file".into());
        flags.push(absolute(p).into());
    }
    if let Some(c) = &args.console_socket {
        flags.push("--console-socket".into());
        flags.push(c.into());
    }
    if args.no_pivot {
        flags.push("--no-pivot".into());
    }
    if args.no_new_keyring {
        flags.push("--no-new-keyring".into());
    }
    if args.preserve_fds > 0 {
        flags.push(format!("--preserve-fds={}", args.preserve_fds).into());
    }
    match mode {
        Mode::Create => {
            flags.push(id.into());
            let status = backend.command(settings, "create", flags).status();
            match status {
                Ok(s) if s.success() => {
                    let held = match (&args.pid_file, backend.kind) {
                        (Some(pid_file), BackendKind::Runsc)
                            if crate::subcontainer::is_subcontainer(&applied.config) =>
                        {
                            crate::subcontainer::spawn(
                                &settings.root,
                                &prepared.paths,
                                id,
                                &absolute(pid_file),
                                &[vec![backend.binary.clone().into_os_string()], backend.global_args(settings)]
                                    .concat(),
                            )
                        }
                        _ => Ok(()),
                    };
                    if let Err(e) = held {
                        crate::subcontainer::stop(&prepared.paths, id);
                        prepared.undo(Some((&backend, settings, id)));
                        return fail(format!("{}; nothing was left behind", e.0));
                    }
                    if let Some(guard) = &applied.egress {
                        let attached = container_pid(settings, &backend, id, args.pid_file.as_deref())
                            .and_then(|pid| attach_guard(guard, id, pid, false));
                        if let Err(e) = attached {
                            prepared.undo(Some((&backend, settings, id)));
                            return fail(format!("{}; nothing was left behind", e.0));
                        }
                    }
                    Ok(0)
                }
                Ok(s) => {
                    prepared.undo(Some((&backend, settings, id)));
                    fail(format!(
                        "{} could not create container `{id}` (exit {}); its error is above; nothing was left behind",
                        backend.kind.as_str(),
                        code(s)
                    ))
                }
                Err(e) => {
                    prepared.undo(Some((&backend, settings, id)));
                    fail(format!("cannot run `{}`: {e}", backend.binary.display()))
                }
            }
        }
        Mode::Run { detach, keep } => {
            if detach {
                flags.push("--detach".into());
            }
            if keep {
                flags.push("--keep".into());
            }
            // With an egress guard, the container's process must be known as soon as it exists:
            // semble-init waits for the guard before the workload runs.
            let guard_pid_file = match (&applied.egress, &args.pid_file) {
                (Some(_), Some(p)) => Some(absolute(p)),
                (Some(_), None) => {
                    let p = paths.dir.join("run.pid");
                    flags.push("--pid-file".into());
                    flags.push(p.clone().into());
                    Some(p)
                }
                (None, _) => None,
            };
            flags.push(id.into());
            log.debug("starting the backend", &[]);
            let guard_failed: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
            let on_started: Option<Box<dyn FnOnce() + Send>> = match (&applied.egress, guard_pid_file) {
                (Some(guard), Some(pid_file)) => {
                    let (guard, id, failed) = (guard.clone(), id.to_string(), guard_failed.clone());
                    let (killer, s2) = (backend.clone(), settings.clone());
                    Some(Box::new(move || {
                        let attached =
                            wait_for_pid_file(&pid_file).and_then(|pid| attach_guard(&guard, &id, pid, false));
                        if let Err(e) = attached {
                            // semble-init never runs the workload without the guard; stop it now.
                            let _ = killer.command(&s2, "kill", vec![id.clone().into(), "KILL".into()]).status();
                            if let Ok(mut f) = failed.lock() {
                                *f = Some(e.0);
                            }
                        }
                    }))
                }
                _ => None,
            };
            let status = run_forwarding_signals(backend.command(settings, "run", flags), on_started);
            if let Some(e) = guard_failed.lock().ok().and_then(|mut f| f.take()) {
                if !backend.exists(id) {
                    prepared.undo(None);
                }
                return fail(e);
            }
            log.debug("backend exited", &[]);
            let status = match status {
                Ok(s) => s,
                Err(e) => {
                    prepared.undo(Some((&backend, settings, id)));
                    return fail(format!("cannot run `{}`: {e}", backend.binary.display()));
                }
            };
            if !backend.exists(id) {
                // The container is gone (it exited, or never started): semble's state goes too.
                prepared.undo(None);
            }
            Ok(code(status))
        }
    }
}

/// The process of a just-created container: from `--pid-file`, else from the backend's `state`.
fn container_pid(settings: &Settings, backend: &Backend, id: &str, pid_file: Option<&Path>) -> Result<u32, Failure> {
    if let Some(p) = pid_file {
        if let Some(pid) = fs::read_to_string(absolute(p)).ok().and_then(|t| t.trim().parse().ok()) {
            return Ok(pid);
        }
    }
    let out = backend
        .command(settings, "state", vec![id.into()])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| Failure(format!("cannot run `{}`: {e}", backend.binary.display())))?;
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.get("pid").and_then(Value::as_u64))
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| Failure(format!("cannot find the process of container `{id}` to guard its egress")))
}

/// Wait (up to 10 s) for `runc run` to write the container's PID.
fn wait_for_pid_file(path: &Path) -> Result<u32, Failure> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(pid) = fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()) {
            return Ok(pid);
        }
        if std::time::Instant::now() > deadline {
            return fail(format!("the container's PID did not appear in `{}`: its egress guard was not attached and the container was stopped", path.display()));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Attach the egress guard to the cgroup of container `id`, whose process is `pid`. The cgroup
/// must be the container's own: nothing but `pid` in it. The embedded backend on a hybrid
/// cgroup host does not put the container in a cgroup v2 of its own; then the process moves to
/// `UNIFIED/semble/ID`, returned to be removed on `delete`.
fn attach_guard(guard: &crate::egress::Guard, id: &str, pid: u32, embedded: bool) -> Result<Option<PathBuf>, Failure> {
    use crate::egress;
    let cgroup =
        egress::cgroup_of(pid).map_err(|e| Failure(format!("container `{id}`: {e}; its egress cannot be guarded")))?;
    let unified = egress::unified_mount().map_err(|e| Failure(e.to_string()))?;
    let procs = egress::procs(&cgroup).unwrap_or_default();
    let own = cgroup != unified && !procs.is_empty() && procs.iter().all(|p| *p == pid);
    if own {
        egress::install(guard, &cgroup).map_err(Failure)?;
        return Ok(None);
    }
    if !embedded {
        return fail(format!(
            "container `{id}` shares cgroup `{}` with other processes; semble's egress guard attaches to a container's own cgroup (give the container its own cgroupsPath)",
            cgroup.display()
        ));
    }
    let dir = unified.join("semble").join(id);
    fs::create_dir_all(&dir).map_err(|e| Failure(format!("cannot create cgroup `{}`: {e}", dir.display())))?;
    let moved = fs::write(dir.join("cgroup.procs"), pid.to_string())
        .map_err(|e| Failure(format!("cannot move container `{id}` into cgroup `{}`: {e}", dir.display())))
        .and_then(|()| egress::install(guard, &dir).map_err(Failure));
    if let Err(e) = moved {
        let _ = fs::remove_dir(&dir);
        return Err(e);
    }
    Ok(Some(dir))
}

/// The annotation asking for a recording (honoured only with `--allow-record-annotation`).
pub const RECORD_ANNOTATION: &str = "semble.dev/record";

/// The policy of a CRI container's pod: what semble stored for the sandbox named by
/// `io.kubernetes.cri.sandbox-id`, when that sandbox is semble's (same state root). `None` for
/// anything else (a sandbox itself, a container outside a pod, a sandbox another runtime runs).
fn pod_policy(settings: &Settings, config: &Value) -> Option<resolve::Resolved> {
    if bundle::annotation(config, bundle::CRI_CONTAINER_TYPE) != Some("container") {
        return None;
    }
    // An ID names a directory under semble's records: nothing else may be read as a policy.
    let sandbox = bundle::annotation(config, bundle::CRI_SANDBOX_ID).filter(|s| state::valid_id(s))?;
    let paths = Paths::new(&settings.records_dir(), sandbox);
    let (text, policy) = state::stored_policy(&paths, sandbox).ok()?;
    Some(resolve::Resolved { policy, text, source: resolve::Source::Pod(sandbox.to_string()) })
}

/// Where this container's recording goes, if it is recorded: `--record FILE`, or the
/// annotation `semble.dev/record: "true"` where the operator allowed it (`ROOT/recordings/ID.yaml`).
fn record_target(settings: &Settings, log: &mut Logger, id: &str, config: &Value) -> Option<PathBuf> {
    if let Some(f) = &settings.record {
        return Some(absolute(f));
    }
    let asked = bundle::annotation(config, RECORD_ANNOTATION);
    match asked {
        Some("true") if settings.allow_record_annotation => {
            let dir = settings.root.join("recordings");
            if let Err(e) = fs::create_dir_all(&dir) {
                log.warn(&format!("cannot create `{}` for the recording: {e}", dir.display()), &[]);
            }
            Some(dir.join(format!("{id}.yaml")))
        }
        Some(_) => {
            log.warn(
                "annotation semble.dev/record ignored: recording turns seccomp off, so only an operator can ask for it (--record FILE, or --allow-record-annotation on the handler)",
                &[],
            );
            None
        }
        None => None,
    }
}

fn fresh_netns_for_embedded(config: &mut Value) -> Result<Option<embedded::NetnsHolder>, Failure> {
    let Some(list) = config.pointer_mut("/linux/namespaces").and_then(Value::as_array_mut) else {
        return Ok(None);
    };
    let Some(net) =
        list.iter_mut().find(|n| n.get("type").and_then(Value::as_str) == Some("network") && n.get("path").is_none())
    else {
        return Ok(None);
    };
    let holder = embedded::NetnsHolder::new()?;
    net["path"] = json!(holder.path);
    Ok(Some(holder))
}

/// Spawn `cmd` and forward every signal the shim receives to it until it exits.
fn run_forwarding_signals(
    mut cmd: Command,
    on_started: Option<Box<dyn FnOnce() + Send>>,
) -> std::io::Result<ExitStatus> {
    use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
    use nix::unistd::Pid;
    let all = SigSet::all();
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old)).map_err(std::io::Error::from)?;
    // The standard library resets the signal mask in the child.
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            return Err(e);
        }
    };
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    // A helper thread started here inherits the blocked mask: signals stay with this loop.
    let helper = on_started.map(std::thread::spawn);
    loop {
        if let Some(status) = child.try_wait()? {
            if let Some(h) = helper {
                let _ = h.join();
            }
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            return Ok(status);
        }
        match all.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => continue,
            Ok(sig) => {
                let _ = kill(pid, sig);
            }
        }
    }
}

/// What the gVisor backend needs: runsc's capabilities and the top of the root filesystem.
pub fn runsc_inputs(
    settings: &Settings,
    backend: &Backend,
    bundle: &Path,
    config: &Value,
    policy: &semble_policy::SandboxPolicy,
) -> bundle::RunscInputs {
    let rootfs = config
        .pointer("/root/path")
        .and_then(Value::as_str)
        .map(|r| if Path::new(r).is_absolute() { PathBuf::from(r) } else { bundle.join(r) })
        .unwrap_or_else(|| bundle.join("rootfs"));
    let mut root_entries: Vec<semble_gvisor::RootEntry> = fs::read_dir(&rootfs)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| semble_gvisor::RootEntry {
                    name: e.file_name().to_string_lossy().into_owned(),
                    dir: e.file_type().map(|t| t.is_dir()).unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    root_entries.sort_by(|a, b| a.name.cmp(&b.name));
    let present = policy
        .filesystem
        .iter()
        .flat_map(|f| f.read_only.iter().chain(&f.read_write).chain(&f.execute))
        .filter(|p| plain_path_in(&rootfs, p))
        .cloned()
        .collect();
    bundle::RunscInputs {
        host: crate::backend::runsc::probe(settings, &backend.binary),
        platform: settings.runsc_platform.clone(),
        rootfs,
        root_entries,
        present,
    }
}

/// Whether `path` exists in `rootfs` without a symbolic link on the way (a bind mount of a path
/// through a link would follow it on the host, outside the image).
fn plain_path_in(rootfs: &Path, path: &str) -> bool {
    let mut cur = rootfs.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if !m.file_type().is_symlink() => {}
            _ => return false,
        }
    }
    true
}

fn record_and_backend(settings: &Settings, id: &str) -> Result<(Record, Backend), Failure> {
    let rec =
        state::load(&settings.records_dir(), id)?.ok_or_else(|| Failure(format!("container `{id}` does not exist")))?;
    let mut b = backend::find(settings, rec.backend).map_err(|e| {
        Failure(format!("container `{id}` runs under {}, which is no longer usable: {e}", rec.backend.as_str()))
    })?;
    b.extra = rec.backend_flags.clone();
    Ok((rec, b))
}

/// `start`: a gVisor sub-container is started by its holder (see [`crate::subcontainer`]);
/// everything else by the backend.
pub fn start(settings: &Settings, id: &str) -> Outcome {
    if state::valid_id(id) {
        if let Some(done) = crate::subcontainer::start(&Paths::new(&settings.records_dir(), id), id) {
            return done;
        }
    }
    passthrough(settings, "start", id, vec![])
}

/// Commands passed through unchanged to the container's backend (the shim is replaced by it).
pub fn passthrough(settings: &Settings, cmd: &str, id: &str, args: Vec<OsString>) -> Outcome {
    let (_, backend) = record_and_backend(settings, id)?;
    if backend.embedded() {
        let root = &backend.root;
        match cmd {
            "start" => embedded::start(root, id)?,
            "state" => println!("{}", serde_json::to_string_pretty(&embedded::state(root, id)?)?),
            "pause" => embedded::pause(root, id)?,
            "resume" => embedded::resume(root, id)?,
            "events" => {
                let flag = |name: &str| {
                    args.iter().filter_map(|a| a.to_str()).find_map(|a| a.strip_prefix(name).map(str::to_string))
                };
                let interval = flag("--interval=")
                    .and_then(|i| humantime::parse_duration(&i).ok())
                    .map(|d| d.as_secs())
                    .unwrap_or(5);
                let stats = args.iter().any(|a| a == "--stats");
                embedded::events(root, id, u32::try_from(interval.max(1)).unwrap_or(5), stats)?
            }
            other => return fail(format!("`{other}` is not supported by the embedded backend")),
        }
        return Ok(0);
    }
    let mut all = args;
    all.push(id.into());
    let err = backend.command(settings, cmd, all).exec();
    fail(format!("cannot run `{}`: {err}", backend.binary.display()))
}

/// `ps`: runc wants `ps --format F ID [ps(1) arguments]`.
pub fn ps(settings: &Settings, id: &str, format: &str, ps_args: &[String]) -> Outcome {
    let (_, backend) = record_and_backend(settings, id)?;
    if backend.embedded() {
        let pids = embedded::pids(&backend.root, id)?;
        if format == "json" {
            println!("{}", serde_json::to_string(&pids)?);
            return Ok(0);
        }
        // The table comes from ps(1), narrowed to the container's processes, as runc does.
        let out = Command::new("ps")
            .args(if ps_args.is_empty() { vec!["-ef".to_string()] } else { ps_args.to_vec() })
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or("");
        let col = header.split_whitespace().position(|h| h == "PID").unwrap_or(1);
        println!("{header}");
        for l in lines {
            if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
                println!("{l}");
            }
        }
        return Ok(0);
    }
    let mut args: Vec<OsString> = vec![format!("--format={format}").into(), id.into()];
    args.extend(ps_args.iter().map(Into::into));
    let err = backend.command(settings, "ps", args).exec();
    fail(format!("cannot run `{}`: {err}", backend.binary.display()))
}

/// `kill`.
pub fn kill(settings: &Settings, id: &str, all: bool, signal: Option<&str>) -> Outcome {
    let (_, backend) = record_and_backend(settings, id)?;
    if backend.embedded() {
        embedded::kill(&backend.root, id, signal.unwrap_or("SIGTERM"), all)?;
        return Ok(0);
    }
    if let Some(done) = crate::subcontainer::kill_unstarted(&Paths::new(&settings.records_dir(), id), id, signal) {
        return done;
    }
    let mut args: Vec<OsString> = Vec::new();
    if all {
        args.push("--all".into());
    }
    args.push(id.into());
    args.push(signal.unwrap_or("SIGTERM").into());
    if backend.kind == BackendKind::Runsc {
        return kill_runsc(settings, &backend, id, args);
    }
    let err = backend.command(settings, "kill", args).exec();
    fail(format!("cannot run `{}`: {err}", backend.binary.display()))
}

/// runsc's `kill`, with runc's words for a container that is no longer running: containerd's
/// shim treats an error containing "container not running" as "already finished" (what runc
/// says), and any other as a failure. runsc says "sandbox is not running" instead, so without
/// this a gVisor pod whose sandbox has exited can never be stopped or removed.
fn kill_runsc(settings: &Settings, backend: &Backend, id: &str, args: Vec<OsString>) -> Outcome {
    let out = backend
        .command(settings, "kill", args)
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| Failure(format!("cannot run `{}`: {e}", backend.binary.display())))?;
    if out.status.success() {
        return Ok(0);
    }
    let said = String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ");
    let stopped = said.contains("sandbox is not running")
        || backend
            .command(settings, "state", vec![id.into()])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
            .is_some_and(|v| v.get("status").and_then(Value::as_str) == Some("stopped"));
    if stopped {
        return fail(format!("container not running (runsc: {said})"));
    }
    fail(format!("runsc could not signal container `{id}`: {said}"))
}

/// `delete`: the backend's delete, then semble's state and the bundle's original config.
pub fn delete(settings: &Settings, log: &mut Logger, id: &str, force: bool) -> Outcome {
    log.with("container", id);
    let rec = state::load(&settings.records_dir(), id)?;
    let Some(rec) = rec else {
        if force {
            return Ok(0);
        }
        return fail(format!("container `{id}` does not exist"));
    };
    let paths = Paths::new(&settings.records_dir(), id);
    let backend = backend::find(settings, rec.backend).map(|mut b| {
        b.extra = rec.backend_flags.clone();
        b
    });
    let status = match &backend {
        Ok(b) if b.embedded() => {
            match embedded::delete(&b.root, id, force) {
                Ok(()) => None,
                // Already gone from libcontainer's state: semble's goes too.
                Err(_) if !b.exists(id) => None,
                Err(e) => return Err(e),
            }
        }
        Ok(b) => {
            let mut args: Vec<OsString> = Vec::new();
            if force {
                args.push("--force".into());
            }
            args.push(id.into());
            Some(
                b.command(settings, "delete", args)
                    .status()
                    .map_err(|e| Failure(format!("cannot run `{}`: {e}", b.binary.display())))?,
            )
        }
        Err(_) => None,
    };
    let gone = match &backend {
        Ok(b) => !b.exists(id),
        Err(_) => true,
    };
    if gone {
        restore_config(&rec.bundle);
        if let Some(note) = supervisor::supervisor_gone(settings, id) {
            log.warn(&note, &[]);
        }
        supervisor::stop(settings, &paths, id);
        crate::subcontainer::stop(&paths, id);
        if let Some(cg) = &rec.guard_cgroup {
            remove_cgroup(cg);
        }
        let _ = fs::remove_dir_all(&paths.dir);
        log.info("container deleted", &[]);
    }
    Ok(status.map(code).unwrap_or(0))
}

/// `exec`: the new process gets the container's policy (user, capabilities, no_new_privs,
/// Landlock and the stacked seccomp filter through `semble-init --exec`).
pub fn exec(settings: &Settings, log: &mut Logger, args: &ExecArgs) -> Outcome {
    let id = args.id.as_str();
    log.with("container", id);
    let (rec, backend) = record_and_backend(settings, id)?;
    let paths = Paths::new(&settings.records_dir(), id);
    let (_, policy) = state::stored_policy(&paths, id).map_err(Failure)?;
    log.with("policy", policy.name.as_str());
    log.with("backend", rec.backend.as_str());
    let init: Option<semble_init::config::InitConfig> =
        fs::read(paths.box_dir().join("init.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let allowed: BTreeSet<String> = match &init {
        Some(i) => i.expect.capabilities.iter().cloned().collect(),
        None => bundle::granted_names(&policy),
    };
    let mut process = match &args.process {
        Some(p) => read_config(p)?,
        None => {
            if args.command.is_empty() {
                return fail("exec needs a command, or --process FILE");
            }
            let config = read_config(&rec.bundle.join("config.json"))?;
            let mut p = config.get("process").cloned().unwrap_or_else(|| json!({}));
            p["args"] = json!(args.command);
            p["terminal"] = json!(args.tty);
            if let Some(cwd) = &args.cwd {
                p["cwd"] = json!(cwd);
            }
            if let Some(o) = p.as_object_mut() {
                o.remove("selinuxLabel");
            }
            p
        }
    };
    if !args.env.is_empty() {
        let env = process.as_object_mut().map(|o| o.entry("env").or_insert_with(|| json!([])));
        if let Some(Value::Array(list)) = env {
            list.extend(args.env.iter().map(|e| json!(e)));
        }
    }
    if let Some(u) = &args.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, u));
        match (uid.parse::<u32>(), gid.parse::<u32>()) {
            (Ok(uid), Ok(gid)) => process["user"] = json!({"uid": uid, "gid": gid}),
            _ => return fail(format!("--user `{u}` must be numeric UID[:GID]")),
        }
        if policy.process.user.is_some() {
            log.warn(&format!("exec --user {u} ignored: policy `{}` sets the user", policy.name), &[]);
        }
    }
    if !args.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(args.additional_gids);
    }
    if let Some(a) = &args.apparmor {
        process["apparmorProfile"] = json!(a);
    }
    if let Some(l) = &args.process_label {
        process["selinuxLabel"] = json!(l);
    }
    let extra_caps: BTreeSet<String> =
        args.cap.iter().map(|c| if c.starts_with("CAP_") { c.clone() } else { format!("CAP_{c}") }).collect();
    for c in extra_caps.difference(&allowed) {
        log.warn(&format!("exec --cap {c} ignored: not granted by policy `{}`", policy.name), &[]);
    }
    // The exec'd process goes through the same rows of the ceiling as the container's.
    let unknown = bundle::table::unknown_fields(&process, &["process"]);
    if let Some(first) = unknown.first() {
        return fail(format!(
            "exec process field `{first}` is not one semble knows; policy `{}` refuses what it cannot judge",
            policy.name
        ));
    }
    let in_pod = read_config(&rec.bundle.join("config.json")).ok().is_some_and(|c| {
        bundle::has_annotation(&c, bundle::CRI_SANDBOX_ID) || bundle::has_annotation(&c, bundle::CRI_CONTAINER_TYPE)
    });
    let facts = host::probe();
    bundle::apply_process(&mut process, &policy, &facts, &allowed, in_pod)?;
    if let Some(b) = init.as_ref().and_then(|i| i.proxy_bridge.as_ref()) {
        // Engines build exec processes from their own environment: point them at the bridge too.
        let port = b.listen.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(policy.network.proxy.port);
        if let Some(o) = process.as_object_mut() {
            bundle::set_env(o, &bundle::proxy_env(port));
        }
    }
    if init.is_some() && !backend.embedded() {
        let original = process.get("args").and_then(Value::as_array).cloned().unwrap_or_default();
        if original.is_empty() {
            return fail("the exec process has no args");
        }
        let mut a = vec![
            json!(semble_init::config::INIT_PATH),
            json!("--exec"),
            json!("--config"),
            json!(semble_init::config::CONFIG_PATH),
            json!("--"),
        ];
        a.extend(original);
        process["args"] = Value::Array(a);
    }
    let scratch = paths.scratch(&format!(
        "exec-{}-{}.json",
        std::process::id(),
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ));
    write_file(&scratch, &serde_json::to_vec(&process)?, 0o600)?;
    if backend.embedded() {
        // semble-init's work runs in-process: the same configuration, the filters from the box.
        let read = |name: &str| fs::read(paths.box_dir().join(name)).ok();
        // Without the supervisor (killed, or gone) the exec still runs, fail-closed: semble-init
        // warns, and refused syscalls fail with ENOSYS.
        let notify = match init.as_ref().and_then(|i| i.notify.as_ref()) {
            Some(_) => supervisor::connect(&paths).ok().map(std::sync::Arc::new),
            None => None,
        };
        let filters = semble_init::Filters {
            policy: init.as_ref().and_then(|i| i.seccomp.as_ref()).and_then(|_| read("policy.bpf")),
            extra: init.as_ref().and_then(|i| i.extra_seccomp.as_ref()).and_then(|_| read("seccomp.bpf")),
            notify,
        };
        let opts = embedded::CreateOpts {
            pid_file: args.pid_file.as_deref().map(absolute),
            console_socket: args.console_socket.clone(),
            no_pivot: false,
            preserve_fds: args.preserve_fds,
            systemd: settings.passthrough.systemd_cgroup,
        };
        let result =
            embedded::exec(&backend.root, id, &scratch, &opts, args.detach, embedded::Payload { init, filters });
        let _ = fs::remove_file(&scratch);
        let pid = result?;
        if let Some(cg) = &rec.guard_cgroup {
            // The exec'd process joined the container's cgroups but not the guard's (v2) one;
            // it waits (semble-init) until it is there.
            fs::write(cg.join("cgroup.procs"), pid.to_string())
                .map_err(|e| Failure(format!("cannot put the exec process into the egress guard's cgroup: {e}")))?;
        }
        return Ok(if args.detach { 0 } else { embedded::wait_pid(pid) });
    }
    let mut flags: Vec<OsString> = vec!["--process".into(), scratch.clone().into()];
    if args.detach {
        flags.push("--detach".into());
    }
    if let Some(p) = &args.pid_file {
        flags.push("--pid-file".into());
        flags.push(absolute(p).into());
    }
    if let Some(c) = &args.console_socket {
        flags.push("--console-socket".into());
        flags.push(c.into());
    }
    if args.preserve_fds > 0 {
        flags.push(format!("--preserve-fds={}", args.preserve_fds).into());
    }
    if let Some(c) = &args.cgroup {
        flags.push("--cgroup".into());
        flags.push(c.into());
    }
    if args.ignore_paused {
        flags.push("--ignore-paused".into());
    }
    flags.push(id.into());
    let status = if args.detach {
        backend.command(settings, "exec", flags).status()
    } else {
        run_forwarding_signals(backend.command(settings, "exec", flags), None)
    };
    let _ = fs::remove_file(&scratch);
    match status {
        Ok(s) => Ok(code(s)),
        Err(e) => fail(format!("cannot run `{}`: {e}", backend.binary.display())),
    }
}

/// A runc-style size: bytes, or a number with `b`, `k`, `m`, `g`, `t` (binary units, any case);
/// `-1` for unlimited.
fn parse_size(text: &str) -> Option<i64> {
    let t = text.trim().to_ascii_lowercase();
    if t == "-1" {
        return Some(-1);
    }
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), ""),
    };
    let shift = match unit.trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    num.parse::<i64>().ok().and_then(|n| n.checked_mul(1i64 << shift))
}

/// `update`: the new limits go through the same rows of the ceiling as `create`'s
/// `linux.resources` (unknown fields refused, every limit held to the policy), and reach the
/// backend as one `--resources` document.
pub fn update(settings: &Settings, log: &mut Logger, args: &UpdateArgs) -> Outcome {
    let id = args.id.as_str();
    let (_, backend) = record_and_backend(settings, id)?;
    if backend.embedded() {
        return fail("`update` is not supported by the embedded backend; its limits are the policy's");
    }
    let paths = Paths::new(&settings.records_dir(), id);
    let (_, policy) = state::stored_policy(&paths, id).map_err(Failure)?;
    let mut v: Value = match &args.resources {
        Some(res) => {
            let text = if res == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                fs::read_to_string(res).map_err(|e| Failure(format!("cannot read `{res}`: {e}")))?
            };
            serde_json::from_str(&text)
                .map_err(|e| Failure(format!("cannot parse the resources JSON: {}", json_reason(&e))))?
        }
        None => json!({}),
    };
    if !v.is_object() {
        return fail("the resources JSON must be an object (OCI `linux.resources`)");
    }
    let size = |flag: &str, t: &Option<String>| -> Result<Option<i64>, Failure> {
        t.as_deref()
            .map(|t| parse_size(t).ok_or_else(|| Failure(format!("--{flag} `{t}` is not a size (e.g. 512m, 2g)"))))
            .transpose()
    };
    if let Some(m) = size("memory", &args.memory)? {
        v["memory"]["limit"] = json!(m);
    }
    if let Some(m) = size("memory-swap", &args.memory_swap)? {
        v["memory"]["swap"] = json!(m);
    }
    if let Some(m) = size("memory-reservation", &args.memory_reservation)? {
        v["memory"]["reservation"] = json!(m);
    }
    if let Some(q) = args.cpu_quota {
        v["cpu"]["quota"] = json!(q);
    }
    if let Some(p) = args.cpu_period {
        v["cpu"]["period"] = json!(p);
    }
    if let Some(s) = args.cpu_share {
        v["cpu"]["shares"] = json!(s);
    }
    if let Some(c) = &args.cpuset_cpus {
        v["cpu"]["cpus"] = json!(c);
    }
    if let Some(m) = &args.cpuset_mems {
        v["cpu"]["mems"] = json!(m);
    }
    if let Some(p) = args.pids_limit {
        v["pids"]["limit"] = json!(p);
    }
    if let Some(w) = args.blkio_weight {
        v["blockIO"]["weight"] = json!(w);
    }
    let unknown = bundle::table::unknown_fields(&v, &["linux", "resources"]);
    if let Some(first) = unknown.first() {
        return fail(format!(
            "update field `{first}` is not one semble knows; policy `{}` refuses what it cannot judge",
            policy.name
        ));
    }
    for row in bundle::table::FIELDS.iter().filter(|r| r.action == bundle::table::Action::Refuse) {
        if let Some(rel) = row.path.strip_prefix("/linux/resources") {
            for (path, val) in bundle::table::values_at(&v, rel) {
                if !val.is_null() && val != &json!(false) && val != &json!(0) {
                    return fail(format!(
                        "update field `/linux/resources{path}` is refused by policy `{}`: {}",
                        policy.name, row.how
                    ));
                }
            }
        }
    }
    let before = v.clone();
    let map = v.as_object_mut().ok_or_else(|| Failure("the resources JSON must be an object".into()))?;
    bundle::clamp_limits(map, &policy, false).map_err(|(field, why)| {
        Failure(format!("update field `{field}` is refused by policy `{}`: {why}", policy.name))
    })?;
    // Drop the empty objects clamping added, and say what was lowered.
    map.retain(|_, x| x.as_object().is_none_or(|o| !o.is_empty()));
    if v != before {
        log.warn(
            &format!("update: limits above policy `{}` lowered to it: {}", policy.name, serde_json::to_string(&v)?),
            &[],
        );
    }
    let scratch = paths.scratch("update.json");
    write_file(&scratch, &serde_json::to_vec(&v)?, 0o600)?;
    let status = backend
        .command(settings, "update", vec!["--resources".into(), scratch.clone().into(), id.into()])
        .status()
        .map_err(|e| Failure(format!("cannot run `{}`: {e}", backend.binary.display())));
    let _ = fs::remove_file(&scratch);
    Ok(code(status?))
}

/// `list`: every container semble manages, with its policy and backend.
pub fn list(settings: &Settings, format: &str, quiet: bool) -> Outcome {
    let records = state::all(&settings.records_dir());
    let mut rows = Vec::new();
    for r in &records {
        let st = backend::find(settings, r.backend).ok().and_then(|b| {
            if b.embedded() {
                return embedded::state(&b.root, &r.id).ok();
            }
            let out = b
                .command(settings, "state", vec![r.id.clone().into()])
                .stderr(std::process::Stdio::null())
                .output()
                .ok()?;
            serde_json::from_slice::<Value>(&out.stdout).ok()
        });
        let status = st.as_ref().and_then(|s| s.get("status")).and_then(Value::as_str).unwrap_or("unknown").to_string();
        let pid = st.as_ref().and_then(|s| s.get("pid")).and_then(Value::as_i64).unwrap_or(0);
        rows.push(json!({"id": r.id, "pid": pid, "status": status, "bundle": r.bundle, "created": r.created, "policy": r.policy, "backend": r.backend.as_str()}));
    }
    if quiet {
        for r in &records {
            println!("{}", r.id);
        }
    } else if format == "json" {
        println!("{}", Value::Array(rows));
    } else {
        println!("{:<24} {:<8} {:<10} {:<16} {:<9} BUNDLE", "ID", "PID", "STATUS", "POLICY", "BACKEND");
        for r in &rows {
            println!(
                "{:<24} {:<8} {:<10} {:<16} {:<9} {}",
                r["id"].as_str().unwrap_or(""),
                r["pid"],
                r["status"].as_str().unwrap_or(""),
                r["policy"].as_str().unwrap_or(""),
                r["backend"].as_str().unwrap_or(""),
                r["bundle"].as_str().unwrap_or("")
            );
        }
    }
    Ok(0)
}

/// Controls semble enforces, for `features`.
pub const ENFORCES: &[&str] = &[
    "capabilities",
    "no_new_privs",
    "seccomp",
    "seccomp-stacking",
    "landlock",
    "readonly-rootfs",
    "user",
    "rlimits",
    "cgroup-limits",
    "masked-paths",
    "device-cgroup",
    "network-namespace",
    "proxy-bridge",
    "selinux-labels",
];

/// `features`: the backend's OCI features document, with semble's annotations.
pub fn features(settings: &Settings) -> Outcome {
    let mut doc = crate::backend::runc::binary(settings)
        .and_then(|b| Command::new(b).arg("features").output().ok())
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .unwrap_or_else(|| json!({"ociVersionMin": "1.0.0", "ociVersionMax": "1.1.0"}));
    let ann = doc.as_object_mut().map(|o| o.entry("annotations").or_insert_with(|| json!({})));
    if let Some(Value::Object(a)) = ann {
        a.insert("dev.semble.version".into(), json!(env!("CARGO_PKG_VERSION")));
        a.insert("dev.semble.enforces".into(), json!(ENFORCES.join(",")));
        a.insert("dev.semble.policy-dir".into(), json!(settings.policy_dir.display().to_string()));
        let backends: Vec<&str> = [BackendKind::Runc, BackendKind::Runsc, BackendKind::Embedded]
            .into_iter()
            .filter(|k| backend::find(settings, *k).is_ok())
            .map(BackendKind::as_str)
            .collect();
        a.insert("dev.semble.backends".into(), json!(backends.join(",")));
        a.insert(
            "dev.semble.landlock-abi".into(),
            json!(crate::sys::landlock_abi().map(|v| v.to_string()).unwrap_or_else(|| "none".into())),
        );
        // Under gVisor some controls are enforced by other means: say which, control by control.
        for (control, how) in semble_gvisor::enforcement() {
            a.insert(format!("dev.semble.runsc.{}", control.replace(' ', "-")), json!(how));
        }
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}

/// `spec`: write a template `config.json` (the OCI runtime spec's defaults, as runc's), without
/// needing runc.
pub fn spec(_settings: &Settings, bundle: Option<&Path>, rootless: bool) -> Outcome {
    let dir = bundle.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("config.json");
    if path.exists() {
        return fail(format!("`{}` exists; remove it first", path.display()));
    }
    let spec = if rootless {
        oci_spec::runtime::Spec::rootless(nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw())
    } else {
        oci_spec::runtime::Spec::default()
    };
    let mut text = serde_json::to_string_pretty(&spec)?;
    text.push('\n');
    semble_files::write(&path, text.as_bytes())
        .map_err(|e| Failure(format!("cannot write `{}`: {e}", path.display())))?;
    Ok(0)
}

/// `checkpoint` / `restore`.
pub fn refuse_checkpoint(cmd: &str) -> Outcome {
    fail(format!("`{cmd}` is not supported: a restored container would run without semble applying its policy"))
}
