//! Load generated filters into a real process and watch the kernel enforce them.
//!
//! A filter cannot be removed once loaded, so each check runs in a child: the test re-executes
//! its own binary with `SEMBLE_SECCOMP_CHILD` naming a scenario; the child loads the profile,
//! makes each syscall and prints one line per result, which the parent checks one by one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::collections::BTreeMap;
use std::process::Command;

use nix::errno::Errno;

const CHILD_ENV: &str = "SEMBLE_SECCOMP_CHILD";

/// Raw syscalls nix does not wrap. Test-only; each call passes no pointer the kernel could
/// write through except where noted.
#[allow(unsafe_code)]
mod sys {
    use nix::errno::Errno;

    fn ret(r: libc::c_long) -> Result<i64, Errno> {
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(r)
        }
    }

    pub fn getppid() -> Result<i64, Errno> {
        // SAFETY: getppid takes no arguments.
        ret(unsafe { libc::syscall(libc::SYS_getppid) })
    }

    pub fn keyctl_get_keyring_id() -> Result<i64, Errno> {
        // SAFETY: KEYCTL_GET_KEYRING_ID (0) with KEY_SPEC_SESSION_KEYRING (-3) and create=0 takes
        // only integers.
        ret(unsafe { libc::syscall(libc::SYS_keyctl, 0, -3i64, 0) })
    }

    pub fn io_uring_setup() -> Result<i64, Errno> {
        let mut params = [0u8; 120];
        // SAFETY: `params` is a writable buffer of the size of `struct io_uring_params`.
        ret(unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) })
    }

    pub fn clone3_probe() -> Result<i64, Errno> {
        // SAFETY: a NULL `clone_args` with size 0 is rejected by the kernel (EINVAL) before
        // anything is cloned; under the filter, the filter answers first.
        ret(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) })
    }

    pub fn bpf_probe() -> Result<i64, Errno> {
        // SAFETY: BPF_PROG_LOAD with a NULL attribute pointer and size 0: the kernel rejects it
        // without reading memory; under the filter, the filter answers first.
        ret(unsafe { libc::syscall(libc::SYS_bpf, 5, std::ptr::null::<u8>(), 0) })
    }
}

fn errno_of<T>(r: Result<T, Errno>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn policy(spec: &str) -> semble_policy::SandboxPolicy {
    let src = format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: t}}\nspec:\n{spec}");
    semble_policy::parse(&src).unwrap().policy
}

fn workspace() -> semble_policy::SandboxPolicy {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/workspace.yaml")).unwrap();
    semble_policy::parse(&src).unwrap().policy
}

/// What the child does: load the scenario's filter, then try every syscall of interest.
fn child(scenario: &str) {
    use nix::sched::{unshare, CloneFlags};
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let p = match scenario {
        "workspace" => workspace(),
        "eacces" => policy("  seccomp: {deny: [getppid], errno: EACCES}\n  network: {mode: none}\n"),
        "tcp-only" => policy("  network: {mode: none}\n"),
        other => panic!("unknown scenario {other}"),
    };
    let profile = semble_seccomp::profile(&p);
    semble_seccomp::bpf::load(&profile).unwrap();
    let mut results: BTreeMap<&str, String> = BTreeMap::new();
    results.insert("getpid", errno_of(Ok::<_, Errno>(nix::unistd::getpid())));
    results.insert("getppid", errno_of(sys::getppid()));
    results.insert(
        "open",
        errno_of(std::fs::File::open("/proc/self/status").map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))),
    );
    results.insert("unshare-user", errno_of(unshare(CloneFlags::CLONE_NEWUSER)));
    results.insert("unshare-net", errno_of(unshare(CloneFlags::CLONE_NEWNET)));
    results.insert("ptrace", errno_of(nix::sys::ptrace::traceme()));
    results.insert("keyctl", errno_of(sys::keyctl_get_keyring_id()));
    results.insert("io_uring_setup", errno_of(sys::io_uring_setup()));
    results.insert("clone3", errno_of(sys::clone3_probe()));
    results.insert("bpf", errno_of(sys::bpf_probe()));
    results
        .insert("socket-packet", errno_of(socket(AddressFamily::Packet, SockType::Datagram, SockFlag::empty(), None)));
    results.insert("socket-vsock", errno_of(socket(AddressFamily::Vsock, SockType::Stream, SockFlag::empty(), None)));
    results.insert("socket-tcp", errno_of(socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)));
    results.insert("socket-udp", errno_of(socket(AddressFamily::Inet, SockType::Datagram, SockFlag::empty(), None)));
    results.insert("socket-unix", errno_of(socket(AddressFamily::Unix, SockType::Stream, SockFlag::empty(), None)));
    results.insert("personality-query", errno_of(nix::sys::personality::get()));
    results.insert(
        "personality-aslr-off",
        errno_of(nix::sys::personality::set(nix::sys::personality::Persona::ADDR_NO_RANDOMIZE)),
    );
    // A thread through clone (libc falls back from clone3's ENOSYS).
    results
        .insert("thread", std::thread::spawn(|| 1).join().map(|_| "ok".to_string()).unwrap_or_else(|_| "panic".into()));
    for (k, v) in results {
        println!("RESULT {k} {v}");
    }
}

