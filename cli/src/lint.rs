//! `semble-policy lint`: what makes a sandbox weak, found in the files teams keep in their
//! repositories — SandboxPolicies, Kubernetes manifests, Compose files, seccomp profiles and OCI
//! `config.json` bundles — each finding at `file:line:column` with its rule and a one-line fix.
//!
//! Inputs are recognised by content, not by name: a document with `kind: SandboxPolicy` is a
//! policy; `apiVersion` + `kind` a Kubernetes object (workloads are checked through their pod
//! template); a top-level `services:` map a Compose file; a JSON object with `defaultAction` a
//! seccomp profile; one with `ociVersion` and `process` an OCI bundle configuration.
//!
//! Suppressions: `# semble-lint: ignore=RULE reason="…"` on the finding's line or the line above,
//! or the annotation `ignore-check.semble.dev/RULE: "reason"` on a Kubernetes object. A
//! suppression without a reason is itself a finding (`SL001`).
//!
//! The rule catalogue ([`RULES`]) is the single source of `docs/lint-rules.md`
//! (`semble-policy lint --list-rules --format markdown`; a test keeps the file in sync).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use semble_policy::diag::Pos;
use semble_policy::yaml::{Node, Value};
use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth knowing.
    Info,
    /// Weakens the sandbox.
    Warning,
    /// Breaks it, or a documented baseline.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// A rule of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable ID.
    pub id: &'static str,
    /// Default severity.
    pub level: Level,
    /// What it finds.
    pub summary: &'static str,
    /// How to fix it.
    pub fix: &'static str,
    /// What inputs it applies to.
    pub applies: &'static str,
}

macro_rules! rules {
    ($($id:literal $level:ident $applies:literal $summary:literal $fix:literal;)*) => {
        /// The catalogue.
        pub const RULES: &[Rule] = &[$(Rule { id: $id, level: Level::$level, summary: $summary, fix: $fix, applies: $applies }),*];
    };
}

