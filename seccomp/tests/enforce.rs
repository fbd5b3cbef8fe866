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

    /// seccomp(SECCOMP_SET_MODE_FILTER, flags, an allow-everything program).
    fn load_allow_all(flags: libc::c_ulong) -> Result<i64, Errno> {
        let mut prog = [libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW }];
        let fprog = libc::sock_fprog { len: 1, filter: prog.as_mut_ptr() };
        // SAFETY: `fprog` points to a one-instruction program that outlives the call.
        ret(unsafe {
            libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, &fprog as *const libc::sock_fprog)
        })
    }

    pub fn socket_raw(family: i32, kind: i32, proto: i32) -> Result<i64, Errno> {
        // SAFETY: socket(2) takes integers only.
        ret(unsafe { libc::syscall(libc::SYS_socket, family, kind, proto) })
    }

    /// A filter with a notify listener (`SECCOMP_FILTER_FLAG_NEW_LISTENER`).
    pub fn new_listener() -> Result<i64, Errno> {
        load_allow_all(1 << 3)
    }

    /// A filter without one (stacking further restrictions stays allowed).
    pub fn plain_filter() -> Result<i64, Errno> {
        load_allow_all(0)
    }

    pub fn setid(nr: libc::c_long, a: u64, b: u64, c: u64) -> Result<i64, Errno> {
        // SAFETY: the set*id family takes integers only.
        ret(unsafe { libc::syscall(nr, a, b, c) })
    }

    pub fn setgroups_root() -> Result<i64, Errno> {
        let groups: [libc::gid_t; 1] = [0];
        // SAFETY: `groups` holds one gid and outlives the call.
        ret(unsafe { libc::syscall(libc::SYS_setgroups, 1, groups.as_ptr()) })
    }

    pub fn mknod(path: &std::path::Path, mode: libc::mode_t, dev: libc::dev_t) -> Result<i64, Errno> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        // SAFETY: `c` is a valid C string that outlives the call.
        ret(unsafe { libc::syscall(libc::SYS_mknodat, libc::AT_FDCWD, c.as_ptr(), mode, dev) })
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
    let identity = semble_seccomp::generate::Identity { uid: 1000, gid: 1000 };
    let (p, id) = match scenario {
        "none" => (None, None),
        "workspace" => (Some(workspace()), None),
        "workspace-1000" => (Some(workspace()), Some(identity)),
        "eacces" => (Some(policy("  seccomp: {deny: [getppid], errno: EACCES}\n  network: {mode: none}\n")), None),
        "tcp-only" => (Some(policy("  network: {mode: none}\n")), None),
        "allow-seccomp" => (Some(policy("  seccomp: {allow: [seccomp]}\n  network: {mode: none}\n")), None),
        "dangerous-listener" => {
            (Some(policy("  seccomp: {dangerouslyAllowNotifyListener: true}\n  network: {mode: none}\n")), None)
        }
        other => panic!("unknown scenario {other}"),
    };
    if let Some(p) = &p {
        let profile = semble_seccomp::generate::profile_for(p, id);
        semble_seccomp::bpf::load(&profile).unwrap();
    }
    let mut results: BTreeMap<&str, String> = BTreeMap::new();
    if p.is_none() {
        // Unfiltered, only calls that change nothing the test harness relies on (a listener
        // nobody answers, or PTRACE_TRACEME, would hang the child).
        results.insert("getpid", errno_of(Ok::<_, Errno>(nix::unistd::getpid())));
        results.insert(
            "open",
            errno_of(
                std::fs::File::open("/proc/self/status").map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0))),
            ),
        );
        results.insert("personality-query", errno_of(nix::sys::personality::get()));
        results.insert("unshare-net", errno_of(unshare(CloneFlags::CLONE_NEWNET)));
        results.insert(
            "thread",
            std::thread::spawn(|| 1).join().map(|_| "ok".to_string()).unwrap_or_else(|_| "panic".into()),
        );
        for (k, v) in results {
            println!("RESULT {k} {v}");
        }
        return;
    }
    results.insert("new-listener", errno_of(sys::new_listener()));
    results.insert("plain-filter", errno_of(sys::plain_filter()));
    let dir = std::env::temp_dir().join(format!("semble-enforce-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    results.insert("mknod-char", errno_of(sys::mknod(&dir.join("null"), libc::S_IFCHR | 0o600, libc::makedev(1, 3))));
    results.insert("mknod-fifo", errno_of(sys::mknod(&dir.join("fifo"), libc::S_IFIFO | 0o600, 0)));
    let _ = std::fs::remove_dir_all(&dir);
    results.insert(
        "socket-icmp",
        errno_of(socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::empty(),
            nix::sys::socket::SockProtocol::Icmp,
        )),
    );
    results.insert("socket-sctp", errno_of(sys::socket_raw(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_SCTP)));
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
    // Last: these change the child's identity.
    results.insert("setuid-0-high-bits", errno_of(sys::setid(libc::SYS_setuid, 1 << 32, 0, 0)));
    results.insert("setresuid-0", errno_of(sys::setid(libc::SYS_setresuid, 0, 0, 0)));
    results.insert("setgroups-0", errno_of(sys::setgroups_root()));
    results.insert("setresgid-1000", errno_of(sys::setid(libc::SYS_setresgid, 1000, 1000, 1000)));
    results.insert("setresuid-1000", errno_of(sys::setid(libc::SYS_setresuid, 1000, 1000, 1000)));
    results.insert("setuid-keep", errno_of(sys::setid(libc::SYS_setreuid, 0xffff_ffff, 0xffff_ffff, 0)));
    for (k, v) in results {
        println!("RESULT {k} {v}");
    }
}

