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
    let is_pod = annotations.contains_key(CRI_SANDBOX_ID) || annotations.contains_key(CRI_CONTAINER_TYPE);
    let is_pod_sandbox = annotations.get(CRI_CONTAINER_TYPE).map(String::as_str) == Some("sandbox");

    if cfg.get("process").is_none() {
        return Err(Refusal::Missing("process"));
    }
    if cfg.get("root").is_none() {
        return Err(Refusal::Missing("root"));
    }

    // --- privileged and host-level requests -------------------------------------------------
    check_privileged(&cfg, &name)?;
    check_mounts(&mut cfg, inputs, &annotations)?;
    check_sysctls(&cfg, &name)?;
    let (allowed_devices, device_controls) = check_devices(&cfg, policy, inputs.facts, inputs.devices)?;

    // --- namespaces and network -----------------------------------------------------------
    let net = apply_namespaces(&mut cfg, inputs, is_pod)?;
    controls.push(Control { control: "network", by: "runtime namespaces", detail: net.detail.clone() });
    let gvisor = inputs.backend == BackendKind::Runsc;
    // The proxy's own native sidecar (sidecar placement) is the pod's way out: its egress is
    // not cut. Who writes the pod spec decides what runs there; gateway placement trusts no one
    // in the pod (docs/security.md).
    let container_name = annotations.get(CRI_CONTAINER_NAME).or_else(|| annotations.get(CRIO_CONTAINER_NAME));
    let proxy_sidecar = is_pod
        && policy.network.mode == NetworkMode::Proxy
        && policy.network.proxy.placement == semble_policy::model::ProxyPlacement::Sidecar
        && container_name.map(String::as_str) == Some(PROXY_SIDECAR_NAME);
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
        let plan = semble_gvisor::plan(policy, &runsc.host, facts, runsc.platform.as_deref())
            .map_err(|e| Refusal::Gvisor(e.to_string()))?;
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
    let proc_report =
        apply_process(cfg.get_mut("process").ok_or(Refusal::Missing("process"))?, policy, inputs.facts, &allowed_caps)?;
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
    union_paths(linux, "maskedPaths", MASKED_PATHS);
    union_paths(linux, "readonlyPaths", READONLY_PATHS);
    controls.push(Control {
        control: "masked paths",
        by: "runtime",
        detail: format!("{} masked, {} read-only", MASKED_PATHS.len(), READONLY_PATHS.len()),
    });

    // --- cgroups ----------------------------------------------------------------------------
    let res_detail = apply_resources(linux, policy, &allowed_devices, &inputs.facts.nvidia_majors)?;
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
        });
        rs.net = rules;
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

fn bind(source: &Path, dest: &str, file: bool) -> Value {
    let mut options = vec!["bind", "ro", "nosuid", "nodev"];
    if !file {
        options.push("noexec");
    }
    json!({"destination": dest, "type": "bind", "source": source.to_string_lossy(), "options": options})
}

