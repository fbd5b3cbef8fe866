//! Denial records: what the supervisor writes for every refused syscall (seccomp) and every
//! refused access the kernel logged for the container's Landlock domain, the summary
//! `semble-shim denials` and `semble-policy denials` print, and the policy overlay `--patch`
//! suggests.
//!
//! One JSON object per line; the fields are a stable interface (log shippers read them). A
//! Landlock line has the same fields (those the kernel's records do not give are empty or 0)
//! plus `kind: "landlock"`, `path` and `access`; a line without `kind` is a seccomp refusal.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use semble_policy::model::{Baseline, SandboxPolicy};
use serde::{Deserialize, Serialize};

use crate::baseline::NEVER_BY_DEFAULT;
use crate::generate;

/// One refused syscall or access (or, with `suppressed > 0`, one line standing for several).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// When (RFC 3339, milliseconds, UTC).
    pub time: String,
    /// The container ID (or `record` / the command for host runs).
    pub container: String,
    /// The policy's name.
    pub policy: String,
    /// The calling thread, as the host sees it.
    pub pid: u32,
    /// The calling program (`/proc/PID/comm`).
    pub comm: String,
    /// The executable as it was invoked (`argv[0]`, as the container sees it), or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exe: String,
    /// The syscall's name.
    pub syscall: String,
    /// The call with its decoded arguments where that is cheap, e.g. `unshare(CLONE_NEWUSER)`.
    pub call: String,
    /// The policy rule that refused it, e.g. `spec.seccomp.deny[0] ptrace`.
    pub rule: String,
    /// What the caller got, e.g. `EPERM`.
    pub errno: String,
    /// The policy change that would allow it.
    pub fix: String,
    /// Why allowing it is dangerous, for syscalls semble never allows by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub danger: Option<String>,
    /// Denials of the same syscall not written since the previous line for it (rate limit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suppressed: u64,
    /// What refused it: empty for seccomp, [`LANDLOCK`] for a Landlock refusal.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Landlock: what was refused, as the workload sees it: a path, `tcp port N`, `pid N (comm)`,
    /// an abstract socket's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Landlock: the rights refused, in the kernel's names (`fs.read_file`, `scope.signal`…).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access: String,
}

/// [`Denial::kind`] of a Landlock refusal.
pub const LANDLOCK: &str = "landlock";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Denial {
    /// What the rate limit and the summary group by: the syscall, or a Landlock refusal's
    /// rights and object.
    pub fn key(&self) -> String {
        if self.kind == LANDLOCK {
            format!("landlock {} {}", self.access, self.path)
        } else {
            self.syscall.clone()
        }
    }

    /// One human line, as the supervisor prints it on stderr.
    pub fn text(&self) -> String {
        if self.kind == LANDLOCK {
            let who = if self.pid == 0 {
                String::new()
            } else {
                format!(
                    " to pid {} `{}`{}",
                    self.pid,
                    self.comm,
                    if self.exe.is_empty() { String::new() } else { format!(" ({})", self.exe) }
                )
            };
            let mut s = format!(
                "semble: landlock denied {} ({}){who} in container {}: {} (policy `{}`); fix: {}",
                self.call, self.errno, self.container, self.rule, self.policy, self.fix
            );
            if self.suppressed > 0 {
                let _ = write!(s, " [{} more not shown]", self.suppressed);
            }
            return s;
        }
        let mut s = format!(
            "semble: denied {} ({}) to pid {} `{}`{} in container {}: {} (policy `{}`); fix: {}",
            self.call,
            self.errno,
            self.pid,
            self.comm,
            if self.exe.is_empty() { String::new() } else { format!(" ({})", self.exe) },
            self.container,
            self.rule,
            self.policy,
            self.fix
        );
        if let Some(d) = &self.danger {
            let _ = write!(s, " (dangerous: {d})");
        }
        if self.suppressed > 0 {
            let _ = write!(s, " [{} more not shown]", self.suppressed);
        }
        s
    }
}

