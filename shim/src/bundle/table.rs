//! The ceiling as one table: every field of the OCI runtime spec (1.2, Linux), and what the shim
//! does with it — **copy** it, **clamp** it to the policy, **add** what the policy adds, or
//! **refuse** the container. A field the table does not know is refused: the next version of
//! the spec cannot slip a field through.
//!
//! Paths are JSON pointers into `config.json`; `*` stands for any array index or map key. The
//! table is data: `check` walks a request against it, `docs/ceiling.md` is generated from it
//! (kept in sync by a test), and the merge ([`super::apply`]) implements each row.

use serde_json::Value;

/// What the shim does with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Kept as the request has it.
    Copy,
    /// Kept, but never above the policy (or a fixed safe bound); the row says how.
    Clamp,
    /// Set by the shim from the policy, whatever the request says.
    Add,
    /// The container is refused when the request sets it.
    Refuse,
}

impl Action {
    /// The word the docs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Copy => "copy",
            Action::Clamp => "clamp",
            Action::Add => "add",
            Action::Refuse => "refuse",
        }
    }
}

/// One row: a field, what happens to it, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// JSON pointer, `*` for any index or key.
    pub path: &'static str,
    /// What happens to it.
    pub action: Action,
    /// How, in one sentence.
    pub how: &'static str,
    /// The whole subtree is judged by the row (its contents are not walked).
    pub subtree: bool,
}

const fn f(path: &'static str, action: Action, how: &'static str) -> Field {
    Field { path, action, how, subtree: false }
}

const fn tree(path: &'static str, action: Action, how: &'static str) -> Field {
    Field { path, action, how, subtree: true }
}

use Action::{Add, Clamp, Refuse};
const KEEP: Action = Action::Copy;