/// Under gVisor, enforce the `filesystem` section with mounts, placed before the engine's so
/// that its files under these paths (`/etc/hosts`…) stay on top. Returns a summary.
fn gvisor_filesystem_mounts(cfg: &mut Value, policy: &SandboxPolicy, r: &RunscInputs) -> Result<String, Refusal> {
    let mut mounted: Vec<String> = cfg
        .get("mounts")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(|x| x.get("destination").and_then(Value::as_str)).map(normalise).collect())
        .unwrap_or_default();
    // semble's own mount point comes later.
    mounted.push(MOUNT_DIR.to_string());
    let (mut hidden, mut ro) = (0, 0);
    let new: Vec<Value> = semble_gvisor::filesystem_mounts(policy, &r.root_entries, &mounted, &r.present)
        .iter()
        .map(|m| match m {
            semble_gvisor::FsMount::HideDir { path } => {
                hidden += 1;
                json!({"destination": path, "type": "tmpfs", "source": "tmpfs",
                       "options": ["ro", "nosuid", "nodev", "noexec", "mode=0000", "size=4096"]})
            }
            semble_gvisor::FsMount::ReadOnly { path, exec } => {
                ro += 1;
                let mut options = vec!["rbind", "ro", "nosuid", "nodev"];
                if !exec {
                    options.push("noexec");
                }
                json!({"destination": path, "type": "bind", "source": r.rootfs.join(path.trim_start_matches('/')),
                       "options": options})
            }
        })
        .collect();
    let list = cfg.as_object_mut().ok_or(Refusal::WrongType("(root)"))?.entry("mounts").or_insert_with(|| json!([]));
    let list = list.as_array_mut().ok_or(Refusal::WrongType("mounts"))?;
    let noexec = noexec_writable_mounts(list, policy)?;
    for (i, m) in new.into_iter().enumerate() {
        list.insert(i, m);
    }
    let mut summary = format!("{hidden} unlisted top-level directories hidden, {ro} read-only binds");
    if !noexec.is_empty() {
        summary.push_str(&format!(", noexec on the engine's {}", noexec.join(", ")));
    }
    Ok(summary)
}

/// Under gVisor a mount's options are the only execute control (there is no Landlock): the
/// engine's own mounts on the policy's `readWrite` paths (a pod's emptyDir on `/tmp` or
/// `/workspace`) get `noexec`, `nosuid` and `nodev`, unless an `execute` path lies on, under or
/// above them. Returns the destinations changed.
fn noexec_writable_mounts(list: &mut [Value], policy: &SandboxPolicy) -> Result<Vec<String>, Refusal> {
    let Some(fs) = &policy.filesystem else { return Ok(Vec::new()) };
    let within = |a: &str, b: &str| b == "/" || a == b || a.starts_with(&format!("{b}/"));
    let mut changed = Vec::new();
    for m in list.iter_mut() {
        let Some(dest) = m.get("destination").and_then(Value::as_str).map(normalise) else { continue };
        let writable = fs.read_write.iter().map(|p| normalise(p)).any(|p| p != "/" && within(&dest, &p));
        let runs_code = fs.execute.iter().map(|p| normalise(p)).any(|p| within(&dest, &p) || within(&p, &dest));
        if !writable || runs_code {
            continue;
        }
        let obj = m.as_object_mut().ok_or(Refusal::WrongType("mounts"))?;
        let options = obj.entry("options").or_insert_with(|| json!([]));
        let options = options.as_array_mut().ok_or(Refusal::WrongType("mounts[].options"))?;
        let mut added = false;
        for o in ["noexec", "nosuid", "nodev"] {
            let (on, off) = (o, &o[2..]);
            options.retain(|x| x.as_str() != Some(off));
            if !options.iter().any(|x| x.as_str() == Some(on)) {
                options.push(json!(on));
                added |= o == "noexec";
            }
        }
        if added {
            changed.push(dest);
        }
    }
    Ok(changed)
}

/// Environment variables pointing HTTP clients at the bridge.
pub fn proxy_env(port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}");
    vec![
        ("HTTP_PROXY".into(), url.clone()),
        ("HTTPS_PROXY".into(), url.clone()),
        ("http_proxy".into(), url.clone()),
        ("https_proxy".into(), url),
        ("NO_PROXY".into(), "localhost,127.0.0.1,::1".into()),
        ("no_proxy".into(), "localhost,127.0.0.1,::1".into()),
    ]
}

/// Set environment variables in a process, replacing earlier values.
pub fn set_env(process: &mut Map<String, Value>, vars: &[(String, String)]) {
    let env = process.entry("env").or_insert_with(|| json!([]));
    if !env.is_array() {
        *env = json!([]);
    }
    if let Value::Array(list) = env {
        for (k, v) in vars {
            let prefix = format!("{k}=");
            list.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
            list.push(Value::String(format!("{k}={v}")));
        }
    }
}

