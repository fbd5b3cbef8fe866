//! Stage 4, method and path: where the proxy sees HTTP (plain requests, and requests inside
//! an intercepted tunnel), the request's method and path must be what the rule admits — and
//! mean to the upstream what they mean to this check.
//!
//! * `TRACE` and `TRACK` are refused under every rule: an upstream that echoes the request
//!   would hand the workload the credential the proxy added. `CONNECT` inside an intercepted
//!   tunnel is refused (a tunnel inside a tunnel is never decided). Under a rule with a
//!   credential only the standard methods pass (`GET HEAD POST PUT PATCH DELETE OPTIONS`).
//! * `methods`: the request's method must be listed. Frameworks let a request *say* another
//!   method than it has (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`,
//!   `?_method=`, a `_method` form field); under a rule with `methods` or a credential those
//!   carriers are refused, so `POST` cannot become `DELETE` behind the check. A form body
//!   under a rule with `methods` is read (up to `--max-signed-body`) to look for the field.
//! * `paths`: segment-wise prefixes (`/v1` admits `/v1` and `/v1/x`, not `/v10`), checked as
//!   written: a path the upstream could read differently is refused rather than guessed at
//!   (`..`, `.`, `//`, `\`, `;` path parameters — `/v1/..;/admin` is `/admin` to Tomcat, Jetty
//!   and Spring — and percent-encoded `.`, `/`, `\`, `;`, `%` or NUL).

use http::HeaderMap;

use super::entry::Entry;
use crate::deny::{Deny, Reason};
use crate::host::printable;
use crate::rules::Rule;

/// The methods a credentialed rule admits (those `methods` may list).
pub const STANDARD_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Headers with which a request names another method than its own.
pub const OVERRIDE_HEADERS: &[&str] = &["x-http-method-override", "x-http-method", "x-method-override"];

/// The query and form field with which a request names another method than its own.
pub const OVERRIDE_FIELD: &str = "_method";

/// What the later stages must still look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inspect {
    /// The body is a form that could carry a `_method` field: read it and look.
    pub form_body: bool,
}

/// Check the method and path of a request the proxy sees in clear against its rule.
pub fn check(
    entry: Entry<'_>,
    rule: &Rule,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Result<Inspect, Deny> {
    let spec = &rule.spec;
    let credentialed = spec.credential.is_some();
    if matches!(method, "TRACE" | "TRACK") {
        return Err(Deny::new(
            Reason::MethodRefused,
            format!("{method} is refused: an upstream that echoes the request would return what the proxy added to it"),
        ));
    }
    if method == "CONNECT" && matches!(entry, Entry::Inside(_)) {
        return Err(Deny::new(Reason::MethodRefused, "CONNECT inside an intercepted tunnel is refused"));
    }
    if credentialed && !STANDARD_METHODS.contains(&method) {
        return Err(Deny::new(
            Reason::MethodRefused,
            format!(
                "{} is not a standard method, and `{}` carries a credential (allowed: {})",
                printable(method),
                spec.host,
                STANDARD_METHODS.join(", ")
            ),
        ));
    }
    if !spec.methods.is_empty() && !spec.methods.iter().any(|m| m == method) {
        return Err(Deny::new(
            Reason::MethodNotAllowed,
            format!("{} is not allowed to `{}` (allowed: {})", printable(method), spec.host, spec.methods.join(", ")),
        ));
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    };
    let guarded = credentialed || !spec.methods.is_empty();
    if guarded {
        if let Some(h) = OVERRIDE_HEADERS.iter().find(|h| headers.contains_key(**h)) {
            return Err(override_refused(&format!("the `{h}` header")));
        }
        if query_keys(query).any(|k| k.eq_ignore_ascii_case(OVERRIDE_FIELD)) {
            return Err(override_refused(&format!("`?{OVERRIDE_FIELD}=`")));
        }
    }
    if !spec.paths.is_empty() {
        if let Some(why) = non_canonical(path) {
            return Err(Deny::new(Reason::PathNotCanonical, format!("the path {why}; paths are checked as written")));
        }
        if !spec.paths.iter().any(|p| prefix_matches(p, path)) {
            return Err(Deny::new(
                Reason::PathNotAllowed,
                format!(
                    "path `{}` is not allowed to `{}` (allowed: {})",
                    printable(path),
                    spec.host,
                    spec.paths.join(", ")
                ),
            ));
        }
    }
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded") || v.starts_with("multipart/form-data"));
    Ok(Inspect { form_body: guarded && !spec.methods.is_empty() && form })
}

fn override_refused(carrier: &str) -> Deny {
    Deny::new(
        Reason::MethodOverride,
        format!("{carrier} would make the upstream see another method than the one checked; send the method itself"),
    )
}

/// The keys of a query string, percent-decoded.
fn query_keys(query: &str) -> impl Iterator<Item = String> + '_ {
    query.split(['&', ';']).filter(|kv| !kv.is_empty()).map(|kv| percent_decode(kv.split('=').next().unwrap_or("")))
}

