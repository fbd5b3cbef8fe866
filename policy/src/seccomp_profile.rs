//! The OCI / Docker / Podman seccomp profile format, as data.
//!
//! The same JSON shape appears as `linux.seccomp` in an OCI `config.json` and as a standalone
//! profile (`podman run --security-opt seccomp=FILE`). Docker's extensions (`comment`,
//! `includes`, `excludes`, `archMap`) are read so that real-world profiles can be linted; semble
//! writes `comment` so that every rule keeps its reason, which runc, crun, Podman and libcontainer
//! ignore.

use serde::{Deserialize, Serialize};

/// A seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    /// Action for syscalls no rule matches, e.g. `SCMP_ACT_ERRNO`.
    pub default_action: String,
    /// errno for `SCMP_ACT_ERRNO` as the default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Architectures the filter accepts; syscalls from other ABIs hit the bad-arch action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// Docker's per-architecture form (read only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMap>,
    /// Filter flags, e.g. `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Unix socket receiving the notify fd (`SCMP_ACT_NOTIFY` rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    /// Opaque data passed to the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    /// The rules.
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

/// Docker's architecture map entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    /// The main architecture.
    pub architecture: String,
    /// Sub-architectures (e.g. x86 and x32 under x86_64).
    #[serde(default)]
    pub sub_architectures: Vec<String>,
}

/// One rule: an action for some syscalls, optionally only when arguments match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    /// Syscall names.
    pub names: Vec<String>,
    /// The action, e.g. `SCMP_ACT_ALLOW`.
    pub action: String,
    /// errno for `SCMP_ACT_ERRNO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Argument conditions (all must hold).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCondition>,
    /// Why the rule exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Docker: conditions under which the rule applies (read only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<serde_json::Value>,
    /// Docker: conditions under which the rule does not apply (read only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<serde_json::Value>,
}

/// A condition on one syscall argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgCondition {
    /// Argument index (0–5).
    pub index: u32,
    /// The value compared against (or the mask, with `SCMP_CMP_MASKED_EQ`).
    pub value: u64,
    /// The second value (the expected masked value, with `SCMP_CMP_MASKED_EQ`).
    #[serde(default)]
    pub value_two: u64,
    /// `SCMP_CMP_EQ`, `SCMP_CMP_NE`, `SCMP_CMP_MASKED_EQ`, …
    pub op: String,
}

impl SeccompProfile {
    /// Every syscall name some rule allows without argument conditions.
    pub fn unconditionally_allowed(&self) -> impl Iterator<Item = &str> {
        self.syscalls
            .iter()
            .filter(|r| r.action == "SCMP_ACT_ALLOW" && r.args.is_empty())
            .flat_map(|r| r.names.iter().map(String::as_str))
    }

    /// Whether the default action lets syscalls through.
    pub fn default_allows(&self) -> bool {
        matches!(self.default_action.as_str(), "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG")
    }
}