/// A workload-controlled string (a program's name, its `argv[0]`) made safe to write into logs,
/// tables and YAML comments: control characters (newlines, terminal escapes) and bidirectional
/// overrides are written as `\u{..}` escapes, and it is cut at 256 characters. Idempotent.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(256));
    for (n, c) in s.chars().enumerate() {
        if n >= 256 {
            out.push('…');
            break;
        }
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
        if c.is_control() || bidi {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `name` can be a syscall's name (what an overlay may list).
fn is_syscall_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Why a syscall is dangerous to allow, for the ones no baseline allows.
pub fn danger(name: &str) -> Option<&'static str> {
    NEVER_BY_DEFAULT.iter().find(|g| g.names.contains(&name)).map(|g| g.reason)
}

/// Which rule of a policy refuses a syscall, and the fix: what the supervisor says about each
/// notification.
#[derive(Debug, Clone)]
pub struct Attribution {
    deny: Vec<String>,
    baseline: Baseline,
    /// Syscalls allowed only with some arguments: the rule's reason, and the fix when a policy
    /// field (not `spec.seccomp.allow`) decides it.
    conditional: BTreeMap<String, (String, Option<String>)>,
}

/// The verdict on one syscall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The rule.
    pub rule: String,
    /// The fix.
    pub fix: String,
}

impl Attribution {
    /// For `policy`, in a container running as `identity` (see [`generate::restrictions`]).
    pub fn new(policy: &SandboxPolicy, identity: Option<generate::Identity>) -> Attribution {
        let profile = generate::profile_for(policy, identity);
        let fixes: BTreeMap<&str, String> =
            generate::restrictions(policy, identity).into_iter().map(|r| (r.name, r.fix)).collect();
        let mut conditional = BTreeMap::new();
        for r in profile.syscalls.iter().filter(|r| !r.args.is_empty() && r.action == "SCMP_ACT_ALLOW") {
            for n in &r.names {
                conditional
                    .entry(n.clone())
                    .or_insert_with(|| (r.comment.clone().unwrap_or_default(), fixes.get(n.as_str()).cloned()));
            }
        }
        Attribution { deny: policy.seccomp.deny.clone(), baseline: policy.seccomp.baseline, conditional }
    }

    /// The rule refusing `name`, and how to allow it.
    pub fn verdict(&self, name: &str) -> Verdict {
        if let Some(i) = self.deny.iter().position(|d| d == name) {
            return Verdict {
                rule: format!("spec.seccomp.deny[{i}] {name}"),
                fix: format!("remove `{name}` from spec.seccomp.deny"),
            };
        }
        let fix = format!("add `{name}` to spec.seccomp.allow");
        if let Some((c, field_fix)) = self.conditional.get(name) {
            return match field_fix {
                Some(f) => Verdict { rule: c.clone(), fix: f.clone() },
                None => Verdict {
                    rule: format!("baseline {}: {c}", self.baseline.as_str()),
                    fix: format!("{fix} (allows it with any arguments)"),
                },
            };
        }
        let rule = match self.baseline {
            Baseline::None => "baseline none: not in spec.seccomp.allow".to_string(),
            b => format!("baseline {}: not allowed", b.as_str()),
        };
        Verdict { rule, fix }
    }
}

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The syscall.
    pub syscall: String,
    /// How many times it was refused (written and suppressed lines).
    pub count: u64,
    /// First seen.
    pub first: String,
    /// Last seen.
    pub last: String,
    /// The rule.
    pub rule: String,
    /// The fix.
    pub fix: String,
    /// The programs that made the call.
    pub programs: Vec<String>,
    /// The calls seen (decoded), up to a few.
    pub calls: Vec<String>,
    /// Why allowing it is dangerous.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub danger: Option<String>,
    /// `landlock` for a Landlock refusal (absent: seccomp).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Landlock: what was refused.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Landlock: the rights refused.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub access: String,
}

impl Row {
    /// The first column of the table: the syscall, or `landlock:RIGHTS`.
    fn what(&self) -> String {
        if self.kind == LANDLOCK {
            format!("landlock:{}", self.access)
        } else {
            self.syscall.clone()
        }
    }
}

/// A line of a denial log that is not a denial.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}:{line}: not a semble denial line ({cause}); pass the denials.jsonl the supervisor wrote")]
pub struct NotADenial {
    /// The log's name, as the caller gave it.
    pub source_name: String,
    /// 1-based line number.
    pub line: usize,
    /// Why the line did not parse.
    pub cause: serde_json::Error,
}

