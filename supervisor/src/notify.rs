//! The seccomp user-notification supervisor.
//!
//! A filter compiled with [`generate::notify_profile`](semble_seccomp::generate::notify_profile) sends
//! every syscall the policy refuses to a listener fd instead of failing it in the kernel. The
//! process that loaded the filter (`semble-init`, or the recorder's helper) hands that fd over a
//! Unix socket to this supervisor, which:
//!
//! * in **explain** mode answers each notification with exactly the errno the policy chose —
//!   the workload sees what it would have seen without explanations — then writes one line
//!   naming the syscall, its decoded arguments, the rule and the fix ([`Explain`]);
//! * in **record** mode lets the syscall run (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`) and remembers
//!   where it was first seen ([`crate::record::Recorder`]).
//!
//! Fail safe: allowed syscalls never reach the supervisor (they are allowed in the kernel), and
//! if the supervisor dies the kernel fails every pending and future notification with `ENOSYS`,
//! so a refused syscall stays refused. The supervisor answers only on fds it was handed, checks
//! that the notification is still pending (`SECCOMP_IOCTL_NOTIF_ID_VALID`) after reading the
//! caller's `/proc` entries, and never continues a syscall in explain mode.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub use libseccomp::ScmpNotifReq;
use libseccomp::{notify_id_valid, ScmpNotifResp, ScmpNotifRespFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use semble_policy::model::SandboxPolicy;

use crate::sys;
use semble_seccomp::denials::{danger, Attribution, Denial};

/// What a supervisor does with each notification.
pub trait Handler {
    /// Answer `req` on `fd` (the caller is blocked until then), then note it.
    fn handle(&mut self, fd: &OwnedFd, req: &ScmpNotifReq, syscall: &str);
    /// Called after every round of the loop (timers, flushing).
    fn tick(&mut self) {}
    /// A process that handed over a notify fd (or its child, on the same connection) says it
    /// created a Landlock domain: `pid` is its pid as the kernel attests it (`SCM_CREDENTIALS`,
    /// translated into the supervisor's pid namespace), never what it claims.
    fn domain_creator(&mut self, _pid: u32) {}
    /// One more descriptor for the loop to poll (the audit socket).
    fn extra(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// [`Handler::extra`] is readable.
    fn extra_ready(&mut self) {}
}

/// The most connections kept open after their hand-over (each carried a live notify fd).
const MAX_STREAMS: usize = 1024;

/// A connection's message announcing a Landlock domain (see [`Handler::domain_creator`]).
pub use semble_policy::compile::oci::DOMAIN_MESSAGE;

/// The supervisor: a listening socket for notify fds, the fds, and a [`Handler`].
#[derive(Debug)]
pub struct Supervisor<H: Handler> {
    listener: Option<UnixListener>,
    fds: Vec<OwnedFd>,
    /// Connections that handed over a notify fd, kept for their Landlock announcements.
    streams: Vec<UnixStream>,
    /// The handler.
    pub handler: H,
    /// Notifications answered.
    pub answered: u64,
}

impl<H: Handler> Supervisor<H> {
    /// A supervisor accepting notify fds on `listener` (if any).
    pub fn new(listener: Option<UnixListener>, handler: H) -> io::Result<Supervisor<H>> {
        if let Some(l) = &listener {
            l.set_nonblocking(true)?;
        }
        Ok(Supervisor { listener, fds: Vec::new(), streams: Vec::new(), handler, answered: 0 })
    }

    /// Supervise `fd` too.
    pub fn add(&mut self, fd: OwnedFd) {
        self.fds.push(fd);
    }

    /// How many notify fds are live (some task still uses their filter).
    pub fn live(&self) -> usize {
        self.fds.len()
    }

    /// Serve until `keep_going` says stop; it is asked at least every `tick`, and at once when
    /// `wake` (e.g. a signalfd) becomes readable.
    pub fn run(
        &mut self,
        tick: Duration,
        wake: Option<BorrowedFd<'_>>,
        mut keep_going: impl FnMut(&Self) -> bool,
    ) -> io::Result<()> {
        let ms = i32::try_from(tick.as_millis().min(60_000)).unwrap_or(60_000);
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        loop {
            if !keep_going(self) {
                return Ok(());
            }
            self.round(timeout, wake)?;
            self.handler.tick();
        }
    }

    /// Answer what is pending without waiting.
    pub fn drain(&mut self) -> io::Result<()> {
        self.round(PollTimeout::ZERO, None)
    }

    fn round(&mut self, timeout: PollTimeout, wake: Option<BorrowedFd<'_>>) -> io::Result<()> {
        // Poll order: wake, listener, extra, streams, notify fds.
        let (accept, extra, streams, events) = {
            let mut pfds: Vec<PollFd> = Vec::with_capacity(self.fds.len() + self.streams.len() + 3);
            let woken = usize::from(wake.is_some());
            if let Some(w) = wake {
                pfds.push(PollFd::new(w, PollFlags::POLLIN));
            }
            let has_listener = self.listener.is_some();
            if let Some(l) = &self.listener {
                pfds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            }
            let extra_fd = self.handler.extra();
            let has_extra = extra_fd.is_some();
            if let Some(x) = extra_fd {
                pfds.push(PollFd::new(x, PollFlags::POLLIN));
            }
            for s in &self.streams {
                pfds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            for fd in &self.fds {
                pfds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut pfds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            let mut revents = pfds
                .iter()
                .skip(woken)
                .map(|p| p.revents().unwrap_or(PollFlags::empty()))
                .collect::<Vec<_>>()
                .into_iter();
            let accept = has_listener && revents.next().is_some_and(|r| r.contains(PollFlags::POLLIN));
            let extra = has_extra && revents.next().is_some_and(|r| !r.is_empty());
            let streams: Vec<PollFlags> = revents.by_ref().take(self.streams.len()).collect();
            (accept, extra, streams, revents.collect::<Vec<_>>())
        };
        let mut gone = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            if ev.contains(PollFlags::POLLIN) {
                if let Some(fd) = self.fds.get(i) {
                    if let Ok(req) = ScmpNotifReq::receive(fd.as_raw_fd()) {
                        let name = syscall_name(&req);
                        self.handler.handle(fd, &req, &name);
                        self.answered += 1;
                    }
                }
            } else if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                // No task uses this filter any more.
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            self.fds.remove(i);
        }
        let mut closed = Vec::new();
        for (i, ev) in streams.iter().enumerate() {
            if ev.is_empty() {
                continue;
            }
            match self.streams.get(i).map(read_announcement) {
                Some(Announcement::Domain(pid)) => self.handler.domain_creator(pid),
                Some(Announcement::Nothing) => {}
                Some(Announcement::Closed) | None => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            self.streams.remove(i);
        }
        if extra {
            self.handler.extra_ready();
        }
        if accept {
            self.accept();
        }
        Ok(())
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        let mut taken = Vec::new();
        while let Ok((stream, _)) = l.accept() {
            // Credentials ride on every message from here on: the kernel's word on who sent a
            // Landlock announcement.
            let _ = nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::PassCred, &true);
            let fds = receive_fds(&stream);
            if !fds.is_empty() && self.streams.len() < MAX_STREAMS && stream.set_nonblocking(true).is_ok() {
                self.streams.push(stream);
            }
            taken.extend(fds);
        }
        self.fds.extend(taken);
    }
}

/// What a kept connection said.
enum Announcement {
    /// A Landlock domain was created by this pid (the sender's, as the kernel attests it).
    Domain(u32),
    /// Nothing usable (no credentials, another message).
    Nothing,
    /// The peer closed the connection.
    Closed,
}

fn read_announcement(stream: &UnixStream) -> Announcement {
    let mut buf = [0u8; 8];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials, [RawFd; 4]);
    let msg = match recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
        Ok(m) => m,
        Err(nix::errno::Errno::EAGAIN) => return Announcement::Nothing,
        Err(_) => return Announcement::Closed,
    };
    if msg.bytes == 0 {
        return Announcement::Closed;
    }
    let mut pid = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::ScmCredentials(cred) => pid = u32::try_from(cred.pid()).ok(),
                // Descriptors on an announcement are not wanted: closed at once.
                ControlMessageOwned::ScmRights(fds) => fds.into_iter().for_each(|raw| drop(sys::received(raw))),
                _ => {}
            }
        }
    }
    let bytes = msg.bytes;
    match pid {
        Some(p) if p > 0 && buf[..bytes].starts_with(DOMAIN_MESSAGE) => Announcement::Domain(p),
        _ => Announcement::Nothing,
    }
}

