//! Text → [`SandboxPolicy`], with every problem reported at once.
//!
//! Reading happens in one pass over the spanned tree: each section is read field by field, and
//! each value is checked where it is read (names known, paths absolute, ranges valid). Checks that
//! relate fields to each other (a syscall both allowed and denied, egress rules without a network)
//! run after, on what was read.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use crate::caps::Capability;
use crate::diag::{did_you_mean, Diagnostic, Pos, Severity};
use crate::errno;
use crate::model::*;
use crate::quantity;
use crate::read::{index, join, Reader};
use crate::syscalls;
use crate::yaml::{self, Node, Value};

/// Why a policy could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct PolicyError {
    /// Everything found, in source order; at least one is an error.
    pub diagnostics: Vec<Diagnostic>,
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().filter(|d| d.severity == Severity::Error).map(|d| d.render(None)).collect::<Vec<_>>().join("\n")
}

impl PolicyError {
    /// One line per diagnostic, each prefixed with `file`.
    pub fn render_with_file(&self, file: &str) -> Vec<String> {
        self.diagnostics.iter().map(|d| d.render(Some(file))).collect()
    }

    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }
}

/// A successfully read policy with the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The policy.
    pub policy: SandboxPolicy,
    /// Warnings and notes (never errors).
    pub warnings: Vec<Diagnostic>,
}

/// Parse and validate a policy from YAML or JSON text.
pub fn parse(src: &str) -> Result<Parsed, PolicyError> {
    let root = yaml::parse(src).map_err(|e| PolicyError {
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            pos: Some(e.pos),
            path: String::new(),
            message: e.message,
            help: None,
        }],
    })?;
    from_node(&root)
}

/// Validate a policy from an already parsed document (lint reads streams of many documents).
pub fn from_node(root: &Node) -> Result<Parsed, PolicyError> {
    let mut r = Reader::default();
    let policy = read_policy(&mut r, root);
    let Reader { diags, positions } = r;
    match policy {
        Some(mut policy) if !diags.has_errors() => {
            policy.positions = positions;
            Ok(Parsed { policy, warnings: diags.into_sorted() })
        }
        _ => {
            let mut diags = diags;
            if !diags.has_errors() {
                diags.error(Some(root.pos), "", "the document is not a SandboxPolicy", None);
            }
            Err(PolicyError { diagnostics: diags.into_sorted() })
        }
    }
}

/// Whether a parsed document claims to be a SandboxPolicy (used to detect input kinds).
pub fn is_policy_document(root: &Node) -> bool {
    root.get_path(&["kind"]).and_then(Node::as_str) == Some(KIND)
        && root.get_path(&["apiVersion"]).and_then(Node::as_str).is_some_and(|v| v.starts_with("semble.dev/"))
}

fn read_policy(r: &mut Reader, root: &Node) -> Option<SandboxPolicy> {
    let Some(top) = r.map(root, "", &["apiVersion", "kind", "metadata", "spec"]) else {
        if root.is_null() {
            r.error(
                root.pos,
                "",
                "the document is empty",
                Some(format!("start with `apiVersion: {API_VERSION}` and `kind: {KIND}`")),
            );
        }
        return None;
    };
    match top.get("apiVersion") {
        Some(n) => {
            if let Some(v) = r.string(n, "apiVersion") {
                if v != API_VERSION {
                    r.error(
                        n.pos,
                        "apiVersion",
                        format!("unsupported apiVersion `{v}`"),
                        Some(format!("use `{API_VERSION}`")),
                    );
                }
            }
        }
        None => r.missing(root.pos, "", "apiVersion", &format!("apiVersion: {API_VERSION}")),
    }
    match top.get("kind") {
        Some(n) => {
            if let Some(v) = r.string(n, "kind") {
                if v != KIND {
                    r.error(n.pos, "kind", format!("unsupported kind `{v}`"), Some(format!("use `{KIND}`")));
                }
            }
        }
        None => r.missing(root.pos, "", "kind", &format!("kind: {KIND}")),
    }
    let (name, description) = match top.get("metadata") {
        Some(n) => read_metadata(r, n),
        None => {
            r.missing(root.pos, "", "metadata", "metadata: {name: workspace}");
            (None, None)
        }
    };
    let empty = Node { value: Value::Null, pos: root.pos };
    let spec_node = top.get("spec").unwrap_or(&empty);
    if top.get("spec").is_none() {
        r.missing(root.pos, "", "spec", "spec: {}");
    }
    let spec = r.map(
        spec_node,
        "spec",
        &[
            "runtime",
            "process",
            "capabilities",
            "seccomp",
            "filesystem",
            "selinux",
            "network",
            "devices",
            "kubernetes",
            "resources",
            "selection",
        ],
    );
    let get = |key: &str| spec.and_then(|m| m.get(key));

    let runtime = get("runtime").map(|n| read_runtime(r, n)).unwrap_or_default();
    let process = get("process").map(|n| read_process(r, n)).unwrap_or_default();
    let capabilities = get("capabilities").map(|n| read_capabilities(r, n)).unwrap_or_default();
    let seccomp = get("seccomp").map(|n| read_seccomp(r, n)).unwrap_or_default();
    let filesystem = get("filesystem").and_then(|n| read_filesystem(r, n));
    let selinux = get("selinux").and_then(|n| read_selinux(r, n));
    let network = get("network").map(|n| read_network(r, n)).unwrap_or_default();
    let devices = get("devices").map(|n| read_devices(r, n)).unwrap_or_default();
    let kubernetes = get("kubernetes").map(|n| read_kubernetes(r, n)).unwrap_or_default();
    let resources = get("resources").map(|n| read_resources(r, n)).unwrap_or_default();
    let selection = get("selection").map(|n| read_selection(r, n)).unwrap_or_default();

    let policy = SandboxPolicy {
        name: name?,
        description,
        runtime,
        process,
        capabilities,
        seccomp,
        filesystem,
        selinux,
        network,
        devices,
        kubernetes,
        resources,
        selection,
        positions: BTreeMap::new(),
    };
    cross_checks(r, &policy);
    Some(policy)
}

fn read_metadata(r: &mut Reader, node: &Node) -> (Option<String>, Option<String>) {
    let Some(m) = r.map(node, "metadata", &["name", "description", "labels", "annotations"]) else {
        r.missing(node.pos, "metadata", "name", "name: workspace");
        return (None, None);
    };
    let name = match m.get("name") {
        Some(n) => r.string(n, "metadata.name").and_then(|name| {
            if is_dns_label(&name) {
                Some(name)
            } else {
                r.error(
                    n.pos,
                    "metadata.name",
                    format!("`{name}` is not a valid policy name"),
                    Some("use lower-case letters, digits and `-`, at most 63 characters, starting and ending with a letter or digit".into()),
                );
                None
            }
        }),
        None => {
            r.missing(node.pos, "metadata", "name", "name: workspace");
            None
        }
    };
    let description = m.get("description").and_then(|n| r.string(n, "metadata.description"));
    if let Some(n) = m.get("labels") {
        r.string_map(n, "metadata.labels");
    }
    if let Some(n) = m.get("annotations") {
        r.string_map(n, "metadata.annotations");
    }
    (name, description)
}

const BACKENDS: &[(&str, Backend)] =
    &[("gvisor", Backend::Gvisor), ("runc", Backend::Runc), ("embedded", Backend::Embedded)];

