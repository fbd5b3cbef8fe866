//! The validated SandboxPolicy model.
//!
//! Values of these types exist only after [`crate::parse`] has checked them: paths are absolute
//! and normalised, names are known, contradictions are gone. Compile targets take a
//! `&SandboxPolicy` and never re-check.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::caps::Capability;
use crate::diag::Pos;

/// The `apiVersion` this crate reads.
pub const API_VERSION: &str = "semble.dev/v1alpha1";
/// The `kind` this crate reads.
pub const KIND: &str = "SandboxPolicy";

/// A validated sandbox policy.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxPolicy {
    /// `metadata.name`: a DNS label, used for artifact names and the shim's policy lookup.
    pub name: String,
    /// `metadata.description`.
    pub description: Option<String>,
    /// Which runtime runs the workload.
    pub runtime: Runtime,
    /// The workload's process settings.
    pub process: Process,
    /// Capabilities.
    pub capabilities: Capabilities,
    /// The seccomp filter.
    pub seccomp: Seccomp,
    /// Landlock filesystem rules; `None` when the policy has no `filesystem` section.
    pub filesystem: Option<Filesystem>,
    /// SELinux labels; `None` when the policy has no `selinux` section.
    pub selinux: Option<Selinux>,
    /// Network mode, egress and ingress.
    pub network: Network,
    /// Devices passed into the sandbox.
    pub devices: Devices,
    /// Where the workload lives on Kubernetes.
    pub kubernetes: Kubernetes,
    /// Which containers may get the policy.
    pub selection: Selection,
    /// cgroup limits.
    pub resources: Resources,
    /// Where each field was written, by path (`spec.process.user`), for tools that point at the
    /// source (lint, explain).
    pub positions: BTreeMap<String, Pos>,
}

impl SandboxPolicy {
    /// Where `path` was written in the source, if it was.
    pub fn pos(&self, path: &str) -> Option<Pos> {
        self.positions.get(path).copied()
    }
}

/// A container runtime that can run the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    /// gVisor's `runsc`: a user-space kernel between the workload and the host.
    Gvisor,
    /// `runc`, with seccomp, capabilities, Landlock and namespaces.
    Runc,
    /// The runtime embedded in `semble-shim` (youki's libcontainer): no external runtime needed.
    Embedded,
}

impl Backend {
    /// The name used in policies and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Gvisor => "gvisor",
            Backend::Runc => "runc",
            Backend::Embedded => "embedded",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `spec.runtime`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Runtime {
    /// The backend; `None` lets the shim choose (runc when installed, else embedded).
    pub backend: Option<Backend>,
    /// Tried in order only when `backend` is not installed; empty means refuse to start
    /// (fail closed).
    pub fallback: Vec<Backend>,
    /// gVisor platform (`ptrace`, `systrap`, `kvm`); `None` lets runsc choose.
    pub gvisor_platform: Option<String>,
}

/// A resource limit of the workload's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rlimit {
    /// RLIMIT_AS
    As,
    /// RLIMIT_CORE
    Core,
    /// RLIMIT_CPU
    Cpu,
    /// RLIMIT_DATA
    Data,
    /// RLIMIT_FSIZE
    Fsize,
    /// RLIMIT_LOCKS
    Locks,
    /// RLIMIT_MEMLOCK
    Memlock,
    /// RLIMIT_MSGQUEUE
    Msgqueue,
    /// RLIMIT_NICE
    Nice,
    /// RLIMIT_NOFILE
    Nofile,
    /// RLIMIT_NPROC
    Nproc,
    /// RLIMIT_RSS
    Rss,
    /// RLIMIT_RTPRIO
    Rtprio,
    /// RLIMIT_RTTIME
    Rttime,
    /// RLIMIT_SIGPENDING
    Sigpending,
    /// RLIMIT_STACK
    Stack,
}

impl Rlimit {
    /// Every limit with its policy name.
    pub const ALL: &'static [(&'static str, Rlimit)] = &[
        ("as", Rlimit::As),
        ("core", Rlimit::Core),
        ("cpu", Rlimit::Cpu),
        ("data", Rlimit::Data),
        ("fsize", Rlimit::Fsize),
        ("locks", Rlimit::Locks),
        ("memlock", Rlimit::Memlock),
        ("msgqueue", Rlimit::Msgqueue),
        ("nice", Rlimit::Nice),
        ("nofile", Rlimit::Nofile),
        ("nproc", Rlimit::Nproc),
        ("rss", Rlimit::Rss),
        ("rtprio", Rlimit::Rtprio),
        ("rttime", Rlimit::Rttime),
        ("sigpending", Rlimit::Sigpending),
        ("stack", Rlimit::Stack),
    ];

    /// The OCI name, e.g. `RLIMIT_NOFILE`.
    pub fn oci_name(self) -> String {
        let name = Rlimit::ALL.iter().find(|(_, r)| *r == self).map(|(n, _)| *n).unwrap_or("");
        format!("RLIMIT_{}", name.to_ascii_uppercase())
    }
}

