//! The per-container seccomp supervisor: started by `create` before the backend runs, stopped
//! by `delete`.
//!
//! `create` binds `ROOT/semble/ID/box/notify.sock` (mounted in the container at
//! `/.semble/notify.sock`) and starts `semble-shim supervise ID` with the listening socket as
//! its standard input, so the socket exists before the container does and no readiness
//! handshake is needed. `semble-init` hands the policy filter's notify fd over that socket;
//! the supervisor answers every notification with the policy's errno and writes one JSON line
//! per denial to `ROOT/semble/ID/denials.jsonl` (text lines to `denials.log`), or, when
//! recording, lets the syscall run and keeps the recorded policy up to date.
//!
//! It holds no capability it does not need: it runs as the shim's user, opens nothing in the
//! container, and exits when the container's state directory is gone even if `delete` never
//! ran. `delete` stops it and keeps a non-empty denial log as `ROOT/denials/ID.jsonl`.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use semble_supervisor::notify::{CappedLog, Explain, Sink, Supervisor};
use semble_supervisor::record::{Output, Recorder};

use crate::error::{Failure, Outcome};
use crate::settings::Settings;
use crate::state::Paths;

/// The socket, in the container's `box` directory.
pub const SOCKET: &str = "notify.sock";
/// The supervisor's PID, in the container's state directory.
pub const PID_FILE: &str = "supervisor.pid";
/// JSON lines, one per denial.
pub const LOG: &str = "denials.jsonl";
/// The same as text.
pub const TEXT_LOG: &str = "denials.log";
/// The most a container's denial log may take on disk.
pub const LOG_CAP: u64 = 16 << 20;

/// What the supervisor does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Answer with the policy's errno and explain.
    Explain,
    /// Let every syscall run and write the recorded policy to this file.
    Record(PathBuf),
}

/// Start the supervisor for container `id`.
pub fn spawn(settings: &Settings, paths: &Paths, id: &str, mode: &Mode) -> Result<Child, Failure> {
    let sock = paths.box_dir().join(SOCKET);
    let _ = fs::remove_file(&sock);
    let listener = via_dir(&sock, |short| UnixListener::bind(short))
        .map_err(|e| Failure(format!("cannot create the seccomp supervisor's socket `{}`: {e}", sock.display())))?;
    // The workload's user connects (semble-init runs as that user); what it can send is a
    // notify fd, and the supervisor only ever refuses syscalls on such an fd (explain mode).
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666))
        .map_err(|e| Failure(format!("cannot open `{}` to the container's user: {e}", sock.display())))?;
    let exe = std::env::current_exe().map_err(|e| Failure(format!("cannot find semble-shim's own binary: {e}")))?;
    let text_log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.dir.join(TEXT_LOG))
        .map_err(|e| Failure(format!("cannot create `{}`: {e}", paths.dir.join(TEXT_LOG).display())))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root").arg(&settings.root);
    if settings.enable_audit {
        cmd.arg("--enable-audit");
    }
    cmd.arg("supervise").arg(id);
    if let Mode::Record(out) = mode {
        cmd.arg("--record").arg(out);
    }
    let child = cmd
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::null())
        .stderr(Stdio::from(text_log))
        // Its own process group: a terminal's ^C for `semble-shim run` goes to the container,
        // not to the supervisor, which must outlive the container's last process.
        .process_group(0)
        .spawn()
        .map_err(|e| Failure(format!("cannot start the seccomp supervisor: {e}")))?;
    fs::write(paths.dir.join(PID_FILE), child.id().to_string())
        .map_err(|e| Failure(format!("cannot record the supervisor's PID: {e}")))?;
    Ok(child)
}

/// Connect to container `paths`' supervisor (the embedded backend hands the connection to the
/// container's process before it exists).
pub fn connect(paths: &Paths) -> Result<std::os::unix::net::UnixStream, Failure> {
    let sock = paths.box_dir().join(SOCKET);
    via_dir(&sock, |short| std::os::unix::net::UnixStream::connect(short))
        .map_err(|e| Failure(format!("cannot reach the seccomp supervisor at `{}`: {e}", sock.display())))
}