fn read_runtime(r: &mut Reader, node: &Node) -> Runtime {
    let path = "spec.runtime";
    let Some(m) = r.map(node, path, &["backend", "fallback", "gvisor"]) else {
        return Runtime::default();
    };
    let backend = m.get("backend").and_then(|n| r.one_of(n, "spec.runtime.backend", BACKENDS));
    let mut fallback: Vec<Backend> = Vec::new();
    if let Some(n) = m.get("fallback") {
        // One backend, or an ordered list of them.
        let items: Vec<(&Node, String)> = match &n.value {
            Value::Seq(items) => {
                items.iter().enumerate().map(|(i, it)| (it, index("spec.runtime.fallback", i))).collect()
            }
            _ => vec![(n, "spec.runtime.fallback".to_string())],
        };
        for (item, ipath) in items {
            let Some(f) = r.one_of(item, &ipath, BACKENDS) else {
                continue;
            };
            if Some(f) == backend {
                r.error(
                    item.pos,
                    &ipath,
                    format!("fallback `{f}` is the backend itself"),
                    Some("remove it from `fallback`".into()),
                );
            } else if fallback.contains(&f) {
                r.error(
                    item.pos,
                    &ipath,
                    format!("fallback `{f}` is listed twice"),
                    Some("remove the duplicate".into()),
                );
            } else {
                fallback.push(f);
            }
        }
        if backend.is_none() {
            r.warning(
                n.pos,
                "spec.runtime.fallback",
                "`fallback` has no effect without `backend`",
                Some("set `backend`, or remove `fallback`".into()),
            );
        }
    }
    let mut gvisor_platform = None;
    if let Some(g) = m.get("gvisor") {
        if let Some(gm) = r.map(g, "spec.runtime.gvisor", &["platform"]) {
            gvisor_platform = gm.get("platform").and_then(|n| {
                r.one_of(
                    n,
                    "spec.runtime.gvisor.platform",
                    &[("ptrace", "ptrace"), ("systrap", "systrap"), ("kvm", "kvm")],
                )
                .map(str::to_string)
            });
        }
    }
    Runtime { backend, fallback, gvisor_platform }
}

fn read_process(r: &mut Reader, node: &Node) -> Process {
    let path = "spec.process";
    let mut p = Process::default();
    let Some(m) = r.map(
        node,
        path,
        &[
            "user",
            "group",
            "supplementaryGroups",
            "runAsNonRoot",
            "noNewPrivileges",
            "readOnlyRootFilesystem",
            "rlimits",
        ],
    ) else {
        return p;
    };
    p.user = m.get("user").and_then(|n| r.u32(n, "spec.process.user"));
    p.group = m.get("group").and_then(|n| r.u32(n, "spec.process.group"));
    if let Some(n) = m.get("supplementaryGroups") {
        let items = r.list(n, "spec.process.supplementaryGroups");
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = index("spec.process.supplementaryGroups", i);
            if let Some(g) = r.u32(item, &ipath) {
                if !seen.insert(g) {
                    r.error(
                        item.pos,
                        &ipath,
                        format!("group `{g}` is listed twice"),
                        Some("remove the duplicate".into()),
                    );
                }
                p.supplementary_groups.push(g);
            }
        }
    }
    if let Some(b) = m.get("runAsNonRoot").and_then(|n| r.bool(n, "spec.process.runAsNonRoot")) {
        p.run_as_non_root = b;
    }
    if let Some(b) = m.get("noNewPrivileges").and_then(|n| r.bool(n, "spec.process.noNewPrivileges")) {
        p.no_new_privileges = b;
    }
    if let Some(b) = m.get("readOnlyRootFilesystem").and_then(|n| r.bool(n, "spec.process.readOnlyRootFilesystem")) {
        p.read_only_root_filesystem = b;
    }
    if p.run_as_non_root && !p.no_new_privileges {
        if let Some(n) = m.get("noNewPrivileges") {
            r.error(
                n.pos,
                "spec.process.noNewPrivileges",
                "`noNewPrivileges: false` contradicts `runAsNonRoot: true`: a setuid-root program would make the workload root",
                Some("remove `noNewPrivileges: false`, or set `runAsNonRoot: false`".into()),
            );
        }
    }
    if p.run_as_non_root && p.user == Some(0) {
        if let Some(n) = m.get("user") {
            r.error(
                n.pos,
                "spec.process.user",
                "`user: 0` contradicts `runAsNonRoot: true`",
                Some("run as a non-zero uid such as `1000`".into()),
            );
        }
    }
    if let Some(n) = m.get("rlimits") {
        p.rlimits = read_rlimits(r, n);
    }
    p
}

fn read_rlimits(r: &mut Reader, node: &Node) -> BTreeMap<Rlimit, RlimitValue> {
    let path = "spec.process.rlimits";
    let names: Vec<&str> = Rlimit::ALL.iter().map(|(n, _)| *n).collect();
    let mut out = BTreeMap::new();
    let Some(m) = r.map(node, path, &names) else {
        return out;
    };
    for (key, value) in m.iter() {
        let Some((_, limit)) = Rlimit::ALL.iter().find(|(n, _)| *n == key.name) else {
            continue;
        };
        let lpath = join(path, &key.name);
        let v = match &value.value {
            Value::Int(_) => r.u64(value, &lpath).map(|v| RlimitValue { soft: v, hard: v }),
            Value::Map(_) => {
                let Some(lm) = r.map(value, &lpath, &["soft", "hard"]) else {
                    continue;
                };
                let soft = lm.get("soft").and_then(|n| r.u64(n, &join(&lpath, "soft")));
                let hard = lm.get("hard").and_then(|n| r.u64(n, &join(&lpath, "hard")));
                match (soft, hard) {
                    (Some(s), Some(h)) if s > h => {
                        r.error(
                            value.pos,
                            &lpath,
                            format!("soft limit `{s}` is above hard limit `{h}`"),
                            Some("make `soft` at most `hard`".into()),
                        );
                        None
                    }
                    (Some(s), Some(h)) => Some(RlimitValue { soft: s, hard: h }),
                    (Some(v), None) | (None, Some(v)) => Some(RlimitValue { soft: v, hard: v }),
                    (None, None) => {
                        r.missing(value.pos, &lpath, "hard", "hard: 1024");
                        None
                    }
                }
            }
            _ => {
                r.error(
                    value.pos,
                    &lpath,
                    format!("expected an integer or `{{soft, hard}}` at `{lpath}`, found {}", value.kind()),
                    Some("for example `nofile: 1024`".into()),
                );
                None
            }
        };
        if let Some(v) = v {
            out.insert(*limit, v);
        }
    }
    out
}

fn read_capabilities(r: &mut Reader, node: &Node) -> Capabilities {
    let path = "spec.capabilities";
    let mut caps = Capabilities { drop_all: false, drop: BTreeSet::new(), add: BTreeSet::new() };
    let Some(m) = r.map(node, path, &["drop", "add"]) else {
        return Capabilities::default();
    };
    let cap_names = || Capability::ALL.iter().map(|c| c.short_name());
    let read_list = |r: &mut Reader, field: &str, allow_all: bool| -> Vec<(Option<Capability>, bool, Pos)> {
        let lpath = join(path, field);
        let mut out = Vec::new();
        let Some(list) = m.get(field) else { return out };
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (i, item) in r.list(list, &lpath).iter().enumerate() {
            let ipath = index(&lpath, i);
            let Some(name) = r.string(item, &ipath) else {
                continue;
            };
            if !seen.insert(name.trim_start_matches("CAP_").to_string()) {
                r.error(
                    item.pos,
                    &ipath,
                    format!("capability `{name}` is listed twice in `{lpath}`"),
                    Some("remove the duplicate".into()),
                );
                continue;
            }
            if name == "ALL" {
                if allow_all {
                    out.push((None, true, item.pos));
                } else {
                    r.error(
                        item.pos,
                        &ipath,
                        "`add: [ALL]` grants every capability",
                        Some("list the capabilities the workload needs".into()),
                    );
                }
                continue;
            }
            match Capability::parse(&name) {
                Some(c) => out.push((Some(c), false, item.pos)),
                None => {
                    let upper = name.to_ascii_uppercase();
                    let bare = upper.trim_start_matches("CAP_");
                    let help = if Capability::parse(bare).is_some() {
                        Some(format!("write it in upper case: `{bare}`"))
                    } else {
                        did_you_mean(bare, cap_names())
                            .or_else(|| Some("see `man 7 capabilities` for the names".into()))
                    };
                    r.error(item.pos, &ipath, format!("unknown capability `{name}`"), help);
                }
            }
        }
        out
    };
    let drops = read_list(r, "drop", true);
    let adds = read_list(r, "add", false);
    for (cap, all, _) in &drops {
        if *all {
            caps.drop_all = true;
        } else if let Some(c) = cap {
            caps.drop.insert(*c);
        }
    }
    if caps.drop_all {
        for (cap, _, pos) in &drops {
            if let Some(c) = cap {
                r.warning(
                    *pos,
                    "spec.capabilities.drop",
                    format!("`{c}` is already dropped by `ALL`"),
                    Some("remove it".into()),
                );
            }
        }
    }
    for (cap, _, pos) in &adds {
        let Some(c) = cap else { continue };
        if caps.drop.contains(c) {
            r.error(
                *pos,
                "spec.capabilities.add",
                format!("capability `{c}` is both dropped and added"),
                Some("remove it from `drop` or from `add`".into()),
            );
        }
        caps.add.insert(*c);
    }
    if m.get("drop").is_none() {
        // No `drop` at all: semble drops everything unless told otherwise.
        caps.drop_all = true;
    }
    caps
}

