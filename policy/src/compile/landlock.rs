//! `--target landlock`: the Landlock ruleset `semble-init` applies inside the container.
//!
//! Paths are as the workload sees them (after `pivot_root`). The ruleset names access rights in
//! the kernel's terms; `semble-init` handles every right the running kernel's ABI knows and grants
//! only what is listed, so an older kernel enforces a subset (reported, and refused when the
//! policy says `enforcement: required` and Landlock is missing altogether).

use serde::{Deserialize, Serialize};

use crate::model::{Enforcement, NetworkMode, Protocol, SandboxPolicy};

/// The format version `semble-init` understands.
pub const RULESET_VERSION: u32 = 1;

/// A filesystem access right (Landlock `LANDLOCK_ACCESS_FS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsAccess {
    /// Execute a file.
    Execute,
    /// Open a file for writing.
    WriteFile,
    /// Open a file for reading.
    ReadFile,
    /// List a directory.
    ReadDir,
    /// Remove a directory.
    RemoveDir,
    /// Remove a file.
    RemoveFile,
    /// Create a character device.
    MakeChar,
    /// Create a directory.
    MakeDir,
    /// Create a regular file.
    MakeReg,
    /// Create a Unix socket.
    MakeSock,
    /// Create a FIFO.
    MakeFifo,
    /// Create a block device.
    MakeBlock,
    /// Create a symlink.
    MakeSym,
    /// Link or rename a file into another directory (ABI 2).
    Refer,
    /// Truncate a file (ABI 3).
    Truncate,
    /// ioctl on a device file (ABI 5).
    IoctlDev,
}

/// Rights for `readOnly` paths.
pub const READ: &[FsAccess] = &[FsAccess::ReadFile, FsAccess::ReadDir];
/// Rights for `execute` paths.
pub const EXECUTE: &[FsAccess] = &[FsAccess::Execute, FsAccess::ReadFile, FsAccess::ReadDir];
/// Rights for `readWrite` paths: everything but executing and making device nodes.
pub const READ_WRITE: &[FsAccess] = &[
    FsAccess::ReadFile,
    FsAccess::ReadDir,
    FsAccess::WriteFile,
    FsAccess::RemoveDir,
    FsAccess::RemoveFile,
    FsAccess::MakeDir,
    FsAccess::MakeReg,
    FsAccess::MakeSock,
    FsAccess::MakeFifo,
    FsAccess::MakeSym,
    FsAccess::Refer,
    FsAccess::Truncate,
];
/// Rights on the device nodes every process expects to use.
pub const DEVICE: &[FsAccess] = &[FsAccess::ReadFile, FsAccess::WriteFile, FsAccess::IoctlDev];

/// Device nodes added to every ruleset: without them, writing to `/dev/null` fails.
pub const IMPLICIT_DEVICES: &[&str] =
    &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/pts"];

/// What `devices.gpu: nvidia` grants, and why: everything a CUDA process needs from Landlock
/// beyond the paths its policy lists, and nothing more (see `docs/policy-reference.md`,
/// "What the GPU grant opens").
///
/// * The NVIDIA control nodes every CUDA process opens read-write and drives with `ioctl`
///   (the driver's whole API is ioctls: Landlock's `IOCTL_DEV` right, ABI 5).
///   `/dev/nvidia-modeset` (display) is not among them: a policy that needs it lists it in
///   `devices.allow`.
pub const GPU_NODES: &[&str] = &["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"];

/// * The MIG capability nodes (`/dev/nvidia-caps/nvidia-capN`): opened read-only and handed
///   to the driver, which checks the file and its minor; nothing else is done with them.
pub const GPU_CAPS_DIR: &str = "/dev/nvidia-caps";
/// Rights under [`GPU_CAPS_DIR`].
pub const GPU_CAPS: &[FsAccess] = &[FsAccess::ReadFile];

/// * `/proc`, read, and its existing files written: the NVIDIA driver's user-space library
///   (550+) names the threads it starts through `/proc/self/task/TID/comm`
///   (`pthread_setname_np` on another thread opens that file `O_RDWR`), and `cuInit` fails with
///   `CUDA_ERROR_OPERATING_SYSTEM` (304) when the open is refused. The thread's `/proc/PID`
///   directory is made afresh for every process (and child process: model servers start
///   runners), so no narrower Landlock rule can name it. Creating or removing files in procfs
///   is impossible anyway; what a write can reach is what the kernel's own checks let the
///   workload's uid write (its own processes' knobs), and the shim mounts `/proc/sys`,
///   `/proc/driver` and the other host-wide trees read-only ([`crate::compile::oci::READONLY_PATHS`]).
pub const GPU_PROC: &str = "/proc";
/// Rights under [`GPU_PROC`]: read (`/proc/self/maps`, `/proc/driver/nvidia/params`…), list,
/// and write existing files (`Truncate` so that `fopen(…, "w")` works like glibc's `O_RDWR`;
/// procfs files have no size to cut).
pub const GPU_PROC_ACCESS: &[FsAccess] =
    &[FsAccess::ReadFile, FsAccess::ReadDir, FsAccess::WriteFile, FsAccess::Truncate];

/// The rule for one per-GPU device node (`/dev/nvidiaN`) a container was given: the shim adds
/// one for each node of the request it judged by number, as a policy cannot know how many GPUs
/// a container gets.
pub fn gpu_node_rule(path: &str) -> PathRule {
    PathRule { path: path.to_string(), access: DEVICE.to_vec(), reason: "devices.gpu".into() }
}