rules! {
    "SL001" Warning "any" "a suppression without a reason" "write why: `# semble-lint: ignore=RULE reason=\"…\"` or the annotation's value";
    "SP000" Error "policy" "the policy does not validate (each error is reported)" "fix it as the message says; `semble-policy validate FILE` shows every error";
    "SB001" Error "Kubernetes, Compose, Quadlet, OCI" "a privileged container (Pod Security baseline); with a `semble.dev/privileged-reason` annotation it is a warning" "remove `privileged: true` and grant the one capability or device it needs";
    "SB002" Error "Kubernetes" "the host's network, PID or IPC namespace (Pod Security baseline)" "remove hostNetwork/hostPID/hostIPC";
    "SB003" Error "Kubernetes" "a hostPath volume (Pod Security baseline)" "use an emptyDir, a PersistentVolumeClaim or a ConfigMap";
    "SB004" Warning "Kubernetes" "a hostPort (Pod Security baseline)" "expose the port with a Service";
    "SB005" Error "Kubernetes, Compose, Quadlet, OCI" "a capability beyond the Pod Security baseline set, or one that is a known way out (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, …)" "drop it; grant only capabilities from the baseline set";
    "SB006" Warning "Kubernetes" "allowPrivilegeEscalation is not false (Pod Security restricted)" "set securityContext.allowPrivilegeEscalation: false";
    "SB007" Warning "Kubernetes" "runAsNonRoot is not true (Pod Security restricted)" "set securityContext.runAsNonRoot: true and a non-zero runAsUser";
    "SB008" Error "Kubernetes, Compose, Quadlet" "seccomp is Unconfined" "use RuntimeDefault or semble's Localhost profile (semble-policy compile --target seccomp)";
    "SB009" Warning "Kubernetes" "no seccomp profile (Pod Security restricted)" "set securityContext.seccompProfile.type: RuntimeDefault (or Localhost)";
    "SB010" Warning "Kubernetes, OCI" "the root filesystem is writable" "set readOnlyRootFilesystem: true and mount emptyDirs where it writes";
    "SB011" Warning "Kubernetes" "no memory or CPU limit" "set resources.limits.memory and resources.limits.cpu";
    "SB012" Warning "Kubernetes, Compose, Quadlet" "an image without a tag or with `:latest`" "pin a version tag or a digest";
    "SB013" Error "Kubernetes, Compose, Quadlet" "a default credential in the environment (e.g. GF_SECURITY_ADMIN_PASSWORD=admin)" "take the value from a Secret and change it";
    "SB014" Error "Kubernetes" "a pod with a semble policy annotation that does not run under a semble RuntimeClass" "set runtimeClassName: semble-gvisor (or semble-runc)";
    "SB015" Warning "Kubernetes" "CAP_SETUID/CAP_SETGID kept by a non-root user (it can become root in its user namespace)" "drop SETUID and SETGID";
    "SB016" Error "Kubernetes" "procMount: Unmasked (Pod Security baseline)" "remove procMount or set it to Default";
    "SB017" Error "Kubernetes" "a sysctl outside the Pod Security safe set" "remove it, or set it on the node";
    "SB018" Error "Kubernetes" "AppArmor unconfined (Pod Security baseline)" "use RuntimeDefault or a Localhost profile";
    "SB019" Error "Kubernetes" "an SELinux type or user/role override beyond the Pod Security baseline" "use container_t, container_init_t, container_kvm_t or container_engine_t, and no user or role";
    "SB023" Warning "Kubernetes" "a volume type outside the Pod Security restricted set" "use configMap, secret, emptyDir, projected, downwardAPI, persistentVolumeClaim, csi or ephemeral";
    "SB024" Warning "Kubernetes" "workloads in a namespace that no NetworkPolicy in the linted files covers (everything may reach them, and they anything)" "add a default-deny NetworkPolicy (semble-policy compile --target kubernetes emits one)";
    "SB025" Warning "Kubernetes" "capabilities are not dropped with `drop: [ALL]` (Pod Security restricted)" "set securityContext.capabilities.drop: [ALL] and add back only what is needed";
    "SB020" Warning "Kubernetes" "egress open to 0.0.0.0/0 (or ::/0) without excepting private ranges and the metadata address" "add ipBlock.except: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16, 100.64.0.0/10";
    "SB021" Warning "Kubernetes" "DNS egress on UDP 53 without TCP 53 (large answers fail)" "allow port 53 on TCP as well";
    "SB022" Warning "Kubernetes" "a proxy sidecar shares the workload's egress (a NetworkPolicy applies to the whole pod)" "run semble-proxy as a gateway (network.proxy.placement: gateway)";
    "SB030" Error "Compose, Quadlet" "network_mode: host" "use a project network and publish only what must be reachable";
    "SB031" Warning "Compose, Quadlet" "a port published on every address (0.0.0.0)" "publish on 127.0.0.1 (\"127.0.0.1:8080:80\") unless it must be reachable from elsewhere";
    "SB040" Error "seccomp" "the seccomp profile's defaultAction allows" "default to SCMP_ACT_ERRNO and list what is allowed";
    "SB041" Error "seccomp" "the allow-list is too small to start any real program (no execve, mmap or exit_group)" "start from a real baseline (semble-policy compile --target seccomp)";
    "SB050" Error "policy" "an egress rule for every host (`*`)" "name the hosts the workload needs";
    "SB051" Warning "policy" "Landlock is best-effort for a policy that otherwise expects untrusted code (gVisor backend or default seccomp with denies)" "set filesystem.enforcement: required";
    "SB052" Error "policy" "a credential injected on a non-TLS upstream" "use a TLS upstream (port 443, tls: true) for credentialed hosts";
    "SB054" Error "policy" "the policy re-allows a syscall its baseline removes as a known way out (unshare, mount, bpf, keyctl, …)" "remove it from seccomp.allow; if the workload truly needs it, run it under gVisor";
    "SB053" Warning "policy" "the proxy runs as a sidecar on Kubernetes" "use network.proxy.placement: gateway";
}

fn rule(id: &str) -> &'static Rule {
    RULES.iter().find(|r| r.id == id).unwrap_or(&RULES[0])
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Rule ID.
    pub rule: &'static str,
    /// Severity.
    pub level: Level,
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What is wrong here.
    pub message: String,
    /// How to fix it.
    pub fix: &'static str,
}

struct Ctx<'a> {
    file: &'a str,
    source: &'a str,
    out: Vec<Finding>,
    /// Workloads seen: (namespace, position), for the namespace rule.
    workloads: Vec<(String, Pos)>,
    /// Namespaces holding a NetworkPolicy.
    netpol_ns: BTreeSet<String>,
    /// `ignore-check.semble.dev/RULE` annotations of the object being checked.
    ignored: Vec<(String, String)>,
}