const ACTIONS: &[(&str, DefaultAction)] = &[
    ("errno", DefaultAction::Errno),
    ("kill-process", DefaultAction::KillProcess),
    ("kill-thread", DefaultAction::KillThread),
    ("trap", DefaultAction::Trap),
    ("log", DefaultAction::Log),
];

fn read_seccomp(r: &mut Reader, node: &Node) -> Seccomp {
    let path = "spec.seccomp";
    let mut s = Seccomp::default();
    let Some(m) = r.map(
        node,
        path,
        &["baseline", "allow", "deny", "defaultAction", "errno", "explainDenials", "dangerouslyAllowNotifyListener"],
    ) else {
        return s;
    };
    if let Some(n) = m.get("baseline") {
        if let Some(b) = r.one_of(
            n,
            "spec.seccomp.baseline",
            &[("default", Baseline::Default), ("strict", Baseline::Strict), ("none", Baseline::None)],
        ) {
            s.baseline = b;
        }
    }
    if let Some(n) = m.get("defaultAction") {
        if let Some(a) = r.one_of(n, "spec.seccomp.defaultAction", ACTIONS) {
            if a == DefaultAction::Log {
                r.warning(
                    n.pos,
                    "spec.seccomp.defaultAction",
                    "`log` allows every syscall and only records it",
                    Some("use `errno` to enforce the policy".into()),
                );
            }
            s.default_action = a;
        }
    }
    if let Some(n) = m.get("errno") {
        match &n.value {
            Value::String(name) => match errno::number(name) {
                Some(v) => s.errno = v,
                None => {
                    let names = errno::ERRNOS.iter().map(|(n, _)| *n);
                    let help = did_you_mean(name, names).or_else(|| Some("use `EPERM`, `EACCES` or `ENOSYS`".into()));
                    r.error(n.pos, "spec.seccomp.errno", format!("unknown errno `{name}`"), help);
                }
            },
            Value::Int(_) => {
                if let Some(v) = r.u32(n, "spec.seccomp.errno") {
                    if v == 0 || v > 4095 {
                        r.error(
                            n.pos,
                            "spec.seccomp.errno",
                            format!("errno `{v}` is out of range"),
                            Some("use a value from 1 to 4095, e.g. `EPERM`".into()),
                        );
                    } else {
                        s.errno = v;
                    }
                }
            }
            _ => r.error(
                n.pos,
                "spec.seccomp.errno",
                format!("expected an errno name at `spec.seccomp.errno`, found {}", n.kind()),
                Some("for example `EPERM`".into()),
            ),
        }
        if s.default_action != DefaultAction::Errno && m.get("defaultAction").is_some() {
            r.warning(n.pos, "spec.seccomp.errno", "`errno` only applies with `defaultAction: errno`", None);
        }
    }
    if let Some(n) = m.get("explainDenials") {
        if let Some(b) = r.bool(n, "spec.seccomp.explainDenials") {
            s.explain_denials = b;
        }
    }
    if let Some(n) = m.get("dangerouslyAllowNotifyListener") {
        if let Some(b) = r.bool(n, "spec.seccomp.dangerouslyAllowNotifyListener") {
            s.dangerously_allow_notify_listener = b;
            if b {
                r.warning(
                    n.pos,
                    "spec.seccomp.dangerouslyAllowNotifyListener",
                    "the workload may create seccomp notify listeners: once semble's supervisor is gone it can answer refused syscalls itself and let them run",
                    Some("remove it unless the workload is itself a seccomp supervisor".into()),
                );
            }
        }
    }
    let allow = m.get("allow").map(|n| read_syscall_list(r, n, "spec.seccomp.allow")).unwrap_or_default();
    let deny = m.get("deny").map(|n| read_syscall_list(r, n, "spec.seccomp.deny")).unwrap_or_default();
    let allowed: BTreeMap<&str, Pos> = allow.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    for (name, pos) in &deny {
        if let Some(apos) = allowed.get(name.as_str()) {
            r.error(
                *pos,
                "spec.seccomp.deny",
                format!("syscall `{name}` is both allowed (line {}) and denied", apos.line),
                Some("remove it from `allow` or from `deny`".into()),
            );
        }
    }
    s.allow = allow.into_iter().map(|(n, _)| n).collect();
    s.deny = deny.into_iter().map(|(n, _)| n).collect();
    if s.baseline == Baseline::None && s.allow.is_empty() {
        if let Some(n) = m.get("baseline") {
            r.error(
                n.pos,
                "spec.seccomp.baseline",
                "`baseline: none` with an empty `allow` list allows no syscall at all",
                Some(
                    "list the syscalls the workload needs in `allow`, or record them with `semble-policy record`"
                        .into(),
                ),
            );
        }
    }
    s
}

fn read_syscall_list(r: &mut Reader, node: &Node, path: &str) -> Vec<(String, Pos)> {
    let mut out: Vec<(String, Pos)> = Vec::new();
    for (i, item) in r.list(node, path).iter().enumerate() {
        let ipath = index(path, i);
        let Some(name) = r.string(item, &ipath) else {
            continue;
        };
        if let Some((_, first)) = out.iter().find(|(n, _)| *n == name) {
            let line = first.line;
            r.error(
                item.pos,
                &ipath,
                format!("syscall `{name}` is listed twice (first at line {line})"),
                Some("remove the duplicate".into()),
            );
            continue;
        }
        match syscalls::lookup(&name) {
            Some(sc) if sc.on_supported_arch() => out.push((name, item.pos)),
            Some(_) => {
                r.warning(
                    item.pos,
                    &ipath,
                    format!("syscall `{name}` does not exist on x86_64 or aarch64"),
                    Some("it has no effect on the architectures semble supports; remove it".into()),
                );
                out.push((name, item.pos));
            }
            None => {
                let help = did_you_mean(&name, syscalls::names())
                    .or_else(|| Some("see `man 2 syscalls` for the names".into()));
                r.error(item.pos, &ipath, format!("unknown syscall `{name}`"), help);
            }
        }
    }
    out
}

const ENFORCEMENTS: &[(&str, Enforcement)] =
    &[("required", Enforcement::Required), ("best-effort", Enforcement::BestEffort)];

