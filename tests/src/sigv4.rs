//! An independent AWS Signature Version 4 check, written from AWS's specification (the
//! "Create a signed AWS API request" guide), with `hmac` and `sha2` — not with `aws-sigv4`,
//! which is what the proxy signs with. The test upstream runs it on every request it gets.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters stay, everything else is `%XX`
/// (upper case); `/` stays when `keep_slash`.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a valid signature said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The access key id.
    pub access_key_id: String,
    /// Region.
    pub region: String,
    /// Service.
    pub service: String,
    /// The signed header names.
    pub signed_headers: Vec<String>,
}

/// How the path is canonicalised: S3 takes it as sent; every other service normalises it
/// (RFC 3986 dot segments, repeated slashes) and encodes it once more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    /// Remove `.`/`..` segments and repeated slashes.
    pub normalize: bool,
    /// Percent-encode the (already encoded) path again.
    pub double_encode: bool,
}

impl PathRules {
    /// What AWS does for `service`.
    pub fn for_service(service: &str) -> PathRules {
        let s3 = matches!(service, "s3" | "s3-object-lambda");
        PathRules { normalize: !s3, double_encode: !s3 }
    }
}

fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = format!("/{}", out.join("/"));
    if (path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..")) && p != "/" {
        p.push('/');
    }
    p
}

/// Verify the `Authorization` header of a request against `secret`. `path` and `query` are as
/// received (still percent-encoded); `headers` are (lower-case name, value) pairs in arrival
/// order; `host` is used when there is no `host` header (HTTP/2's `:authority`). The path is
/// canonicalised as the signed service wants ([`PathRules::for_service`]); S3 requests must
/// carry `x-amz-content-sha256`.
pub fn verify(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    host: Option<&str>,
    body: &[u8],
    secret: &str,
) -> Result<Signed, String> {
    verify_with(method, path, query, headers, host, body, secret, None)
}

