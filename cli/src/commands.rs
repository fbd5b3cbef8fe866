//! The subcommands. Each prints its result and returns an exit code; errors that stop a command
//! are returned as one-line messages for `main` to print.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use semble_policy::{Diagnostic, Severity};
use serde::Serialize;

use crate::exit;
use crate::targets::{self, Target};

/// Output format for machine readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per finding, `file:line:column: severity: message; fix`.
    Text,
    /// A JSON array, one object per file.
    Json,
}

/// Read a file, or stdin for `-`.
pub fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("cannot read standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`; check the path and permissions", path.display()))
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    diagnostics: Vec<Diagnostic>,
}

/// `validate FILE...`
pub fn validate(files: &[PathBuf], format: Format, show_source: bool) -> Result<u8> {
    let mut reports = Vec::new();
    let mut sources = Vec::new();
    for f in files {
        let src = read_input(f)?;
        let name = f.display().to_string();
        let report = match semble_policy::parse(&src) {
            Ok(p) => {
                FileReport { file: name, valid: true, policy: Some(p.policy.name.clone()), diagnostics: p.warnings }
            }
            Err(e) => FileReport { file: name, valid: false, policy: None, diagnostics: e.diagnostics },
        };
        sources.push(src);
        reports.push(report);
    }
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &reports)?;
            writeln!(out)?;
        }
        Format::Text => {
            for (r, src) in reports.iter().zip(&sources) {
                for d in &r.diagnostics {
                    writeln!(out, "{}", d.render(Some(&r.file)))?;
                    if let Some(snippet) = show_source.then(|| crate::snippet::render(&r.file, src, d)).flatten() {
                        writeln!(out, "{snippet}")?;
                    }
                }
                if r.valid {
                    writeln!(out, "{}: ok: policy `{}`", r.file, r.policy.as_deref().unwrap_or(""))?;
                } else {
                    let n = r.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
                    writeln!(out, "{}: invalid: {n} error{}", r.file, if n == 1 { "" } else { "s" })?;
                }
            }
        }
    }
    Ok(if reports.iter().all(|r| r.valid) { exit::OK } else { exit::INVALID })
}

/// Parse a policy file, printing its diagnostics to stderr when it is invalid.
pub fn load_policy(file: &Path) -> Result<Option<semble_policy::SandboxPolicy>> {
    let src = read_input(file)?;
    let name = file.display().to_string();
    match semble_policy::parse(&src) {
        Ok(p) => {
            for w in p.warnings.iter().filter(|d| d.severity == Severity::Warning) {
                eprintln!("{}", w.render(Some(&name)));
            }
            Ok(Some(p.policy))
        }
        Err(e) => {
            for line in e.render_with_file(&name) {
                eprintln!("{line}");
            }
            Ok(None)
        }
    }
}