fn read_filesystem(r: &mut Reader, node: &Node) -> Option<Filesystem> {
    let path = "spec.filesystem";
    let m = r.map(node, path, &["readOnly", "readWrite", "execute", "enforcement"])?;
    let enforcement = m
        .get("enforcement")
        .and_then(|n| r.one_of(n, "spec.filesystem.enforcement", ENFORCEMENTS))
        .unwrap_or(Enforcement::Required);
    let mut lists: Vec<(&str, Vec<(String, Pos)>)> = Vec::new();
    for field in ["readOnly", "readWrite", "execute"] {
        let lpath = join(path, field);
        let mut out: Vec<(String, Pos)> = Vec::new();
        if let Some(n) = m.get(field) {
            for (i, item) in r.list(n, &lpath).iter().enumerate() {
                let ipath = index(&lpath, i);
                let Some(raw) = r.string(item, &ipath) else {
                    continue;
                };
                match normalise_path(&raw) {
                    Ok(p) => {
                        if let Some((_, first)) = out.iter().find(|(q, _)| *q == p) {
                            let line = first.line;
                            r.error(
                                item.pos,
                                &ipath,
                                format!("path `{raw}` is listed twice in `{lpath}` (first at line {line})"),
                                Some("remove the duplicate".into()),
                            );
                        } else {
                            out.push((p, item.pos));
                        }
                    }
                    Err(help) => r.error(item.pos, &ipath, format!("`{raw}` is not a usable path"), Some(help)),
                }
            }
        }
        lists.push((field, out));
    }
    // The same path with two different rights is a contradiction: which one did the author mean?
    for a in 0..lists.len() {
        for b in (a + 1)..lists.len() {
            let (fa, la) = (&lists[a].0, &lists[a].1);
            let (fb, lb) = (&lists[b].0, &lists[b].1);
            for (p, pos) in lb {
                if la.iter().any(|(q, _)| q == p) {
                    if *fb == "execute" && *fa == "readOnly" {
                        // execute implies read: readOnly + execute on the same path is redundant.
                        r.warning(
                            *pos,
                            &join(path, fb),
                            format!("`{p}` is also in `readOnly`; `execute` already grants reading"),
                            Some("remove it from `readOnly`".into()),
                        );
                    } else {
                        r.error(
                            *pos,
                            &join(path, fb),
                            format!("path `{p}` is in both `{fa}` and `{fb}`"),
                            Some("keep it in one list".into()),
                        );
                    }
                }
            }
        }
    }
    let take = |name: &str| -> Vec<String> {
        lists
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, l)| l.iter().map(|(p, _)| p.clone()).collect())
            .unwrap_or_default()
    };
    let fs = Filesystem {
        read_only: take("readOnly"),
        read_write: take("readWrite"),
        execute: take("execute"),
        enforcement,
    };
    // Writable and executable together lets the workload drop a binary and run it.
    let rw: Vec<(String, Pos)> =
        lists.iter().find(|(f, _)| *f == "readWrite").map(|(_, l)| l.clone()).unwrap_or_default();
    let ex: Vec<(String, Pos)> =
        lists.iter().find(|(f, _)| *f == "execute").map(|(_, l)| l.clone()).unwrap_or_default();
    for (w, _) in &rw {
        for (e, epos) in &ex {
            if path_contains(w, e) || path_contains(e, w) {
                r.warning(
                    *epos,
                    "spec.filesystem.execute",
                    format!("`{e}` is executable and overlaps writable `{w}`"),
                    Some(
                        "the workload can write a program there and run it; keep writable and executable paths apart"
                            .into(),
                    ),
                );
            }
        }
        if w == "/" {
            if let Some((_, pos)) = rw.iter().find(|(p, _)| p == "/") {
                r.warning(
                    *pos,
                    "spec.filesystem.readWrite",
                    "`/` makes the whole filesystem writable",
                    Some("list the directories the workload writes to".into()),
                );
            }
        }
    }
    Some(fs)
}

/// Whether `outer` is `inner` or one of its ancestors.
pub(crate) fn path_contains(outer: &str, inner: &str) -> bool {
    outer == "/" || inner == outer || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'))
}