/// `%XX` decoded (and `+` as a space, as forms write it); invalid escapes stay as written.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 3 <= b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a form body (`application/x-www-form-urlencoded` or `multipart/form-data`) carries
/// a `_method` field.
pub fn form_overrides_method(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    if query_keys(text.trim()).any(|k| k.trim().eq_ignore_ascii_case(OVERRIDE_FIELD)) {
        return true;
    }
    // multipart: `Content-Disposition: form-data; name="_method"` in a part's head.
    let lower = text.to_ascii_lowercase();
    ["name=\"_method\"", "name=_method", "name='_method'"].iter().any(|n| lower.contains(n))
}

/// The refusal of a form body that carries `_method`.
pub fn form_override_refused() -> Deny {
    override_refused(&format!("a `{OVERRIDE_FIELD}` form field"))
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
    if path.contains(';') {
        return Some("contains `;` (a path parameter: `/v1/..;/admin` is `/admin` to Tomcat, Jetty and Spring)");
    }
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%3b", "%00", "%25"].iter().any(|e| lower.contains(e)) {
        return Some("percent-encodes `.`, `/`, `\\`, `;`, `%` or NUL");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::parse_authority;
    use crate::rules::RuleSet;
    use http::HeaderValue;

    fn set(src: &str) -> RuleSet {
        let y = format!("apiVersion: semble.dev/v1alpha1\nkind: ProxyRules\nmetadata: {{name: t}}\negress:\n{src}");
        RuleSet::new(semble_policy::parse_rules(&y).unwrap(), "test")
    }

    fn plain(r: &Rule, method: &str, pq: &str) -> Result<Inspect, Deny> {
        check(Entry::Plain, r, method, pq, &HeaderMap::new())
    }

    #[test]
    fn methods_and_paths() {
        let rs = set("  - host: api.test\n    ports: [80]\n    tls: false\n    methods: [POST]\n    paths: [/v1/]\n");
        let r = &rs.rules[0];
        assert!(plain(r, "POST", "/v1/chat?x=1").is_ok());
        assert_eq!(plain(r, "GET", "/v1/chat").unwrap_err().reason, Reason::MethodNotAllowed);
        assert_eq!(plain(r, "POST", "/v2").unwrap_err().reason, Reason::PathNotAllowed);
        for p in [
            "/v1/../admin",
            "/v1/%2e%2e/admin",
            "/v1//x",
            "/v1/a%2Fb",
            "/v1\\..\\x",
            "/v1/..;/admin",
            "/v1/x;jsessionid=1",
            "/v1/..%3B/admin",
        ] {
            assert_eq!(plain(r, "POST", p).unwrap_err().reason, Reason::PathNotCanonical, "{p}");
        }
        assert!(prefix_matches("/v1", "/v1/x"));
        assert!(!prefix_matches("/v1", "/v10"));
    }

    #[test]
    fn trace_track_and_odd_methods() {
        let rs = set("  - host: open.test\n  - host: keyed.test\n    credential: k\n");
        let (open, keyed) = (&rs.rules[0], &rs.rules[1]);
        for m in ["TRACE", "TRACK"] {
            assert_eq!(plain(open, m, "/").unwrap_err().reason, Reason::MethodRefused, "{m}");
            assert_eq!(plain(keyed, m, "/").unwrap_err().reason, Reason::MethodRefused, "{m}");
        }
        assert_eq!(plain(keyed, "PROPFIND", "/").unwrap_err().reason, Reason::MethodRefused);
        assert!(plain(open, "PROPFIND", "/").is_ok(), "no credential, no methods: any method but TRACE/TRACK");
        assert!(plain(keyed, "PATCH", "/").is_ok());
        let t = parse_authority("keyed.test:443").unwrap();
        let e = check(Entry::Inside(&t), keyed, "CONNECT", "/", &HeaderMap::new()).unwrap_err();
        assert_eq!(e.reason, Reason::MethodRefused);
    }

    #[test]
    fn method_override_carriers() {
        let rs = set("  - host: api.test\n    methods: [GET, POST]\n  - host: open.test\n");
        let (guarded, open) = (&rs.rules[0], &rs.rules[1]);
        for h in OVERRIDE_HEADERS {
            let mut hm = HeaderMap::new();
            hm.insert(*h, HeaderValue::from_static("DELETE"));
            let e = check(Entry::Plain, guarded, "GET", "/", &hm).unwrap_err();
            assert_eq!(e.reason, Reason::MethodOverride, "{h}");
            assert!(check(Entry::Plain, open, "GET", "/", &hm).is_ok(), "{h}: a rule without methods checks none");
        }
        for q in ["/?_method=DELETE", "/x?a=1&_method=delete", "/?%5Fmethod=DELETE", "/?_METHOD=PUT"] {
            assert_eq!(plain(guarded, "GET", q).unwrap_err().reason, Reason::MethodOverride, "{q}");
        }
        assert!(plain(guarded, "GET", "/?method=x&my_method=y").is_ok());
        let mut form = HeaderMap::new();
        form.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        assert!(check(Entry::Plain, guarded, "POST", "/", &form).unwrap().form_body);
        assert!(!check(Entry::Plain, open, "POST", "/", &form).unwrap().form_body);
        assert!(form_overrides_method(b"a=1&_method=DELETE"));
        assert!(form_overrides_method(
            b"--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--"
        ));
        assert!(!form_overrides_method(b"a=1&b=_method"));
    }
}