/// The notify fds a peer sent in one message (others are closed). A peer that connects and
/// sends nothing holds the supervisor for at most half a second.
fn receive_fds(stream: &UnixStream) -> Vec<OwnedFd> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 8];
    let mut iov = [IoSliceMut::new(&mut buf)];
    // Room for the credentials too: the supervisor asks for them on every connection.
    let mut space = nix::cmsg_space!([RawFd; 4], nix::sys::socket::UnixCredentials);
    let Ok(msg) = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    let fd = sys::received(raw);
                    if is_notify_fd(&fd) {
                        out.push(fd);
                    }
                }
            }
        }
    }
    if !out.is_empty() {
        // The sender waits for this: it knows the listener is in a live supervisor's hands.
        let _ = (&*stream).write_all(semble_policy::compile::oci::NOTIFY_ACK);
    }
    out
}

/// Whether `fd` is a seccomp listener.
pub fn is_notify_fd(fd: &OwnedFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|t| t.as_os_str() == "anon_inode:seccomp notify")
        .unwrap_or(false)
}

/// Hand a notify fd to the supervisor listening at `socket` (what `semble-init` does).
pub fn send_fd(stream: &UnixStream, fd: RawFd) -> io::Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [io::IoSlice::new(b"n")];
    sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
    Ok(())
}