/// The table. Order: the spec's.
pub const FIELDS: &[Field] = &[
    f("/ociVersion", KEEP, "the spec version the engine wrote"),
    // root
    f("/root/path", KEEP, "the root filesystem the engine prepared"),
    f("/root/readonly", Clamp, "read-only when the policy says `readOnlyRootFilesystem` or the request does"),
    // mounts
    f("/mounts/*/destination", Clamp, "refused over `/.semble`; judged with the source and type"),
    f("/mounts/*/type", Clamp, "an allow-list: bind, tmpfs, and the kernel filesystems at their places (proc at /proc, sysfs at /sys, cgroup at /sys/fs/cgroup, devpts, mqueue)"),
    f("/mounts/*/source", Clamp, "bind sources judged by the object they resolve to on the host and replaced by its real path (see the policy reference)"),
    f("/mounts/*/options/*", Clamp, "kept; `ro` forced on sysfs and cgroup; under gVisor `noexec,nosuid,nodev` on writable mounts no `execute` path needs"),
    f("/mounts/*/uidMappings/*/*", Refuse, "id-mapped mounts are refused: they change who owns host files as the container sees them"),
    f("/mounts/*/gidMappings/*/*", Refuse, "id-mapped mounts are refused"),
    // process
    f("/process/terminal", KEEP, "the engine's choice"),
    f("/process/consoleSize/height", KEEP, "the engine's choice"),
    f("/process/consoleSize/width", KEEP, "the engine's choice"),
    f("/process/user/uid", Clamp, "the policy's `user` when set; uid 0 refused under `runAsNonRoot`"),
    f("/process/user/gid", Clamp, "the policy's `group` (or `user`) when set"),
    f("/process/user/umask", KEEP, "the request's"),
    f("/process/user/additionalGids/*", Clamp, "replaced by the policy's `supplementaryGroups` when it sets a user"),
    f("/process/user/username", KEEP, "informational (Windows)"),
    f("/process/args/*", Add, "becomes `semble-init --config … -- ARGS` (runc, runsc)"),
    f("/process/commandLine", Refuse, "Windows only"),
    f("/process/env/*", Add, "kept; `HTTP_PROXY` and friends point at the proxy bridge under `mode: proxy`"),
    f("/process/cwd", KEEP, "the request's"),
    f("/process/capabilities/bounding/*", Clamp, "the policy's capabilities ∩ the request's bounding set, in every set"),
    f("/process/capabilities/effective/*", Clamp, "as bounding"),
    f("/process/capabilities/inheritable/*", Clamp, "as bounding"),
    f("/process/capabilities/permitted/*", Clamp, "as bounding"),
    f("/process/capabilities/ambient/*", Clamp, "as bounding (so a non-root workload really holds them)"),
    f("/process/rlimits/*/type", Clamp, "every limit no higher than the policy's, the request's and the host's; limits the policy does not name: no higher than the host's, and `RLIMIT_RTPRIO`/`RLIMIT_NICE` 0 (no real-time or raised priority)"),
    f("/process/rlimits/*/soft", Clamp, "see type"),
    f("/process/rlimits/*/hard", Clamp, "see type"),
    f("/process/noNewPrivileges", Clamp, "on when the policy or the request says so"),
    f("/process/apparmorProfile", Clamp, "kept, except `unconfined`, which is refused"),
    f("/process/oomScoreAdj", Clamp, "not below 0 (a negative value makes the host kill others first); in a Kubernetes pod not below -997 (the kubelet's Guaranteed value)"),
    f("/process/selinuxLabel", Clamp, "the policy's SELinux type when it has one and SELinux is on; else kept, except `spc_t`/`unconfined_t`, which are refused"),
    f("/process/ioPriority/class", Clamp, "refused when `IOPRIO_CLASS_RT` (set by the runtime as root, before the capabilities drop)"),
    f("/process/ioPriority/priority", KEEP, "with a best-effort or idle class"),
    f("/process/scheduler/policy", Clamp, "refused for real-time and deadline policies (`SCHED_FIFO`, `SCHED_RR`, `SCHED_DEADLINE`), set by the runtime as root"),
    f("/process/scheduler/nice", Clamp, "refused below 0"),
    f("/process/scheduler/priority", KEEP, "with a non-real-time policy"),
    f("/process/scheduler/flags/*", KEEP, "with a non-real-time policy"),
    f("/process/scheduler/runtime", Refuse, "deadline scheduling is refused"),
    f("/process/scheduler/deadline", Refuse, "deadline scheduling is refused"),
    f("/process/scheduler/period", Refuse, "deadline scheduling is refused"),
    f("/process/execCPUAffinity/initial", KEEP, "CPU placement only"),
    f("/process/execCPUAffinity/final", KEEP, "CPU placement only"),
    // hostname
    f("/hostname", KEEP, "the request's"),
    f("/domainname", KEEP, "the request's"),
    // hooks
    tree("/hooks", Refuse, "hooks run on the host as root: refused, except hooks whose path the operator allowed (`--allow-hook PATH`, e.g. the NVIDIA Container Toolkit's `nvidia-ctk` for CDI); an allowed hook runs with the environment its entry names (`PATH` only, when it names none), never the container's, and one naming a variable that loads code (`LD_PRELOAD`…) is refused"),
    // annotations
    f("/annotations/*", Add, "kept; `semble.dev/policy` and `semble.dev/backend` set by the shim; none of them weakens enforcement (see the policy reference)"),
    // linux
    f("/linux/uidMappings/*/containerID", Clamp, "a user namespace is kept, but no range may map onto host uid 0"),
    f("/linux/uidMappings/*/hostID", Clamp, "see containerID"),
    f("/linux/uidMappings/*/size", Clamp, "see containerID"),
    f("/linux/gidMappings/*/containerID", Clamp, "no range may map onto host gid 0"),
    f("/linux/gidMappings/*/hostID", Clamp, "see containerID"),
    f("/linux/gidMappings/*/size", Clamp, "see containerID"),
    f("/linux/sysctl/*", Clamp, "only Kubernetes' safe (namespaced) sysctls, as `semble_policy::facts` lists them"),
    f("/linux/resources/devices/*/allow", Clamp, "deny everything first; allow only the devices the policy justifies, by type and number"),
    f("/linux/resources/devices/*/type", Clamp, "see allow"),
    f("/linux/resources/devices/*/major", Clamp, "see allow"),
    f("/linux/resources/devices/*/minor", Clamp, "see allow"),
    f("/linux/resources/devices/*/access", Clamp, "see allow"),
    f("/linux/resources/memory/limit", Clamp, "the lower of request and policy"),
    f("/linux/resources/memory/reservation", Clamp, "no higher than the limit"),
    f("/linux/resources/memory/swap", Clamp, "memory+swap no higher than the limit (no swap beyond it)"),
    f("/linux/resources/memory/kernel", Refuse, "deprecated kernel-memory accounting is refused"),
    f("/linux/resources/memory/kernelTCP", Refuse, "deprecated kernel-memory accounting is refused"),
    f("/linux/resources/memory/swappiness", KEEP, "tuning only"),
    f("/linux/resources/memory/disableOOMKiller", Refuse, "a container the OOM killer may not kill can take the host's memory"),
    f("/linux/resources/memory/useHierarchy", KEEP, "cgroup v1 accounting"),
    f("/linux/resources/memory/checkBeforeUpdate", KEEP, "update safety"),
    f("/linux/resources/cpu/shares", KEEP, "a relative weight"),
    f("/linux/resources/cpu/quota", Clamp, "no higher than the policy's CPUs over the period"),
    f("/linux/resources/cpu/period", Clamp, "between 1 ms and 1 s (the quota follows it)"),
    f("/linux/resources/cpu/burst", Clamp, "no higher than the quota"),
    f("/linux/resources/cpu/idle", KEEP, "SCHED_IDLE weight"),
    f("/linux/resources/cpu/realtimeRuntime", Refuse, "real-time CPU time is refused"),
    f("/linux/resources/cpu/realtimePeriod", Refuse, "real-time CPU time is refused"),
    f("/linux/resources/cpu/cpus", KEEP, "CPU placement"),
    f("/linux/resources/cpu/mems", KEEP, "memory node placement"),
    f("/linux/resources/pids/limit", Clamp, "the lower of request and policy"),
    tree("/linux/resources/blockIO", KEEP, "I/O weights and throttles only lower what the container may do"),
    tree("/linux/resources/hugepageLimits", KEEP, "limits only"),
    tree("/linux/resources/network", KEEP, "class IDs and priorities only label traffic"),
    tree("/linux/resources/rdma", KEEP, "limits only"),
    f("/linux/resources/unified/*", Clamp, "cgroup v2 files: `memory.max`, `memory.high`, `memory.swap.max`, `pids.max`, `cpu.max` clamped to the policy; `cpu.weight`, `io.weight` kept; every other key refused"),
    f("/linux/cgroupsPath", KEEP, "where the engine puts the container; `..` refused"),
    f("/linux/namespaces/*/type", Clamp, "pid, ipc and mount namespaces required; the network one decided by the policy's mode"),
    f("/linux/namespaces/*/path", Clamp, "the host's own namespaces refused; a network namespace kept only for ingress or a pod, with the egress guard"),
    f("/linux/devices/*/path", Clamp, "devices judged by type and number (NVIDIA majors; the host's own node for allow-listed paths)"),
    f("/linux/devices/*/type", Clamp, "see path"),
    f("/linux/devices/*/major", Clamp, "see path"),
    f("/linux/devices/*/minor", Clamp, "see path"),
    f("/linux/devices/*/fileMode", KEEP, "the node's mode"),
    f("/linux/devices/*/uid", KEEP, "the node's owner"),
    f("/linux/devices/*/gid", KEEP, "the node's group"),
    tree("/linux/seccomp", Add, "the policy's profile, loaded by semble-init; the request's own profile stacked on top (the kernel enforces both); a notify listener in it refused"),
    f("/linux/rootfsPropagation", Clamp, "`shared` refused (the container's mounts would reach the host); others kept"),
    f("/linux/maskedPaths/*", Add, "the request's and the policy's"),
    f("/linux/readonlyPaths/*", Add, "the request's and the policy's"),
    f("/linux/mountLabel", Clamp, "the policy's SELinux level when it has one"),
    tree("/linux/intelRdt", Refuse, "cache and memory-bandwidth allocation is host-wide: refused"),
    tree("/linux/memoryPolicy", KEEP, "NUMA placement only"),
    f("/linux/personality/domain", Clamp, "`LINUX` or `LINUX32` only"),
    f("/linux/personality/flags/*", Refuse, "personality flags are refused"),
    tree("/linux/timeOffsets", Refuse, "time namespace offsets are refused"),
    tree("/linux/netDevices", Refuse, "moving host network devices into the container is refused"),
    // other platforms
    tree("/solaris", Refuse, "not Linux"),
    tree("/windows", Refuse, "not Linux"),
    tree("/vm", Refuse, "virtual-machine runtimes are not semble's backends"),
    tree("/zos", Refuse, "not Linux"),
];