/// Run `f` (a bind or connect) on `sock` through its directory's descriptor,
/// `/proc/self/fd/N/NAME`: a socket address holds 108 bytes, and under containerd the state root
/// (`/run/containerd/runc/k8s.io/semble/`) plus a 64-character container ID already exceeds it.
pub(crate) fn via_dir<T>(sock: &Path, f: impl FnOnce(&Path) -> std::io::Result<T>) -> std::io::Result<T> {
    let (Some(dir), Some(name)) = (sock.parent(), sock.file_name()) else { return f(sock) };
    let handle = fs::File::open(dir)?;
    let short = Path::new("/proc/self/fd").join(handle.as_raw_fd().to_string()).join(name);
    f(&short)
}

/// Stop the supervisor of container `id`, if it runs, and keep its log. It is not waited for:
/// it exits within a poll round of SIGTERM, and whatever it still writes lands in the kept log
/// (a rename keeps the file it has open).
pub fn stop(settings: &Settings, paths: &Paths, id: &str) {
    if let Some(pid) = fs::read_to_string(paths.dir.join(PID_FILE)).ok().and_then(|s| s.trim().parse::<u32>().ok()) {
        if crate::state::is_helper(pid, "supervise", id) {
            if let Ok(p) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGTERM);
            }
        }
    }
    keep_log(settings, paths, id);
}

/// Where a deleted container's denial log is kept.
pub fn kept_log(settings: &Settings, id: &str) -> PathBuf {
    settings.kept_denials_dir().join(format!("{id}.jsonl"))
}

fn keep_log(settings: &Settings, paths: &Paths, id: &str) {
    let live = paths.dir.join(LOG);
    if !fs::metadata(&live).map(|m| m.len() > 0).unwrap_or(false) {
        return;
    }
    let recorded = fs::read(paths.record())
        .ok()
        .and_then(|b| serde_json::from_slice::<crate::state::Record>(&b).ok())
        .and_then(|r| r.kept_denials_dir);
    let kept = match recorded {
        Some(dir) => dir.join(format!("{id}.jsonl")),
        None => kept_log(settings, id),
    };
    if let Some(dir) = kept.parent() {
        let _ = std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700).create(dir);
    }
    // The runtime directory is a tmpfs and the state directory usually is not: a rename fails
    // there (EXDEV), and the log is copied (atomically) instead.
    if fs::rename(&live, &kept).is_err() {
        if let Ok(bytes) = fs::read(&live) {
            if semble_files::write_with(&kept, &bytes, true).is_ok() {
                let _ = fs::remove_file(&live);
            }
        }
    }
}

/// The denial logs of container `id`: the live one, or the one kept after `delete`.
pub fn logs(settings: &Settings, id: &str) -> Vec<PathBuf> {
    let live = Paths::new(&settings.records_dir(), id).dir.join(LOG);
    [live, kept_log(settings, id)].into_iter().filter(|p| p.is_file()).collect()
}

/// `semble-shim supervise ID`: the supervisor itself (standard input is the listening socket,
/// standard error the text log).
///
/// Everything it will need is opened first, while it still holds the shim's privileges: the
/// container's state directory (its liveness is read from that descriptor, so a parent
/// directory it cannot traverse without `CAP_DAC_OVERRIDE` — containerd's `/run/containerd`
/// can be mode 0600 — does not stop it) and both logs. It never exits without saying why, on
/// its standard error (the container's `denials.log`), which `semble-shim denials` reads.
pub fn serve(settings: &Settings, id: &str, record: Option<&Path>) -> Outcome {
    let said = |e: Failure| {
        eprintln!("semble: seccomp supervisor of container `{id}`: {}", e.0);
        e
    };
    serve_inner(settings, id, record).map_err(said)
}

