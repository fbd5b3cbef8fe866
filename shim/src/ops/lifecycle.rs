//! Commands passed to the container's backend (`start`, `state`, `kill`, `ps`…), and those that
//! need no container (`list`, `features`, `spec`, `checkpoint`).

use super::*;

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
pub(super) fn kill_runsc(settings: &Settings, backend: &Backend, id: &str, args: Vec<OsString>) -> Outcome {
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
    "egress-guard",
    "mount-sources-resolved",
    "device-numbers",
    "unknown-fields-refused",
    "hooks-refused",
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