/// How a request field fared against the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    /// A field no row covers (its path, with the concrete keys).
    Field(String),
}

fn matches(pattern: &str, path: &[String]) -> bool {
    let parts: Vec<&str> = pattern.split('/').skip(1).collect();
    parts.len() == path.len() && parts.iter().zip(path).all(|(p, q)| *p == "*" || *p == q)
}

/// A row covers `path` itself, or a subtree row covers one of its ancestors.
fn row_for(path: &[String]) -> Option<&'static Field> {
    FIELDS.iter().find(|f| matches(f.path, path) || (f.subtree && (1..path.len()).any(|n| matches(f.path, &path[..n]))))
}

/// Whether any row lies at or below `path` (the walk descends into it).
fn is_prefix(path: &[String]) -> bool {
    FIELDS.iter().any(|f| {
        let parts: Vec<&str> = f.path.split('/').skip(1).collect();
        parts.len() > path.len() && parts.iter().zip(path).all(|(p, q)| *p == "*" || *p == q)
    })
}

/// Every field of `request` under `prefix` that no row covers. Empty objects and arrays, and
/// `null`s, are covered where their parent is.
pub fn unknown_fields(request: &Value, prefix: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut path: Vec<String> = prefix.iter().map(|s| (*s).to_string()).collect();
    walk(request, &mut path, &mut out);
    out
}

fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
    if let Some(row) = row_for(path) {
        if row.subtree || !matches!(v, Value::Object(_) | Value::Array(_)) {
            return;
        }
    }
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        Value::Null => return,
        _ => {
            out.push(pointer(path));
            return;
        }
    };
    if !path.is_empty() && !is_prefix(path) && row_for(path).is_none() {
        out.push(pointer(path));
        return;
    }
    for (k, child) in children {
        path.push(k);
        if child.is_null() || row_for(path).is_some() || is_prefix(path) {
            walk(child, path, out);
        } else {
            out.push(pointer(path));
        }
        path.pop();
    }
}

fn pointer(path: &[String]) -> String {
    if path.is_empty() {
        return "(the root)".into();
    }
    path.iter().map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1"))).collect()
}

/// The values of `request` at `pattern` (a row's path), with their concrete pointers.
pub fn values_at<'a>(request: &'a Value, pattern: &str) -> Vec<(String, &'a Value)> {
    let mut out = vec![(String::new(), request)];
    for part in pattern.split('/').skip(1) {
        let mut next = Vec::new();
        for (path, v) in out {
            match (part, v) {
                ("*", Value::Object(m)) => next.extend(m.iter().map(|(k, c)| (format!("{path}/{k}"), c))),
                ("*", Value::Array(a)) => next.extend(a.iter().enumerate().map(|(i, c)| (format!("{path}/{i}"), c))),
                (key, Value::Object(m)) => {
                    if let Some(c) = m.get(key) {
                        next.push((format!("{path}/{key}"), c));
                    }
                }
                _ => {}
            }
        }
        out = next;
    }
    out
}