fn run(scenario: &str) -> BTreeMap<String, String> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "child_entry_point", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, scenario)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    let results: BTreeMap<String, String> = stdout
        .lines()
        .filter_map(|l| l.find("RESULT ").map(|i| &l[i + 7..]))
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect();
    assert!(results.len() >= 15, "child printed too few results: {stdout}");
    results
}

/// Entry point of the child processes; does nothing unless started by [`run`].
#[test]
fn child_entry_point() {
    if let Ok(s) = std::env::var(CHILD_ENV) {
        child(&s);
    }
}

#[test]
fn workspace_filter_denies_escapes_and_allows_work() {
    let r = run("workspace");
    let expect = [
        ("getpid", "ok"),
        ("open", "ok"),
        ("thread", "ok"),
        ("socket-tcp", "ok"),
        ("socket-udp", "ok"), // dns: true in the workspace policy
        ("socket-unix", "ok"),
        ("personality-query", "ok"),
        ("unshare-user", "EPERM"),
        ("unshare-net", "EPERM"),
        ("ptrace", "EPERM"),
        ("keyctl", "EPERM"),
        ("io_uring_setup", "EPERM"),
        ("clone3", "ENOSYS"),
        ("bpf", "EPERM"),
        ("socket-packet", "EPERM"),
        ("socket-vsock", "EPERM"),
        ("personality-aslr-off", "EPERM"),
    ];
    for (k, v) in expect {
        assert_eq!(r.get(k).map(String::as_str), Some(v), "{k}: {r:?}");
    }
}

#[test]
fn the_chosen_errno_is_returned() {
    let r = run("eacces");
    assert_eq!(r["getppid"], "EACCES", "{r:?}");
    // Everything not allowed fails with the policy's errno too.
    assert_eq!(r["keyctl"], "EACCES", "{r:?}");
    assert_eq!(r["getpid"], "ok");
}

#[test]
fn no_dns_and_no_network_means_tcp_only() {
    let r = run("tcp-only");
    assert_eq!(r["socket-tcp"], "ok", "{r:?}");
    assert_eq!(r["socket-udp"], "EPERM", "{r:?}");
    assert_eq!(r["socket-unix"], "ok", "{r:?}");
}

#[test]
fn every_example_compiles_for_both_architectures() {
    for name in ["workspace", "llm-server", "data-processor"] {
        let src = std::fs::read_to_string(format!("{}/../examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let p = semble_policy::parse(&src).unwrap().policy;
        let prof = semble_seccomp::profile(&p);
        for arch in [semble_seccomp::bpf::Arch::X8664, semble_seccomp::bpf::Arch::Aarch64] {
            let bpf = semble_seccomp::bpf::compile(&prof, arch).unwrap();
            let n = semble_seccomp::bpf::instruction_count(&bpf);
            assert!(n > 50 && n < 4096, "{name} {arch:?}: {n} instructions");
        }
    }
}
