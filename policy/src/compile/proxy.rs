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
    /// Whether the upstream speaks TLS: on every port, on none, or on these ports.
    pub tls: TlsOut,
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

/// `tls` as written: `true`, `false`, or the ports that speak TLS when only some do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TlsOut {
    /// Every port (`true`) or none (`false`).
    All(bool),
    /// Only these ports.
    Ports(Vec<u16>),
}

impl From<&EgressRule> for RuleOut {
    fn from(r: &EgressRule) -> Self {
        let tls = if r.tls {
            TlsOut::All(true)
        } else if r.tls_ports.is_empty() {
            TlsOut::All(false)
        } else {
            TlsOut::Ports(r.tls_ports.clone())
        };
        RuleOut {
            host: r.host.to_string(),
            ports: r.ports.clone(),
            tls,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn egress(src: &str) -> Vec<EgressRule> {
        crate::parse_rules(&format!("kind: ProxyRules\negress:\n{src}")).unwrap().egress
    }

    #[test]
    fn tls_follows_each_port() {
        let e = egress("  - {host: a.test, ports: [443, 8443]}\n  - {host: b.test, ports: [443, 5432]}\n  - {host: c.test, ports: [80, 8080]}\n");
        assert_eq!((e[0].tls, e[0].tls_ports.clone()), (true, vec![443, 8443]));
        assert_eq!((e[1].tls, e[1].tls_ports.clone()), (false, vec![443]));
        assert!(e[1].tls_on(443) && !e[1].tls_on(5432));
        assert_eq!((e[2].tls, e[2].tls_ports.clone()), (false, vec![]));
        let e = egress(
            "  - {host: a.test, ports: [443, 8443], tls: false}\n  - {host: b.test, ports: [80, 9000], tls: [9000]}\n",
        );
        assert!(e[0].tls_ports.is_empty());
        assert_eq!(e[1].tls_ports, vec![9000]);
        let err =
            crate::parse_rules("kind: ProxyRules\negress:\n  - {host: a.test, ports: [443], tls: [80]}\n").unwrap_err();
        assert!(err.diagnostics[0].message.contains("not one of the rule's `ports`"), "{err:?}");
    }

    #[test]
    fn the_rules_file_reads_back_the_same() {
        let src =
            "  - {host: a.test, ports: [443, 5432]}\n  - {host: b.test, ports: [80], tls: false}\n  - {host: c.test}\n";
        let e = egress(src);
        let file = rules_from("t", &e);
        let json = serde_json::to_string(&file).unwrap();
        assert!(json.contains(r#""tls":[443]"#) && json.contains(r#""tls":false"#) && json.contains(r#""tls":true"#));
        assert_eq!(crate::parse_rules(&json).unwrap().egress, e);
    }

    #[test]
    fn a_rules_file_allowing_one_destination_twice_is_refused() {
        let err =
            crate::parse_rules("kind: ProxyRules\negress:\n  - {host: a.test, ports: [443]}\n  - {host: a.test}\n")
                .unwrap_err();
        assert!(err.diagnostics[0].message.contains("already allowed by the rule at line 3"), "{err:?}");
    }
}
