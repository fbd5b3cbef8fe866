//! Recording: run a workload under a filter that notifies on every syscall, let each one
//! continue, and write the set as a SandboxPolicy's seccomp allow-list.
//!
//! Two ways in: `semble-policy record -- COMMAND…` runs a command on this host ([`run`]), and
//! `semble-shim --record FILE` records a container (the shim's supervisor uses [`Recorder`]).
//! Every syscall of the run goes through the recorder — a round trip to user space each, a few
//! microseconds — which is why recording is a development step and never a way to run
//! production. A recording filter lets everything through: record only code you would run
//! unconfined.

use std::collections::BTreeMap;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use libseccomp::{notify_id_valid, ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::notify::{comm, now, send_fd, Handler, Supervisor};
use crate::sys;
use semble_seccomp::denials::danger;
use semble_seccomp::{bpf, generate};

/// Where a syscall was first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The program (`comm`).
    pub comm: String,
    /// When.
    pub time: String,
}

/// The recording handler: continue every syscall, remember the new ones.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Every syscall seen, with where it was first seen.
    pub seen: BTreeMap<String, Seen>,
    /// Whether something new was seen since the policy was last written.
    changed: bool,
    /// Where to keep the recorded policy up to date while the run goes on.
    output: Option<Output>,
    /// The last error writing it.
    pub error: Option<String>,
}

/// A policy file a [`Recorder`] keeps up to date.
#[derive(Debug, Clone)]
pub struct Output {
    /// The file.
    pub path: std::path::PathBuf,
    /// The policy text recorded onto.
    pub base: Option<String>,
    /// The policy's name without a base.
    pub name: String,
    /// What was recorded (for the comment).
    pub what: String,
}

impl Recorder {
    /// A recorder that rewrites `output` whenever something new was seen.
    pub fn writing(output: Output) -> Recorder {
        Recorder { output: Some(output), ..Recorder::default() }
    }
}

impl Handler for Recorder {
    fn handle(&mut self, fd: &OwnedFd, req: &ScmpNotifReq, syscall: &str) {
        let new = !self.seen.contains_key(syscall);
        let who = if new { Some(comm(req.pid)) } else { None };
        // Continue only a notification that is still pending: the id is checked by the kernel
        // again on the answer, this makes sure the comm read above was the caller's.
        let valid = notify_id_valid(fd.as_raw_fd(), req.id).is_ok();
        let _ = ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::empty()).respond(fd.as_raw_fd());
        if let (Some(comm), true) = (who, valid) {
            self.seen.insert(syscall.to_string(), Seen { comm, time: now() });
            self.changed = true;
        }
    }

    fn tick(&mut self) {
        self.flush();
    }
}

impl Recorder {
    /// Write the policy now if something new was seen.
    pub fn flush(&mut self) {
        if !self.changed {
            return;
        }
        if let Some(o) = &self.output {
            self.changed = false;
            match write(&o.path, o.base.as_deref(), &o.name, &self.seen, &o.what) {
                Ok(()) => self.error = None,
                Err(e) => {
                    let e = e.to_string();
                    if self.error.as_ref() != Some(&e) {
                        eprintln!("semble: recording: {e}");
                    }
                    self.error = Some(e);
                }
            }
        }
    }
}

/// The syscalls every recorded policy allows although no run can show them: the recorder's
/// own channel is allowed in the kernel during recording.
pub const ALWAYS: &[(&str, &str)] =
    &[("sendmsg", "not observable while recording (the notify fd is handed over with it); semble-init needs it")];

