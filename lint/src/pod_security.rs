//! Pod Security Standards, decided exactly as upstream `pod-security-admission` decides them, for
//! the policy version a pod's namespace is held to.
//!
//! The admission controller is a registry of checks (`staging/src/k8s.io/pod-security-admission/
//! policy/check_*.go`); each check has one function per policy version that changed it, and a
//! namespace is evaluated at `pod-security.kubernetes.io/enforce-version` (`latest` when unset).
//! This module mirrors that registry check for check and version for version:
//!
//! | check | level | versions | rule |
//! |---|---|---|---|
//! | `hostNamespaces` | baseline | 1.0 | SB002 |
//! | `privileged` | baseline | 1.0 | SB001 |
//! | `capabilities_baseline` | baseline | 1.0 | SB005 |
//! | `hostPathVolumes` | baseline | 1.0 | SB003 |
//! | `hostPorts` | baseline | 1.0 | SB004 |
//! | `appArmorProfile` | baseline | 1.0 (fields and annotations) | SB018 |
//! | `seLinuxOptions` | baseline | 1.0, 1.31 (`container_engine_t`) | SB019 |
//! | `procMount` | baseline | 1.0, 1.35 (relaxed for `hostUsers: false`) | SB016 |
//! | `seccompProfile_baseline` | baseline | 1.0 (annotations), 1.19 (fields) | SB008 |
//! | `sysctls` | baseline | 1.0, 1.27, 1.29, 1.32, 1.37 ([`semble_policy::facts::SAFE_SYSCTLS`]) | SB017 |
//! | `windowsHostProcess` | baseline | 1.0 | SB027 |
//! | `hostProbesAndHostLifecycle` | baseline | 1.34 | SB026 |
//! | `restrictedVolumes` | restricted | 1.0 (overrides `hostPathVolumes`) | SB023 |
//! | `allowPrivilegeEscalation` | restricted | 1.8, 1.25 (Windows pods exempt) | SB006 |
//! | `runAsNonRoot` | restricted | 1.0, 1.35 (skipped for `hostUsers: false`) | SB007 |
//! | `runAsUser` | restricted | 1.23, 1.35 (skipped for `hostUsers: false`) | SB028 |
//! | `seccompProfile_restricted` | restricted | 1.19, 1.25 (Windows pods exempt; overrides the baseline check) | SB008, SB009 |
//! | `capabilities_restricted` | restricted | 1.22, 1.25 (Windows pods exempt; overrides the baseline check) | SB005, SB025 |
//! | `procMount_restricted` | restricted | 1.35 (overrides `procMount`) | SB016 |
//!
//! A version newer than the newest one known here is evaluated as the newest, as the admission
//! controller clamps to its own newest policy. Containers are every container the pod has:
//! init containers (native sidecars included: Pod Security makes no exception for them),
//! containers and ephemeral containers. Values compare exactly as written (`chown` is not
//! `CHOWN`).
//!
//! Findings: what fails `baseline` is an error; what passes `baseline` and fails `restricted` is a
//! warning. Each finding is placed on the field that fails (or on the container or context that
//! lacks a required one) and carries the upstream check it comes from, so a pod the admission
//! controller accepts at `restricted` has no Pod Security finding and a pod it rejects has one.

use std::fmt;

use semble_policy::diag::Pos;
use semble_policy::facts;
use semble_policy::yaml::Node;

use crate::context::{str_of, Ctx};
use crate::rules::Level;

/// A field of a mapping, as the API server decodes it: an explicit `null` is the field unset.
fn get<'a>(n: &'a Node, key: &str) -> Option<&'a Node> {
    crate::context::get(n, key).filter(|v| !v.is_null())
}

/// The newest Pod Security policy version this module knows (`v1.NEWEST_MINOR`).
pub const NEWEST_MINOR: u32 = 37;

/// A Pod Security policy version, `v1.MINOR` (the admission controller's versions have major 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PssVersion {
    minor: u32,
}

impl PssVersion {
    /// The newest version known (`latest`).
    pub const LATEST: PssVersion = PssVersion { minor: NEWEST_MINOR };

    /// `v1.MINOR`, clamped to the newest version known, as the admission controller clamps.
    pub fn new(minor: u32) -> PssVersion {
        PssVersion { minor: minor.min(NEWEST_MINOR) }
    }

    /// The minor version.
    pub fn minor(self) -> u32 {
        self.minor
    }

