//! gVisor pods under containerd's runc shim (`io.containerd.runc.v2` with `BinaryName` naming
//! `semble-shim-runsc`): the holder process of each sub-container.
//!
//! A pod under runsc is one sandbox; its first container (the pause container) creates it and
//! every later container of the pod is a *sub-container* inside it. runsc treats sub-containers
//! in two ways containerd's runc shim does not expect from a runc-like runtime:
//!
//! - a sub-container takes its stdio at `start`, not at `create`: `runsc start` hands its own
//!   stdin, stdout and stderr to the workload. containerd's shim runs `start` with a pipe that
//!   collects the command's output and waits for that pipe to close, which never happens (the
//!   sandbox holds it): StartContainer hangs, and the workload's output goes to that pipe instead
//!   of the container's log;
//! - the `--pid-file` of every container names the sandbox's process, and containerd's shim
//!   learns that a container exited when that process exits: a sub-container would be seen to exit
//!   only when the whole pod does.
//!
//! gVisor's own containerd shim (`containerd-shim-runsc-v1`) handles both; semble makes the runc
//! shim work too, so one handler type serves runc and gVisor. For each sub-container, `create`
//! starts a holder (`semble-shim hold ID`) that keeps the stdio containerd gave `create`, and
//! writes the holder's PID into the pid-file. `start` asks the holder, through a socket in the
//! container's state directory, to run `runsc start` with those stdio; the holder then waits for
//! the container (`runsc wait`) and exits with its status. containerd's shim is a subreaper: once
//! `create` has exited, the holder is its child, and the holder's exit is the container's.
//! The holder joins the sandbox's cgroup, which is where containerd's shim would otherwise have
//! read the statistics from (the sandbox's process).

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::error::{Failure, Outcome};
use crate::state::Paths;
use crate::supervisor::via_dir;

/// The socket `start` reaches the holder through (in the container's state directory, which only
/// root can enter).
const SOCKET: &str = "start.sock";
/// The holder's PID, for `delete`.
const PID_FILE: &str = "hold.pid";

/// Whether `config` describes a container joining an existing sandbox, as runsc decides it
/// (containerd's and CRI-O's container-type annotations).
pub fn is_subcontainer(config: &Value) -> bool {
    let ann = |k: &str| crate::bundle::annotation(config, k);
    ann(crate::bundle::CRI_CONTAINER_TYPE) == Some("container")
        || ann("io.kubernetes.cri-o.ContainerType") == Some("container")
}

/// Start the holder of sub-container `id` (just created by runsc) and make the pid-file name it.
/// `runsc` is the backend's command line up to the command (binary and global flags).
pub fn spawn(root: &Path, paths: &Paths, id: &str, pid_file: &Path, runsc: &[OsString]) -> Result<(), Failure> {
    let sock = paths.dir.join(SOCKET);
    let _ = fs::remove_file(&sock);
    let listener = via_dir(&sock, |p| UnixListener::bind(p))
        .map_err(|e| Failure(format!("cannot create the start socket `{}`: {e}", sock.display())))?;
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o600))
        .map_err(|e| Failure(format!("cannot set permissions of `{}`: {e}", sock.display())))?;
    let fd = OwnedFd::from(listener);
    // The holder inherits the listening socket by number; it is the only descriptor it gets
    // besides the container's stdio.
    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))
        .map_err(|e| Failure(format!("cannot pass the start socket to its holder: {e}")))?;
    let exe = std::env::current_exe().map_err(|e| Failure(format!("cannot find semble-shim's own binary: {e}")))?;
    let child = Command::new(exe)
        .arg("--root")
        .arg(root)
        .arg("hold")
        .arg(id)
        .arg("--listen-fd")
        .arg(fd.as_raw_fd().to_string())
        .arg("--")
        .args(runsc)
        // Its own process group: signals meant for the caller's group do not reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| Failure(format!("cannot start the holder of sub-container `{id}`: {e}")))?;
    drop(fd);
    let holder = child.id();
    fs::write(paths.dir.join(PID_FILE), holder.to_string())
        .map_err(|e| Failure(format!("cannot record the holder's PID: {e}")))?;
    let sandbox = fs::read_to_string(pid_file).ok().and_then(|s| s.trim().parse::<u32>().ok());
    if let Some(cgroup) = sandbox.and_then(cgroup_of) {
        // Best effort: statistics are all that depends on it.
        let _ = fs::write(
            Path::new("/sys/fs/cgroup").join(cgroup.trim_start_matches('/')).join("cgroup.procs"),
            holder.to_string(),
        );
    }
    semble_files::write_with(pid_file, holder.to_string().as_bytes(), false)
        .map_err(|e| Failure(format!("cannot write the pid file `{}`: {e}", pid_file.display())))
}

/// The cgroup v2 path of process `pid` (`None` on cgroup v1).
fn cgroup_of(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string)
}