impl<'a> Ctx<'a> {
    fn new(file: &'a str, source: &'a str) -> Ctx<'a> {
        Ctx { file, source, out: Vec::new(), workloads: Vec::new(), netpol_ns: BTreeSet::new(), ignored: Vec::new() }
    }

    fn add(&mut self, id: &'static str, pos: Pos, message: String) {
        self.add_at(id, rule(id).level, pos, message);
    }

    fn add_at(&mut self, id: &'static str, level: Level, pos: Pos, message: String) {
        if let Some((_, reason)) = self.ignored.iter().find(|(r, _)| r == id) {
            if reason.trim().is_empty() {
                self.out.push(finding(
                    self.file,
                    "SL001",
                    rule("SL001").level,
                    pos,
                    format!("the annotation ignore-check.semble.dev/{id} has no reason"),
                ));
            }
            return;
        }
        // Inline: on this line or the one above.
        for l in [pos.line, pos.line.saturating_sub(1)] {
            let Some(text) = self.source.lines().nth(l.saturating_sub(1) as usize) else { continue };
            if let Some(rest) = text.split("semble-lint:").nth(1) {
                let ids = rest.split("ignore=").nth(1).unwrap_or("").split_whitespace().next().unwrap_or("");
                if ids.split(',').any(|x| x == id) {
                    if !rest.contains("reason=\"") || rest.contains("reason=\"\"") {
                        self.out.push(finding(
                            self.file,
                            "SL001",
                            rule("SL001").level,
                            Pos { line: l, column: 1 },
                            format!("`semble-lint: ignore={ids}` has no reason"),
                        ));
                    }
                    return;
                }
            }
        }
        self.out.push(finding(self.file, id, level, pos, message));
    }
}

fn finding(file: &str, id: &'static str, level: Level, pos: Pos, message: String) -> Finding {
    Finding { rule: id, level, file: file.to_string(), line: pos.line, column: pos.column, message, fix: rule(id).fix }
}

fn get<'a>(n: &'a Node, key: &str) -> Option<&'a Node> {
    n.as_map().and_then(|m| m.get(key))
}

fn path<'a>(n: &'a Node, keys: &[&str]) -> Option<&'a Node> {
    let mut cur = n;
    for k in keys {
        cur = get(cur, k)?;
    }
    Some(cur)
}

fn str_of(n: Option<&Node>) -> Option<String> {
    n.and_then(|n| n.scalar_text())
}

/// What kind of document a parsed root is.
fn classify(root: &Node) -> Option<&'static str> {
    let kind = str_of(get(root, "kind"));
    if kind.as_deref() == Some("SandboxPolicy") {
        return Some("policy");
    }
    if get(root, "apiVersion").is_some() && kind.is_some() {
        return Some("kubernetes");
    }
    if get(root, "services").and_then(Node::as_map).is_some() {
        return Some("compose");
    }
    if get(root, "defaultAction").is_some() && (get(root, "syscalls").is_some() || get(root, "architectures").is_some())
    {
        return Some("seccomp");
    }
    if get(root, "ociVersion").is_some() && get(root, "process").is_some() {
        return Some("oci");
    }
    None
}

/// Lint one file's text (rules that need several files, like SB024, are applied by
/// [`lint_all`]).
pub fn lint_text(file: &str, source: &str) -> Result<Vec<Finding>, String> {
    lint_one(file, source).map(|(f, _, _)| f)
}

/// Lint several files, including the rules that look across files.
pub fn lint_all(inputs: &[(String, String)]) -> Result<Vec<Finding>, String> {
    let mut out = Vec::new();
    let mut workloads: Vec<(usize, String, Pos)> = Vec::new();
    let mut covered = BTreeSet::new();
    for (i, (name, text)) in inputs.iter().enumerate() {
        let (f, w, n) = lint_one(name, text)?;
        out.extend(f);
        workloads.extend(w.into_iter().map(|(ns, pos)| (i, ns, pos)));
        covered.extend(n);
    }
    let mut reported = BTreeSet::new();
    for (i, ns, pos) in workloads {
        if covered.contains(&ns) || !reported.insert(ns.clone()) {
            continue;
        }
        let (name, text) = &inputs[i];
        let mut ctx = Ctx::new(name, text);
        ctx.add("SB024", pos, format!("no NetworkPolicy covers namespace `{ns}`"));
        out.extend(ctx.out);
    }
    Ok(out)
}

/// One file's findings, its workloads `(namespace, position)` and the namespaces its
/// NetworkPolicies cover.
type FileResult = (Vec<Finding>, Vec<(String, Pos)>, BTreeSet<String>);

fn lint_one(file: &str, source: &str) -> Result<FileResult, String> {
    let mut ctx = Ctx::new(file, source);
    if is_quadlet(file, source) {
        lint_quadlet(&mut ctx);
        return Ok((ctx.out, ctx.workloads, ctx.netpol_ns));
    }
    let docs = semble_policy::yaml::parse_stream(source)
        .map_err(|e| format!("{file}:{}:{}: {}", e.pos.line, e.pos.column, e.message))?;
    for d in &docs {
        match classify(&d.root) {
            Some("policy") => lint_policy(&mut ctx, &d.root),
            Some("kubernetes") => lint_k8s(&mut ctx, &d.root),
            Some("compose") => lint_compose(&mut ctx, &d.root),
            Some("seccomp") => lint_seccomp(&mut ctx, &d.root),
            Some("oci") => lint_oci(&mut ctx, &d.root),
            _ => {}
        }
        ctx.ignored.clear();
    }
    Ok((ctx.out, ctx.workloads, ctx.netpol_ns))
}