/// Soft and hard values of a resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlimitValue {
    /// The soft limit.
    pub soft: u64,
    /// The hard limit (≥ soft).
    pub hard: u64,
}

/// `spec.process`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The uid the workload runs as; `None` keeps the image's.
    pub user: Option<u32>,
    /// The gid; `None` keeps the image's (or `user` when only it is set).
    pub group: Option<u32>,
    /// Supplementary groups; the image's are replaced when set.
    pub supplementary_groups: Vec<u32>,
    /// Refuse to start when the process would run as uid 0.
    pub run_as_non_root: bool,
    /// `no_new_privs`: setuid binaries and file capabilities grant nothing.
    pub no_new_privileges: bool,
    /// Mount the root filesystem read-only.
    pub read_only_root_filesystem: bool,
    /// Resource limits (ceilings: a lower limit in the container's config is kept).
    pub rlimits: BTreeMap<Rlimit, RlimitValue>,
}

impl Default for Process {
    fn default() -> Self {
        Process {
            user: None,
            group: None,
            supplementary_groups: Vec::new(),
            run_as_non_root: false,
            no_new_privileges: true,
            read_only_root_filesystem: true,
            rlimits: BTreeMap::new(),
        }
    }
}

/// `spec.capabilities`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Whether `drop` includes `ALL`.
    pub drop_all: bool,
    /// Capabilities named in `drop` (other than `ALL`).
    pub drop: BTreeSet<Capability>,
    /// Capabilities named in `add`.
    pub add: BTreeSet<Capability>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities { drop_all: true, drop: BTreeSet::new(), add: BTreeSet::new() }
    }
}

impl Capabilities {
    /// The capabilities the workload may hold: the runtime default set (or nothing with
    /// `drop: [ALL]`), minus `drop`, plus `add`.
    pub fn granted(&self) -> BTreeSet<Capability> {
        let mut set: BTreeSet<Capability> =
            if self.drop_all { BTreeSet::new() } else { crate::caps::RUNTIME_DEFAULT.iter().copied().collect() };
        for c in &self.drop {
            set.remove(c);
        }
        set.extend(self.add.iter().copied());
        set
    }
}

/// The starting set of allowed syscalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Baseline {
    /// At least as strict as Docker's default profile, and stricter where Docker is weak for
    /// untrusted code.
    Default,
    /// `default` minus syscalls rarely needed by application code (legacy, fileless exec,
    /// namespace and mount introspection, …).
    Strict,
    /// Nothing: only what `allow` lists (recorded policies use this).
    None,
}

impl Baseline {
    /// The policy name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Baseline::Default => "default",
            Baseline::Strict => "strict",
            Baseline::None => "none",
        }
    }
}

/// What happens to a syscall the filter does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DefaultAction {
    /// Fail with the policy's errno.
    Errno,
    /// Kill the whole process.
    KillProcess,
    /// Kill the calling thread.
    KillThread,
    /// Send SIGSYS.
    Trap,
    /// Allow and log (audit only: this enforces nothing).
    Log,
}

impl DefaultAction {
    /// The policy name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DefaultAction::Errno => "errno",
            DefaultAction::KillProcess => "kill-process",
            DefaultAction::KillThread => "kill-thread",
            DefaultAction::Trap => "trap",
            DefaultAction::Log => "log",
        }
    }

    /// The OCI action name.
    pub const fn oci_name(self) -> &'static str {
        match self {
            DefaultAction::Errno => "SCMP_ACT_ERRNO",
            DefaultAction::KillProcess => "SCMP_ACT_KILL_PROCESS",
            DefaultAction::KillThread => "SCMP_ACT_KILL_THREAD",
            DefaultAction::Trap => "SCMP_ACT_TRAP",
            DefaultAction::Log => "SCMP_ACT_LOG",
        }
    }
}