/// [`verify`] with the path rules given instead of taken from the service.
#[allow(clippy::too_many_arguments)]
pub fn verify_with(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    host: Option<&str>,
    body: &[u8],
    secret: &str,
    rules: Option<PathRules>,
) -> Result<Signed, String> {
    let get =
        |name: &str| -> Vec<&str> { headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect() };
    let auth = get("authorization");
    let auth = match auth.as_slice() {
        [] => return Err("absent".into()),
        [one] => *one,
        _ => return Err("more than one Authorization header".into()),
    };
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or("not AWS4-HMAC-SHA256")?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or("malformed Authorization")?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => return Err(format!("unknown Authorization field {k}")),
        }
    }
    let credential = credential.ok_or("no Credential")?;
    let signed_headers = signed_headers.ok_or("no SignedHeaders")?;
    let signature = signature.ok_or("no Signature")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(format!("bad credential scope {credential}"));
    };
    let amz_date = get("x-amz-date");
    let amz_date = amz_date.first().ok_or("no x-amz-date")?;
    if !amz_date.starts_with(date) {
        return Err("x-amz-date does not match the credential date".into());
    }

    // Canonical request.
    let rules = rules.unwrap_or_else(|| PathRules::for_service(service));
    let path = if path.is_empty() { "/" } else { path };
    let path = if rules.normalize { normalize(path) } else { path.to_string() };
    let canonical_uri = if rules.double_encode { uri_encode(&path, true) } else { path };
    let mut pairs: Vec<(String, String)> = if query.is_empty() {
        Vec::new()
    } else {
        query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (uri_encode(&percent_decode(k), false), uri_encode(&percent_decode(v), false))
            })
            .collect()
    };
    pairs.sort();
    let canonical_query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") {
        return Err("host is not signed".into());
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let mut values = get(name);
        if *name == "host" && values.is_empty() {
            values = host.into_iter().collect();
        }
        if values.is_empty() {
            return Err(format!("signed header {name} is missing"));
        }
        let joined =
            values.iter().map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join(",");
        canonical_headers.push_str(&format!("{name}:{joined}\n"));
    }
    let payload_hash = hex(&Sha256::digest(body));
    match get("x-amz-content-sha256").first() {
        Some(claimed) if *claimed != payload_hash => {
            return Err("x-amz-content-sha256 does not match the body".into());
        }
        Some(_) if !names.contains(&"x-amz-content-sha256") => {
            return Err("x-amz-content-sha256 is not signed".into());
        }
        None if PathRules::for_service(service) == PathRules::for_service("s3") => {
            return Err("an S3 request without x-amz-content-sha256 (S3 refuses it)".into());
        }
        _ => {}
    }
    // Every x-amz-* header must be signed (S3 refuses unsigned ones; the proxy signs them all),
    // but the session token, which a few services take unsigned (the suite's
    // `post-sts-header-after`).
    if let Some((k, _)) = headers
        .iter()
        .find(|(k, _)| k.starts_with("x-amz-") && k != "x-amz-security-token" && !names.contains(&k.as_str()))
    {
        return Err(format!("{k} is not signed"));
    }
    let canonical_request =
        format!("{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())));
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let expected = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    if expected != signature {
        return Err("signature mismatch".into());
    }
    Ok(Signed {
        access_key_id: akid.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: names.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Every signed request of AWS's published suite (`proxy/tests/fixtures/aws-sigv4-test-suite`,
    /// header signing) verifies, with the path rules its context states; the same request with
    /// one byte of its body or one signed header changed does not.
    #[test]
    fn accepts_every_signed_request_of_the_aws_suite_and_nothing_altered() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proxy/tests/fixtures/aws-sigv4-test-suite");
        let mut dirs: Vec<_> =
            std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        assert!(dirs.len() >= 38);
        for dir in dirs {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let ctx: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("context.json")).unwrap()).unwrap();
            let secret = ctx["credentials"]["secret_access_key"].as_str().unwrap();
            let text = std::fs::read_to_string(dir.join("header-signed-request.txt")).unwrap();
            let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
            let mut lines = head.lines();
            let first = lines.next().unwrap();
            let method = first.split(' ').next().unwrap();
            let target = &first[method.len() + 1..first.rfind(" HTTP/").unwrap()];
            // On the wire a path carries no raw space or UTF-8.
            let target: String = target
                .bytes()
                .map(|b| if b == b' ' || !b.is_ascii() { format!("%{b:02X}") } else { (b as char).to_string() })
                .collect();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let mut headers: Vec<(String, String)> = Vec::new();
            for l in lines {
                if l.starts_with(' ') {
                    let last = headers.last_mut().unwrap();
                    last.1 = format!("{} {}", last.1, l.trim());
                } else if let Some((k, v)) = l.split_once(':') {
                    headers.push((k.to_ascii_lowercase(), v.to_string()));
                }
            }
            let rules = PathRules { normalize: ctx["normalize"].as_bool().unwrap(), double_encode: false };
            let ok = verify_with(method, path, query, &headers, None, body.as_bytes(), secret, Some(rules));
            assert!(ok.is_ok(), "{name}: {ok:?}");
            let mut other = body.as_bytes().to_vec();
            other.push(b'!');
            let signs_body = headers.iter().any(|(k, _)| k == "x-amz-content-sha256");
            if signs_body {
                let r = verify_with(method, path, query, &headers, None, &other, secret, Some(rules));
                assert!(r.is_err(), "{name}: a changed body verified");
            }
            let mut changed = headers.clone();
            let date = changed.iter_mut().find(|(k, _)| k == "x-amz-date").unwrap();
            date.1 = date.1.replace("123600", "123601");
            let r = verify_with(method, path, query, &changed, None, body.as_bytes(), secret, Some(rules));
            assert_eq!(r.unwrap_err(), "signature mismatch", "{name}");
        }
    }

    /// AWS's published example (IAM ListUsers, from the SigV4 documentation's test suite
    /// "get-vanilla"): the checker must accept a signature made by someone else.
    #[test]
    fn accepts_the_aws_test_suite_vanilla_get() {
        let headers = vec![
            ("host".to_string(), "example.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
            (
                "authorization".to_string(),
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".to_string(),
            ),
        ];
        let r = verify("GET", "/", "", &headers, None, b"", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        assert_eq!(r.map(|s| s.service), Ok("service".to_string()));
        let r = verify("GET", "/", "", &headers, None, b"", "wrong");
        assert_eq!(r.unwrap_err(), "signature mismatch");
    }
}