/// The rules `devices.gpu` adds to every ruleset (the per-GPU nodes come from [`gpu_node_rule`]).
pub fn gpu_rules() -> Vec<PathRule> {
    let mut out: Vec<PathRule> = GPU_NODES.iter().map(|d| gpu_node_rule(d)).collect();
    out.push(PathRule { path: GPU_CAPS_DIR.into(), access: GPU_CAPS.to_vec(), reason: "devices.gpu".into() });
    out.push(PathRule {
        path: GPU_PROC.into(),
        access: GPU_PROC_ACCESS.to_vec(),
        reason: "devices.gpu (CUDA names its threads)".into(),
    });
    out
}

/// One path rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRule {
    /// Absolute path inside the container.
    pub path: String,
    /// Rights granted beneath it.
    pub access: Vec<FsAccess>,
    /// Why the rule exists (the policy field).
    pub reason: String,
}

/// A Landlock scope (ABI 6): IPC the workload may not reach outside its own domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Connecting to abstract Unix sockets created outside the sandbox.
    AbstractUnixSocket,
    /// Sending signals to processes outside the sandbox.
    Signal,
}

/// TCP port rules (Landlock ABI 4): which ports the workload may bind and connect to.
///
/// Used when the workload keeps a network namespace with interfaces (a Kubernetes pod, or a
/// container whose policy accepts ingress) while its policy says `none` or `proxy`: outbound TCP
/// is then cut here, and other IP sockets by seccomp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetRules {
    /// Ports the workload may listen on (its ingress ports).
    pub bind_tcp: Vec<u16>,
    /// Ports the workload may connect to (the proxy's, and its own ingress ports).
    pub connect_tcp: Vec<u16>,
}

/// The ruleset file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruleset {
    /// Format version ([`RULESET_VERSION`]).
    pub version: u32,
    /// The policy it comes from.
    pub policy: String,
    /// Required: refuse to run without Landlock; best-effort: run with what the kernel offers.
    pub enforcement: String,
    /// Path rules; paths missing in the container are skipped (nothing is granted there).
    pub rules: Vec<PathRule>,
    /// Scopes applied where the kernel supports them.
    pub scopes: Vec<Scope>,
    /// TCP port rules, when the workload's network must be cut by Landlock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NetRules>,
    /// Ask the kernel to log the domain's refusals, the workload's included (Linux 6.15,
    /// Landlock ABI 7: `LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON`, through audit), and tell the
    /// container's supervisor which domain is this container's, so that it explains them. The
    /// shim sets it when the container's denials are explained.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log: bool,
}

impl Ruleset {
    /// Whether the policy requires Landlock.
    pub fn required(&self) -> bool {
        self.enforcement == Enforcement::Required.as_str()
    }
}

/// The TCP port rules for a workload whose network namespace has interfaces but whose policy
/// mode is `none` or `proxy`; `None` for `open`.
pub fn net_rules(policy: &SandboxPolicy) -> Option<NetRules> {
    let mut bind: Vec<u16> = Vec::new();
    for r in &policy.network.ingress {
        for p in &r.ports {
            if p.protocol == Protocol::Tcp {
                let end = p.end_port.unwrap_or(p.port);
                bind.extend(p.port..=end);
            }
        }
    }
    bind.sort_unstable();
    bind.dedup();
    let mut connect = bind.clone();
    match policy.network.mode {
        NetworkMode::Open => return None,
        NetworkMode::Proxy => connect.push(policy.network.proxy.port),
        NetworkMode::None => {}
    }
    connect.sort_unstable();
    connect.dedup();
    Some(NetRules { bind_tcp: bind, connect_tcp: connect })
}

/// Build the ruleset, or `None` when the policy has no `filesystem` section.
pub fn ruleset(policy: &SandboxPolicy) -> Option<Ruleset> {
    let fs = policy.filesystem.as_ref()?;
    let mut rules = Vec::new();
    for p in &fs.read_only {
        rules.push(PathRule { path: p.clone(), access: READ.to_vec(), reason: "filesystem.readOnly".into() });
    }
    for p in &fs.read_write {
        rules.push(PathRule { path: p.clone(), access: READ_WRITE.to_vec(), reason: "filesystem.readWrite".into() });
    }
    for p in &fs.execute {
        rules.push(PathRule { path: p.clone(), access: EXECUTE.to_vec(), reason: "filesystem.execute".into() });
    }
    for d in IMPLICIT_DEVICES {
        rules.push(PathRule { path: (*d).to_string(), access: DEVICE.to_vec(), reason: "implicit device".into() });
    }
    for d in &policy.devices.allow {
        rules.push(PathRule { path: d.path.clone(), access: DEVICE.to_vec(), reason: "devices.allow".into() });
    }
    if policy.devices.gpu.is_some() {
        // Missing nodes are skipped by semble-init; the per-GPU nodes are added by the shim.
        rules.extend(gpu_rules());
    }
    Some(Ruleset {
        version: RULESET_VERSION,
        policy: policy.name.clone(),
        enforcement: fs.enforcement.as_str().to_string(),
        rules,
        scopes: vec![Scope::AbstractUnixSocket, Scope::Signal],
        net: None,
        log: false,
    })
}
