//! Apply a policy to a bundle's `config.json`, as a ceiling.
//!
//! This is where the sandbox is decided on the node. The incoming configuration (from Podman,
//! containerd, CRI-O or a hand-written bundle) is treated as a *request*; the policy is the most
//! it may get:
//!
//! * capabilities: every set becomes `policy ∩ requested bounding set` (ambient included, so a
//!   non-root workload really holds what the policy grants);
//! * user, `no_new_privs`, read-only root: the policy's, or stricter when the request is;
//! * seccomp: the policy's profile; a profile the request brought is kept too, *stacked* by
//!   `semble-init` (the kernel then enforces the intersection — a stricter profile is never
//!   replaced by a weaker one);
//! * rlimits and cgroup limits: the lower of both;
//! * masked and read-only paths: the union;
//! * privileged mode, host PID/IPC namespaces, devices and host mounts the policy does not allow,
//!   unsafe sysctls: refused, with the reason;
//! * network: `none`/`proxy` get a private network namespace (or keep a pod's, with TCP cut by
//!   Landlock); `open` keeps the runtime's, never the host's;
//! * the process becomes `semble-init -- <original command>`, which verifies all of the above from
//!   inside, applies Landlock and supervises the workload.
//!
//! The merge works on `serde_json::Value`, so every field semble does not know is kept verbatim.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Map, Value};

use semble_init::config::{
    Bridge, Expect, InitConfig, CONFIG_PATH, INIT_PATH, MOUNT_DIR, NOTIFY_PATH, PROXY_DIR, VERSION,
};
use semble_policy::compile::landlock;
use semble_policy::compile::oci::{MASKED_PATHS, POLICY_ANNOTATION, READONLY_PATHS};
use semble_policy::model::{Enforcement, NetworkMode, SandboxPolicy, SelinuxLevel};
use semble_policy::seccomp_profile::SeccompProfile;
use semble_policy::Capability;

use crate::host::HostFacts;

mod devices;
mod mounts;
mod network;
mod privileges;
mod process;
mod resources;
pub mod table;

use devices::*;
pub use devices::{host_devices, is_nvidia_gpu_node, is_nvidia_name, HostDevices};
use mounts::*;
use network::*;
use privileges::*;
pub use process::{apply_process, granted_names, proxy_env, set_env, ProcessReport};
pub use resources::clamp_limits;
use resources::*;

/// Annotation recording the backend a container runs under.
pub const BACKEND_ANNOTATION: &str = "semble.dev/backend";
pub use semble_policy::facts::{
    CRIO_CONTAINER_NAME, CRIO_POD_UID, CRI_CONTAINER_NAME, CRI_CONTAINER_TYPE, CRI_SANDBOX_ID, CRI_SANDBOX_UID,
};
/// The name the Kubernetes target gives the proxy's native sidecar.
pub const PROXY_SIDECAR_NAME: &str = "semble-proxy";
/// The value of annotation `key` in an OCI configuration, if it is a string.
pub fn annotation<'a>(config: &'a Value, key: &str) -> Option<&'a str> {
    config.get("annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
}

/// Whether CRI-O made this configuration (it writes `io.container.manager: cri-o` itself). CRI-O
/// copies a pod's annotations into its containers, `io.kubernetes.cri.*` ones included: there,
/// only CRI-O's own keys are the engine's.
pub fn made_by_crio<'a>(get: impl Fn(&str) -> Option<&'a str>) -> bool {
    get(CONTAINER_MANAGER) == Some("cri-o")
}

/// The engine's own annotation of two spellings: containerd's CRI key, or CRI-O's where CRI-O
/// made the configuration (never the other engine's key, which a pod author may have written).
pub fn engine_key<'a>(get: impl Fn(&str) -> Option<&'a str>, cri: &str, crio: &str) -> Option<&'a str> {
    if made_by_crio(&get) {
        get(crio)
    } else {
        get(cri)
    }
}

/// The annotation engines use to say who made a container.
pub const CONTAINER_MANAGER: &str = "io.container.manager";

/// The Kubernetes namespace of a container's pod, as containerd's CRI plugin or CRI-O wrote it.
pub fn pod_namespace(config: &Value) -> Option<&str> {
    engine_key(
        |k| annotation(config, k),
        semble_policy::facts::CRI_SANDBOX_NAMESPACE,
        semble_policy::facts::CRIO_POD_NAMESPACE,
    )
}

/// Whether an OCI configuration carries annotation `key` (whatever its value).
pub fn has_annotation(config: &Value, key: &str) -> bool {
    config.get("annotations").and_then(|a| a.get(key)).is_some()
}

