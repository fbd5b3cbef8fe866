//! Kubernetes objects: workloads are checked through their pod template (images, credentials in
//! the environment, privileges, the RuntimeClass a semble policy needs, a proxy running as a
//! sidecar); NetworkPolicies go to [`crate::network_policy`], Pod Security fields to
//! [`crate::pod_security`].

use semble_policy::yaml::Node;

use crate::common::{check_caps, check_env_value, check_image};
use crate::context::{cap_name, get, path, str_of, Ctx};
use crate::rules::Level;
use crate::{network_policy, pod_security};

/// The pod spec of a workload object, if it has one.
pub(crate) fn pod_spec(root: &Node) -> Option<(&Node, Option<&Node>)> {
    let kind = str_of(get(root, "kind"))?;
    match kind.as_str() {
        "Pod" => Some((get(root, "spec")?, get(root, "metadata"))),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "ReplicationController" => {
            Some((path(root, &["spec", "template", "spec"])?, path(root, &["spec", "template", "metadata"])))
        }
        "CronJob" => Some((
            path(root, &["spec", "jobTemplate", "spec", "template", "spec"])?,
            path(root, &["spec", "jobTemplate", "spec", "template", "metadata"]),
        )),
        _ => None,
    }
}

pub(crate) fn annotations(meta: Option<&Node>) -> Vec<(String, String)> {
    meta.and_then(|m| get(m, "annotations"))
        .and_then(Node::as_map)
        .map(|m| m.iter().map(|(k, v)| (k.name.clone(), v.scalar_text().unwrap_or_default())).collect())
        .unwrap_or_default()
}