/// `spec.seccomp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seccomp {
    /// The starting set.
    pub baseline: Baseline,
    /// Syscalls added to the baseline (unconditionally allowed).
    pub allow: Vec<String>,
    /// Syscalls removed from the baseline (denied with `errno`, each with its own rule).
    pub deny: Vec<String>,
    /// What happens to everything else.
    pub default_action: DefaultAction,
    /// The errno returned for denied syscalls (default `EPERM`).
    pub errno: u32,
    /// Whether the shim explains denials as they happen (seccomp user notification).
    pub explain_denials: bool,
    /// `dangerouslyAllowNotifyListener`: let the workload create seccomp user-notification
    /// listeners (`SECCOMP_FILTER_FLAG_NEW_LISTENER`). Off, every filter semble loads refuses
    /// the flag: a workload that answers its own notifications can let through what an earlier
    /// filter meant to refuse once that filter's listener is gone.
    pub dangerously_allow_notify_listener: bool,
}

impl Default for Seccomp {
    fn default() -> Self {
        Seccomp {
            baseline: Baseline::Default,
            allow: Vec::new(),
            deny: Vec::new(),
            default_action: DefaultAction::Errno,
            errno: 1,
            explain_denials: true,
            dangerously_allow_notify_listener: false,
        }
    }
}

/// Whether a control must be in force for the workload to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Enforcement {
    /// Refuse to start where the control is unavailable (fail closed).
    #[default]
    Required,
    /// Apply what the host supports and log what it does not.
    BestEffort,
}

impl Enforcement {
    /// The policy name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Enforcement::Required => "required",
            Enforcement::BestEffort => "best-effort",
        }
    }
}

/// `spec.filesystem`: Landlock rules over paths as the workload sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
    /// Readable (files and directories), not writable.
    pub read_only: Vec<String>,
    /// Readable and writable (create, remove, truncate…), not executable.
    pub read_write: Vec<String>,
    /// Readable and executable.
    pub execute: Vec<String>,
    /// Required or best-effort.
    pub enforcement: Enforcement,
}

/// SELinux MCS level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelinuxLevel {
    /// A fixed level such as `s0:c100,c200`.
    Fixed(String),
    /// A unique category pair per container, chosen by the shim.
    Auto,
}

/// `spec.selinux`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selinux {
    /// The process type, e.g. `semble_workspace_t`.
    pub type_: String,
    /// The MCS level.
    pub level: Option<SelinuxLevel>,
    /// Required (refuse where SELinux is disabled) or best-effort.
    pub enforcement: Enforcement,
}

/// `spec.network.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetworkMode {
    /// No network interface but loopback.
    None,
    /// No way out but semble-proxy (egress allow-list with credentials).
    Proxy,
    /// The runtime's network, unrestricted by semble (NetworkPolicies still apply on Kubernetes).
    Open,
}

impl NetworkMode {
    /// The policy name.
    pub const fn as_str(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Proxy => "proxy",
            NetworkMode::Open => "open",
        }
    }
}

/// The host part of an egress rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostPattern {
    /// Exactly this name (lower case, no trailing dot).
    Exact(String),
    /// `*.suffix`: any name *below* `suffix`; the apex `suffix` itself does not match.
    Suffix(String),
    /// `*`: any name (only meaningful for auditing; lint flags it).
    Any,
}

impl HostPattern {
    /// Whether `host` (already lower-cased, without trailing dot) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(s) => {
                host.len() > s.len() + 1
                    && host.ends_with(s.as_str())
                    && host.as_bytes().get(host.len() - s.len() - 1) == Some(&b'.')
            }
            HostPattern::Any => true,
        }
    }

    /// How specific the pattern is: where several rules match a host, the most specific
    /// pattern decides (an exact name over any `*.suffix`, a longer suffix over a shorter one,
    /// any suffix over `*`).
    pub fn specificity(&self) -> (u8, usize) {
        match self {
            HostPattern::Exact(h) => (2, h.len()),
            HostPattern::Suffix(s) => (1, s.len()),
            HostPattern::Any => (0, 0),
        }
    }

    /// Whether some name matches both `self` and `other`.
    pub fn overlaps(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Any, _) | (_, HostPattern::Any) => true,
            (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
            (HostPattern::Exact(h), p @ HostPattern::Suffix(_))
            | (p @ HostPattern::Suffix(_), HostPattern::Exact(h)) => p.matches(h),
            (HostPattern::Suffix(a), HostPattern::Suffix(b)) => {
                a == b || HostPattern::Suffix(a.clone()).matches(b) || HostPattern::Suffix(b.clone()).matches(a)
            }
        }
    }
}