const BASELINE_CAPS: &[&str] = &[
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

fn cap_name(s: &str) -> String {
    s.trim().trim_start_matches("CAP_").to_ascii_uppercase()
}

fn check_caps(ctx: &mut Ctx, list: &Node, what: &str) {
    for c in list.as_seq().unwrap_or(&[]) {
        let Some(name) = c.scalar_text() else { continue };
        let n = cap_name(&name);
        let dangerous = semble_policy::caps::Capability::parse(&n).is_some_and(|c| c.is_dangerous());
        if n == "ALL" || dangerous || !BASELINE_CAPS.contains(&n.as_str()) {
            ctx.add("SB005", c.pos, format!("{what} adds capability {n}"));
        }
    }
}

const DEFAULT_CREDENTIALS: &[(&str, &[&str])] = &[
    ("GF_SECURITY_ADMIN_PASSWORD", &["admin"]),
    ("POSTGRES_PASSWORD", &["postgres", "password"]),
    ("MYSQL_ROOT_PASSWORD", &["root", "password", "mysql"]),
    ("MONGO_INITDB_ROOT_PASSWORD", &["example", "password", "mongo"]),
    ("RABBITMQ_DEFAULT_PASS", &["guest"]),
    ("MINIO_ROOT_PASSWORD", &["minioadmin"]),
    ("REDIS_PASSWORD", &["redis", "password"]),
];

fn check_env_value(ctx: &mut Ctx, name: &str, value: &str, pos: Pos) {
    for (var, bad) in DEFAULT_CREDENTIALS {
        if name == *var && bad.contains(&value) {
            ctx.add("SB013", pos, format!("{name}={value} is the image's default credential"));
        }
    }
}

fn check_image(ctx: &mut Ctx, img: &Node) {
    let Some(s) = img.scalar_text() else { return };
    if s.contains('@') {
        return;
    }
    let last = s.rsplit('/').next().unwrap_or(&s);
    match last.split_once(':') {
        None => ctx.add("SB012", img.pos, format!("image `{s}` has no tag (it means :latest)")),
        Some((_, "latest")) => ctx.add("SB012", img.pos, format!("image `{s}` uses :latest")),
        _ => {}
    }
}

/// The pod spec of a workload object, if it has one.
fn pod_spec(root: &Node) -> Option<(&Node, Option<&Node>)> {
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

fn annotations(meta: Option<&Node>) -> Vec<(String, String)> {
    meta.and_then(|m| get(m, "annotations"))
        .and_then(Node::as_map)
        .map(|m| m.iter().map(|(k, v)| (k.name.clone(), v.scalar_text().unwrap_or_default())).collect())
        .unwrap_or_default()
}

fn lint_k8s(ctx: &mut Ctx, root: &Node) {
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
        lint_netpol(ctx, root);
        return;
    }
    let Some((spec, tmeta)) = pod_spec(root) else { return };
    if !truthy_host_network(spec) {
        ctx.workloads.push((ns, get(root, "kind").map_or(root.pos, |k| k.pos)));
    }
    lint_pss_extra(ctx, spec, &ann);
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
    let policy_ann = ann.iter().any(|(k, _)| k == "semble.dev/policy");
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
fn lint_pss_extra(ctx: &mut Ctx, spec: &Node, ann: &[(String, String)]) {
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

/// Whether a file is a Quadlet unit (by extension, or a `[Container]`-style section).
fn is_quadlet(file: &str, source: &str) -> bool {
    const EXT: &[&str] = &[".container", ".pod", ".kube", ".network", ".volume"];
    EXT.iter().any(|e| file.ends_with(e))
        || source.lines().any(|l| matches!(l.trim(), "[Container]" | "[Pod]" | "[Kube]"))
}

/// Quadlet units: `[Container]` / `[Pod]` keys Podman turns into `podman run` flags.
fn lint_quadlet(ctx: &mut Ctx) {
    let source = ctx.source.to_string();
    let mut section = String::new();
    for (i, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let (key, value) = (key.trim(), value.trim());
        let col = u32::try_from(raw.find(value).unwrap_or(0) + 1).unwrap_or(1);
        let pos = Pos { line: u32::try_from(i + 1).unwrap_or(u32::MAX), column: col };
        let what = format!("[{section}]");
        match (section.as_str(), key) {
            ("Container", "Image") => {
                let node = Node { value: Value::String(value.to_string()), pos };
                check_image(ctx, &node);
            }
            ("Container" | "Pod", "Network") if value == "host" => {
                ctx.add("SB030", pos, format!("{what} uses the host's network"))
            }
            ("Container" | "Pod", "PodmanArgs") if value.split_whitespace().any(|a| a == "--privileged") => {
                ctx.add("SB001", pos, format!("{what} passes --privileged"))
            }
            ("Container", "AddCapability") => {
                for cap in value.split_whitespace() {
                    let n = cap_name(cap);
                    let dangerous = semble_policy::caps::Capability::parse(&n).is_some_and(|c| c.is_dangerous());
                    if n == "ALL" || dangerous || !BASELINE_CAPS.contains(&n.as_str()) {
                        ctx.add("SB005", pos, format!("{what} adds capability {n}"));
                    }
                }
            }
            ("Container", "SeccompProfile") if value == "unconfined" => {
                ctx.add("SB008", pos, format!("{what} runs without seccomp"))
            }
            ("Container" | "Pod", "PublishPort") => {
                let parts: Vec<&str> = value.split(':').collect();
                if parts.len() <= 2 || parts[0].is_empty() || parts[0] == "0.0.0.0" {
                    ctx.add("SB031", pos, format!("{what} publishes {value} on every address"));
                }
            }
            ("Container", "Environment") => {
                for kv in value.split_whitespace() {
                    if let Some((k, v)) = kv.trim_matches('"').split_once('=') {
                        check_env_value(ctx, k, v, pos);
                    }
                }
            }
            _ => {}
        }
    }
}

fn lint_netpol(ctx: &mut Ctx, root: &Node) {
    for rule in path(root, &["spec", "egress"]).and_then(Node::as_seq).unwrap_or(&[]) {
        for peer in get(rule, "to").and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(b) = get(peer, "ipBlock") {
                let cidr = str_of(get(b, "cidr")).unwrap_or_default();
                let except: Vec<String> = get(b, "except")
                    .and_then(Node::as_seq)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(Node::scalar_text)
                    .collect();
                let open = cidr == "0.0.0.0/0" || cidr == "::/0";
                let guards_metadata = except.iter().any(|e| {
                    e == "169.254.0.0/16"
                        || e == "169.254.169.254/32"
                        || e.starts_with("fe80::")
                        || e.starts_with("fc00::")
                        || e.starts_with("fd00:")
                });
                if open && !guards_metadata {
                    ctx.add(
                        "SB020",
                        b.pos,
                        format!("egress to {cidr} reaches private ranges and the metadata address"),
                    );
                }
            }
        }
        let ports: Vec<(i64, String)> = get(rule, "ports")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|p| {
                Some((get(p, "port")?.as_i64()?, str_of(get(p, "protocol")).unwrap_or_else(|| "TCP".into())))
            })
            .collect();
        if ports.iter().any(|(p, pr)| *p == 53 && pr == "UDP") && !ports.iter().any(|(p, pr)| *p == 53 && pr == "TCP") {
            let pos = get(rule, "ports").map_or(rule.pos, |n| n.pos);
            ctx.add("SB021", pos, "DNS is allowed on UDP 53 only".into());
        }
    }
}

fn lint_compose(ctx: &mut Ctx, root: &Node) {
    let Some(services) = get(root, "services").and_then(Node::as_map) else { return };
    for (name, svc) in services.iter() {
        let what = format!("service `{}`", name.name);
        if let Some(img) = get(svc, "image") {
            check_image(ctx, img);
        }
        if let Some(p) = get(svc, "privileged") {
            if p.as_bool() == Some(true) {
                ctx.add("SB001", p.pos, format!("{what} is privileged"));
            }
        }
        if let Some(n) = get(svc, "network_mode") {
            if n.scalar_text().as_deref() == Some("host") {
                ctx.add("SB030", n.pos, format!("{what} uses the host's network"));
            }
        }
        if let Some(c) = get(svc, "cap_add") {
            check_caps(ctx, c, &what);
        }
        for o in get(svc, "security_opt").and_then(Node::as_seq).unwrap_or(&[]) {
            let t = o.scalar_text().unwrap_or_default();
            if t.replace('=', ":") == "seccomp:unconfined" {
                ctx.add("SB008", o.pos, format!("{what} runs without seccomp"));
            }
        }
        for p in get(svc, "ports").and_then(Node::as_seq).unwrap_or(&[]) {
            let published_everywhere = match &p.value {
                Value::String(s) => {
                    let parts: Vec<&str> = s.split(':').collect();
                    parts.len() <= 2 || parts[0].is_empty() || parts[0] == "0.0.0.0"
                }
                Value::Int(_) => true,
                Value::Map(_) => {
                    str_of(get(p, "host_ip")).is_none_or(|h| h == "0.0.0.0") && get(p, "published").is_some()
                }
                _ => false,
            };
            if published_everywhere {
                ctx.add(
                    "SB031",
                    p.pos,
                    format!("{what} publishes {} on every address", p.scalar_text().unwrap_or_else(|| "a port".into())),
                );
            }
        }
        match get(svc, "environment").map(|e| &e.value) {
            Some(Value::Map(m)) => {
                for (k, v) in m.iter() {
                    check_env_value(ctx, &k.name, &v.scalar_text().unwrap_or_default(), v.pos);
                }
            }
            Some(Value::Seq(items)) => {
                for i in items {
                    if let Some((k, v)) = i.scalar_text().as_deref().and_then(|t| t.split_once('=')) {
                        check_env_value(ctx, k, v, i.pos);
                    }
                }
            }
            _ => {}
        }
    }
}

fn lint_seccomp(ctx: &mut Ctx, root: &Node) {
    let default = get(root, "defaultAction");
    if let Some(d) = default {
        if matches!(d.scalar_text().as_deref(), Some("SCMP_ACT_ALLOW" | "SCMP_ACT_LOG")) {
            ctx.add(
                "SB040",
                d.pos,
                format!("defaultAction {} lets every syscall not listed through", d.scalar_text().unwrap_or_default()),
            );
            return;
        }
    }
    let mut allowed = BTreeSet::new();
    for s in get(root, "syscalls").and_then(Node::as_seq).unwrap_or(&[]) {
        if str_of(get(s, "action")).as_deref() == Some("SCMP_ACT_ALLOW") {
            for n in get(s, "names").and_then(Node::as_seq).unwrap_or(&[]) {
                if let Some(t) = n.scalar_text() {
                    allowed.insert(t);
                }
            }
        }
    }
    let needed = ["execve", "mmap", "exit_group", "brk"];
    let missing: Vec<&str> = needed.iter().copied().filter(|n| !allowed.contains(*n)).collect();
    if !missing.is_empty() {
        let pos = get(root, "syscalls").map_or(root.pos, |n| n.pos);
        ctx.add(
            "SB041",
            pos,
            format!("{} syscalls allowed, without {}: no program can start", allowed.len(), missing.join(", ")),
        );
    }
}

fn lint_oci(ctx: &mut Ctx, root: &Node) {
    if let Some(caps) = path(root, &["process", "capabilities", "bounding"]) {
        check_caps(ctx, caps, "the process");
    }
    if path(root, &["root", "readonly"]).and_then(Node::as_bool) != Some(true) {
        let pos = get(root, "root").map_or(root.pos, |n| n.pos);
        ctx.add("SB010", pos, "the root filesystem is writable (root.readonly is not true)".into());
    }
}

fn lint_policy(ctx: &mut Ctx, root: &Node) {
    let parsed = match semble_policy::parse(ctx.source) {
        Ok(p) => p,
        Err(e) => {
            for d in e.diagnostics.iter().filter(|d| d.severity == semble_policy::Severity::Error) {
                let msg = match &d.help {
                    Some(h) => format!("{}; {h}", d.message),
                    None => d.message.clone(),
                };
                ctx.add("SP000", d.pos.unwrap_or(root.pos), msg.replace(['\n', '\r'], " "));
            }
            return;
        }
    };
    let p = &parsed.policy;
    let pos = |path: &str| p.pos(path).unwrap_or(root.pos);
    for (i, r) in p.network.egress.iter().enumerate() {
        if r.host == semble_policy::model::HostPattern::Any {
            ctx.add(
                "SB050",
                pos(&format!("spec.network.egress[{i}].host")),
                "`host: \"*\"` lets the workload reach any name".into(),
            );
        }
        if r.credential.is_some() && !r.tls {
            ctx.add(
                "SB052",
                pos(&format!("spec.network.egress[{i}].credential")),
                format!(
                    "credential `{}` would travel in clear text to {}",
                    r.credential.clone().unwrap_or_default(),
                    r.host
                ),
            );
        }
    }
    for (i, name) in p.seccomp.allow.iter().enumerate() {
        if let Some(g) = semble_seccomp::baseline::NEVER_BY_DEFAULT.iter().find(|g| g.names.contains(&name.as_str())) {
            ctx.add(
                "SB054",
                pos(&format!("spec.seccomp.allow[{i}]")),
                format!("`{name}` is removed by every baseline: {}", g.reason),
            );
        }
    }
    if let Some(fs) = &p.filesystem {
        let untrusted = p.runtime.backend == Some(semble_policy::model::Backend::Gvisor) || !p.seccomp.deny.is_empty();
        if fs.enforcement == semble_policy::model::Enforcement::BestEffort && untrusted {
            ctx.add(
                "SB051",
                pos("spec.filesystem.enforcement"),
                "Landlock may silently be off on an old kernel".into(),
            );
        }
    }
    if p.network.mode == semble_policy::model::NetworkMode::Proxy
        && p.network.proxy.placement == semble_policy::model::ProxyPlacement::Sidecar
    {
        ctx.add(
            "SB053",
            pos("spec.network.proxy.placement"),
            "a NetworkPolicy cannot keep the workload's egress narrower than its sidecar proxy's".into(),
        );
    }
}

/// File extensions lint reads from directories.
pub const LINT_EXTENSIONS: &[&str] = &["yaml", "yml", "json", "container", "pod", "kube", "network", "volume"];
/// File extensions of Kubernetes manifests.
pub const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Files under `paths`: files named are taken as they are; directories are walked recursively
/// for `extensions` (hidden entries, `exclude` globs and the strategic-merge patches a
/// `kustomization.yaml` names are skipped); `-` is standard input.
pub fn collect(paths: &[PathBuf], exclude: &[String], extensions: &[&str]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, exclude, extensions, &mut out, true)?;
    }
    Ok(out)
}

