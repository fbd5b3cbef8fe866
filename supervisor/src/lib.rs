//! # semble-supervisor: seccomp refusals explained, and syscalls recorded, as they happen
//!
//! The runtime side of seccomp, kept apart from [`semble_seccomp`]'s pure translation (policy →
//! profile → BPF): processes that live as long as a container does.
//!
//! * [`notify`] — the supervisor that answers seccomp user notifications: explains each denial
//!   (rule, fix, from [`semble_seccomp::denials`]) while returning the policy's errno, or records
//!   a run; `semble-shim supervise ID` runs it for each container;
//! * [`record`] — record the syscalls a command needs and write them as a policy
//!   (`semble-policy record`).
//!
//! `unsafe` lives in one module, `sys` (taking ownership of received descriptors).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod notify;
pub mod record;
mod sys;