    /// A version as the command line takes it: `latest`, `v1.32` or `1.32`.
    pub fn parse(s: &str) -> Result<PssVersion, String> {
        let t = s.trim();
        if t == "latest" {
            return Ok(PssVersion::LATEST);
        }
        let minor = t
            .strip_prefix('v')
            .unwrap_or(t)
            .strip_prefix("1.")
            .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) && (m.len() == 1 || !m.starts_with('0')))
            .and_then(|m| m.parse::<u32>().ok());
        match minor {
            Some(m) => Ok(PssVersion::new(m)),
            None => Err(format!("`{s}` is not a Kubernetes version; write `latest` or `v1.MINOR` (e.g. `v1.32`)")),
        }
    }

    /// A version as the namespace label `pod-security.kubernetes.io/enforce-version` takes it:
    /// `latest` or `v1.MINOR` exactly (upstream `api.ParseVersion`); `None` for anything else.
    pub fn parse_label(s: &str) -> Option<PssVersion> {
        if s == "latest" {
            return Some(PssVersion::LATEST);
        }
        let m = s.strip_prefix("v1.")?;
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit()) || (m.len() > 1 && m.starts_with('0')) {
            return None;
        }
        m.parse::<u32>().ok().map(PssVersion::new)
    }

    fn at_least(self, minor: u32) -> bool {
        self.minor >= minor
    }
}

impl Default for PssVersion {
    fn default() -> PssVersion {
        PssVersion::LATEST
    }
}

impl fmt::Display for PssVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}", self.minor)
    }
}

/// The Pod Security check behind a finding (carried in JSON and SARIF).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PodSecurity {
    /// The upstream check ID (`capabilities_baseline`, `runAsNonRoot`, …).
    pub check: &'static str,
    /// `baseline` or `restricted`: the lowest level that rejects the pod for this.
    pub level: &'static str,
    /// The policy version the pod was evaluated at (`v1.37`).
    pub version: String,
}

/// A pod, or the pod template of a workload: what Pod Security reads.
pub(crate) struct Pod<'a> {
    /// The pod's (or template's) metadata: its annotations are checked.
    pub meta: Option<&'a Node>,
    /// The pod spec.
    pub spec: &'a Node,
}

/// A container of the pod, with what to call it.
struct Container<'a> {
    node: &'a Node,
    name: String,
}

impl Container<'_> {
    fn sc(&self, key: &str) -> Option<&Node> {
        get(self.node, "securityContext").and_then(|s| get(s, key))
    }
    fn what(&self) -> String {
        format!("container `{}`", self.name)
    }
    /// Where a missing security field belongs: the container's securityContext, else the container.
    fn sc_pos(&self) -> Pos {
        get(self.node, "securityContext").map_or(self.node.pos, |s| s.pos)
    }
}

/// Every container, in the admission controller's order: init containers, containers, ephemeral
/// containers.
fn containers(spec: &Node) -> Vec<Container<'_>> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| get(spec, k).and_then(Node::as_seq).unwrap_or(&[]).iter())
        .map(|c| Container { node: c, name: str_of(get(c, "name")).unwrap_or_default() })
        .collect()
}

struct Checker<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    version: PssVersion,
    /// A `semble.dev/privileged-reason` annotation turns SB001 into a warning.
    privileged_reason: bool,
}

impl Checker<'_, '_> {
    fn report(
        &mut self,
        id: &'static str,
        level: Level,
        pos: Pos,
        check: &'static str,
        pss: &'static str,
        msg: String,
    ) {
        let tag = PodSecurity { check, level: pss, version: self.version.to_string() };
        let message = format!("{msg} (Pod Security {pss} {}, `{check}`)", self.version);
        self.ctx.add_pss(id, level, pos, message, tag);
    }
    fn baseline(&mut self, id: &'static str, pos: Pos, check: &'static str, msg: String) {
        self.report(id, Level::Error, pos, check, "baseline", msg);
    }
    fn restricted(&mut self, id: &'static str, pos: Pos, check: &'static str, msg: String) {
        self.report(id, Level::Warning, pos, check, "restricted", msg);
    }
}

/// `spec.os.name: windows`: the 1.25 versions of three restricted checks exempt these pods.
fn is_windows(spec: &Node) -> bool {
    get(spec, "os").and_then(|o| get(o, "name")).and_then(Node::as_str) == Some("windows")
}

/// `spec.hostUsers: false`: the pod runs in a user namespace; the 1.35 versions of `procMount`
/// (baseline), `runAsNonRoot` and `runAsUser` skip such pods.
fn in_user_namespace(spec: &Node) -> bool {
    get(spec, "hostUsers").and_then(Node::as_bool) == Some(false)
}