fn syscall_name(req: &ScmpNotifReq) -> String {
    req.data
        .syscall
        .get_name_by_arch(req.data.arch)
        .unwrap_or_else(|_| format!("syscall_{}", req.data.syscall.as_raw_syscall()))
}

/// `/proc/PID/comm` (the workload chooses it: made [`printable`](semble_seccomp::denials::printable)),
/// or `?`.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| semble_seccomp::denials::printable(s.strip_suffix('\n').unwrap_or(&s)))
        .unwrap_or_else(|_| "?".into())
}

/// The program as it was invoked (`argv[0]` from `/proc/PID/cmdline`), or empty. Not
/// `/proc/PID/exe`: reading that link needs ptrace access (CAP_SYS_PTRACE across users), which
/// the supervisor does not keep.
pub fn argv0(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|b| {
            b.split(|c| *c == 0).next().map(|a| semble_seccomp::denials::printable(&String::from_utf8_lossy(a)))
        })
        .unwrap_or_default()
}

/// RFC 3339 with milliseconds, UTC.
pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// One append-only log file with a size cap: lines past the cap are dropped (and counted), so
/// a workload that provokes denials without end cannot fill the disk the log lives on.
#[derive(Debug)]
pub struct CappedLog {
    file: File,
    path: PathBuf,
    written: u64,
    cap: u64,
    dropped: u64,
}

impl CappedLog {
    /// Append to `file` (already open), which may already hold some bytes.
    pub fn new(file: File, path: &Path, cap: u64) -> CappedLog {
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        CappedLog { file, path: path.to_path_buf(), written, cap, dropped: 0 }
    }

    /// Open (create, 0600) `path` for appending.
    pub fn open(path: &Path, cap: u64) -> io::Result<CappedLog> {
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        Ok(CappedLog::new(file, path, cap))
    }

    /// Write one line (a newline is added). `false` when the cap dropped it.
    pub fn line(&mut self, text: &[u8]) -> bool {
        let len = text.len() as u64 + 1;
        if self.written + len > self.cap {
            if self.dropped == 0 {
                // One last line saying so, if it fits at all.
                let note = format!("semble: this log reached its cap of {} bytes; later lines are dropped", self.cap);
                let _ = writeln!(self.file, "{note}");
            }
            self.dropped += 1;
            return false;
        }
        let mut buf = Vec::with_capacity(text.len() + 1);
        buf.extend_from_slice(text);
        buf.push(b'\n');
        if self.file.write_all(&buf).is_ok() {
            self.written += len;
        }
        true
    }