/// An absolute path without `.`/`..` components, `//` or a trailing `/`.
fn normalise_path(raw: &str) -> Result<String, String> {
    if !raw.starts_with('/') {
        return Err(format!("use an absolute path, e.g. `/{}`", raw.trim_start_matches("./")));
    }
    if raw.contains('\0') {
        return Err("remove the NUL byte".into());
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" => {}
            "." | ".." => return Err("remove `.` and `..` components; write the path as the workload sees it".into()),
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

fn read_selinux(r: &mut Reader, node: &Node) -> Option<Selinux> {
    let path = "spec.selinux";
    let m = r.map(node, path, &["type", "level", "enforcement"])?;
    let type_ = match m.get("type") {
        Some(n) => r.string(n, "spec.selinux.type").and_then(|t| {
            let ok = t.ends_with("_t")
                && t.len() > 2
                && t.starts_with(|c: char| c.is_ascii_lowercase())
                && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if ok {
                Some(t)
            } else {
                r.error(
                    n.pos,
                    "spec.selinux.type",
                    format!("`{t}` is not an SELinux type name"),
                    Some("use lower-case letters, digits and `_`, ending in `_t`, e.g. `semble_workspace_t`".into()),
                );
                None
            }
        }),
        None => {
            r.missing(node.pos, path, "type", "type: semble_workspace_t");
            None
        }
    };
    let level = m.get("level").and_then(|n| {
        let l = r.scalar_string(n, "spec.selinux.level")?;
        if l == "auto" {
            return Some(SelinuxLevel::Auto);
        }
        if is_mls_level(&l) {
            Some(SelinuxLevel::Fixed(l))
        } else {
            r.error(
                n.pos,
                "spec.selinux.level",
                format!("`{l}` is not an MCS level"),
                Some("write it like `s0:c100,c200`, or `auto` for a unique pair per container".into()),
            );
            None
        }
    });
    let enforcement = m
        .get("enforcement")
        .and_then(|n| r.one_of(n, "spec.selinux.enforcement", ENFORCEMENTS))
        .unwrap_or(Enforcement::Required);
    Some(Selinux { type_: type_?, level, enforcement })
}

/// `s0`, `s0-s15`, `s0:c1,c2`, `s0:c0.c1023`.
fn is_mls_level(l: &str) -> bool {
    let (sens, cats) = match l.split_once(':') {
        Some((s, c)) => (s, Some(c)),
        None => (l, None),
    };
    let sens_ok = sens
        .split('-')
        .all(|s| s.strip_prefix('s').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
        && sens.split('-').count() <= 2;
    let cat_ok = |c: &str| {
        c.strip_prefix('c').is_some_and(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n.parse::<u32>().is_ok_and(|v| v < 1024)
        })
    };
    let cats_ok = cats.is_none_or(|c| {
        !c.is_empty()
            && c.split(',').all(|part| match part.split_once('.') {
                Some((a, b)) => cat_ok(a) && cat_ok(b),
                None => cat_ok(part),
            })
    });
    sens_ok && cats_ok
}

fn read_network(r: &mut Reader, node: &Node) -> Network {
    let path = "spec.network";
    let mut net = Network::default();
    let Some(m) = r.map(node, path, &["mode", "egress", "dns", "resolvers", "ingress", "proxy"]) else {
        return net;
    };
    match m.get("mode") {
        Some(n) => {
            if let Some(mode) = r.one_of(
                n,
                "spec.network.mode",
                &[("none", NetworkMode::None), ("proxy", NetworkMode::Proxy), ("open", NetworkMode::Open)],
            ) {
                net.mode = mode;
            }
        }
        None => r.missing(node.pos, path, "mode", "mode: none"),
    }
    if let Some(n) = m.get("dns") {
        if let Some(b) = r.bool(n, "spec.network.dns") {
            net.dns = b;
        }
    }
    if let Some(n) = m.get("resolvers") {
        let lpath = "spec.network.resolvers";
        for (i, item) in r.list(n, lpath).iter().enumerate() {
            let ipath = index(lpath, i);
            if let Some(text) = r.string(item, &ipath) {
                match text.parse::<std::net::IpAddr>() {
                    Ok(ip) if !ip.is_unspecified() && !ip.is_multicast() => net.resolvers.push(ip),
                    _ => r.error(
                        item.pos,
                        &ipath,
                        format!("`{text}` is not a resolver's IP address"),
                        Some("give the cluster DNS Service's address, e.g. `10.96.0.10`".into()),
                    ),
                }
            }
        }
        if !net.dns && !net.resolvers.is_empty() {
            r.warning(
                n.pos,
                lpath,
                "`resolvers` only matter with `dns: true`",
                Some("set `dns: true` or remove `resolvers`".into()),
            );
        }
    }
    if let Some(n) = m.get("proxy") {
        if let Some(pm) = r.map(n, "spec.network.proxy", &["placement", "port", "address"]) {
            if let Some(p) = pm.get("placement").and_then(|n| {
                r.one_of(
                    n,
                    "spec.network.proxy.placement",
                    &[("gateway", ProxyPlacement::Gateway), ("sidecar", ProxyPlacement::Sidecar)],
                )
            }) {
                net.proxy.placement = p;
            }
            if let Some(p) = pm.get("port").and_then(|n| r.port(n, "spec.network.proxy.port")) {
                net.proxy.port = p;
            }
            if let Some(n) = pm.get("address") {
                let apath = "spec.network.proxy.address";
                if let Some(text) = r.string(n, apath) {
                    match text.parse::<std::net::IpAddr>() {
                        Ok(ip) if ip.is_unspecified() || ip.is_multicast() => r.error(
                            n.pos,
                            apath,
                            format!("`{text}` is not the address of a proxy"),
                            Some("give the gateway Service's ClusterIP, e.g. `10.96.0.80`".into()),
                        ),
                        Ok(ip) => net.proxy.address = Some(ip),
                        Err(_) => r.error(
                            n.pos,
                            apath,
                            format!("`{text}` is not an IP address"),
                            Some("give the gateway Service's ClusterIP, e.g. `10.96.0.80`".into()),
                        ),
                    }
                }
            }
        }
    }
    if let Some(n) = m.get("egress") {
        net.egress = read_egress_list(r, n, "spec.network.egress");
    }
    if let Some(n) = m.get("ingress") {
        let lpath = "spec.network.ingress";
        for (i, item) in r.list(n, lpath).iter().enumerate() {
            let ipath = index(lpath, i);
            if let Some(rule) = read_ingress(r, item, &ipath) {
                net.ingress.push(rule);
            }
        }
    }
    net
}

/// A list of egress rules. The same host pattern may not be allowed twice on one port: exactly
/// one rule decides each request (where patterns differ, the most specific decides).
fn read_egress_list(r: &mut Reader, n: &Node, lpath: &str) -> Vec<EgressRule> {
    let mut out = Vec::new();
    let mut seen: Vec<(HostPattern, u16, Pos)> = Vec::new();
    for (i, item) in r.list(n, lpath).iter().enumerate() {
        let ipath = index(lpath, i);
        if let Some(rule) = read_egress(r, item, &ipath) {
            for port in &rule.ports {
                if let Some((_, _, first)) = seen.iter().find(|(h, p, _)| *h == rule.host && p == port) {
                    let line = first.line;
                    r.error(
                        item.pos,
                        &ipath,
                        format!("`{}:{port}` is already allowed by the rule at line {line}", rule.host),
                        Some("merge the two rules".into()),
                    );
                } else {
                    seen.push((rule.host.clone(), *port, item.pos));
                }
            }
            out.push(rule);
        }
    }
    out
}

fn read_egress(r: &mut Reader, node: &Node, path: &str) -> Option<EgressRule> {
    let m = r.map(node, path, &["host", "ports", "tls", "credential", "methods", "paths", "allowAddresses"])?;
    let host = match m.get("host") {
        Some(n) => {
            let raw = r.string(n, &join(path, "host"))?;
            match parse_host_pattern(&raw) {
                Ok(h) => h,
                Err(why) => {
                    r.error(
                        n.pos,
                        &join(path, "host"),
                        format!("`{raw}` is not a host name or `*.suffix` pattern"),
                        Some(why.to_string()),
                    );
                    return None;
                }
            }
        }
        None => {
            r.missing(node.pos, path, "host", "host: api.example.com");
            return None;
        }
    };
    let mut ports = Vec::new();
    if let Some(n) = m.get("ports") {
        let ppath = join(path, "ports");
        for (i, item) in r.list(n, &ppath).iter().enumerate() {
            let ip = index(&ppath, i);
            if let Some(p) = r.port(item, &ip) {
                if ports.contains(&p) {
                    r.error(item.pos, &ip, format!("port `{p}` is listed twice"), Some("remove the duplicate".into()));
                } else {
                    ports.push(p);
                }
            }
        }
        if ports.is_empty() && r.list(n, &ppath).is_empty() {
            r.error(
                n.pos,
                &ppath,
                "an empty `ports` list allows nothing",
                Some("list ports, or remove `ports` for the default `[443]`".into()),
            );
        }
    }
    if ports.is_empty() {
        ports.push(443);
    }
    let tls_ports: Vec<u16> = match m.get("tls") {
        None => ports.iter().copied().filter(|p| DEFAULT_TLS_PORTS.contains(p)).collect(),
        Some(n) if n.as_seq().is_some() => {
            let tpath = join(path, "tls");
            let mut out = Vec::new();
            for (i, item) in r.list(n, &tpath).iter().enumerate() {
                let ip = index(&tpath, i);
                if let Some(p) = r.port(item, &ip) {
                    if ports.contains(&p) {
                        out.push(p);
                    } else {
                        r.error(
                            item.pos,
                            &ip,
                            format!("port `{p}` is not one of the rule's `ports`"),
                            Some("list in `tls` only ports the rule allows".into()),
                        );
                    }
                }
            }
            out
        }
        Some(n) => match r.bool(n, &join(path, "tls")) {
            Some(false) => Vec::new(),
            _ => ports.clone(),
        },
    };
    let tls = ports.iter().all(|p| tls_ports.contains(p));
    let credential = m.get("credential").and_then(|n| {
        let c = r.string(n, &join(path, "credential"))?;
        if c.is_empty() || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
            r.error(
                n.pos,
                &join(path, "credential"),
                format!("`{c}` is not a credential name"),
                Some("use letters, digits, `-` and `_`, naming a credential in the proxy's configuration".into()),
            );
            return None;
        }
        Some(c)
    });
    let mut methods = Vec::new();
    if let Some(n) = m.get("methods") {
        let mpath = join(path, "methods");
        for (i, item) in r.list(n, &mpath).iter().enumerate() {
            let ip = index(&mpath, i);
            if let Some(meth) = r.string(item, &ip) {
                const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
                if METHODS.contains(&meth.as_str()) {
                    methods.push(meth);
                } else {
                    let help = did_you_mean(&meth.to_ascii_uppercase(), METHODS.iter().copied())
                        .or_else(|| Some(format!("use one of {}", METHODS.join(", "))));
                    r.error(item.pos, &ip, format!("unknown HTTP method `{meth}`"), help);
                }
            }
        }
    }
    let mut paths = Vec::new();
    if let Some(n) = m.get("paths") {
        let ppath = join(path, "paths");
        for (i, item) in r.list(n, &ppath).iter().enumerate() {
            let ip = index(&ppath, i);
            if let Some(p) = r.string(item, &ip) {
                if !p.starts_with('/') || p.contains(['?', '#', ' ']) || p.contains("..") {
                    r.error(
                        item.pos,
                        &ip,
                        format!("`{p}` is not a path prefix"),
                        Some("write it like `/model/` (no query, no `..`)".into()),
                    );
                } else {
                    paths.push(p);
                }
            }
        }
    }
    let mut allow_addresses = Vec::new();
    if let Some(n) = m.get("allowAddresses") {
        let apath = join(path, "allowAddresses");
        for (i, item) in r.list(n, &apath).iter().enumerate() {
            let ip = index(&apath, i);
            if let Some(c) = r.string(item, &ip) {
                match parse_cidr(&c) {
                    Some(net) => allow_addresses.push(net),
                    None => r.error(
                        item.pos,
                        &ip,
                        format!("`{c}` is not an address range"),
                        Some("write it like `10.0.0.0/8` or `fd00::/8`".into()),
                    ),
                }
            }
        }
    }
    if (!methods.is_empty() || !paths.is_empty()) && !tls_ports.is_empty() && credential.is_none() {
        r.warning(
            node.pos,
            path,
            "`methods`/`paths` can only be checked where the proxy sees HTTP",
            Some("they apply to plain-HTTP and intercepted requests; CONNECT tunnels to this host are refused".into()),
        );
    }
    Some(EgressRule { host, ports, tls, tls_ports, credential, methods, paths, allow_addresses })
}

/// Why a string is not an egress host pattern; each message is the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostPatternError {
    /// An IP literal.
    #[error("IP addresses are not host names; name the host, or allow the range with `allowAddresses`")]
    IpLiteral,
    /// A `*` anywhere but a leading `*.`.
    #[error("only a leading `*.` wildcard is supported, e.g. `*.amazonaws.com`")]
    InnerWildcard,
    /// Unicode: the proxy compares ASCII names.
    #[error("write internationalised names in their ASCII (punycode) form, e.g. `xn--…`")]
    NotAscii,
    /// Not a DNS name.
    #[error("use a DNS name such as `api.example.com`")]
    NotDns,
    /// `*.com`-style wildcards.
    #[error("a wildcard needs at least two labels after `*.`, e.g. `*.example.com`")]
    WildcardTooWide,
    /// `127.1`, `0x7f.1`: what resolvers read as an address.
    #[error("numeric names are IP addresses in disguise (`127.1`, `0x7f.1`); allow the range with `allowAddresses`")]
    NumericName,
}

