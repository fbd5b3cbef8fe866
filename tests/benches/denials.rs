//! What explanations cost: seccomp user notification against the plain ERRNO filter.
//!
//! `sudo dev/build && cargo bench -p semble-tests --bench denials`
//!
//! 1. **Allowed syscalls** (the goal: within 2 % of the plain filter): a process loads
//!    the workspace policy's filter — the plain one, or the one with explanations, whose listener
//!    it holds open — and times `SEMBLE_BENCH_CALLS` (default 5,000,000) `getppid` calls.
//!    Variants alternate process by process, `SEMBLE_BENCH_ROUNDS` (default 10) each; medians
//!    and their ratio are printed.
//! 2. **Denied syscalls under load**: the real supervisor (`semble-shim supervise`, as `create`
//!    starts it) serves a process that makes refused `unshare(CLONE_NEWUSER)` calls as fast as it
//!    can for `SEMBLE_BENCH_SECONDS` (default 10); the answer rate, the errno every call got, the
//!    supervisor's RSS after the first second and at the end, and the log's size are printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark: a panic is a failure

use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use semble_seccomp::{bpf, generate};
use semble_tests::*;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn workspace_policy() -> (String, semble_policy::SandboxPolicy) {
    let text = std::fs::read_to_string(workspace().join("examples/workspace.yaml")).unwrap();
    let p = semble_policy::parse(&text).unwrap().policy;
    (text, p)
}

fn profile(notify: bool) -> semble_policy::seccomp_profile::SeccompProfile {
    let (_, p) = workspace_policy();
    let plain = semble_seccomp::profile(&p);
    if notify {
        generate::notify_profile(&plain, p.seccomp.errno)
    } else {
        plain
    }
}

/// Child: load the filter, time the allowed loop, print nanoseconds per call.
fn child_allowed(notify: bool, calls: u64) {
    let ctx = bpf::filter(&profile(notify), bpf::Arch::native()).unwrap();
    ctx.load().unwrap();
    // With explanations the listener stays open in this process (nobody answers: allowed
    // syscalls never reach it).
    let _listener = if notify { Some(ctx.get_notify_fd().unwrap()) } else { None };
    let start = Instant::now();
    let mut sum = 0i64;
    for _ in 0..calls {
        sum = sum.wrapping_add(i64::from(nix::unistd::getppid().as_raw()));
    }
    let ns = start.elapsed().as_nanos() as f64 / calls as f64;
    println!("{ns} {sum}");
}

/// Child: load the explained filter, hand the listener to the supervisor at `socket`, make
/// refused calls for `seconds`; print calls made and the errnos seen.
fn child_denied(socket: &str, seconds: u64) {
    let ctx = bpf::filter(&profile(true), bpf::Arch::native()).unwrap();
    let stream = UnixStream::connect(socket).unwrap();
    ctx.load().unwrap();
    semble_supervisor::notify::send_fd(&stream, ctx.get_notify_fd().unwrap()).unwrap();
    drop(stream);
    let end = Instant::now() + Duration::from_secs(seconds);
    let (mut calls, mut eperm) = (0u64, 0u64);
    while Instant::now() < end {
        for _ in 0..100 {
            calls += 1;
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) == Err(nix::errno::Errno::EPERM) {
                eperm += 1;
            }
        }
    }
    println!("{calls} {eperm}");
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap()
}

fn main() {
    match std::env::var("SEMBLE_BENCH_CHILD").ok().as_deref() {
        Some("plain") => return child_allowed(false, env_or("SEMBLE_BENCH_CALLS", 5_000_000)),
        Some("notify") => return child_allowed(true, env_or("SEMBLE_BENCH_CALLS", 5_000_000)),
        Some(s) if s.starts_with("denied:") => {
            return child_denied(&s["denied:".len()..], env_or("SEMBLE_BENCH_SECONDS", 10))
        }
        _ => {}
    }
    let me = std::env::current_exe().unwrap();
    let rounds: usize = env_or("SEMBLE_BENCH_ROUNDS", 10);

    // 1. Allowed syscalls, alternated.
    let (mut plain, mut notify) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for (variant, out) in [("plain", &mut plain), ("notify", &mut notify)] {
            let o = Command::new(&me).env("SEMBLE_BENCH_CHILD", variant).stderr(Stdio::inherit()).output().unwrap();
            assert!(o.status.success(), "{variant} child failed");
            let ns: f64 = String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap().parse().unwrap();
            out.push(ns);
        }
    }
    let (p, n) = (median(&mut plain), median(&mut notify));
    println!("allowed getppid, {rounds} alternated processes per variant:");
    println!("  plain ERRNO filter        {p:.1} ns/call (median)");
    println!("  with explanations         {n:.1} ns/call (median)");
    println!("  ratio                     {:.3} (goal <= 1.02)", n / p);

    // 2. Denied syscalls against the real supervisor.
    let shim = bin("semble-shim");
    let seconds: u64 = env_or("SEMBLE_BENCH_SECONDS", 10);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("state");
    let id = "bench";
    let dir = root.join("semble").join(id);
    std::fs::create_dir_all(dir.join("box")).unwrap();
    std::fs::write(dir.join("policy.yaml"), workspace_policy().0).unwrap();
    let sock = dir.join("box/notify.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut sup = Command::new(&shim)
        .arg("--root")
        .arg(&root)
        .args(["supervise", id])
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let child = Command::new(&me)
        .env("SEMBLE_BENCH_CHILD", format!("denied:{}", sock.display()))
        .env("SEMBLE_BENCH_SECONDS", seconds.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let rss_early = rss_kib(sup.id());
    let out = child.wait_with_output().unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let rss_late = rss_kib(sup.id());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    let (calls, eperm) = (it.next().unwrap(), it.next().unwrap());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sup.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    sup.wait().unwrap();
    let log = std::fs::metadata(dir.join("denials.jsonl")).map(|m| m.len()).unwrap_or(0);
    let lines = std::fs::read_to_string(dir.join("denials.jsonl")).map(|s| s.lines().count()).unwrap_or(0);
    println!("denied unshare(CLONE_NEWUSER) through `semble-shim supervise`, {seconds} s:");
    println!("  answered                  {calls} calls, {:.0}/s; EPERM for {eperm} of them", calls as f64 / elapsed);
    println!("  supervisor RSS            {rss_early} KiB after 1 s, {rss_late} KiB at the end");
    println!("  log                       {lines} lines, {log} bytes (rate limit: 5 lines/s per syscall)");
    assert_eq!(calls, eperm, "every refused call must get the policy's errno");
}