pub(crate) fn lint(ctx: &mut Ctx, root: &Node) {
    let kind = str_of(get(root, "kind")).unwrap_or_default();
    let mut ann = annotations(get(root, "metadata"));
    if let Some((_, tmeta)) = pod_spec(root) {
        ann.extend(annotations(tmeta));
    }
    ctx.ignored = ann
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("ignore-check.semble.dev/").map(|r| (r.to_string(), v.clone())))
        .collect();
    let ns = str_of(path(root, &["metadata", "namespace"])).unwrap_or_else(|| "default".into());
    if kind == "NetworkPolicy" {
        ctx.netpol_ns.insert(ns);
        network_policy::lint(ctx, root);
        return;
    }
    let Some((spec, tmeta)) = pod_spec(root) else { return };
    if !truthy_host_network(spec) {
        ctx.workloads.push((ns, get(root, "kind").map_or(root.pos, |k| k.pos)));
    }
    pod_security::lint(ctx, spec, &ann);
    let reason = ann.iter().any(|(k, v)| k == "semble.dev/privileged-reason" && !v.trim().is_empty());
    let pod_sc = get(spec, "securityContext");
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if let Some(n) = get(spec, key) {
            if n.as_bool() == Some(true) {
                ctx.add("SB002", n.pos, format!("{key}: true shares the node's namespace"));
            }
        }
    }
    for v in get(spec, "volumes").and_then(Node::as_seq).unwrap_or(&[]) {
        if let Some(h) = get(v, "hostPath") {
            let p = str_of(get(h, "path")).unwrap_or_default();
            ctx.add(
                "SB003",
                h.pos,
                format!("volume `{}` mounts the node's {p}", str_of(get(v, "name")).unwrap_or_default()),
            );
        }
    }
    let policy_ann = ann.iter().any(|(k, _)| k == semble_policy::facts::POLICY_ANNOTATION);
    if policy_ann {
        let rc = str_of(get(spec, "runtimeClassName")).unwrap_or_default();
        if !rc.starts_with("semble-") && !rc.contains("gvisor") {
            let pos = get(spec, "runtimeClassName").map_or(spec.pos, |n| n.pos);
            ctx.add(
                "SB014",
                pos,
                format!(
                    "the pod names a semble policy but runs under {}",
                    if rc.is_empty() { "the default runtime".to_string() } else { format!("`{rc}`") }
                ),
            );
        }
    }
    let _ = tmeta;
    let pod_seccomp = pod_sc.and_then(|s| get(s, "seccompProfile")).and_then(|p| str_of(get(p, "type")));
    let pod_non_root = pod_sc.and_then(|s| get(s, "runAsNonRoot")).and_then(Node::as_bool);
    let pod_user = pod_sc.and_then(|s| get(s, "runAsUser")).and_then(Node::as_i64);
    let containers: Vec<&Node> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| get(spec, k).and_then(Node::as_seq).unwrap_or(&[]).iter())
        .collect();
    for c in containers {
        let name = str_of(get(c, "name")).unwrap_or_default();
        let what = format!("container `{name}`");
        if let Some(img) = get(c, "image") {
            check_image(ctx, img);
        }
        for p in get(c, "ports").and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(hp) = get(p, "hostPort") {
                ctx.add("SB004", hp.pos, format!("{what} binds hostPort {}", hp.scalar_text().unwrap_or_default()));
            }
        }
        for e in get(c, "env").and_then(Node::as_seq).unwrap_or(&[]) {
            if let (Some(n), Some(v)) = (str_of(get(e, "name")), get(e, "value")) {
                check_env_value(ctx, &n, &v.scalar_text().unwrap_or_default(), v.pos);
            }
        }
        let sc = get(c, "securityContext");
        let f = |k: &str| sc.and_then(|s| get(s, k));
        if let Some(p) = f("privileged") {
            if p.as_bool() == Some(true) {
                let level = if reason { Level::Warning } else { Level::Error };
                let why = if reason {
                    " (a reason is annotated)"
                } else {
                    " without a `semble.dev/privileged-reason` annotation"
                };
                ctx.add_at("SB001", level, p.pos, format!("{what} is privileged{why}"));
            }
        }
        if let Some(add) = f("capabilities").and_then(|c| get(c, "add")) {
            check_caps(ctx, add, &what);
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
        let drops_all = f("capabilities")
            .and_then(|c| get(c, "drop"))
            .and_then(Node::as_seq)
            .is_some_and(|d| d.iter().any(|x| x.scalar_text().is_some_and(|t| cap_name(&t) == "ALL")));
        if !drops_all {
            ctx.add(
                "SB025",
                f("capabilities").or(sc).map_or(c.pos, |n| n.pos),
                format!("{what} keeps the runtime's default capabilities"),
            );
        }
        match f("allowPrivilegeEscalation").and_then(Node::as_bool) {
            Some(false) => {}
            _ => ctx.add(
                "SB006",
                sc.map_or(c.pos, |s| s.pos),
                format!("{what} may gain privileges (allowPrivilegeEscalation is not false)"),
            ),
        }
        let non_root = f("runAsNonRoot").and_then(Node::as_bool).or(pod_non_root);
        if non_root != Some(true) {
            ctx.add("SB007", sc.map_or(c.pos, |s| s.pos), format!("{what} may run as root (runAsNonRoot is not true)"));
        }
        let seccomp = f("seccompProfile").and_then(|p| str_of(get(p, "type"))).or(pod_seccomp.clone());
        match seccomp.as_deref() {
            Some("Unconfined") => {
                let pos = f("seccompProfile")
                    .or_else(|| pod_sc.and_then(|s| get(s, "seccompProfile")))
                    .map_or(c.pos, |n| n.pos);
                ctx.add("SB008", pos, format!("{what} runs without seccomp"));
            }
            None => ctx.add("SB009", sc.map_or(c.pos, |s| s.pos), format!("{what} has no seccomp profile")),
            _ => {}
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
    // A sidecar proxy in a sandbox pod.
    let init_proxy = get(spec, "initContainers").and_then(Node::as_seq).unwrap_or(&[]).iter().find(|c| {
        str_of(get(c, "image")).is_some_and(|i| i.contains("semble-proxy"))
            && str_of(get(c, "restartPolicy")).as_deref() == Some("Always")
    });
    if let Some(p) = init_proxy {
        ctx.add("SB022", p.pos, "semble-proxy runs as a sidecar: its egress allowance is the workload's".into());
    }
}

fn truthy_host_network(spec: &Node) -> bool {
    get(spec, "hostNetwork").and_then(Node::as_bool) == Some(true)
}