/// `compile FILE --target T [--out DIR]`
pub fn compile(file: &Path, target: Target, out: Option<&Path>, k8s: &semble_k8s::Options) -> Result<u8> {
    let Some(policy) = load_policy(file)? else {
        return Ok(exit::INVALID);
    };
    let (artifacts, warnings) =
        targets::compile_with(&policy, target, k8s).with_context(|| format!("cannot compile `{}`", file.display()))?;
    for w in warnings {
        eprintln!("semble-policy: warning: {}: {w}", file.display());
    }
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create output directory `{}`", dir.display()))?;
            for a in &artifacts {
                let path = dir.join(&a.file);
                semble_files::write(&path, &a.bytes).with_context(|| format!("cannot write `{}`", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
        None => {
            if target == Target::All {
                bail!("`--target all` writes several files; add `--out DIR`");
            }
            let mut stdout = std::io::stdout().lock();
            for a in &artifacts {
                if a.target.is_binary() && is_terminal_stdout() {
                    bail!("refusing to write binary BPF to a terminal; redirect it or add `--out DIR`");
                }
                stdout.write_all(&a.bytes)?;
            }
            stdout.flush()?;
        }
    }
    Ok(exit::OK)
}

fn is_terminal_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

/// `explain FILE`
pub fn explain(file: &Path) -> Result<u8> {
    let Some(policy) = load_policy(file)? else {
        return Ok(exit::INVALID);
    };
    print!("{}", targets::explain_text(&policy));
    Ok(exit::OK)
}

/// Output of `explain --k8s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum K8sFormat {
    /// An aligned table (with --diff: np-guard's `diff` lines).
    Text,
    /// `{"rows": [...], "notes": [...]}` (or the answer to `--from/--to`, or the diff).
    Json,
    /// Graphviz: one edge per allowed connection, labelled with its ports.
    Dot,
    /// np-guard's `netpol-analyzer list` text: `src => dst : conn`, one line per allowed pair.
    Connlist,
    /// np-guard's `netpol-analyzer list -o json`: `[{"src", "dst", "conn"}]`.
    ConnlistJson,
    /// With --diff: SARIF 2.1.0, a result per connection the change opens.
    Sarif,
}

/// Every manifest document under `paths` (files, directories recursively; `-` for stdin),
/// as JSON values, named `file#index`. `List` objects are expanded.
pub fn read_manifests(paths: &[PathBuf]) -> Result<Vec<(String, serde_json::Value)>> {
    let files = semble_lint::walk::collect(paths, &[], semble_lint::walk::MANIFEST_EXTENSIONS)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut docs = Vec::new();
    for f in files {
        let src = read_input(&f)?;
        let stream = semble_policy::yaml::parse_stream(&src)
            .map_err(|e| anyhow::anyhow!("{}:{}:{}: {}", f.display(), e.pos.line, e.pos.column, e.message))?;
        for d in stream {
            let v = d.root.to_json();
            if v.is_null() {
                continue;
            }
            let name = format!("{}#{}", f.display(), d.index);
            if v["kind"] == "List" {
                for item in v["items"].as_array().into_iter().flatten() {
                    docs.push((name.clone(), item.clone()));
                }
            } else {
                docs.push((name, v));
            }
        }
    }
    Ok(docs)
}

/// Parse `443`, `53/UDP`.
fn parse_port(s: &str) -> Result<(u16, semble_k8s::netpol::Proto)> {
    use semble_k8s::netpol::Proto;
    let (n, proto) = match s.split_once('/') {
        Some((n, p)) => (
            n,
            Proto::parse(p)
                .with_context(|| format!("--port `{s}`: the protocol must be TCP, UDP or SCTP (e.g. `53/UDP`)"))?,
        ),
        None => (s, Proto::Tcp),
    };
    let port: u16 = n
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .with_context(|| format!("--port `{s}` is not a port (1-65535, e.g. `443` or `53/UDP`)"))?;
    Ok((port, proto))
}

/// `explain --k8s PATH… [--from X --to Y --port P] [--format F]`
pub fn explain_k8s(
    paths: &[PathBuf],
    from: Option<&str>,
    to: Option<&str>,
    port: Option<&str>,
    format: K8sFormat,
) -> Result<u8> {
    let docs = read_manifests(paths)?;
    let cluster = semble_k8s::netpol::Cluster::load(&docs).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    if let (Some(from), Some(to)) = (from, to) {
        let (port, proto) = parse_port(port.unwrap_or("443"))?;
        let src = cluster.find(from).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
        let dst = cluster.find(to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
        let a = cluster.query(&src, &dst, port, proto);
        match format {
            K8sFormat::Json => writeln!(
                out,
                "{}",
                serde_json::json!({"from": src.id, "to": dst.id, "port": port, "protocol": proto.to_string(), "allowed": a.allowed, "reasons": a.lines})
            )?,
            _ => {
                let verdict = if a.allowed { "ALLOWED" } else { "DENIED" };
                writeln!(out, "{} -> {} {port}/{proto}: {verdict}", src.id, dst.id)?;
                for l in &a.lines {
                    writeln!(out, "  {l}")?;
                }
            }
        }
        return Ok(if a.allowed { exit::OK } else { exit::INVALID });
    }
    let rows = match format {
        K8sFormat::Connlist | K8sFormat::ConnlistJson => {
            for n in &cluster.notes {
                eprintln!("semble-policy: note: {n}");
            }
            let list = cluster.connlist();
            if format == K8sFormat::Connlist {
                for c in &list {
                    writeln!(out, "{}", c.line())?;
                }
            } else {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            }
            return Ok(exit::OK);
        }
        K8sFormat::Sarif => {
            bail!("SARIF is the output of `--diff`; use --format text, json, dot, connlist or connlist-json")
        }
        _ => cluster.table(),
    };
    match format {
        K8sFormat::Json => {
            writeln!(out, "{}", serde_json::json!({"rows": rows, "notes": cluster.notes}))?;
        }
        K8sFormat::Dot => {
            writeln!(out, "digraph connectivity {{\n  rankdir=LR;")?;
            for r in &rows {
                writeln!(out, "  {:?} -> {:?} [label={:?}];", r.from, r.to, r.ports)?;
            }
            writeln!(out, "}}")?;
        }
        _ => {
            let w1 = rows.iter().map(|r| r.from.len()).max().unwrap_or(4).max(4);
            let w2 = rows.iter().map(|r| r.to.len()).max().unwrap_or(2).max(2);
            writeln!(out, "{:w1$}  {:w2$}  PORTS", "FROM", "TO")?;
            for r in &rows {
                writeln!(out, "{:w1$}  {:w2$}  {}", r.from, r.to, r.ports)?;
            }
            for n in &cluster.notes {
                writeln!(out, "note: {n}")?;
            }
            writeln!(out, "Everything not listed is denied.")?;
        }
    }
    Ok(exit::OK)
}

/// Where a manifest document, or a field in it, is written: `file#index` (as
/// [`read_manifests`] names documents) and a path of keys and sequence indexes.
fn locate(
    origin: &str,
    path: &[&str],
    cache: &mut std::collections::BTreeMap<String, Vec<semble_policy::yaml::Document>>,
) -> Option<(String, semble_policy::Pos)> {
    let (file, index) = origin.rsplit_once('#')?;
    let index: usize = index.parse().ok()?;
    if !cache.contains_key(file) {
        let text = std::fs::read_to_string(file).ok()?;
        cache.insert(file.to_string(), semble_policy::yaml::parse_stream(&text).ok()?);
    }
    let doc = cache.get(file)?.iter().find(|d| d.index == index)?;
    let mut node = &doc.root;
    let mut pos = node.pos;
    for step in path {
        let next = match step.parse::<usize>() {
            Ok(i) => node.as_seq().and_then(|s| s.get(i)),
            Err(_) => node.as_map().and_then(|m| m.get(step)),
        };
        match next {
            Some(n) => {
                node = n;
                pos = n.pos;
            }
            None => break,
        }
    }
    Some((file.to_string(), pos))
}

/// `explain --k8s --diff OLD NEW [--format text|json|sarif]`
pub fn explain_diff(old: &Path, new: &Path, format: K8sFormat) -> Result<u8> {
    if !matches!(format, K8sFormat::Text | K8sFormat::Json | K8sFormat::Sarif) {
        bail!("--diff writes text, json or sarif; not `--format {}`", format_name(format));
    }
    let load = |p: &Path| -> Result<semble_k8s::netpol::Cluster> {
        let docs = read_manifests(&[p.to_path_buf()])?;
        semble_k8s::netpol::Cluster::load(&docs).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let (before, after) = (load(old)?, load(new)?);
    let d = semble_k8s::netpol::diff(&before, &after);
    let opened = d.opened().count();
    let mut out = std::io::stdout().lock();
    match format {
        K8sFormat::Json => {
            let lines: Vec<serde_json::Value> = d.lines.iter().map(|l| l.to_json()).collect();
            let count = |c: semble_k8s::netpol::Change| d.lines.iter().filter(|l| l.change == c).count();
            let v = serde_json::json!({
                "old": old.display().to_string(),
                "new": new.display().to_string(),
                "changed": count(semble_k8s::netpol::Change::Changed),
                "added": count(semble_k8s::netpol::Change::Added),
                "removed": count(semble_k8s::netpol::Change::Removed),
                "opened": opened,
                "diff": lines,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        K8sFormat::Sarif => {
            writeln!(out, "{}", serde_json::to_string_pretty(&diff_sarif(&d, &after))?)?;
        }
        _ => write!(out, "{}", d.text())?,
    }
    Ok(if opened > 0 { exit::INVALID } else { exit::OK })
}

fn format_name(f: K8sFormat) -> &'static str {
    match f {
        K8sFormat::Text => "text",
        K8sFormat::Json => "json",
        K8sFormat::Dot => "dot",
        K8sFormat::Connlist => "connlist",
        K8sFormat::ConnlistJson => "connlist-json",
        K8sFormat::Sarif => "sarif",
    }
}

/// SARIF for a diff: one result per connection the change opens, located at the rule in the
/// new manifests that allows it (both sides' rules when both are isolated), else at the
/// workload no policy isolates.
fn diff_sarif(d: &semble_k8s::netpol::Diff, after: &semble_k8s::netpol::Cluster) -> serde_json::Value {
    use semble_k8s::netpol::conn_string;
    let mut cache = std::collections::BTreeMap::new();
    let mut results = Vec::new();
    for l in d.opened() {
        let opened = l.opened_ports();
        let (src, dst) = (after.peer(&l.src), after.peer(&l.dst));
        let mut places: Vec<(String, semble_policy::Pos, String)> = Vec::new();
        if let (Some(src), Some(dst), Some((port, proto))) = (src.as_ref(), dst.as_ref(), opened.first()) {
            for r in after.allowing_rules(src, dst, port, proto) {
                let index = r.index.to_string();
                if let Some((file, pos)) = locate(&r.origin, &["spec", r.direction, &index], &mut cache) {
                    places.push((file, pos, format!("{} {}[{}]", r.policy, r.direction, r.index)));
                }
            }
            if places.is_empty() {
                // Neither side isolated for this: the workload that no policy covers.
                for e in [dst, src] {
                    if let Some(w) = &e.workload {
                        if let Some((file, pos)) = locate(&w.origin, &["kind"], &mut cache) {
                            places.push((file, pos, format!("{} (no NetworkPolicy isolates it)", w.label())));
                            break;
                        }
                    }
                }
            }
        }
        let was = if l.old.is_empty() { String::new() } else { format!("; before: {}", conn_string(&l.old)) };
        let why = places.iter().map(|(_, _, w)| w.as_str()).collect::<Vec<_>>().join(", ");
        let message = format!(
            "{} => {} now allows {}{was} ({} by {})",
            l.src,
            l.dst,
            conn_string(&opened),
            match l.change {
                semble_k8s::netpol::Change::Added => "added",
                _ => "widened",
            },
            if why.is_empty() { "the change" } else { why.as_str() }
        );
        let locations: Vec<serde_json::Value> = places
            .iter()
            .map(|(file, pos, _)| {
                serde_json::json!({"physicalLocation": {
                    "artifactLocation": {"uri": file.trim_start_matches("./")},
                    "region": {"startLine": pos.line.max(1), "startColumn": pos.column.max(1)}
                }})
            })
            .collect();
        let mut result = serde_json::json!({
            "ruleId": "SD001",
            "ruleIndex": 0,
            "level": "warning",
            "message": {"text": message},
            "properties": {"source": l.src, "destination": l.dst, "opened": conn_string(&opened), "diffType": l.change},
        });
        if let Some(first) = locations.first() {
            result["locations"] = serde_json::json!([first]);
            if locations.len() > 1 {
                result["relatedLocations"] = serde_json::json!(locations[1..]
                    .iter()
                    .enumerate()
                    .map(|(i, loc)| {
                        let mut loc = loc.clone();
                        loc["id"] = serde_json::json!(i + 1);
                        loc
                    })
                    .collect::<Vec<_>>());
            }
        }
        results.push(result);
    }
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "semble-policy explain --diff",
                "informationUri": "https://github.com/semble-dev/semble",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": [{
                    "id": "SD001",
                    "name": "ConnectionOpened",
                    "shortDescription": {"text": "a connection the change to the NetworkPolicies (or workloads) opens"},
                    "fullDescription": {"text": "Compared with the old manifests, the new ones allow this source to reach this destination on more ports: review that it is meant."},
                    "help": {"text": "if the connection is not meant, narrow the rule this result points at", "markdown": "**Fix:** if the connection is not meant, narrow the rule this result points at"},
                    "helpUri": "https://github.com/semble-dev/semble/blob/main/docs/ci.md#what-a-change-opens",
                    "defaultConfiguration": {"level": "warning"},
                }],
            }},
            "results": results,
        }]
    })
}

