//! Denials explained as they happen (seccomp user notification), the supervisor failing safe,
//! and policies recorded from real runs — under runc, the embedded runtime and Podman.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use semble_seccomp::denials::Denial;
use semble_tests::scenarios::*;
use semble_tests::*;

/// The errno results the probe reports for the calls the workspace policy refuses.
const REFUSED: &[&str] =
    &["unshare_user", "mount", "ptrace", "bpf", "keyctl", "userfaultfd", "raw_socket", "packet_socket"];

fn denials_in(path: &Path) -> Vec<Denial> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
    t0.elapsed()
}

/// A copy of the example policies with `explainDenials: false` in `workspace.yaml`.
fn policies_without_explanations(dir: &Path, backend: &str) -> PathBuf {
    let out = dir.join("policies-plain");
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(policy_dir_for(backend)).unwrap() {
        let e = e.unwrap();
        if e.path().extension().is_some_and(|x| x == "yaml") {
            std::fs::copy(e.path(), out.join(e.file_name())).unwrap();
        }
    }
    let w = std::fs::read_to_string(out.join("workspace.yaml")).unwrap();
    let w = w.replace("    defaultAction: errno\n", "    defaultAction: errno\n    explainDenials: false\n");
    assert!(w.contains("explainDenials: false"));
    std::fs::write(out.join("workspace.yaml"), w).unwrap();
    out
}

struct Running {
    root: PathBuf,
    id: String,
    out: PathBuf,
    backend: &'static str,
}