/// Check one pod at `version`.
pub(crate) fn check(ctx: &mut Ctx, pod: &Pod, version: PssVersion, privileged_reason: bool) {
    let mut c = Checker { ctx, version, privileged_reason };
    let spec = pod.spec;
    let cs = containers(spec);
    let windows = is_windows(spec);
    let userns = in_user_namespace(spec);

    // ---- baseline ----
    host_namespaces(&mut c, spec);
    privileged(&mut c, &cs);
    capabilities(&mut c, &cs, windows);
    host_path_volumes(&mut c, spec);
    host_ports(&mut c, &cs);
    app_armor(&mut c, pod, &cs);
    se_linux(&mut c, spec, &cs);
    proc_mount(&mut c, &cs, userns);
    seccomp(&mut c, pod, &cs, windows);
    sysctls(&mut c, spec);
    windows_host_process(&mut c, spec, &cs);
    if version.at_least(34) {
        host_probes(&mut c, &cs);
    }
    // ---- restricted ----
    restricted_volumes(&mut c, spec);
    if version.at_least(8) && !(version.at_least(25) && windows) {
        allow_privilege_escalation(&mut c, &cs);
    }
    if !(version.at_least(35) && userns) {
        run_as_non_root(&mut c, spec, &cs);
        if version.at_least(23) {
            run_as_user(&mut c, spec, &cs);
        }
    }
}

fn host_namespaces(c: &mut Checker, spec: &Node) {
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if let Some(n) = get(spec, key).filter(|n| n.as_bool() == Some(true)) {
            c.baseline("SB002", n.pos, "hostNamespaces", format!("{key}: true shares the node's namespace"));
        }
    }
}

fn privileged(c: &mut Checker, cs: &[Container]) {
    for k in cs {
        if let Some(p) = k.sc("privileged").filter(|p| p.as_bool() == Some(true)) {
            let (level, why) = if c.privileged_reason {
                (Level::Warning, " (a `semble.dev/privileged-reason` is annotated)")
            } else {
                (Level::Error, " without a `semble.dev/privileged-reason` annotation")
            };
            let msg = format!("{} is privileged{why}", k.what());
            c.report("SB001", level, p.pos, "privileged", "baseline", msg);
        }
    }
}

/// `capabilities_baseline` (exact names from the default set, minus NET_RAW) and, from 1.22,
/// `capabilities_restricted` (drop `ALL`; add nothing but `NET_BIND_SERVICE`; Windows pods exempt
/// from 1.25). An added capability the baseline forbids is reported once, as the baseline error.
fn capabilities(c: &mut Checker, cs: &[Container], windows: bool) {
    let restricted = c.version.at_least(22) && !(c.version.at_least(25) && windows);
    for k in cs {
        let caps = k.sc("capabilities");
        for a in caps.and_then(|x| get(x, "add")).and_then(Node::as_seq).unwrap_or(&[]) {
            let name = a.scalar_text().unwrap_or_default();
            if !facts::KUBERNETES_BASELINE_CAPABILITIES.contains(&name.as_str()) {
                let msg = format!(
                    "{} adds capability `{name}`; only {} may be added, spelled exactly so",
                    k.what(),
                    facts::KUBERNETES_BASELINE_CAPABILITIES.join(", ")
                );
                c.baseline("SB005", a.pos, "capabilities_baseline", msg);
            } else if restricted && name != "NET_BIND_SERVICE" {
                let msg = format!("{} adds capability `{name}`; restricted allows only NET_BIND_SERVICE", k.what());
                c.restricted("SB025", a.pos, "capabilities_restricted", msg);
            }
        }
        if restricted {
            let drops_all = caps
                .and_then(|x| get(x, "drop"))
                .and_then(Node::as_seq)
                .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL")));
            if !drops_all {
                let pos = caps.map_or(k.sc_pos(), |n| n.pos);
                let msg = format!("{} keeps the runtime's default capabilities (no `drop: [ALL]`)", k.what());
                c.restricted("SB025", pos, "capabilities_restricted", msg);
            }
        }
    }
}

fn volume_name(v: &Node) -> String {
    str_of(get(v, "name")).unwrap_or_default()
}

fn host_path_volumes(c: &mut Checker, spec: &Node) {
    for v in get(spec, "volumes").and_then(Node::as_seq).unwrap_or(&[]) {
        if let Some(h) = get(v, "hostPath") {
            let p = str_of(get(h, "path")).unwrap_or_default();
            c.baseline("SB003", h.pos, "hostPathVolumes", format!("volume `{}` mounts the node's {p}", volume_name(v)));
        }
    }
}