/// Parse an egress host: a lower-case DNS name, `*.suffix`, or `*`. IP literals are refused
/// (they belong in `allowAddresses`).
pub fn parse_host_pattern(raw: &str) -> Result<HostPattern, HostPatternError> {
    if raw == "*" {
        return Ok(HostPattern::Any);
    }
    let (wild, name) = match raw.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
        return Err(HostPatternError::IpLiteral);
    }
    if name.contains('*') {
        return Err(HostPatternError::InnerWildcard);
    }
    if !name.is_ascii() {
        return Err(HostPatternError::NotAscii);
    }
    let labels: Vec<&str> = name.split('.').collect();
    let valid = name.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !valid {
        return Err(HostPatternError::NotDns);
    }
    if wild && labels.len() < 2 {
        return Err(HostPatternError::WildcardTooWide);
    }
    if looks_like_inet_aton(&labels) {
        return Err(HostPatternError::NumericName);
    }
    Ok(if wild { HostPattern::Suffix(name) } else { HostPattern::Exact(name) })
}

/// Whether resolvers would read the name as an IPv4 address: `inet_aton` accepts one to four
/// dot-separated numbers in decimal, octal (`0…`) or hex (`0x…`). A name whose last label is
/// numeric is never a real host name (top-level domains are not numeric), so that alone refuses.
fn looks_like_inet_aton(labels: &[&str]) -> bool {
    let numeric = |l: &str| {
        let l = l.to_ascii_lowercase();
        match l.strip_prefix("0x") {
            Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
            None => !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()),
        }
    };
    labels.last().is_some_and(|l| numeric(l))
}

fn parse_cidr(text: &str) -> Option<IpNet> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(net.trunc());
    }
    text.parse::<std::net::IpAddr>().ok().map(IpNet::from)
}

fn read_ingress(r: &mut Reader, node: &Node, path: &str) -> Option<IngressRule> {
    let m = r.map(node, path, &["fromNamespace", "fromPods", "fromCidr", "ports"])?;
    let mut from = IngressPeer::default();
    if let Some(n) = m.get("fromNamespace") {
        if let Some(ns) = r.string(n, &join(path, "fromNamespace")) {
            if is_dns_label(&ns) {
                from.namespace = Some(ns);
            } else {
                r.error(
                    n.pos,
                    &join(path, "fromNamespace"),
                    format!("`{ns}` is not a namespace name"),
                    Some("use a DNS label such as `backend`".into()),
                );
            }
        }
    }
    if let Some(n) = m.get("fromPods") {
        let sel = r.string_map(n, &join(path, "fromPods"));
        check_labels(r, n, &join(path, "fromPods"), &sel);
        from.pods = Some(sel);
    }
    if let Some(n) = m.get("fromCidr") {
        if let Some(c) = r.string(n, &join(path, "fromCidr")) {
            match parse_cidr(&c) {
                Some(net) => from.cidr = Some(net),
                None => r.error(
                    n.pos,
                    &join(path, "fromCidr"),
                    format!("`{c}` is not an address range"),
                    Some("write it like `10.0.0.0/8`".into()),
                ),
            }
        }
    }
    if from.cidr.is_some() && (from.namespace.is_some() || from.pods.is_some()) {
        r.error(
            node.pos,
            path,
            "`fromCidr` cannot be combined with `fromNamespace` or `fromPods`",
            Some("write a separate rule for the address range".into()),
        );
    }
    if from.namespace.is_none() && from.pods.is_none() && from.cidr.is_none() {
        r.error(
            node.pos,
            path,
            "an ingress rule needs `fromNamespace`, `fromPods` or `fromCidr`",
            Some("name who may connect, e.g. `fromNamespace: backend`".into()),
        );
    }
    let mut ports = Vec::new();
    match m.get("ports") {
        Some(n) => {
            let ppath = join(path, "ports");
            for (i, item) in r.list(n, &ppath).iter().enumerate() {
                let ip = index(&ppath, i);
                if let Some(p) = read_port_range(r, item, &ip) {
                    if ports.contains(&p) {
                        r.error(
                            item.pos,
                            &ip,
                            format!("port `{}` is listed twice", p.port),
                            Some("remove the duplicate".into()),
                        );
                    } else {
                        ports.push(p);
                    }
                }
            }
        }
        None => r.missing(node.pos, path, "ports", "ports: [8081]"),
    }
    Some(IngressRule { from, ports })
}

fn read_port_range(r: &mut Reader, node: &Node, path: &str) -> Option<PortRange> {
    match &node.value {
        Value::Int(_) => r.port(node, path).map(|port| PortRange { port, end_port: None, protocol: Protocol::Tcp }),
        Value::Map(_) => {
            let m = r.map(node, path, &["port", "endPort", "protocol"])?;
            let port = match m.get("port") {
                Some(n) => r.port(n, &join(path, "port"))?,
                None => {
                    r.missing(node.pos, path, "port", "port: 8081");
                    return None;
                }
            };
            let end_port = m.get("endPort").and_then(|n| r.port(n, &join(path, "endPort")));
            if let Some(e) = end_port {
                if e < port {
                    r.error(
                        node.pos,
                        &join(path, "endPort"),
                        format!("`endPort` {e} is below `port` {port}"),
                        Some("make `endPort` at least `port`".into()),
                    );
                    return None;
                }
            }
            let protocol = m
                .get("protocol")
                .and_then(|n| {
                    r.one_of(
                        n,
                        &join(path, "protocol"),
                        &[("TCP", Protocol::Tcp), ("UDP", Protocol::Udp), ("SCTP", Protocol::Sctp)],
                    )
                })
                .unwrap_or(Protocol::Tcp);
            Some(PortRange { port, end_port, protocol })
        }
        _ => {
            r.error(
                node.pos,
                path,
                format!("expected a port or `{{port, endPort, protocol}}` at `{path}`, found {}", node.kind()),
                Some("for example `8081`".into()),
            );
            None
        }
    }
}

