//! # semble-lint: what makes a sandbox weak, found in the files teams keep in their repositories
//!
//! `semble-policy lint` reads SandboxPolicies, Kubernetes manifests, Compose files, Quadlet
//! units, seccomp profiles and OCI `config.json` bundles, and reports each weakness at
//! `file:line:column` with its rule and a one-line fix. It is the CI gate: its exit status and
//! its SARIF decide whether a change merges.
//!
//! ## Flow
//!
//! ```text
//!   paths ──walk──▶ files ──classify──▶ one linter per input kind ──▶ findings ──config──▶ output
//!                  (globs,              kubernetes, pod_security,     (rule, level,        text, json,
//!                   kustomize)          network_policy, compose,       file:line:col)      sarif, junit
//!                                       quadlet, seccomp, oci, policy
//! ```
//!
//! Inputs are recognised by content, not by name: a document with `kind: SandboxPolicy` is a
//! policy; `apiVersion` + `kind` a Kubernetes object (workloads are checked through their pod
//! template); a top-level `services:` map a Compose file; a JSON object with `defaultAction` a
//! seccomp profile; one with `ociVersion` and `process` an OCI bundle configuration; a file with
//! a Quadlet extension or a `[Container]` section a Quadlet unit.
//!
//! Suppressions: `# semble-lint: ignore=RULE reason="…"` on the finding's line or the line above,
//! or the annotation `ignore-check.semble.dev/RULE: "reason"` on a Kubernetes object. A
//! suppression without a reason is itself a finding (`SL001`).
//!
//! The rule catalogue ([`rules::RULES`]) is the single source of `docs/lint-rules.md`
//! (`semble-policy lint --list-rules --format markdown`; a test keeps the file in sync).
//!
//! ## The threat this answers
//!
//! A sandbox is as weak as the loosest file that configures it: a privileged sidecar, a
//! NetworkPolicy that lets every pod past its proxy, a seccomp allow-list nothing can start
//! under. These are written by people who meant well, in files semble never runs, so lint has to
//! find them where they are written, and say exactly where and how to fix them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cluster;
mod common;
mod compose;
pub mod config;
mod context;
mod kubernetes;
mod network_policy;
mod oci;
pub mod output;
pub mod pod_security;
mod policy;
mod quadlet;
pub mod rules;
mod seccomp;
pub mod walk;

use std::collections::BTreeSet;

use semble_policy::diag::Pos;
use semble_policy::yaml::Node;
use serde::Serialize;

pub use config::Config;
pub use pod_security::{PodSecurity, PssVersion};
pub use rules::{Level, Rule, RULES};

use cluster::{Cluster, File};
use context::Ctx;

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
    /// For a Pod Security finding: the upstream check, level and policy version behind it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_security: Option<PodSecurity>,
}

/// How to lint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// The Pod Security policy version pods are held to when their namespace (in the linted
    /// files) has no `pod-security.kubernetes.io/enforce-version` label.
    pub pss_version: PssVersion,
}

/// What kind of document a parsed root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Policy,
    Kubernetes,
    Compose,
    Seccomp,
    Oci,
}

pub(crate) fn classify(root: &Node) -> Option<Kind> {
    let kind = context::str_of(context::get(root, "kind"));
    if kind.as_deref() == Some("SandboxPolicy") {
        return Some(Kind::Policy);
    }
    if context::get(root, "apiVersion").is_some() && kind.is_some() {
        return Some(Kind::Kubernetes);
    }
    if context::get(root, "services").and_then(Node::as_map).is_some() {
        return Some(Kind::Compose);
    }
    if context::get(root, "defaultAction").is_some()
        && (context::get(root, "syscalls").is_some() || context::get(root, "architectures").is_some())
    {
        return Some(Kind::Seccomp);
    }
    if context::get(root, "ociVersion").is_some() && context::get(root, "process").is_some() {
        return Some(Kind::Oci);
    }
    None
}

