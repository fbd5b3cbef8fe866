//! `semble-init` as PID 1: start the workload, forward signals to it, reap every zombie, and exit
//! with the workload's status (like tini).

use std::convert::Infallible;
use std::ffi::CString;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, getpid, setpgid, ForkResult, Pid};

use crate::sys;

/// Exit code when the workload could not be started for a policy reason.
pub const EXIT_POLICY: i32 = 126;
/// Exit code when the workload's program was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Block every signal that can be blocked; returns the previous mask for the child to restore.
pub fn block_signals() -> Result<SigSet, Errno> {
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut old))?;
    Ok(old)
}

/// Fork; in the child run `child`, which sets up and execs the workload, and returns only with
/// an exit code when it could not.
pub fn spawn(child: impl FnOnce() -> i32) -> Result<Pid, Errno> {
    match sys::fork()? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => std::process::exit(child()),
    }
}

/// In the child: own process group, the terminal's foreground if there is one, the original
/// signal mask.
pub fn prepare_child(old_mask: &SigSet) {
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    if nix::unistd::isatty(0).unwrap_or(false) {
        let _ = sys::give_terminal_to(getpid());
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(old_mask), None);
}

/// Exec the workload (searching `PATH` like the runtime would have).
pub fn exec(argv: &[String]) -> Result<Infallible, (i32, String)> {
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| (EXIT_POLICY, format!("argument `{a}` contains a NUL byte"))))
        .collect::<Result<_, _>>()?;
    let Some(prog) = args.first() else {
        return Err((EXIT_POLICY, "no program to run".into()));
    };
    match execvp(prog, &args) {
        Ok(never) => match never {},
        Err(Errno::ENOENT) => {
            Err((EXIT_NOT_FOUND, format!("`{}`: no such file or directory in the container", argv[0])))
        }
        Err(Errno::EACCES) => Err((
            EXIT_POLICY,
            format!("`{}`: permission denied (is it outside the policy's `filesystem.execute`?)", argv[0]),
        )),
        Err(e) => Err((EXIT_POLICY, format!("cannot execute `{}`: {e}", argv[0]))),
    }
}

/// Wait for signals: forward them to the workload, reap children, and return the exit code once
/// the workload has exited.
pub fn supervise(workload: Pid) -> i32 {
    let all = SigSet::all();
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            // SIGTTOU/SIGTTIN/SIGTSTP would stop PID 1 itself; hand everything to the workload.
            let _ = kill(workload, sig);
            continue;
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == workload => return code,
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == workload => return 128 + s as i32,
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
    }
}
