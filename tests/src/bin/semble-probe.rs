//! Runs inside a test container and reports what the kernel lets it do, one line per check:
//! `CHECK <name> <result>`, where the result is `ok`, an errno name, or a value.
//!
//! The host side (`semble_tests::Probe`) compares each line with what the policy promises, so a
//! test proves what was *enforced*, not what was configured.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use nix::errno::Errno;

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

    pub fn keyctl() -> Result<i64, Errno> {
        // SAFETY: KEYCTL_GET_KEYRING_ID with integer arguments only.
        ret(unsafe { libc::syscall(libc::SYS_keyctl, 0, -3i64, 0) })
    }

    pub fn bpf() -> Result<i64, Errno> {
        // SAFETY: a NULL attribute pointer with size 0; nothing is read or written.
        ret(unsafe { libc::syscall(libc::SYS_bpf, 5, std::ptr::null::<u8>(), 0) })
    }

    pub fn io_uring_setup() -> Result<i64, Errno> {
        let mut params = [0u8; 120];
        // SAFETY: `params` is writable and as large as `struct io_uring_params`.
        ret(unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) })
    }

    pub fn userfaultfd() -> Result<i64, Errno> {
        // SAFETY: flags only.
        ret(unsafe { libc::syscall(libc::SYS_userfaultfd, 0) })
    }

    pub fn ptrace_traceme() -> Result<i64, Errno> {
        // SAFETY: PTRACE_TRACEME takes no pointers.
        ret(unsafe { libc::syscall(libc::SYS_ptrace, 0, 0, 0, 0) })
    }

    /// A raw set*id call with the exact register values given (high bits included).
    pub fn setid(nr: libc::c_long, a: u64, b: u64, c: u64) -> Result<i64, Errno> {
        // SAFETY: the set*id family takes integers only.
        ret(unsafe { libc::syscall(nr, a, b, c) })
    }

    pub fn setgroups_root() -> Result<i64, Errno> {
        let groups: [libc::gid_t; 1] = [0];
        // SAFETY: `groups` holds one gid and outlives the call.
        ret(unsafe { libc::syscall(libc::SYS_setgroups, 1, groups.as_ptr()) })
    }

    pub fn mknod(path: &std::ffi::CStr, mode: libc::mode_t, dev: libc::dev_t) -> Result<i64, Errno> {
        // SAFETY: `path` is a valid C string.
        ret(unsafe { libc::syscall(libc::SYS_mknodat, libc::AT_FDCWD, path.as_ptr(), mode, dev) })
    }

    const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
    const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
    const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;
    /// `_IOWR('!', 0, struct seccomp_notif)` (80 bytes).
    const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
    /// `_IOWR('!', 1, struct seccomp_notif_resp)` (24 bytes).
    const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;

    /// The attack: load a filter that sends `unshare` to a notify listener of our own.
    pub fn own_listener_for_unshare() -> Result<i32, Errno> {
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        let code = |c: u32| u16::try_from(c).unwrap_or(0);
        let stmt = |c: u32, k: u32| libc::sock_filter { code: code(c), jt: 0, jf: 0, k };
        let jump = |c: u32, k: u32, jt: u8, jf: u8| libc::sock_filter { code: code(c), jt, jf, k };
        let mut prog = [
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
            jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, AUDIT_ARCH_X86_64, 0, 3),
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
            jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, u32::try_from(libc::SYS_unshare).unwrap_or(0), 0, 1),
            stmt(libc::BPF_RET | libc::BPF_K, SECCOMP_RET_USER_NOTIF),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        ];
        let fprog = libc::sock_fprog { len: u16::try_from(prog.len()).unwrap_or(0), filter: prog.as_mut_ptr() };
        // SAFETY: `fprog` points to `prog`, which outlives the call; the kernel copies it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &fprog as *const libc::sock_fprog,
            )
        };
        ret(r).map(|fd| i32::try_from(fd).unwrap_or(-1))
    }

    /// Answer every notification on `fd` with "continue" (let the syscall run), forever.
    pub fn answer_continue(fd: i32) -> ! {
        loop {
            let mut req = [0u8; 80];
            // SAFETY: `req` is as large as `struct seccomp_notif`, which the ioctl fills.
            if unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req.as_mut_ptr()) } < 0 {
                // SAFETY: _exit ends this forked child at once.
                unsafe { libc::_exit(0) }
            }
            let mut resp = [0u8; 24];
            resp[..8].copy_from_slice(&req[..8]); // id
            resp[20..24].copy_from_slice(&SECCOMP_USER_NOTIF_FLAG_CONTINUE.to_ne_bytes());
            // SAFETY: `resp` is a `struct seccomp_notif_resp` (id, val 0, error 0, flags).
            unsafe { libc::ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp.as_mut_ptr()) };
        }
    }

    /// A syscall no baseline allows and nothing needs (it hangs up the terminal): a denial.
    pub fn vhangup() -> Result<i64, Errno> {
        // SAFETY: vhangup takes no arguments.
        ret(unsafe { libc::syscall(libc::SYS_vhangup) })
    }

    /// End a forked child at once (nothing of the parent's runs).
    pub fn exit_now(code: i32) -> ! {
        // SAFETY: _exit takes an integer and does not return.
        unsafe { libc::_exit(code) }
    }

    pub fn fork() -> Result<libc::pid_t, Errno> {
        // SAFETY: the probe is single-threaded when it forks; the child only makes raw
        // syscalls (ioctl, _exit) and allocates nothing.
        ret(unsafe { libc::fork() }.into()).map(|p| libc::pid_t::try_from(p).unwrap_or(-1))
    }
}