    /// Lines dropped since the cap was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where explanations go: JSON lines and text lines, each to a capped file, and optionally text
/// on stderr (host runs).
#[derive(Debug)]
pub struct Sink {
    json: Option<CappedLog>,
    text: Option<CappedLog>,
    stderr: bool,
}

impl Sink {
    /// JSON lines to `json`, text lines to `text`, text also on stderr if `stderr`.
    pub fn new(json: Option<CappedLog>, text: Option<CappedLog>, stderr: bool) -> Sink {
        Sink { json, text, stderr }
    }

    /// Write one denial.
    pub fn write(&mut self, d: &Denial) {
        let text = d.text();
        if self.stderr {
            eprintln!("{text}");
        }
        if let Some(t) = &mut self.text {
            t.line(text.as_bytes());
        }
        if let (Some(f), Ok(line)) = (&mut self.json, serde_json::to_vec(d)) {
            f.line(&line);
        }
    }

    /// Lines dropped by the caps (JSON, text).
    pub fn dropped(&self) -> (u64, u64) {
        (self.json.as_ref().map_or(0, CappedLog::dropped), self.text.as_ref().map_or(0, CappedLog::dropped))
    }
}

/// Per-syscall rate limit: at most `burst` lines per `window`; the rest are counted and the
/// count rides on the next line written (or on a summary line when the window closes).
#[derive(Debug)]
pub struct Limiter {
    burst: u32,
    window: Duration,
    per: HashMap<String, Slot>,
}

#[derive(Debug)]
struct Slot {
    start: Instant,
    lines: u32,
    suppressed: u64,
    last: Option<Denial>,
}

impl Limiter {
    /// `burst` lines per `window` and syscall.
    pub fn new(burst: u32, window: Duration) -> Limiter {
        Limiter { burst, window, per: HashMap::new() }
    }

    /// `Some(line)` to write now, `None` to suppress.
    pub fn admit(&mut self, mut d: Denial, now: Instant) -> Option<Denial> {
        let slot = self.per.entry(limit_key(&d)).or_insert(Slot { start: now, lines: 0, suppressed: 0, last: None });
        if now.duration_since(slot.start) >= self.window {
            slot.start = now;
            slot.lines = 0;
        }
        if slot.lines < self.burst {
            slot.lines += 1;
            d.suppressed = std::mem::take(&mut slot.suppressed);
            slot.last = None;
            Some(d)
        } else {
            slot.suppressed += 1;
            slot.last = Some(d);
            None
        }
    }

    /// Summary lines for windows that closed with denials suppressed (or all, with `all`).
    pub fn flush(&mut self, now: Instant, all: bool) -> Vec<Denial> {
        let mut out = Vec::new();
        for slot in self.per.values_mut() {
            if slot.suppressed > 0 && (all || now.duration_since(slot.start) >= self.window) {
                if let Some(mut d) = slot.last.take() {
                    // The summary line stands for itself and the ones before it.
                    d.suppressed = slot.suppressed - 1;
                    slot.suppressed = 0;
                    slot.start = now;
                    slot.lines = 1;
                    out.push(d);
                }
            }
        }
        out
    }
}

/// What the rate limit counts by: the syscall, or a Landlock refusal's rights — never its path,
/// which the workload chooses (a slot per path would grow without bound).
fn limit_key(d: &Denial) -> String {
    if d.kind == semble_seccomp::denials::LANDLOCK {
        format!("landlock:{}", d.access)
    } else {
        d.syscall.clone()
    }
}

/// Explain mode: answer with the policy's errno, then say why.
#[derive(Debug)]
pub struct Explain {
    container: String,
    policy: String,
    errno: i32,
    errno_name: String,
    attribution: Attribution,
    sink: Sink,
    limiter: Limiter,
}

impl Explain {
    /// For a container under `policy` running as `identity`, writing to `sink`.
    pub fn new(
        container: &str,
        policy: &SandboxPolicy,
        identity: Option<semble_seccomp::generate::Identity>,
        sink: Sink,
    ) -> Explain {
        let errno = i32::try_from(policy.seccomp.errno).unwrap_or(libc::EPERM);
        Explain {
            container: container.into(),
            policy: policy.name.clone(),
            errno,
            errno_name: format!("{:?}", nix::errno::Errno::from_raw(errno)),
            attribution: Attribution::new(policy, identity),
            sink,
            limiter: Limiter::new(5, Duration::from_secs(1)),
        }
    }