/// The stacked seccomp program inside the container.
pub const EXTRA_SECCOMP_PATH: &str = "/.semble/seccomp.bpf";
/// The policy's seccomp program inside the container.
pub const POLICY_SECCOMP_PATH: &str = "/.semble/policy.bpf";
/// The proxy socket's file name in the policy's proxy directory.
pub const PROXY_SOCKET: &str = "proxy.sock";

/// Which runtime will run the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// runc
    Runc,
    /// gVisor's runsc
    Runsc,
    /// The embedded libcontainer runtime
    Embedded,
}

impl BackendKind {
    /// The name used in state and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Runc => "runc",
            BackendKind::Runsc => "runsc",
            BackendKind::Embedded => "embedded",
        }
    }
}

/// Host paths semble mounts into the container.
#[derive(Debug, Clone)]
pub struct Mounts {
    /// The container's own directory of semble files (mounted at `/.semble`).
    pub box_dir: PathBuf,
    /// The static semble-init binary.
    pub init_binary: PathBuf,
    /// The policy's proxy socket directory (`PROXY_DIR/POLICY`).
    pub proxy_dir: PathBuf,
}

/// What to apply.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// Container ID.
    pub id: &'a str,
    /// The policy.
    pub policy: &'a SandboxPolicy,
    /// The host.
    pub facts: &'a HostFacts,
    /// The backend.
    pub backend: BackendKind,
    /// semble's mounts.
    pub mounts: &'a Mounts,
    /// For the gVisor backend: what runsc offers and the container's root filesystem.
    pub runsc: Option<&'a RunscInputs>,
    /// Record the container's syscalls instead of enforcing the policy's seccomp profile.
    pub record: bool,
    /// More engine state directories whose files for this container may be mounted (a rootless
    /// Podman's, in its user's directories: `Settings::user_engine_roots`).
    pub engine_roots: &'a [String],
    /// A rootless user's private directories, never bound (`Settings::user_private_dirs`).
    pub private_dirs: &'a crate::mounts::UserPrivate,
    /// Whether the pod sandbox this container's CRI annotations name is one semble created as a
    /// pod's sandbox (its record says so). Annotations are the container author's and the
    /// image's to write: without such a sandbox, a container is not taken for a pod's.
    pub pod_sandbox_known: bool,
    /// Hook programs the operator allows (`--allow-hook`); every other hook is refused.
    pub allowed_hooks: &'a [PathBuf],
    /// The host's device nodes at the paths the configuration's devices name ([`host_devices`]).
    pub devices: &'a HostDevices,
    /// What each bind source resolves to on this host ([`crate::mounts::resolve_sources`]).
    pub sources: &'a crate::mounts::Sources,
    /// The container's resolvers (its `resolv.conf`, as the engine wrote it): with `dns: true`,
    /// what the egress guard lets it reach on port 53.
    pub resolvers: &'a [std::net::IpAddr],
}

/// What the gVisor backend needs to know about the host and the bundle.
#[derive(Debug, Clone, Default)]
pub struct RunscInputs {
    /// The host's runsc.
    pub host: semble_gvisor::Runsc,
    /// The operator's platform choice (`--runsc-platform`).
    pub platform: Option<String>,
    /// The root filesystem's host path.
    pub rootfs: PathBuf,
    /// The entries at the top of the root filesystem.
    pub root_entries: Vec<semble_gvisor::RootEntry>,
    /// The policy's filesystem paths that exist in the root filesystem.
    pub present: std::collections::BTreeSet<String>,
}

/// One enforcement point, for logs and `explain-bundle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Control {
    /// What is controlled.
    pub control: &'static str,
    /// Who enforces it.
    pub by: &'static str,
    /// How.
    pub detail: String,
}

/// The result of applying a policy.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The new `config.json`.
    pub config: Value,
    /// `semble-init`'s configuration (`None` for a pod's sandbox container, which runs no
    /// workload).
    pub init: Option<InitConfig>,
    /// The container's own seccomp profile, to be compiled and stacked by `semble-init`.
    pub extra_seccomp: Option<SeccompProfile>,
    /// The policy's seccomp profile when `semble-init` loads it (precompiled).
    pub policy_seccomp: Option<SeccompProfile>,
    /// What is enforced, and by whom.
    pub controls: Vec<Control>,
    /// Things the operator should know (fallbacks, replaced namespaces…).
    pub notes: Vec<String>,
    /// Global flags for the backend (runsc's).
    pub backend_flags: Vec<String>,
    /// The seccomp supervisor the container needs (explanations or recording).
    pub notify: Option<NotifyMode>,
    /// The egress guard to attach to the container's cgroup before its workload runs.
    pub egress: Option<crate::egress::Guard>,
    /// The container is a pod's sandbox (the engine gave it its own ID as the sandbox ID).
    pub pod_sandbox: bool,
    /// The container was taken for a container of a pod ([`Inputs::pod_sandbox_known`]).
    pub in_pod: bool,
}

