//! # semble-gvisor: running a policy under gVisor
//!
//! gVisor's `runsc` puts a user-space kernel (the Sentry) between the workload and the host, so
//! the workload's syscalls never reach the host kernel directly. That changes how each control of
//! a policy is enforced, and this crate decides it, as pure functions of the policy and of what
//! the host's runsc supports:
//!
//! * [`plan`] — runsc's global flags: `--platform`, `--network` (`none` for `none`/`proxy`,
//!   `sandbox` otherwise), `--oci-seccomp` (runsc ignores `linux.seccomp` without it),
//!   `--host-uds=open` for the proxy bridge's host socket, `--overlay2=root:memory` so writes to
//!   the root never reach the host, `--nvproxy` for GPUs;
//! * [`filesystem_mounts`] — gVisor does not implement Landlock, so the policy's `filesystem`
//!   section is enforced with mounts instead: top-level directories the policy does not list are
//!   hidden behind empty read-only tmpfs, `readOnly` paths are bound read-only and `noexec`,
//!   `execute` paths read-only with exec, `readWrite` paths get their tmpfs;
//! * [`enforcement`] — which mechanism enforces each control, for `features` and
//!   `explain-bundle`.
//!
//! What gVisor cannot do is refused (fail closed) unless the policy allows otherwise: a network
//! namespace kept for ingress outside a Kubernetes pod (Landlock would cut it under runc; gVisor
//! has no equivalent), GPUs without a runsc that has `--nvproxy`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeSet;

use semble_policy::model::{NetworkMode, SandboxPolicy};

/// What the host's runsc offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runsc {
    /// Global flags its `runsc flags` lists (without dashes).
    pub flags: BTreeSet<String>,
    /// Platforms it names in its `--platform` help (`ptrace`, `kvm`, `systrap`).
    pub platforms: BTreeSet<String>,
    /// Whether `/dev/kvm` is usable.
    pub kvm_usable: bool,
}

/// How the container's network was decided by the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkFacts {
    /// A network namespace with interfaces was kept (ingress, or a Kubernetes pod).
    pub kept: bool,
    /// The container belongs to a Kubernetes pod (NetworkPolicies govern its traffic).
    pub pod: bool,
    /// semble-init bridges the proxy's host Unix socket.
    pub bridge: bool,
}

/// Why a policy cannot run under this runsc.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unenforceable {
    /// Outside a pod, a kept network can only be cut with Landlock, which gVisor lacks.
    #[error("policy `{0}` (network mode `{1}`) keeps the container's network for ingress, and gVisor cannot cut its egress on this node (no Landlock); run it in a Kubernetes pod (NetworkPolicies), or under runc")]
    KeptNetwork(String, String),
    /// GPUs need nvproxy.
    #[error(
        "policy `{0}` passes GPUs through, and this runsc has no `--nvproxy`; install a newer gVisor, or use runc"
    )]
    NoNvproxy(String),
    /// A platform the policy names is not offered.
    #[error("policy `{0}` asks for gVisor platform `{1}`, which this runsc does not offer (it has: {2})")]
    Platform(String, String, String),
}

/// runsc's global flags for a container under `policy`, and notes for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Global flags, placed before runsc's command.
    pub flags: Vec<String>,
    /// Things the operator should know.
    pub notes: Vec<String>,
}

/// Decide runsc's flags.
pub fn plan(
    policy: &SandboxPolicy,
    host: &Runsc,
    net: NetworkFacts,
    platform_override: Option<&str>,
) -> Result<Plan, Unenforceable> {
    let name = policy.name.clone();
    let mut flags = Vec::new();
    let mut notes = Vec::new();
    let has = |f: &str| host.flags.contains(f);

    // Platform: the policy's, else the operator's, else kvm when usable and offered, else runsc's
    // default.
    let platform = policy.runtime.gvisor_platform.as_deref().or(platform_override);
    match platform {
        Some(p) => {
            if !host.platforms.is_empty() && !host.platforms.contains(p) {
                let offered = host.platforms.iter().cloned().collect::<Vec<_>>().join(", ");
                return Err(Unenforceable::Platform(name, p.to_string(), offered));
            }
            flags.push(format!("--platform={p}"));
        }
        None => {
            if host.platforms.contains("systrap") {
                flags.push("--platform=systrap".into());
            }
        }
    }

    // Network.
    match policy.network.mode {
        NetworkMode::None | NetworkMode::Proxy => {
            if net.kept {
                if !net.pod {
                    return Err(Unenforceable::KeptNetwork(name, policy.network.mode.as_str().into()));
                }
                flags.push("--network=sandbox".into());
                notes.push(format!("gVisor: pod network kept for policy `{name}`; its egress is governed by the pod's NetworkPolicies, not on this node"));
            } else {
                flags.push("--network=none".into());
            }
        }
        NetworkMode::Open => flags.push("--network=sandbox".into()),
    }
    if net.bridge {
        flags.push("--host-uds=open".into());
    }
    if has("oci-seccomp") {
        flags.push("--oci-seccomp".into());
    }
    if has("overlay2") {
        flags.push("--overlay2=root:memory".into());
    }
    if policy.devices.gpu.is_some() {
        if !has("nvproxy") {
            return Err(Unenforceable::NoNvproxy(name));
        }
        flags.push("--nvproxy".into());
    }
    Ok(Plan { flags, notes })
}

