//! # semble end-to-end tests
//!
//! Helpers shared by the tests in `tests/tests/`: where the built binaries are, a busybox root
//! filesystem with the static probe, OCI bundles, and harnesses that drive real runc, Podman and
//! containerd. Every test runs real containers and reads what the kernel enforced from inside
//! them (see `src/bin/semble-probe.rs`).
//!
//! These tests need root and the tools `.ci/run` installs. They do not skip: a missing tool is
//! a failed test with the command that installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support: a panic is a failed test

pub mod attacks;
pub mod cri;
pub mod gpu;
pub mod proxylab;
pub mod rootless;
pub mod scenarios;
pub mod sigv4;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where `dev/build` put the (static) binaries (`SEMBLE_BIN_DIR` overrides).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("SEMBLE_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/semble/bin"))
}

/// A built binary; fails with the command that builds it.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.is_file(), "{} is missing: run `dev/build` first (the tests use its static binaries)", p.display());
    p
}

/// Whether this host mounts one cgroup v2 hierarchy (not v1, not a v1/v2 hybrid).
pub fn cgroup_v2_unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").is_file()
}

/// The median of `v` (sorted in place); benchmarks report it.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The image's /opt/semble, assembled from the build (as Containerfile.node does).
pub fn node_image_tree(dir: &Path) -> PathBuf {
    let src = dir.join("opt-semble");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::create_dir_all(src.join("policies")).unwrap();
    std::fs::create_dir_all(src.join("containerd")).unwrap();
    for b in ["semble-shim", "semble-init", "semble-policy"] {
        std::fs::copy(bin(b), src.join("bin").join(b)).unwrap();
    }
    for p in ["workspace", "llm-server", "data-processor"] {
        std::fs::copy(workspace().join(format!("examples/{p}.yaml")), src.join(format!("policies/{p}.yaml"))).unwrap();
    }
    for f in ["semble.toml", "semble-v3.toml"] {
        std::fs::copy(workspace().join("deploy/containerd").join(f), src.join("containerd").join(f)).unwrap();
    }
    src
}

/// Run `f` in a child process as `nobody` (uid and gid 65534) and return its result: what another
/// local user of the host could do.
pub fn as_nobody(f: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    match sys::fork_child() {
        Ok(0) => {
            let code = (|| {
                nix::unistd::setgroups(&[]).ok()?;
                nix::unistd::setgid(nix::unistd::Gid::from_raw(65534)).ok()?;
                nix::unistd::setuid(nix::unistd::Uid::from_raw(65534)).ok()?;
                Some(match f() {
                    Ok(()) => 0,
                    Err(e) => e.raw_os_error().unwrap_or(255).min(254),
                })
            })()
            .unwrap_or(255);
            sys::exit_child(code)
        }
        Ok(pid) => match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(nix::sys::wait::WaitStatus::Exited(_, 255)) => Err(std::io::Error::other("could not become nobody")),
            Ok(nix::sys::wait::WaitStatus::Exited(_, n)) => Err(std::io::Error::from_raw_os_error(n)),
            other => Err(std::io::Error::other(format!("{other:?}"))),
        },
        Err(e) => Err(e),
    }
}

/// Fail unless running as root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these end-to-end tests start real containers and must run as root (`sudo dev/test`)"
    );
}

