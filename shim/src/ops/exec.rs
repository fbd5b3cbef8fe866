//! `exec`: the new process gets the container's policy through the same rows of the ceiling.

use super::*;

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
    let in_pod =
        read_config(&rec.bundle.join("config.json")).ok().is_some_and(|c| super::pod_sandbox_known(settings, &c));
    let facts = host::probe_for(settings.rootless);
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