/// Ports whose upstream speaks TLS from the first byte, when a rule does not say: HTTPS (443,
/// 8443, 4443, 9443), the Kubernetes API (6443), DNS over TLS (853), IMAPS (993), POP3S (995),
/// SMTPS (465), LDAPS (636), AMQPS (5671), MQTT over TLS (8883).
pub const DEFAULT_TLS_PORTS: &[u16] = &[443, 465, 636, 853, 993, 995, 4443, 5671, 6443, 8443, 8883, 9443];

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Suffix(s) => write!(f, "*.{s}"),
            HostPattern::Any => f.write_str("*"),
        }
    }
}

/// One allowed destination of `network.egress`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRule {
    /// The host name or pattern.
    pub host: HostPattern,
    /// Allowed destination ports (default `[443]`).
    pub ports: Vec<u16>,
    /// Whether the upstream speaks TLS on *every* port (see [`EgressRule::tls_on`]).
    pub tls: bool,
    /// The ports on which the upstream speaks TLS: `tls: true` all, `tls: false` none,
    /// `tls: [PORT…]` those, and without `tls` the rule's ports in [`DEFAULT_TLS_PORTS`].
    pub tls_ports: Vec<u16>,
    /// The name of a credential the proxy injects (defined in the proxy's own configuration).
    pub credential: Option<String>,
    /// Allowed HTTP methods (empty = any); enforced where the proxy sees HTTP.
    pub methods: Vec<String>,
    /// Allowed path prefixes (empty = any); enforced where the proxy sees HTTP.
    pub paths: Vec<String>,
    /// Reserved address ranges this rule may resolve to (e.g. a private upstream).
    pub allow_addresses: Vec<IpNet>,
}

impl EgressRule {
    /// Whether the upstream speaks TLS on `port`.
    pub fn tls_on(&self, port: u16) -> bool {
        self.tls_ports.contains(&port)
    }
}

/// A peer allowed in `network.ingress`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngressPeer {
    /// A namespace name (`kubernetes.io/metadata.name`).
    pub namespace: Option<String>,
    /// A pod label selector (within `namespace`, or the policy's own namespace).
    pub pods: Option<BTreeMap<String, String>>,
    /// An address range.
    pub cidr: Option<IpNet>,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// SCTP
    Sctp,
}

impl Protocol {
    /// The Kubernetes spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// A port or a range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    /// First port.
    pub port: u16,
    /// Last port (inclusive) when a range.
    pub end_port: Option<u16>,
    /// Protocol (default TCP).
    pub protocol: Protocol,
}

/// One rule of `network.ingress`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRule {
    /// Who may connect.
    pub from: IngressPeer,
    /// On which ports.
    pub ports: Vec<PortRange>,
}

/// Where the egress proxy runs on Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProxyPlacement {
    /// Its own Deployment and Service: only the proxy pods may leave the cluster.
    Gateway,
    /// A native sidecar in the workload pod (its egress allowance is the workload's too).
    Sidecar,
}

impl ProxyPlacement {
    /// The policy name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProxyPlacement::Gateway => "gateway",
            ProxyPlacement::Sidecar => "sidecar",
        }
    }
}

/// `spec.network.proxy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// Gateway or sidecar (Kubernetes).
    pub placement: ProxyPlacement,
    /// The port the workload reaches the proxy on (`127.0.0.1:<port>` inside the sandbox).
    pub port: u16,
    /// The gateway proxy's address, where the workload reaches it by address rather than on
    /// loopback (the gateway Service's ClusterIP in a pod): the node's egress guard lets the
    /// workload reach this address on `port`, and the Kubernetes target gives the Service this
    /// ClusterIP.
    pub address: Option<std::net::IpAddr>,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings { placement: ProxyPlacement::Gateway, port: 8080, address: None }
    }
}

/// `spec.network`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// none, proxy or open.
    pub mode: NetworkMode,
    /// Allowed destinations (through the proxy).
    pub egress: Vec<EgressRule>,
    /// Whether the workload may resolve names itself (DNS to the cluster resolver).
    pub dns: bool,
    /// The resolvers a `dns: true` workload may reach on port 53 where the node guards its
    /// egress (empty: the node's configured resolvers).
    pub resolvers: Vec<std::net::IpAddr>,
    /// Who may connect to the workload.
    pub ingress: Vec<IngressRule>,
    /// Proxy placement and port.
    pub proxy: ProxySettings,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            mode: NetworkMode::None,
            egress: Vec::new(),
            dns: false,
            resolvers: Vec::new(),
            ingress: Vec::new(),
            proxy: ProxySettings::default(),
        }
    }
}