/// The row a field path falls under (for `explain-bundle`).
pub fn row(pointer_path: &str) -> Option<&'static Field> {
    let path: Vec<String> = pointer_path.split('/').skip(1).map(|p| p.replace("~1", "/").replace("~0", "~")).collect();
    row_for(&path)
}

/// `docs/ceiling.md`, generated from the table.
pub fn markdown() -> String {
    let mut s = String::from(
        "# The ceiling: every field of `config.json`, and what semble-shim does with it\n\n\
         Generated from `shim/src/ceiling/table.rs` (a test keeps this page in sync: \
         `SEMBLE_UPDATE_DOCS=1 cargo test -p semble-shim ceiling_doc` rewrites it). \
         A field that is not in this table is refused: the next version of the OCI runtime \
         spec cannot slip one through. `*` stands for any array index or map key; a row ending \
         in a subtree covers everything below it.\n\n\
         | field | action | how |\n|---|---|---|\n",
    );
    for f in FIELDS {
        let path = if f.subtree { format!("`{}/…`", f.path) } else { format!("`{}`", f.path) };
        s.push_str(&format!("| {path} | {} | {} |\n", f.action.as_str(), f.how.replace('|', "\\|")));
    }
    s.push_str(
        "\n**copy**: kept as the request has it. **clamp**: kept, never above the policy (or a \
         fixed safe bound). **add**: set by the shim from the policy. **refuse**: the container \
         is refused with one line naming the field.\n\n\
         `semble-shim update` goes through the same rows under `/linux/resources`, and `exec`'s \
         process description through the rows under `/process`.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ceiling_doc_is_generated_from_the_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ceiling.md");
        let want = markdown();
        if std::env::var_os("SEMBLE_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/ceiling.md is out of date: run `SEMBLE_UPDATE_DOCS=1 cargo test -p semble-shim ceiling_doc`"
        );
    }

    #[test]
    fn what_engines_write_is_known() {
        // runc's and oci-spec's templates, every field filled the way engines fill them.
        let spec = serde_json::to_value(oci_spec::runtime::Spec::default()).unwrap();
        assert_eq!(unknown_fields(&spec, &[]), Vec::<String>::new());
        let rootless = serde_json::to_value(oci_spec::runtime::Spec::rootless(1000, 1000)).unwrap();
        assert_eq!(unknown_fields(&rootless, &[]), Vec::<String>::new());
    }

    #[test]
    fn unknown_fields_are_found_at_any_depth_and_subtrees_are_not_walked() {
        let v = serde_json::json!({
            "process": {"args": ["sh"], "user": {"uid": 0, "gid": 0, "extra": 1}},
            "linux": {"seccomp": {"anything": {"deep": true}}, "resources": {"memory": {"limit": 1, "nope": 2}}},
            "annotations": {"any.key/here": "v"},
            "future": null
        });
        assert_eq!(unknown_fields(&v, &[]), ["/process/user/extra", "/linux/resources/memory/nope"]);
        assert_eq!(
            unknown_fields(&serde_json::json!({"weight": 5, "bad": 1}), &["linux", "resources", "blockIO"]),
            Vec::<String>::new()
        );
        assert_eq!(
            unknown_fields(&serde_json::json!({"pids": {"limit": 5}, "bad": 1}), &["linux", "resources"]),
            ["/linux/resources/bad"]
        );
    }

    #[test]
    fn values_are_found_where_rows_point() {
        let v = serde_json::json!({"mounts": [{"uidMappings": [{"hostID": 0}]}, {}]});
        let found = values_at(&v, "/mounts/*/uidMappings/*/*");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "/mounts/0/uidMappings/0/hostID");
    }
}