fn read_devices(r: &mut Reader, node: &Node) -> Devices {
    let path = "spec.devices";
    let mut d = Devices::default();
    let Some(m) = r.map(node, path, &["gpu", "allow"]) else {
        return d;
    };
    if let Some(n) = m.get("gpu") {
        d.gpu = r.one_of(n, "spec.devices.gpu", &[("nvidia", Some(Gpu::Nvidia)), ("none", None)]).flatten();
    }
    if let Some(n) = m.get("allow") {
        let lpath = "spec.devices.allow";
        for (i, item) in r.list(n, lpath).iter().enumerate() {
            let ip = index(lpath, i);
            let Some(dm) = r.map(item, &ip, &["path", "access"]) else {
                continue;
            };
            let Some(p) = dm.get("path").and_then(|n| r.string(n, &join(&ip, "path"))) else {
                if dm.get("path").is_none() {
                    r.missing(item.pos, &ip, "path", "path: /dev/fuse");
                }
                continue;
            };
            if !p.starts_with("/dev/") || p.contains("..") {
                r.error(
                    item.pos,
                    &join(&ip, "path"),
                    format!("`{p}` is not a device path"),
                    Some("devices live under `/dev/`, e.g. `/dev/fuse`".into()),
                );
                continue;
            }
            let access = match dm.get("access") {
                Some(n) => match r.string(n, &join(&ip, "access")) {
                    Some(a) if !a.is_empty() && a.chars().all(|c| "rwm".contains(c)) && a.len() <= 3 => a,
                    Some(a) => {
                        r.error(
                            n.pos,
                            &join(&ip, "access"),
                            format!("`{a}` is not a device access mode"),
                            Some("combine `r`, `w` and `m`, e.g. `rw`".into()),
                        );
                        continue;
                    }
                    None => continue,
                },
                None => "rw".to_string(),
            };
            if d.allow.iter().any(|x| x.path == p) {
                r.error(item.pos, &ip, format!("device `{p}` is listed twice"), Some("remove the duplicate".into()));
                continue;
            }
            d.allow.push(DeviceRule { path: p, access });
        }
    }
    d
}

fn read_selection(r: &mut Reader, node: &Node) -> Selection {
    let path = "spec.selection";
    let mut sel = Selection::default();
    let Some(m) = r.map(node, path, &["byAnnotation", "namespaces"]) else {
        return sel;
    };
    if let Some(b) = m.get("byAnnotation").and_then(|n| r.bool(n, "spec.selection.byAnnotation")) {
        sel.by_annotation = b;
    }
    if let Some(n) = m.get("namespaces") {
        for (i, item) in r.list(n, "spec.selection.namespaces").iter().enumerate() {
            let ipath = index("spec.selection.namespaces", i);
            if let Some(ns) = r.string(item, &ipath) {
                if is_dns_label(&ns) {
                    sel.namespaces.push(ns);
                } else {
                    r.error(
                        item.pos,
                        &ipath,
                        format!("`{ns}` is not a namespace name"),
                        Some("use a DNS label such as `sandboxes`".into()),
                    );
                }
            }
        }
    }
    sel
}

fn read_kubernetes(r: &mut Reader, node: &Node) -> Kubernetes {
    let path = "spec.kubernetes";
    let mut k = Kubernetes::default();
    let Some(m) = r.map(
        node,
        path,
        &["namespace", "podSelector", "nodeSelector", "tolerations", "overhead", "userNamespaces", "appArmor"],
    ) else {
        return k;
    };
    if let Some(n) = m.get("namespace") {
        if let Some(ns) = r.string(n, "spec.kubernetes.namespace") {
            if is_dns_label(&ns) {
                k.namespace = Some(ns);
            } else {
                r.error(
                    n.pos,
                    "spec.kubernetes.namespace",
                    format!("`{ns}` is not a namespace name"),
                    Some("use a DNS label such as `sandboxes`".into()),
                );
            }
        }
    }
    if let Some(n) = m.get("podSelector") {
        k.pod_selector = r.string_map(n, "spec.kubernetes.podSelector");
        check_labels(r, n, "spec.kubernetes.podSelector", &k.pod_selector);
    }
    if let Some(n) = m.get("nodeSelector") {
        k.node_selector = r.string_map(n, "spec.kubernetes.nodeSelector");
        check_labels(r, n, "spec.kubernetes.nodeSelector", &k.node_selector);
    }
    if let Some(n) = m.get("tolerations") {
        let lpath = "spec.kubernetes.tolerations";
        for (i, item) in r.list(n, lpath).iter().enumerate() {
            let ip = index(lpath, i);
            let Some(tm) = r.map(item, &ip, &["key", "operator", "value", "effect"]) else {
                continue;
            };
            let key = tm.get("key").and_then(|n| r.string(n, &join(&ip, "key")));
            let operator = tm
                .get("operator")
                .and_then(|n| r.one_of(n, &join(&ip, "operator"), &[("Equal", "Equal"), ("Exists", "Exists")]))
                .unwrap_or("Equal");
            let value = tm.get("value").and_then(|n| r.scalar_string(n, &join(&ip, "value")));
            let effect = tm.get("effect").and_then(|n| {
                r.one_of(
                    n,
                    &join(&ip, "effect"),
                    &[
                        ("NoSchedule", "NoSchedule"),
                        ("PreferNoSchedule", "PreferNoSchedule"),
                        ("NoExecute", "NoExecute"),
                    ],
                )
                .map(str::to_string)
            });
            if operator == "Exists" && value.is_some() {
                r.error(
                    item.pos,
                    &ip,
                    "a toleration with `operator: Exists` must not have a `value`",
                    Some("remove `value` or use `operator: Equal`".into()),
                );
                continue;
            }
            match key {
                Some(key) => k.tolerations.push(Toleration { key, operator: operator.to_string(), value, effect }),
                None => r.missing(item.pos, &ip, "key", "key: sandbox.gvisor"),
            }
        }
    }
    if let Some(n) = m.get("overhead") {
        if let Some(om) = r.map(n, "spec.kubernetes.overhead", &["memory", "cpu"]) {
            if let Some(v) = om.get("memory") {
                k.overhead_memory =
                    read_quantity(r, v, "spec.kubernetes.overhead.memory", quantity::parse_bytes, "`64Mi`");
            }
            if let Some(v) = om.get("cpu") {
                k.overhead_cpu =
                    read_quantity(r, v, "spec.kubernetes.overhead.cpu", quantity::parse_millicores, "`250m`");
            }
        }
    }
    if let Some(n) = m.get("userNamespaces") {
        k.user_namespaces = r.bool(n, "spec.kubernetes.userNamespaces").unwrap_or(false);
    }
    if let Some(n) = m.get("appArmor") {
        if let Some(s) = r.string(n, "spec.kubernetes.appArmor") {
            match s.as_str() {
                "RuntimeDefault" => k.app_armor = Some(AppArmor::RuntimeDefault),
                other => match other.strip_prefix("localhost/") {
                    Some(name) if !name.is_empty() && !name.contains(char::is_whitespace) => {
                        k.app_armor = Some(AppArmor::Localhost(name.to_string()));
                    }
                    _ => r.error(
                        n.pos,
                        "spec.kubernetes.appArmor",
                        format!("`{other}` is not an AppArmor profile"),
                        Some("write `RuntimeDefault` or `localhost/PROFILE` (a profile loaded on the nodes)".into()),
                    ),
                },
            }
        }
    }
    k
}

fn check_labels(r: &mut Reader, node: &Node, path: &str, labels: &BTreeMap<String, String>) {
    let Some(m) = node.as_map() else { return };
    for (k, v) in labels {
        if !is_label_key(k) {
            let pos = m.get_entry(k).map(|(key, _)| key.pos).unwrap_or(node.pos);
            r.error(
                pos,
                &join(path, k),
                format!("`{k}` is not a valid label key"),
                Some(
                    "use an optional DNS prefix and a name of letters, digits, `-`, `_`, `.` (at most 63), e.g. `app`"
                        .into(),
                ),
            );
        }
        if !is_label_value(v) {
            let pos = m.get(k).map(|n| n.pos).unwrap_or(node.pos);
            r.error(
                pos,
                &join(path, k),
                format!("`{v}` is not a valid label value"),
                Some(
                    "use at most 63 letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit".into(),
                ),
            );
        }
    }
}

fn read_quantity(
    r: &mut Reader,
    node: &Node,
    path: &str,
    parse: fn(&str) -> Option<u64>,
    example: &str,
) -> Option<u64> {
    let text = r.scalar_string(node, path)?;
    match parse(&text) {
        Some(v) => Some(v),
        None => {
            r.error(
                node.pos,
                path,
                format!("`{text}` is not a valid quantity"),
                Some(format!("write it like {example}")),
            );
            None
        }
    }
}

