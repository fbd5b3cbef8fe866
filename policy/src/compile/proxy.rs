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

/// The bounds semble-proxy is started with that decide how much memory it can be made to hold,
/// and that bound ([`ProxyLimits::memory_bound`]). The proxy takes its defaults from here; the
/// Kubernetes target sets a gateway's flags and its memory limit from the same numbers, so the
/// limit follows the configured maxima instead of being a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyLimits {
    /// `--max-connections`: client connections and tunnels, all clients together.
    pub max_connections: u64,
    /// `--max-client-connections`: connections one client (a source address, or a Unix
    /// listener: one sandbox) may hold.
    pub max_client_connections: u64,
    /// `--max-header-bytes`: one request head.
    pub max_header_bytes: u64,
    /// `--max-signed-body`: one body read whole (to be signed, or searched for `_method`).
    pub max_signed_body: u64,
    /// `--max-buffered-bytes`: bodies read whole, all clients together.
    pub max_buffered_bytes: u64,
    /// `--max-client-buffered-bytes`: bodies read whole for one client at once.
    pub max_client_buffered_bytes: u64,
}

const MIB: u64 = 1024 * 1024;

impl Default for ProxyLimits {
    fn default() -> Self {
        ProxyLimits {
            max_connections: 4096,
            max_client_connections: 256,
            max_header_bytes: 32 * 1024,
            max_signed_body: 32 * MIB,
            max_buffered_bytes: 128 * MIB,
            max_client_buffered_bytes: 64 * MIB,
        }
    }
}

impl ProxyLimits {
    /// The gateway Deployment's: fewer connections, half the buffered bodies (it serves the
    /// pods of one policy; more replicas scale it out).
    pub fn gateway() -> ProxyLimits {
        ProxyLimits {
            max_connections: 1024,
            max_client_connections: 128,
            max_buffered_bytes: 64 * MIB,
            max_client_buffered_bytes: 32 * MIB,
            ..ProxyLimits::default()
        }
    }

    /// What one connection can make the proxy hold at most: the head buffer (the head limit
    /// plus hyper's read slack, held in a buffer that grows by doubling), TLS state of an
    /// intercepted session, and its task.
    pub fn per_connection(&self) -> u64 {
        2 * (self.max_header_bytes + 8 * 1024).next_power_of_two() + 32 * 1024
    }

    /// An upper bound of the proxy's memory in bytes: a fixed base (runtime, TLS roots, the
    /// full decision-log queue), every connection at its most, the buffered bodies twice (read
    /// in pieces, then made whole), and the relay's pipes (the pool stays inside the kernel's
    /// 64 MiB per-user pipe allowance; pipes past it get one page).
    pub fn memory_bound(&self) -> u64 {
        let base = 48 * MIB;
        let pipes = 64 * MIB + self.max_connections * 2 * 4096;
        base + self.max_connections * self.per_connection() + 2 * self.max_buffered_bytes + pipes
    }

    /// The proxy's flags for these limits.
    pub fn args(&self) -> Vec<String> {
        [
            ("--max-connections", self.max_connections),
            ("--max-client-connections", self.max_client_connections),
            ("--max-header-bytes", self.max_header_bytes),
            ("--max-signed-body", self.max_signed_body),
            ("--max-buffered-bytes", self.max_buffered_bytes),
            ("--max-client-buffered-bytes", self.max_client_buffered_bytes),
        ]
        .iter()
        .flat_map(|(k, v)| [k.to_string(), v.to_string()])
        .collect()
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
    fn the_memory_bound_follows_the_maxima() {
        let d = ProxyLimits::default();
        let g = ProxyLimits::gateway();
        assert!(g.memory_bound() < d.memory_bound());
        // Each connection at most ~128 KiB with a 32 KiB head limit.
        assert_eq!(d.per_connection(), 2 * 65536 + 32 * 1024);
        let more = ProxyLimits { max_connections: g.max_connections * 2, ..g };
        assert_eq!(more.memory_bound() - g.memory_bound(), g.max_connections * (g.per_connection() + 8192));
        assert_eq!(g.args()[..2], ["--max-connections".to_string(), "1024".to_string()]);
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
