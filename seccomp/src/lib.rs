//! # semble-seccomp: syscall filtering
//!
//! Turns a [`SandboxPolicy`](semble_policy::SandboxPolicy) into an OCI seccomp profile (the JSON
//! runc, crun, Podman and libcontainer read) and into BPF with libseccomp.
//!
//! * [`baseline`] — the syscall sets, as data with a reason for every group;
//! * [`generate`] — policy → profile, deterministic, every rule commented;
//! * [`bpf`] — profile → libseccomp filter → BPF program, or loaded into the current process;
//! * [`denials`] — denial records, their summary and the policy overlay that would allow them.
//!
//! Pure translation, no long-running process: the supervisor that answers seccomp user
//! notifications at run time, and the recorder, are `semble-supervisor`.
//!
//! ## The threat this answers
//!
//! Containers share the host kernel; every syscall a workload can make is kernel attack surface.
//! Docker's default profile is the floor. Untrusted code (an AI agent running whatever it was
//! told to) gets less: no keyrings, no `io_uring`, no `userfaultfd`, no `ptrace`, no new
//! namespaces (the usual first step of container escapes), no mount API, no BPF, and sockets only
//! of the address families a workload needs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod baseline;
pub mod bpf;
pub mod denials;
pub mod generate;

pub use generate::{facts, profile};

/// Compile a profile for x86_64 and count its instructions (for `explain`).
pub fn x86_64_instructions(profile: &semble_policy::seccomp_profile::SeccompProfile) -> Result<usize, bpf::BpfError> {
    bpf::compile(profile, libseccomp::ScmpArch::X8664).map(|b| bpf::instruction_count(&b))
}
