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

mod common;
mod compose;
pub mod config;
mod context;
mod kubernetes;
mod network_policy;
mod oci;
pub mod output;
mod pod_security;
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
pub use rules::{Level, Rule, RULES};

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
}

/// What kind of document a parsed root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Policy,
    Kubernetes,
    Compose,
    Seccomp,
    Oci,
}

fn classify(root: &Node) -> Option<Kind> {
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
    if quadlet::is_quadlet(file, source) {
        quadlet::lint(&mut ctx);
        return Ok((ctx.out, ctx.workloads, ctx.netpol_ns));
    }
    let docs = semble_policy::yaml::parse_stream(source)
        .map_err(|e| format!("{file}:{}:{}: {}", e.pos.line, e.pos.column, e.message))?;
    for d in &docs {
        match classify(&d.root) {
            Some(Kind::Policy) => policy::lint(&mut ctx, &d.root),
            Some(Kind::Kubernetes) => kubernetes::lint(&mut ctx, &d.root),
            Some(Kind::Compose) => compose::lint(&mut ctx, &d.root),
            Some(Kind::Seccomp) => seccomp::lint(&mut ctx, &d.root),
            Some(Kind::Oci) => oci::lint(&mut ctx, &d.root),
            None => {}
        }
        ctx.ignored.clear();
    }
    Ok((ctx.out, ctx.workloads, ctx.netpol_ns))
}