/// Read denial lines; a line that is not a denial is the error, with its line number.
pub fn parse(text: &str, source: &str) -> Result<Vec<Denial>, NotADenial> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let d: Denial = serde_json::from_str(line).map_err(|cause| NotADenial {
            source_name: source.to_string(),
            line: i + 1,
            cause,
        })?;
        out.push(d);
    }
    Ok(out)
}

/// The summary table, most frequent first.
pub fn summarize(denials: &[Denial]) -> Vec<Row> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for d in denials {
        let row = rows.entry(d.key()).or_insert_with(|| Row {
            syscall: d.syscall.clone(),
            count: 0,
            first: d.time.clone(),
            last: d.time.clone(),
            rule: d.rule.clone(),
            fix: d.fix.clone(),
            programs: Vec::new(),
            calls: Vec::new(),
            danger: d.danger.clone(),
            kind: d.kind.clone(),
            path: d.path.clone(),
            access: d.access.clone(),
        });
        row.count += 1 + d.suppressed;
        if d.time < row.first {
            row.first = d.time.clone();
        }
        if d.time > row.last {
            row.last = d.time.clone();
        }
        if !d.comm.is_empty() && !row.programs.contains(&d.comm) {
            row.programs.push(d.comm.clone());
        }
        if row.calls.len() < 3 && !row.calls.contains(&d.call) {
            row.calls.push(d.call.clone());
        }
    }
    let mut out: Vec<Row> = rows.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.what().cmp(&b.what())).then_with(|| a.path.cmp(&b.path)));
    out
}

/// The summary as a text table.
pub fn table(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no denials\n".into();
    }
    let mut out = String::new();
    let w = rows.iter().map(|r| r.what().len()).max().unwrap_or(7).max(7);
    let _ = writeln!(out, "{:<w$}  {:>6}  {:<24}  {:<24}  RULE / FIX", "SYSCALL", "COUNT", "FIRST", "LAST");
    for r in rows {
        let _ = writeln!(
            out,
            "{:<w$}  {:>6}  {:<24}  {:<24}  {}",
            printable(&r.what()),
            r.count,
            printable(&r.first),
            printable(&r.last),
            printable(&r.rule)
        );
        let _ = writeln!(out, "{:<w$}  {:>6}  {:<24}  {:<24}  fix: {}", "", "", "", "", printable(&r.fix));
        if r.kind == LANDLOCK {
            let _ = writeln!(out, "{:<w$}  {:>6}  {:<24}  {:<24}  on: {}", "", "", "", "", printable(&r.path));
        }
        let by: Vec<String> = r.programs.iter().map(|p| printable(p)).collect();
        if !by.is_empty() {
            let _ = writeln!(out, "{:<w$}  {:>6}  {:<24}  {:<24}  by: {}", "", "", "", "", by.join(", "));
        }
    }
    out
}