/// `start` of a sub-container that has a holder: the holder runs `runsc start` with the
/// container's stdio. `None` when the container has no holder (start it directly).
pub fn start(paths: &Paths, id: &str) -> Option<Outcome> {
    let sock = paths.dir.join(SOCKET);
    if !sock.exists() {
        return None;
    }
    let asked = (|| -> std::io::Result<String> {
        let mut conn = via_dir(&sock, |p| UnixStream::connect(p))?;
        conn.write_all(b"start\n")?;
        let mut line = String::new();
        BufReader::new(conn).read_line(&mut line)?;
        Ok(line)
    })();
    Some(match asked {
        Ok(line) => match line.trim().parse::<i32>() {
            Ok(0) => Ok(0),
            Ok(code) => Err(Failure(format!(
                "runsc could not start sub-container `{id}` (exit {code}); its error is in runsc's log (--log) and the container's output"
            ))),
            Err(_) => Err(Failure(format!("the holder of sub-container `{id}` gave no answer to `start` ({line:?})"))),
        },
        Err(e) => Err(Failure(format!(
            "the holder of sub-container `{id}` is gone ({e}); delete the container and create it again"
        ))),
    })
}

/// The holder (`semble-shim hold ID --listen-fd N -- RUNSC…`): its stdio are the container's.
/// Runs `runsc start` when asked, then `runsc wait`, and exits with the container's status.
pub fn serve(paths: &Paths, id: &str, listen_fd: i32, runsc: &[OsString]) -> Outcome {
    let (program, global) = runsc.split_first().ok_or_else(|| Failure("hold: no runsc command line given".into()))?;
    let listener = UnixListener::from(
        crate::sys::inherited_fd(listen_fd)
            .map_err(|e| Failure(format!("hold: descriptor {listen_fd} is not the start socket: {e}")))?,
    );
    let backend = |cmd: &str| {
        let mut c = Command::new(program);
        c.args(global).arg(cmd).arg(id);
        c
    };
    loop {
        let (mut conn, _) = listener.accept().map_err(|e| Failure(format!("hold: accept: {e}")))?;
        let mut line = String::new();
        if BufReader::new(&conn).read_line(&mut line).is_err() || line.trim() != "start" {
            continue;
        }
        // runsc gives the workload this command's stdin, stdout and stderr: the container's.
        let code = match backend("start").status() {
            Ok(s) => s.code().unwrap_or(128),
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "semble-shim: error: cannot run `{}`: {e}",
                    Path::new(program).display()
                );
                127
            }
        };
        let _ = writeln!(conn, "{code}");
        if code == 0 {
            break;
        }
    }
    drop(listener);
    let _ = fs::remove_file(paths.dir.join(SOCKET));
    // The sandbox holds the container's stdio now; the holder lets go of its copies so that the
    // log ends when the workload's output does.
    stdio_to_dev_null();
    let out = backend("wait").stdin(Stdio::null()).stderr(Stdio::null()).output();
    let status = out
        .ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| v.get("exitStatus").and_then(Value::as_i64))
        // runsc reports 128+N for a workload killed by signal N, as runc's shims do.
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(255);
    Ok(status)
}

/// Point stdin, stdout and stderr at /dev/null.
fn stdio_to_dev_null() {
    if let Ok(null) = fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// `kill` of a sub-container that was created but not started: runsc has no process to signal
/// (it refuses: "cannot signal container in state created"), while runc kills the process
/// waiting to start and containerd relies on that to remove a container that never started
/// (StartContainer failed, or RemoveContainer right after CreateContainer). The holder plays that
/// process: it gets the signal, and its end is the container's.
pub fn kill_unstarted(paths: &Paths, id: &str, signal: Option<&str>) -> Option<Outcome> {
    if !paths.dir.join(SOCKET).exists() {
        return None;
    }
    let pid = holder(paths, id)?;
    let sig = match signal.map(crate::backend::parse_signal).unwrap_or(Ok(nix::sys::signal::Signal::SIGTERM)) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    Some(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
            .map(|()| 0)
            .map_err(|e| Failure(format!("cannot signal sub-container `{id}` (its holder, PID {pid}): {e}"))),
    )
}

/// The PID of container `id`'s holder, if it runs (not a process that reused the PID).
fn holder(paths: &Paths, id: &str) -> Option<i32> {
    let pid = fs::read_to_string(paths.dir.join(PID_FILE)).ok()?.trim().parse::<u32>().ok()?;
    if !crate::state::is_helper(pid, "hold", id) {
        return None;
    }
    i32::try_from(pid).ok()
}

/// Stop the holder of container `id` if it still runs (a sub-container deleted before it
/// started, or forcibly).
pub fn stop(paths: &Paths, id: &str) {
    if let Some(pid) = holder(paths, id) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sub_containers_are_recognised_as_runsc_recognises_them() {
        let c = |k: &str, v: &str| json!({"annotations": {k: v}});
        assert!(is_subcontainer(&c("io.kubernetes.cri.container-type", "container")));
        assert!(is_subcontainer(&c("io.kubernetes.cri-o.ContainerType", "container")));
        assert!(!is_subcontainer(&c("io.kubernetes.cri.container-type", "sandbox")));
        assert!(!is_subcontainer(&json!({})));
    }
}
