//! `create` and `run`: choose the policy and the backend, merge the policy into the bundle
//! (a pure plan, [`crate::bundle::apply`]), then act — write the container's files, start its
//! helpers, run the backend, attach the egress guard — undoing everything on any failure.

use super::*;

/// Everything `create` prepared, for undoing it.
pub(super) struct Prepared {
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
pub(super) fn remove_cgroup(dir: &Path) {
    for _ in 0..200 {
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

pub(super) fn restore_config(bundle: &Path) {
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
    let facts = host::probe_for(settings.rootless);
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
    let mut applied = bundle::apply(
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
            engine_roots: &settings.user_engine_roots(),
            private_dirs: &settings.user_private_dirs(),
            pod_sandbox_known: super::pod_sandbox_known(settings, &config),
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
    let rootfs_mountpoint = rootfs.as_ref().map(|r| r.join(".semble")).filter(|p| !p.exists());
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
        // The mountpoint of semble's files, made here: inside a user namespace the runtime would
        // make it as the container's root, which cannot write into a root filesystem the
        // host's root owns.
        if let (Some(_), Some(root), false) = (&applied.init, &rootfs, backend.embedded()) {
            crate::sys::mkdir_beneath(root, ".semble", 0o755).map_err(|e| {
                Failure(format!(
                    "cannot make semble's mountpoint `/.semble` in the root filesystem `{}`: {e}",
                    root.display()
                ))
            })?;
        }
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
            kept_denials_dir: settings.rootless.then(|| settings.kept_denials_dir()),
            pod_sandbox: Some(applied.pod_sandbox),
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
        // A new network namespace: libcontainer leaves its loopback down.
        let fresh_net = applied.config.pointer("/linux/namespaces").and_then(Value::as_array).is_some_and(|l| {
            l.iter().any(|n| n.get("type").and_then(Value::as_str) == Some("network") && n.get("path").is_none())
        });
        if fresh_net {
            let up = container.pid().map(|p| embedded::loopback_up_in(p.as_raw()));
            if let Some(Err(e)) = up {
                prepared.undo(Some((&backend, settings, id)));
                return fail(format!("{}; nothing was left behind", e.0));
            }
        }
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
                    if backend.kind == BackendKind::Runc {
                        // runc holds its own copy of the configuration now. What stays in the
                        // bundle is what the workload gets, without semble's plumbing (the
                        // workload runs with its own argv; semble-init and its mounts are how):
                        // tools that read the bundle from inside the container compare it with
                        // what they see.
                        let view = workload_view(&applied.config);
                        let mut out = serde_json::to_vec_pretty(&view)?;
                        out.push(b'\n');
                        write_file(&bundle.join("config.json"), &out, 0o644)?;
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
pub(super) fn container_pid(
    settings: &Settings,
    backend: &Backend,
    id: &str,
    pid_file: Option<&Path>,
) -> Result<u32, Failure> {
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
pub(super) fn wait_for_pid_file(path: &Path) -> Result<u32, Failure> {
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
pub(super) fn attach_guard(
    guard: &crate::egress::Guard,
    id: &str,
    pid: u32,
    embedded: bool,
) -> Result<Option<PathBuf>, Failure> {
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
pub(super) fn pod_policy(settings: &Settings, config: &Value) -> Option<resolve::Resolved> {
    let get = |k: &str| bundle::annotation(config, k);
    if bundle::engine_key(get, bundle::CRI_CONTAINER_TYPE, semble_policy::facts::CRIO_CONTAINER_TYPE)
        != Some("container")
    {
        return None;
    }
    // An ID names a directory under semble's records: nothing else may be read as a policy.
    let sandbox = bundle::engine_key(get, bundle::CRI_SANDBOX_ID, semble_policy::facts::CRIO_SANDBOX_ID)
        .filter(|s| state::valid_id(s))?;
    if !state::is_pod_sandbox(&settings.records_dir(), sandbox) {
        return None;
    }
    let paths = Paths::new(&settings.records_dir(), sandbox);
    let (text, policy) = state::stored_policy(&paths, sandbox).ok()?;
    Some(resolve::Resolved { policy, text, source: resolve::Source::Pod(sandbox.to_string()) })
}

/// Where this container's recording goes, if it is recorded: `--record FILE`, or the
/// annotation `semble.dev/record: "true"` where the operator allowed it (`ROOT/recordings/ID.yaml`).
pub(super) fn record_target(settings: &Settings, log: &mut Logger, id: &str, config: &Value) -> Option<PathBuf> {
    if let Some(f) = &settings.record {
        return Some(absolute(f));
    }
    let asked = bundle::annotation(config, RECORD_ANNOTATION);
    match asked {
        Some("true") if settings.allow_record_annotation => {
            let dir = settings.recordings_dir();
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
pub(super) fn plain_path_in(rootfs: &Path, path: &str) -> bool {
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

/// The configuration as the workload sees it: its own command (semble-init `execve`s it with
/// that argv) and no mounts of semble's own files (`/.semble`).
fn workload_view(config: &Value) -> Value {
    let mut v = config.clone();
    if let Some(args) = v.pointer_mut("/process/args").and_then(Value::as_array_mut) {
        if args.first().and_then(Value::as_str) == Some(semble_init::config::INIT_PATH) {
            if let Some(i) = args.iter().position(|a| a.as_str() == Some("--")) {
                args.drain(..=i);
            }
        }
    }
    if let Some(mounts) = v.get_mut("mounts").and_then(Value::as_array_mut) {
        let dir = semble_init::config::MOUNT_DIR;
        mounts.retain(|m| {
            let d = m.get("destination").and_then(Value::as_str).unwrap_or("");
            d != dir && !d.starts_with(&format!("{dir}/"))
        });
    }
    v
}
