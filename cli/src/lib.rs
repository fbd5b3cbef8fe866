//! # semble-policy (the command)
//!
//! The `semble-policy` binary: the top of the dependency graph. `main.rs` parses arguments;
//! [`commands`] runs each subcommand by calling the libraries below it and turns what they return
//! into output and an exit code: the policy model (`semble-policy`), the compile targets
//! (`semble-seccomp`, `semble-selinux`, `semble-k8s`), lint (`semble-lint`), the connectivity
//! analysis (`semble_k8s::netpol`) and all-or-nothing file writes (`semble-files`).
//!
//! * [`targets`] — every compile target, built in memory before anything is written;
//! * [`commands`] — one function per subcommand, returning an exit code.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod commands;
pub mod snippet;
pub mod targets;

/// Exit codes of `semble-policy` (documented in `--help`).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The input was read, and it is invalid (or has findings at the threshold).
    pub const INVALID: u8 = 1;
    /// Usage error, or an input that cannot be read.
    pub const USAGE: u8 = 2;
}