fn excluded(p: &Path, exclude: &[String]) -> bool {
    let s = p.display().to_string();
    exclude
        .iter()
        .any(|pat| glob_match(pat, &s) || p.file_name().is_some_and(|n| glob_match(pat, &n.to_string_lossy())))
}

/// `*` matches anything (including `/`); `?` one character.
fn glob_match(pat: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], s) || (!s.is_empty() && m(p, &s[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pat.as_bytes(), s.as_bytes())
}

fn walk(
    p: &Path,
    exclude: &[String],
    extensions: &[&str],
    out: &mut Vec<PathBuf>,
    explicit: bool,
) -> Result<(), String> {
    if p == Path::new("-") {
        out.push(p.to_path_buf());
        return Ok(());
    }
    if !explicit && excluded(p, exclude) {
        return Ok(());
    }
    let meta = std::fs::metadata(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
    if meta.is_dir() {
        let patches = kustomize_patches(p);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| format!("cannot read directory `{}`: {e}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|e| !e.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        entries.sort();
        for e in entries {
            let lintable =
                e.is_dir() || e.extension().and_then(|x| x.to_str()).is_some_and(|x| extensions.contains(&x));
            // Strategic-merge patches are fragments of objects, not objects: lint what
            // `kubectl kustomize` builds instead.
            if lintable && !patches.contains(&e) {
                walk(&e, exclude, extensions, out, false)?;
            }
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// `.semble-lint.yaml`: rules turned off or given another severity, and excluded paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Rule → `None` (off) or a severity.
    pub rules: Vec<(String, Option<Level>)>,
    /// Globs of paths to skip.
    pub exclude: Vec<String>,
}

impl Config {
    /// Read a configuration file's text; errors are `file:line:column: message`.
    pub fn parse(file: &str, text: &str) -> Result<Config, String> {
        let root = semble_policy::yaml::parse(text)
            .map_err(|e| format!("{file}:{}:{}: {}", e.pos.line, e.pos.column, e.message))?;
        let at = |n: &Node, m: String| format!("{file}:{}:{}: {m}", n.pos.line, n.pos.column);
        let mut cfg = Config::default();
        let Some(map) = root.as_map() else {
            return if root.is_null() {
                Ok(cfg)
            } else {
                Err(at(&root, "expected a mapping with `rules` and `exclude`".into()))
            };
        };
        for (k, v) in map.iter() {
            match k.name.as_str() {
                "rules" => {
                    let Some(rules) = v.as_map() else {
                        return Err(at(v, "`rules` maps rule IDs to off, info, warning or error".into()));
                    };
                    for (id, level) in rules.iter() {
                        if !RULES.iter().any(|r| r.id == id.name) {
                            return Err(format!(
                                "{file}:{}:{}: unknown rule `{}`; `semble-policy lint --list-rules` lists them",
                                id.pos.line, id.pos.column, id.name
                            ));
                        }
                        let l = match level.scalar_text().as_deref() {
                            Some("off") | Some("false") => None,
                            Some("info") => Some(Level::Info),
                            Some("warning") => Some(Level::Warning),
                            Some("error") => Some(Level::Error),
                            _ => return Err(at(level, format!("`{}` must be off, info, warning or error", id.name))),
                        };
                        cfg.rules.push((id.name.clone(), l));
                    }
                }
                "exclude" => {
                    for g in v.as_seq().unwrap_or(&[]) {
                        cfg.exclude
                            .push(g.scalar_text().ok_or_else(|| at(g, "exclude entries are glob strings".into()))?);
                    }
                }
                other => {
                    return Err(format!(
                        "{file}:{}:{}: unknown key `{other}`; expected `rules` or `exclude`",
                        k.pos.line, k.pos.column
                    ))
                }
            }
        }
        Ok(cfg)
    }

    /// Apply rule settings to findings.
    pub fn apply(&self, findings: Vec<Finding>) -> Vec<Finding> {
        findings
            .into_iter()
            .filter_map(|mut f| match self.rules.iter().find(|(id, _)| id == f.rule) {
                Some((_, None)) => None,
                Some((_, Some(l))) => {
                    f.level = *l;
                    Some(f)
                }
                None => Some(f),
            })
            .collect()
    }
}

/// The patch files a `kustomization.yaml` in `dir` names.
fn kustomize_patches(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(dir.join("kustomization.yaml")) else { return Vec::new() };
    let Ok(root) = semble_policy::yaml::parse(&text) else { return Vec::new() };
    let mut out = Vec::new();
    for key in ["patchesStrategicMerge", "patches"] {
        for item in get(&root, key).and_then(Node::as_seq).unwrap_or(&[]) {
            let file = item.scalar_text().or_else(|| str_of(get(item, "path")));
            if let Some(f) = file {
                out.push(dir.join(f));
            }
        }
    }
    out
}

/// SARIF 2.1.0 for GitHub code scanning.
pub fn sarif(findings: &[Finding]) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": format!("{} Applies to: {}.", r.summary, r.applies)},
                "help": {"text": r.fix, "markdown": format!("**Fix:** {}", r.fix)},
                "helpUri": format!("https://github.com/semble-dev/semble/blob/main/docs/lint-rules.md#{}", r.id.to_ascii_lowercase()),
                "defaultConfiguration": {"level": sarif_level(r.level)},
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule).unwrap_or(0),
                "level": sarif_level(f.level),
                "message": {"text": format!("{} Fix: {}", f.message, f.fix)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.file.trim_start_matches("./")},
                    "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1)}
                }}],
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "semble-policy lint", "informationUri": "https://github.com/semble-dev/semble", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "results": results,
        }]
    })
}