impl Running {
    /// `create` + `start` of `args` under the workspace policy; stdout and stderr to a file.
    fn start(t: &Path, backend: &'static str, policies: Option<&Path>, args: &[&str]) -> Running {
        let b = bundle(&t.join("bundle"), args);
        edit_config(&b, |c| c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"}));
        let root = t.join("state");
        let id = unique("deny");
        let out = t.join("container.out");
        let stdio = std::fs::File::create(&out).unwrap();
        let mut cmd = match policies {
            Some(p) => {
                let mut c = Command::new(bin("semble-shim"));
                c.arg("--root").arg(&root).arg("--policy-dir").arg(p).stdin(std::process::Stdio::null());
                c
            }
            None => shim_for(&root, backend),
        };
        let status = cmd
            .arg("--proxy-dir")
            .arg(t.join("proxy"))
            .args(["create", "--bundle"])
            .arg(&b)
            .arg(&id)
            .stdout(stdio.try_clone().unwrap())
            .stderr(stdio)
            .status()
            .unwrap();
        assert!(status.success(), "{}", std::fs::read_to_string(&out).unwrap());
        run(shim_for(&root, backend).args(["start", &id]), true);
        Running { root, id, out, backend }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn state_dir(&self) -> PathBuf {
        self.root.join("semble").join(&self.id)
    }

    fn log(&self) -> PathBuf {
        self.state_dir().join("denials.jsonl")
    }

    fn supervisor_pid(&self) -> i32 {
        std::fs::read_to_string(self.state_dir().join("supervisor.pid")).unwrap().trim().parse().unwrap()
    }

    fn delete(&self) {
        let _ = run(shim_for(&self.root, self.backend).args(["kill", &self.id, "KILL"]), false);
        let t0 = Instant::now();
        loop {
            let out = run(shim_for(&self.root, self.backend).args(["delete", &self.id]), false);
            if out.status.success() || t0.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn probe_blocks(text: &str) -> Vec<Probe> {
    text.split_inclusive("PROBE DONE").filter(|b| b.contains("PROBE DONE")).map(Probe::parse).collect()
}

/// The probe under the workspace policy, with and without explanations: the same errno for
/// every refused call; with them, a line per refused syscall naming the rule and the fix,
/// written within 100 ms; then the supervisor is killed and the calls still fail.
fn explained(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();

    // Without explanations: what the kernel's ERRNO filter answers.
    let plain_dir = t.path().join("plain");
    let plain = Running::start(
        &plain_dir,
        backend,
        Some(&policies_without_explanations(t.path(), backend)),
        &["sh", "-c", "/bin/probe; sleep 300"],
    );
    wait_for("the probe (no explanations)", Duration::from_secs(20), || plain.output().contains("PROBE DONE"));
    let without = probe_blocks(&plain.output()).remove(0);
    assert!(!plain.state_dir().join("box/notify.sock").exists(), "no supervisor when explanations are off");
    plain.delete();

    // With explanations (the default): the probe runs every 300 ms.
    let dir = t.path().join("explained");
    let c = Running::start(&dir, backend, None, &["sh", "-c", "while true; do /bin/probe; sleep 0.3; done"]);
    wait_for("the first probe", Duration::from_secs(20), || c.output().contains("PROBE DONE"));
    let seen_done = Instant::now();
    let needed =
        |d: &[Denial]| ["ptrace", "unshare", "mount"].iter().all(|s| d.iter().any(|x| x.syscall == *s && x.pid > 0));
    let latency = wait_for("the denial lines", Duration::from_secs(5), || needed(&denials_in(&c.log())));
    let total = seen_done.elapsed();
    eprintln!("denial lines present {latency:?} after the probe finished");
    assert!(total < Duration::from_millis(100), "the log named the denials {total:?} after the probe finished");
    let with = probe_blocks(&c.output()).remove(0);
    with.assert_workspace_for(backend);
    for k in REFUSED {
        assert_eq!(with.get(k), without.get(k), "{k}: the same errno with and without explanations");
    }

    let d = denials_in(&c.log());
    let find = |s: &str| d.iter().find(|x| x.syscall == s).unwrap_or_else(|| panic!("no line for {s}: {d:?}"));
    let ptrace = find("ptrace");
    assert_eq!(ptrace.rule, "spec.seccomp.deny[0] ptrace");
    assert_eq!(ptrace.call, "ptrace(PTRACE_TRACEME, 0)");
    assert_eq!(ptrace.errno, "EPERM");
    assert_eq!(ptrace.policy, "workspace");
    assert_eq!(ptrace.container, c.id);
    assert_eq!(ptrace.comm, "probe");
    assert_eq!(ptrace.exe, "/bin/probe", "the executable as invoked in the container");
    assert!(ptrace.fix.contains("spec.seccomp.deny"));
    let unshare = find("unshare");
    assert_eq!(unshare.call, "unshare(CLONE_NEWUSER)");
    assert_eq!(unshare.rule, "baseline default: not allowed");
    assert_eq!(unshare.fix, "add `unshare` to spec.seccomp.allow");
    assert!(unshare.danger.is_some(), "{unshare:?}");
    let mount = find("mount");
    assert_eq!(mount.rule, "baseline default: not allowed");
    let socket = d.iter().find(|x| x.syscall == "socket" && x.call.starts_with("socket(AF_PACKET")).unwrap();
    assert!(socket.rule.starts_with("baseline default: socket:"), "{socket:?}");
    // The text log says the same for people.
    let text = std::fs::read_to_string(c.state_dir().join("denials.log")).unwrap();
    assert!(text.contains("semble: denied unshare(CLONE_NEWUSER) (EPERM)"), "{text}");

    // The summary and the overlay.
    let out = run(shim_for(&c.root, backend).args(["denials", &c.id]), true);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("ptrace") && table.contains("spec.seccomp.deny[0] ptrace"), "{table}");
    let out = run(shim_for(&c.root, backend).args(["denials", &c.id, "--format", "json"]), true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["denials"].as_array().unwrap().iter().any(|r| r["syscall"] == "mount" && r["count"].as_u64() >= Some(1)));
    let out = run(shim_for(&c.root, backend).args(["denials", &c.id, "--patch"]), true);
    let patch = String::from_utf8_lossy(&out.stdout);
    assert!(patch.contains("      - mount"), "{patch}");
    assert!(patch.contains("`ptrace` is in spec.seccomp.deny"), "{patch}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("allowing `unshare` is dangerous"));

    // Kill the supervisor: the container keeps running and the refused calls still fail
    // (the kernel answers ENOSYS once no listener is left).
    let sup = c.supervisor_pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sup), nix::sys::signal::Signal::SIGKILL).unwrap();
    let blocks_before = probe_blocks(&c.output()).len();
    wait_for("a probe after the supervisor died", Duration::from_secs(10), || {
        probe_blocks(&c.output()).len() >= blocks_before + 2
    });
    let after = probe_blocks(&c.output()).pop().unwrap();
    for k in ["unshare_user", "mount", "ptrace", "keyctl", "packet_socket"] {
        assert_eq!(after.get(k), "ENOSYS", "{k} after the supervisor died: {after:?}");
    }
    assert_eq!(after.get("write_workspace"), "ok", "allowed calls are unaffected");
    // exec still works, fail-closed the same way, and says why.
    let out = run(shim_for(&c.root, backend).args(["exec", &c.id, "/bin/probe"]), true);
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(p.get("ptrace"), "ENOSYS");
    assert!(String::from_utf8_lossy(&out.stderr).contains("supervisor"), "{}", String::from_utf8_lossy(&out.stderr));

    c.delete();
    assert!(!c.state_dir().exists(), "state left after delete");
    assert!(c.root.join("denials").join(format!("{}.jsonl", c.id)).is_file(), "the denial log is kept");
    // `denials` still answers from the kept log.
    let out = run(shim_for(&c.root, backend).args(["denials", &c.id]), true);
    assert!(String::from_utf8_lossy(&out.stdout).contains("unshare"));
}

/// No supervisor, socket or process is left after `delete`.
fn nothing_left(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let c = Running::start(t.path(), backend, None, &["sh", "-c", "/bin/probe; sleep 300"]);
    wait_for("the probe", Duration::from_secs(20), || c.output().contains("PROBE DONE"));
    let sup = c.supervisor_pid();
    assert!(Path::new(&format!("/proc/{sup}")).exists());
    c.delete();
    wait_for("the supervisor to exit", Duration::from_secs(3), || {
        std::fs::read_to_string(format!("/proc/{sup}/stat")).map(|s| s.contains(") Z")).unwrap_or(true)
    });
    assert!(!c.state_dir().exists());
    let leftovers: Vec<_> = walk(&c.root).into_iter().filter(|p| p.ends_with("notify.sock")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn runc_denials_are_explained_with_the_same_errno_and_fail_safe() {
    explained("runc");
}

#[test]
fn embedded_denials_are_explained_with_the_same_errno_and_fail_safe() {
    explained("embedded");
}

#[test]
fn runc_leaves_nothing_behind() {
    nothing_left("runc");
}

#[test]
fn embedded_leaves_nothing_behind() {
    nothing_left("embedded");
}

#[test]
fn podman_denials_are_explained() {
    // Podman calls the runtime's `delete` without the `--runtime-flag`s, so the shim keeps its
    // state in the default root here, as it does on a real host.
    let p = Podman::start(policy_dir_for("runc"));
    let _proxy = FakeProxy::start(&p.proxy_dir(), "workspace");
    let t = tempfile::tempdir().unwrap();
    let cidfile = t.path().join("cid");
    let out = run(
        p.cmd()
            .args(["run", "--rm", "--cidfile"])
            .arg(&cidfile)
            .args(Podman::RUN)
            .args(["--annotation", "semble.dev/policy=workspace"])
            .arg(&p.image),
        true,
    );
    let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    probe.assert_workspace();
    let id = std::fs::read_to_string(&cidfile).unwrap().trim().to_string();
    // The container is gone (`--rm`; Podman removes it from conmon's exit command, which may
    // finish after `run` returns), with its supervisor; its denial log was kept.
    let root = Path::new("/run/semble-shim");
    let state = root.join("semble").join(&id);
    let kept = root.join("denials").join(format!("{id}.jsonl"));
    wait_for("podman to delete the container", Duration::from_secs(10), || !state.exists() && kept.is_file());
    let d = denials_in(&kept);
    for s in ["ptrace", "unshare", "mount"] {
        let x = d.iter().find(|x| x.syscall == s).unwrap_or_else(|| panic!("{s}: {d:?}"));
        assert!(!x.rule.is_empty() && !x.fix.is_empty());
        assert_eq!(x.container, id);
    }
    let out = run(Command::new(bin("semble-policy")).arg("denials").arg(&kept), true);
    assert!(String::from_utf8_lossy(&out.stdout).contains("spec.seccomp.deny[0] ptrace"));
    let out = run(Command::new(bin("semble-shim")).args(["denials", &id]), true);
    assert!(String::from_utf8_lossy(&out.stdout).contains("spec.seccomp.deny[0] ptrace"));
    let _ = std::fs::remove_file(&kept);
}

/// A small C program: its own syscalls beyond what busybox needs (`getcwd`, `sysinfo`).
const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <sys/sysinfo.h>
int main(void) {
    char buf[256];
    struct sysinfo si;
    if (getcwd(buf, sizeof buf) == NULL) { perror("getcwd"); return 3; }
    if (sysinfo(&si) != 0) { perror("sysinfo"); return 4; }
    printf("cwd=%s procs>0=%d\n", buf, si.procs > 0);
    return 0;
}
"#;

/// `semble-shim --record FILE run …`, then the same bundle under the recorded policy.
fn shim_run(t: &Path, args: &[&str], extra: &[&str], name: &str) -> (std::process::Output, PathBuf, String) {
    let b = t.join(format!("bundle-{name}"));
    if !b.exists() {
        bundle(&b, args);
        edit_config(&b, |c| c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"}));
    }
    let root = t.join("state");
    let id = unique(name);
    let out = run(shim_for(&root, "runc").args(extra).args(["run", "--bundle"]).arg(&b).arg(&id), false);
    (out, root, id)
}

/// Record `args`, run them under the recording, then without the first of `drop` recorded.
fn round_trip(t: &Path, args: &[&str], drop: &[&str], expect_out: &str) {
    let rec = t.join("recorded.yaml");
    let (out, _, _) = shim_run(t, args, &["--record", rec.to_str().unwrap()], "rec");
    assert!(out.status.success(), "recording run failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&rec).unwrap();
    assert!(text.contains("baseline: none"), "{text}");
    let drop = *drop
        .iter()
        .find(|d| text.contains(&format!("- {d}  # first seen:")))
        .unwrap_or_else(|| panic!("none of {drop:?} was recorded: {text}"));
    // The recorded policy keeps the rest of the workspace policy (user, Landlock, network).
    let p = semble_policy::parse(&text).unwrap().policy;
    assert_eq!(p.process.user, Some(1000));
    assert!(p.filesystem.is_some());

    // Enforced: it runs.
    let (out, _, _) = shim_run(t, args, &["--policy", rec.to_str().unwrap()], "enforced");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "under the recorded policy: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(expect_out), "{stdout}");

    // One recorded syscall removed: it fails, and the explanation names it.
    let cut = t.join("cut.yaml");
    let without: String =
        text.lines().filter(|l| !l.trim_start().starts_with(&format!("- {drop} "))).map(|l| format!("{l}\n")).collect();
    assert_ne!(without, text);
    std::fs::write(&cut, without).unwrap();
    let (out, root, id) = shim_run(t, args, &["--policy", cut.to_str().unwrap()], "cut");
    assert!(!out.status.success(), "it ran without `{drop}`: {}", String::from_utf8_lossy(&out.stdout));
    let d = denials_in(&root.join("denials").join(format!("{id}.jsonl")));
    let x = d.iter().find(|x| x.syscall == drop).unwrap_or_else(|| panic!("no explanation for {drop}: {d:?}"));
    assert_eq!(x.rule, "baseline none: not in spec.seccomp.allow");
    assert_eq!(x.fix, format!("add `{drop}` to spec.seccomp.allow"));
}

#[test]
fn a_recorded_busybox_script_runs_under_its_policy_and_fails_without_one_syscall() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    // busybox's `ls` treats a failing getdents64 as an empty directory and its `uname` prints
    // garbage on failure; `mkdir` fails loudly.
    round_trip(
        t.path(),
        &[
            "sh",
            "-ec",
            "echo start; ls /workspace /tmp > /dev/null; mkdir /tmp/d; cat /etc/passwd > /dev/null; echo done",
        ],
        &["mkdir", "mkdirat"],
        "done",
    );
}

#[test]
fn a_recorded_c_program_runs_under_its_policy_and_fails_without_one_syscall() {
    require_root();
    let gcc = require_tool("gcc", "gcc");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("prog.c");
    std::fs::write(&src, C_PROGRAM).unwrap();
    let b = t.path().join("bundle-rec");
    bundle(&b, &["/bin/prog"]);
    edit_config(&b, |c| c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"}));
    run(Command::new(gcc).args(["-static", "-O2", "-o"]).arg(b.join("rootfs/bin/prog")).arg(&src), true);
    for other in ["enforced", "cut"] {
        let o = t.path().join(format!("bundle-{other}"));
        run(Command::new("cp").arg("-a").arg(&b).arg(&o), true);
    }
    round_trip(t.path(), &["/bin/prog"], &["sysinfo"], "procs>0=1");
}

#[test]
fn semble_policy_record_writes_a_policy_and_merges_runs() {
    let busybox = require_tool("busybox", "busybox-static");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("rec.yaml");
    let r = run(
        Command::new(bin("semble-policy"))
            .args(["record", "--name", "tool", "--out"])
            .arg(&out)
            .arg("--")
            .arg(&busybox)
            .args(["sh", "-c", "echo hi; ls / > /dev/null"]),
        true,
    );
    assert_eq!(String::from_utf8_lossy(&r.stdout), "hi\n");
    let first = semble_policy::parse(&std::fs::read_to_string(&out).unwrap()).unwrap().policy;
    assert_eq!(first.name, "tool");
    for s in ["execve", "getdents64", "write", "sendmsg"] {
        assert!(first.seccomp.allow.iter().any(|a| a == s), "{s} missing: {:?}", first.seccomp.allow);
    }
    // A second run merges; the command's exit status is passed on.
    let r = run(
        Command::new(bin("semble-policy")).args(["record", "--out"]).arg(&out).arg("--").arg(&busybox).args([
            "sh",
            "-c",
            "uname -r > /dev/null; exit 3",
        ]),
        false,
    );
    assert_eq!(r.status.code(), Some(3));
    let second = semble_policy::parse(&std::fs::read_to_string(&out).unwrap()).unwrap().policy;
    assert!(second.seccomp.allow.iter().any(|a| a == "uname"));
    assert!(first.seccomp.allow.iter().all(|a| second.seccomp.allow.contains(a)));
    // Recording a command that does not exist says so.
    let r = run(
        Command::new(bin("semble-policy")).args(["record", "--out"]).arg(&out).args(["--", "/nonexistent/x"]),
        false,
    );
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("cannot execute `/nonexistent/x`"));
}

/// A workload cannot turn recording (which filters nothing) on by itself: the annotation is
/// honoured only when the operator configured the handler with `--allow-record-annotation`.
#[test]
fn the_record_annotation_needs_the_operators_consent() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["/bin/probe"]);
    edit_config(&b, |c| {
        c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace", "semble.dev/record": "true"})
    });
    let root = t.path().join("state");
    let id = unique("ann");
    let out = run(shim_for(&root, "runc").args(["run", "--bundle"]).arg(&b).arg(&id), true);
    assert!(String::from_utf8_lossy(&out.stderr).contains("annotation semble.dev/record ignored"));
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(p.get("ptrace"), "EPERM", "still enforced");
    assert!(!root.join("recordings").exists());

    let id = unique("ann");
    let out =
        run(shim_for(&root, "runc").arg("--allow-record-annotation").args(["run", "--bundle"]).arg(&b).arg(&id), true);
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(p.get("ptrace"), "ok", "recording lets everything through");
    let rec = std::fs::read_to_string(root.join("recordings").join(format!("{id}.yaml"))).unwrap();
    assert!(rec.contains("- ptrace  # first seen: probe"), "{rec}");
}