/// tmpfs sizes for writable paths the runtime did not mount: a quarter of the memory limit,
/// at most 1 GiB (tmpfs pages count against the container's memory).
fn scratch_size(policy: &SandboxPolicy) -> u64 {
    const DEFAULT: u64 = 256 << 20;
    policy.resources.memory.map(|m| (m / 4).clamp(16 << 20, 1 << 30)).unwrap_or(DEFAULT)
}

/// With a read-only root, the policy's `readWrite` paths would not be writable unless something
/// is mounted there: mount a tmpfs (nosuid, nodev, noexec) on each that has no mount yet.
fn add_scratch_mounts(cfg: &mut Value, policy: &SandboxPolicy, uid: u32, gid: u64) -> Result<Vec<String>, Refusal> {
    let Some(fs) = &policy.filesystem else {
        return Ok(Vec::new());
    };
    let root = cfg.as_object_mut().ok_or(Refusal::WrongType("(root)"))?;
    let mounts = root.entry("mounts").or_insert_with(|| json!([]));
    let mounts = mounts.as_array_mut().ok_or(Refusal::WrongType("mounts"))?;
    let existing: Vec<String> =
        mounts.iter().filter_map(|m| m.get("destination").and_then(Value::as_str)).map(normalise).collect();
    let size = scratch_size(policy);
    let mut added = Vec::new();
    for p in &fs.read_write {
        let covered = existing.iter().any(|d| d != "/" && (d == p || p.starts_with(&format!("{d}/"))));
        if covered || p == "/" {
            continue;
        }
        let mut options = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
        if matches!(p.as_str(), "/tmp" | "/var/tmp" | "/dev/shm") {
            options.push("mode=1777".into());
        } else {
            options.extend(["mode=0755".to_string(), format!("uid={uid}"), format!("gid={gid}")]);
        }
        options.push(format!("size={size}"));
        mounts.push(json!({"destination": p, "type": "tmpfs", "source": "tmpfs", "options": options}));
        added.push(format!("{p} ({})", semble_policy::quantity::format_bytes(size)));
    }
    Ok(added)
}

fn union_paths(linux: &mut Map<String, Value>, key: &str, add: &[&str]) {
    let entry = linux.entry(key.to_string()).or_insert_with(|| json!([]));
    if !entry.is_array() {
        *entry = json!([]);
    }
    if let Value::Array(list) = entry {
        for p in add {
            if !list.iter().any(|v| v.as_str() == Some(p)) {
                list.push(json!(p));
            }
        }
    }
}

/// A unique-enough MCS category pair derived from the container ID.
fn auto_level(id: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    let a = h % 1024;
    let mut b = (h >> 20) % 1024;
    if a == b {
        b = (b + 1) % 1024;
    }
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    format!("s0:c{lo},c{hi}")
}

fn check_privileged(cfg: &Value, policy: &str) -> Result<(), Refusal> {
    if let Some(devs) = cfg.pointer("/linux/resources/devices").and_then(Value::as_array) {
        for d in devs {
            let allow = d.get("allow").and_then(Value::as_bool).unwrap_or(false);
            let kind = d.get("type").and_then(Value::as_str).unwrap_or("a");
            if allow && kind == "a" && d.get("major").is_none() && d.get("minor").is_none() {
                return Err(Refusal::Privileged("every device is allowed".into(), policy.into()));
            }
        }
    }
    if let Some(b) = cap_names(cfg.pointer("/process/capabilities/bounding")) {
        if ["CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO"].iter().all(|c| b.contains(*c)) {
            return Err(Refusal::Privileged("every capability is requested".into(), policy.into()));
        }
    }
    Ok(())
}

fn normalise(p: &str) -> String {
    crate::mounts::normalise(p)
}