/// A policy overlay that would allow what was refused, with a warning for each dangerous
/// syscall. Syscalls refused by `spec.seccomp.deny` cannot be allowed by an overlay; they are
/// listed as comments.
pub fn patch(rows: &[Row]) -> (String, Vec<String>) {
    let mut warnings = Vec::new();
    let mut out = String::from(
        "# semble: a seccomp overlay allowing what was denied; review before applying\nspec:\n  seccomp:\n    allow:\n",
    );
    let mut removed = Vec::new();
    let mut paths: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.kind == LANDLOCK) {
        match landlock_field(&r.access) {
            Some(field) if is_policy_path(&r.path) => {
                let list = paths.entry(field).or_default();
                if !list.contains(&r.path) {
                    list.push(r.path.clone());
                }
            }
            _ => warnings.push(format!(
                "landlock refused {} on `{}`: {}; left out of the overlay",
                printable(&r.access),
                printable(&r.path),
                printable(&r.fix)
            )),
        }
    }
    for r in rows.iter().filter(|r| r.kind != LANDLOCK) {
        if !is_syscall_name(&r.syscall) {
            warnings.push(format!("`{}` is not a syscall name; left out of the overlay", printable(&r.syscall)));
            continue;
        }
        if r.rule.starts_with("spec.seccomp.deny") {
            removed.push(&r.syscall);
            continue;
        }
        let _ = write!(out, "      - {}", r.syscall);
        // The danger is recomputed from the name: a log line cannot talk it away.
        match danger(&r.syscall).map(str::to_string).or_else(|| r.danger.clone()) {
            Some(d) => {
                let d = printable(&d);
                let _ = writeln!(out, "  # DANGEROUS: {d}");
                warnings.push(format!("allowing `{}` is dangerous: {d}", r.syscall));
            }
            None => {
                let by: Vec<String> = r.programs.iter().map(|p| printable(p)).collect();
                let _ = writeln!(out, "  # denied {} time(s), by {}", r.count, by.join(", "));
            }
        }
    }
    for s in removed {
        let _ = writeln!(out, "    # `{s}` is in spec.seccomp.deny: remove it there to allow it");
    }
    if !paths.is_empty() {
        let _ = writeln!(out, "  filesystem:  # Landlock: paths refused, by the right they lacked");
        for (field, list) in &paths {
            let _ = writeln!(out, "    {field}:");
            for p in list {
                let _ = writeln!(out, "      - {p}");
            }
        }
    }
    if !paths.is_empty() {
        out = out.replacen("a seccomp overlay", "an overlay (seccomp, Landlock)", 1);
    }
    if !rows.iter().any(|r| r.kind != LANDLOCK) {
        // No seccomp rows: no empty `allow:` list.
        out = out.replace("  seccomp:\n    allow:\n", "");
    }
    (out, warnings)
}

/// The `spec.filesystem` list that grants a Landlock right, if one does.
pub fn landlock_field(access: &str) -> Option<&'static str> {
    let rights: Vec<&str> = access.split(',').collect();
    if rights.is_empty() || rights.iter().any(|r| !r.starts_with("fs.")) {
        return None;
    }
    if rights.iter().any(|r| matches!(*r, "fs.make_char" | "fs.make_block" | "fs.ioctl_dev" | "fs.change_topology")) {
        return None;
    }
    if rights.contains(&"fs.execute") {
        return Some("execute");
    }
    if rights.iter().all(|r| matches!(*r, "fs.read_file" | "fs.read_dir")) {
        return Some("readOnly");
    }
    Some("readWrite")
}

