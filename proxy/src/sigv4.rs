//! AWS Signature Version 4, signed for the workload — and only for what the credential's
//! service needs.
//!
//! Re-signing makes the proxy a deputy: whatever it signs, AWS executes with the credential's
//! role. Signing every header and query key the workload sends let a `PUT /results/x` rule
//! carry `?acl`, `x-amz-copy-source` (copy any object the role can read), `x-amz-acl:
//! public-read` or `x-amz-grant-full-control`. So each credential has an allow-list
//! ([`Allow`]): the `x-amz-*` headers and the query keys (S3's sub-resources are query keys)
//! its service's ordinary calls use, from a per-service table ([`PROFILES`]) plus what the
//! credential's `signHeaders` and `queryKeys` add. A request with any other `x-amz-*` header
//! or query key is refused before its body is read (`amz_header_refused`, `query_refused`),
//! never silently stripped: dropping `x-amz-server-side-encryption` would store an object
//! unencrypted without anyone noticing. Query-string signing parameters (`X-Amz-Signature`,
//! …) are refused always. `x-amz-date`, `x-amz-security-token` and `x-amz-content-sha256`
//! are the signer's: the workload's are removed and the signer sets them.
//!
//! S3 wants its own canonicalisation (single URI encoding, no path normalisation) and the
//! `x-amz-content-sha256` header; [`sign`] takes these from the service's profile. The
//! signature itself is AWS's `aws-sigv4` crate; `proxy/tests/sigv4_vectors.rs` checks [`sign`]
//! against AWS's published SigV4 test suite.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    sign as aws_sign, PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
    SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use http::HeaderMap;

use crate::deny::{Deny, Reason};
use crate::host::printable;

/// Headers the signer owns: the workload's are removed and the signer sets its own.
pub const SIGNER_HEADERS: &[&str] = &["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"];

/// What one AWS service's ordinary calls need signed, beyond the signer's own headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The signing name (`s3`, `bedrock`), or `*` for every other service.
    pub service: &'static str,
    /// `x-amz-*` headers (lower case; a trailing `*` matches any rest).
    pub headers: &'static [&'static str],
    /// Query keys, exactly.
    pub query: &'static [&'static str],
    /// S3's canonicalisation: single URI encoding, no path normalisation, and the
    /// `x-amz-content-sha256` header.
    pub s3: bool,
}

/// The per-service allow-lists (`docs/proxy.md`, "SigV4: what is signed", is this table).
pub const PROFILES: &[Profile] = &[
    Profile {
        service: "s3",
        headers: &[
            "x-amz-checksum-*",
            "x-amz-expected-bucket-owner",
            "x-amz-meta-*",
            "x-amz-sdk-checksum-algorithm",
            "x-amz-server-side-encryption*",
            "x-amz-storage-class",
            "x-amz-user-agent",
        ],
        query: &[
            "continuation-token",
            "delimiter",
            "encoding-type",
            "fetch-owner",
            "list-type",
            "marker",
            "max-keys",
            "partNumber",
            "prefix",
            "response-cache-control",
            "response-content-disposition",
            "response-content-encoding",
            "response-content-language",
            "response-content-type",
            "response-expires",
            "start-after",
            "uploadId",
            "uploads",
            "x-id",
        ],
        s3: true,
    },
    Profile { service: "bedrock", headers: &["x-amz-user-agent"], query: &[], s3: false },
    Profile { service: "*", headers: &["x-amz-user-agent"], query: &[], s3: false },
];

/// The profile of `service` (the `*` one for services without their own).
pub fn profile(service: &str) -> &'static Profile {
    let s3_like = matches!(service, "s3" | "s3-object-lambda");
    PROFILES
        .iter()
        .find(|p| p.service == service || (s3_like && p.service == "s3"))
        .or_else(|| PROFILES.iter().find(|p| p.service == "*"))
        .unwrap_or(&PROFILES[0])
}