fn host_ports(c: &mut Checker, cs: &[Container]) {
    for k in cs {
        for p in get(k.node, "ports").and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(hp) = get(p, "hostPort").filter(|h| h.as_i64() != Some(0)) {
                let msg = format!("{} binds hostPort {}", k.what(), hp.scalar_text().unwrap_or_default());
                c.baseline("SB004", hp.pos, "hostPorts", msg);
            }
        }
    }
}

fn app_armor(c: &mut Checker, pod: &Pod, cs: &[Container]) {
    let ok_type = |t: Option<&str>| matches!(t, Some("RuntimeDefault") | Some("Localhost"));
    let mut fields: Vec<(String, &Node)> = Vec::new();
    if let Some(p) = get(pod.spec, "securityContext").and_then(|s| get(s, "appArmorProfile")) {
        fields.push(("the pod".into(), p));
    }
    for k in cs {
        if let Some(p) = k.sc("appArmorProfile") {
            fields.push((k.what(), p));
        }
    }
    for (what, p) in fields {
        let t = get(p, "type");
        if !ok_type(t.and_then(Node::as_str)) {
            let shown = t.and_then(Node::scalar_text).unwrap_or_default();
            let msg = format!("{what} sets appArmorProfile.type `{shown}`; allowed are RuntimeDefault and Localhost");
            c.baseline("SB018", t.map_or(p.pos, |n| n.pos), "appArmorProfile", msg);
        }
    }
    for (k, v) in annotation_entries(pod.meta) {
        if k.name.starts_with("container.apparmor.security.beta.kubernetes.io/") {
            let val = v.scalar_text().unwrap_or_default();
            if !(val.is_empty() || val == "runtime/default" || val.starts_with("localhost/")) {
                let msg = format!("annotation {}: `{val}`; allowed are runtime/default and localhost/*", k.name);
                c.baseline("SB018", v.pos, "appArmorProfile", msg);
            }
        }
    }
}

fn annotation_entries(meta: Option<&Node>) -> Vec<(&semble_policy::yaml::Key, &Node)> {
    meta.and_then(|m| get(m, "annotations")).and_then(Node::as_map).map(|m| m.iter().collect()).unwrap_or_default()
}

fn se_linux(c: &mut Checker, spec: &Node, cs: &[Container]) {
    let mut allowed = vec!["", "container_t", "container_init_t", "container_kvm_t"];
    if c.version.at_least(31) {
        allowed.push("container_engine_t");
    }
    let mut contexts: Vec<(String, &Node)> = Vec::new();
    if let Some(o) = get(spec, "securityContext").and_then(|s| get(s, "seLinuxOptions")) {
        contexts.push(("the pod".into(), o));
    }
    for k in cs {
        if let Some(o) = k.sc("seLinuxOptions") {
            contexts.push((k.what(), o));
        }
    }
    for (what, o) in contexts {
        let ty = get(o, "type").and_then(Node::scalar_text).unwrap_or_default();
        if !allowed.contains(&ty.as_str()) {
            let msg = format!(
                "{what} asks for SELinux type `{ty}`; allowed are {}",
                allowed[1..].iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
            );
            c.baseline("SB019", get(o, "type").map_or(o.pos, |n| n.pos), "seLinuxOptions", msg);
        }
        for key in ["user", "role"] {
            if let Some(n) = get(o, key).filter(|n| !n.scalar_text().unwrap_or_default().is_empty()) {
                c.baseline("SB019", n.pos, "seLinuxOptions", format!("{what} sets an SELinux {key}"));
            }
        }
    }
}

/// `procMount`: anything but `Default` is forbidden; from 1.35 the baseline check skips pods in a
/// user namespace, and `procMount_restricted` (which overrides it) still forbids it.
fn proc_mount(c: &mut Checker, cs: &[Container], userns: bool) {
    for k in cs {
        let Some(pm) = k.sc("procMount") else { continue };
        let v = pm.scalar_text().unwrap_or_default();
        if v == "Default" {
            continue;
        }
        let msg = format!("{} sets procMount `{v}` (an unmasked /proc)", k.what());
        if c.version.at_least(35) && userns {
            c.restricted("SB016", pm.pos, "procMount_restricted", msg);
        } else {
            c.baseline("SB016", pm.pos, "procMount", msg);
        }
    }
}