/// Judge every mount: types, reserved destinations, and each bind source by the object it
/// resolves to ([`crate::mounts`]); bind sources are rewritten to their real paths and the
/// kernel's view of the host (`sysfs`, `cgroup`) is made read-only.
fn check_mounts(cfg: &mut Value, inputs: &Inputs<'_>, annotations: &BTreeMap<String, String>) -> Result<(), Refusal> {
    use crate::mounts::{is_bind, is_read_only, judge_source, judge_type, Owner, Source};
    let policy = inputs.policy.name.clone();
    let owner = Owner {
        id: inputs.id,
        sandbox: annotations.get(CRI_SANDBOX_ID).map(String::as_str),
        pod_uid: annotations.get(CRI_SANDBOX_UID).or_else(|| annotations.get(CRIO_POD_UID)).map(String::as_str),
        gpu: inputs.policy.devices.gpu.is_some(),
    };
    let Some(mounts) = cfg.get_mut("mounts").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let mut seen_proc = false;
    for m in mounts.iter_mut() {
        let dest = m.get("destination").and_then(Value::as_str).unwrap_or("").to_string();
        let d = normalise(&dest);
        if d == MOUNT_DIR || d.starts_with(&format!("{MOUNT_DIR}/")) {
            return Err(Refusal::Reserved(dest));
        }
        judge_type(m, &mut seen_proc).map_err(|why| Refusal::MountType(policy.clone(), why))?;
        let kind = m.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        if matches!(kind.as_str(), "sysfs" | "cgroup" | "cgroup2") && !is_read_only(m) {
            if let Some(o) = m.as_object_mut() {
                let opts = o.entry("options").or_insert_with(|| json!([]));
                if let Some(list) = opts.as_array_mut() {
                    list.retain(|x| x.as_str() != Some("rw"));
                    list.push(json!("ro"));
                }
            }
        }
        if !is_bind(m) {
            continue;
        }
        let src = m.get("source").and_then(Value::as_str).unwrap_or("").to_string();
        let refuse = |why: String| Refusal::Mount(src.clone(), dest.clone(), policy.clone(), why);
        let real = match inputs.sources.get(&src) {
            Some(Source::Resolved { real, unsafe_ancestor: None }) => real.clone(),
            Some(Source::Resolved { unsafe_ancestor: Some(why), .. }) => {
                return Err(refuse(format!("another user could swap a directory on its way before the runtime mounts it ({why}); mount a path whose directories only root can change")))
            }
            Some(Source::Refused(why)) => return Err(refuse(why.clone())),
            None => return Err(refuse("it was not examined on this host".into())),
        };
        judge_source(&real, is_read_only(m), &owner)
            .map_err(|why| refuse(format!("{why}; mount a narrower directory")))?;
        m["source"] = json!(real.to_string_lossy());
    }
    Ok(())
}

fn check_sysctls(cfg: &Value, policy: &str) -> Result<(), Refusal> {
    if let Some(s) = cfg.pointer("/linux/sysctl").and_then(Value::as_object) {
        for k in s.keys() {
            if !semble_policy::facts::is_safe_sysctl_newest(k) {
                return Err(Refusal::Sysctl(k.clone(), policy.into()));
            }
        }
    }
    Ok(())
}

/// `(type, major, minor)` of devices the container may use.
type DeviceId = (String, i64, Option<i64>);

/// The host's device nodes at the paths a configuration's `linux.devices` names: the type
/// (`c`, `b`) and numbers of each, `None` where the host has no device node there.
pub type HostDevices = BTreeMap<String, Option<(String, i64, i64)>>;