/// PTRACE_TRACEME, in a child: where it succeeds (a recording lets everything through), the
/// caller becomes traced by its parent, and every signal it gets after (a SIGPIPE from a closed
/// socket) would stop it for a tracer that never continues it. The child reports and exits.
fn ptrace_in_a_child() -> String {
    match sys::fork() {
        Ok(0) => {
            let code = match sys::ptrace_traceme() {
                Ok(_) => 0,
                Err(e) => e as i32,
            };
            sys::exit_now(code)
        }
        Ok(pid) => match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => "ok".into(),
            Ok(nix::sys::wait::WaitStatus::Exited(_, n)) => format!("{:?}", Errno::from_raw(n)),
            other => format!("child:{other:?}"),
        },
        Err(e) => format!("fork-failed:{e:?}"),
    }
}

/// The seccomp listener hijack: a filter of our own with a notify listener, answered by a child
/// with "continue", then `unshare(CLONE_NEWUSER)`, which the policy refuses.
fn hijack() {
    use nix::sched::{unshare, CloneFlags};
    match sys::own_listener_for_unshare() {
        Ok(fd) => {
            check("new_listener", "ok");
            match sys::fork() {
                Ok(0) => sys::answer_continue(fd),
                Ok(_) => {
                    let _ = nix::unistd::close(fd);
                    check("hijack_unshare", errno(unshare(CloneFlags::CLONE_NEWUSER)));
                }
                Err(e) => check("hijack_unshare", format!("fork-failed:{e:?}")),
            }
        }
        Err(e) => {
            check("new_listener", format!("{e:?}"));
            check("hijack_unshare", errno(unshare(CloneFlags::CLONE_NEWUSER)));
        }
    }
}

/// A process whose name carries a newline and YAML: it makes a denied call, so its name lands in
/// the denial log, the table and the `--patch` overlay.
fn evil_name() {
    let name = c"x\n      - bpf";
    let _ = nix::sys::prctl::set_name(name);
    check("vhangup", errno(sys::vhangup()));
}