fn serve_inner(settings: &Settings, id: &str, record: Option<&Path>) -> Outcome {
    let paths = Paths::new(&settings.records_dir(), id);
    let (text, policy) = crate::state::stored_policy(&paths, id).map_err(|e| Failure(format!("supervisor: {e}")))?;
    let identity = identity(&paths);
    let listener = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixListener::from)
        .map_err(|e| Failure(format!("supervisor: no listening socket on standard input: {e}")))?;
    let dir = fs::File::open(&paths.dir)
        .map_err(|e| Failure(format!("supervisor: cannot open `{}`: {e}", paths.dir.display())))?;
    // Leave the container's working directory and the caller's terminal alone.
    let _ = std::env::set_current_dir("/");
    // SIGTERM (from `delete`) and SIGINT end the loop cleanly: pending counts and the last
    // recorded syscalls are written before exiting.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.thread_block().map_err(|e| Failure(format!("supervisor: cannot block signals: {e}")))?;
    let stop = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| Failure(format!("supervisor: cannot receive signals: {e}")))?;
    // The state directory is removed by `delete` (or by an operator): then there is nothing left
    // to supervise. Read through the descriptor: a removed directory has no links.
    let removed = || nix::sys::stat::fstat(dir.as_raw_fd()).map(|st| st.st_nlink == 0).unwrap_or(true);
    let signalled = || matches!(stop.read_signal(), Ok(Some(_)));
    let why = std::cell::Cell::new("");
    let alive = || {
        if removed() {
            why.set("its container's state directory was removed");
            return false;
        }
        if signalled() {
            why.set("it was asked to stop");
            return false;
        }
        true
    };
    match record {
        None => {
            let json = CappedLog::open(&paths.dir.join(LOG), LOG_CAP)
                .map_err(|e| Failure(format!("supervisor: cannot open the denial log: {e}")))?;
            let text_log = CappedLog::open(&paths.dir.join(TEXT_LOG), LOG_CAP)
                .map_err(|e| Failure(format!("supervisor: cannot open the text denial log: {e}")))?;
            // Landlock's refusals come from the kernel's audit records: the socket is opened
            // (and audit turned on, when the operator said so) while privileges last.
            let landlock = landlock_audit(settings, &paths, id, &policy);
            least_privilege()?;
            let sink = Sink::new(Some(json), Some(text_log), false);
            let tick = if landlock.is_some() { Duration::from_millis(200) } else { Duration::from_secs(1) };
            let handler = Explainers { seccomp: Explain::new(id, &policy, identity, sink), landlock };
            let mut sup = Supervisor::new(Some(listener), handler).map_err(|e| Failure(format!("supervisor: {e}")))?;
            sup.run(tick, Some(stop.as_fd()), |_| alive()).map_err(|e| Failure(format!("supervisor: {e}")))?;
            sup.handler.finish();
        }
        Some(out) => {
            let output = Output {
                path: out.to_path_buf(),
                base: Some(text.clone()),
                name: policy.name.clone(),
                what: format!("container {id}, policy {}", policy.name),
            };
            least_privilege()?;
            let mut sup = Supervisor::new(Some(listener), Recorder::writing(output))
                .map_err(|e| Failure(format!("supervisor: {e}")))?;
            sup.run(Duration::from_millis(100), Some(stop.as_fd()), |_| alive())
                .map_err(|e| Failure(format!("supervisor: {e}")))?;
            sup.handler.flush();
        }
    }
    eprintln!("semble: seccomp supervisor of container `{id}` stopped: {}", why.get());
    Ok(0)
}

/// The first words of the supervisor's line saying whether Landlock refusals are explained.
pub const LANDLOCK_STATUS: &str = "semble: landlock: ";

/// The audit socket and the explainer of a container whose Landlock refusals are explained.
#[derive(Debug)]
pub struct LandlockAudit {
    fd: OwnedFd,
    explainer: semble_shim_landlock::Explainer,
    records: Vec<(u16, String)>,
}

