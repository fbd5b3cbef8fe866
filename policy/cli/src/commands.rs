//! The subcommands. Each prints its result and returns an exit code; errors that stop a command
//! are returned as one-line messages for `main` to print.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use semble_policy::{Diagnostic, Severity};
use serde::Serialize;

use crate::atomic;
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
pub fn validate(files: &[PathBuf], format: Format) -> Result<u8> {
    let mut reports = Vec::new();
    for f in files {
        let src = read_input(f)?;
        let name = f.display().to_string();
        let report = match semble_policy::parse(&src) {
            Ok(p) => {
                FileReport { file: name, valid: true, policy: Some(p.policy.name.clone()), diagnostics: p.warnings }
            }
            Err(e) => FileReport { file: name, valid: false, policy: None, diagnostics: e.diagnostics },
        };
        reports.push(report);
    }
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &reports)?;
            writeln!(out)?;
        }
        Format::Text => {
            for r in &reports {
                for d in &r.diagnostics {
                    writeln!(out, "{}", d.render(Some(&r.file)))?;
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
                atomic::write(&path, &a.bytes).with_context(|| format!("cannot write `{}`", path.display()))?;
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