/// runsc, built from Debian's gVisor sources by `dev/build-runsc` (cached after the first time).
pub fn runsc() -> PathBuf {
    static RUNSC: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    RUNSC
        .get_or_init(|| {
            let out = run(&mut Command::new(workspace().join("dev/build-runsc")), true);
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

/// Fail unless `tool` is on PATH, saying which package installs it.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{tool}` is not installed: `apt-get install {package}` (.ci/run installs it)"))
}

/// Where `dev/install-packages` puts the tools that come from PyPI and npm.
pub const TOOLS: &str = "/opt/semble-tools";

/// A tool from the tools venv (`TOOLS/bin`), else from PATH; fails saying how to install it.
pub fn require_py_tool(tool: &str) -> PathBuf {
    let venv = Path::new(TOOLS).join("bin").join(tool);
    if venv.is_file() {
        return venv;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("`{tool}` is missing: run `dev/install-packages` (it installs it into {TOOLS}; .ci/run does)")
    })
}

/// A unique name for this test process.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Run a command, returning its output; panics with stdout/stderr when `check` and it fails.
pub fn run(cmd: &mut Command, check: bool) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if check && !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Build a root filesystem: busybox, the static probe at `/bin/probe`, a `/secret/file` no
/// policy grants, and the directories the example policies name.
pub fn rootfs(dir: &Path) {
    let busybox = require_tool("busybox", "busybox-static");
    for d in ["bin", "sbin", "usr/bin", "etc", "tmp", "proc", "sys", "dev", "workspace", "secret", "root", "var"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(&busybox, dir.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "true", "false", "id", "cat", "ls", "echo", "sleep", "cp", "chmod", "unshare", "wget", "env", "ps",
        "kill", "touch", "mkdir",
    ] {
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
    }
    std::fs::copy(bin("semble-probe"), dir.join("bin/probe")).unwrap();
    std::fs::set_permissions(dir.join("bin/probe"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/workspace:/bin/sh\n")
        .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
    std::fs::write(dir.join("secret/file"), "not for the workload\n").unwrap();
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// Docker's default capability set (what Podman and containerd give a container by default),
/// with the `CAP_` prefix `config.json` uses (`semble_policy::facts` is the one list).
pub fn default_caps() -> Vec<String> {
    semble_policy::facts::DEFAULT_CAPABILITIES.iter().map(|c| format!("CAP_{c}")).collect()
}

/// A bundle in `dir` (rootfs built there) running `args`, with the default capability set.
pub fn bundle(dir: &Path, args: &[&str]) -> PathBuf {
    let b = dir.to_path_buf();
    rootfs(&b.join("rootfs"));
    run(Command::new(require_tool("runc", "runc")).arg("spec").current_dir(&b), true);
    let mut c: Value = serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    c["process"]["args"] = json!(args);
    c["process"]["terminal"] = json!(false);
    let caps = default_caps();
    c["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    c["root"]["readonly"] = json!(false);
    std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    b
}

/// Edit a bundle's config.json.
pub fn edit_config(bundle: &Path, f: impl FnOnce(&mut Value)) {
    let p = bundle.join("config.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(&p, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}

/// The example policies directory (installed policies for tests).
pub fn policy_dir() -> PathBuf {
    workspace().join("examples")
}

/// `semble-shim` with a private state root.
pub fn shim(root: &Path) -> Command {
    let mut c = Command::new(bin("semble-shim"));
    c.arg("--root").arg(root).arg("--policy-dir").arg(policy_dir());
    c.stdin(Stdio::null());
    c
}

/// The checks a probe printed.
#[derive(Debug, Clone)]
pub struct Probe(pub BTreeMap<String, String>);

impl Probe {
    /// Parse probe output; panics unless the probe ran to its end.
    pub fn parse(stdout: &str) -> Probe {
        assert!(stdout.contains("PROBE DONE"), "the probe did not finish:\n{stdout}");
        Probe(
            stdout
                .lines()
                .filter_map(|l| l.find("CHECK ").map(|i| &l[i + 6..]))
                .filter_map(|l| l.split_once(' ').map(|(k, v)| (k.to_string(), v.trim().to_string())))
                .collect(),
        )
    }

    /// One result.
    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or_else(|| panic!("probe has no check `{k}`: {:?}", self.0))
    }

    /// Assert what the workspace policy promises, check by check.
    pub fn assert_workspace(&self) {
        self.assert_workspace_for("runc");
    }

    /// Assert what the workspace policy promises under `backend`. gVisor differs where its
    /// kernel does: no ambient capabilities (a non-root workload holds none effective), no
    /// `NoNewPrivs` line in /proc, filesystem rules by mounts (hidden paths, `noexec`).
    pub fn assert_workspace_for(&self, backend: &str) {
        self.assert_workspace_enforced(backend);
        assert_eq!(self.get("http_proxy_env"), "http://127.0.0.1:8080");
    }

    /// What the workspace policy enforces, whatever the environment the runtime gave (a pod's
    /// `HTTP_PROXY` names the proxy's Service instead of the in-container bridge).
    pub fn assert_workspace_enforced(&self, backend: &str) {
        let p = self;
        let gvisor = backend == "runsc";
        assert_eq!(p.get("uid"), "1000", "{p:?}");
        assert_eq!(p.get("gid"), "1000", "{p:?}");
        // CHOWN(0) DAC_OVERRIDE(1) = 0x3.
        const POLICY: &str = "0000000000000003";
        assert_eq!(p.get("CapBnd"), POLICY, "{p:?}");
        for set in ["CapEff", "CapPrm", "CapAmb", "CapInh"] {
            let v = p.get(set);
            if gvisor {
                let held = u64::from_str_radix(v, 16).unwrap_or(0);
                assert!(v == "unreadable" || held & !0x3 == 0, "{set} holds more than the policy: {p:?}");
            } else {
                assert_eq!(v, POLICY, "{set}: {p:?}");
            }
        }
        if gvisor {
            assert!(p.get("kernel").starts_with("4.4.0"), "not gVisor's kernel: {p:?}");
            assert!(matches!(p.get("NoNewPrivs"), "1" | "unreadable"), "{p:?}");
        } else {
            assert_eq!(p.get("NoNewPrivs"), "1");
        }
        assert_eq!(p.get("Seccomp"), "2");
        assert_ne!(p.get("write_etc"), "ok", "a write to /etc must fail");
        if gvisor {
            assert!(matches!(p.get("read_secret"), "EACCES" | "ENOENT"), "unlisted paths must be out of reach: {p:?}");
            assert!(matches!(p.get("exec_tmp"), "EACCES" | "EPERM"), "executing a copy in /tmp must fail: {p:?}");
        } else {
            assert_eq!(p.get("read_secret"), "EACCES", "Landlock must deny reads outside its list");
            assert_eq!(p.get("exec_tmp"), "EACCES", "executing a copy in /tmp must fail");
            // semble's own files are outside the workload's Landlock domain (the embedded backend
            // has none in the container at all).
            assert!(matches!(p.get("read_semble"), "EACCES" | "ENOENT"), "{p:?}");
        }
        assert_eq!(p.get("write_tmp"), "ok");
        assert_eq!(p.get("write_workspace"), "ok");
        assert_eq!(p.get("unshare_user"), "EPERM");
        assert_eq!(p.get("mount"), "EPERM");
        assert_eq!(p.get("ptrace"), "EPERM");
        assert_eq!(p.get("bpf"), "EPERM");
        assert_eq!(p.get("keyctl"), "EPERM");
        // EPERM from the policy; ENOSYS where the runtime's own profile (stacked) says so first.
        assert!(matches!(p.get("io_uring"), "EPERM" | "ENOSYS"), "{p:?}");
        assert_eq!(p.get("userfaultfd"), "EPERM");
        assert_eq!(p.get("raw_socket"), "EPERM");
        assert_eq!(p.get("packet_socket"), "EPERM");
        assert!(matches!(p.get("connect_metadata"), "ENETUNREACH" | "EHOSTUNREACH" | "EACCES"), "{p:?}");
    }
}

/// A stand-in for semble-proxy on the policy's Unix socket: answers every request with
/// `200 OK` and a body naming the request line, so a test sees the bridge carried it.
#[derive(Debug)]
pub struct FakeProxy {
    /// The socket.
    pub socket: PathBuf,
}

impl FakeProxy {
    /// Listen on `proxy_dir/policy/proxy.sock`.
    pub fn start(proxy_dir: &Path, policy: &str) -> FakeProxy {
        use std::io::{BufRead, BufReader, Write};
        let dir = proxy_dir.join(policy);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("proxy.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut first = String::new();
                    let _ = reader.read_line(&mut first);
                    let body = format!("proxied:{}", first.trim());
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        FakeProxy { socket }
    }
}

/// What the fake proxy's answer looks like to the probe.
pub const PROXIED: &str = "HTTP/1.1_200_OK|proxied:GET_http://probe.test/_HTTP/1.1";

/// Run `cmd` with Landlock made unavailable, as on a kernel without it: a seccomp filter makes
/// `landlock_create_ruleset` fail with `ENOSYS` for the command and everything it starts.
pub fn without_landlock(cmd: &mut Command) -> &mut Command {
    sys::deny_landlock(cmd)
}

/// The kernel's audit switch, put back as it was when dropped: the Landlock tests turn audit on
/// (as `semble-shim --enable-audit` does) and must leave the host as they found it.
#[derive(Debug)]
pub struct AuditState {
    was_on: bool,
}

impl AuditState {
    /// Remember whether audit is on.
    pub fn save() -> AuditState {
        AuditState { was_on: audit_enabled() }
    }
}

impl Drop for AuditState {
    fn drop(&mut self) {
        set_audit(self.was_on);
    }
}

/// One audit request (`AUDIT_GET` 1000, `AUDIT_SET` 1001) and the kernel's first answer.
fn audit_request(kind: u16, payload: &[u8]) -> Vec<u8> {
    use nix::sys::socket::{
        recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
    };
    use std::os::fd::AsRawFd;
    let fd = socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkAudit).unwrap();
    let mut msg = Vec::new();
    msg.extend_from_slice(&u32::try_from(16 + payload.len()).unwrap().to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    // NLM_F_REQUEST, and NLM_F_ACK for a SET (a GET's answer comes from another kernel thread,
    // after an ACK would).
    msg.extend_from_slice(&(if kind == 1000 { 1u16 } else { 1u16 | 4 }).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(payload);
    sendto(fd.as_raw_fd(), &msg, &NetlinkAddr::new(0, 0), MsgFlags::empty()).unwrap();
    let mut buf = vec![0u8; 8192];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
    buf.truncate(n);
    buf
}

/// Whether the kernel's audit is on.
pub fn audit_enabled() -> bool {
    let answer = audit_request(1000, &[]);
    // nlmsghdr, then struct audit_status: mask, enabled, …
    answer.len() >= 24 && u32::from_ne_bytes([answer[20], answer[21], answer[22], answer[23]]) != 0
}

/// Turn the kernel's audit on or off (`AUDIT_SET`, the `enabled` field only).
pub fn set_audit(on: bool) {
    let mut status = [0u32; 10];
    status[0] = 1; // AUDIT_STATUS_ENABLED
    status[1] = u32::from(on);
    let payload: Vec<u8> = status.iter().flat_map(|v| v.to_ne_bytes()).collect();
    audit_request(1001, &payload);
}

#[allow(unsafe_code)]
mod sys {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// Classic BPF: if the architecture is x86_64 and the syscall is landlock_create_ruleset
    /// (444), return ENOSYS; allow everything else.
    fn program() -> Vec<libc::sock_filter> {
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        let stmt = |code: u16, k: u32| libc::sock_filter { code, jt: 0, jf: 0, k };
        let jump = |code: u16, k: u32, jt: u8, jf: u8| libc::sock_filter { code, jt, jf, k };
        let code = |c: u32| u16::try_from(c).unwrap_or(0);
        let ld = code(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS);
        let jeq = code(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K);
        let ret = code(libc::BPF_RET | libc::BPF_K);
        vec![
            stmt(ld, 4),                             // seccomp_data.arch
            jump(jeq, AUDIT_ARCH_X86_64, 0, 3),      // other arch: allow
            stmt(ld, 0),                             // seccomp_data.nr
            jump(jeq, 444, 0, 1),                    // landlock_create_ruleset?
            stmt(ret, libc::SECCOMP_RET_ERRNO | 38), // ENOSYS
            stmt(ret, libc::SECCOMP_RET_ALLOW),
        ]
    }

    /// Fork (the caller's closure runs in the child, which ends with [`exit_child`]).
    pub fn fork_child() -> std::io::Result<i32> {
        // SAFETY: the child runs only the caller's short closure (setuid and one connect) and
        // `_exit`s; test harness threads hold no lock it needs.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(pid)
    }

    /// End a forked child at once.
    pub fn exit_child(code: i32) -> ! {
        // SAFETY: `_exit` ends the process without running anything of the parent's.
        unsafe { libc::_exit(code) }
    }

    pub fn deny_landlock(cmd: &mut Command) -> &mut Command {
        let mut filter = program();
        // SAFETY: the closure runs between fork and exec and calls only prctl(2) and seccomp(2)
        // (async-signal-safe); `filter` is moved in and outlives the calls.
        unsafe {
            cmd.pre_exec(move || {
                let prog =
                    libc::sock_fprog { len: u16::try_from(filter.len()).unwrap_or(0), filter: filter.as_mut_ptr() };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const libc::sock_fprog)
                    != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }
}

/// A network namespace made by the test (`ip netns add`), with loopback up and decoy addresses
/// on it. Nothing sent inside it can leave the machine: it has no other interface.
#[derive(Debug)]
pub struct TestNetns {
    /// Its name under /run/netns.
    pub name: String,
}

impl TestNetns {
    /// Create it, with `decoys` (e.g. `169.254.169.254/32`) on loopback.
    pub fn new(decoys: &[&str]) -> TestNetns {
        let ip = require_tool("ip", "iproute2");
        let name = unique("semble");
        run(Command::new(&ip).args(["netns", "add", &name]), true);
        run(Command::new(&ip).args(["-n", &name, "link", "set", "lo", "up"]), true);
        for d in decoys {
            let mut add = Command::new(&ip);
            add.args(["-n", &name, "addr", "add", d, "dev", "lo"]);
            if d.contains(':') {
                // Without it an IPv6 address stays "tentative" (duplicate address detection) for
                // a moment, and binding a recorder to it fails with EADDRNOTAVAIL.
                add.arg("nodad");
            }
            run(&mut add, true);
        }
        TestNetns { name }
    }

    /// Its path, for a bundle's `linux.namespaces`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Listen on `addr` inside the namespace and count connections (a recorder for decoys).
    pub fn recorder(&self, addr: std::net::SocketAddr) -> std::sync::Arc<AtomicU32> {
        self.counting(
            move || std::net::TcpListener::bind(addr).unwrap(),
            |l, c| {
                for conn in l.incoming() {
                    if conn.is_ok() {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                }
            },
        )
    }

    /// A thread in the namespace (setns changes only the calling thread's): `bind` there, then
    /// `serve` what it bound, counting into the returned counter; returns once bound.
    fn counting<S: 'static>(
        &self,
        bind: impl FnOnce() -> S + Send + 'static,
        serve: impl FnOnce(S, &AtomicU32) + Send + 'static,
    ) -> std::sync::Arc<AtomicU32> {
        let count = std::sync::Arc::new(AtomicU32::new(0));
        let c = count.clone();
        let ns = std::fs::File::open(self.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let bound = bind();
            tx.send(()).unwrap();
            serve(bound, &c);
        });
        rx.recv().unwrap();
        count
    }
}

impl TestNetns {
    /// Connect to `addr` from inside the namespace (to prove a recorder records).
    pub fn connect(&self, addr: std::net::SocketAddr) -> std::io::Result<()> {
        let ns = std::fs::File::open(self.path())?;
        std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            std::net::TcpStream::connect(addr).map(|_| ())
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("connect thread panicked")))
    }
}

impl TestNetns {
    /// Listen for UDP on `addr` inside the namespace and count datagrams.
    pub fn udp_recorder(&self, addr: std::net::SocketAddr) -> std::sync::Arc<AtomicU32> {
        self.counting(
            move || std::net::UdpSocket::bind(addr).unwrap(),
            |s, c| {
                let mut buf = [0u8; 2048];
                while s.recv_from(&mut buf).is_ok() {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            },
        )
    }

    /// Connect to `addr` from inside the namespace and read what the peer says first.
    pub fn read_from(&self, addr: std::net::SocketAddr) -> std::io::Result<String> {
        use std::io::Read;
        let ns = std::fs::File::open(self.path())?;
        std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3))?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(3)))?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("connect thread panicked")))
    }

    /// Join this namespace to `other` with a veth pair: `local` and `remote` are `ADDR/PREFIX`
    /// lists (IPv4 and IPv6) put on this side and the other. Nothing is routed beyond the pair.
    pub fn link(&self, other: &TestNetns, local: &[&str], remote: &[&str]) {
        let ip = require_tool("ip", "iproute2");
        let (a, b) = (format!("sa{}", std::process::id() % 100_000), format!("sb{}", std::process::id() % 100_000));
        let suffix = unique("v");
        let a = format!("{a}{}", &suffix[suffix.len().saturating_sub(3)..]);
        let b = format!("{b}{}", &suffix[suffix.len().saturating_sub(3)..]);
        run(
            Command::new(&ip).args([
                "-n",
                &self.name,
                "link",
                "add",
                &a,
                "type",
                "veth",
                "peer",
                "name",
                &b,
                "netns",
                &other.name,
            ]),
            true,
        );
        for (ns, dev, addrs) in [(&self.name, &a, local), (&other.name, &b, remote)] {
            for addr in addrs {
                let mut c = Command::new(&ip);
                c.args(["-n", ns, "addr", "add", addr, "dev", dev]);
                if addr.contains(':') {
                    c.arg("nodad");
                }
                run(&mut c, true);
            }
            run(Command::new(&ip).args(["-n", ns, "link", "set", dev, "up"]), true);
        }
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Podman with private storage, driving semble-shim as its runtime.
#[derive(Debug)]
pub struct Podman {
    dir: tempfile::TempDir,
    /// The test image (busybox + probe).
    pub image: String,
    policies: PathBuf,
    extra_flags: Vec<String>,
}

impl Podman {
    /// Private storage with the test image imported; the shim reads policies from `policies`.
    pub fn start(policies: PathBuf) -> Podman {
        require_root();
        require_tool("podman", "podman");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        rootfs(&root);
        let tar = dir.path().join("image.tar");
        run(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg("."), true);
        let p = Podman { dir, image: "localhost/semble-probe:test".into(), policies, extra_flags: Vec::new() };
        run(p.base().args(["import", "-q", "--change", "CMD [\"/bin/probe\"]"]).arg(&tar).arg(&p.image), true);
        p
    }

    fn base(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root").arg(self.dir.path().join("storage"));
        c.arg("--runroot").arg(self.dir.path().join("run"));
        c.args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
        c.stdin(Stdio::null());
        c
    }

    /// Pass one more `--runtime-flag` to the shim.
    pub fn with_runtime_flag(mut self, flag: &str) -> Podman {
        self.extra_flags.push(flag.to_string());
        self
    }

    /// The proxy socket directory given to the shim.
    pub fn proxy_dir(&self) -> PathBuf {
        self.dir.path().join("proxy")
    }

    /// `podman --runtime semble-shim …`.
    pub fn cmd(&self) -> Command {
        let mut c = self.base();
        c.arg("--runtime").arg(bin("semble-shim"));
        c.arg("--runtime-flag").arg(format!("policy-dir={}", self.policies.display()));
        c.arg("--runtime-flag").arg(format!("proxy-dir={}", self.proxy_dir().display()));
        for f in &self.extra_flags {
            c.arg("--runtime-flag").arg(f);
        }
        c
    }

    /// `podman run` flags every test needs here (rlimits cannot be raised on this machine; the
    /// network is none so nothing can leave it).
    pub const RUN: &'static [&'static str] =
        &["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

    /// Save the image as an OCI archive (for containerd).
    pub fn save_oci(&self, out: &Path) {
        run(self.base().args(["save", "--format", "oci-archive", "-o"]).arg(out).arg(&self.image), true);
    }
}

/// A containerd of the test's own: private root, state and socket.
#[derive(Debug)]
pub struct Containerd {
    dir: tempfile::TempDir,
    child: std::process::Child,
    /// The gRPC socket.
    pub socket: PathBuf,
}

impl Containerd {
    /// Start it with `env` (e.g. `SEMBLE_POLICY_DIR`) for the shims it launches.
    pub fn start(env: &[(&str, &Path)]) -> Containerd {
        require_root();
        let bin_path = require_tool("containerd", "containerd");
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("containerd.sock");
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n",
            root = dir.path().join("root").display(),
            state = dir.path().join("state").display(),
            sock = socket.display()
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let mut cmd = Command::new(bin_path);
        cmd.arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let c = Containerd { dir, child, socket };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !(c.socket.exists() && run(&mut c.ctr_raw(&["version"]), false).status.success()) {
            assert!(std::time::Instant::now() < deadline, "containerd did not start:\n{}", c.log());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        c
    }

    fn ctr_raw(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address").arg(&self.socket).args(["--namespace", "semble-test"]).args(args).stdin(Stdio::null());
        c
    }

    /// `ctr --address … --namespace semble-test`.
    pub fn ctr(&self) -> Command {
        self.ctr_raw(&[])
    }

    /// containerd's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// A scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Snapshots may still be mounted under the private root.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let root = self.dir.path().to_string_lossy().into_owned();
            for m in mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|m| m.starts_with(&root)) {
                let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}
