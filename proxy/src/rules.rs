//! The allow-list and the decisions made with it.
//!
//! Rules come from a policy's `network.egress` or a `ProxyRules` file (the same schema, read by
//! [`semble_policy::parse_rules`]). Every request is decided on its own, against the rules in
//! force when it arrives: a kept-alive connection that asked for an allowed host first and
//! another host next gets the second request refused.
//!
//! Matching, precisely:
//! * `host: api.example.com` matches that name only (case-insensitive; the client's name is
//!   folded to lower case first, see [`crate::host`]).
//! * `host: "*.example.com"` matches names *below* `example.com` (`a.example.com`,
//!   `a.b.example.com`), **not** `example.com` itself and not `evil-example.com`.
//! * Where several patterns match a name, **the most specific decides**, whatever the order
//!   of the file: an exact name over any `*.suffix`, a longer suffix over a shorter one, any
//!   suffix over `*`. The deciding pattern's rules alone say which ports the name may use, so
//!   `api.example.com` with a credential and `methods: [GET]` is never tunnelled blind by a
//!   `*.example.com` rule, on any port. (The same pattern twice on one port is refused when the
//!   rules are read.)
//! * An IP literal matches no `host` pattern, not even `*`: it is allowed only by a rule whose
//!   `allowAddresses` contains it (on one of the rule's ports).
//! * `methods` and `paths` (segment-wise prefixes: `/v1` admits `/v1` and `/v1/x`, not `/v10`)
//!   are checked on every HTTP request the proxy can see: plain `http://` requests, and
//!   requests inside intercepted TLS. A rule with them, or with a `credential`, is never
//!   tunnelled blind.

use std::net::IpAddr;

use semble_policy::model::EgressRule;
use semble_policy::ProxyRules;

use crate::addr;
use crate::creds::Credentials;
use crate::deny::{Deny, Reason};
use crate::host::{Host, Target};

/// One rule with its label for logs and metrics.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule as the policy states it.
    pub spec: EgressRule,
    /// `host:port,port` — how logs and metrics name the rule.
    pub label: String,
}

impl Rule {
    /// Whether requests under this rule must be seen in clear (a credential to inject, or
    /// methods/paths to check): such a rule is never tunnelled blind.
    pub fn needs_http(&self) -> bool {
        self.spec.credential.is_some() || !self.spec.methods.is_empty() || !self.spec.paths.is_empty()
    }
}

/// The rules in force.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// `metadata.name` of the file the rules came from.
    pub name: String,
    /// Where they came from (a path, or `admin API`).
    pub source: String,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// A decision to allow: which rule, and where to connect.
#[derive(Debug, Clone, Copy)]
pub struct Allowed<'a> {
    /// The rule that allows it.
    pub rule: &'a Rule,
    /// The port to connect to.
    pub port: u16,
}

impl RuleSet {
    /// Wrap parsed rules.
    pub fn new(parsed: ProxyRules, source: impl Into<String>) -> RuleSet {
        let rules = parsed
            .egress
            .into_iter()
            .map(|spec| {
                let ports: Vec<String> = spec.ports.iter().map(u16::to_string).collect();
                let label = format!("{}:{}", spec.host, ports.join(","));
                Rule { spec, label }
            })
            .collect();
        RuleSet { name: parsed.name, source: source.into(), rules }
    }

    /// The credential names the rules refer to.
    pub fn credentials(&self) -> impl Iterator<Item = (&Rule, &str)> {
        self.rules.iter().filter_map(|r| r.spec.credential.as_deref().map(|c| (r, c)))
    }

    /// The credentials the rules name that `creds` lacks, one line each.
    pub fn missing_credentials(&self, creds: &Credentials) -> Vec<String> {
        self.credentials()
            .filter(|(_, c)| creds.get(c).is_none())
            .map(|(r, c)| {
                format!("rule `{}` names credential `{c}`, which the credentials file does not define", r.label)
            })
            .collect()
    }

