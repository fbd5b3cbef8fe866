//! Stage 4, method and path: where the proxy sees HTTP (plain requests, and requests inside
//! an intercepted tunnel), the rule's `methods` and `paths` must admit the request.
//!
//! Paths are checked as written, never guessed at: segment-wise prefixes (`/v1` admits `/v1` and
//! `/v1/x`, not `/v10`), and a path the upstream could read differently from the check (`..`,
//! `.`, `//`, encoded `/`, `\\`, `%` or NUL) is refused.

use crate::deny::{Deny, Reason};
use crate::host::printable;
use crate::rules::Rule;

/// Check the method and path of a request the proxy sees in clear against its rule.
pub fn check(rule: &Rule, method: &str, path_and_query: &str) -> Result<(), Deny> {
    let spec = &rule.spec;
    if !spec.methods.is_empty() && !spec.methods.iter().any(|m| m == method) {
        return Err(Deny::new(
            Reason::MethodNotAllowed,
            format!("{} is not allowed to `{}` (allowed: {})", printable(method), spec.host, spec.methods.join(", ")),
        ));
    }
    if spec.paths.is_empty() {
        return Ok(());
    }
    let path = path_and_query.split(['?', '#']).next().unwrap_or("");
    if let Some(why) = non_canonical(path) {
        return Err(Deny::new(Reason::PathNotCanonical, format!("the path {why}; paths are checked as written")));
    }
    if spec.paths.iter().any(|p| prefix_matches(p, path)) {
        Ok(())
    } else {
        Err(Deny::new(
            Reason::PathNotAllowed,
            format!(
                "path `{}` is not allowed to `{}` (allowed: {})",
                printable(path),
                spec.host,
                spec.paths.join(", ")
            ),
        ))
    }
}

/// Segment-wise prefix: `/v1` matches `/v1` and `/v1/...`, not `/v10`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Why a path could mean something else to the upstream than to a prefix check.
fn non_canonical(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("does not start with `/`");
    }
    if path.contains('\\') {
        return Some("contains a backslash");
    }
    if path.contains("//") {
        return Some("contains an empty segment (`//`)");
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Some("contains `.` or `..` segments");
    }
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00", "%25"].iter().any(|e| lower.contains(e)) {
        return Some("percent-encodes `.`, `/`, `\\`, `%` or NUL");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSet;

    fn set(src: &str) -> RuleSet {
        let y = format!("apiVersion: semble.dev/v1alpha1\nkind: ProxyRules\nmetadata: {{name: t}}\negress:\n{src}");
        RuleSet::new(semble_policy::parse_rules(&y).unwrap(), "test")
    }

    #[test]
    fn methods_and_paths() {
        let rs = set("  - host: api.test\n    ports: [80]\n    tls: false\n    methods: [POST]\n    paths: [/v1/]\n");
        let r = &rs.rules[0];
        assert!(check(r, "POST", "/v1/chat?x=1").is_ok());
        assert_eq!(check(r, "GET", "/v1/chat").unwrap_err().reason, Reason::MethodNotAllowed);
        assert_eq!(check(r, "POST", "/v2").unwrap_err().reason, Reason::PathNotAllowed);
        for p in ["/v1/../admin", "/v1/%2e%2e/admin", "/v1//x", "/v1/a%2Fb", "/v1\\..\\x"] {
            assert_eq!(check(r, "POST", p).unwrap_err().status(), 400, "{p}");
        }
        assert!(prefix_matches("/v1", "/v1/x"));
        assert!(!prefix_matches("/v1", "/v10"));
    }
}
