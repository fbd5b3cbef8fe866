//! # semble-init: the first process of a semble container
//!
//! The shim makes `semble-init` the container's process 1 (bind-mounted read-only from the host
//! at `/.semble/init`) and puts the workload's command after it. Before the workload runs,
//! `semble-init`:
//!
//! 1. **verifies** that the runtime applied the policy: no capability beyond the policy's, no_new_privs
//!    set, a seccomp filter in force, the right uid — a runtime that ignored `config.json` is
//!    caught here, not trusted ([`verify`]);
//! 2. **binds the proxy bridge** when the policy's network mode is `proxy` ([`bridge`]);
//! 3. **forks** the workload, which applies the Landlock ruleset to itself (Landlock needs a path
//!    view that only exists after `pivot_root`, which is why a runtime cannot do it from outside)
//!    and stacks the container's own seccomp profile, then `execve`s ([`landlock_apply`]);
//! 4. **supervises**: forwards signals, reaps zombies, exits with the workload's status
//!    ([`supervise`]).
//!
//! For `exec` processes (`semble-init --exec`), the same checks and restrictions apply, and it
//! `execve`s directly (the runtime supervises exec processes).
//!
//! It is a static binary (no libc in the container needed), small, and it never decides policy:
//! it applies what the shim computed and refuses to start when it cannot.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod bridge;
pub mod config;
pub mod egress_check;
pub mod landlock_apply;
pub mod supervise;
mod sys;
pub mod verify;

use std::convert::Infallible;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use config::InitConfig;

/// The seccomp programs semble-init loads: read from `/.semble` by the binary, handed over in
/// memory by the embedded backend.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// The policy's filter, loaded first (before anything else runs).
    pub policy: Option<Vec<u8>>,
    /// The container's own profile, stacked last (right before `execve`).
    pub extra: Option<Vec<u8>>,
    /// A connection to the seccomp supervisor made before the container existed (the embedded
    /// backend, whose container cannot reach the socket's path); `None`: connect to
    /// [`InitConfig::notify`].
    pub notify: Option<Arc<UnixStream>>,
}

impl Filters {
    /// Read the programs `cfg` names.
    pub fn from_files(cfg: &InitConfig) -> Result<Filters, String> {
        let read = |p: &Option<String>, what: &str| -> Result<Option<Vec<u8>>, String> {
            match p {
                Some(path) => std::fs::read(path).map(Some).map_err(|e| format!("cannot read {what} `{path}`: {e}")),
                None => Ok(None),
            }
        };
        Ok(Filters {
            policy: read(&cfg.seccomp, "the policy's seccomp filter")?,
            extra: read(&cfg.extra_seccomp, "the container's seccomp filter")?,
            notify: None,
        })
    }
}

/// Load a filter on top of the ones in force.
pub fn load_filter(program: &[u8], what: &str) -> Result<(), String> {
    sys::seccomp_load(program, false).map(|_| ()).map_err(|e| format!("cannot load {what}: {e}"))
}

/// Load the policy's filter with a notify listener and hand the listener to the supervisor
/// at `socket`. After the hand-over this process holds no copy of the listener (and the kernel
/// made it close-on-exec), so the workload can never answer its own notifications — nor create
/// a listener of its own: every filter semble generates refuses `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
/// When the supervisor is gone (killed, or its container's state removed), the filter is loaded
/// all the same and every refusal fails with `ENOSYS`; that is said on stderr.
/// Returns the connection to the supervisor (for the Landlock announcement,
/// [`landlock_apply::announce`]) when it took the listener.
pub fn load_filter_explained(program: &[u8], socket: &str) -> Result<Option<Arc<UnixStream>>, String> {
    match UnixStream::connect(socket) {
        Ok(stream) => Ok(load_filter_handing_over(program, &stream)?.then(|| Arc::new(stream))),
        Err(e) => {
            // Still fail closed: the filter is loaded and its listener dropped, so the kernel
            // refuses every syscall the policy refuses, with ENOSYS instead of the policy's errno.
            eprintln!("semble-init: warning: semble's seccomp supervisor at `{socket}` is unreachable ({e}): refused syscalls fail with ENOSYS and are not explained");
            sys::seccomp_load(program, true)
                .map(|_| None)
                .map_err(|e| format!("cannot load the policy's seccomp filter: {e}"))
        }
    }
}

/// How long the supervisor may take to acknowledge the listener.
const ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Load the policy's filter with a notify listener and hand the listener over `stream`; wait
/// for the supervisor's acknowledgement, and warn (on stderr, which the engine logs) when it
/// does not come: refusals then fail with `ENOSYS` and are not explained. `Ok(true)`: the
/// supervisor took it.
pub fn load_filter_handing_over(program: &[u8], stream: &UnixStream) -> Result<bool, String> {
    use std::io::Read;
    let fd = sys::seccomp_load(program, true)
        .map_err(|e| format!("cannot load the policy's seccomp filter: {e}"))?
        .ok_or("the kernel returned no notify listener")?;
    let fds = [std::os::fd::AsRawFd::as_raw_fd(&fd)];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(b"n")];
    let sent = nix::sys::socket::sendmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(stream),
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    );
    drop(fd);
    if let Err(e) = sent {
        eprintln!("semble-init: warning: cannot hand the notify listener to semble's seccomp supervisor ({e}): refused syscalls fail with ENOSYS and are not explained");
        return Ok(false);
    }
    let mut ack = [0u8; 1];
    let got = stream.set_read_timeout(Some(ACK_TIMEOUT)).and_then(|()| (&*stream).read(&mut ack));
    match got {
        Ok(1) if ack == semble_policy::compile::oci::NOTIFY_ACK => Ok(true),
        other => {
            let why = match other {
                Ok(_) => "it closed the connection".to_string(),
                Err(e) => e.to_string(),
            };
            eprintln!("semble-init: warning: semble's seccomp supervisor did not take the notify listener ({why}): refused syscalls fail with ENOSYS (or wait for it) and are not explained");
            Ok(false)
        }
    }
}

