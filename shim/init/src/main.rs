//! `semble-init [--exec] --config FILE -- PROGRAM [ARGS...]`
//!
//! Not meant to be run by hand: `semble-shim` places it in containers. Exit codes: the workload's
//! own; 126 when the policy could not be enforced (the reason is on stderr); 127 when the program
//! does not exist.

use std::process::ExitCode;

use semble_init::config::InitConfig;
use semble_init::supervise::EXIT_POLICY;
use semble_init::{report, run_as_exec, run_as_init, Filters};

struct Args {
    exec: bool,
    config: String,
    argv: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut exec = false;
    let mut config = None;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--exec" => exec = true,
            "--config" => config = Some(it.next().ok_or("`--config` needs a file")?),
            "--" => break,
            "--help" | "-h" => return Err(
                "usage: semble-init [--exec] --config FILE -- PROGRAM [ARGS...] (placed in containers by semble-shim)"
                    .into(),
            ),
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: semble-init [--exec] --config FILE -- PROGRAM [ARGS...]"
                ))
            }
        }
    }
    let argv: Vec<String> = it.collect();
    if argv.is_empty() {
        return Err("no program given after `--`".into());
    }
    Ok(Args { exec, config: config.ok_or("missing `--config FILE`")?, argv })
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => return exit(report(2, &e)),
    };
    let cfg: InitConfig = match std::fs::read(&args.config)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => return exit(report(EXIT_POLICY, &format!("cannot read `{}`: {e}", args.config))),
    };
    // Read everything before Landlock: afterwards semble's own files are out of reach.
    let filters = match Filters::from_files(&cfg) {
        Ok(f) => f,
        Err(e) => return exit(report(EXIT_POLICY, &e)),
    };
    if args.exec {
        exit(run_as_exec(&cfg, &filters, &args.argv))
    } else {
        exit(run_as_init(&cfg, &filters, &args.argv))
    }
}