/// The options of `lint`.
#[derive(Debug, Clone, Copy)]
pub struct LintArgs<'a> {
    /// `text`, `json`, `sarif`, `junit` (or `markdown` with `list_rules`).
    pub format: &'a str,
    /// `info`, `warning` or `error`: the least severe finding that fails.
    pub fail_on: &'a str,
    /// Globs of paths to skip.
    pub exclude: &'a [String],
    /// Print the rule catalogue instead.
    pub list_rules: bool,
    /// `--pss-version`.
    pub pss_version: &'a str,
}

/// `lint PATH… [--format F] [--fail-on L] [--exclude G]… [--list-rules] [--pss-version V]`
pub fn lint(paths: &[PathBuf], args: &LintArgs, config: Option<&Path>) -> Result<u8> {
    let LintArgs { format, fail_on, exclude, list_rules, pss_version } = *args;
    use semble_lint::{output, Level};
    let fail_on: Level = fail_on.parse().map_err(anyhow::Error::msg)?;
    let opts = semble_lint::Options {
        pss_version: semble_lint::PssVersion::parse(pss_version).map_err(|e| anyhow::anyhow!("--pss-version: {e}"))?,
    };
    let mut out = std::io::stdout().lock();
    if list_rules {
        if format == "markdown" {
            write!(out, "{}", semble_lint::rules::markdown())?;
        } else {
            for r in semble_lint::RULES {
                writeln!(out, "{} {:7} {} (fix: {})", r.id, r.level.as_str(), r.summary, r.fix)?;
            }
        }
        return Ok(exit::OK);
    }
    // The configuration: --config, else .semble-lint.yaml in the current directory.
    let default_cfg = Path::new(".semble-lint.yaml");
    let cfg_path = config.or_else(|| default_cfg.is_file().then_some(default_cfg));
    let cfg = match cfg_path {
        Some(p) => {
            semble_lint::Config::parse(&p.display().to_string(), &read_input(p)?).map_err(|e| anyhow::anyhow!("{e}"))?
        }
        None => semble_lint::Config::default(),
    };
    let mut excludes = exclude.to_vec();
    excludes.extend(cfg.exclude.iter().cloned());
    let files = semble_lint::walk::collect(paths, &excludes, semble_lint::walk::LINT_EXTENSIONS)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut inputs = Vec::new();
    for f in &files {
        let name = if f == Path::new("-") { "<stdin>".to_string() } else { f.display().to_string() };
        inputs.push((name, read_input(f)?));
    }
    let findings =
        cfg.apply(semble_lint::lint_all_with(&inputs, &opts).map_err(|e| anyhow::anyhow!("cannot parse {e}"))?);
    let names: Vec<String> = inputs.into_iter().map(|(n, _)| n).collect();
    match format {
        "json" => writeln!(out, "{}", output::json::render(names.len(), &findings))?,
        "sarif" => writeln!(out, "{}", serde_json::to_string_pretty(&output::sarif::render(&findings))?)?,
        "junit" => write!(out, "{}", output::junit::render(&names, &findings))?,
        _ => {
            use std::io::IsTerminal;
            write!(out, "{}", output::text::render(&findings, std::io::stdout().is_terminal()))?;
            // Every finding is out before the summary, and the summary starts a line of its own
            // even where a CI log glues stderr to stdout's last line: a blank line separates it.
            out.flush()?;
            let (e, w) = (
                findings.iter().filter(|f| f.level == Level::Error).count(),
                findings.iter().filter(|f| f.level == Level::Warning).count(),
            );
            let gap = if findings.is_empty() { "" } else { "\n" };
            eprintln!("{gap}{} file(s): {e} error(s), {w} warning(s)", names.len());
        }
    }
    Ok(if findings.iter().any(|f| f.level >= fail_on) { exit::INVALID } else { exit::OK })
}