/// Why a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No helper program was given.
    #[error("no helper program to run the command under the recording filter")]
    NoHelper,
    /// A system call on the way failed (`what` says which step).
    #[error("{what}: {source}")]
    Io {
        /// The step.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The helper exited without handing over its notify descriptor.
    #[error("the recording helper did not hand over its filter ({cause}); it exited with {status}")]
    NoFilter {
        /// Why the descriptor did not arrive.
        cause: io::Error,
        /// How the helper exited.
        status: ExitStatus,
    },
    /// The base policy cannot be recorded onto.
    #[error("the base policy has no block-style `spec:` line; write it in block style to record onto it")]
    FlowStyleSpec,
    /// The recorded policy does not validate (a bug, or a base policy that did not).
    #[error("the recorded policy does not validate: {0}")]
    Invalid(semble_policy::PolicyError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> RecordError {
    let what = what.into();
    move |source| RecordError::Io { what, source }
}

/// Record `argv`: the helper (`helper_argv`, normally this program re-executed in its
/// `__record-child` mode) loads the recording filter, hands the notify fd back over an
/// inherited socket and executes the command.
pub fn run(helper_argv: &[String], argv: &[String]) -> Result<(Recorder, ExitStatus), RecordError> {
    let (helper, helper_args) = helper_argv.split_first().ok_or(RecordError::NoHelper)?;
    let (mine, theirs) = UnixStream::pair().map_err(io_err("cannot create a socket pair"))?;
    // `theirs` is inherited by the helper (std opens sockets close-on-exec: clear the flag).
    nix::fcntl::fcntl(theirs.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))
        .map_err(|e| io_err("cannot pass the socket to the helper")(e.into()))?;
    let mut child = Command::new(helper)
        .args(helper_args)
        .arg(theirs.as_raw_fd().to_string())
        .arg("--")
        .args(argv)
        .spawn()
        .map_err(io_err(format!("cannot start `{helper}`")))?;
    drop(theirs);
    let _ = mine.set_read_timeout(Some(Duration::from_secs(10)));
    let fd = match receive_one(&mine) {
        Ok(fd) => fd,
        Err(cause) => {
            let status = child.wait().map_err(io_err("cannot wait for the recording helper"))?;
            return Err(RecordError::NoFilter { cause, status });
        }
    };
    let mut sup = Supervisor::new(None, Recorder::default()).map_err(io_err("cannot start the recorder"))?;
    sup.add(fd);
    let mut status = None;
    sup.run(Duration::from_millis(20), None, |_| {
        if status.is_none() {
            status = child.try_wait().ok().flatten();
        }
        status.is_none()
    })
    .map_err(io_err("supervising the recording failed"))?;
    let _ = sup.drain();
    let status = match status {
        Some(s) => s,
        None => child.wait().map_err(io_err("cannot wait for the recorded command"))?,
    };
    Ok((sup.handler, status))
}

fn receive_one(stream: &UnixStream) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 8];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            let mut owned: Vec<OwnedFd> = fds.into_iter().map(sys::received).collect();
            if let Some(fd) = owned.pop() {
                return Ok(fd);
            }
        }
    }
    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no descriptor received"))
}

/// The helper's side: load the recording filter, hand its notify fd over `channel` (an
/// inherited socket, by number), then execute `argv`. Returns only on failure.
pub fn child(channel: &str, argv: &[String]) -> String {
    let Some(sock) = channel.parse::<RawFd>().ok().and_then(sys::inherited_socket) else {
        return format!("`{channel}` is not an inherited socket; this mode is for semble-policy record only");
    };
    let Some((prog, args)) = argv.split_first() else { return "no command to record".into() };
    let stream = UnixStream::from(sock);
    let ctx = match bpf::filter(&generate::record_profile(), bpf::Arch::native()) {
        Ok(c) => c,
        Err(e) => return format!("cannot build the recording filter: {e}"),
    };
    if let Err(e) = ctx.load() {
        return format!("cannot load the recording filter: {e}");
    }
    let fd = match ctx.get_notify_fd() {
        Ok(fd) => fd,
        Err(e) => return format!("the kernel gave no notify fd: {e}"),
    };
    // From here on every syscall but sendmsg waits for the recorder, which has the fd after
    // this sendmsg: nothing else may run in between. The listener fd is close-on-exec: the
    // command never holds it.
    if let Err(e) = send_fd(&stream, fd) {
        return format!("cannot hand the notify fd to the recorder: {e}");
    }
    drop(stream);
    let e = Command::new(prog).args(args).exec();
    format!("cannot execute `{prog}`: {e}")
}

/// The syscalls already allowed by an earlier recording in `text`, with their comments.
fn earlier(text: &str) -> BTreeMap<String, String> {
    let Ok(parsed) = semble_policy::parse(text) else { return BTreeMap::new() };
    let mut out = BTreeMap::new();
    for name in &parsed.policy.seccomp.allow {
        let comment = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("- "))
            .filter_map(|l| l.split_once('#').map(|(n, c)| (n.trim(), c.trim())))
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.to_string())
            .unwrap_or_else(|| "from an earlier recording".into());
        out.insert(name.clone(), comment);
    }
    out
}

/// Remove the `seccomp` section under `spec` from a policy's text and return (text, the
/// indentation of spec's keys).
fn without_seccomp(text: &str) -> Result<(Vec<String>, usize), RecordError> {
    let lines: Vec<&str> = text.lines().collect();
    let spec = lines.iter().position(|l| l.trim_end() == "spec:").ok_or(RecordError::FlowStyleSpec)?;
    let indent = lines[spec + 1..]
        .iter()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.len() - l.trim_start().len())
        .filter(|i| *i > 0)
        .unwrap_or(2);
    let mut out: Vec<String> = lines[..=spec].iter().map(|s| s.to_string()).collect();
    let mut skipping = false;
    for l in &lines[spec + 1..] {
        let ind = l.len() - l.trim_start().len();
        if !l.trim().is_empty() && ind <= indent {
            skipping = ind == indent && l.trim_start().starts_with("seccomp:");
        }
        if !skipping {
            out.push(l.to_string());
        }
    }
    Ok((out, indent))
}