    /// Decide a target (a `CONNECT` authority, or a URI with an explicit port).
    pub fn decide(&self, target: &Target) -> Result<Allowed<'_>, Deny> {
        match &target.host {
            Host::Name(name) => {
                let by_host = self.for_host(name);
                if by_host.is_empty() {
                    return Err(Deny::new(Reason::NoRule, format!("no egress rule allows `{name}`")));
                }
                match by_host.iter().find(|r| r.spec.ports.contains(&target.port)) {
                    Some(rule) => Ok(Allowed { rule, port: target.port }),
                    None => Err(Deny::new(
                        Reason::PortNotAllowed,
                        format!("`{name}` is allowed on port(s) {}, not {}", ports_text(&by_host), target.port),
                    )),
                }
            }
            Host::Ip(ip) => self.decide_ip(*ip, target.port),
        }
    }

    /// The rules of the most specific pattern matching `name` (all with that one pattern).
    fn for_host(&self, name: &str) -> Vec<&Rule> {
        let best = self.rules.iter().filter(|r| r.spec.host.matches(name)).map(|r| r.spec.host.specificity()).max();
        match best {
            Some(best) => {
                self.rules.iter().filter(|r| r.spec.host.matches(name) && r.spec.host.specificity() == best).collect()
            }
            None => Vec::new(),
        }
    }

    fn decide_ip(&self, ip: IpAddr, port: u16) -> Result<Allowed<'_>, Deny> {
        self.rules
            .iter()
            .find(|r| addr::covered(ip, &r.spec.allow_addresses) && r.spec.ports.contains(&port))
            .map(|rule| Allowed { rule, port })
            .ok_or_else(|| {
                Deny::new(Reason::IpLiteral, format!("IP address targets are refused ({ip}); ask for the host by name"))
            })
    }

    /// Decide a plain `http://` request. Without an explicit port, a rule for port 80 without
    /// TLS is used if there is one; otherwise a TLS rule, and the proxy opens TLS to its port
    /// (plain upstream mode: `http://bedrock-runtime…/` reaches `https://…:443/`).
    pub fn decide_http(&self, host: &Host, explicit_port: Option<u16>) -> Result<Allowed<'_>, Deny> {
        if let Some(port) = explicit_port {
            return self.decide(&Target { host: host.clone(), port });
        }
        let name = match host {
            Host::Name(n) => n,
            Host::Ip(ip) => return self.decide_ip(*ip, 80),
        };
        let by_host = self.for_host(name);
        if by_host.is_empty() {
            return Err(Deny::new(Reason::NoRule, format!("no egress rule allows `{name}`")));
        }
        if let Some(rule) = by_host.iter().find(|r| r.spec.ports.contains(&80) && !r.spec.tls_on(80)) {
            return Ok(Allowed { rule, port: 80 });
        }
        for rule in &by_host {
            let port = if rule.spec.tls_on(443) { Some(443) } else { rule.spec.tls_ports.first().copied() };
            if let Some(port) = port {
                return Ok(Allowed { rule, port });
            }
        }
        Err(Deny::new(
            Reason::PortNotAllowed,
            format!("`{name}` is allowed on port(s) {}, not 80", ports_text(&by_host)),
        ))
    }
}

