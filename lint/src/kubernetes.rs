//! Kubernetes objects. Workloads are checked through their pod template: Pod Security
//! ([`crate::pod_security`], at the version their namespace is held to), then what semble adds
//! (images, credentials in the environment, the RuntimeClass a semble policy needs, limits, a
//! writable root, a proxy running as a sidecar, a Localhost seccomp profile found among the linted
//! files). NetworkPolicies go to [`crate::network_policy`]; Namespaces are checked for a Pod
//! Security version label the admission controller cannot read.

use semble_policy::diag::Pos;
use semble_policy::yaml::Node;

use crate::cluster::{namespace_of, pod_spec, Cluster};
use crate::common::{check_env_value, check_image};
use crate::context::{cap_name, get, path, str_of, Ctx};
use crate::pod_security::{self, Pod, PssVersion};
use crate::{network_policy, seccomp, Options};

/// The key/value annotations of a metadata node.
pub(crate) fn annotations(meta: Option<&Node>) -> Vec<(String, String)> {
    meta.and_then(|m| get(m, "annotations"))
        .and_then(Node::as_map)
        .map(|m| m.iter().map(|(k, v)| (k.name.clone(), v.scalar_text().unwrap_or_default())).collect())
        .unwrap_or_default()
}

/// The `ignore-check.semble.dev/RULE` annotations of an object (and of its pod template).
pub(crate) fn ignores(root: &Node) -> Vec<(String, String)> {
    let mut ann = annotations(get(root, "metadata"));
    if let Some((_, tmeta)) = pod_spec(root) {
        ann.extend(annotations(tmeta));
    }
    ann.into_iter()
        .filter_map(|(k, v)| k.strip_prefix("ignore-check.semble.dev/").map(|r| (r.to_string(), v)))
        .collect()
}

pub(crate) fn lint(ctx: &mut Ctx, root: &Node, cluster: &Cluster, opts: &Options) {
    let kind = get(root, "kind").and_then(Node::as_str).unwrap_or_default();
    ctx.ignored = ignores(root);
    let ns = namespace_of(root);
    match kind {
        "NetworkPolicy" => {
            ctx.netpol_ns.insert(ns);
            network_policy::lint(ctx, root, cluster);
            return;
        }
        "Namespace" => {
            namespace(ctx, root);
            return;
        }
        _ => {}
    }
    let Some((spec, tmeta)) = pod_spec(root) else { return };
    if get(spec, "hostNetwork").and_then(Node::as_bool) != Some(true) {
        ctx.workloads.push((ns.clone(), get(root, "kind").map_or(root.pos, |k| k.pos)));
    }
    let mut ann = annotations(get(root, "metadata"));
    ann.extend(annotations(tmeta));
    let reason = ann.iter().any(|(k, v)| k == "semble.dev/privileged-reason" && !v.trim().is_empty());
    // Pod Security reads the pod's own metadata: a Pod's, or the template's of a controller.
    pod_security::check(ctx, &Pod { meta: tmeta, spec }, cluster.pss_version(&ns, opts.pss_version), reason);

    if ann.iter().any(|(k, _)| k == semble_policy::facts::POLICY_ANNOTATION) {
        let rc = str_of(get(spec, "runtimeClassName")).unwrap_or_default();
        if !rc.starts_with("semble-") && !rc.contains("gvisor") {
            let pos = get(spec, "runtimeClassName").map_or(spec.pos, |n| n.pos);
            let under = if rc.is_empty() { "the default runtime".to_string() } else { format!("`{rc}`") };
            ctx.add("SB014", pos, format!("the pod names a semble policy but runs under {under}"));
        }
    }
    misplaced(ctx, spec);
    containers(ctx, spec);
    localhost_seccomp(ctx, spec, tmeta, cluster);
    if let Some(p) = network_policy::semble_proxy_sidecar(spec) {
        ctx.add("SB022", p.pos, "semble-proxy runs as a sidecar: its egress allowance is the workload's".into());
    }
}

/// securityContext fields only a container has.
const CONTAINER_ONLY: &[&str] =
    &["allowPrivilegeEscalation", "capabilities", "privileged", "procMount", "readOnlyRootFilesystem"];
/// securityContext fields only the pod has.
const POD_ONLY: &[&str] = &[
    "fsGroup",
    "fsGroupChangePolicy",
    "supplementalGroups",
    "supplementalGroupsPolicy",
    "sysctls",
    "seLinuxChangePolicy",
];

/// A securityContext field at a level the API does not define it at is dropped: it protects
/// nothing, and Pod Security (rightly) does not read it.
fn misplaced(ctx: &mut Ctx, spec: &Node) {
    let fields = |sc: Option<&Node>| -> Vec<(String, Pos)> {
        sc.and_then(Node::as_map).map(|m| m.iter().map(|(k, _)| (k.name.clone(), k.pos)).collect()).unwrap_or_default()
    };
    for (key, pos) in fields(get(spec, "securityContext")) {
        if CONTAINER_ONLY.contains(&key.as_str()) {
            ctx.add("SB035", pos, format!("`{key}` is a container field: in the pod's securityContext it is dropped"));
        }
    }
    for k in ["initContainers", "containers", "ephemeralContainers"] {
        for c in get(spec, k).and_then(Node::as_seq).unwrap_or(&[]) {
            let name = str_of(get(c, "name")).unwrap_or_default();
            for (key, pos) in fields(get(c, "securityContext")) {
                if POD_ONLY.contains(&key.as_str()) {
                    ctx.add(
                        "SB035",
                        pos,
                        format!("`{key}` is a pod field: in container `{name}`'s securityContext it is dropped"),
                    );
                }
            }
        }
    }
}