    /// Write one line (rate-limited like every other): how the container's other explainers
    /// (Landlock's, through audit) share the logs.
    pub fn note(&mut self, d: Denial) {
        if let Some(d) = self.limiter.admit(d, Instant::now()) {
            self.sink.write(&d);
        }
    }

    /// Write the counts of suppressed lines still pending.
    pub fn finish(&mut self) {
        for d in self.limiter.flush(Instant::now(), true) {
            self.sink.write(&d);
        }
    }
}

impl Handler for Explain {
    fn handle(&mut self, fd: &OwnedFd, req: &ScmpNotifReq, syscall: &str) {
        // Read what the message needs while the caller is still blocked, check the
        // notification is still the same (the pid was not reused), then answer.
        let comm = comm(req.pid);
        let exe = argv0(req.pid);
        let valid = notify_id_valid(fd.as_raw_fd(), req.id).is_ok();
        let _ = ScmpNotifResp::new_error(req.id, -self.errno, ScmpNotifRespFlags::empty()).respond(fd.as_raw_fd());
        if !valid {
            return;
        }
        let v = self.attribution.verdict(syscall);
        let d = Denial {
            time: now(),
            container: self.container.clone(),
            policy: self.policy.clone(),
            pid: req.pid,
            comm,
            exe,
            syscall: syscall.to_string(),
            call: describe(syscall, &req.data.args),
            rule: v.rule,
            errno: self.errno_name.clone(),
            fix: v.fix,
            danger: danger(syscall).map(str::to_string),
            suppressed: 0,
            ..Denial::default()
        };
        self.note(d);
    }

