//! Pod Security fields beyond the common ones: procMount, sysctls, AppArmor, SELinux, volumes.

use semble_policy::yaml::Node;

use crate::context::{get, str_of, Ctx};

const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SELINUX_TYPES: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"];
const RESTRICTED_VOLUMES: &[&str] =
    &["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

/// Pod Security fields beyond the common ones: procMount, sysctls, AppArmor, SELinux, volumes.
pub(crate) fn lint(ctx: &mut Ctx, spec: &Node, ann: &[(String, String)]) {
    let pod_sc = get(spec, "securityContext");
    for s in pod_sc.and_then(|p| get(p, "sysctls")).and_then(Node::as_seq).unwrap_or(&[]) {
        let name = str_of(get(s, "name")).unwrap_or_default();
        if !SAFE_SYSCTLS.contains(&name.as_str()) {
            ctx.add("SB017", s.pos, format!("sysctl {name} is not in the safe set"));
        }
    }
    let mut contexts: Vec<(String, &Node)> = pod_sc.map(|p| ("the pod".to_string(), p)).into_iter().collect();
    for k in ["containers", "initContainers", "ephemeralContainers"] {
        for c in get(spec, k).and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(sc) = get(c, "securityContext") {
                contexts.push((format!("container `{}`", str_of(get(c, "name")).unwrap_or_default()), sc));
            }
        }
    }
    for (what, sc) in contexts {
        if let Some(pm) = get(sc, "procMount") {
            if pm.scalar_text().as_deref() == Some("Unmasked") {
                ctx.add("SB016", pm.pos, format!("{what} mounts /proc unmasked"));
            }
        }
        if let Some(t) = get(sc, "appArmorProfile").and_then(|a| get(a, "type")) {
            if t.scalar_text().as_deref() == Some("Unconfined") {
                ctx.add("SB018", t.pos, format!("{what} runs without AppArmor"));
            }
        }
        if let Some(se) = get(sc, "seLinuxOptions") {
            let ty = str_of(get(se, "type")).unwrap_or_default();
            if !SELINUX_TYPES.contains(&ty.as_str()) {
                ctx.add(
                    "SB019",
                    get(se, "type").map_or(se.pos, |n| n.pos),
                    format!("{what} asks for SELinux type {ty}"),
                );
            }
            for k in ["user", "role"] {
                if let Some(n) = get(se, k) {
                    ctx.add("SB019", n.pos, format!("{what} sets an SELinux {k}"));
                }
            }
        }
    }
    for (k, v) in ann {
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/") && v == "unconfined" {
            ctx.add("SB018", spec.pos, format!("annotation {k}: unconfined"));
        }
    }
    for v in get(spec, "volumes").and_then(Node::as_seq).unwrap_or(&[]) {
        for (key, node) in v.as_map().map(|m| m.iter().collect::<Vec<_>>()).unwrap_or_default() {
            let k = key.name.as_str();
            if k != "name" && k != "hostPath" && !RESTRICTED_VOLUMES.contains(&k) {
                ctx.add(
                    "SB023",
                    node.pos,
                    format!("volume `{}` is of type {k}", str_of(get(v, "name")).unwrap_or_default()),
                );
            }
        }
    }
}