/// An absolute path with no `.`/`..` component and nothing that could break a YAML line.
fn is_policy_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() <= 4096
        && !p.split('/').any(|c| c == "." || c == "..")
        && p.chars().all(|c| {
            !c.is_control()
                && !matches!(
                    c,
                    '#' | '"'
                        | '\''
                        | '\\'
                        | ':'
                        | '{'
                        | '}'
                        | '['
                        | ']'
                        | ','
                        | '&'
                        | '*'
                        | '!'
                        | '|'
                        | '>'
                        | '%'
                        | '@'
                        | '`'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(spec: &str) -> SandboxPolicy {
        let src = format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: t}}\nspec:\n{spec}");
        semble_policy::parse(&src).unwrap().policy
    }

    fn denial(syscall: &str, time: &str, suppressed: u64) -> Denial {
        let a = Attribution::new(&policy("  seccomp: {deny: [ptrace]}\n  network: {mode: none}\n"), None);
        let v = a.verdict(syscall);
        Denial {
            time: time.into(),
            container: "c".into(),
            policy: "t".into(),
            pid: 7,
            comm: "probe".into(),
            exe: "/bin/probe".into(),
            syscall: syscall.into(),
            call: format!("{syscall}()"),
            rule: v.rule,
            errno: "EPERM".into(),
            fix: v.fix,
            danger: danger(syscall).map(str::to_string),
            suppressed,
            ..Denial::default()
        }
    }

    #[test]
    fn rules_name_the_deny_entry_the_argument_rule_or_the_baseline() {
        let a = Attribution::new(&policy("  seccomp: {deny: [getpid, ptrace]}\n  network: {mode: none}\n"), None);
        assert_eq!(a.verdict("ptrace").rule, "spec.seccomp.deny[1] ptrace");
        assert_eq!(a.verdict("ptrace").fix, "remove `ptrace` from spec.seccomp.deny");
        assert_eq!(a.verdict("mount").rule, "baseline default: not allowed");
        assert_eq!(a.verdict("mount").fix, "add `mount` to spec.seccomp.allow");
        assert!(a.verdict("clone").rule.starts_with("baseline default: clone without namespace flags"));
        let none =
            Attribution::new(&policy("  seccomp: {baseline: none, allow: [read]}\n  network: {mode: none}\n"), None);
        assert_eq!(none.verdict("mount").rule, "baseline none: not in spec.seccomp.allow");
    }

    #[test]
    fn summary_counts_suppressed_lines_and_orders_by_count() {
        let d = vec![
            denial("mount", "2026-01-01T00:00:02.000Z", 0),
            denial("keyctl", "2026-01-01T00:00:01.000Z", 9),
            denial("mount", "2026-01-01T00:00:01.500Z", 0),
        ];
        let rows = summarize(&d);
        assert_eq!(rows[0].syscall, "keyctl");
        assert_eq!(rows[0].count, 10);
        assert_eq!(rows[1].count, 2);
        assert_eq!(rows[1].first, "2026-01-01T00:00:01.500Z");
        assert_eq!(rows[1].last, "2026-01-01T00:00:02.000Z");
    }

    #[test]
    fn patch_allows_and_warns_about_dangerous_syscalls() {
        let rows = summarize(&[denial("keyctl", "t", 0), denial("ptrace", "t", 0), denial("mq_open", "t", 0)]);
        let (text, warnings) = patch(&rows);
        assert!(text.contains("      - keyctl  # DANGEROUS"), "{text}");
        assert!(text.contains("      - mq_open  # denied 1 time(s)"), "{text}");
        assert!(text.contains("`ptrace` is in spec.seccomp.deny"), "{text}");
        assert!(!text.contains("- ptrace"), "{text}");
        assert_eq!(warnings.len(), 1);
        // The overlay is valid policy YAML once given a header.
        let full = format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: p}}\n{text}");
        let p = semble_policy::parse(&full).unwrap().policy;
        assert!(p.seccomp.allow.contains(&"keyctl".to_string()));
    }

    #[test]
    fn lines_round_trip_and_garbage_is_named() {
        let d = denial("mount", "t", 3);
        let line = serde_json::to_string(&d).unwrap();
        assert_eq!(parse(&line, "f").unwrap(), vec![d]);
        let e = parse("\n{}\n", "log.jsonl").unwrap_err();
        assert_eq!((e.source_name.as_str(), e.line), ("log.jsonl", 2));
        assert!(e.to_string().starts_with("log.jsonl:2: not a semble denial line"), "{e}");
    }

    #[test]
    fn argument_restrictions_name_their_rule_and_the_field_that_lifts_them() {
        let p = policy("  process: {user: 1000, runAsNonRoot: true}\n  network: {mode: none}\n");
        let a = Attribution::new(&p, Some(generate::Identity { uid: 1000, gid: 1000 }));
        let v = a.verdict("setuid");
        assert!(v.rule.contains("runAsNonRoot") && v.rule.contains("uid 1000"), "{v:?}");
        assert!(v.fix.contains("runAsNonRoot: false"), "{v:?}");
        let v = a.verdict("seccomp");
        assert!(v.rule.contains("NEW_LISTENER") && v.fix.contains("dangerouslyAllowNotifyListener"), "{v:?}");
    }

    #[test]
    fn strings_from_the_workload_cannot_write_lines_of_their_own() {
        let mut d = denial("getpid", "2026-01-01T00:00:00.000Z", 0);
        d.comm = "x\n      - bpf\u{1b}[31m".into();
        let rows = summarize(&[d.clone()]);
        let (overlay, _) = patch(&rows);
        assert!(!overlay.contains("\n      - bpf"), "{overlay}");
        assert_eq!(overlay.lines().filter(|l| l.trim_start().starts_with("- ")).count(), 1, "{overlay}");
        assert!(!table(&rows).contains('\u{1b}'));
        // A forged syscall name never reaches the overlay.
        d.syscall = "getpid\n      - bpf".into();
        let (overlay, warnings) = patch(&summarize(&[d]));
        assert!(!overlay.contains("bpf") && warnings.len() == 1, "{overlay}");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
    }
}