/// A GPU vendor whose devices a policy may pass through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gpu {
    /// NVIDIA: `/dev/nvidia*`, character major 195 plus the dynamic `nvidia-uvm` major.
    Nvidia,
}

/// A device the workload may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// Its path inside the container (the host path is the same).
    pub path: String,
    /// cgroup access: a combination of `r`, `w`, `m`.
    pub access: String,
}

/// `spec.devices`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Devices {
    /// GPUs passed through.
    pub gpu: Option<Gpu>,
    /// Other devices.
    pub allow: Vec<DeviceRule>,
}

/// A Kubernetes toleration for the RuntimeClass scheduling section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toleration {
    /// Taint key.
    pub key: String,
    /// `Equal` or `Exists`.
    pub operator: String,
    /// Taint value (with `Equal`).
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute` (empty = all).
    pub effect: Option<String>,
}

/// `spec.kubernetes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Kubernetes {
    /// The namespace of the sandbox pods.
    pub namespace: Option<String>,
    /// Labels selecting the sandbox pods.
    pub pod_selector: BTreeMap<String, String>,
    /// Node labels for the RuntimeClass's `scheduling.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations for the RuntimeClass's `scheduling.tolerations`.
    pub tolerations: Vec<Toleration>,
    /// The sandbox's fixed overhead (`overhead.podFixed`): memory bytes.
    pub overhead_memory: Option<u64>,
    /// The sandbox's fixed overhead: CPU millicores.
    pub overhead_cpu: Option<u64>,
    /// Run the pods in their own user namespace (`hostUsers: false`), where the cluster
    /// supports it (Kubernetes 1.33+ with a runtime and kernel that do).
    pub user_namespaces: bool,
    /// The AppArmor profile of the workload, where the nodes run AppArmor.
    pub app_armor: Option<AppArmor>,
}

/// `spec.kubernetes.appArmor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppArmor {
    /// The container runtime's default profile.
    RuntimeDefault,
    /// A profile loaded on the nodes (`localhost/NAME`).
    Localhost(String),
}

/// `spec.selection`: which containers may get this policy (the operator's binding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Whether a container may choose it with the `semble.dev/policy` annotation. `false`: only a
    /// runtime handler that pins it (`semble-shim --pin-policy`) or makes it its default gets it.
    pub by_annotation: bool,
    /// The Kubernetes namespaces whose pods may have it. Empty: `kubernetes.namespace` when the
    /// policy names one, else any namespace.
    pub namespaces: Vec<String>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection { by_annotation: true, namespaces: Vec::new() }
    }
}

impl Selection {
    /// Whether pods of namespace `ns` may have a policy with this selection (and `kubernetes`).
    pub fn admits_namespace(&self, ns: &str, kubernetes: &Kubernetes) -> bool {
        if !self.namespaces.is_empty() {
            return self.namespaces.iter().any(|n| n == ns);
        }
        kubernetes.namespace.as_deref().is_none_or(|n| n == ns)
    }
}

/// `spec.resources`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// CPU limit in millicores.
    pub cpu: Option<u64>,
    /// Maximum number of tasks.
    pub pids: Option<u32>,
    /// Local disk the pod may fill: its writable layer, logs and scratch volumes (bytes).
    pub ephemeral_storage: Option<u64>,
    /// Where the host cannot apply the cgroup limits (a rootless container on a host that
    /// delegates no controllers to users): `required` refuses the container, `best-effort` runs
    /// it without them, said in the log.
    pub enforcement: Enforcement,
}

/// Whether `ip` is in any of `nets`.
pub fn in_any(nets: &[IpNet], ip: &IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_patterns_do_not_match_the_apex_or_lookalikes() {
        let p = HostPattern::Suffix("amazonaws.com".into());
        assert!(p.matches("bedrock.amazonaws.com"));
        assert!(p.matches("a.b.amazonaws.com"));
        assert!(!p.matches("amazonaws.com"));
        assert!(!p.matches("evil-amazonaws.com"));
        assert!(!p.matches("amazonaws.com.evil.net"));
    }

    #[test]
    fn granted_capabilities() {
        let c = Capabilities { drop_all: true, drop: BTreeSet::new(), add: [Capability::Chown].into_iter().collect() };
        assert_eq!(c.granted().into_iter().collect::<Vec<_>>(), vec![Capability::Chown]);
        let c =
            Capabilities { drop_all: false, drop: [Capability::NetRaw].into_iter().collect(), add: BTreeSet::new() };
        assert!(!c.granted().contains(&Capability::NetRaw));
        assert!(c.granted().contains(&Capability::Chown));
    }
}
