//! # semble-policy: the SandboxPolicy model
//!
//! One policy file describes a sandbox; this crate reads it and turns it into data every
//! enforcement point consumes. It is the bottom of semble's dependency graph and does no I/O and
//! no system calls: every function here is `text -> value` or `&SandboxPolicy -> artifact`, so it
//! can be audited, fuzzed and tested without root.
//!
//! ## Flow
//!
//! ```text
//!   text ──yaml::parse──▶ spanned tree ──parse::from_node──▶ SandboxPolicy ──compile::*──▶ artifacts
//!                          (line:col on                      (validated:       (OCI fragment,
//!                           every node)                       names known,      Landlock ruleset,
//!                                                             paths absolute)   proxy rules)
//! ```
//!
//! * [`yaml`] reads YAML or JSON into a tree where every node and key keeps its position.
//! * [`parse`] reads that tree into the validated [`model::SandboxPolicy`], reporting *every*
//!   problem at once as a [`diag::Diagnostic`] with `line:column`, the field path and a fix.
//! * [`compile`] holds the pure compile targets. Seccomp lives in `semble-seccomp` (it needs
//!   libseccomp), and is passed into the OCI fragment by the caller.
//! * [`explain`] renders what a workload can and cannot do under a policy.
//! * [`facts`] holds what several crates must agree on about the world outside: Kubernetes' safe
//!   sysctls per version, the runtimes' default capabilities, annotation keys, NVIDIA majors.
//!
//! ## The threat this answers
//!
//! A policy that says less than its author meant is a hole: a misspelled `readOnlyRootFilesytem`
//! silently ignored leaves the root writable. So unknown fields, wrong types, unknown
//! capability and syscall names, relative paths, duplicates and contradictions are errors, and
//! defaults are the safe choice (drop every capability, no_new_privs, read-only root, no network).
//!
//! ```
//! let src = "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: demo}\nspec:\n  process: {user: 1000}\n  network: {mode: none}\n";
//! let parsed = semble_policy::parse(src).unwrap();
//! assert_eq!(parsed.policy.process.user, Some(1000));
//! assert!(parsed.policy.capabilities.granted().is_empty());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod caps;
pub mod checks;
pub mod compile;
pub mod diag;
pub mod errno;
pub mod explain;
pub mod facts;
pub mod model;
pub mod parse;
pub mod quantity;
pub mod read;
pub mod seccomp_profile;
pub mod syscalls;
pub mod yaml;

pub use caps::Capability;
pub use diag::{Diagnostic, Pos, Severity};
pub use model::SandboxPolicy;
pub use parse::{parse, parse_rules, Parsed, PolicyError, ProxyRules};