/// `seccompProfile_baseline` (annotations before 1.19, fields from 1.19) and, from 1.19,
/// `seccompProfile_restricted`: the pod, or every container, must set RuntimeDefault or Localhost.
fn seccomp(c: &mut Checker, pod: &Pod, cs: &[Container], windows: bool) {
    let valid = |t: Option<&str>| matches!(t, Some("RuntimeDefault") | Some("Localhost"));
    if !c.version.at_least(19) {
        let ok = |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
        let ann = annotation_entries(pod.meta);
        for (k, v) in &ann {
            let val = v.scalar_text().unwrap_or_default();
            let applies = k.name == "seccomp.security.alpha.kubernetes.io/pod"
                || k.name
                    .strip_prefix("container.seccomp.security.alpha.kubernetes.io/")
                    .is_some_and(|name| cs.iter().any(|x| x.name == name));
            if applies && !ok(&val) {
                let msg = format!("annotation {}: `{val}` runs without a confining seccomp profile", k.name);
                c.baseline("SB008", v.pos, "seccompProfile_baseline", msg);
            }
        }
        return;
    }
    let pod_profile = get(pod.spec, "securityContext").and_then(|s| get(s, "seccompProfile"));
    let mut pod_valid = false;
    if let Some(p) = pod_profile {
        let t = get(p, "type");
        if valid(t.and_then(Node::as_str)) {
            pod_valid = true;
        } else {
            let shown = t.and_then(Node::scalar_text).unwrap_or_default();
            let msg = format!("the pod sets seccompProfile.type `{shown}`; allowed are RuntimeDefault and Localhost");
            c.baseline("SB008", t.map_or(p.pos, |n| n.pos), "seccompProfile_baseline", msg);
        }
    }
    let restricted = !(c.version.at_least(25) && windows);
    for k in cs {
        match k.sc("seccompProfile") {
            Some(p) => {
                let t = get(p, "type");
                if !valid(t.and_then(Node::as_str)) {
                    let shown = t.and_then(Node::scalar_text).unwrap_or_default();
                    let msg = format!(
                        "{} sets seccompProfile.type `{shown}`; allowed are RuntimeDefault and Localhost",
                        k.what()
                    );
                    c.baseline("SB008", t.map_or(p.pos, |n| n.pos), "seccompProfile_baseline", msg);
                }
            }
            None if restricted && !pod_valid => {
                let msg = format!("{} has no seccomp profile, and the pod sets none it could inherit", k.what());
                c.restricted("SB009", k.sc_pos(), "seccompProfile_restricted", msg);
            }
            None => {}
        }
    }
}

fn sysctls(c: &mut Checker, spec: &Node) {
    let minor = c.version.minor();
    let list = get(spec, "securityContext").and_then(|s| get(s, "sysctls")).and_then(Node::as_seq).unwrap_or(&[]);
    for s in list {
        let name = str_of(get(s, "name")).unwrap_or_default();
        if !facts::is_safe_sysctl(&name, minor) {
            let later = facts::SAFE_SYSCTLS.iter().find(|x| x.name == name).map(|x| x.since_minor);
            let msg = match later {
                Some(m) => format!("sysctl {name} is safe only from Kubernetes 1.{m}"),
                None => format!("sysctl {name} is not in the safe set"),
            };
            c.baseline("SB017", s.pos, "sysctls", msg);
        }
    }
}

fn windows_host_process(c: &mut Checker, spec: &Node, cs: &[Container]) {
    let mut contexts: Vec<(String, Option<&Node>)> =
        vec![("the pod".into(), get(spec, "securityContext").and_then(|s| get(s, "windowsOptions")))];
    for k in cs {
        contexts.push((k.what(), k.sc("windowsOptions")));
    }
    for (what, o) in contexts {
        if let Some(h) = o.and_then(|o| get(o, "hostProcess")).filter(|h| h.as_bool() == Some(true)) {
            c.baseline("SB027", h.pos, "windowsHostProcess", format!("{what} runs as a Windows HostProcess"));
        }
    }
}