/// Look at the host's `/dev` for each device a configuration asks for (I/O; the merge is pure).
pub fn host_devices(cfg: &Value) -> HostDevices {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = HostDevices::new();
    for d in cfg.pointer("/linux/devices").and_then(Value::as_array).into_iter().flatten() {
        let Some(path) = d.get("path").and_then(Value::as_str) else { continue };
        let node = std::fs::symlink_metadata(path).ok().and_then(|m| {
            let t = m.file_type();
            let kind = if t.is_char_device() {
                "c"
            } else if t.is_block_device() {
                "b"
            } else {
                return None;
            };
            let rdev = m.rdev();
            Some((
                kind.to_string(),
                i64::try_from(nix::sys::stat::major(rdev)).unwrap_or(-1),
                i64::try_from(nix::sys::stat::minor(rdev)).unwrap_or(-1),
            ))
        });
        out.insert(path.to_string(), node);
    }
    out
}

/// Whether `path` is one of the NVIDIA driver's device node names.
pub fn is_nvidia_name(path: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some(rest) = path.strip_prefix("/dev/nvidia") else { return false };
    digits(rest)
        || matches!(rest, "ctl" | "-uvm" | "-uvm-tools" | "-modeset" | "-nvswitchctl")
        || rest.strip_prefix("-caps/nvidia-cap").is_some_and(digits)
        || rest.strip_prefix("-nvswitch").is_some_and(digits)
}

