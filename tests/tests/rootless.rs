//! Rootless Podman with semble-shim as its runtime, run by an ordinary user (uid ≠ 0, subuid
//! ranges, its own `XDG_*` directories), as the Ai-semble seed runs it: the workspace policy
//! still holds inside the user namespace — seccomp and its explanations, Landlock, capabilities,
//! no-new-privs, the proxy bridge to the user's own proxy socket — and what this host cannot give
//! an ordinary user (cgroup limits, the embedded backend's cgroups) is refused or said, as the
//! policy's `enforcement` asks. docs/install-podman.md (rootless) is the user's side of this.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use semble_tests::rootless::{Rootless, IMAGE};
use semble_tests::scenarios::policy_dir_for;
use semble_tests::{run, unique, Probe, PROXIED};

const POLICY: &[&str] = &["--annotation", "semble.dev/policy=workspace"];
/// No route out (slirp4netns needs /dev/net/tun, root-only on this machine); the proxy bridge
/// needs none.
const NET: &[&str] = &["--network", "none"];

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn wait_exited(r: &Rootless, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run(r.podman().args(["inspect", "--format", "{{.State.Status}}", name]), true);
        if stdout(&out).trim() == "exited" {
            return;
        }
        assert!(Instant::now() < deadline, "container {name} did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn container_id(r: &Rootless, name: &str) -> String {
    stdout(&run(r.podman().args(["inspect", "--format", "{{.Id}}", name]), true)).trim().to_string()
}

/// The workspace policy, enforced rootless under runc (the examples' fallback when runsc is not
/// installed): every check of the probe, and the proxy bridge to the user's socket.
#[test]
fn workspace_policy_holds_rootless() {
    let r = Rootless::start(&policy_dir_for("runc"));
    let _proxy = r.proxy("workspace");
    let out = run(r.podman().args(["run", "--rm"]).args(NET).args(POLICY).arg(IMAGE), true);
    let probe = Probe::parse(&stdout(&out));
    probe.assert_workspace_for("runc");
    assert_eq!(probe.get("proxy"), PROXIED, "the bridge must reach the user's proxy socket");
    // The shim ran as the user: its state is in the user's runtime directory, not /run.
    assert!(r.shim_root().is_dir(), "no state under {}", r.shim_root().display());
}

/// The examples as installed, unchanged: runsc is not on the user's PATH, so the workspace falls
/// back to runc as its policy allows — what a new user of the seed's rootless Podman gets.
#[test]
fn installed_examples_fall_back_to_runc() {
    let r = Rootless::start(&semble_tests::policy_dir());
    let _proxy = r.proxy("workspace");
    let out = run(r.podman().args(["run", "--rm"]).args(NET).args(POLICY).arg(IMAGE), true);
    Probe::parse(&stdout(&out)).assert_workspace_for("runc");
}

/// `exec` (as the policy's user and as `--user 0`), `kill`, `rm`: the policy holds for every
/// process, and nothing of semble's outlives the container (record, supervisor, sockets).
#[test]
fn exec_kill_rm_leave_nothing_behind() {
    let r = Rootless::start(&policy_dir_for("runc"));
    let _proxy = r.proxy("workspace");
    let name = unique("rootless");
    run(r.podman().args(["run", "-d", "--name", &name]).args(NET).args(POLICY).arg(IMAGE).args(["sleep", "300"]), true);
    let id = container_id(&r, &name);
    let record = r.shim_root().join("semble").join(&id);
    assert!(record.is_dir(), "semble's record for {id} is not in the user's runtime directory");
    for user in [None, Some("0")] {
        let mut c = r.podman();
        c.arg("exec");
        if let Some(u) = user {
            c.args(["--user", u]);
        }
        let out = run(c.args([name.as_str(), "/bin/probe"]), true);
        Probe::parse(&stdout(&out)).assert_workspace_for("runc");
    }
    assert!(!r.processes(&format!("supervise {id}")).is_empty(), "no denial supervisor runs for {id}");
    run(r.podman().args(["kill", &name]), true);
    wait_exited(&r, &name);
    run(r.podman().args(["rm", &name]), true);
    assert!(!record.exists(), "semble's record outlived the container: {}", record.display());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !r.processes(&format!("supervise {id}")).is_empty() {
        assert!(Instant::now() < deadline, "the supervisor outlived the container: {:?}", r.processes(&id));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Denials are explained by a supervisor that runs as the user, and `semble-shim denials` run by
/// the user reads them, during the container's life and after it is removed (kept under
/// `$XDG_STATE_HOME/semble`).
#[test]
fn denials_are_explained_to_the_user() {
    let r = Rootless::start(&policy_dir_for("runc"));
    let _proxy = r.proxy("workspace");
    let name = unique("rootless-denials");
    run(
        r.podman().args(["run", "-d", "--name", &name]).args(NET).args(POLICY).arg(IMAGE).args([
            "sh",
            "-c",
            "/bin/probe; sleep 300",
        ]),
        true,
    );
    let id = container_id(&r, &name);
    let deadline = Instant::now() + Duration::from_secs(20);
    let table = loop {
        let out = run(r.shim().args(["denials", &id]), false);
        let t = stdout(&out);
        if t.contains("ptrace") {
            break t;
        }
        assert!(Instant::now() < deadline, "no ptrace denial explained: {t}{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(table.contains("spec.seccomp.deny[0] ptrace"), "{table}");
    assert!(table.contains("unshare"), "{table}");
    run(r.podman().args(["rm", "-f", &name]), true);
    let kept = r.state_home().join("semble");
    let out = run(r.shim().args(["denials", &id, "--format", "json"]), true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["denials"].as_array().unwrap().iter().any(|d| d["syscall"] == "ptrace"),
        "the kept log under {} lost the denials: {v}",
        kept.display()
    );
    assert!(walk_has(&kept, &format!("{id}.jsonl")), "no kept denial log under {}", kept.display());
}

fn walk_has(dir: &Path, name: &str) -> bool {
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let p = e.path();
        p.file_name().is_some_and(|n| n == name) || (p.is_dir() && walk_has(&p, name))
    })
}

/// A policy that requires its cgroup limits is refused where the host does not delegate them to
/// the user (this machine: cgroup v1 hybrid, none), in one line that names the limits and the
/// fix for the host's kind; nothing of the container is left. On cgroup v2 with every controller
/// delegated it runs.
#[test]
fn required_limits_are_refused_where_cgroups_are_not_delegated() {
    let policies = policy_dir_for("runc");
    let r = Rootless::start(&policies);
    let ws = std::fs::read_to_string(r.policy_dir().join("workspace.yaml")).unwrap();
    let ws = ws.replace("enforcement: best-effort\n", "enforcement: required\n");
    assert!(ws.contains("  resources:") && ws.matches("enforcement: required").count() >= 2);
    std::fs::write(r.policy_dir().join("workspace.yaml"), ws).unwrap();
    let out = run(r.podman().args(["run", "--rm"]).args(NET).args(POLICY).arg(IMAGE), false);
    if out.status.success() {
        // Only where cgroup v2 delegates the controllers to the user can the limits hold.
        assert!(semble_tests::cgroup_v2_unified(), "a required memory limit ran without a cgroup: {}", stdout(&out));
        return;
    }
    let err = stderr(&out);
    let line = err.lines().find(|l| l.contains("semble-shim")).unwrap_or_else(|| panic!("no shim error: {err}"));
    let host = if semble_tests::cgroup_v2_unified() { "Delegate=" } else { "cgroup v1" };
    for want in ["rootless", host, "enforcement: best-effort"] {
        assert!(line.contains(want), "`{want}` missing from the refusal: {line}");
    }
    assert!(line.contains(".limit`") || line.contains("cpu."), "no limit named: {line}");
    assert_no_records(&r);
}

/// The embedded backend is refused rootless (its cgroup library creates v1 cgroups an ordinary
/// user may not, and on v2 goes on silently when it cannot): a policy that names only it is
/// refused before anything is created, with the way out.
#[test]
fn embedded_backend_is_refused_rootless() {
    let r = Rootless::start(&policy_dir_for("embedded"));
    let out = run(r.podman().args(["run", "--rm"]).args(NET).args(POLICY).arg(IMAGE), false);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("embedded backend cannot run rootless") && err.contains("--backend runc"), "{err}");
    assert_no_records(&r);
}

/// What a container author could ask for to reach the user's own files: Podman's state tree
/// (with a forged CRI sandbox annotation naming it), the user's semble policies and
/// configuration, semble's state. Each is refused, and nothing is left.
#[test]
fn a_container_author_cannot_mount_the_users_own_state() {
    let r = Rootless::start(&policy_dir_for("runc"));
    let _proxy = r.proxy("workspace");
    let home = r.runtime_dir().parent().unwrap().join("home");
    // As after the user's first container.
    run(r.as_user("mkdir").arg("-p").arg(r.shim_root().join("semble")), true);
    let attempts: Vec<(String, Vec<String>)> = vec![
        (
            format!("{}:/x", r.runtime_dir().join("containers").display()),
            vec!["--annotation".into(), "io.kubernetes.cri.sandbox-id=containers".into()],
        ),
        (format!("{}:/x", home.join(".local/share/containers").display()), vec![]),
        (format!("{}:/x", r.policy_dir().display()), vec![]),
        (format!("{}:/x", home.join(".config").display()), vec![]),
        (format!("{}:/x", r.shim_root().display()), vec![]),
        (format!("{}:/x", r.runtime_dir().join("semble/proxy").display()), vec![]),
    ];
    for (volume, extra) in attempts {
        let out = run(
            r.podman().args(["run", "--rm"]).args(NET).args(POLICY).args(&extra).args(["-v", &volume]).arg(IMAGE),
            false,
        );
        assert!(!out.status.success(), "-v {volume} was mounted: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("semble-shim: error:") && err.contains("mount"), "-v {volume}: {err}");
    }
    assert_no_records(&r);
}

fn assert_no_records(r: &Rootless) {
    let records = r.shim_root().join("semble");
    let left: Vec<_> = std::fs::read_dir(&records).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "records left under {}: {left:?}", records.display());
}

/// The real semble-proxy, run by the user on its socket: the container's bridge reaches it (the
/// proxy answers for itself: `probe.test` is not on its list).
#[test]
fn the_users_own_proxy_answers_through_the_bridge() {
    let r = Rootless::start(&policy_dir_for("runc"));
    let home = r.runtime_dir().parent().unwrap().join("home");
    let rules = home.join("rules.yaml");
    std::fs::write(&rules, "kind: ProxyRules\negress:\n  - host: allowed.test\n    ports: [80]\n").unwrap();
    let dir = r.runtime_dir().join("semble/proxy/workspace");
    run(r.as_user("mkdir").arg("-p").arg(&dir), true);
    let socket = dir.join("proxy.sock");
    let mut proxy = r
        .as_user(r.bin_dir().join("semble-proxy"))
        .arg("--rules")
        .arg(&rules)
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "semble-proxy did not listen on {}", socket.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run(r.podman().args(["run", "--rm"]).args(NET).args(POLICY).arg(IMAGE), false);
    let _ = proxy.kill();
    let _ = proxy.wait();
    let probe = Probe::parse(&stdout(&out));
    probe.assert_workspace_for("runc");
    assert!(probe.get("proxy").starts_with("HTTP/1.1_403"), "the user's proxy did not answer: {probe:?}");
}

/// `semble-shim doctor` run by the user: the rootless checks, each with its fix where needed.
#[test]
fn doctor_checks_what_rootless_podman_needs() {
    let r = Rootless::start(&policy_dir_for("runc"));
    let out = run(r.shim().args(["doctor", "--format", "json"]), false);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --format json: {e}: {}{}", stdout(&out), stderr(&out)));
    let checks = v.as_array().or_else(|| v["checks"].as_array()).unwrap_or_else(|| panic!("{v}"));
    let get = |name: &str| {
        checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no `{name}` check: {v}")).clone()
    };
    for ok in [
        "rootless: /etc/subuid",
        "rootless: /etc/subgid",
        "rootless: newuidmap",
        "rootless: newgidmap",
        "rootless: XDG_RUNTIME_DIR",
    ] {
        assert_eq!(get(ok)["status"], "ok", "{}", get(ok));
    }
    // This machine: /dev/net/tun is 0600 and cgroups are v1 — both said, with the fix.
    let tun_open = std::fs::metadata("/dev/net/tun")
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o006 == 0o006);
    if tun_open.is_ok_and(|o| !o) {
        let net = get("rootless: network");
        assert_eq!(net["status"], "warn", "{net}");
        assert!(net["fix"].as_str().unwrap().contains("/dev/net/tun"), "{net}");
    }
    if !semble_tests::cgroup_v2_unified() {
        let cg = get("rootless: cgroup limits");
        assert_eq!(cg["status"], "warn", "{cg}");
        assert!(cg["detail"].as_str().unwrap().contains("memory"), "{cg}");
        let emb = get("backend embedded");
        assert!(emb["detail"].as_str().unwrap().contains("cannot run rootless"), "{emb}");
    }
}

/// The Quadlet unit docs/install-podman.md gives passes `semble-policy lint`; the same unit
/// with `--runtime` in `PodmanArgs` (where `podman run` rejects it) does not.
#[test]
fn the_documented_quadlet_unit_passes_lint() {
    let doc = std::fs::read_to_string(semble_tests::workspace().join("docs/install-podman.md")).unwrap();
    let start = doc.find("```ini\n").expect("no ini block in docs/install-podman.md") + 7;
    let unit = &doc[start..start + doc[start..].find("```").unwrap()];
    assert!(unit.contains("[Container]") && unit.contains("semble.dev/policy=workspace"), "{unit}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workspace.container");
    std::fs::write(&path, unit).unwrap();
    let lint = semble_tests::bin("semble-policy");
    let out = run(std::process::Command::new(&lint).arg("lint").arg(&path), false);
    assert!(out.status.success(), "the documented unit fails lint:\n{}{}", stdout(&out), stderr(&out));
    let wrong = unit.replace("GlobalArgs=--runtime=semble", "PodmanArgs=--runtime=semble");
    std::fs::write(&path, wrong).unwrap();
    let out = run(std::process::Command::new(&lint).arg("lint").arg(&path), false);
    assert!(!out.status.success() && stdout(&out).contains("SB058"), "{}", stdout(&out));
}

/// Podman 4.3 has no Quadlet: `podman generate systemd --new` writes the unit. Its `ExecStart`
/// repeats `--runtime` and the annotation; run as systemd would (with `%t`/`%n` filled in), it
/// starts the container under the policy, and its `ExecStop`/`ExecStopPost` remove it.
#[test]
fn the_generated_systemd_unit_runs_the_container_under_the_policy() {
    let r = Rootless::start(&policy_dir_for("runc"));
    let _proxy = r.proxy("workspace");
    let name = unique("unit");
    run(r.podman().args(["create", "--name", &name]).args(NET).args(POLICY).arg(IMAGE).args(["sleep", "300"]), true);
    let out = run(r.podman().args(["generate", "systemd", "--new", "--name", &name]), true);
    let unit = stdout(&out);
    let runtime = r.bin_dir().join("semble-shim");
    let service = format!("container-{name}.service");
    let command = |key: &str| -> Vec<String> {
        let mut joined = String::new();
        let mut taking = false;
        for line in unit.lines() {
            if let Some(rest) = line.strip_prefix(&format!("{key}=")) {
                taking = true;
                joined.push_str(rest);
            } else if taking {
                joined.push(' ');
                joined.push_str(line.trim());
            } else {
                continue;
            }
            if joined.ends_with('\\') {
                joined.pop();
            } else {
                break;
            }
        }
        assert!(!joined.is_empty(), "no {key} in the unit:\n{unit}");
        let filled =
            joined.replace("%t", &r.runtime_dir().display().to_string()).replace("%n", &service).replace("%%", "%");
        // systemd's `-` before the program: ignore its failure.
        let mut words: Vec<String> = filled.split_whitespace().map(str::to_string).collect();
        words[0] = words[0].trim_start_matches('-').to_string();
        words
    };
    let start = command("ExecStart");
    let line = start.join(" ");
    assert!(line.contains(&format!("--runtime {}", runtime.display())), "the unit lost the runtime: {line}");
    assert!(line.contains("semble.dev/policy=workspace"), "the unit lost the policy: {line}");
    // systemd runs it with --sdnotify=conmon and --cgroups=no-conmon; without a systemd here,
    // drop what needs one and run the rest as the user.
    let args: Vec<&String> =
        start[1..].iter().filter(|a| !a.starts_with("--sdnotify") && !a.starts_with("--cgroups=")).collect();
    assert!(line.contains("--cgroup-manager cgroupfs"), "the unit lost the global flags it was created with: {line}");
    run(r.as_user(&start[0]).args(&args), true);
    let out = run(r.podman().args(["exec", &name, "/bin/probe"]), true);
    Probe::parse(&stdout(&out)).assert_workspace_for("runc");
    for key in ["ExecStop", "ExecStopPost"] {
        let stop = command(key);
        run(r.as_user(&stop[0]).args(&stop[1..]), false);
    }
    let left = run(r.podman().args(["ps", "-a", "--format", "{{.Names}}"]), true);
    assert!(!stdout(&left).contains(&name), "the unit's stop left the container: {}", stdout(&left));
}

/// gVisor rootless: runsc under the user's Podman. semble adds `--ignore-cgroups` (runsc would
/// create the sandbox's cgroups and fail on an undelegated host) and the policy holds inside
/// gVisor's kernel as it does rootful; the workspace's limits are best-effort, said in the log.
#[test]
fn gvisor_runs_rootless_without_cgroups() {
    let r = Rootless::start(&policy_dir_for("gvisor")).with_runsc();
    let _proxy = r.proxy("workspace");
    let name = unique("rootless-gvisor");
    run(r.podman().args(["run", "-d", "--name", &name]).args(NET).args(POLICY).arg(IMAGE).args(["sleep", "300"]), true);
    let id = container_id(&r, &name);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.shim_root().join("semble").join(&id).join("record.json")).unwrap())
            .unwrap();
    assert_eq!(record["backend"], "runsc", "{record}");
    let flags: Vec<&str> = record["backendFlags"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert!(flags.contains(&"--ignore-cgroups"), "{flags:?}");
    let out = run(r.podman().args(["exec", &name, "/bin/probe"]), true);
    let probe = Probe::parse(&stdout(&out));
    probe.assert_workspace_for("runsc");
    assert_eq!(probe.get("proxy"), PROXIED);
    run(r.podman().args(["rm", "-f", &name]), true);
    assert_no_records(&r);
}

/// The host's system files a container may have read-only (time zone, libraries a CDI spec
/// mounts) are root's, which inside the user namespace shows as the overflow uid: still bound.
#[test]
fn read_only_system_files_are_bound_rootless() {
    let r = Rootless::start(&policy_dir_for("runc"));
    let _proxy = r.proxy("workspace");
    let out = run(
        r.podman()
            .args(["run", "--rm"])
            .args(NET)
            .args(POLICY)
            .args(["-v", "/usr/share:/usr/share:ro", "-v", "/etc/localtime:/etc/localtime:ro"])
            .arg(IMAGE)
            .args(["cat", "/etc/localtime"]),
        true,
    );
    assert!(!out.stdout.is_empty(), "{}", stderr(&out));
}