/// What one credential signs: its service's profile plus the credential's own additions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// `x-amz-*` header patterns (lower case; a trailing `*` matches any rest).
    pub headers: Vec<String>,
    /// Query keys.
    pub query: Vec<String>,
    /// S3 canonicalisation and `x-amz-content-sha256`.
    pub s3: bool,
}

impl Allow {
    /// The allow-list of `service`, with `headers` and `query` added.
    pub fn new(service: &str, headers: &[String], query: &[String]) -> Allow {
        let p = profile(service);
        let mut h: Vec<String> = p.headers.iter().map(|s| s.to_string()).collect();
        h.extend(headers.iter().map(|s| s.to_ascii_lowercase()));
        let mut q: Vec<String> = p.query.iter().map(|s| s.to_string()).collect();
        q.extend(query.iter().cloned());
        Allow { headers: h, query: q, s3: p.s3 }
    }

    fn header_allowed(&self, name: &str) -> bool {
        self.headers.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == p,
        })
    }

    /// Check a request before anything is read or signed: every `x-amz-*` header (but the
    /// signer's own) and every query key must be on the list.
    pub fn admits(&self, headers: &HeaderMap, query: Option<&str>, credential: &str) -> Result<(), Deny> {
        for name in headers.keys() {
            let n = name.as_str();
            if n.starts_with("x-amz-") && !SIGNER_HEADERS.contains(&n) && !self.header_allowed(n) {
                return Err(Deny::new(
                    Reason::AmzHeaderRefused,
                    format!(
                        "credential `{credential}` does not sign `{n}`: its service's calls do not need it; if this one does, add it to the credential's `signHeaders`"
                    ),
                ));
            }
        }
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let key = pair.split('=').next().unwrap_or("");
            let decoded = percent_decode(key);
            if decoded.to_ascii_lowercase().starts_with("x-amz-") {
                return Err(Deny::new(
                    Reason::QueryRefused,
                    format!(
                        "`{}` is a query-string signing parameter; the proxy signs requests itself",
                        printable(&decoded)
                    ),
                ));
            }
            if !self.query.contains(&decoded) {
                return Err(Deny::new(
                    Reason::QueryRefused,
                    format!(
                        "credential `{credential}` does not sign the query key `{}` (an S3 sub-resource such as `?acl` or `?tagging` changes what the call does); if this one is needed, add it to the credential's `queryKeys`",
                        printable(&decoded)
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a request is canonicalised and what the signer adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canon {
    /// Normalise the URI path (`/a/./b/../c` → `/a/c`); S3 does not.
    pub normalize_path: bool,
    /// Encode the path twice; S3 once.
    pub double_encode: bool,
    /// Add `x-amz-content-sha256` (S3).
    pub content_sha256: bool,
    /// Sign `x-amz-security-token` (all services but a few that want it added after).
    pub sign_session_token: bool,
}

impl Canon {
    /// S3's rules, or every other service's.
    pub fn for_service(s3: bool) -> Canon {
        Canon { normalize_path: !s3, double_encode: !s3, content_sha256: s3, sign_session_token: true }
    }
}

/// Keys to sign with.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    /// Access key id.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret: &'a str,
    /// Session token.
    pub token: Option<&'a str>,
    /// When they expire.
    pub expires: Option<SystemTime>,
}

/// A header the signer sets: name, value, and whether it is secret.
pub type SignedHeader = (String, String, bool);

/// Sign `method url` with `headers` and `body` for `service` in `region` at `time`; returns the
/// headers to set (`authorization`, `x-amz-date`, and `x-amz-security-token`,
/// `x-amz-content-sha256` where they apply). `url` is absolute (`https://host/path?query`).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    keys: Keys<'_>,
    region: &str,
    service: &str,
    time: SystemTime,
    canon: Canon,
) -> Result<Vec<SignedHeader>, String> {
    let signable = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
        .map_err(|e| e.to_string())?;
    let identity = aws_credential_types::Credentials::new(
        keys.access_key_id.to_string(),
        keys.secret.to_string(),
        keys.token.map(str::to_string),
        keys.expires,
        "semble-proxy",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.uri_path_normalization_mode = UriPathNormalizationMode::from(canon.normalize_path);
    settings.percent_encoding_mode =
        if canon.double_encode { PercentEncodingMode::Double } else { PercentEncodingMode::Single };
    if canon.content_sha256 {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    if !canon.sign_session_token {
        settings.session_token_mode = SessionTokenMode::Exclude;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let (instructions, _sig) = aws_sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
    let (out, _query) = instructions.into_parts();
    Ok(out.into_iter().map(|h| (h.name().to_string(), h.value().to_string(), h.sensitive())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(names: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for n in names {
            h.insert(http::header::HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_static("x"));
        }
        h
    }

    #[test]
    fn s3_signs_object_calls_and_nothing_that_changes_what_they_do() {
        let a = Allow::new("s3", &[], &[]);
        assert!(a
            .admits(&headers(&["x-amz-meta-run", "x-amz-server-side-encryption", "content-type"]), None, "s3")
            .is_ok());
        assert!(a.admits(&headers(&["x-amz-date", "x-amz-content-sha256"]), None, "s3").is_ok(), "the signer's own");
        assert!(a.admits(&HeaderMap::new(), Some("uploadId=1&partNumber=2"), "s3").is_ok());
        assert!(a.admits(&HeaderMap::new(), Some("list-type=2&prefix=results%2F"), "s3").is_ok());
        for h in [
            "x-amz-copy-source",
            "x-amz-acl",
            "x-amz-grant-full-control",
            "x-amz-tagging",
            "x-amz-website-redirect-location",
        ] {
            let e = a.admits(&headers(&[h]), None, "s3").unwrap_err();
            assert_eq!(e.reason, Reason::AmzHeaderRefused, "{h}");
            assert!(e.detail.contains(h) && e.detail.contains("signHeaders"), "{e:?}");
        }
        for q in ["acl", "tagging", "select&select-type=2", "policy", "delete", "x-id=PutObject&acl", "%61cl"] {
            assert_eq!(a.admits(&HeaderMap::new(), Some(q), "s3").unwrap_err().reason, Reason::QueryRefused, "{q}");
        }
        let e = a.admits(&HeaderMap::new(), Some("X-Amz-Signature=00"), "s3").unwrap_err();
        assert!(e.detail.contains("signing parameter"), "{e:?}");
    }

    #[test]
    fn a_credential_adds_to_its_service() {
        let a = Allow::new("bedrock", &["X-Amz-Target".into()], &["byProvider".into()]);
        assert!(a.admits(&headers(&["x-amz-target"]), Some("byProvider=anthropic"), "b").is_ok());
        assert!(a.admits(&headers(&["x-amz-acl"]), None, "b").is_err());
        assert!(!a.s3);
        assert!(Allow::new("s3-object-lambda", &[], &[]).s3);
        assert_eq!(profile("sts").service, "*");
    }

    #[test]
    fn s3_gets_its_content_hash() {
        let keys = Keys { access_key_id: "AKID", secret: "secret", token: None, expires: None };
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        let out = sign(
            "PUT",
            "https://b.s3.amazonaws.com/k",
            &[],
            b"hi",
            keys,
            "us-east-1",
            "s3",
            t,
            Canon::for_service(true),
        )
        .unwrap();
        let sha = out.iter().find(|h| h.0 == "x-amz-content-sha256").map(|h| h.1.clone());
        assert_eq!(sha.as_deref(), Some("8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"));
        let auth = out.iter().find(|h| h.0 == "authorization").unwrap();
        assert!(auth.1.contains("x-amz-content-sha256"), "{auth:?}");
        let out =
            sign("PUT", "https://x/", &[], b"hi", keys, "us-east-1", "bedrock", t, Canon::for_service(false)).unwrap();
        assert!(out.iter().all(|h| h.0 != "x-amz-content-sha256"));
    }
}
