//! Facts about the host that decide whether a policy can be enforced here.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use semble_policy::model::Rlimit;

/// What the host offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Landlock ABI, if available.
    pub landlock_abi: Option<u32>,
    /// Whether SELinux is enabled (selinuxfs mounted).
    pub selinux_enabled: bool,
    /// `(dev, inode)` of the shim's own namespaces, by OCI type name — the host's, when the
    /// shim runs on the host.
    pub host_namespaces: BTreeMap<String, (u64, u64)>,
    /// The shim's hard resource limits (a container cannot be given more).
    pub hard_limits: BTreeMap<Rlimit, u64>,
    /// The NVIDIA driver's character device majors: 195, and those `/proc/devices` lists for
    /// the driver's other nodes (`nvidia-uvm`, `nvidia-caps`…).
    pub nvidia_majors: std::collections::BTreeSet<i64>,
    /// The masked and read-only paths of the policy this kernel does not have
    /// (`/proc/sysrq-trigger` without `CONFIG_MAGIC_SYSRQ`…): not added, as there is nothing there
    /// to hide, and the spec's conformance tests read each listed path back.
    pub missing_kernel_paths: std::collections::BTreeSet<String>,
    /// Why the egress guard cannot be attached here (`None`: it can): it needs root (loading
    /// and attaching cgroup BPF) and a cgroup v2 hierarchy.
    pub no_egress_guard: Option<String>,
    /// The cgroup controllers a container started by this shim cannot be limited by, and why
    /// (`None`: all of them, as root). A rootless runtime writes only the controllers the host
    /// delegates to its user: none on cgroup v1, those of `cgroup.subtree_control` on v2.
    pub undelegated_cgroups: Option<Undelegated>,
}

/// The cgroup controllers an ordinary user cannot use on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undelegated {
    /// Controller names (`memory`, `cpu`, `pids`, `cpuset`, `io`, `hugetlb`, `rdma`).
    pub controllers: std::collections::BTreeSet<String>,
    /// Why, for the operator (the host's cgroup layout, and the fix).
    pub why: String,
}

/// The controllers semble's limits use.
pub const LIMIT_CONTROLLERS: &[&str] = &["cpu", "cpuset", "hugetlb", "io", "memory", "pids", "rdma"];

/// What a rootless runtime can limit on this host. `v2_controllers` is the delegated set (read
/// from the user's systemd service, or the caller's own cgroup), `None` on a cgroup v1 or hybrid
/// host.
pub fn undelegated(uid: u32, v2_controllers: Option<&str>) -> Option<Undelegated> {
    let all = LIMIT_CONTROLLERS.iter().map(|c| (*c).to_string());
    match v2_controllers {
        None => Some(Undelegated {
            controllers: all.collect(),
            why: "this host mounts cgroup v1 (or a v1/v2 hybrid), where no controller is delegated to an ordinary \
                  user, so a rootless container's memory, CPU and pids limits cannot be set; boot with \
                  `systemd.unified_cgroup_hierarchy=1` for cgroup v2 (docs/install-podman.md, rootless)"
                .to_string(),
        }),
        Some(have) => {
            let have: std::collections::BTreeSet<&str> = have.split_whitespace().collect();
            let missing: std::collections::BTreeSet<String> = all.filter(|c| !have.contains(c.as_str())).collect();
            if missing.is_empty() {
                return None;
            }
            Some(Undelegated {
                why: format!(
                    "cgroup v2 delegates `{}` to uid {uid}, not `{}`; add them to the user's systemd `Delegate=` \
                     (docs/install-podman.md, rootless)",
                    have.iter().copied().collect::<Vec<_>>().join(" "),
                    missing.iter().map(String::as_str).collect::<Vec<_>>().join(" ")
                ),
                controllers: missing,
            })
        }
    }
}

/// The controllers delegated to this (rootless) process on a cgroup v2 host: those its user's
/// systemd manager may hand to children (`user@UID.service`'s `cgroup.subtree_control`), else
/// those of the caller's own cgroup. `None` when `/sys/fs/cgroup` is not cgroup v2.
fn delegated_v2(uid: u32) -> Option<String> {
    let root = Path::new("/sys/fs/cgroup");
    if !cgroup_v2_unified() {
        return None;
    }
    let service = root.join(format!("user.slice/user-{uid}.slice/user@{uid}.service/cgroup.subtree_control"));
    if let Ok(s) = std::fs::read_to_string(service) {
        return Some(s);
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/").trim_start_matches('/').to_string();
    Some(std::fs::read_to_string(root.join(path).join("cgroup.controllers")).unwrap_or_default())
}

/// Whether `/sys/fs/cgroup` is one cgroup v2 hierarchy (not cgroup v1, not a v1/v2 hybrid).
pub fn cgroup_v2_unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").is_file()
}

