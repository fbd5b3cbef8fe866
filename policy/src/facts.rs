//! Facts about the world outside semble that more than one crate must agree on.
//!
//! Two copies of a list drift: lint once called `net.ipv4.tcp_rmem` unsafe while the shim
//! admitted it. Every such fact lives here, once, with where it comes from, and the crates that
//! need it (`semble-lint`, `semble-shim`, `semble-k8s`) read it from here.
//!
//! * [`SAFE_SYSCTLS`] — the sysctls Kubernetes calls safe, each with the first Kubernetes minor
//!   version whose Pod Security policy (and kubelet) accepts it;
//! * [`DEFAULT_CAPABILITIES`] — the capability set Docker, containerd and Podman give a container
//!   by default, and [`KUBERNETES_BASELINE_CAPABILITIES`], the part of it Pod Security `baseline`
//!   lets a container add;
//! * the annotation keys semble and the container runtimes use to name a policy, a container's
//!   type and its pod sandbox;
//! * the NVIDIA device numbers a GPU policy opens.

/// A sysctl Kubernetes considers safe: namespaced, and isolated from other pods on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafeSysctl {
    /// The sysctl's name, as written in `securityContext.sysctls[].name`.
    pub name: &'static str,
    /// The first Kubernetes minor version (`1.MINOR`) in which it is safe.
    pub since_minor: u32,
}

/// Kubernetes' safe sysctl set, as upstream pod-security-admission's `sysctls` check decides it
/// (`staging/src/k8s.io/pod-security-admission/policy/check_sysctls.go`), each entry with the
/// policy version that first allows it. The kubelet's own default allow-list
/// (`pkg/kubelet/sysctl/safe_sysctls.go`) grew in the same releases.
pub const SAFE_SYSCTLS: &[SafeSysctl] = &[
    SafeSysctl { name: "kernel.shm_rmid_forced", since_minor: 0 },
    SafeSysctl { name: "net.ipv4.ip_local_port_range", since_minor: 0 },
    SafeSysctl { name: "net.ipv4.tcp_syncookies", since_minor: 0 },
    SafeSysctl { name: "net.ipv4.ping_group_range", since_minor: 0 },
    SafeSysctl { name: "net.ipv4.ip_unprivileged_port_start", since_minor: 0 },
    SafeSysctl { name: "net.ipv4.ip_local_reserved_ports", since_minor: 27 },
    SafeSysctl { name: "net.ipv4.tcp_keepalive_time", since_minor: 29 },
    SafeSysctl { name: "net.ipv4.tcp_fin_timeout", since_minor: 29 },
    SafeSysctl { name: "net.ipv4.tcp_keepalive_intvl", since_minor: 29 },
    SafeSysctl { name: "net.ipv4.tcp_keepalive_probes", since_minor: 29 },
    SafeSysctl { name: "net.ipv4.tcp_rmem", since_minor: 32 },
    SafeSysctl { name: "net.ipv4.tcp_wmem", since_minor: 32 },
    SafeSysctl { name: "net.ipv4.tcp_slow_start_after_idle", since_minor: 37 },
    SafeSysctl { name: "net.ipv4.tcp_notsent_lowat", since_minor: 37 },
];

/// Whether `name` is a safe sysctl in Kubernetes `1.minor` (exact names: Kubernetes compares the
/// name as written, with no prefix matching).
pub fn is_safe_sysctl(name: &str, minor: u32) -> bool {
    SAFE_SYSCTLS.iter().any(|s| s.name == name && s.since_minor <= minor)
}

/// Whether `name` is safe in the newest Kubernetes this table knows (what a runtime that does not
/// know the cluster's version should assume).
pub fn is_safe_sysctl_newest(name: &str) -> bool {
    SAFE_SYSCTLS.iter().any(|s| s.name == name)
}

/// The capabilities Docker (`oci.DefaultCapabilities`), containerd (`oci.defaultUnixCaps`) and
/// Podman (`containers.conf` `default_capabilities`, minus the ones Podman removed over the years)
/// grant a container that asks for nothing: the set `config.json` carries unless told otherwise.
/// Names without the `CAP_` prefix, in the order Docker lists them.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// The capabilities Pod Security `baseline` lets a container add
/// (`check_capabilities_baseline.go`, unchanged since its first version): the runtime default set
/// without `NET_RAW`. Compared exactly as written: `CAP_CHOWN` or `chown` is not in it.
pub const KUBERNETES_BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The annotation naming the policy a container or pod runs under (`semble.dev/policy: NAME`).
pub const POLICY_ANNOTATION: &str = "semble.dev/policy";
/// containerd's CRI plugin: the container's type, `sandbox` or `container`.
pub const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// containerd's CRI plugin: the ID of the pod sandbox a container belongs to.
pub const CRI_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// CRI-O: the container's type, `sandbox` or `container`.
pub const CRIO_CONTAINER_TYPE: &str = "io.kubernetes.cri-o.ContainerType";
/// CRI-O: the ID of the pod sandbox a container belongs to.
pub const CRIO_SANDBOX_ID: &str = "io.kubernetes.cri-o.SandboxID";
/// containerd's CRI annotation naming the container within its pod.
pub const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
/// CRI-O's annotation naming the container within its pod.
pub const CRIO_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// containerd's CRI annotation holding the pod's UID.
pub const CRI_SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
/// CRI-O's annotation holding the pod's UID.
pub const CRIO_POD_UID: &str = "io.kubernetes.pod.uid";
/// containerd's CRI annotation holding the pod's namespace.
pub const CRI_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
/// CRI-O's annotation holding the pod's namespace.
pub const CRIO_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";

/// The character-device major of the NVIDIA driver's fixed nodes (`/dev/nvidia0`…,
/// `/dev/nvidiactl`, `/dev/nvidia-modeset`), registered statically by the driver.
pub const NVIDIA_MAJOR: i64 = 195;
/// NVIDIA devices whose major the kernel assigns at load time: found by name in
/// `/proc/devices`, never by a fixed number.
pub const NVIDIA_DYNAMIC_MAJORS: &[&str] = &["nvidia-uvm", "nvidia-caps"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_add_list_is_the_default_set_without_net_raw() {
        let mut default: Vec<&str> = DEFAULT_CAPABILITIES.iter().copied().filter(|c| *c != "NET_RAW").collect();
        default.sort_unstable();
        assert_eq!(default, KUBERNETES_BASELINE_CAPABILITIES);
        for c in DEFAULT_CAPABILITIES {
            assert!(crate::Capability::parse(c).is_some(), "{c} is a capability");
        }
    }

    #[test]
    fn sysctls_become_safe_in_their_release_and_stay_safe() {
        assert!(!is_safe_sysctl("net.ipv4.tcp_rmem", 31));
        assert!(is_safe_sysctl("net.ipv4.tcp_rmem", 32));
        assert!(is_safe_sysctl("net.ipv4.tcp_rmem", 40));
        assert!(is_safe_sysctl("kernel.shm_rmid_forced", 0));
        assert!(!is_safe_sysctl("net.ipv4.ip_local_reserved_ports", 26));
        assert!(is_safe_sysctl("net.ipv4.ip_local_reserved_ports", 27));
        assert!(!is_safe_sysctl("kernel.msgmax", 40));
        // Exact names only.
        assert!(!is_safe_sysctl("net.ipv4.tcp_rmem ", 40));
        assert!(!is_safe_sysctl("kernel.shm_rmid_forced/x", 40));
        let mut names: Vec<&str> = SAFE_SYSCTLS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SAFE_SYSCTLS.len(), "no duplicates");
    }
}
