//! The embedded backend: containers created in-process with youki's `libcontainer`, no runc
//! installed, no second runtime process started.
//!
//! libcontainer sets up namespaces, cgroups, mounts, capabilities and `no_new_privs` exactly as
//! `config.json` says; then, inside the container and after `pivot_root`, it calls an
//! [`Executor`]. semble's executor does what `semble-init` does for the runc backend — checks the
//! runtime's work, loads the precompiled seccomp filter, applies Landlock, bridges the proxy,
//! forks and supervises the workload — with the configuration and filters handed over in memory
//! (the executor is cloned into the container's process), so nothing needs to be mounted.
//!
//! cgroups: on this project's hosts (cgroup v1 + v2 hybrid) libcontainer uses its v1 manager
//! and does not join the unified hierarchy (runc does); limits are enforced through v1.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::wait::{waitpid, WaitStatus};
use oci_spec::runtime::Spec;
use serde_json::json;

use semble_init::config::InitConfig;
use semble_init::Filters;

use crate::error::Failure;

/// Whether the executor runs a container's first process or an `exec` process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Process 1: supervise the workload.
    Init,
    /// An `exec` process: restrict and `execve`.
    Exec,
}

/// What semble-init would have been given.
#[derive(Debug, Clone)]
pub struct Payload {
    /// semble-init's configuration (`None` for a pod's sandbox container).
    pub init: Option<InitConfig>,
    /// The seccomp programs.
    pub filters: Filters,
}

/// The executor: runs inside the container, after `pivot_root`, with the capabilities and
/// `no_new_privs` already in place.
#[derive(Debug, Clone)]
pub struct SembleExecutor {
    payload: Payload,
    role: Role,
}

impl SembleExecutor {
    /// An executor for `payload` in `role`.
    pub fn new(payload: Payload, role: Role) -> Self {
        SembleExecutor { payload, role }
    }
}

/// libcontainer reopens a host `/dev/null` standard stream inside the container read-only, so
/// writes to it fail with `EBADF`; reopen such streams with the right access mode.
fn fix_dev_null_stdio() {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let Ok(null_meta) = nix::sys::stat::stat("/dev/null") else {
        return;
    };
    for fd in [1, 2] {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) else {
            continue;
        };
        let mode = OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE;
        if st.st_rdev == null_meta.st_rdev && (st.st_mode & libc::S_IFMT) == libc::S_IFCHR && mode == OFlag::O_RDONLY {
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                let _ = nix::unistd::dup2(f.as_raw_fd(), fd);
            }
        }
    }
}

fn args(spec: &Spec) -> Result<Vec<String>, ExecutorError> {
    spec.process().as_ref().and_then(|p| p.args().clone()).filter(|a| !a.is_empty()).ok_or(ExecutorError::InvalidArg)
}

impl Executor for SembleExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        fix_dev_null_stdio();
        let argv = args(spec)?;
        let code = match (&self.payload.init, self.role) {
            (Some(cfg), Role::Init) => semble_init::run_as_init(cfg, &self.payload.filters, &argv),
            (Some(cfg), Role::Exec) => semble_init::run_as_exec(cfg, &self.payload.filters, &argv),
            // A pod's sandbox container: the runtime applied the policy; just run it.
            (None, _) => match semble_init::supervise::exec(&argv) {
                Ok(never) => match never {},
                Err((code, msg)) => semble_init::report(code, &msg),
            },
        };
        let _ = std::io::stderr().flush();
        std::process::exit(code)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        args(spec)
            .map(|_| ())
            .map_err(|_| ExecutorValidationError::ArgValidationError("the process has no args".into()))
    }
}

/// An error with its chain of causes, on one line.
fn lc(what: &str, e: impl std::error::Error) -> Failure {
    let mut msg = format!("embedded runtime: {what}: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cause = c.source();
    }
    Failure(msg)
}

/// Bring loopback up in the network namespace of process `pid` (a container libcontainer just
/// created with a new network namespace: unlike runc, it leaves loopback down, and the
/// workload's capabilities cannot bring it up). The namespace is entered from a thread of this
/// process (`setns` changes only the calling thread), from the host: it works whatever user
/// namespace owns the container's network namespace.
pub fn loopback_up_in(pid: i32) -> Result<(), Failure> {
    let path = format!("/proc/{pid}/ns/net");
    std::thread::Builder::new()
        .name("loopback".into())
        .spawn(move || -> Result<(), String> {
            let ns = std::fs::File::open(&path).map_err(|e| format!("cannot open `{path}`: {e}"))?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("cannot enter the container's network namespace: {e}"))?;
            crate::sys::loopback_up().map_err(|e| format!("cannot bring the container's loopback up: {e}"))
        })
        .map_err(|e| Failure(format!("cannot start the loopback thread: {e}")))?
        .join()
        .map_err(|_| Failure("the loopback thread died".into()))?
        .map_err(Failure)
}

/// Options of `create`/`run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--systemd-cgroup`.
    pub systemd: bool,
}