/// `denials LOG…`: the summary table (or JSON, or the overlay).
pub fn denials(logs: &[PathBuf], format: Format, patch: bool) -> Result<u8> {
    use semble_seccomp::denials as d;
    let mut all = Vec::new();
    for f in logs {
        let text = read_input(f)?;
        all.extend(d::parse(&text, &f.display().to_string())?);
    }
    let rows = d::summarize(&all);
    let mut out = std::io::stdout().lock();
    if patch {
        let (text, warnings) = d::patch(&rows);
        for w in warnings {
            eprintln!("semble-policy: warning: {w}");
        }
        out.write_all(text.as_bytes())?;
    } else if format == Format::Json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
    } else {
        out.write_all(d::table(&rows).as_bytes())?;
    }
    Ok(exit::OK)
}

/// `record --out FILE [--base POLICY] -- COMMAND…`.
pub fn record(out: &Path, base: Option<&Path>, name: &str, command: &[String]) -> Result<u8> {
    let base_text = match base {
        Some(b) => {
            let text = read_input(b)?;
            semble_policy::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: the base policy is invalid: {e}", b.display()))?;
            Some(text)
        }
        None => None,
    };
    let me = std::env::current_exe().context("cannot find semble-policy's own binary")?;
    let helper = vec![me.display().to_string(), "__record-child".to_string()];
    let (recorder, status) = semble_supervisor::record::run(&helper, command)?;
    let what = format!("`{}`", command.join(" "));
    semble_supervisor::record::write(out, base_text.as_deref(), name, &recorder.seen, &what)?;
    eprintln!(
        "semble-policy: recorded {} syscalls of {what} into {} (the command exited with {status})",
        recorder.seen.len(),
        out.display()
    );
    Ok(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(exit::INVALID))
}