/// Becoming root again, as a workload holding CAP_SETUID/CAP_SETGID would try.
fn identity() {
    check("setuid_0", errno(sys::setid(libc::SYS_setuid, 0, 0, 0)));
    // High bits set: a 64-bit comparison sees a non-zero uid, the kernel truncates to 0.
    check("setuid_0_high_bits", errno(sys::setid(libc::SYS_setuid, 1 << 32, 0, 0)));
    check("setresuid_0", errno(sys::setid(libc::SYS_setresuid, 0, 0, 0)));
    check("setreuid_keep_0", errno(sys::setid(libc::SYS_setreuid, 0xffff_ffff, 0, 0)));
    check("setgid_0", errno(sys::setid(libc::SYS_setgid, 0, 0, 0)));
    check("setresgid_0", errno(sys::setid(libc::SYS_setresgid, 0, 0, 0)));
    check("setfsuid_0", errno(sys::setid(libc::SYS_setfsuid, 0, 0, 0)));
    check("setgroups_0", errno(sys::setgroups_root()));
    // What stays possible: "set" to oneself.
    let uid = u64::from(nix::unistd::getuid().as_raw());
    let gid = u64::from(nix::unistd::getgid().as_raw());
    check("setuid_self", errno(sys::setid(libc::SYS_setuid, uid, 0, 0)));
    check("setresgid_self", errno(sys::setid(libc::SYS_setresgid, gid, 0xffff_ffff, 0xffff_ffff)));
    check("uid_after", nix::unistd::getuid());
    check("euid_after", nix::unistd::geteuid());
    check("gid_after", nix::unistd::getgid());
    check("chown_hostname", io(std::os::unix::fs::chown("/etc/hostname", Some(0), Some(0))));
}

/// Device nodes: a character device (the host's /dev/null, 1:3) and a FIFO, in /tmp.
fn mknod() {
    let chr = libc::S_IFCHR | 0o666;
    check("mknod_char", errno(sys::mknod(c"/tmp/probe-null", chr, libc::makedev(1, 3))));
    check("mknod_fifo", errno(sys::mknod(c"/tmp/probe-fifo", libc::S_IFIFO | 0o600, 0)));
}

/// Egress attempts: `tcp:ADDR`, `udp:ADDR` (a datagram sent unconnected, with `sendto`) or
/// `udpc:ADDR` (connected, then `send`). The results name the target.
fn egress(targets: &[String]) {
    for t in targets {
        let Some((kind, addr)) = t.split_once(':') else { continue };
        let Ok(sa) = addr.parse::<SocketAddr>() else {
            check(&format!("egress_{t}"), "bad-address");
            continue;
        };
        let result = match kind {
            "tcp" => io(TcpStream::connect_timeout(&sa, Duration::from_secs(2)).and_then(|mut s| s.write_all(b"x"))),
            "udp" => {
                let bind: SocketAddr =
                    if sa.is_ipv6() { "[::]:0".parse().unwrap_or(sa) } else { "0.0.0.0:0".parse().unwrap_or(sa) };
                io(std::net::UdpSocket::bind(bind).and_then(|u| u.send_to(b"x", sa)))
            }
            "udpc" => {
                let bind: SocketAddr =
                    if sa.is_ipv6() { "[::]:0".parse().unwrap_or(sa) } else { "0.0.0.0:0".parse().unwrap_or(sa) };
                io(std::net::UdpSocket::bind(bind).and_then(|u| u.connect(sa).and_then(|()| u.send(b"x"))))
            }
            other => format!("unknown-kind:{other}"),
        };
        check(&format!("egress_{t}"), result);
    }
}

/// Ingress: listen on `port` and answer one connection with `ingress-ok`.
fn serve(port: &str) {
    let l = match std::net::TcpListener::bind(format!("0.0.0.0:{port}")) {
        Ok(l) => l,
        Err(e) => return check("serve", io::<()>(Err(e))),
    };
    check("serve", "listening");
    let _ = std::io::stdout().flush();
    if let Ok((mut c, _)) = l.accept() {
        let _ = c.write_all(b"ingress-ok\n");
        check("served", "ok");
    }
}

fn check(name: &str, result: impl std::fmt::Display) {
    println!("CHECK {name} {result}");
}

fn errno<T>(r: Result<T, Errno>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn io<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => match e.raw_os_error() {
            Some(n) => format!("{:?}", Errno::from_raw(n)),
            None => format!("error:{}", e.kind()),
        },
    }
}

fn status_field(name: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string())))
        .unwrap_or_else(|| "unreadable".into())
}