/// What semble checks on each container beyond Pod Security.
fn containers(ctx: &mut Ctx, spec: &Node) {
    let pod_sc = get(spec, "securityContext");
    let pod_non_root = pod_sc.and_then(|s| get(s, "runAsNonRoot")).and_then(Node::as_bool);
    let pod_user = pod_sc.and_then(|s| get(s, "runAsUser")).and_then(Node::as_i64);
    let all: Vec<&Node> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| get(spec, k).and_then(Node::as_seq).unwrap_or(&[]).iter())
        .collect();
    for c in all {
        let what = format!("container `{}`", str_of(get(c, "name")).unwrap_or_default());
        if let Some(img) = get(c, "image") {
            check_image(ctx, img);
        }
        for e in get(c, "env").and_then(Node::as_seq).unwrap_or(&[]) {
            if let (Some(n), Some(v)) = (str_of(get(e, "name")), get(e, "value")) {
                check_env_value(ctx, &n, &v.scalar_text().unwrap_or_default(), v.pos);
            }
        }
        let sc = get(c, "securityContext");
        let f = |k: &str| sc.and_then(|s| get(s, k));
        if let Some(add) = f("capabilities").and_then(|c| get(c, "add")) {
            let non_root = f("runAsNonRoot").and_then(Node::as_bool).or(pod_non_root) == Some(true)
                || f("runAsUser").and_then(Node::as_i64).or(pod_user).is_some_and(|u| u != 0);
            if non_root {
                for cap in add.as_seq().unwrap_or(&[]) {
                    let n = cap_name(&cap.scalar_text().unwrap_or_default());
                    if n == "SETUID" || n == "SETGID" {
                        ctx.add("SB015", cap.pos, format!("{what} runs as non-root and keeps {n}"));
                    }
                }
            }
        }
        if f("readOnlyRootFilesystem").and_then(Node::as_bool) != Some(true) {
            ctx.add("SB010", sc.map_or(c.pos, |s| s.pos), format!("{what} can write its root filesystem"));
        }
        let limits = path(c, &["resources", "limits"]);
        if limits.and_then(|l| get(l, "memory")).is_none() || limits.and_then(|l| get(l, "cpu")).is_none() {
            ctx.add(
                "SB011",
                get(c, "resources").map_or(c.pos, |r| r.pos),
                format!("{what} has no memory or CPU limit"),
            );
        }
    }
}

/// A `Localhost` seccomp profile (field or annotation) that is one of the linted files is linted
/// as the pod's: what makes the profile weak is reported on the line that names it.
fn localhost_seccomp(ctx: &mut Ctx, spec: &Node, meta: Option<&Node>, cluster: &Cluster) {
    let mut refs: Vec<(String, String, Pos)> = Vec::new();
    let field = |sc: Option<&Node>| -> Option<(String, Pos)> {
        let p = sc.and_then(|s| get(s, "seccompProfile"))?;
        if get(p, "type").and_then(Node::as_str) != Some("Localhost") {
            return None;
        }
        let l = get(p, "localhostProfile")?;
        Some((l.scalar_text()?, l.pos))
    };
    if let Some((x, pos)) = field(get(spec, "securityContext")) {
        refs.push(("the pod".into(), x, pos));
    }
    for k in ["initContainers", "containers", "ephemeralContainers"] {
        for c in get(spec, k).and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some((x, pos)) = field(get(c, "securityContext")) {
                refs.push((format!("container `{}`", str_of(get(c, "name")).unwrap_or_default()), x, pos));
            }
        }
    }
    for (k, v) in meta
        .and_then(|m| get(m, "annotations"))
        .and_then(Node::as_map)
        .map(|m| m.iter().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let who = if k.name == "seccomp.security.alpha.kubernetes.io/pod" {
            "the pod".to_string()
        } else if let Some(c) = k.name.strip_prefix("container.seccomp.security.alpha.kubernetes.io/") {
            format!("container `{c}`")
        } else {
            continue;
        };
        if let Some(x) = v.as_str().and_then(|s| s.strip_prefix("localhost/")) {
            refs.push((who, x.to_string(), v.pos));
        }
    }
    refs.sort_by_key(|(_, _, p)| (p.line, p.column));
    for (who, name, pos) in refs {
        let Some((file, profile)) = cluster.seccomp_profile(&name) else { continue };
        for (id, _, msg) in seccomp::weaknesses(profile) {
            ctx.add(id, pos, format!("{who} runs under Localhost profile `{name}` ({file}): {msg}"));
        }
    }
}

/// A Namespace: a Pod Security version label the admission controller cannot read.
fn namespace(ctx: &mut Ctx, root: &Node) {
    let labels = path(root, &["metadata", "labels"]).and_then(Node::as_map);
    let Some((_, v)) = labels.and_then(|l| l.get_entry("pod-security.kubernetes.io/enforce-version")) else { return };
    let text = v.scalar_text().unwrap_or_default();
    if PssVersion::parse_label(&text).is_none() {
        ctx.add(
            "SB029",
            v.pos,
            format!("pod-security.kubernetes.io/enforce-version: `{text}` is not `latest` or `v1.MINOR`; the admission controller ignores it"),
        );
    }
}