/// What the seccomp supervisor does for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyMode {
    /// Refusals are answered with the policy's errno and explained.
    Explain,
    /// Every syscall is let through and recorded.
    Record,
}

/// Why a container is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `config.json` lacks something every container has.
    #[error("config.json has no `{0}`; it is not a valid OCI runtime configuration")]
    Missing(&'static str),
    /// A field has the wrong type.
    #[error("config.json field `{0}` has the wrong type")]
    WrongType(&'static str),
    /// Privileged mode.
    #[error("the container asks for privileged mode ({0}), which policy `{1}` forbids; run it without --privileged")]
    Privileged(String, String),
    /// A host namespace.
    #[error("the container asks to share the host's {0} namespace, which policy `{1}` forbids")]
    HostNamespace(String, String),
    /// A device whose type and number are not what the policy allows.
    #[error("device `{0}` is refused by policy `{1}`: {2}")]
    DeviceNumber(String, String, String),
    /// A device not in the policy.
    #[error(
        "device `{0}` is not allowed by policy `{1}`; add it to `spec.devices.allow` or remove it from the container"
    )]
    Device(String, String),
    /// A bind mount of a host path the sandbox must not see.
    #[error("bind mount of host `{0}` into `{1}` is refused by policy `{2}`: {3}")]
    Mount(String, String, String, String),
    /// A mount type, or a kernel filesystem where engines do not put it.
    #[error("mount refused by policy `{0}`: {1}")]
    MountType(String, String),
    /// gVisor cannot enforce the policy here.
    #[error("{0}")]
    Gvisor(String),
    /// A mount over semble's own files.
    #[error("mount at `{0}` would hide semble's files; use another destination")]
    Reserved(String),
    /// A sysctl that is not namespaced-safe.
    #[error("sysctl `{0}` is not in the safe set and policy `{1}` forbids it; remove it from the container")]
    Sysctl(String, String),
    /// uid 0 under `runAsNonRoot`.
    #[error("the container would run as uid 0 and policy `{0}` says runAsNonRoot; set a user")]
    Root(String),
    /// Landlock is required and unavailable.
    #[error("policy `{0}` requires Landlock (filesystem.enforcement: required) and this host has none (kernel without CONFIG_SECURITY_LANDLOCK, or `landlock` missing from `lsm=`); enable it, or set `enforcement: best-effort`")]
    NoLandlock(String),
    /// Landlock too old for network rules.
    #[error("policy `{0}` (network mode `{1}`) keeps the container's network namespace here, and cutting its TCP needs Landlock ABI 4 (Linux 6.7); this host has {2}")]
    NoLandlockNet(String, String, String),
    /// SELinux required but disabled.
    #[error("policy `{0}` requires SELinux (selinux.enforcement: required) and it is disabled on this host; enable it, or set `enforcement: best-effort`")]
    NoSelinux(String),
    /// The request's own seccomp profile cannot be kept.
    #[error("the container's own seccomp profile cannot be stacked: {0}")]
    Seccomp(String),
    /// A kept network namespace needs the egress guard, which this host cannot attach.
    #[error("policy `{0}` (network mode `{1}`) keeps the container's network namespace (ingress, or a pod's), and cutting its egress needs semble's egress guard, which cannot be attached here: {2}; run it without ingress ports, or as root on a host with cgroup v2")]
    NoEgressGuard(String, String, String),
    /// A pod's workload would have no way to its gateway proxy.
    #[error("policy `{0}` (network mode `proxy`, placement `gateway`) runs in a pod here, and the node's egress guard lets the workload reach only loopback and its resolvers: set `spec.network.proxy.address` to the gateway Service's ClusterIP (and compile the Kubernetes objects with it), or use `placement: sidecar`")]
    NoGatewayAddress(String),
    /// cgroup limits the host cannot apply, and the policy requires.
    #[error("policy `{0}` sets {1}, and this host cannot apply them to a rootless container: {2}; or run the container as root, or set `spec.resources.enforcement: best-effort` to run it without them")]
    NoCgroupLimits(String, String, String),
    /// A field the ceiling table does not know.
    #[error("config.json field `{0}`{1} is not one semble knows; policy `{2}` refuses what it cannot judge (remove it, or update semble)")]
    UnknownField(String, String, String),
    /// A field the table refuses, or a value of it the policy cannot allow.
    #[error("config.json field `{0}` is refused by policy `{1}`: {2}")]
    Field(String, String, String),
    /// A hook the operator did not allow.
    #[error("the container asks for a `{0}` hook `{1}`, which would run on the host as root, and policy `{2}` refuses it; remove it, or let the operator allow that program (semble-shim --allow-hook PATH)")]
    Hook(String, String, String),
    /// The request does not match the OCI types.
    #[error("config.json is not a valid OCI runtime configuration: {0}")]
    Invalid(String),
    /// The open network is the host's.
    #[error("policy `{0}` allows the runtime's network, not the host's; remove `--network host` or use a policy with `mode: none` or `proxy`")]
    HostNetwork(String),
}