/// Check the runtime's work, then load the policy's filter and check a filter is in force.
/// Runs first, so that everything after — in `semble-init` too — is filtered. Returns the
/// connection to the supervisor that took the listener, if one did.
pub fn enter(cfg: &InitConfig, filters: &Filters) -> Result<Option<Arc<UnixStream>>, String> {
    if cfg.version != config::VERSION {
        return Err(format!(
            "configuration version {} is not {}; semble-init and semble-shim come from different releases",
            cfg.version,
            config::VERSION
        ));
    }
    let ctx = |e: String| format!("container `{}`, policy `{}`: {e}", cfg.container_id, cfg.policy);
    if cfg.egress_guard {
        egress_check::wait(std::time::Duration::from_secs(10)).map_err(ctx)?;
    }
    verify::verify(&cfg.expect).map_err(|e| ctx(e.to_string()))?;
    let mut conn = None;
    if let Some(program) = &filters.policy {
        match (&cfg.notify, &filters.notify) {
            (Some(_), Some(stream)) => {
                if load_filter_handing_over(program, stream).map_err(ctx)? {
                    conn = Some(stream.clone());
                }
            }
            (Some(socket), None) => conn = load_filter_explained(program, socket).map_err(ctx)?,
            (None, _) => load_filter(program, "the policy's seccomp filter").map_err(ctx)?,
        }
    }
    verify::verify_seccomp(&cfg.expect).map_err(|e| ctx(e.to_string()))?;
    Ok(conn)
}

/// Everything the workload's own process does before `execve`: Landlock, the stacked filter,
/// exec. Never returns on success. `supervisor`: the connection that handed the listener over,
/// on which the Landlock domain is announced when its refusals are explained.
pub fn restrict_and_exec(
    cfg: &InitConfig,
    filters: &Filters,
    argv: &[String],
    supervisor: Option<&UnixStream>,
) -> Result<Infallible, (i32, String)> {
    if let Some(rs) = &cfg.landlock {
        match landlock_apply::apply(rs) {
            Ok(report) => {
                if rs.log && report.status != landlock_apply::Enforced::Not {
                    if let Some(conn) = supervisor {
                        landlock_apply::announce(conn);
                    }
                }
                if report.status != landlock_apply::Enforced::Fully {
                    eprintln!(
                        "semble-init: warning: Landlock is {} on this kernel for policy `{}`",
                        match report.status {
                            landlock_apply::Enforced::Partially => "partially enforced",
                            _ => "not enforced",
                        },
                        cfg.policy
                    );
                }
            }
            Err(e) => return Err((supervise::EXIT_POLICY, e.to_string())),
        }
    }
    if let Some(program) = &filters.extra {
        load_filter(program, "the container's seccomp filter").map_err(|e| (supervise::EXIT_POLICY, e))?;
    }
    supervise::exec(argv)
}

/// Print an error the way semble-init does and return its exit code.
pub fn report(code: i32, msg: &str) -> i32 {
    eprintln!("semble-init: error: {}", msg.replace('\n', " "));
    code
}

/// The whole job as the container's process 1: checks, filter, proxy bridge, the workload in a
/// child, supervision. Returns the exit code to exit with.
pub fn run_as_init(cfg: &InitConfig, filters: &Filters, argv: &[String]) -> i32 {
    let conn = match enter(cfg, filters) {
        Ok(c) => c,
        Err(e) => return report(supervise::EXIT_POLICY, &e),
    };
    let listener = match &cfg.proxy_bridge {
        Some(b) => match bridge::bind(&b.listen) {
            Ok(l) => Some((l, b.socket.clone())),
            Err(e) => {
                return report(
                    supervise::EXIT_POLICY,
                    &format!("cannot listen on `{}` for the proxy bridge: {e}", b.listen),
                )
            }
        },
        None => None,
    };
    let old_mask = match supervise::block_signals() {
        Ok(m) => m,
        Err(e) => return report(supervise::EXIT_POLICY, &format!("cannot block signals: {e}")),
    };
    let workload = supervise::spawn(|| {
        supervise::prepare_child(&old_mask);
        match restrict_and_exec(cfg, filters, argv, conn.as_deref()) {
            Ok(never) => match never {},
            Err((code, msg)) => report(code, &msg),
        }
    });
    // The workload's copy of the connection is closed when it executes; this one is not needed.
    drop(conn);
    let workload = match workload {
        Ok(p) => p,
        Err(e) => return report(supervise::EXIT_POLICY, &format!("cannot start the workload: {e}")),
    };
    if let Some((l, socket)) = listener {
        if let Err(e) = bridge::serve(l, socket.into()) {
            eprintln!("semble-init: warning: proxy bridge not started: {e}");
        }
    }
    supervise::supervise(workload)
}

/// The job for an `exec` process: checks, filter, Landlock, the stacked filter, `execve`.
/// Returns only with an exit code when something failed.
pub fn run_as_exec(cfg: &InitConfig, filters: &Filters, argv: &[String]) -> i32 {
    let conn = match enter(cfg, filters) {
        Ok(c) => c,
        Err(e) => return report(supervise::EXIT_POLICY, &e),
    };
    match restrict_and_exec(cfg, filters, argv, conn.as_deref()) {
        Ok(never) => match never {},
        Err((code, msg)) => report(code, &msg),
    }
}
