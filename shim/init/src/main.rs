//! `semble-init [--exec] --config FILE -- PROGRAM [ARGS...]`
//!
//! Not meant to be run by hand: `semble-shim` places it in containers. Exit codes: the workload's
//! own; 126 when the policy could not be enforced (the reason is on stderr); 127 when the program
//! does not exist.

use std::process::ExitCode;

use semble_init::config::{InitConfig, VERSION};
use semble_init::{bridge, restrict_and_exec, supervise, verify};

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
            "--help" | "-h" => {
                return Err("usage: semble-init [--exec] --config FILE -- PROGRAM [ARGS...] (placed in containers by semble-shim)".into())
            }
            other => return Err(format!("unknown argument `{other}`; usage: semble-init [--exec] --config FILE -- PROGRAM [ARGS...]")),
        }
    }
    let argv: Vec<String> = it.collect();
    if argv.is_empty() {
        return Err("no program given after `--`".into());
    }
    Ok(Args {
        exec,
        config: config.ok_or("missing `--config FILE`")?,
        argv,
    })
}

fn fail(code: i32, msg: &str) -> ExitCode {
    eprintln!("semble-init: error: {}", msg.replace('\n', " "));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => return fail(2, &e),
    };
    let cfg: InitConfig = match std::fs::read(&args.config)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            return fail(
                supervise::EXIT_POLICY,
                &format!("cannot read `{}`: {e}", args.config),
            )
        }
    };
    if cfg.version != VERSION {
        return fail(supervise::EXIT_POLICY, &format!("configuration version {} is not {VERSION}; semble-init and semble-shim come from different releases", cfg.version));
    }
    if let Err(e) = verify::verify(&cfg.expect) {
        return fail(
            supervise::EXIT_POLICY,
            &format!(
                "container `{}`, policy `{}`: {e}",
                cfg.container_id, cfg.policy
            ),
        );
    }
    if let Err(e) = semble_init::enter_policy_seccomp(&cfg) {
        return fail(
            supervise::EXIT_POLICY,
            &format!(
                "container `{}`, policy `{}`: {e}",
                cfg.container_id, cfg.policy
            ),
        );
    }
    if args.exec {
        return match restrict_and_exec(&cfg, &args.argv) {
            Ok(never) => match never {},
            Err((code, msg)) => fail(code, &msg),
        };
    }
    let listener = match &cfg.proxy_bridge {
        Some(b) => match bridge::bind(&b.listen) {
            Ok(l) => Some((l, b.socket.clone())),
            Err(e) => {
                return fail(
                    supervise::EXIT_POLICY,
                    &format!("cannot listen on `{}` for the proxy bridge: {e}", b.listen),
                )
            }
        },
        None => None,
    };
    let old_mask = match supervise::block_signals() {
        Ok(m) => m,
        Err(e) => {
            return fail(
                supervise::EXIT_POLICY,
                &format!("cannot block signals: {e}"),
            )
        }
    };
    let workload = supervise::spawn(|| {
        supervise::prepare_child(&old_mask);
        match restrict_and_exec(&cfg, &args.argv) {
            Ok(never) => match never {},
            Err((code, msg)) => {
                eprintln!("semble-init: error: {msg}");
                code
            }
        }
    });
    let workload = match workload {
        Ok(p) => p,
        Err(e) => {
            return fail(
                supervise::EXIT_POLICY,
                &format!("cannot start the workload: {e}"),
            )
        }
    };
    if let Some((l, socket)) = listener {
        if let Err(e) = bridge::serve(l, socket.into()) {
            eprintln!("semble-init: warning: proxy bridge not started: {e}");
        }
    }
    let code = supervise::supervise(workload);
    ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1))
}