fn proxy_roundtrip() -> String {
    let addr: SocketAddr = match std::env::var("HTTP_PROXY")
        .ok()
        .and_then(|u| u.trim_start_matches("http://").trim_end_matches('/').parse().ok())
    {
        Some(a) => a,
        None => return "no-proxy-env".into(),
    };
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(s) => s,
        Err(e) => return io::<()>(Err(e)),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(b"GET http://probe.test/ HTTP/1.1\r\nHost: probe.test\r\nConnection: close\r\n\r\n").is_err() {
        return "write-failed".into();
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").trim().replace(' ', "_");
    format!("{}|{}", text.lines().next().unwrap_or("").replace(' ', "_"), body)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str);
    if let Some(m) = mode.filter(|m| ["hijack", "identity", "mknod", "egress", "serve", "evil-name"].contains(m)) {
        match m {
            "hijack" => hijack(),
            "evil-name" => evil_name(),
            "identity" => identity(),
            "mknod" => mknod(),
            "egress" => egress(&args[1..]),
            _ => serve(args.get(1).map(String::as_str).unwrap_or("8081")),
        }
        println!("PROBE DONE");
        return;
    }
    everything();
}

/// The default run: every check, in order.
fn everything() {
    use nix::sched::{unshare, CloneFlags};
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};

    check("kernel", nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default());
    check("uid", nix::unistd::getuid());
    check("gid", nix::unistd::getgid());
    for f in ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh", "NoNewPrivs", "Seccomp"] {
        check(f, status_field(f));
    }
    check("write_etc", io(std::fs::write("/etc/semble-probe", b"x")));
    check("read_secret", io(std::fs::read("/secret/file")));
    check("read_semble", io(std::fs::read("/.semble/init.json")));
    check("write_tmp", io(std::fs::write("/tmp/probe-write", b"x")));
    check("write_workspace", io(std::fs::write("/workspace/probe-write", b"x")));
    // Copy ourselves to /tmp and try to run the copy.
    let exec_tmp = std::fs::read("/proc/self/exe").and_then(|b| std::fs::write("/tmp/probe-copy", b)).and_then(|()| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions("/tmp/probe-copy", std::fs::Permissions::from_mode(0o755))
    });
    let exec_result = match exec_tmp {
        Ok(()) => io(std::process::Command::new("/tmp/probe-copy").arg("--version").output()),
        Err(e) => format!("copy-failed:{}", io::<()>(Err(e))),
    };
    check("exec_tmp", exec_result);
    check("unshare_user", errno(unshare(CloneFlags::CLONE_NEWUSER)));
    check(
        "mount",
        errno(nix::mount::mount(Some("tmpfs"), "/tmp", Some("tmpfs"), nix::mount::MsFlags::empty(), None::<&str>)),
    );
    check("ptrace", ptrace_in_a_child());
    check("bpf", errno(sys::bpf()));
    check("keyctl", errno(sys::keyctl()));
    check("io_uring", errno(sys::io_uring_setup()));
    check("userfaultfd", errno(sys::userfaultfd()));
    check("raw_socket", errno(socket(AddressFamily::Inet, SockType::Raw, SockFlag::empty(), SockProtocol::Icmp)));
    check("packet_socket", errno(socket(AddressFamily::Packet, SockType::Raw, SockFlag::empty(), None)));
    // The metadata address. The test harness guarantees no packet can leave this machine (the
    // container's network namespace has no route out); this checks the sandbox refuses first.
    let meta: SocketAddr = SocketAddr::from(([169, 254, 169, 254], 80));
    check("connect_metadata", io(TcpStream::connect_timeout(&meta, Duration::from_millis(500))));
    check("http_proxy_env", std::env::var("HTTP_PROXY").unwrap_or_else(|_| "unset".into()));
    check("proxy", proxy_roundtrip());
    if let Some(extra) = std::env::args().nth(1).filter(|a| a == "--sleep") {
        let _ = extra;
        std::thread::sleep(Duration::from_secs(3600));
    }
    println!("PROBE DONE");
}