/// An entry at the top of the container's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootEntry {
    /// Its name (`usr`, `etc`…).
    pub name: String,
    /// Whether it is a directory.
    pub dir: bool,
}

/// A mount that enforces part of the `filesystem` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsMount {
    /// Bind the path onto itself read-only, with or without exec.
    ReadOnly {
        /// Path inside the container.
        path: String,
        /// Whether programs may run from it.
        exec: bool,
    },
    /// Hide a directory behind an empty read-only tmpfs.
    HideDir {
        /// Path inside the container.
        path: String,
    },
}

fn covers(outer: &str, inner: &str) -> bool {
    outer == "/" || inner == outer || inner.strip_prefix(outer).is_some_and(|r| r.starts_with('/'))
}

/// The mounts that enforce `policy.filesystem` without Landlock: hide what is not listed, bind
/// read-only what is only readable or executable. `mounted` are destinations the configuration
/// already mounts (kept as they are: `/proc`, `/dev`, `/.semble`, tmpfs for writable paths…);
/// `present` are the listed paths that exist in the root filesystem (the others grant nothing,
/// as with Landlock).
pub fn filesystem_mounts(
    policy: &SandboxPolicy,
    root: &[RootEntry],
    mounted: &[String],
    present: &BTreeSet<String>,
) -> Vec<FsMount> {
    let Some(fs) = &policy.filesystem else { return Vec::new() };
    let listed: Vec<&String> = fs.read_only.iter().chain(&fs.read_write).chain(&fs.execute).collect();
    let mut out = Vec::new();
    // 1. Top-level directories nothing lists (or mounts) disappear.
    for e in root.iter().filter(|e| e.dir) {
        let top = format!("/{}", e.name);
        let needed = listed.iter().any(|l| covers(&top, l) || covers(l, &top))
            || mounted.iter().any(|m| covers(&top, m) || covers(m, &top));
        if !needed {
            out.push(FsMount::HideDir { path: top });
        }
    }
    // 2. Read-only and executable paths, parents before children; readWrite paths are mounted
    //    by the shim (tmpfs) or the engine (volumes).
    let mut ro: Vec<(String, bool)> =
        fs.read_only.iter().map(|p| (p.clone(), false)).chain(fs.execute.iter().map(|p| (p.clone(), true))).collect();
    ro.retain(|(p, _)| {
        p != "/"
            && present.contains(p)
            && !mounted.iter().any(|m| m == p)
            && !fs.read_write.iter().any(|w| covers(w, p))
    });
    ro.sort_by(|a, b| a.0.matches('/').count().cmp(&b.0.matches('/').count()).then(a.0.cmp(&b.0)));
    ro.dedup_by(|a, b| a.0 == b.0);
    for (path, exec) in ro {
        out.push(FsMount::ReadOnly { path, exec });
    }
    out
}