fn ports_text(rules: &[&Rule]) -> String {
    let mut ports: Vec<u16> = rules.iter().flat_map(|r| r.spec.ports.iter().copied()).collect();
    ports.sort_unstable();
    ports.dedup();
    ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{parse_authority, parse_host};

    fn set(src: &str) -> RuleSet {
        let y = format!("apiVersion: semble.dev/v1alpha1\nkind: ProxyRules\nmetadata: {{name: t}}\negress:\n{src}");
        RuleSet::new(semble_policy::parse_rules(&y).unwrap(), "test")
    }

    fn decide(rs: &RuleSet, a: &str) -> Result<String, &'static str> {
        rs.decide(&parse_authority(a).unwrap()).map(|x| x.rule.label.clone()).map_err(|d| d.reason.code())
    }

    #[test]
    fn exact_and_suffix() {
        let rs = set("  - host: api.example.com\n  - host: \"*.amazonaws.com\"\n    ports: [443, 8443]\n");
        assert_eq!(decide(&rs, "api.example.com:443"), Ok("api.example.com:443".into()));
        assert_eq!(decide(&rs, "x.api.example.com:443"), Err("no_rule"));
        assert_eq!(decide(&rs, "bedrock.us-east-1.amazonaws.com:8443"), Ok("*.amazonaws.com:443,8443".into()));
        assert_eq!(decide(&rs, "amazonaws.com:443"), Err("no_rule"));
        assert_eq!(decide(&rs, "evil-amazonaws.com:443"), Err("no_rule"));
        assert_eq!(decide(&rs, "amazonaws.com.evil.net:443"), Err("no_rule"));
        assert_eq!(decide(&rs, "api.example.com:80"), Err("port_not_allowed"));
        assert_eq!(decide(&rs, "1.2.3.4:443"), Err("ip_literal"));
    }

    #[test]
    fn the_most_specific_pattern_decides_whatever_the_order() {
        let rs = set("  - host: \"*.wild.test\"\n    ports: [443, 8443]\n  - host: api.wild.test\n    credential: k\n    methods: [GET]\n  - host: \"*.deep.wild.test\"\n    ports: [9443]\n  - host: \"*\"\n    ports: [8080]\n    tls: false\n");
        let rule = |a: &str| rs.decide(&parse_authority(a).unwrap()).map(|x| x.rule.spec.credential.clone());
        assert_eq!(rule("api.wild.test:443"), Ok(Some("k".into())));
        assert_eq!(rule("other.wild.test:443"), Ok(None));
        // The specific rule's ports are the name's ports: 8443 is not tunnelled by the wildcard.
        assert_eq!(decide(&rs, "api.wild.test:8443"), Err("port_not_allowed"));
        assert_eq!(decide(&rs, "x.deep.wild.test:9443"), Ok("*.deep.wild.test:9443".into()));
        assert_eq!(decide(&rs, "x.deep.wild.test:443"), Err("port_not_allowed"));
        assert_eq!(decide(&rs, "elsewhere.test:8080"), Ok("*:8080".into()));
        assert_eq!(decide(&rs, "api.wild.test:8080"), Err("port_not_allowed"));
        let host = parse_host("api.wild.test").unwrap();
        assert_eq!(rs.decide_http(&host, None).unwrap().rule.spec.credential.as_deref(), Some("k"));
    }

    #[test]
    fn plain_http_to_a_mixed_rule_uses_its_tls_port() {
        let rs = set("  - host: db.test\n    ports: [5432, 8443]\n");
        let a = rs.decide_http(&parse_host("db.test").unwrap(), None).unwrap();
        assert_eq!(a.port, 8443);
    }

    #[test]
    fn ip_literals_need_allow_addresses() {
        let rs = set("  - host: internal.test\n    ports: [8080]\n    tls: false\n    allowAddresses: [10.0.0.0/24]\n");
        assert!(decide(&rs, "10.0.0.5:8080").is_ok());
        assert_eq!(decide(&rs, "10.0.0.5:443"), Err("ip_literal"));
        assert_eq!(decide(&rs, "10.0.1.5:8080"), Err("ip_literal"));
    }

    #[test]
    fn any_does_not_admit_literals() {
        let rs = set("  - host: \"*\"\n");
        assert!(decide(&rs, "anything.test:443").is_ok());
        assert_eq!(decide(&rs, "169.254.169.254:443"), Err("ip_literal"));
    }

    #[test]
    fn plain_http_upgrades_to_a_tls_rule() {
        let rs = set("  - host: bedrock.test\n    ports: [443]\n    credential: bedrock\n  - host: plain.test\n    ports: [80]\n    tls: false\n");
        let host = parse_host("bedrock.test").unwrap();
        let a = rs.decide_http(&host, None).unwrap();
        assert_eq!((a.port, a.rule.spec.tls), (443, true));
        let host = parse_host("plain.test").unwrap();
        let a = rs.decide_http(&host, None).unwrap();
        assert_eq!((a.port, a.rule.spec.tls), (80, false));
        assert_eq!(rs.decide_http(&host, Some(8080)).map_err(|d| d.reason.code()).err(), Some("port_not_allowed"));
    }
}
