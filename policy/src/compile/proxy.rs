//! `--target proxy`: the egress rules semble-proxy enforces, in the `ProxyRules` file format.
//!
//! The file has the same rule schema as `spec.network.egress`, so `semble-proxy --rules FILE`
//! and `semble-proxy --policy POLICY` read the same thing (see [`crate::parse_rules`]).

use serde::Serialize;

use crate::model::{EgressRule, SandboxPolicy, API_VERSION};

/// The `kind` of a rules file.
pub const RULES_KIND: &str = "ProxyRules";

/// A rules file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesFile {
    /// `semble.dev/v1alpha1`.
    pub api_version: String,
    /// `ProxyRules`.
    pub kind: String,
    /// `{name}`: the policy the rules come from.
    pub metadata: Metadata,
    /// The rules.
    pub egress: Vec<RuleOut>,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    /// Name.
    pub name: String,
}

/// One rule as written to the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleOut {
    /// Host or `*.suffix`.
    pub host: String,
    /// Ports.
    pub ports: Vec<u16>,
    /// Whether the upstream speaks TLS.
    pub tls: bool,
    /// Credential name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Methods.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Path prefixes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Reserved ranges this rule may reach.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_addresses: Vec<String>,
}

impl From<&EgressRule> for RuleOut {
    fn from(r: &EgressRule) -> Self {
        RuleOut {
            host: r.host.to_string(),
            ports: r.ports.clone(),
            tls: r.tls,
            credential: r.credential.clone(),
            methods: r.methods.clone(),
            paths: r.paths.clone(),
            allow_addresses: r.allow_addresses.iter().map(|n| n.to_string()).collect(),
        }
    }
}

/// Build the rules file of a policy.
pub fn rules(policy: &SandboxPolicy) -> RulesFile {
    rules_from(&policy.name, &policy.network.egress)
}

/// Build a rules file from rules.
pub fn rules_from(name: &str, egress: &[EgressRule]) -> RulesFile {
    RulesFile {
        api_version: API_VERSION.to_string(),
        kind: RULES_KIND.to_string(),
        metadata: Metadata { name: name.to_string() },
        egress: egress.iter().map(RuleOut::from).collect(),
    }
}