/// OCI namespace type → `/proc/self/ns` entry.
pub const NAMESPACES: &[(&str, &str)] = &[
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
    ("cgroup", "cgroup"),
    ("user", "user"),
];

/// The identity of a namespace file.
pub fn ns_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Probe the host.
pub fn probe() -> HostFacts {
    probe_for(crate::settings::is_rootless())
}

/// [`probe`] for a shim that runs rootless or not (`Settings::rootless`, which a `--rootless`
/// flag may have set).
pub fn probe_for(rootless: bool) -> HostFacts {
    let mut host_namespaces = BTreeMap::new();
    for (oci, proc_name) in NAMESPACES {
        if let Some(id) = ns_id(&Path::new("/proc/self/ns").join(proc_name)) {
            host_namespaces.insert((*oci).to_string(), id);
        }
    }
    let mut hard_limits = BTreeMap::new();
    for (_, r) in Rlimit::ALL {
        if let Some(res) = nix_resource(*r) {
            if let Ok((_, hard)) = nix::sys::resource::getrlimit(res) {
                hard_limits.insert(*r, hard);
            }
        }
    }
    let no_egress_guard = if rootless || !nix::unistd::geteuid().is_root() {
        Some("the shim does not run as root (rootless): attaching cgroup BPF programs needs CAP_BPF and CAP_NET_ADMIN on the host".to_string())
    } else {
        crate::egress::unified_mount().err().map(|e| format!("{e} (the guard attaches to the container's cgroup v2)"))
    };
    let missing_kernel_paths = semble_policy::compile::oci::MASKED_PATHS
        .iter()
        .chain(semble_policy::compile::oci::READONLY_PATHS)
        .filter(|p| std::fs::symlink_metadata(p).is_err())
        .map(|p| (*p).to_string())
        .collect();
    // Root inside a user namespace (a system container) is no more trusted with cgroups.
    let undelegated_cgroups = if rootless || crate::settings::in_user_namespace() {
        let uid = crate::settings::host_uid();
        undelegated(uid, delegated_v2(uid).as_deref())
    } else {
        None
    };
    HostFacts {
        undelegated_cgroups,
        missing_kernel_paths,
        nvidia_majors: nvidia_majors(&std::fs::read_to_string("/proc/devices").unwrap_or_default()),
        landlock_abi: crate::sys::landlock_abi(),
        selinux_enabled: Path::new("/sys/fs/selinux/enforce").exists(),
        host_namespaces,
        hard_limits,
        no_egress_guard,
    }
}

/// The NVIDIA majors: 195 (the driver's fixed one) and the character devices of
/// `/proc/devices` whose name starts with `nvidia`.
pub fn nvidia_majors(proc_devices: &str) -> std::collections::BTreeSet<i64> {
    let mut out: std::collections::BTreeSet<i64> = [semble_policy::compile::oci::NVIDIA_MAJOR].into_iter().collect();
    let chars = proc_devices.split("Block devices:").next().unwrap_or("");
    for line in chars.lines() {
        let mut w = line.split_whitespace();
        if let (Some(n), Some(name)) = (w.next().and_then(|n| n.parse::<i64>().ok()), w.next()) {
            if name.starts_with("nvidia") {
                out.insert(n);
            }
        }
    }
    out
}

fn nix_resource(r: Rlimit) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    Some(match r {
        Rlimit::As => R::RLIMIT_AS,
        Rlimit::Core => R::RLIMIT_CORE,
        Rlimit::Cpu => R::RLIMIT_CPU,
        Rlimit::Data => R::RLIMIT_DATA,
        Rlimit::Fsize => R::RLIMIT_FSIZE,
        Rlimit::Locks => R::RLIMIT_LOCKS,
        Rlimit::Memlock => R::RLIMIT_MEMLOCK,
        Rlimit::Msgqueue => R::RLIMIT_MSGQUEUE,
        Rlimit::Nice => R::RLIMIT_NICE,
        Rlimit::Nofile => R::RLIMIT_NOFILE,
        Rlimit::Nproc => R::RLIMIT_NPROC,
        Rlimit::Rss => R::RLIMIT_RSS,
        Rlimit::Rtprio => R::RLIMIT_RTPRIO,
        Rlimit::Rttime => R::RLIMIT_RTTIME,
        Rlimit::Sigpending => R::RLIMIT_SIGPENDING,
        Rlimit::Stack => R::RLIMIT_STACK,
    })
}