fn builder(root: &Path, id: &str, opts: &CreateOpts) -> Result<ContainerBuilder, Failure> {
    ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(root)
        .map_err(|e| lc("state directory", e))?
        .with_pid_file(opts.pid_file.as_ref())
        .map_err(|e| lc("pid file", e))?
        .with_console_socket(opts.console_socket.as_ref())
        .with_preserved_fds(i32::try_from(opts.preserve_fds).unwrap_or(0))
        .validate_id()
        .map_err(|e| lc("container ID", e))
}

/// Create a container (its process waits for `start`).
pub fn create(
    root: &Path,
    id: &str,
    bundle: &Path,
    opts: &CreateOpts,
    payload: Payload,
    detach: bool,
) -> Result<Container, Failure> {
    std::fs::create_dir_all(root).map_err(|e| lc("state directory", e))?;
    builder(root, id, opts)?
        .with_executor(SembleExecutor::new(payload, Role::Init))
        .as_init(bundle)
        .with_systemd(opts.systemd)
        .with_detach(detach)
        .with_no_pivot(opts.no_pivot)
        .build()
        .map_err(|e| lc("create", e))
}

/// Load a container.
pub fn load(root: &Path, id: &str) -> Result<Container, Failure> {
    let dir = root.join(id);
    if !dir.join("state.json").exists() {
        return Err(Failure(format!("container `{id}` does not exist")));
    }
    let mut c = Container::load(dir).map_err(|e| lc("loading the container", e))?;
    let _ = c.refresh_status();
    Ok(c)
}

/// Start a created container.
pub fn start(root: &Path, id: &str) -> Result<(), Failure> {
    load(root, id)?.start().map_err(|e| lc("start", e))
}

/// Wait for a container's init process (a child of this process) and return its exit code.
pub fn wait(container: &Container) -> i32 {
    let Some(pid) = container.pid() else { return 1 };
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 1,
        }
    }
}

/// runc's `state` JSON.
pub fn state(root: &Path, id: &str) -> Result<serde_json::Value, Failure> {
    let c = load(root, id)?;
    let s = &c.state;
    let rootfs = std::fs::read(s.bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.pointer("/root/path").and_then(|p| p.as_str()).map(|p| {
                if Path::new(p).is_absolute() {
                    PathBuf::from(p)
                } else {
                    s.bundle.join(p)
                }
            })
        })
        .unwrap_or_else(|| s.bundle.join("rootfs"));
    let status = match c.status() {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    };
    Ok(json!({
        "ociVersion": s.oci_version,
        "id": s.id,
        "pid": if status == "stopped" { 0 } else { s.pid.unwrap_or(0) },
        "status": status,
        "bundle": s.bundle,
        "rootfs": rootfs,
        "created": s.created.map(|t| t.to_rfc3339()),
        "owner": "",
        "annotations": s.annotations,
    }))
}

/// Parse a signal as runc does (`SIGKILL`, `KILL`, `9`).
pub fn signal(s: &str) -> Result<Signal, Failure> {
    let sig = super::parse_signal(s)?;
    Signal::try_from(sig as i32).map_err(|_| Failure(format!("unknown signal `{s}`")))
}

/// Send a signal.
pub fn kill(root: &Path, id: &str, sig: &str, all: bool) -> Result<(), Failure> {
    let sig = signal(sig)?;
    load(root, id)?.kill(sig, all).map_err(|e| lc("kill", e))
}

/// Delete a container.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), Failure> {
    load(root, id)?.delete(force).map_err(|e| lc("delete", e))
}

/// Freeze.
pub fn pause(root: &Path, id: &str) -> Result<(), Failure> {
    load(root, id)?.pause().map_err(|e| lc("pause", e))
}

/// Thaw.
pub fn resume(root: &Path, id: &str) -> Result<(), Failure> {
    load(root, id)?.resume().map_err(|e| lc("resume", e))
}

/// cgroup statistics, once or every `interval` seconds.
pub fn events(root: &Path, id: &str, interval: u32, stats: bool) -> Result<(), Failure> {
    load(root, id)?.events(interval, stats).map_err(|e| lc("events", e))
}

/// The PIDs in the container's cgroup.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>, Failure> {
    use libcgroups::common::CgroupManager;
    let c = load(root, id)?;
    let cfg = c.spec().map_err(|e| lc("reading the container's configuration", e))?;
    let manager = libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
        cgroup_path: cfg.cgroup_path,
        systemd_cgroup: c.systemd(),
        container_name: id.to_string(),
    })
    .map_err(|e| lc("cgroups", e))?;
    let pids = manager.get_all_pids().map_err(|e| lc("cgroups", e))?;
    Ok(pids.into_iter().map(|p| p.as_raw()).collect())
}

/// Run a process in a running container (`process` is a process.json). Returns the PID.
pub fn exec(
    root: &Path,
    id: &str,
    process: &Path,
    opts: &CreateOpts,
    detach: bool,
    payload: Payload,
) -> Result<i32, Failure> {
    let pid = builder(root, id, opts)?
        .with_executor(SembleExecutor::new(payload, Role::Exec))
        .as_tenant()
        .with_detach(detach)
        .with_process(Some(process))
        .build()
        .map_err(|e| lc("exec", e))?;
    Ok(pid.as_raw())
}

/// Wait for an `exec` process (a child of this process).
pub fn wait_pid(pid: i32) -> i32 {
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 1,
        }
    }
}

/// Container IDs under `root`.
pub fn list(root: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().join("state.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}
