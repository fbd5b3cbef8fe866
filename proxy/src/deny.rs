//! Refusals: every reason the proxy can refuse for, each with exactly one HTTP status.
//!
//! A [`Deny`] carries a [`Reason`] and a line for a human. The status is the reason's, never
//! chosen at the place that refuses, so the same mistake gets the same answer whichever entry
//! point (plain request, `CONNECT`, request inside an intercepted tunnel) it came through. The
//! table in `docs/proxy.md` ("Refusals") is checked against [`Reason::ALL`] by a test.

use std::fmt;

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal, $stage:literal), )*) => {
        /// Why a request, tunnel or connection was refused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason, in the order of the pipeline's stages.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),*];

            /// The stable code in logs, metrics and `x-semble-reason`.
            pub const fn code(self) -> &'static str {
                match self { $(Reason::$variant => $code,)* }
            }

            /// The HTTP status the client gets (or that is logged where none can be sent).
            pub const fn status(self) -> u16 {
                match self { $(Reason::$variant => $status,)* }
            }

            /// The stage of the pipeline that refuses for it.
            pub const fn stage(self) -> &'static str {
                match self { $(Reason::$variant => $stage,)* }
            }
        }
    };
}

reasons! {
    /// More connections than `--max-connections` are open.
    TooManyConnections = ("too_many_connections", 503, "connection"),
    /// This client (a source address, or a Unix listener) holds its `--max-client-connections`.
    ClientConnections = ("client_connections", 429, "connection"),
    /// The request head is larger than `--max-header-bytes` or has too many headers.
    HeaderTooLarge = ("header_too_large", 431, "connection"),
    /// The request head did not arrive within `--header-timeout`.
    HeaderTimeout = ("header_timeout", 408, "connection"),
    /// The request cannot be parsed (bare CR, LF in a name, conflicting lengths…).
    Malformed = ("malformed", 400, "connection"),
    /// Framing two parsers could read differently (request smuggling).
    Smuggling = ("smuggling", 400, "framing"),
    /// An origin-form request to the proxy itself.
    NotProxyRequest = ("not_proxy_request", 400, "target"),
    /// `https://` in absolute form.
    HttpsAbsolute = ("https_absolute", 400, "target"),
    /// A scheme other than `http://`.
    BadScheme = ("bad_scheme", 400, "target"),
    /// `user:password@` in the URI.
    Userinfo = ("userinfo", 400, "target"),
    /// A host or port that has more than one reading, or none.
    BadHost = ("bad_host", 400, "target"),
    /// The `Host` header disagrees with the request URI.
    HostMismatch = ("host_mismatch", 400, "target"),
    /// A request inside an intercepted tunnel names another host than the tunnel's.
    Misdirected = ("misdirected", 421, "target"),
    /// No rule allows the host.
    NoRule = ("no_rule", 403, "host rule"),
    /// A rule allows the host, on other ports.
    PortNotAllowed = ("port_not_allowed", 403, "host rule"),
    /// An IP address target no rule's `allowAddresses` covers.
    IpLiteral = ("ip_literal", 403, "host rule"),
    /// A `CONNECT` to a host whose requests must be seen, without an intercept CA.
    InterceptUnavailable = ("intercept_unavailable", 403, "host rule"),
    /// `TRACE`/`TRACK`, `CONNECT` inside a tunnel, or a non-standard method under a credential.
    MethodRefused = ("method_refused", 403, "method/path"),
    /// The method is not in the rule's `methods`.
    MethodNotAllowed = ("method_not_allowed", 403, "method/path"),
    /// A header, query or form field names another method than the request's.
    MethodOverride = ("method_override", 403, "method/path"),
    /// The path is not under the rule's `paths`.
    PathNotAllowed = ("path_not_allowed", 403, "method/path"),
    /// A path the upstream could read differently from the prefix check.
    PathNotCanonical = ("path_not_canonical", 400, "method/path"),
    /// The name resolves to a reserved address (loopback, private, metadata…).
    ReservedAddress = ("reserved_address", 403, "addresses"),
    /// The target is the proxy's own listener.
    ProxyLoop = ("proxy_loop", 403, "addresses"),
    /// The name does not resolve.
    DnsFailed = ("dns_failed", 502, "addresses"),
    /// An `x-amz-*` header the credential's service does not need signed (SigV4).
    AmzHeaderRefused = ("amz_header_refused", 403, "credential"),
    /// A query key (an S3 sub-resource such as `?acl`) the credential does not sign (SigV4).
    QueryRefused = ("query_refused", 403, "credential"),
    /// A body to be signed is larger than `--max-signed-body`.
    BodyTooLarge = ("body_too_large", 413, "credential"),
    /// This client's bodies read whole would pass `--max-client-buffered-bytes`.
    ClientBuffered = ("client_buffered", 429, "credential"),
    /// All clients' bodies read whole would pass `--max-buffered-bytes`.
    BufferedBytes = ("buffered_bytes", 503, "credential"),
    /// The request body could not be read.
    BodyFailed = ("body_failed", 400, "credential"),
    /// The credential cannot be produced now.
    CredentialUnavailable = ("credential_unavailable", 502, "credential"),
    /// The signer failed.
    SigningFailed = ("signing_failed", 502, "credential"),
    /// The TLS ClientHello of a tunnel names another server than `CONNECT` did.
    SniMismatch = ("sni_mismatch", 403, "upstream"),
    /// A tunnel's ClientHello carries Encrypted Client Hello (the real server name is hidden).
    EchRefused = ("ech_refused", 403, "upstream"),
    /// A TLS 1.2 tunnel tried to renegotiate (a ClientHello the proxy cannot read).
    TlsRenegotiation = ("tls_renegotiation", 403, "upstream"),
    /// A tunnel to a TLS rule did not start with a usable TLS ClientHello.
    NotTls = ("not_tls", 403, "upstream"),
    /// No ClientHello arrived within `--header-timeout`.
    NoClientHello = ("no_client_hello", 408, "upstream"),
    /// TLS with the client of an intercepted tunnel failed.
    ClientTls = ("client_tls", 403, "upstream"),
    /// A certificate for an intercepted host could not be issued.
    InterceptFailed = ("intercept_failed", 502, "upstream"),
    /// No connection to the upstream.
    ConnectFailed = ("connect_failed", 502, "upstream"),
    /// TLS with the upstream failed.
    UpstreamTls = ("upstream_tls", 502, "upstream"),
    /// TLS with the upstream did not complete in time.
    UpstreamTimeout = ("upstream_timeout", 504, "upstream"),
    /// The upstream failed the request.
    UpstreamFailed = ("upstream_failed", 502, "upstream"),
    /// `/rules` without the right bearer token.
    AdminUnauthorized = ("admin_unauthorized", 401, "admin"),
    /// `/rules` while no `--admin-token-file` is configured.
    AdminDisabled = ("admin_disabled", 403, "admin"),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refusal: the reason (which fixes the status) and one line for a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    /// Why.
    pub reason: Reason,
    /// What was refused and why, with how to fix it where it helps.
    pub detail: String,
}

impl Deny {
    /// Build a refusal.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Deny {
        Deny { reason, detail: detail.into() }
    }

    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        self.reason.status()
    }
}

impl fmt::Display for Deny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.detail, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n, "two reasons share a code");
    }

    /// `docs/proxy.md` has one table of refusals: every reason, its status and its stage, and
    /// nothing else.
    #[test]
    fn the_documented_table_is_the_code() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/proxy.md")).unwrap();
        let start = doc.find("<!-- refusals:begin -->").expect("docs/proxy.md lost its refusal table markers");
        let end = doc.find("<!-- refusals:end -->").unwrap();
        let mut documented = Vec::new();
        for line in doc[start..end].lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            documented.push((cells[1].trim_matches('`').to_string(), cells[2].to_string(), cells[3].to_string()));
        }
        let code: Vec<(String, String, String)> =
            Reason::ALL.iter().map(|r| (r.code().to_string(), r.status().to_string(), r.stage().to_string())).collect();
        assert_eq!(documented, code, "docs/proxy.md's refusal table differs from deny::Reason");
    }
}