fn read_resources(r: &mut Reader, node: &Node) -> Resources {
    let path = "spec.resources";
    let mut res = Resources::default();
    let Some(m) = r.map(node, path, &["memory", "cpu", "pids", "ephemeralStorage", "enforcement"]) else {
        return res;
    };
    if let Some(e) = m.get("enforcement").and_then(|n| r.one_of(n, "spec.resources.enforcement", ENFORCEMENTS)) {
        res.enforcement = e;
    }
    if let Some(n) = m.get("memory") {
        res.memory = read_quantity(r, n, "spec.resources.memory", quantity::parse_bytes, "`2Gi` or `512Mi`");
        if res.memory.is_some_and(|b| b < 4 << 20) {
            r.error(
                n.pos,
                "spec.resources.memory",
                "a memory limit below 4Mi cannot start a container",
                Some("raise it, e.g. `64Mi`".into()),
            );
        }
    }
    if let Some(n) = m.get("cpu") {
        res.cpu = read_quantity(r, n, "spec.resources.cpu", quantity::parse_millicores, "`2` or `500m`");
    }
    if let Some(n) = m.get("ephemeralStorage") {
        res.ephemeral_storage =
            read_quantity(r, n, "spec.resources.ephemeralStorage", quantity::parse_bytes, "`4Gi` or `512Mi`");
    }
    if let Some(n) = m.get("pids") {
        res.pids = r.u32(n, "spec.resources.pids");
        if res.pids == Some(0) {
            r.error(
                n.pos,
                "spec.resources.pids",
                "`pids: 0` allows no process at all",
                Some("use a limit such as `512`".into()),
            );
        }
    }
    res
}

/// Relations between sections.
fn cross_checks(r: &mut Reader, p: &SandboxPolicy) {
    let pos = |r: &Reader, path: &str| r.positions.get(path).copied().unwrap_or_default();
    if p.network.mode == NetworkMode::None {
        if !p.network.egress.is_empty() {
            let at = pos(r, "spec.network.egress");
            r.error(
                at,
                "spec.network.egress",
                "egress rules need `mode: proxy`, but the network mode is `none`",
                Some("set `mode: proxy`, or remove `egress`".into()),
            );
        }
        if p.network.dns {
            let at = pos(r, "spec.network.dns");
            r.error(
                at,
                "spec.network.dns",
                "`dns: true` needs a network, but the network mode is `none`",
                Some("set `mode: proxy` or `open`, or `dns: false`".into()),
            );
        }
    }
    if p.network.mode == NetworkMode::Open && !p.network.egress.is_empty() {
        let at = pos(r, "spec.network.egress");
        r.warning(
            at,
            "spec.network.egress",
            "with `mode: open` the egress rules are not enforced on the node",
            Some("use `mode: proxy` to make the proxy the only way out".into()),
        );
    }
    if p.network.mode == NetworkMode::Proxy && p.network.egress.is_empty() {
        let at = pos(r, "spec.network.mode");
        r.warning(
            at,
            "spec.network.mode",
            "`mode: proxy` without egress rules allows nothing",
            Some("add `egress` rules, or use `mode: none`".into()),
        );
    }
    // Capabilities whose syscalls the baseline keeps blocked: say so, so nobody is surprised.
    let granted = p.capabilities.granted();
    for (cap, syscalls) in [
        (Capability::SysAdmin, &["mount", "umount2", "unshare", "setns"][..]),
        (Capability::SysPtrace, &["ptrace", "process_vm_readv", "process_vm_writev"][..]),
        (Capability::SysModule, &["init_module", "finit_module", "delete_module"][..]),
        (Capability::SysBoot, &["reboot"][..]),
        (Capability::SysRawio, &["iopl", "ioperm"][..]),
        (Capability::Bpf, &["bpf"][..]),
        (Capability::Perfmon, &["perf_event_open"][..]),
    ] {
        if granted.contains(&cap) && p.seccomp.baseline != Baseline::None {
            let blocked: Vec<&str> =
                syscalls.iter().copied().filter(|s| !p.seccomp.allow.iter().any(|a| a == s)).collect();
            if !blocked.is_empty() {
                let at = pos(r, "spec.capabilities.add");
                r.diags.push(
                    Severity::Note,
                    Some(at),
                    "spec.capabilities.add",
                    format!(
                        "`{cap}` is granted but the seccomp baseline still blocks {}",
                        blocked.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
                    ),
                    Some("add them to `seccomp.allow` if the workload needs them".into()),
                );
            }
        }
    }
    if let Some(fs) = &p.filesystem {
        if fs.read_only.is_empty() && fs.read_write.is_empty() && fs.execute.is_empty() {
            let at = pos(r, "spec.filesystem");
            r.error(
                at,
                "spec.filesystem",
                "an empty `filesystem` section denies every file, including the workload's own program",
                Some("list paths in `readOnly`, `readWrite` and `execute`, or remove the section".into()),
            );
        } else if fs.execute.is_empty() {
            let at = pos(r, "spec.filesystem");
            r.error(
                at,
                "spec.filesystem",
                "no path is executable, so the workload cannot start",
                Some("add the directories of its programs to `execute`, e.g. `[/usr/bin, /bin]`".into()),
            );
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn is_label_key(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => prefix.len() <= 253 && prefix.split('.').all(is_dns_label) && is_label_name(name),
        None => is_label_name(s),
    }
}

fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

/// Egress rules read from a rules file or from a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRules {
    /// The name of the file's policy.
    pub name: String,
    /// The rules.
    pub egress: Vec<EgressRule>,
}

/// Read egress rules from a `ProxyRules` file or a `SandboxPolicy` (its `network.egress`).
pub fn parse_rules(src: &str) -> Result<ProxyRules, PolicyError> {
    let root = yaml::parse(src).map_err(|e| PolicyError {
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            pos: Some(e.pos),
            path: String::new(),
            message: e.message,
            help: None,
        }],
    })?;
    if root.get_path(&["kind"]).and_then(Node::as_str) == Some(KIND) {
        let parsed = from_node(&root)?;
        return Ok(ProxyRules { name: parsed.policy.name, egress: parsed.policy.network.egress });
    }
    let mut r = Reader::default();
    let mut name = String::new();
    let mut egress = Vec::new();
    if let Some(top) = r.map(&root, "", &["apiVersion", "kind", "metadata", "egress"]) {
        match top.get("kind").and_then(Node::as_str) {
            Some(crate::compile::proxy::RULES_KIND) => {}
            Some(other) => {
                let pos = top.get("kind").map(|n| n.pos).unwrap_or(root.pos);
                r.error(
                    pos,
                    "kind",
                    format!("unsupported kind `{other}`"),
                    Some(format!("use `{}` or `{KIND}`", crate::compile::proxy::RULES_KIND)),
                );
            }
            None => r.missing(root.pos, "", "kind", crate::compile::proxy::RULES_KIND),
        }
        if let Some(v) = top.get("apiVersion") {
            if v.as_str() != Some(API_VERSION) {
                r.error(v.pos, "apiVersion", "unsupported apiVersion", Some(format!("use `{API_VERSION}`")));
            }
        }
        if let Some(m) = top.get("metadata") {
            if let Some(mm) = r.map(m, "metadata", &["name"]) {
                name = mm.get("name").and_then(|n| r.string(n, "metadata.name")).unwrap_or_default();
            }
        }
        if let Some(n) = top.get("egress") {
            egress = read_egress_list(&mut r, n, "egress");
        }
    } else if root.is_null() {
        r.error(
            root.pos,
            "",
            "the rules file is empty",
            Some(format!("start with `kind: {}`", crate::compile::proxy::RULES_KIND)),
        );
    }
    if r.diags.has_errors() {
        return Err(PolicyError { diagnostics: r.diags.into_sorted() });
    }
    Ok(ProxyRules { name, egress })
}