/// Who enforces each control under gVisor (for `features` and `explain-bundle`).
pub fn enforcement() -> &'static [(&'static str, &'static str)] {
    &[
        ("syscalls", "the gVisor Sentry (user-space kernel) handles every syscall; the host sees only runsc's own"),
        ("seccomp", "semble-init loads the policy's filter inside the sandbox; the Sentry enforces it"),
        ("capabilities", "the Sentry, from config.json; verified by semble-init"),
        ("no_new_privs", "the Sentry; verified by semble-init"),
        ("filesystem", "mounts: unlisted top-level directories hidden, read-only binds (gVisor has no Landlock)"),
        ("network", "runsc --network=none (netstack with loopback only) for none/proxy"),
        ("proxy bridge", "semble-init inside the sandbox, to the host socket (--host-uds=open)"),
        ("selinux", "not applied inside gVisor (labels apply to runsc's own processes)"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(spec: &str) -> SandboxPolicy {
        let src = format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: p}}\nspec:\n{spec}");
        semble_policy::parse(&src).unwrap().policy
    }

    fn host() -> Runsc {
        Runsc {
            flags: ["oci-seccomp", "overlay2", "host-uds", "platform", "network"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            platforms: ["ptrace", "kvm"].iter().map(|s| s.to_string()).collect(),
            kvm_usable: true,
        }
    }

    const NO_NET: NetworkFacts = NetworkFacts { kept: false, pod: false, bridge: false };

    #[test]
    fn proxy_mode_gets_no_network_and_host_uds_for_the_bridge() {
        let p = policy("  network: {mode: proxy, egress: [{host: a.example.com}]}\n");
        let plan = plan(&p, &host(), NetworkFacts { bridge: true, ..NO_NET }, None).unwrap();
        assert_eq!(plan.flags, ["--network=none", "--host-uds=open", "--oci-seccomp", "--overlay2=root:memory"]);
    }

    #[test]
    fn open_mode_uses_the_sandbox_network() {
        let plan = plan(&policy("  network: {mode: open}\n"), &host(), NO_NET, None).unwrap();
        assert!(plan.flags.contains(&"--network=sandbox".to_string()));
    }

    #[test]
    fn platform_comes_from_the_policy_then_the_operator() {
        let p = policy("  runtime: {backend: gvisor, gvisor: {platform: kvm}}\n  network: {mode: none}\n");
        assert!(plan(&p, &host(), NO_NET, Some("ptrace")).unwrap().flags.contains(&"--platform=kvm".to_string()));
        let p = policy("  network: {mode: none}\n");
        assert!(plan(&p, &host(), NO_NET, Some("ptrace")).unwrap().flags.contains(&"--platform=ptrace".to_string()));
        let p = policy("  runtime: {backend: gvisor, gvisor: {platform: systrap}}\n  network: {mode: none}\n");
        assert!(matches!(plan(&p, &host(), NO_NET, None), Err(Unenforceable::Platform(..))));
    }

    #[test]
    fn a_kept_network_is_refused_outside_pods() {
        let p = policy("  network: {mode: proxy, ingress: [{fromNamespace: a, ports: [80]}]}\n");
        assert!(matches!(
            plan(&p, &host(), NetworkFacts { kept: true, pod: false, bridge: false }, None),
            Err(Unenforceable::KeptNetwork(..))
        ));
        let ok = plan(&p, &host(), NetworkFacts { kept: true, pod: true, bridge: false }, None).unwrap();
        assert!(ok.flags.contains(&"--network=sandbox".to_string()));
        assert_eq!(ok.notes.len(), 1);
    }

    #[test]
    fn gpus_need_nvproxy() {
        let p = policy("  devices: {gpu: nvidia}\n  network: {mode: none}\n");
        assert!(matches!(plan(&p, &host(), NO_NET, None), Err(Unenforceable::NoNvproxy(_))));
        let mut h = host();
        h.flags.insert("nvproxy".into());
        assert!(plan(&p, &h, NO_NET, None).unwrap().flags.contains(&"--nvproxy".to_string()));
    }

    #[test]
    fn unlisted_directories_are_hidden_and_listed_ones_bound_read_only() {
        let p = policy("  filesystem: {readOnly: [/etc, /usr], readWrite: [/tmp, /workspace], execute: [/bin, /usr/bin]}\n  network: {mode: none}\n");
        let root: Vec<RootEntry> = ["bin", "etc", "usr", "tmp", "workspace", "secret", "root", "proc", "dev", "var"]
            .iter()
            .map(|n| RootEntry { name: n.to_string(), dir: true })
            .chain(std::iter::once(RootEntry { name: "file".into(), dir: false }))
            .collect();
        let mounted: Vec<String> =
            ["/proc", "/dev", "/tmp", "/workspace", "/.semble"].iter().map(|s| s.to_string()).collect();
        let present: BTreeSet<String> = ["/bin", "/etc", "/usr", "/usr/bin"].iter().map(|s| s.to_string()).collect();
        let m = filesystem_mounts(&p, &root, &mounted, &present);
        let hidden: Vec<&str> = m
            .iter()
            .filter_map(|x| if let FsMount::HideDir { path } = x { Some(path.as_str()) } else { None })
            .collect();
        assert_eq!(hidden, ["/secret", "/root", "/var"]);
        let ro: Vec<(&str, bool)> = m
            .iter()
            .filter_map(|x| if let FsMount::ReadOnly { path, exec } = x { Some((path.as_str(), *exec)) } else { None })
            .collect();
        assert_eq!(ro, [("/bin", true), ("/etc", false), ("/usr", false), ("/usr/bin", true)]);
    }
}