    fn tick(&mut self) {
        for d in self.limiter.flush(Instant::now(), false) {
            self.sink.write(&d);
        }
    }
}

const CLONE_FLAGS: &[(u64, &str)] = &[
    (0x0000_0080, "CLONE_NEWTIME"),
    (0x0002_0000, "CLONE_NEWNS"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
];

fn flags(v: u64, names: &[(u64, &str)]) -> String {
    let mut parts: Vec<String> = names.iter().filter(|(b, _)| v & b != 0).map(|(_, n)| (*n).to_string()).collect();
    let rest = names.iter().fold(v, |acc, (b, _)| acc & !b);
    if rest != 0 || parts.is_empty() {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

fn family(v: u64) -> String {
    let name = match v {
        1 => "AF_UNIX",
        2 => "AF_INET",
        10 => "AF_INET6",
        15 => "AF_KEY",
        16 => "AF_NETLINK",
        17 => "AF_PACKET",
        31 => "AF_BLUETOOTH",
        38 => "AF_ALG",
        40 => "AF_VSOCK",
        44 => "AF_XDP",
        _ => return v.to_string(),
    };
    name.into()
}

fn sock_type(v: u64) -> String {
    let base = match v & 0xf {
        1 => "SOCK_STREAM".to_string(),
        2 => "SOCK_DGRAM".into(),
        3 => "SOCK_RAW".into(),
        5 => "SOCK_SEQPACKET".into(),
        10 => "SOCK_PACKET".into(),
        n => n.to_string(),
    };
    let mut out = base;
    if v & 0o2_000_000 != 0 {
        out.push_str("|SOCK_CLOEXEC");
    }
    if v & 0o4_000 != 0 {
        out.push_str("|SOCK_NONBLOCK");
    }
    out
}

fn ptrace_request(v: u64) -> String {
    match v {
        0 => "PTRACE_TRACEME".into(),
        16 => "PTRACE_ATTACH".into(),
        0x4206 => "PTRACE_SEIZE".into(),
        1 | 2 => "PTRACE_PEEKDATA".into(),
        4 | 5 => "PTRACE_POKEDATA".into(),
        n => n.to_string(),
    }
}

/// A syscall's `int` argument (the low 32 bits of its register, signed).
fn int(v: u64) -> i32 {
    i32::from_ne_bytes(u32::try_from(v & 0xffff_ffff).unwrap_or(0).to_ne_bytes())
}

/// The call with the arguments that matter decoded, where that needs no read of the caller's
/// memory (which would cost a `process_vm_readv` per denial and could change under us anyway).
pub fn describe(name: &str, a: &[u64; 6]) -> String {
    match name {
        "unshare" => format!("unshare({})", flags(a[0], CLONE_FLAGS)),
        "clone" => format!("clone({})", flags(a[0], CLONE_FLAGS)),
        "setns" => format!("setns({}, {})", int(a[0]), flags(a[1], CLONE_FLAGS)),
        "socket" => format!("socket({}, {}, {})", family(a[0]), sock_type(a[1]), a[2]),
        "ptrace" => format!("ptrace({}, {})", ptrace_request(a[0]), int(a[1])),
        "mount" => format!("mount(…, flags={:#x})", a[3]),
        "umount2" => format!("umount2(…, {:#x})", a[1]),
        "personality" => format!("personality({:#x})", a[0]),
        "ioctl" => format!("ioctl({}, {:#x})", int(a[0]), a[1]),
        "prctl" => format!("prctl({})", a[0]),
        "keyctl" => format!("keyctl({})", a[0]),
        "bpf" => format!("bpf({})", a[0]),
        "kill" | "tkill" => format!("{name}({}, {})", int(a[0]), a[1]),
        _ => format!("{name}()"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(syscall: &str) -> Denial {
        Denial {
            time: "t".into(),
            container: "c".into(),
            policy: "p".into(),
            pid: 1,
            comm: "x".into(),
            exe: String::new(),
            syscall: syscall.into(),
            call: format!("{syscall}()"),
            rule: "r".into(),
            errno: "EPERM".into(),
            fix: "f".into(),
            danger: None,
            suppressed: 0,
            ..Denial::default()
        }
    }

    #[test]
    fn arguments_are_decoded() {
        assert_eq!(describe("unshare", &[0x1000_0000, 0, 0, 0, 0, 0]), "unshare(CLONE_NEWUSER)");
        assert_eq!(describe("unshare", &[0x1002_0400, 0, 0, 0, 0, 0]), "unshare(CLONE_NEWNS|CLONE_NEWUSER|0x400)");
        assert_eq!(describe("socket", &[17, 3, 768, 0, 0, 0]), "socket(AF_PACKET, SOCK_RAW, 768)");
        assert_eq!(describe("socket", &[2, 0o2_000_001, 0, 0, 0, 0]), "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0)");
        assert_eq!(describe("ptrace", &[0, 0, 0, 0, 0, 0]), "ptrace(PTRACE_TRACEME, 0)");
        assert_eq!(describe("getpid", &[0; 6]), "getpid()");
    }

    #[test]
    fn the_limiter_writes_a_burst_then_counts() {
        let mut l = Limiter::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(l.admit(d("mount"), t0).is_some());
        assert!(l.admit(d("mount"), t0).is_some());
        for _ in 0..10 {
            assert!(l.admit(d("mount"), t0).is_none());
        }
        // Another syscall has its own budget.
        assert!(l.admit(d("keyctl"), t0).is_some());
        assert!(l.flush(t0, false).is_empty(), "the window is still open");
        let later = t0 + Duration::from_secs(2);
        let f = l.flush(later, false);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].suppressed, 9, "one summary line standing for ten");
        // After the flush the count starts again, and the next line carries what follows.
        assert!(l.admit(d("mount"), later).is_some());
        assert!(l.admit(d("mount"), later).is_none());
        let next = l.admit(d("mount"), later + Duration::from_secs(1)).unwrap();
        assert_eq!(next.suppressed, 1);
    }
}