fn check_devices(
    cfg: &Value,
    policy: &SandboxPolicy,
    facts: &HostFacts,
    host: &HostDevices,
) -> Result<(Vec<DeviceId>, Vec<Control>), Refusal> {
    let mut allowed = Vec::new();
    let mut names = Vec::new();
    let refuse = |path: &str, why: String| Refusal::DeviceNumber(path.into(), policy.name.clone(), why);
    if let Some(devs) = cfg.pointer("/linux/devices").and_then(Value::as_array) {
        for d in devs {
            let path = d.get("path").and_then(Value::as_str).unwrap_or("");
            let kind = d.get("type").and_then(Value::as_str).unwrap_or("").to_string();
            let major = d.get("major").and_then(Value::as_i64);
            let minor = d.get("minor").and_then(Value::as_i64);
            let (Some(major), Some(minor)) = (major, minor) else {
                return Err(refuse(path, "it has no device number; give its type, major and minor".into()));
            };
            if policy.devices.gpu.is_some() && is_nvidia_name(path) {
                if kind != "c" || !facts.nvidia_majors.contains(&major) {
                    let majors: Vec<String> = facts.nvidia_majors.iter().map(ToString::to_string).collect();
                    return Err(refuse(
                        path,
                        format!(
                            "`{kind} {major}:{minor}` is not an NVIDIA device (a character device with major {})",
                            majors.join(" or ")
                        ),
                    ));
                }
            } else if policy.devices.allow.iter().any(|a| a.path == path) {
                match host.get(path).cloned().flatten() {
                    Some((hk, hmaj, hmin)) if hk == kind && hmaj == major && hmin == minor => {}
                    Some((hk, hmaj, hmin)) => {
                        return Err(refuse(
                            path,
                            format!(
                            "the request says `{kind} {major}:{minor}` and the host's `{path}` is `{hk} {hmaj}:{hmin}`"
                        ),
                        ))
                    }
                    None => {
                        return Err(refuse(
                            path,
                            format!("the host has no device node `{path}` to check its number against"),
                        ))
                    }
                }
            } else {
                return Err(Refusal::Device(path.into(), policy.name.clone()));
            }
            allowed.push((kind, major, Some(minor)));
            names.push(path.to_string());
        }
    }
    let mut controls = Vec::new();
    if !names.is_empty() || policy.devices.gpu.is_some() {
        let mut detail = names.join(", ");
        if policy.devices.gpu.is_some() {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            let majors: Vec<String> = facts.nvidia_majors.iter().map(ToString::to_string).collect();
            detail.push_str(&format!("NVIDIA (char majors {})", majors.join(", ")));
        }
        controls.push(Control { control: "devices", by: "runtime (device cgroup)", detail });
    }
    Ok((allowed, controls))
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a.filter(|v| *v > 0), b.filter(|v| *v > 0)) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn apply_resources(
    linux: &mut Map<String, Value>,
    policy: &SandboxPolicy,
    allowed: &[DeviceId],
    nvidia_majors: &std::collections::BTreeSet<i64>,
) -> Result<String, Refusal> {
    let res = linux.entry("resources").or_insert_with(|| json!({}));
    if res.is_null() {
        *res = json!({});
    }
    let res = res.as_object_mut().ok_or(Refusal::WrongType("linux.resources"))?;
    let r = &policy.resources;
    let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut detail = Vec::new();

    let mem = res.entry("memory").or_insert_with(|| json!({}));
    if let Some(m) = mem.as_object_mut() {
        let limit = min_opt(m.get("limit").and_then(Value::as_i64), r.memory.map(to_i64));
        if let Some(l) = limit {
            m.insert("limit".into(), json!(l));
            let swap = min_opt(m.get("swap").and_then(Value::as_i64), Some(l)).unwrap_or(l);
            m.insert("swap".into(), json!(swap.max(l)));
            detail.push(format!("memory {}", semble_policy::quantity::format_bytes(u64::try_from(l).unwrap_or(0))));
        }
    }
    if let Some(policy_m) = r.cpu {
        let cpu = res.entry("cpu").or_insert_with(|| json!({}));
        if let Some(c) = cpu.as_object_mut() {
            let period = c
                .get("period")
                .and_then(Value::as_u64)
                .filter(|p| *p > 0)
                .unwrap_or(semble_policy::compile::oci::CPU_PERIOD_US);
            let policy_quota = to_i64(policy_m.saturating_mul(period) / 1000);
            let quota = min_opt(c.get("quota").and_then(Value::as_i64), Some(policy_quota)).unwrap_or(policy_quota);
            c.insert("period".into(), json!(period));
            c.insert("quota".into(), json!(quota));
            detail.push(format!("cpu quota {quota}/{period}us"));
        }
    }
    if let Some(p) = r.pids {
        let pids = res.entry("pids").or_insert_with(|| json!({}));
        if let Some(o) = pids.as_object_mut() {
            let limit = min_opt(o.get("limit").and_then(Value::as_i64), Some(i64::from(p))).unwrap_or(i64::from(p));
            o.insert("limit".into(), json!(limit));
            detail.push(format!("pids {limit}"));
        }
    }
    // Devices: deny everything, then allow only what the policy justifies.
    let incoming = res.get("devices").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut devices = vec![json!({"allow": false, "access": "rwm"})];
    for d in incoming {
        if !d.get("allow").and_then(Value::as_bool).unwrap_or(false) {
            continue;
        }
        let kind = d.get("type").and_then(Value::as_str).unwrap_or("a");
        let major = d.get("major").and_then(Value::as_i64);
        let minor = d.get("minor").and_then(Value::as_i64);
        // Exactly a device the container was given; or, for a GPU policy, an NVIDIA major.
        let ok =
            major.is_some_and(|maj| {
                allowed.iter().any(|(k, am, an)| k == kind && *am == maj && minor.is_some() && *an == minor)
            }) || (policy.devices.gpu.is_some() && kind == "c" && major.is_some_and(|m| nvidia_majors.contains(&m)));
        if ok {
            devices.push(d);
        }
    }
    if policy.devices.gpu.is_some() {
        for m in nvidia_majors {
            let rule = json!({"allow": true, "type": "c", "major": m, "access": "rwm"});
            if !devices.contains(&rule) {
                devices.push(rule);
            }
        }
    }
    for (kind, major, minor) in allowed {
        let rule = match minor {
            Some(mi) => {
                json!({"allow": true, "type": kind, "major": major, "minor": mi, "access": "rwm"})
            }
            None => json!({"allow": true, "type": kind, "major": major, "access": "rwm"}),
        };
        if !devices.contains(&rule) {
            devices.push(rule);
        }
    }
    res.insert("devices".into(), Value::Array(devices));
    Ok(if detail.is_empty() { "none set".into() } else { detail.join(", ") })
}

