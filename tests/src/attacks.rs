//! The ways around the sandbox an adversarial review found, each mounted as an attacker would:
//! a real container, with the probe (`semble-probe`'s attack modes) as the hostile code, or a
//! hostile `config.json` as the container author would write it. Every scenario also checks
//! that the legitimate path still works. Run against each backend by `tests/tests/attacks_*.rs`.
//!
//! Network: the "other host" is a second network namespace the test creates, joined to the
//! sandbox's by a veth pair; nothing is routed beyond the pair.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::scenarios::*;
use crate::*;

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn probe_blocks(text: &str) -> Vec<Probe> {
    text.split_inclusive("PROBE DONE").filter(|b| b.contains("PROBE DONE")).map(Probe::parse).collect()
}

fn workspace_annotation(b: &Path) {
    edit_config(b, |c| c["annotations"] = json!({"semble.dev/policy": "workspace"}));
}

/// A container made with `create` (stdio to a file) and started.
struct Started {
    root: PathBuf,
    id: String,
    out: PathBuf,
    backend: &'static str,
    extra: Vec<String>,
}

impl Started {
    fn shim(&self) -> Command {
        let mut c = shim_for(&self.root, self.backend);
        c.args(&self.extra);
        c
    }

    fn new(t: &Path, backend: &'static str, b: &Path, extra: &[String], start: bool) -> Started {
        let s = Started {
            root: t.join("state"),
            id: unique("atk"),
            out: t.join("container.out"),
            backend,
            extra: extra.to_vec(),
        };
        let stdio = std::fs::File::create(&s.out).unwrap();
        let status = s
            .shim()
            .args(["create", "--bundle"])
            .arg(b)
            .arg(&s.id)
            .stdout(stdio.try_clone().unwrap())
            .stderr(stdio)
            .status()
            .unwrap();
        assert!(status.success(), "create failed:\n{}", s.output());
        if start {
            run(s.shim().args(["start", &s.id]), true);
        }
        s
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn dir(&self) -> PathBuf {
        self.root.join("semble").join(&self.id)
    }

    fn supervisor(&self) -> i32 {
        std::fs::read_to_string(self.dir().join("supervisor.pid")).unwrap().trim().parse().unwrap()
    }

    fn delete(&self) -> std::process::Output {
        let _ = run(self.shim().args(["kill", &self.id, "KILL"]), false);
        let t0 = Instant::now();
        loop {
            let out = run(self.shim().args(["delete", &self.id]), false);
            if out.status.success() || t0.elapsed() > Duration::from_secs(10) {
                return out;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The seccomp listener hijack: the supervisor is killed, then the workload installs a filter
/// with a notify listener of its own, answers "continue" to its own `unshare(CLONE_NEWUSER)`,
/// which the policy refuses. The listener must be refused (every filter semble loads refuses
/// the flag) and the unshare must stay refused — in the container's first process and in an
/// `exec` made after the supervisor died. The death is reported by `denials` and `delete`.
pub fn listener_hijack(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    // The workload waits at a FIFO (host side: the test) until the supervisor is dead. gVisor
    // has no supervisor (no seccomp user notification): there, the attack runs at once.
    let supervised = backend != "runsc";
    let script = if supervised {
        "cat /etc/gate >/dev/null; /bin/probe hijack; sleep 600"
    } else {
        "/bin/probe hijack; sleep 600"
    };
    let b = bundle(&t.path().join("bundle"), &["sh", "-c", script]);
    workspace_annotation(&b);
    let gate = b.join("rootfs/etc/gate");
    nix::unistd::mkfifo(&gate, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let c = Started::new(
        t.path(),
        backend,
        &b,
        &["--proxy-dir".into(), t.path().join("proxy").display().to_string()],
        true,
    );
    if supervised {
        // The legitimate path first: a refusal is explained while the supervisor lives.
        let out = run(c.shim().args(["exec", &c.id, "/bin/probe"]), true);
        assert_eq!(Probe::parse(&String::from_utf8_lossy(&out.stdout)).get("unshare_user"), "EPERM");
        wait_for("an explained denial", Duration::from_secs(5), || {
            std::fs::read_to_string(c.dir().join("denials.jsonl")).unwrap_or_default().contains("\"unshare\"")
        });
        let pid = nix::unistd::Pid::from_raw(c.supervisor());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        wait_for("the supervisor's death", Duration::from_secs(5), || {
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
        });
    }
    if supervised {
        std::fs::write(&gate, b"go\n").unwrap();
    }
    wait_for("the hijack attempt", Duration::from_secs(20), || c.output().contains("PROBE DONE"));
    let p = probe_blocks(&c.output()).remove(0);
    assert_ne!(p.get("new_listener"), "ok", "the workload created a seccomp listener: {p:?}");
    assert_ne!(p.get("hijack_unshare"), "ok", "unshare(CLONE_NEWUSER) went through: {p:?}");
    // The same from an exec made after the supervisor is gone.
    let out = run(c.shim().args(["exec", &c.id, "/bin/probe", "hijack"]), false);
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    assert_ne!(p.get("new_listener"), "ok", "{p:?}");
    assert_ne!(p.get("hijack_unshare"), "ok", "{p:?}");
    if supervised {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("supervisor"),
            "the exec must say its refusals are unexplained: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d = run(c.shim().args(["denials", &c.id]), true);
        let note = String::from_utf8_lossy(&d.stderr);
        assert!(note.contains("is not running") && note.contains("ENOSYS"), "denials must report it: {note}");
        let del = c.delete();
        assert!(
            String::from_utf8_lossy(&del.stderr).contains("not running"),
            "{}",
            String::from_utf8_lossy(&del.stderr)
        );
    } else {
        c.delete();
    }
}

/// On a fresh machine containerd creates `/run/containerd` mode 0600: the supervisor, which
/// drops its capabilities, must still serve the container under it (it opens what it needs
/// first), and explain the refusals.
pub fn supervisor_behind_an_untraversable_root(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let locked = t.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let b = bundle(&t.path().join("bundle"), &["sh", "-c", "/bin/probe; sleep 600"]);
    workspace_annotation(&b);
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let c =
        Started::new(&locked, backend, &b, &["--proxy-dir".into(), t.path().join("proxy").display().to_string()], true);
    wait_for("the probe", Duration::from_secs(20), || c.output().contains("PROBE DONE"));
    let p = probe_blocks(&c.output()).remove(0);
    assert_eq!(p.get("unshare_user"), "EPERM", "the policy's errno, from a live supervisor: {p:?}\n{}", c.output());
    wait_for("the explanation", Duration::from_secs(5), || {
        std::fs::read_to_string(c.dir().join("denials.jsonl")).unwrap_or_default().contains("\"unshare\"")
    });
    c.delete();
}

/// Egress from a network namespace the engine kept (the policy has ingress): TCP to the proxy's
/// port on another host, TCP 443, UDP 53 to a host that is not a resolver, in both families and
/// through an IPv4-mapped address — none may reach the other host. The resolver on 53, the
/// proxy bridge and ingress keep working.
pub fn egress_from_a_kept_namespace(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let sandbox = TestNetns::new(&[]);
    let other = TestNetns::new(&[]);
    sandbox.link(&other, &["10.77.0.1/24", "fd00:77::1/64"], &["10.77.0.2/24", "10.77.0.3/24", "fd00:77::2/64"]);
    let tcp = ["10.77.0.2:8080", "10.77.0.2:443", "[fd00:77::2]:8080"].map(|a| (a, other.recorder(a.parse().unwrap())));
    let udp_other = other.udp_recorder("10.77.0.2:53".parse().unwrap());
    let udp_v6 = other.udp_recorder("[fd00:77::2]:53".parse().unwrap());
    let resolver = other.udp_recorder("10.77.0.3:53".parse().unwrap());
    let attempts = [
        "tcp:10.77.0.2:8080",
        "tcp:10.77.0.2:443",
        "udp:10.77.0.2:53",
        "udpc:10.77.0.2:53",
        "tcp:[fd00:77::2]:8080",
        "udp:[fd00:77::2]:53",
        "tcp:[::ffff:10.77.0.2]:8080",
        "udp:[::ffff:10.77.0.2]:53",
        "udp:10.77.0.3:53",
    ];
    let script = format!("/bin/probe; /bin/probe egress {}; /bin/probe serve 8081; sleep 600", attempts.join(" "));
    let b = bundle(&t.path().join("bundle"), &["sh", "-c", &script]);
    edit_config(&b, |c| {
        c["annotations"] = json!({"semble.dev/policy": "workspace"});
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(sandbox.path());
            }
        }
    });
    let proxy_dir = t.path().join("proxy");
    let _proxy = FakeProxy::start(&proxy_dir, "workspace");
    let c = Started::new(
        t.path(),
        backend,
        &b,
        &["--proxy-dir".into(), proxy_dir.display().to_string(), "--resolver".into(), "10.77.0.3".into()],
        true,
    );
    wait_for("the egress attempts", Duration::from_secs(30), || c.output().matches("PROBE DONE").count() >= 2);
    wait_for("the ingress listener", Duration::from_secs(10), || c.output().contains("CHECK serve listening"));
    // Ingress from the other host still reaches the workload.
    let answer = other.read_from("10.77.0.1:8081".parse().unwrap());
    assert_eq!(answer.as_deref().map(str::trim).ok(), Some("ingress-ok"), "ingress must keep working: {answer:?}");
    let blocks = probe_blocks(&c.output());
    blocks[0].assert_workspace_for(backend);
    assert_eq!(blocks[0].get("proxy"), PROXIED, "the proxy bridge must keep working");
    let e = &blocks[1];
    for a in &attempts[..attempts.len() - 1] {
        let r = e.get(&format!("egress_{a}"));
        assert!(matches!(r, "EPERM" | "EACCES"), "{a} was not refused at once: {r}\n{e:?}");
    }
    // The guard itself, not only Landlock (which matches TCP ports only): the proxy's port.
    assert_eq!(e.get("egress_tcp:10.77.0.2:8080"), "EPERM", "{e:?}");
    assert_eq!(e.get("egress_udp:10.77.0.3:53"), "ok", "the resolver on 53 stays reachable: {e:?}");
    wait_for("the resolver's datagram", Duration::from_secs(5), || resolver.load(Ordering::SeqCst) >= 1);
    for (a, hits) in &tcp {
        assert_eq!(hits.load(Ordering::SeqCst), 0, "{a} on the other host was reached");
    }
    assert_eq!(udp_other.load(Ordering::SeqCst), 0, "UDP 53 reached a host that is no resolver");
    assert_eq!(udp_v6.load(Ordering::SeqCst), 0, "UDP 53 over IPv6 reached the other host");
    // The recorders record: the other host can reach itself.
    other.connect("10.77.0.2:8080".parse().unwrap()).unwrap();
    wait_for("the recorder", Duration::from_secs(2), || tcp[0].1.load(Ordering::SeqCst) == 1);
    c.delete();
}

/// `runAsNonRoot` holds for the process's life: a policy granting SETUID and SETGID (the engine
/// default a CRI pod gets) still cannot make the workload uid or gid 0, high bits or not.
pub fn identity_pinned(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let policies = t.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let src = std::fs::read_to_string(
        policy_dir_for(if backend == "runsc" { "gvisor" } else { backend }).join("workspace.yaml"),
    )
    .unwrap();
    let ids = src
        .replace("name: workspace", "name: ids")
        .replace("add: [CHOWN, DAC_OVERRIDE]", "add: [CHOWN, DAC_OVERRIDE, SETUID, SETGID]");
    assert!(ids.contains("SETUID"), "the workspace example changed: {ids}");
    std::fs::write(policies.join("ids.yaml"), ids).unwrap();
    let b = bundle(&t.path().join("bundle"), &["/bin/probe", "identity"]);
    edit_config(&b, |c| c["annotations"] = json!({"semble.dev/policy": "ids"}));
    let mut cmd = Command::new(bin("semble-shim"));
    cmd.arg("--root").arg(t.path().join("state")).arg("--policy-dir").arg(&policies).stdin(Stdio::null());
    if backend == "runsc" {
        cmd.arg("--runsc").arg(runsc());
    }
    let out =
        run(cmd.arg("--proxy-dir").arg(t.path().join("proxy")).args(["run", "-b"]).arg(&b).arg(unique("ids")), true);
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    for k in
        ["setuid_0", "setuid_0_high_bits", "setresuid_0", "setreuid_keep_0", "setgid_0", "setresgid_0", "setgroups_0"]
    {
        assert!(matches!(p.get(k), "EPERM" | "ENOSYS"), "{k}: {p:?}");
    }
    for k in ["uid_after", "euid_after", "gid_after"] {
        assert_eq!(p.get(k), "1000", "{k}: {p:?}");
    }
    assert_eq!(p.get("setuid_self"), "ok", "{p:?}");
    assert_eq!(p.get("setresgid_self"), "ok", "{p:?}");
}

/// Device nodes need CAP_MKNOD, under gVisor too (its own check ignores the capability): a
/// character device in /tmp is refused, a FIFO is not.
pub fn device_nodes(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["/bin/probe", "mknod"]);
    workspace_annotation(&b);
    let out = run(
        shim_for(&t.path().join("state"), backend)
            .arg("--proxy-dir")
            .arg(t.path().join("proxy"))
            .args(["run", "-b"])
            .arg(&b)
            .arg(unique("mknod")),
        true,
    );
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(p.get("mknod_char"), "EPERM", "{p:?}");
    assert_eq!(p.get("mknod_fifo"), "ok", "{p:?}");
}

/// Host bind mounts judged by what they resolve to: each spelling of a way out is refused with
/// one line naming the mount, and nothing is left behind; a plain volume still works.
pub fn host_mounts(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let link = t.path().join("to-etc");
    std::os::unix::fs::symlink("/etc", &link).unwrap();
    let theirs = t.path().join("theirs");
    std::fs::create_dir_all(theirs.join("vol")).unwrap();
    nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(4242)), None).unwrap();
    let bind =
        |src: &str, dst: &str| json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro"]});
    let attacks = vec![
        ("/tmp/.. (the host's root)", bind("/tmp/..", "/host")),
        ("a relative way up from the bundle", bind("../../../../../../../../etc", "/hostetc")),
        ("another process's root", bind("/proc/1/root", "/p1")),
        ("a symbolic link to /etc", bind(&link.display().to_string(), "/l")),
        ("the engines' socket directory", bind("/run", "/r")),
        ("/var/run's spelling of it", bind("/var/run", "/vr")),
        ("a directory another user can swap", bind(&theirs.join("vol").display().to_string(), "/v")),
        ("an extra proc", json!({"destination": "/hostproc", "type": "proc", "source": "proc"})),
        ("a sysfs elsewhere", json!({"destination": "/s2", "type": "sysfs", "source": "sysfs"})),
        (
            "an overlay",
            json!({"destination": "/o", "type": "overlay", "source": "overlay", "options": ["lowerdir=/etc"]}),
        ),
    ];
    let root = t.path().join("state");
    for (what, m) in attacks {
        let b = bundle(&t.path().join(format!("b-{}", unique("m"))), &["/bin/cat", "/host/etc/shadow"]);
        edit_config(&b, |c| {
            c["annotations"] = json!({"semble.dev/policy": "workspace"});
            c["mounts"].as_array_mut().unwrap().push(m.clone());
        });
        let original = std::fs::read(b.join("config.json")).unwrap();
        let id = unique("mnt");
        let out = run(
            shim_for(&root, backend)
                .arg("--proxy-dir")
                .arg(t.path().join("proxy"))
                .args(["create", "-b"])
                .arg(&b)
                .arg(&id),
            false,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: the container was created");
        assert!(err.contains("refused by policy `workspace`"), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
        assert_gone(&root, backend, &id, &b, &original);
    }
    // A volume of the test's own (root's directories all the way) is mounted as judged.
    let vol = t.path().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("data"), "volume-ok\n").unwrap();
    let b = bundle(&t.path().join("ok"), &["/bin/cat", "/workspace/data"]);
    edit_config(&b, |c| {
        c["annotations"] = json!({"semble.dev/policy": "workspace"});
        c["mounts"].as_array_mut().unwrap().push(bind(&vol.display().to_string(), "/workspace"));
    });
    let out = run(
        shim_for(&root, backend)
            .arg("--proxy-dir")
            .arg(t.path().join("proxy"))
            .args(["run", "-b"])
            .arg(&b)
            .arg(unique("vol")),
        true,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "volume-ok");
}

/// GPU devices are NVIDIA character devices by number: the host's disk renamed `/dev/nvidia0`
/// is refused; a real NVIDIA number gets its node and its device-cgroup rule (opening it reaches
/// the driver, absent here: ENXIO, not the cgroup's EPERM).
pub fn gpu_devices_by_number(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let disk = |c: &mut serde_json::Value| {
        c["annotations"] = json!({"semble.dev/policy": "llm-server"});
        c["linux"]["devices"] = json!([{"path": "/dev/nvidia0", "type": "b", "major": 254, "minor": 0, "fileMode": 438, "uid": 0, "gid": 0}]);
        c["linux"]["resources"]["devices"] =
            json!([{"allow": true, "type": "b", "major": 254, "minor": 0, "access": "rwm"}]);
    };
    let b = bundle(&t.path().join("disk"), &["/bin/true"]);
    edit_config(&b, disk);
    let root = t.path().join("state");
    let out = run(shim_for(&root, backend).args(["create", "-b"]).arg(&b).arg(unique("disk")), false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not an NVIDIA device"), "{err}");
    let b = bundle(&t.path().join("gpu"), &["sh", "-c", "ls -ln /dev/nvidia0; cat /dev/nvidia0"]);
    edit_config(&b, |c| {
        c["annotations"] = json!({"semble.dev/policy": "llm-server"});
        c["linux"]["devices"] = json!([{"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0, "fileMode": 438, "uid": 0, "gid": 0}]);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let out = run(shim_for(&root, backend).args(["run", "-b"]).arg(&b).arg(unique("gpu")), false);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("195,") && text.contains("0 "), "the node must exist with its number: {text}");
    assert!(
        text.contains("No such device or address"),
        "the device cgroup must let it through to the (absent) driver: {text}"
    );
}

// --- the ceiling over the whole request (issue 18) ------------------------------------------

fn create_fails(t: &Path, backend: &str, b: &Path, extra: &[&str]) -> String {
    let root = t.join("state");
    let original = std::fs::read(b.join("config.json")).unwrap();
    let id = unique("ceil");
    let out = run(shim_for(&root, backend).args(extra).args(["create", "-b"]).arg(b).arg(&id), false);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "the container was created:\n{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_gone(&root, backend, &id, b, &original);
    err
}

/// Hooks in the request run on the host as root: refused (nothing runs), unless the operator
/// allowed that program, and then it runs.
pub fn hooks(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let marker = t.path().join("hook-ran-on-the-host");
    let b = bundle(&t.path().join("b"), &["/bin/true"]);
    let script = format!("touch {}", marker.display());
    edit_config(&b, |c| {
        c["annotations"] = json!({"semble.dev/policy": "workspace"});
        c["hooks"] = json!({
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}],
            "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]
        });
    });
    let err = create_fails(t.path(), backend, &b, &["--proxy-dir", &t.path().join("proxy").display().to_string()]);
    assert!(err.contains("hook `/bin/sh`") && err.contains("--allow-hook"), "{err}");
    assert!(!marker.exists(), "a refused hook ran on the host");
    // The operator's hook runs.
    let out = run(
        shim_for(&t.path().join("state"), backend)
            .args(["--allow-hook", "/bin/sh", "--proxy-dir"])
            .arg(t.path().join("proxy"))
            .args(["run", "-b"])
            .arg(&b)
            .arg(unique("hook")),
        false,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(marker.exists(), "the allowed hook did not run");
}

/// What the request may not raise: RLIMIT_RTPRIO 99 (SCHED_FIFO outside the quota), an OOM
/// score of -1000 — held down, seen from inside; id mappings onto host root, unconfined AppArmor,
/// fields semble does not know — refused.
pub fn request_limits(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["sh", "-c", "cat /proc/self/limits /proc/self/oom_score_adj"]);
    edit_config(&b, |c| {
        c["annotations"] = json!({"semble.dev/policy": "workspace"});
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_RTPRIO", "soft": 99, "hard": 99},
            {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}
        ]);
        c["process"]["oomScoreAdj"] = json!(-1000);
    });
    let out = run(
        shim_for(&t.path().join("state"), backend)
            .arg("--proxy-dir")
            .arg(t.path().join("proxy"))
            .args(["run", "-b"])
            .arg(&b)
            .arg(unique("lim")),
        true,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rtprio = text.lines().find(|l| l.starts_with("Max realtime priority")).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(rtprio.split_whitespace().skip(3).take(2).collect::<Vec<_>>(), ["0", "0"], "{rtprio}");
    assert_eq!(text.lines().last().map(str::trim), Some("0"), "oom_score_adj must not go below 0: {text}");
    for (what, edit) in [
        ("/linux/uidMappings", json!({"linux": {"uidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}]}})),
        ("/process/apparmorProfile", json!({"process": {"apparmorProfile": "unconfined"}})),
        ("/linux/newField", json!({"linux": {"newField": {"x": 1}}})),
    ] {
        let b = bundle(&t.path().join(unique("r")), &["/bin/true"]);
        edit_config(&b, |c| {
            c["annotations"] = json!({"semble.dev/policy": "workspace"});
            merge(c, &edit);
        });
        let err = create_fails(t.path(), backend, &b, &["--proxy-dir", &t.path().join("proxy").display().to_string()]);
        assert!(err.contains(what), "{what}: {err}");
    }
}

fn merge(into: &mut serde_json::Value, from: &serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// cgroup v2 files in `linux.resources.unified` cannot lift the policy's limits (read from what
/// the shim decides: this host's runc takes no unified files on its cgroup v1 controllers).
pub fn unified_clamped(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["/bin/true"]);
    edit_config(&b, |c| {
        c["annotations"] = json!({"semble.dev/policy": "workspace"});
        c["linux"]["resources"]["unified"] = json!({"memory.max": "max", "pids.max": "max", "memory.oom.group": "1"});
    });
    let out =
        run(shim_for(&t.path().join("state"), backend).args(["explain-bundle", "--format", "json"]).arg(&b), true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let change = |f: &str| v["changes"].as_array().unwrap().iter().find(|c| c["field"] == f).cloned();
    let mem = change("/linux/resources/unified/memory.max").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(mem["enforced"], "2147483648", "{mem}");
    assert_eq!(mem["action"], "clamp");
    assert_eq!(change("/linux/resources/unified/pids.max").unwrap()["enforced"], "512");
}

/// `update` holds what it sets to the policy: a 10 µs period, an unbounded quota and memory,
/// swap — read back from the container's cgroups.
pub fn update_clamped(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let id = unique("upd");
    let cgroup = format!("/semble-test/{id}");
    let b = bundle(&t.path().join("b"), &["sleep", "60"]);
    edit_config(&b, |c| {
        c["annotations"] = json!({"semble.dev/policy": "workspace"});
        c["linux"]["cgroupsPath"] = json!(cgroup);
    });
    let root = t.path().join("state");
    let stdio = std::fs::File::create(t.path().join("out")).unwrap();
    let status = shim_for(&root, backend)
        .arg("--proxy-dir")
        .arg(t.path().join("proxy"))
        .args(["run", "-d", "-b"])
        .arg(&b)
        .arg(&id)
        .stdout(stdio.try_clone().unwrap())
        .stderr(stdio)
        .status()
        .unwrap();
    assert!(status.success(), "{}", std::fs::read_to_string(t.path().join("out")).unwrap_or_default());
    let out = run(
        shim_for(&root, backend).args([
            "update",
            "--cpu-period",
            "10",
            "--cpu-quota",
            "99999999",
            "--memory",
            "100g",
            "--memory-swap",
            "-1",
            &id,
        ]),
        false,
    );
    let read = |ctl: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}{cgroup}/{file}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let period = read("cpu", "cpu.cfs_period_us");
    let quota = read("cpu", "cpu.cfs_quota_us");
    let memory = read("memory", "memory.limit_in_bytes");
    let _ = run(shim_for(&root, backend).args(["delete", "--force", &id]), false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lowered"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(period, "1000", "the period is held to 1 ms at least");
    assert_eq!(quota, "2000", "2 CPUs over that period");
    assert_eq!(memory, "2147483648", "the policy's memory");
}

/// A container saying it is a pod's sandbox (an image can carry the annotation) gets semble-init
/// and the whole policy: Landlock still refuses an unlisted read.
pub fn forged_sandbox(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["/bin/probe"]);
    edit_config(&b, |c| {
        c["annotations"] = json!({"semble.dev/policy": "workspace", "io.kubernetes.cri.container-type": "sandbox"})
    });
    let out = run_with_workspace_proxy(t.path(), backend, &b, "forged", true);
    // It is taken for a pod's container (the proxy is then the pod's, not a bridge), and held to
    // everything the workspace policy enforces.
    Probe::parse(&String::from_utf8_lossy(&out.stdout)).assert_workspace_enforced(backend);
}

/// A program whose name carries a newline and a YAML list item makes a denied call: the table,
/// the text log and the `--patch` overlay show its name on one line; the overlay allows only
/// what was denied.
pub fn workload_strings(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["sh", "-c", "/bin/probe evil-name; sleep 600"]);
    workspace_annotation(&b);
    let c = Started::new(
        t.path(),
        backend,
        &b,
        &["--proxy-dir".into(), t.path().join("proxy").display().to_string()],
        true,
    );
    wait_for("the denied call", Duration::from_secs(20), || c.output().contains("PROBE DONE"));
    wait_for("its explanation", Duration::from_secs(5), || {
        std::fs::read_to_string(c.dir().join("denials.jsonl")).unwrap_or_default().contains("vhangup")
    });
    let out = run(c.shim().args(["denials", "--patch", &c.id]), true);
    let overlay = String::from_utf8_lossy(&out.stdout).to_string();
    let items: Vec<&str> = overlay.lines().filter(|l| l.trim_start().starts_with("- ")).collect();
    assert_eq!(items.len(), 1, "the overlay allows exactly what was denied: {overlay}");
    assert!(items[0].contains("- vhangup"), "{overlay}");
    let text = std::fs::read_to_string(c.dir().join("denials.log")).unwrap();
    assert!(text.lines().all(|l| !l.trim_start().starts_with("- bpf")), "{text}");
    let table = run(c.shim().args(["denials", &c.id]), true);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("vhangup") && table.lines().all(|l| !l.trim_start().starts_with("- bpf")), "{table}");
    c.delete();
}

/// Other local users reach neither a container's supervisor socket nor the proxy's: a process
/// running as `nobody` on the host gets EACCES.
pub fn local_users(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["sleep", "600"]);
    workspace_annotation(&b);
    let proxy_dir = t.path().join("run-semble-proxy");
    let c = Started::new(t.path(), backend, &b, &["--proxy-dir".into(), proxy_dir.display().to_string()], true);
    let proxy = FakeProxy::start(&proxy_dir, "workspace");
    let notify = c.dir().join("box/notify.sock");
    assert!(notify.exists());
    // The test's own tempdir is 0700: open the way to the state root as a real deployment has it.
    std::fs::set_permissions(t.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for sock in [&notify, &proxy.socket] {
        let path = sock.clone();
        let r = crate::as_nobody(move || std::os::unix::net::UnixStream::connect(&path).map(drop));
        assert_eq!(
            r.map_err(|e| e.raw_os_error()),
            Err(Some(libc::EACCES)),
            "{} is reachable by another user",
            sock.display()
        );
    }
    c.delete();
}

/// A container that says it belongs to a pod (CRI annotations a container author or an image can
/// carry) naming a sandbox semble never created, in a network namespace linked to another host:
/// it is not taken for a pod's container, so its network is not left to a pod's NetworkPolicies.
/// Either it is refused (gVisor cannot cut a kept network outside a pod), or its egress is cut
/// (runc: the egress guard and Landlock); nothing reaches the other host.
pub fn forged_pod_member(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let sandbox = TestNetns::new(&[]);
    let other = TestNetns::new(&[]);
    sandbox.link(&other, &["10.78.0.1/24"], &["10.78.0.2/24"]);
    let hits = other.recorder("10.78.0.2:443".parse().unwrap());
    let b = bundle(&t.path().join("b"), &["sh", "-c", "/bin/probe egress tcp:10.78.0.2:443"]);
    edit_config(&b, |c| {
        c["annotations"] = json!({
            "semble.dev/policy": "workspace",
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-id": "6d2f7e0a9b8c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e",
        });
        join_netns(c, &sandbox.path());
    });
    let out = run_with_workspace_proxy(t.path(), backend, &b, "forged-pod", false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        let e = probe_blocks(&stdout).pop().unwrap_or_else(|| panic!("no probe output: {stdout}{stderr}"));
        let r = e.get("egress_tcp:10.78.0.2:443");
        assert!(matches!(r, "EPERM" | "EACCES" | "ENETUNREACH"), "a forged pod member reached out: {r}\n{e:?}");
    } else {
        assert!(stderr.contains("semble-shim: error:"), "{stderr}");
        assert!(!stderr.contains("NetworkPolicies") || backend == "runsc", "{stderr}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the other host was reached by a forged pod member\n{stdout}{stderr}");
}
