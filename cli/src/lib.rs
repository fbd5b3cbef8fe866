//! # semble-policy (the command)
//!
//! The `semble-policy` binary and the pieces it is made of. The policy model lives in the
//! `semble-policy` library at the bottom of the dependency graph; this package sits on top of it
//! and of `semble-seccomp` (and, as they grow, the other compile targets), so that `compile`,
//! `explain` and `lint` can use every one of them. (`semble-policy` the library cannot depend on
//! `semble-seccomp`: that crate depends on it.)
//!
//! * [`targets`] — every compile target, built in memory before anything is written;
//! * [`commands`] — one function per subcommand, returning an exit code.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod commands;
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