fn sarif_level(l: Level) -> &'static str {
    match l {
        Level::Info => "note",
        Level::Warning => "warning",
        Level::Error => "error",
    }
}

/// JUnit XML: one test case per file, failed when it has findings.
pub fn junit(files: &[String], findings: &[Finding]) -> String {
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    }
    let failed = files.iter().filter(|f| findings.iter().any(|x| &x.file == *f)).count();
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"semble-policy lint\" tests=\"{}\" failures=\"{failed}\">\n", files.len());
    for f in files {
        out.push_str(&format!("  <testcase classname=\"semble-lint\" name=\"{}\">\n", esc(f)));
        for x in findings.iter().filter(|x| &x.file == f) {
            out.push_str(&format!(
                "    <failure type=\"{}\" message=\"{}\">{}:{}:{}: {} ({}) fix: {}</failure>\n",
                x.rule,
                esc(&x.message),
                esc(&x.file),
                x.line,
                x.column,
                esc(&x.message),
                x.level.as_str(),
                esc(x.fix)
            ));
        }
        out.push_str("  </testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

/// Text: `file:line:column: level RULE message` and the fix.
pub fn text(findings: &[Finding], colour: bool) -> String {
    let mut out = String::new();
    for f in findings {
        let (a, b) = if colour {
            (
                match f.level {
                    Level::Error => "\x1b[31m",
                    Level::Warning => "\x1b[33m",
                    Level::Info => "\x1b[36m",
                },
                "\x1b[0m",
            )
        } else {
            ("", "")
        };
        out.push_str(&format!(
            "{}:{}:{}: {a}{}{b} {} {}\n    fix: {}\n",
            f.file,
            f.line,
            f.column,
            f.level.as_str(),
            f.rule,
            f.message,
            f.fix
        ));
    }
    out
}

/// The catalogue as Markdown (`docs/lint-rules.md`).
pub fn rules_markdown() -> String {
    let mut out = String::from("# Lint rules\n\nGenerated by `semble-policy lint --list-rules --format markdown`; do not edit by hand.\n\nSuppress a finding with `# semble-lint: ignore=RULE reason=\"…\"` on its line or the line above, or\nwith the annotation `ignore-check.semble.dev/RULE: \"reason\"` on a Kubernetes object. A suppression\nwithout a reason is itself a finding (SL001).\n\n| rule | severity | applies to | finds | fix |\n|---|---|---|---|---|\n");
    for r in RULES {
        out.push_str(&format!(
            "| <a id=\"{}\"></a>`{}` | {} | {} | {} | {} |\n",
            r.id.to_ascii_lowercase(),
            r.id,
            r.level.as_str(),
            r.applies,
            r.summary,
            r.fix.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.tmp.yaml", "a.tmp.yaml"));
        assert!(glob_match("vendor/*", "vendor/x/y.yaml"));
        assert!(!glob_match("vendor/*", "src/vendor.yaml"));
    }

    #[test]
    fn rule_ids_are_unique() {
        let ids: BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), RULES.len());
    }
}