fn obj<'a>(v: &'a mut Value, key: &str) -> Result<&'a mut Map<String, Value>, Refusal> {
    let Value::Object(m) = v else {
        return Err(Refusal::WrongType("(root)"));
    };
    let entry = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if entry.is_null() {
        *entry = json!({});
    }
    entry.as_object_mut().ok_or(Refusal::WrongType(static_name(key)))
}

fn static_name(key: &str) -> &'static str {
    match key {
        "process" => "process",
        "linux" => "linux",
        "root" => "root",
        "capabilities" => "process.capabilities",
        "resources" => "linux.resources",
        "annotations" => "annotations",
        "user" => "process.user",
        _ => "config",
    }
}

fn cap_names(v: Option<&Value>) -> Option<BTreeSet<String>> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
}

/// Apply the policy. Pure: all host knowledge comes in through `inputs.facts`.
pub fn apply(config: &Value, inputs: &Inputs<'_>) -> Result<Applied, Refusal> {
    let policy = inputs.policy;
    let name = policy.name.clone();
    let mut cfg = config.clone();
    let mut controls = Vec::new();
    let mut notes = Vec::new();
    if !cfg.is_object() {
        return Err(Refusal::WrongType("(root)"));
    }
    let annotations: BTreeMap<String, String> = cfg
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default();
    let get = |k: &str| annotations.get(k).map(String::as_str);
    let says_pod = engine_key(get, CRI_SANDBOX_ID, semble_policy::facts::CRIO_SANDBOX_ID).is_some()
        || engine_key(get, CRI_CONTAINER_TYPE, semble_policy::facts::CRIO_CONTAINER_TYPE).is_some();
    // A pod's sandbox (pause) container runs no workload, so it gets no semble-init. Anyone can
    // write the type annotation (Podman copies an image's annotations into config.json), so it
    // counts only when the sandbox ID the engine gives is this container's own ID, which only
    // the engine knows before the container exists.
    let says_sandbox = |kind: &str, id_key: &str| {
        annotations.get(kind).is_some_and(|t| t == "sandbox") && annotations.get(id_key).is_some_and(|s| s == inputs.id)
    };
    let is_pod_sandbox = says_sandbox(CRI_CONTAINER_TYPE, CRI_SANDBOX_ID)
        || says_sandbox(semble_policy::facts::CRIO_CONTAINER_TYPE, semble_policy::facts::CRIO_SANDBOX_ID);
    if !is_pod_sandbox && annotations.get(CRI_CONTAINER_TYPE).is_some_and(|t| t == "sandbox") {
        notes.push(format!(
            "container `{}` says it is a pod sandbox but the engine's sandbox ID is not its own: it gets semble-init and the whole policy",
            inputs.id
        ));
    }
    // A pod's container shares its sandbox's namespaces (its network is the pod's, its proxy the
    // pod's): only where semble made that sandbox itself.
    let is_pod = is_pod_sandbox || (says_pod && inputs.pod_sandbox_known);
    if says_pod && !is_pod {
        notes.push(format!(
            "container `{}` carries pod annotations, but semble created no pod sandbox `{}`: it is treated as a container of its own (its own network, the proxy bridge)",
            inputs.id,
            annotations.get(CRI_SANDBOX_ID).map(String::as_str).unwrap_or("")
        ));
    }

    if cfg.get("process").is_none() {
        return Err(Refusal::Missing("process"));
    }
    if cfg.get("root").is_none() {
        return Err(Refusal::Missing("root"));
    }

    // --- the table: unknown fields, refused fields, types ---------------------------------
    check_table(&cfg, &name)?;
    if let Err(e) = serde_json::from_value::<oci_spec::runtime::Spec>(cfg.clone()) {
        return Err(Refusal::Invalid(crate::ops::json_reason(&e)));
    }
    let hooks = check_hooks(&mut cfg, inputs.allowed_hooks, &name)?;
    if !hooks.is_empty() {
        controls.push(Control {
            control: "hooks",
            by: "runtime, on the host",
            detail: format!(
                "allowed by the operator: {}; each with its own environment, never the container's",
                hooks.join(", ")
            ),
        });
    }
    check_oci_version(&cfg, &name)?;
    check_id_mappings(&cfg, &name)?;
    check_linux_misc(&cfg, &name)?;

    // --- privileged and host-level requests -------------------------------------------------
    check_privileged(&cfg, &name)?;
    check_mounts(&mut cfg, inputs, &annotations, is_pod)?;
    check_sysctls(&cfg, &name)?;
    let DeviceVerdict { allowed: allowed_devices, controls: device_controls, gpu_nodes } =
        check_devices(&cfg, policy, inputs.facts, inputs.devices)?;

    // --- namespaces and network -----------------------------------------------------------
    let net = apply_namespaces(&mut cfg, inputs, is_pod)?;
    controls.push(Control { control: "network", by: "runtime namespaces", detail: net.detail.clone() });
    let gvisor = inputs.backend == BackendKind::Runsc;
    // The proxy's own native sidecar (sidecar placement) is the pod's way out: its egress is
    // not cut. Who writes the pod spec decides what runs there; gateway placement trusts no one
    // in the pod (docs/security.md).
    let container_name = engine_key(get, CRI_CONTAINER_NAME, CRIO_CONTAINER_NAME);
    let proxy_sidecar = is_pod
        && policy.network.mode == NetworkMode::Proxy
        && policy.network.proxy.placement == semble_policy::model::ProxyPlacement::Sidecar
        && container_name == Some(PROXY_SIDECAR_NAME);
    let egress = if net.kept && !gvisor && !proxy_sidecar {
        if let Some(why) = &inputs.facts.no_egress_guard {
            return Err(Refusal::NoEgressGuard(name.clone(), policy.network.mode.as_str().into(), why.clone()));
        }
        let proxy = policy.network.proxy.address.map(|ip| std::net::SocketAddr::new(ip, policy.network.proxy.port));
        if is_pod
            && policy.network.mode == NetworkMode::Proxy
            && policy.network.proxy.placement == semble_policy::model::ProxyPlacement::Gateway
            && proxy.is_none()
        {
            return Err(Refusal::NoGatewayAddress(name.clone()));
        }
        let dns = policy.network.dns;
        let guard = crate::egress::Guard::new(dns, inputs.resolvers, proxy);
        controls.push(Control {
            control: "egress",
            by: "semble-shim (cgroup BPF), verified by semble-init",
            detail: guard.describe(),
        });
        Some(guard)
    } else {
        if proxy_sidecar {
            notes.push(format!(
                "network: container `{PROXY_SIDECAR_NAME}` is policy `{name}`'s proxy sidecar: its egress is not cut"
            ));
        }
        None
    };
    let bridge = policy.network.mode == NetworkMode::Proxy && !is_pod;
    let mut backend_flags = Vec::new();
    if gvisor {
        let runsc = inputs.runsc.cloned().unwrap_or_default();
        let facts = semble_gvisor::NetworkFacts { kept: net.kept, pod: is_pod, bridge };
        let mut plan = semble_gvisor::plan(policy, &runsc.host, facts, runsc.platform.as_deref())
            .map_err(|e| Refusal::Gvisor(e.to_string()))?;
        if inputs.facts.undelegated_cgroups.is_some() {
            // Rootless, runsc would create the sandbox's cgroups and fail where they are not
            // delegated; the limits go with them (below).
            if !runsc.host.flags.contains("ignore-cgroups") {
                return Err(Refusal::Gvisor(format!(
                    "this runsc has no --ignore-cgroups, which it needs to run policy `{name}` rootless where cgroups are not delegated; use a newer runsc or the runc backend"
                )));
            }
            plan.flags.push("--ignore-cgroups".into());
        }
        notes.extend(plan.notes);
        controls.push(Control {
            control: "kernel",
            by: "gVisor (runsc)",
            detail: format!("user-space kernel; runsc {}", plan.flags.join(" ")),
        });
        backend_flags = plan.flags;
    }
    if let Some(n) = &net.note {
        notes.push(n.clone());
    }

    // --- process: user, capabilities, no_new_privs, rlimits --------------------------------
    let incoming_bounding = cfg.pointer("/process/capabilities/bounding").and_then(|v| cap_names(Some(v)));
    let granted: BTreeSet<String> = policy.capabilities.granted().iter().map(|c| c.oci_name()).collect();
    let allowed_caps: BTreeSet<String> = match &incoming_bounding {
        Some(b) => granted.intersection(b).cloned().collect(),
        None => granted.clone(),
    };
    let proc_report = apply_process(
        cfg.get_mut("process").ok_or(Refusal::Missing("process"))?,
        policy,
        inputs.facts,
        &allowed_caps,
        is_pod,
    )?;
    controls.push(Control { control: "user", by: "runtime", detail: proc_report.user.clone() });
    controls.push(Control {
        control: "capabilities",
        by: "runtime, verified by semble-init",
        detail: if allowed_caps.is_empty() {
            "none".into()
        } else {
            allowed_caps.iter().map(|c| c.trim_start_matches("CAP_")).collect::<Vec<_>>().join(",")
        },
    });
    controls.push(Control {
        control: "no_new_privs",
        by: "runtime, verified by semble-init",
        detail: if proc_report.nnp { "on".into() } else { "off".into() },
    });
    if !proc_report.rlimits.is_empty() {
        controls.push(Control { control: "rlimits", by: "runtime", detail: proc_report.rlimits.join(", ") });
    }

    // --- root filesystem, masked paths ----------------------------------------------------
    let root = obj(&mut cfg, "root")?;
    let ro = policy.process.read_only_root_filesystem || root.get("readonly").and_then(Value::as_bool).unwrap_or(false);
    root.insert("readonly".into(), Value::Bool(ro));
    controls.push(Control {
        control: "root filesystem",
        by: "runtime",
        detail: if ro { "read-only".into() } else { "writable".into() },
    });
    if ro {
        let added = add_scratch_mounts(&mut cfg, policy, proc_report.uid, proc_report.gid)?;
        if !added.is_empty() {
            controls.push(Control { control: "writable paths", by: "runtime (tmpfs)", detail: added.join(", ") });
        }
    }
    let linux = obj(&mut cfg, "linux")?;
    let present = |list: &[&'static str]| -> Vec<&'static str> {
        list.iter().copied().filter(|p| !inputs.facts.missing_kernel_paths.contains(*p)).collect()
    };
    union_paths(linux, "maskedPaths", &present(MASKED_PATHS));
    union_paths(linux, "readonlyPaths", &present(READONLY_PATHS));
    controls.push(Control {
        control: "masked paths",
        by: "runtime",
        detail: format!("{} masked, {} read-only", MASKED_PATHS.len(), READONLY_PATHS.len()),
    });

    // --- cgroups ----------------------------------------------------------------------------
    let mut res_detail = apply_resources(linux, policy, &allowed_devices, &inputs.facts.nvidia_majors)?;
    // runsc rootless ignores cgroups altogether (above): no limit holds, whatever is delegated.
    let undelegated = inputs.facts.undelegated_cgroups.as_ref().map(|u| {
        if gvisor {
            crate::host::Undelegated {
                controllers: crate::host::LIMIT_CONTROLLERS.iter().map(|c| (*c).to_string()).collect(),
                why: format!("{}; and gVisor runs rootless with --ignore-cgroups, which sets none", u.why),
            }
        } else {
            u.clone()
        }
    });
    if let Some(u) = &undelegated {
        if let Some(note) = without_undelegated(linux, policy, u)? {
            res_detail = format!("NOT applied here ({note})");
            notes.push(format!(
                "policy `{name}` (resources.enforcement: best-effort): {note} are NOT applied: {}",
                u.why
            ));
        }
    }
    controls.push(Control { control: "cgroup limits", by: "runtime", detail: res_detail });
    controls.extend(device_controls);

    // --- seccomp ------------------------------------------------------------------------------
    let extra_seccomp = match linux.get("seccomp") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let p: SeccompProfile = serde_json::from_value(v.clone())
                .map_err(|e| Refusal::Seccomp(format!("it is not a valid profile: {e}")))?;
            if p.listener_path.is_some() {
                return Err(Refusal::Seccomp("it uses a seccomp notify listener".into()));
            }
            Some(p)
        }
    };
    let identity =
        u32::try_from(proc_report.gid).ok().map(|gid| semble_seccomp::generate::Identity { uid: proc_report.uid, gid });
    let mut profile = semble_seccomp::generate::profile_for(policy, identity);
    // Only this host's architecture: a second one doubles the filter for syscalls this kernel
    // can never see.
    if let Some(native) = native_arch() {
        profile.architectures = vec![native.to_string()];
    }
    let rules = profile.syscalls.len();
    let detail = format!(
        "policy profile: baseline {}, {rules} rules, default {}",
        policy.seccomp.baseline.as_str(),
        policy.seccomp.default_action.as_str()
    );
    // With no_new_privs, semble-init loads the policy's filter precompiled (libseccomp binary
    // tree, cached per policy) before anything else runs in the container: the runtime does not
    // compile it at every start. Without no_new_privs an unprivileged process cannot load a
    // filter, so the runtime applies it.
    let by_init = !is_pod_sandbox && proc_report.nnp;
    let mut notify = None;
    if inputs.record && !is_pod_sandbox {
        if !by_init || gvisor {
            return Err(Refusal::Seccomp(format!(
                "recording needs semble-init to load the filter (noNewPrivileges on, runc or embedded backend); policy `{name}` does not allow that here"
            )));
        }
        profile = semble_seccomp::generate::record_profile();
        if let Some(native) = native_arch() {
            profile.architectures = vec![native.to_string()];
        }
        notify = Some(NotifyMode::Record);
        notes.push(format!(
            "recording: every syscall of container `{}` is allowed and recorded; policy `{name}`'s seccomp profile is NOT enforced",
            inputs.id
        ));
        controls.push(Control {
            control: "seccomp recording",
            by: "semble-shim supervisor (user notification, continue)",
            detail: "every syscall allowed and recorded; nothing filtered".into(),
        });
    } else if by_init && policy.seccomp.explain_denials {
        if gvisor {
            notes.push(format!("policy `{name}`: denials are not explained under gVisor (runsc has no seccomp user notification); they still fail"));
        } else {
            match semble_seccomp::generate::notify_unsupported(policy) {
                None => {
                    profile = semble_seccomp::generate::notify_profile(&profile, policy.seccomp.errno);
                    notify = Some(NotifyMode::Explain);
                }
                Some(why) => notes.push(format!("policy `{name}`: denials are not explained: {why}")),
            }
        }
    }
    let linux = obj(&mut cfg, "linux")?;
    let policy_seccomp = if by_init {
        linux.remove("seccomp");
        controls.push(Control { control: "seccomp", by: "semble-init (precompiled BPF)", detail });
        Some(profile)
    } else {
        linux
            .insert("seccomp".into(), serde_json::to_value(&profile).map_err(|_| Refusal::WrongType("linux.seccomp"))?);
        controls.push(Control { control: "seccomp", by: "runtime (libseccomp)", detail });
        None
    };
    if notify == Some(NotifyMode::Explain) {
        controls.push(Control {
            control: "seccomp denials",
            by: "semble-shim supervisor (user notification)",
            detail: "answered with the policy's errno and explained (semble-shim denials)".into(),
        });
    }
    let stack = extra_seccomp.is_some() && !is_pod_sandbox;
    if stack {
        if !proc_report.nnp {
            return Err(Refusal::Seccomp(format!(
                "keeping it on top of policy `{name}` needs no_new_privs, which the policy turns off; set `noNewPrivileges: true`, or run the container without its own profile (`--security-opt seccomp=unconfined`) so the policy's applies alone"
            )));
        }
        controls.push(Control {
            control: "seccomp (container's own)",
            by: "semble-init (stacked filter)",
            detail: "kept: the kernel enforces both profiles".into(),
        });
    }

    // --- SELinux ------------------------------------------------------------------------------
    if let Some(se) = &policy.selinux {
        if inputs.facts.selinux_enabled {
            let level = match &se.level {
                Some(SelinuxLevel::Fixed(l)) => l.clone(),
                Some(SelinuxLevel::Auto) => auto_level(inputs.id),
                None => "s0".into(),
            };
            let process = obj(&mut cfg, "process")?;
            process.insert("selinuxLabel".into(), Value::String(format!("system_u:system_r:{}:{level}", se.type_)));
            let linux = obj(&mut cfg, "linux")?;
            linux.insert("mountLabel".into(), Value::String(format!("system_u:object_r:container_file_t:{level}")));
            controls.push(Control { control: "selinux", by: "runtime", detail: format!("{}:{level}", se.type_) });
        } else if se.enforcement == Enforcement::Required {
            return Err(Refusal::NoSelinux(name));
        } else {
            notes.push(format!(
                "SELinux is disabled on this host: policy `{name}` asks for type `{}` best-effort, not applied",
                se.type_
            ));
        }
    }

    // --- Landlock (or, under gVisor, mounts) ----------------------------------------------
    if gvisor && !is_pod_sandbox {
        if let (Some(r), Some(_)) = (inputs.runsc, &policy.filesystem) {
            let added = gvisor_filesystem_mounts(&mut cfg, policy, r)?;
            controls.push(Control { control: "filesystem", by: "mounts (gVisor has no Landlock)", detail: added });
        }
    }
    let mut ruleset = if is_pod_sandbox || gvisor { None } else { landlock::ruleset(policy) };
    if net.cut_by_landlock && !gvisor && !proxy_sidecar {
        let rules = landlock::net_rules(policy);
        match inputs.facts.landlock_abi {
            Some(abi) if abi >= 4 => {}
            other => {
                let have = other.map(|a| format!("ABI {a}")).unwrap_or_else(|| "no Landlock".into());
                return Err(Refusal::NoLandlockNet(name, policy.network.mode.as_str().into(), have));
            }
        }
        let rs = ruleset.get_or_insert_with(|| landlock::Ruleset {
            version: landlock::RULESET_VERSION,
            policy: name.clone(),
            enforcement: Enforcement::Required.as_str().into(),
            rules: Vec::new(),
            scopes: Vec::new(),
            net: None,
            log: false,
        });
        rs.net = rules;
    }
    if let Some(rs) = &mut ruleset {
        // The per-GPU nodes this container was given (judged by number above), and a domain
        // whose refusals the kernel logs for the supervisor to explain.
        rs.rules.extend(gpu_nodes.iter().map(|p| landlock::gpu_node_rule(p)));
        rs.log = notify == Some(NotifyMode::Explain);
    }
    if let Some(rs) = &ruleset {
        match inputs.facts.landlock_abi {
            None if rs.required() => return Err(Refusal::NoLandlock(name)),
            None => notes.push(format!("Landlock is unavailable on this host: policy `{name}` filesystem rules are best-effort and NOT enforced")),
            Some(abi) => {
                let paths = rs.rules.len();
                let mut detail = format!("{} (ABI {abi}): {paths} path rules", rs.enforcement);
                if let Some(n) = &rs.net {
                    detail.push_str(&format!("; TCP bind {:?}, connect {:?}", n.bind_tcp, n.connect_tcp));
                }
                controls.push(Control { control: "landlock", by: "semble-init", detail });
            }
        }
    }

    // --- semble-init, its files, the proxy bridge -------------------------------------------
    // The embedded backend runs semble-init's code in-process, with its configuration in memory:
    // no init binary or configuration to mount, and the command stays as it is.
    let embedded = inputs.backend == BackendKind::Embedded;
    let init = if is_pod_sandbox {
        None
    } else {
        let process = obj(&mut cfg, "process")?;
        let args = process.get("args").and_then(Value::as_array).cloned().ok_or(Refusal::Missing("process.args"))?;
        if args.is_empty() {
            return Err(Refusal::Missing("process.args"));
        }
        let mut new_args = vec![json!(INIT_PATH), json!("--config"), json!(CONFIG_PATH), json!("--")];
        new_args.extend(args);
        if !embedded {
            process.insert("args".into(), Value::Array(new_args));
        }
        if bridge {
            let port = policy.network.proxy.port;
            set_env(process, &proxy_env(port));
        }
        let m = inputs.mounts;
        let mounts =
            cfg.as_object_mut().ok_or(Refusal::WrongType("(root)"))?.entry("mounts").or_insert_with(|| json!([]));
        let mounts = mounts.as_array_mut().ok_or(Refusal::WrongType("mounts"))?;
        if !embedded {
            mounts.push(bind(&m.box_dir, MOUNT_DIR, false));
            mounts.push(bind(&m.init_binary, INIT_PATH, true));
        }
        if bridge {
            mounts.push(bind(&m.proxy_dir, PROXY_DIR, false));
            controls.push(Control {
                control: "proxy bridge",
                by: "semble-init",
                detail: format!(
                    "127.0.0.1:{} -> {}",
                    policy.network.proxy.port,
                    m.proxy_dir.join(PROXY_SOCKET).display()
                ),
            });
        }
        Some(InitConfig {
            version: VERSION,
            container_id: inputs.id.to_string(),
            policy: name.clone(),
            landlock: ruleset,
            expect: Expect {
                capabilities: allowed_caps.iter().cloned().collect(),
                no_new_privs: proc_report.nnp,
                seccomp: true,
                uid: Some(proc_report.uid),
                gid: u32::try_from(proc_report.gid).ok(),
            },
            seccomp: policy_seccomp.as_ref().map(|_| POLICY_SECCOMP_PATH.to_string()),
            extra_seccomp: stack.then(|| EXTRA_SECCOMP_PATH.to_string()),
            proxy_bridge: bridge.then(|| Bridge {
                listen: format!("127.0.0.1:{}", policy.network.proxy.port),
                socket: format!("{PROXY_DIR}/{PROXY_SOCKET}"),
            }),
            notify: notify.map(|_| NOTIFY_PATH.to_string()),
            egress_guard: egress.is_some(),
        })
    };
    if init.is_some() {
        controls.push(Control {
            control: "init",
            by: "semble-init",
            detail: "verifies the above from inside, supervises the workload".into(),
        });
    }

    // --- annotations -------------------------------------------------------------------------
    let ann = obj(&mut cfg, "annotations")?;
    ann.insert(POLICY_ANNOTATION.into(), Value::String(name.clone()));
    ann.insert(BACKEND_ANNOTATION.into(), Value::String(inputs.backend.as_str().into()));

    Ok(Applied {
        config: cfg,
        init,
        extra_seccomp: if stack { extra_seccomp } else { None },
        policy_seccomp,
        backend_flags,
        controls,
        notes,
        notify,
        egress,
        pod_sandbox: is_pod_sandbox,
        in_pod: is_pod,
    })
}

/// The OCI name of the architecture this shim runs on.
fn native_arch() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Some("SCMP_ARCH_X86_64"),
        "aarch64" => Some("SCMP_ARCH_AARCH64"),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