/// Why lint could not read its input.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// A file (or lint's configuration) is not what it must be, at a position.
    #[error("{file}:{}:{}: {message}", pos.line, pos.column)]
    At {
        /// The file.
        file: String,
        /// Where in it.
        pos: Pos,
        /// What is wrong, and the fix.
        message: String,
    },
    /// A file or directory cannot be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl LintError {
    pub(crate) fn at(file: &str, pos: Pos, message: impl Into<String>) -> LintError {
        LintError::At { file: file.to_string(), pos, message: message.into() }
    }
}

/// Lint one file's text on its own (rules that look across files — SB024 — need [`lint_all`];
/// documents within the file still see each other).
pub fn lint_text(file: &str, source: &str) -> Result<Vec<Finding>, LintError> {
    let inputs = [(file.to_string(), source.to_string())];
    let files = parse(&inputs)?;
    let cluster = Cluster::build(&files);
    Ok(files.iter().flat_map(|f| lint_file(f, &cluster, &Options::default()).0).collect())
}

/// Lint several files, including the rules that look across files, with default options.
pub fn lint_all(inputs: &[(String, String)]) -> Result<Vec<Finding>, LintError> {
    lint_all_with(inputs, &Options::default())
}

/// Lint several files, including the rules that look across files.
pub fn lint_all_with(inputs: &[(String, String)], opts: &Options) -> Result<Vec<Finding>, LintError> {
    let files = parse(inputs)?;
    let cluster = Cluster::build(&files);
    let mut out = Vec::new();
    let mut workloads: Vec<(usize, String, Pos)> = Vec::new();
    let mut covered = BTreeSet::new();
    for (i, f) in files.iter().enumerate() {
        let (found, w, n) = lint_file(f, &cluster, opts);
        out.extend(found);
        workloads.extend(w.into_iter().map(|(ns, pos)| (i, ns, pos)));
        covered.extend(n);
    }
    let mut reported = BTreeSet::new();
    for (i, ns, pos) in workloads {
        if covered.contains(&ns) || !reported.insert(ns.clone()) {
            continue;
        }
        let mut ctx = Ctx::new(files[i].name, files[i].source);
        ctx.add("SB024", pos, format!("no NetworkPolicy covers namespace `{ns}`"));
        out.extend(ctx.out);
    }
    Ok(out)
}

/// Parse every input (a Quadlet unit is kept as text); the first unparsable file is the error.
fn parse(inputs: &[(String, String)]) -> Result<Vec<File<'_>>, LintError> {
    inputs
        .iter()
        .map(|(name, source)| {
            if quadlet::is_quadlet(name, source) {
                return Ok(File { name, source, docs: Vec::new(), quadlet: true });
            }
            let docs = semble_policy::yaml::parse_stream(source).map_err(|e| LintError::at(name, e.pos, e.message))?;
            Ok(File { name, source, docs, quadlet: false })
        })
        .collect()
}

/// One file's findings, its workloads `(namespace, position)` and the namespaces its
/// NetworkPolicies cover.
type FileResult = (Vec<Finding>, Vec<(String, Pos)>, BTreeSet<String>);

fn lint_file(file: &File, cluster: &Cluster, opts: &Options) -> FileResult {
    let mut ctx = Ctx::new(file.name, file.source);
    if file.quadlet {
        quadlet::lint(&mut ctx);
        return (ctx.out, ctx.workloads, ctx.netpol_ns);
    }
    for d in &file.docs {
        match classify(&d.root) {
            Some(Kind::Policy) => policy::lint(&mut ctx, &d.root),
            Some(Kind::Kubernetes) => kubernetes::lint(&mut ctx, &d.root, cluster, opts),
            Some(Kind::Compose) => compose::lint(&mut ctx, &d.root),
            Some(Kind::Seccomp) => seccomp::lint(&mut ctx, &d.root),
            Some(Kind::Oci) => oci::lint(&mut ctx, &d.root),
            None => {}
        }
        ctx.ignored.clear();
    }
    (ctx.out, ctx.workloads, ctx.netpol_ns)
}