use crate::landlock_audit as semble_shim_landlock;

/// Whether, and how, container `id`'s Landlock refusals can be explained here; says so on
/// stderr (the container's `denials.log`) either way. Runs with the shim's privileges: binding
/// the audit group needs `CAP_AUDIT_READ`, turning audit on `CAP_AUDIT_CONTROL`.
fn landlock_audit(
    settings: &Settings,
    paths: &Paths,
    id: &str,
    policy: &semble_policy::SandboxPolicy,
) -> Option<LandlockAudit> {
    let init = fs::read(paths.box_dir().join("init.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<semble_init::config::InitConfig>(&b).ok())?;
    let ruleset = init.landlock.filter(|r| r.log)?;
    let find_out = "`semble-shim explain-bundle BUNDLE` lists each path's Landlock rights";
    let refuse = |why: String| {
        eprintln!("{LANDLOCK_STATUS}refusals of container `{id}` are not explained: {why}; {find_out}");
        None
    };
    match crate::sys::landlock_abi() {
        Some(abi) if abi >= 7 => {}
        Some(abi) => {
            return refuse(format!(
                "this kernel's Landlock (ABI {abi}) does not log refusals (that needs Linux 6.15, ABI 7)"
            ))
        }
        None => return refuse("this host has no Landlock".into()),
    }
    let status = match crate::sys::audit::status() {
        Ok(s) => s,
        Err(e) => {
            return refuse(format!("cannot read the kernel's audit status ({e}; it needs root, CAP_AUDIT_CONTROL)"))
        }
    };
    let mut how = if status.pid != 0 {
        format!("audit on, auditd (pid {}) keeps a copy", status.pid)
    } else {
        "audit on, no auditd (the kernel also prints each record, rate-limited, in its log)".to_string()
    };
    if status.enabled == 0 {
        if !settings.enable_audit {
            return refuse("audit is off on this host, so the kernel logs nothing (start auditd, or `auditctl -e 1`, or let the shim turn it on: semble-shim --enable-audit)".into());
        }
        if let Err(e) = crate::sys::audit::enable() {
            return refuse(format!("audit is off and turning it on failed ({e})"));
        }
        how = "audit turned on by semble-shim (--enable-audit); no auditd: the kernel also prints each record, rate-limited, in its log".into();
    }
    let fd = match crate::sys::audit::reader() {
        Ok(fd) => fd,
        Err(e) => return refuse(format!("cannot read the audit records ({e}; it needs CAP_AUDIT_READ)")),
    };
    eprintln!("{LANDLOCK_STATUS}refusals of container `{id}` are explained ({how})");
    let explainer = semble_shim_landlock::Explainer::new(
        id,
        &policy.name,
        policy.network.mode.as_str(),
        ruleset.rules,
        ruleset.net,
    );
    Some(LandlockAudit { fd, explainer, records: Vec::new() })
}

/// The container's explainers: seccomp's (notifications) and Landlock's (audit records), one
/// log.
#[derive(Debug)]
struct Explainers {
    seccomp: Explain,
    landlock: Option<LandlockAudit>,
}

impl Explainers {
    fn finish(&mut self) {
        if let Some(l) = &mut self.landlock {
            let far = std::time::Instant::now() + Duration::from_secs(3600);
            for d in l.explainer.tick(far) {
                self.seccomp.note(d);
            }
        }
        self.seccomp.finish();
    }
}

impl semble_supervisor::notify::Handler for Explainers {
    fn handle(&mut self, fd: &OwnedFd, req: &semble_supervisor::notify::ScmpNotifReq, syscall: &str) {
        self.seccomp.handle(fd, req, syscall);
    }

    fn tick(&mut self) {
        if let Some(l) = &mut self.landlock {
            for d in l.explainer.tick(std::time::Instant::now()) {
                self.seccomp.note(d);
            }
        }
        self.seccomp.tick();
    }

    fn domain_creator(&mut self, pid: u32) {
        if let Some(l) = &mut self.landlock {
            for d in l.explainer.creator(pid, std::time::Instant::now()) {
                self.seccomp.note(d);
            }
        }
    }

    fn extra(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.landlock.as_ref().map(|l| l.fd.as_fd())
    }

    fn extra_ready(&mut self) {
        let Some(l) = &mut self.landlock else { return };
        l.records.clear();
        if let Err(e) = crate::sys::audit::records(&l.fd, &mut l.records) {
            eprintln!("{LANDLOCK_STATUS}reading audit records failed ({e}); Landlock refusals are no longer explained");
            self.landlock = None;
            return;
        }
        let now = std::time::Instant::now();
        let records = std::mem::take(&mut l.records);
        for (kind, text) in &records {
            for d in l.explainer.record(*kind, text, now) {
                self.seccomp.note(d);
            }
        }
        l.records = records;
    }
}

/// The uid and gid the container's process runs as (from `init.json`), for the explanations
/// of the set*id refusals `runAsNonRoot` makes.
fn identity(paths: &Paths) -> Option<semble_seccomp::generate::Identity> {
    let bytes = fs::read(paths.box_dir().join("init.json")).ok()?;
    let init: semble_init::config::InitConfig = serde_json::from_slice(&bytes).ok()?;
    Some(semble_seccomp::generate::Identity { uid: init.expect.uid?, gid: init.expect.gid? })
}

/// A note when container `id` had a supervisor that is no longer running: its refusals since
/// then failed with `ENOSYS`, unexplained. The supervisor's last words (from `denials.log`) are
/// quoted when it left any.
pub fn supervisor_gone(settings: &Settings, id: &str) -> Option<String> {
    let paths = Paths::new(&settings.records_dir(), id);
    if running(&paths, id)? {
        return None;
    }
    let last = fs::read_to_string(paths.dir.join(TEXT_LOG))
        .ok()
        .and_then(|t| t.lines().rev().find(|l| l.starts_with("semble: seccomp supervisor")).map(str::to_string));
    Some(match last {
        Some(l) => format!(
            "the seccomp supervisor of container `{id}` is not running ({}); refusals since then failed with ENOSYS and were not explained",
            l.trim_start_matches("semble: ")
        ),
        None => format!(
            "the seccomp supervisor of container `{id}` is not running: it was killed (or crashed) without a word; refusals since then failed with ENOSYS and were not explained"
        ),
    })
}

/// Why container `id`'s Landlock refusals are not explained, when its supervisor said so.
pub fn landlock_not_explained(settings: &Settings, id: &str) -> Option<String> {
    let paths = Paths::new(&settings.records_dir(), id);
    let text = fs::read_to_string(paths.dir.join(TEXT_LOG)).ok()?;
    let last = text.lines().rev().find(|l| l.starts_with(LANDLOCK_STATUS) && l.contains("refusals of container"))?;
    last.contains("not explained").then(|| last.trim_start_matches("semble: ").to_string())
}

/// Whether container `paths`' supervisor (recorded in its PID file) is running.
pub fn running(paths: &Paths, id: &str) -> Option<bool> {
    let pid = fs::read_to_string(paths.dir.join(PID_FILE)).ok()?.trim().parse::<u32>().ok()?;
    Some(crate::state::is_helper(pid, "supervise", id))
}

/// Keep nothing the supervisor does not need: it answers on fds it was handed, reads
/// `/proc/PID/comm` (world-readable) and appends to files it has open (or, recording, replaces a
/// file in a directory its user owns). Every capability goes, in every set, and no_new_privs
/// makes sure none comes back.
fn least_privilege() -> Result<(), Failure> {
    use caps::CapSet;
    let fail = |e: String| Failure(format!("supervisor: cannot drop privileges: {e}"));
    nix::sys::prctl::set_no_new_privs().map_err(|e| fail(e.to_string()))?;
    for cap in caps::all() {
        // Dropping from the bounding set needs CAP_SETPCAP, so it goes first.
        let _ = caps::drop(None, CapSet::Bounding, cap);
    }
    for set in [CapSet::Ambient, CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        caps::clear(None, set).map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// `semble-shim denials [ID]`: the summary of one container's denial log (or of all).
pub fn denials(settings: &Settings, id: Option<&str>, format: &str, patch: bool) -> Outcome {
    use semble_seccomp::denials as d;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    match id {
        Some(id) => {
            files = logs(settings, id);
            let record = crate::state::load(&settings.records_dir(), id).map_err(Failure)?;
            if record.is_some() {
                if let Some(n) = supervisor_gone(settings, id) {
                    notes.push(n);
                }
                if let Some(n) = landlock_not_explained(settings, id) {
                    notes.push(n);
                }
            }
            match record {
                Some(rec) if rec.backend == crate::bundle::BackendKind::Runsc => notes.push(format!(
                    "container `{id}` runs under gVisor (runsc), which has no seccomp user notification: its denials are refused but not explained"
                )),
                Some(_) if files.is_empty() => {
                    let p = Paths::new(&settings.records_dir(), id);
                    if !p.box_dir().join(SOCKET).exists() {
                        notes.push(format!("container `{id}` has no seccomp supervisor: its policy turns explanations off (spec.seccomp.explainDenials), or semble-init does not load its filter (see `semble-shim explain-bundle`)"));
                    }
                }
                None if files.is_empty() => {
                    return Err(Failure(format!(
                        "container `{id}` does not exist and no denial log was kept for it under `{}`",
                        settings.kept_denials_dir().display()
                    )))
                }
                _ => {}
            }
        }
        None => {
            for dir in [settings.records_dir(), settings.kept_denials_dir()] {
                let Ok(rd) = fs::read_dir(&dir) else { continue };
                for e in rd.flatten() {
                    let p = e.path();
                    let f = if p.is_dir() { p.join(LOG) } else { p };
                    if f.is_file() && f.extension().is_some_and(|x| x == "jsonl") {
                        files.push(f);
                    }
                }
            }
            files.sort();
        }
    }
    let mut all = Vec::new();
    for f in &files {
        let text =
            fs::read_to_string(f).map_err(|e| Failure(format!("cannot read the denial log `{}`: {e}", f.display())))?;
        all.extend(d::parse(&text, &f.display().to_string()).map_err(|e| Failure(e.to_string()))?);
    }
    let rows = d::summarize(&all);
    for n in &notes {
        eprintln!("semble-shim: note: {n}");
    }
    if patch {
        let (text, warnings) = d::patch(&rows);
        for w in warnings {
            eprintln!("semble-shim: warning: {w}");
        }
        print!("{text}");
    } else if format == "json" {
        let v = serde_json::json!({"denials": rows, "notes": notes});
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| Failure(e.to_string()))?);
    } else {
        print!("{}", d::table(&rows));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sockets_bind_and_connect_under_a_path_longer_than_a_socket_address() {
        let tmp = tempfile::tempdir().unwrap();
        // containerd's layout: ROOT/semble/<64 hex>/box/notify.sock is well over 108 bytes.
        let dir = tmp.path().join("run/containerd/runc/k8s.io/semble").join("a".repeat(64)).join("box");
        fs::create_dir_all(&dir).unwrap();
        let sock = dir.join(SOCKET);
        assert!(sock.as_os_str().len() > 108);
        assert!(UnixListener::bind(&sock).is_err(), "the kernel's limit is what this works around");
        let listener = via_dir(&sock, |p| UnixListener::bind(p)).unwrap();
        assert!(sock.exists());
        let _client = via_dir(&sock, |p| std::os::unix::net::UnixStream::connect(p)).unwrap();
        listener.accept().unwrap();
    }
}