fn host_probes(c: &mut Checker, cs: &[Container]) {
    for k in cs {
        let mut handlers: Vec<(String, &Node)> = Vec::new();
        for p in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(n) = get(k.node, p) {
                handlers.push((p.to_string(), n));
            }
        }
        for h in ["postStart", "preStop"] {
            if let Some(n) = get(k.node, "lifecycle").and_then(|l| get(l, h)) {
                handlers.push((format!("lifecycle.{h}"), n));
            }
        }
        for (where_, h) in handlers {
            for action in ["httpGet", "tcpSocket"] {
                if let Some(host) = get(h, action).and_then(|a| get(a, "host")) {
                    let v = host.scalar_text().unwrap_or_default();
                    if !v.is_empty() && !host.is_null() {
                        let msg = format!(
                            "{}'s {where_}.{action}.host `{v}` has the kubelet connect to another host (from the node)",
                            k.what()
                        );
                        c.baseline("SB026", host.pos, "hostProbesAndHostLifecycle", msg);
                    }
                }
            }
        }
    }
}

/// Volume sources the restricted profile allows (`check_restrictedVolumes.go`; `image` since 1.33,
/// in the 1.0 function, so at every version).
const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Every volume source the API knows (a volume with none is defaulted to `emptyDir`).
const VOLUME_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
];

/// `restrictedVolumes`; `hostPath` is left to the baseline error it already is.
fn restricted_volumes(c: &mut Checker, spec: &Node) {
    for v in get(spec, "volumes").and_then(Node::as_seq).unwrap_or(&[]) {
        for (key, node) in v.as_map().map(|m| m.iter().collect::<Vec<_>>()).unwrap_or_default() {
            let k = key.name.as_str();
            if k != "hostPath" && VOLUME_SOURCES.contains(&k) && !RESTRICTED_VOLUMES.contains(&k) {
                let msg = format!("volume `{}` is of type {k}", volume_name(v));
                c.restricted("SB023", node.pos, "restrictedVolumes", msg);
            }
        }
    }
}

fn allow_privilege_escalation(c: &mut Checker, cs: &[Container]) {
    for k in cs {
        let v = k.sc("allowPrivilegeEscalation");
        if v.and_then(Node::as_bool) != Some(false) {
            let msg = format!("{} may gain privileges (allowPrivilegeEscalation is not false)", k.what());
            c.restricted("SB006", v.map_or(k.sc_pos(), |n| n.pos), "allowPrivilegeEscalation", msg);
        }
    }
}

fn run_as_non_root(c: &mut Checker, spec: &Node, cs: &[Container]) {
    let pod = get(spec, "securityContext").and_then(|s| get(s, "runAsNonRoot"));
    let mut pod_true = false;
    if let Some(n) = pod {
        if n.as_bool() == Some(true) {
            pod_true = true;
        } else {
            c.restricted("SB007", n.pos, "runAsNonRoot", "the pod sets runAsNonRoot to false".into());
        }
    }
    for k in cs {
        match k.sc("runAsNonRoot") {
            Some(n) if n.as_bool() != Some(true) => {
                c.restricted("SB007", n.pos, "runAsNonRoot", format!("{} sets runAsNonRoot to false", k.what()));
            }
            Some(_) => {}
            None if !pod_true => {
                let msg = format!("{} may run as root (runAsNonRoot is not true for it or the pod)", k.what());
                c.restricted("SB007", k.sc_pos(), "runAsNonRoot", msg);
            }
            None => {}
        }
    }
}

fn run_as_user(c: &mut Checker, spec: &Node, cs: &[Container]) {
    if let Some(n) = get(spec, "securityContext").and_then(|s| get(s, "runAsUser")).filter(|n| n.as_i64() == Some(0)) {
        c.restricted("SB028", n.pos, "runAsUser", "the pod sets runAsUser: 0 (root)".into());
    }
    for k in cs {
        if let Some(n) = k.sc("runAsUser").filter(|n| n.as_i64() == Some(0)) {
            c.restricted("SB028", n.pos, "runAsUser", format!("{} sets runAsUser: 0 (root)", k.what()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_the_flag_and_the_label_take_them() {
        assert_eq!(PssVersion::parse("latest").unwrap(), PssVersion::LATEST);
        assert_eq!(PssVersion::parse("v1.25").unwrap().minor(), 25);
        assert_eq!(PssVersion::parse("1.25").unwrap().minor(), 25);
        assert_eq!(PssVersion::parse("v1.99").unwrap(), PssVersion::LATEST, "clamped");
        for bad in ["", "v2.1", "1.", "v1.025", "one", "1.2.3"] {
            assert!(PssVersion::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(PssVersion::parse_label("v1.0").unwrap().minor(), 0);
        assert!(PssVersion::parse_label("1.25").is_none(), "the label needs the v");
        assert!(PssVersion::parse_label("v1.025").is_none());
        assert_eq!(PssVersion::LATEST.to_string(), format!("v1.{NEWEST_MINOR}"));
    }
}