/// Decisions about the network namespace.
#[derive(Debug, Clone)]
struct NetPlan {
    /// A namespace with interfaces, prepared by the engine, is kept.
    kept: bool,
    detail: String,
    note: Option<String>,
    cut_by_landlock: bool,
}

fn ns_is_host(path: &str, facts: &HostFacts, kind: &str) -> bool {
    match (crate::host::ns_id(Path::new(path)), facts.host_namespaces.get(kind)) {
        (Some(a), Some(b)) => a == *b,
        _ => false,
    }
}

fn apply_namespaces(cfg: &mut Value, inputs: &Inputs<'_>, is_pod: bool) -> Result<NetPlan, Refusal> {
    let name = inputs.policy.name.clone();
    let linux = obj(cfg, "linux")?;
    let ns = linux.entry("namespaces").or_insert_with(|| json!([]));
    let list = ns.as_array_mut().ok_or(Refusal::WrongType("linux.namespaces"))?;
    let find =
        |list: &Vec<Value>, kind: &str| list.iter().position(|n| n.get("type").and_then(Value::as_str) == Some(kind));
    for kind in ["pid", "ipc", "mount"] {
        match find(list, kind) {
            None => return Err(Refusal::HostNamespace(kind.into(), name)),
            Some(i) => {
                if let Some(p) = list[i].get("path").and_then(Value::as_str) {
                    if ns_is_host(p, inputs.facts, kind) {
                        return Err(Refusal::HostNamespace(kind.into(), name));
                    }
                }
            }
        }
    }
    let net_idx = find(list, "network");
    let net_path = net_idx.and_then(|i| list[i].get("path").and_then(Value::as_str).map(str::to_string));
    let host_net = net_idx.is_none() || net_path.as_deref().is_some_and(|p| ns_is_host(p, inputs.facts, "network"));
    let policy = inputs.policy;
    let fresh = json!({"type": "network"});
    match policy.network.mode {
        NetworkMode::Open => {
            if host_net {
                return Err(Refusal::HostNetwork(name));
            }
            Ok(NetPlan {
                kept: net_path.is_some(),
                detail: "the runtime's network namespace (mode open)".into(),
                note: None,
                cut_by_landlock: false,
            })
        }
        NetworkMode::None | NetworkMode::Proxy => {
            let mode = policy.network.mode.as_str();
            if host_net {
                match net_idx {
                    Some(i) => list[i] = fresh,
                    None => list.push(fresh),
                }
                return Ok(NetPlan {
                    kept: false,
                    detail: "private namespace, loopback only".into(),
                    note: Some(format!("network: the host's network namespace was replaced by a private one (policy `{name}`, mode `{mode}`)")),
                    cut_by_landlock: false,
                });
            }
            match (net_idx, net_path) {
                (Some(i), Some(_)) if !is_pod && policy.network.ingress.is_empty() => {
                    list[i] = fresh;
                    Ok(NetPlan {
                        kept: false,
                        detail: "private namespace, loopback only".into(),
                        note: Some(format!("network: the runtime's network namespace was replaced by a private one (policy `{name}`, mode `{mode}`, no ingress)")),
                        cut_by_landlock: false,
                    })
                }
                (Some(_), Some(_)) => Ok(NetPlan {
                    kept: true,
                    detail: format!("the {} network namespace, kept for ingress; egress cut by the egress guard (and TCP by Landlock), other IP sockets by seccomp", if is_pod { "pod's" } else { "runtime's" }),
                    note: None,
                    cut_by_landlock: true,
                }),
                _ => Ok(NetPlan { kept: false, detail: "private namespace, loopback only".into(), note: None, cut_by_landlock: false }),
            }
        }
    }
}