/// The recorded policy's text: `base` (a policy's text, or a minimal one named `name`) with its
/// seccomp section replaced by `baseline: none` and an allow-list of what `recorded` saw plus
/// what `previous` (an earlier recording's text, merged) allowed. The result is validated.
pub fn policy_text(
    base: Option<&str>,
    name: &str,
    previous: Option<&str>,
    recorded: &BTreeMap<String, Seen>,
    what: &str,
) -> Result<String, RecordError> {
    let mut allow: BTreeMap<String, String> = previous.map(earlier).unwrap_or_default();
    for (n, s) in recorded {
        allow.entry(n.clone()).or_insert_with(|| format!("first seen: {} at {}", s.comm, s.time));
    }
    for (n, why) in ALWAYS {
        allow.entry((*n).to_string()).or_insert_with(|| (*why).to_string());
    }
    let base_text = match base.or(previous) {
        Some(t) => t.to_string(),
        None => format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata:\n  name: {name}\nspec:\n  network:\n    mode: none\n"),
    };
    let (mut lines, ind) = without_seccomp(&base_text)?;
    let pad = " ".repeat(ind);
    let spec = lines.iter().position(|l| l.trim_end() == "spec:").unwrap_or(lines.len().saturating_sub(1));
    let mut block = vec![
        format!("{pad}seccomp:"),
        format!("{pad}{pad}# recorded by semble: {what}"),
        format!("{pad}{pad}baseline: none"),
        format!("{pad}{pad}allow:"),
    ];
    for (n, c) in &allow {
        let warn = danger(n).map(|d| format!("; DANGEROUS: {d}")).unwrap_or_default();
        block.push(format!("{pad}{pad}{pad}- {n}  # {c}{warn}"));
    }
    lines.splice(spec + 1..spec + 1, block);
    let mut out = lines.join("\n");
    out.push('\n');
    semble_policy::parse(&out).map_err(RecordError::Invalid)?;
    Ok(out)
}

/// Write the recorded policy to `out` atomically (merging an earlier recording there).
pub fn write(
    out: &Path,
    base: Option<&str>,
    name: &str,
    recorded: &BTreeMap<String, Seen>,
    what: &str,
) -> Result<(), RecordError> {
    let previous = std::fs::read_to_string(out).ok();
    let text = policy_text(base, name, previous.as_deref(), recorded, what)?;
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(io_err(format!("cannot write in `{}`", dir.display())))?;
    io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io_err(format!("cannot write `{}`", out.display())))?;
    tmp.persist(out).map_err(|e| io_err(format!("cannot write `{}`", out.display()))(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(names: &[&str]) -> BTreeMap<String, Seen> {
        names.iter().map(|n| ((*n).to_string(), Seen { comm: "sh".into(), time: "t".into() })).collect()
    }

    #[test]
    fn a_recording_is_a_valid_policy_with_every_syscall_commented() {
        let text = policy_text(None, "rec", None, &seen(&["read", "openat", "keyctl"]), "sh -c true").unwrap();
        let p = semble_policy::parse(&text).unwrap().policy;
        assert_eq!(p.seccomp.baseline, semble_policy::model::Baseline::None);
        for n in ["read", "openat", "keyctl", "sendmsg"] {
            assert!(p.seccomp.allow.contains(&n.to_string()), "{n}: {text}");
        }
        assert!(text.contains("- openat  # first seen: sh at t"), "{text}");
        assert!(text.contains("- keyctl  # first seen: sh at t; DANGEROUS"), "{text}");
    }

    #[test]
    fn recordings_merge_and_keep_the_base() {
        let base = "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: w}\nspec:\n    process:\n        user: 1000\n    seccomp:\n        baseline: strict\n        deny: [ptrace]\n    network:\n        mode: none\n";
        let first = policy_text(Some(base), "x", None, &seen(&["read"]), "a").unwrap();
        let second = policy_text(None, "x", Some(&first), &seen(&["write"]), "b").unwrap();
        let p = semble_policy::parse(&second).unwrap().policy;
        assert!(p.seccomp.allow.contains(&"read".to_string()) && p.seccomp.allow.contains(&"write".to_string()));
        assert!(p.seccomp.deny.is_empty(), "the base's seccomp section is replaced");
        assert_eq!(p.process.user, Some(1000));
        assert!(second.contains("- read  # first seen: sh at t"), "{second}");
    }

    #[test]
    fn a_flow_style_spec_is_refused_with_the_fix() {
        let e = policy_text(
            Some("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: w}\nspec: {}\n"),
            "x",
            None,
            &seen(&["read"]),
            "a",
        )
        .unwrap_err();
        assert!(matches!(e, RecordError::FlowStyleSpec), "{e}");
        assert!(e.to_string().contains("block-style"), "{e}");
    }
}
