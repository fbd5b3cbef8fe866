//! What every linter writes into: the file being linted, its findings, and the suppressions in
//! force; and the small helpers that read the spanned YAML tree.

use std::collections::BTreeSet;

use semble_policy::diag::Pos;
use semble_policy::yaml::Node;

use crate::pod_security::PodSecurity;
use crate::rules::{rule, Level};
use crate::Finding;

/// One file being linted.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a str,
    pub(crate) source: &'a str,
    pub(crate) out: Vec<Finding>,
    /// Workloads seen: (namespace, position), for the namespace rule.
    pub(crate) workloads: Vec<(String, Pos)>,
    /// Namespaces holding a NetworkPolicy.
    pub(crate) netpol_ns: BTreeSet<String>,
    /// `ignore-check.semble.dev/RULE` annotations of the object being checked.
    pub(crate) ignored: Vec<(String, String)>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &'a str, source: &'a str) -> Ctx<'a> {
        Ctx { file, source, out: Vec::new(), workloads: Vec::new(), netpol_ns: BTreeSet::new(), ignored: Vec::new() }
    }

    /// A finding at the rule's default level.
    pub(crate) fn add(&mut self, id: &'static str, pos: Pos, message: String) {
        self.add_at(id, rule(id).level, pos, message);
    }

    /// A Pod Security finding: at `level`, tagged with the upstream check it comes from.
    pub(crate) fn add_pss(&mut self, id: &'static str, level: Level, pos: Pos, message: String, tag: PodSecurity) {
        if let Some(mut f) = self.check(id, level, pos, message) {
            f.pod_security = Some(tag);
            self.out.push(f);
        }
    }

    /// A finding at `level`, unless suppressed (a suppression without a reason is `SL001`).
    pub(crate) fn add_at(&mut self, id: &'static str, level: Level, pos: Pos, message: String) {
        if let Some(f) = self.check(id, level, pos, message) {
            self.out.push(f);
        }
    }

    /// The finding, or `None` when a suppression covers it (recording `SL001` for one without a
    /// reason).
    fn check(&mut self, id: &'static str, level: Level, pos: Pos, message: String) -> Option<Finding> {
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
            return None;
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
                    return None;
                }
            }
        }
        Some(finding(self.file, id, level, pos, message))
    }
}

pub(crate) fn finding(file: &str, id: &'static str, level: Level, pos: Pos, message: String) -> Finding {
    Finding {
        rule: id,
        level,
        file: file.to_string(),
        line: pos.line,
        column: pos.column,
        message,
        fix: rule(id).fix,
        pod_security: None,
    }
}

pub(crate) fn get<'a>(n: &'a Node, key: &str) -> Option<&'a Node> {
    n.as_map().and_then(|m| m.get(key))
}

pub(crate) fn path<'a>(n: &'a Node, keys: &[&str]) -> Option<&'a Node> {
    let mut cur = n;
    for k in keys {
        cur = get(cur, k)?;
    }
    Some(cur)
}

pub(crate) fn str_of(n: Option<&Node>) -> Option<String> {
    n.and_then(|n| n.scalar_text())
}

/// A capability as written, normalised for semble's own checks (`chown` → `CHOWN`). Pod
/// Security compares names exactly as written instead (see `pod_security`).
pub(crate) fn cap_name(s: &str) -> String {
    s.trim().trim_start_matches("CAP_").to_ascii_uppercase()
}