/// What [`apply_process`] did.
#[derive(Debug, Clone)]
pub struct ProcessReport {
    /// Final uid.
    pub uid: u32,
    /// Final gid.
    pub gid: u64,
    /// `uid N gid M`.
    pub user: String,
    /// Final no_new_privs.
    pub nnp: bool,
    /// Limits set.
    pub rlimits: Vec<String>,
}

/// Apply the process part of the policy (also used for `exec` processes).
pub fn apply_process(
    process: &mut Value,
    policy: &SandboxPolicy,
    facts: &HostFacts,
    allowed_caps: &BTreeSet<String>,
) -> Result<ProcessReport, Refusal> {
    let p = process.as_object_mut().ok_or(Refusal::WrongType("process"))?;
    // User.
    let user = p.entry("user").or_insert_with(|| json!({"uid": 0, "gid": 0}));
    let user = user.as_object_mut().ok_or(Refusal::WrongType("process.user"))?;
    if let Some(uid) = policy.process.user {
        user.insert("uid".into(), json!(uid));
        user.insert("gid".into(), json!(policy.process.group.unwrap_or(uid)));
        if policy.process.supplementary_groups.is_empty() {
            user.remove("additionalGids");
        } else {
            user.insert("additionalGids".into(), json!(policy.process.supplementary_groups));
        }
    } else if let Some(gid) = policy.process.group {
        user.insert("gid".into(), json!(gid));
    }
    let uid = user.get("uid").and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let gid = user.get("gid").and_then(Value::as_u64).unwrap_or(0);
    if uid == 0 && policy.process.run_as_non_root {
        return Err(Refusal::Root(policy.name.clone()));
    }
    // Capabilities: every set is the allowed set (ambient makes them effective for non-root).
    let caps: Vec<Value> = allowed_caps.iter().map(|c| json!(c)).collect();
    let mut set = Map::new();
    for k in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
        set.insert(k.into(), Value::Array(caps.clone()));
    }
    p.insert("capabilities".into(), Value::Object(set));
    // no_new_privs: the policy's, or the request's when it is stricter.
    let nnp = policy.process.no_new_privileges || p.get("noNewPrivileges").and_then(Value::as_bool).unwrap_or(false);
    p.insert("noNewPrivileges".into(), Value::Bool(nnp));
    // rlimits: the lower of request, policy and what this host can grant.
    let mut report = Vec::new();
    let rl = p.entry("rlimits").or_insert_with(|| json!([]));
    if !rl.is_array() {
        *rl = json!([]);
    }
    if let Value::Array(list) = rl {
        for (kind, v) in &policy.process.rlimits {
            let name = kind.oci_name();
            let cap = facts.hard_limits.get(kind).copied().unwrap_or(u64::MAX);
            let existing = list.iter_mut().find(|e| e.get("type").and_then(Value::as_str) == Some(name.as_str()));
            let (soft, hard) = match &existing {
                Some(e) => {
                    let s = e.get("soft").and_then(Value::as_u64).unwrap_or(u64::MAX);
                    let h = e.get("hard").and_then(Value::as_u64).unwrap_or(u64::MAX);
                    (s.min(v.soft).min(cap), h.min(v.hard).min(cap))
                }
                None => (v.soft.min(cap), v.hard.min(cap)),
            };
            let soft = soft.min(hard);
            let entry = json!({"type": name, "soft": soft, "hard": hard});
            match existing {
                Some(e) => *e = entry,
                None => list.push(entry),
            }
            report.push(format!("{name} {soft}/{hard}"));
        }
    }
    Ok(ProcessReport { uid, gid, user: format!("uid {uid} gid {gid}"), nnp, rlimits: report })
}

/// Whether a capability name (OCI form) is one the policy grants.
pub fn granted_names(policy: &SandboxPolicy) -> BTreeSet<String> {
    policy.capabilities.granted().iter().map(|c: &Capability| c.oci_name()).collect()
}

#[cfg(test)]
mod tests;