fn run(scenario: &str) -> BTreeMap<String, String> {
    run_expecting(scenario, 15)
}

fn run_expecting(scenario: &str, at_least: usize) -> BTreeMap<String, String> {
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
    assert!(results.len() >= at_least, "child printed too few results: {stdout}");
    results
}

/// Two roles: started by [`run`] (`--exact`, with `SEMBLE_SECCOMP_CHILD` naming a scenario) it
/// is the child, loading that scenario's filter; run as a test of its own it is a parent like
/// the others, checking that a child under no semble filter at all may do what the workspace
/// filter refuses (`unshare(CLONE_NEWNET)` as root) — so the refusals the other tests see are the filter's, not the machine's.
#[test]
fn child_entry_point() {
    if let Ok(s) = std::env::var(CHILD_ENV) {
        child(&s);
        return;
    }
    let r = run_expecting("none", 5);
    for k in ["getpid", "open", "thread", "personality-query", "unshare-net"] {
        assert_eq!(r.get(k).map(String::as_str), Some("ok"), "{k} without a filter: {r:?}");
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
fn no_filter_semble_generates_lets_the_workload_create_a_notify_listener() {
    // The hijack: with a listener of its own, a workload answers "continue" to what the policy
    // refuses once semble's supervisor is gone. Whatever the allow list says, the flag is refused;
    // a plain filter (more restrictions) stays possible.
    for scenario in ["workspace", "tcp-only", "allow-seccomp"] {
        let r = run(scenario);
        assert_eq!(r["new-listener"], "EPERM", "{scenario}: {r:?}");
        assert_eq!(r["plain-filter"], "ok", "{scenario}: {r:?}");
    }
    // Only the field whose name warns allows it.
    let r = run("dangerous-listener");
    assert_eq!(r["new-listener"], "ok", "{r:?}");
}

#[test]
fn run_as_non_root_pins_the_identity_whatever_the_capabilities() {
    // The child runs as root with every capability: only the filter stands in the way.
    let r = run("workspace-1000");
    for k in ["setuid-0-high-bits", "setresuid-0", "setgroups-0"] {
        assert_eq!(r[k], "EPERM", "{k}: {r:?}");
    }
    // Becoming the pinned identity, and "unchanged" (-1), are allowed.
    for k in ["setresgid-1000", "setresuid-1000", "setuid-keep"] {
        assert_eq!(r[k], "ok", "{k}: {r:?}");
    }
}

#[test]
fn device_nodes_need_capability_mknod_and_ip_sockets_are_tcp_and_udp_only() {
    let r = run("workspace");
    assert_eq!(r["mknod-char"], "EPERM", "{r:?}");
    assert_eq!(r["mknod-fifo"], "ok", "{r:?}");
    assert_eq!(r["socket-icmp"], "EPERM", "{r:?}");
    assert_eq!(r["socket-sctp"], "EPERM", "{r:?}");
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
