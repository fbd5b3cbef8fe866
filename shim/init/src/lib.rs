//! # semble-init: the first process of a semble container
//!
//! The shim makes `semble-init` the container's process 1 (bind-mounted read-only from the host
//! at `/.semble/init`) and puts the workload's command after it. Before the workload runs,
//! `semble-init`:
//!
//! 1. **verifies** that the runtime applied the policy: no capability beyond the policy's, no_new_privs
//!    set, a seccomp filter in force, the right uid — a runtime that ignored `config.json` is
//!    caught here, not trusted ([`verify`]);
//! 2. **binds the proxy bridge** when the policy's network mode is `proxy` ([`bridge`]);
//! 3. **forks** the workload, which applies the Landlock ruleset to itself (Landlock needs a path
//!    view that only exists after `pivot_root`, which is why a runtime cannot do it from outside)
//!    and stacks the container's own seccomp profile, then `execve`s ([`landlock_apply`]);
//! 4. **supervises**: forwards signals, reaps zombies, exits with the workload's status
//!    ([`supervise`]).
//!
//! For `exec` processes (`semble-init --exec`), the same checks and restrictions apply, and it
//! `execve`s directly (the runtime supervises exec processes).
//!
//! It is a static binary (no libc in the container needed), small, and it never decides policy:
//! it applies what the shim computed and refuses to start when it cannot.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod bridge;
pub mod config;
pub mod landlock_apply;
pub mod supervise;
mod sys;
pub mod verify;

use std::convert::Infallible;

use config::InitConfig;

/// Read a seccomp filter the shim compiled.
pub fn read_filter(path: &str, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} `{path}`: {e}"))
}

/// Load a filter on top of the ones in force.
pub fn load_filter(program: &[u8], what: &str) -> Result<(), String> {
    sys::seccomp_load(program).map_err(|e| format!("cannot load {what}: {e}"))
}

/// Load the policy's filter (when semble-init applies it), then check a filter is in force.
/// Runs first, so that everything after — in `semble-init` too — is filtered.
pub fn enter_policy_seccomp(cfg: &InitConfig) -> Result<(), String> {
    if let Some(path) = &cfg.seccomp {
        let program = read_filter(path, "the policy's seccomp filter")?;
        load_filter(&program, "the policy's seccomp filter")?;
    }
    verify::verify_seccomp(&cfg.expect).map_err(|e| e.to_string())
}

/// Everything the workload's own process does before `execve`: Landlock, the stacked filter,
/// exec. Never returns on success.
pub fn restrict_and_exec(cfg: &InitConfig, argv: &[String]) -> Result<Infallible, (i32, String)> {
    // Read before Landlock: afterwards semble's own files are out of reach.
    let extra = match &cfg.extra_seccomp {
        Some(path) => Some(
            read_filter(path, "the container's seccomp filter")
                .map_err(|e| (supervise::EXIT_POLICY, e))?,
        ),
        None => None,
    };
    if let Some(rs) = &cfg.landlock {
        match landlock_apply::apply(rs) {
            Ok(report) => {
                if report.status != landlock_apply::Enforced::Fully {
                    eprintln!(
                        "semble-init: warning: Landlock is {} on this kernel for policy `{}`",
                        match report.status {
                            landlock_apply::Enforced::Partially => "partially enforced",
                            _ => "not enforced",
                        },
                        cfg.policy
                    );
                }
            }
            Err(e) => return Err((supervise::EXIT_POLICY, e.to_string())),
        }
    }
    if let Some(program) = &extra {
        load_filter(program, "the container's seccomp filter")
            .map_err(|e| (supervise::EXIT_POLICY, e))?;
    }
    supervise::exec(argv)
}
