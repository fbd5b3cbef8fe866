//! # semble-shim: a drop-in OCI runtime that enforces a SandboxPolicy
//!
//! Container engines call `semble-shim` exactly as they call runc. On `create` and `run` it
//! chooses the container's policy, merges it into the bundle's `config.json` as a ceiling, and
//! hands the bundle to a backend runtime (runc, gVisor's runsc, or an embedded runtime); every
//! other command is passed through to the backend that created the container.
//!
//! ## Flow (modules in the order a container meets them)
//!
//! * [`cli`] — runc's command line, flag for flag, plus semble's global flags;
//! * [`resolve`] — which policy: `--policy`, the `semble.dev/policy` annotation, the directory's
//!   default, the built-in default;
//! * [`host`] — what this host can enforce (Landlock ABI, SELinux, its own namespaces);
//! * [`bundle`] — the ceiling merge: the one place where a container's sandbox is decided;
//! * [`state`] — what semble remembers per container (backend, policy, files);
//! * [`backend`] — the runtimes that do the work;
//! * [`ops`] — the commands; [`explain_bundle`] — what a bundle gets and why.
//!
//! Inside the container, `semble-init` (the `semble-init` crate) checks the runtime's work and
//! applies what only the container's own process can (Landlock).
//!
//! ## The threat this answers
//!
//! Teams run untrusted code (AI agents) through container engines whose configurations are
//! assembled by many hands. The shim makes the policy the last word on every node, whatever
//! the engine asked for, and refuses — with one line saying why — what the policy cannot allow
//! or the host cannot enforce.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod backend;
pub mod bundle;
pub mod cli;
pub mod doctor;
mod doctor_gpu;
mod doctor_rootless;
pub mod egress;
pub mod error;
pub mod explain_bundle;
pub mod host;
pub mod landlock_audit;
pub mod log;
pub mod mounts;
pub mod ops;
pub mod resolve;
pub mod settings;
pub mod state;
pub mod subcontainer;
pub mod supervisor;
mod sys;
