//! A gVisor pod driven the way containerd's runc shim drives `semble-shim-runsc`: the sandbox
//! container, then sub-containers created with containerd's annotations and a pid-file, started
//! with a pipe on stdout that the caller reads to its end. (tests/tests/cri.rs runs the same
//! through containerd itself.)
//!
//! Its own test binary: like containerd's shim it makes itself a child subreaper and reaps every
//! child in one place (runsc leaves its gofers to the subreaper, and waits for them to be gone
//! when it deletes a container), so it runs commands through that reaper, not `Command::output`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use semble_tests::scenarios::shim_for;
use semble_tests::*;

const BACKEND: &str = "runsc";

/// Exit statuses collected by the reaper, by PID.
static REAPED: Mutex<Option<HashMap<i32, WaitStatus>>> = Mutex::new(None);
static REAPED_CV: Condvar = Condvar::new();

/// Become a subreaper and reap every child from a thread, as containerd's shim does.
fn start_reaper() {
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    *REAPED.lock().unwrap() = Some(HashMap::new());
    std::thread::spawn(|| loop {
        match waitpid(None::<Pid>, None) {
            Ok(s) => {
                if let Some(pid) = s.pid() {
                    REAPED.lock().unwrap().get_or_insert_with(HashMap::new).insert(pid.as_raw(), s);
                    REAPED_CV.notify_all();
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    });
}

/// The status of child or orphan `pid`, once the reaper has it.
fn reaped(pid: u32) -> WaitStatus {
    let pid = pid as i32;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut map = REAPED.lock().unwrap();
    loop {
        if let Some(s) = map.as_mut().and_then(|m| m.remove(&pid)) {
            return s;
        }
        assert!(Instant::now() < deadline, "process {pid} did not end");
        map = REAPED_CV.wait_timeout(map, Duration::from_millis(100)).unwrap().0;
    }
}

/// Run `cmd` with its output piped and read to the end; (exit code, stdout, stderr).
#[allow(clippy::zombie_processes)] // the reaper thread waits for it
fn run_reaped(cmd: &mut Command) -> (i32, String, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    let _ = out.read_to_string(&mut stdout);
    let stderr = errs.join().unwrap();
    let code = match reaped(child.id()) {
        WaitStatus::Exited(_, c) => c,
        other => panic!("{cmd:?}: {other:?}"),
    };
    (code, stdout, stderr)
}

fn ok(cmd: &mut Command) {
    let (code, out, err) = run_reaped(cmd);
    assert_eq!(code, 0, "{cmd:?}: {out}{err}");
}

fn annotated(dir: &Path, args: &[&str], kind: &str, sandbox: &str) -> std::path::PathBuf {
    let b = bundle(dir, args);
    edit_config(&b, |c| {
        c["annotations"] = serde_json::json!({
            "semble.dev/policy": "workspace",
            "io.kubernetes.cri.container-type": kind,
            "io.kubernetes.cri.sandbox-id": sandbox,
        })
    });
    b
}

#[allow(clippy::zombie_processes)] // the reaper thread waits for it
/// `create` with the container's stdio going to `out` (as containerd gives it pipes).
fn create(root: &Path, b: &Path, id: &str, pid_file: &Path, out: &Path) -> u32 {
    // Append: gVisor writes a regular file at its own offset per descriptor.
    let f = std::fs::OpenOptions::new().create(true).append(true).open(out).unwrap();
    let child = shim_for(root, BACKEND)
        .args(["create", "--bundle"])
        .arg(b)
        .arg("--pid-file")
        .arg(pid_file)
        .arg(id)
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    let status = reaped(child.id());
    let log = std::fs::read_to_string(out).unwrap_or_default();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "create {id}: {status:?} {log}");
    std::fs::read_to_string(pid_file).unwrap().trim().parse().unwrap()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

#[test]
fn sub_containers_get_their_stdio_at_start_and_the_pid_file_names_their_own_end() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("state");
    let sandbox = unique("sbx");
    let sb = annotated(&t.path().join("sandbox"), &["sleep", "300"], "sandbox", &sandbox);
    let script = "echo hello-from-sub; echo to-stderr >&2; exit 5";
    let sub_bundle = annotated(&t.path().join("sub"), &["sh", "-c", script], "container", &sandbox);
    let never_bundle = annotated(&t.path().join("never"), &["sleep", "300"], "container", &sandbox);
    // Building a shim command line finds (or builds) runsc and writes the test policies, with
    // `Command::output`, which reaps its own child: do it before the reaper takes over, as the
    // bundles above were made.
    let _ = shim_for(&root, BACKEND);
    // From here on every child is reaped by the reaper.
    start_reaper();
    let sandbox_pid = create(&root, &sb, &sandbox, &t.path().join("sandbox.pid"), &t.path().join("sandbox.out"));
    ok(shim_for(&root, BACKEND).args(["start", &sandbox]));

    // A sub-container that runs: its pid-file names semble's holder, not the sandbox.
    let sub = unique("sub");
    let out = t.path().join("sub.out");
    let holder = create(&root, &sub_bundle, &sub, &t.path().join("sub.pid"), &out);
    assert_ne!(holder, sandbox_pid);
    assert!(cmdline(holder).contains(&format!("hold {sub}")), "{}", cmdline(holder));
    // `start` with piped output that is read to its end (what containerd's shim does) returns.
    let started = Instant::now();
    ok(shim_for(&root, BACKEND).args(["start", &sub]));
    assert!(started.elapsed() < Duration::from_secs(30));
    // The holder ends with the workload's status; the output went to the stdio given to create.
    assert_eq!(reaped(holder), WaitStatus::Exited(Pid::from_raw(holder as i32), 5));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("hello-from-sub") && text.contains("to-stderr"), "{text:?}");
    // Signalling it now says what runc says of a finished container (containerd reads that).
    let (code, _, err) = run_reaped(shim_for(&root, BACKEND).args(["kill", &sub, "KILL"]));
    assert!(code != 0 && err.contains("container not running"), "{err}");
    ok(shim_for(&root, BACKEND).args(["delete", &sub]));
    assert!(!root.join("semble").join(&sub).exists());

    // A sub-container killed before it starts (RemoveContainer after a failed start): the holder
    // takes the signal as runc's waiting process would.
    let never = unique("never");
    let holder = create(&root, &never_bundle, &never, &t.path().join("never.pid"), &t.path().join("never.out"));
    ok(shim_for(&root, BACKEND).args(["kill", &never, "KILL"]));
    let killed = WaitStatus::Signaled(Pid::from_raw(holder as i32), nix::sys::signal::Signal::SIGKILL, false);
    assert_eq!(reaped(holder), killed);
    ok(shim_for(&root, BACKEND).args(["delete", &never]));
    assert!(!root.join("semble").join(&never).exists());

    ok(shim_for(&root, BACKEND).args(["kill", &sandbox, "KILL"]));
    reaped(sandbox_pid);
    ok(shim_for(&root, BACKEND).args(["delete", "--force", &sandbox]));
    assert!(!root.join("semble").join(&sandbox).exists());
}
