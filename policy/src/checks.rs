//! Checks of a valid policy that a linter reports: pure functions from the model to
//! [`Diagnostic`]s carrying the field path (`spec.network.egress[1].host`) and the fix. They
//! find what parses but is probably not what was meant; `semble-policy lint` turns each into a
//! finding with a rule ID, at the position of its path.
//!
//! | check | severity | what |
//! |---|---|---|
//! | [`egress_shadowing`] | warning | a `*.suffix` (or `*`) rule also matches a more specific rule's host on a shared port: the more specific rule decides, and the wide one never applies there |
//! | [`credential_on_wildcard`] | error | a credential on a `*.suffix` or `*` host: it is added to requests for every name below the suffix, including names someone else controls |
//!
//! Each takes the rules and the path of their list (`spec.network.egress` in a policy, `egress`
//! in a `ProxyRules` file); [`policy`] runs them all on a policy.

use crate::diag::{Diagnostic, Severity};
use crate::model::{EgressRule, HostPattern, SandboxPolicy};
use crate::read::index;

/// Every check of this module on a policy.
pub fn policy(p: &SandboxPolicy) -> Vec<Diagnostic> {
    let mut out = egress_shadowing(&p.network.egress, "spec.network.egress");
    out.extend(credential_on_wildcard(&p.network.egress, "spec.network.egress"));
    out
}

fn finding(severity: Severity, path: String, message: String, help: String) -> Diagnostic {
    Diagnostic { severity, pos: None, path, message, help: Some(help) }
}

fn describe(r: &EgressRule) -> String {
    let mut what = Vec::new();
    if let Some(c) = &r.credential {
        what.push(format!("credential `{c}`"));
    }
    if !r.methods.is_empty() {
        what.push(format!("methods {}", r.methods.join(",")));
    }
    if !r.paths.is_empty() {
        what.push(format!("paths {}", r.paths.join(",")));
    }
    if what.is_empty() {
        "no credential, methods or paths".into()
    } else {
        what.join(", ")
    }
}

/// A wider rule that overlaps a more specific one on a shared port. semble-proxy lets the most
/// specific pattern decide (so `api.example.com` with a credential and `methods: [GET]` is never
/// tunnelled blind by a `*.example.com` rule listed before it), but a reader of the file may
/// expect the first match, or the wide rule, to apply: the finding names both and what differs.
pub fn egress_shadowing(egress: &[EgressRule], list: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, wide) in egress.iter().enumerate() {
        for (j, narrow) in egress.iter().enumerate() {
            if i == j || wide.host.specificity() >= narrow.host.specificity() || !wide.host.overlaps(&narrow.host) {
                continue;
            }
            let shared: Vec<String> =
                narrow.ports.iter().filter(|p| wide.ports.contains(p)).map(u16::to_string).collect();
            if shared.is_empty() {
                continue;
            }
            out.push(finding(
                Severity::Warning,
                index(list, i),
                format!(
                    "`{}` ({}) also matches `{}` on port(s) {}, where the more specific `{}[{j}]` ({}) decides",
                    wide.host,
                    describe(wide),
                    narrow.host,
                    shared.join(", "),
                    list,
                    describe(narrow),
                ),
                format!(
                    "keep the overlap only if `{}` is meant to follow its own rule; otherwise narrow `{}` or remove one of them",
                    narrow.host, wide.host
                ),
            ));
        }
    }
    out
}

/// A credential on a wildcard host is added to requests for every name below the suffix. Under
/// shared suffixes those names are not all the credential owner's: `*.s3.amazonaws.com` covers
/// every bucket, `*.openai.azure.com` every customer's endpoint, so the workload can send the
/// credential (or a signature made with it) to a name it controls.
pub fn credential_on_wildcard(egress: &[EgressRule], list: &str) -> Vec<Diagnostic> {
    egress
        .iter()
        .enumerate()
        .filter(|(_, r)| r.credential.is_some() && !matches!(r.host, HostPattern::Exact(_)))
        .map(|(i, r)| {
            finding(
                Severity::Error,
                format!("{}.credential", index(list, i)),
                format!(
                    "credential `{}` is added to requests for every name matching `{}`, including names other people control",
                    r.credential.as_deref().unwrap_or_default(),
                    r.host
                ),
                "name the exact host the credential is for (e.g. `bedrock-runtime.us-east-1.amazonaws.com`), one rule per host".into(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rules(src: &str) -> Vec<EgressRule> {
        crate::parse_rules(&format!("kind: ProxyRules\negress:\n{src}")).unwrap().egress
    }

    #[test]
    fn a_wildcard_before_a_specific_rule_is_reported() {
        let e = rules("  - host: \"*.wild.test\"\n  - host: api.wild.test\n    credential: k\n    methods: [GET]\n");
        let f = egress_shadowing(&e, "egress");
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].path, "egress[0]");
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].message.contains("`*.wild.test` (no credential") && f[0].message.contains("`egress[1]`"), "{f:?}");
        assert!(f[0].message.contains("credential `k`, methods GET"), "{f:?}");
        // The order in the file does not matter.
        let e = rules("  - host: api.wild.test\n  - host: \"*.wild.test\"\n");
        assert_eq!(egress_shadowing(&e, "egress")[0].path, "egress[1]");
    }

    #[test]
    fn disjoint_or_other_port_rules_are_not_reported() {
        let e =
            rules("  - host: \"*.wild.test\"\n  - host: api.other.test\n  - host: api.wild.test\n    ports: [8443]\n");
        assert!(egress_shadowing(&e, "egress").is_empty());
        // A longer suffix inside a shorter one overlaps; `*` overlaps everything.
        let e = rules("  - host: \"*.a.test\"\n  - host: \"*.b.a.test\"\n  - host: \"*\"\n");
        let f = egress_shadowing(&e, "egress");
        let paths: Vec<&str> = f.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, vec!["egress[0]", "egress[2]", "egress[2]"]);
    }

    #[test]
    fn a_credential_on_a_wildcard_is_an_error() {
        let e = rules("  - host: \"*.amazonaws.com\"\n    credential: aws\n  - host: bedrock.us-east-1.amazonaws.com\n    credential: aws\n");
        let f = credential_on_wildcard(&e, "spec.network.egress");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "spec.network.egress[0].credential");
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("`*.amazonaws.com`"));
    }
}
