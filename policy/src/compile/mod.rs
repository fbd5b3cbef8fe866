//! Compile targets that are pure data: `&SandboxPolicy -> artifact`, no I/O.
//!
//! Seccomp (which needs libseccomp to check and to produce BPF) lives in `semble-seccomp`; the
//! OCI fragment takes its output as an argument so this crate stays free of system libraries.

pub mod landlock;
pub mod oci;
pub mod proxy;

/// Serialise an artifact as pretty JSON with a final newline (deterministic: struct fields in
/// declaration order, maps sorted).
pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
