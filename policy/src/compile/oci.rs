//! `--target oci`: the fragment of an OCI `config.json` that a policy decides.
//!
//! The fragment uses the field names of the OCI runtime spec, so it can be read next to a
//! `config.json`. `semble-shim` merges it as a ceiling (see `shim/src/bundle.rs`): values here
//! are the most a container may have, never a floor.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::model::{NetworkMode, SandboxPolicy};
use crate::seccomp_profile::SeccompProfile;

/// The annotation that names the policy a container runs under, and the NVIDIA character device
/// major (`/dev/nvidia0…`, `/dev/nvidiactl`): see [`crate::facts`].
pub use crate::facts::{NVIDIA_MAJOR, POLICY_ANNOTATION};

/// Paths hidden from the workload (bind-mounted over with an empty file or tmpfs).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Paths the workload may read but never write: host-wide knobs, whoever owns them. Beside
/// Docker's list, `/proc/driver` (drivers' knobs: the NVIDIA driver's `suspend` is writable by
/// uid 0) and `/proc/dynamic_debug` (the kernel's debug prints) — a GPU policy lets the workload
/// write existing `/proc` files ([`crate::compile::landlock::GPU_PROC`]), and a container's
/// uid 0 is the host's unless it has a user namespace.
pub const READONLY_PATHS: &[&str] =
    &["/proc/bus", "/proc/driver", "/proc/dynamic_debug", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The byte semble's seccomp supervisor sends back once it holds the notify listener that
/// `semble-init` handed it: the sender then knows refusals will be explained (and, without it,
/// warns that they will fail with `ENOSYS`).
pub const NOTIFY_ACK: &[u8] = b"k";

/// What the process that created a Landlock domain sends its container's supervisor, on the
/// connection that handed over the notify listener, with its credentials (`SCM_CREDENTIALS`):
/// the kernel attests the pid, and the supervisor then knows which domain in the audit records
/// is its container's.
pub const DOMAIN_MESSAGE: &[u8] = b"l";

/// The OCI fragment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciFragment {
    /// `process`.
    pub process: ProcessFragment,
    /// `root`.
    pub root: RootFragment,
    /// `linux`.
    pub linux: LinuxFragment,
    /// `annotations`.
    pub annotations: BTreeMap<String, String>,
}

/// `process` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessFragment {
    /// `process.user`, when the policy sets a user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserFragment>,
    /// `process.noNewPrivileges`.
    pub no_new_privileges: bool,
    /// `process.capabilities`.
    pub capabilities: CapabilitiesFragment,
    /// `process.rlimits`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<RlimitFragment>,
}

/// `process.user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserFragment {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary gids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

/// `process.capabilities`: every set holds the granted capabilities, so that a non-root
/// workload keeps them across `execve` (through the ambient set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilitiesFragment {
    /// Bounding set.
    pub bounding: Vec<String>,
    /// Effective set.
    pub effective: Vec<String>,
    /// Permitted set.
    pub permitted: Vec<String>,
    /// Inheritable set.
    pub inheritable: Vec<String>,
    /// Ambient set.
    pub ambient: Vec<String>,
}

/// One `process.rlimits` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RlimitFragment {
    /// e.g. `RLIMIT_NOFILE`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// `root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootFragment {
    /// `root.readonly`.
    pub readonly: bool,
}

/// `linux` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxFragment {
    /// `linux.seccomp`, when a profile was compiled in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<SeccompProfile>,
    /// Namespaces the container must get (a fresh network namespace for `none`/`proxy`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<NamespaceFragment>,
    /// `linux.maskedPaths`.
    pub masked_paths: Vec<String>,
    /// `linux.readonlyPaths`.
    pub readonly_paths: Vec<String>,
    /// `linux.resources`.
    pub resources: ResourcesFragment,
}

/// A namespace entry (no `path`: a new namespace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceFragment {
    /// `network`, `pid`, …
    #[serde(rename = "type")]
    pub kind: String,
}

/// `linux.resources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ResourcesFragment {
    /// Memory limit (and swap = limit: no swap beyond it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryFragment>,
    /// CPU quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuFragment>,
    /// Task limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<PidsFragment>,
    /// Device cgroup rules: deny all, then the policy's devices.
    pub devices: Vec<DeviceCgroupFragment>,
}

/// `linux.resources.memory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryFragment {
    /// Bytes.
    pub limit: i64,
    /// Memory + swap bytes (equal to `limit`: no swap).
    pub swap: i64,
}

/// `linux.resources.cpu`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuFragment {
    /// Microseconds per period.
    pub quota: i64,
    /// Period in microseconds.
    pub period: u64,
}

/// `linux.resources.pids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PidsFragment {
    /// Maximum tasks.
    pub limit: i64,
}

/// One device cgroup rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceCgroupFragment {
    /// Allow or deny.
    pub allow: bool,
    /// `c`, `b` or `a` (absent = all).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Major number (absent = any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    /// `r`, `w`, `m` combination.
    pub access: String,
}

/// CFS period used for CPU limits.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Build the fragment; `seccomp` is the profile compiled by `semble-seccomp`, when available.
pub fn fragment(policy: &SandboxPolicy, seccomp: Option<SeccompProfile>) -> OciFragment {
    let p = &policy.process;
    let user = p.user.map(|uid| UserFragment {
        uid,
        gid: p.group.unwrap_or(uid),
        additional_gids: p.supplementary_groups.clone(),
    });
    let caps: Vec<String> = policy.capabilities.granted().iter().map(|c| c.oci_name()).collect();
    let capabilities = CapabilitiesFragment {
        bounding: caps.clone(),
        effective: caps.clone(),
        permitted: caps.clone(),
        inheritable: caps.clone(),
        ambient: caps,
    };
    let rlimits =
        p.rlimits.iter().map(|(k, v)| RlimitFragment { kind: k.oci_name(), soft: v.soft, hard: v.hard }).collect();
    let mut namespaces = Vec::new();
    if matches!(policy.network.mode, NetworkMode::None | NetworkMode::Proxy) {
        namespaces.push(NamespaceFragment { kind: "network".into() });
    }
    let r = &policy.resources;
    let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut devices = vec![DeviceCgroupFragment { allow: false, kind: None, major: None, access: "rwm".into() }];
    if policy.devices.gpu.is_some() {
        devices.push(DeviceCgroupFragment {
            allow: true,
            kind: Some("c".into()),
            major: Some(NVIDIA_MAJOR),
            access: "rwm".into(),
        });
    }
    let resources = ResourcesFragment {
        memory: r.memory.map(|m| MemoryFragment { limit: to_i64(m), swap: to_i64(m) }),
        cpu: r
            .cpu
            .map(|m| CpuFragment { quota: to_i64(m.saturating_mul(CPU_PERIOD_US) / 1000), period: CPU_PERIOD_US }),
        pids: r.pids.map(|n| PidsFragment { limit: i64::from(n) }),
        devices,
    };
    let mut annotations = BTreeMap::new();
    annotations.insert(POLICY_ANNOTATION.to_string(), policy.name.clone());
    OciFragment {
        process: ProcessFragment { user, no_new_privileges: p.no_new_privileges, capabilities, rlimits },
        root: RootFragment { readonly: p.read_only_root_filesystem },
        linux: LinuxFragment {
            seccomp,
            namespaces,
            masked_paths: MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            readonly_paths: READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
            resources,
        },
        annotations,
    }
}
