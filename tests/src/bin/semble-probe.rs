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
    check("ptrace", errno(sys::ptrace_traceme()));
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
