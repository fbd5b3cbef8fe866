//! The proxy's SigV4 signer ([`semble_proxy::sigv4::sign`], what every signed request goes
//! through) against AWS's published test suite (`tests/fixtures/aws-sigv4-test-suite`): for
//! every vector, the headers it sets must be exactly those of `header-signed-request.txt`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use semble_proxy::sigv4::{sign, Canon, Keys};
use serde_json::Value;

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws-sigv4-test-suite")
}

struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// `request.txt`: a request line, `Name:value` lines (a line starting with a space continues the
/// previous value), a blank line, the body.
fn parse(text: &str) -> Req {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let first = lines.next().unwrap();
    let method = first.split(' ').next().unwrap().to_string();
    let path = first[method.len() + 1..first.rfind(" HTTP/").unwrap()].to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in lines {
        if l.starts_with(' ') || l.starts_with('\t') {
            let last = headers.last_mut().unwrap();
            last.1.push(' ');
            last.1.push_str(l.trim());
        } else if let Some((k, v)) = l.split_once(':') {
            headers.push((k.to_string(), v.to_string()));
        }
    }
    Req { method, path, headers, body: body.as_bytes().to_vec() }
}

/// The headers of `header-signed-request.txt` that the request did not have: what the signer set.
fn expected(dir: &Path, req: &Req) -> Vec<(String, String)> {
    let signed = parse(&std::fs::read_to_string(dir.join("header-signed-request.txt")).unwrap());
    let mut out: Vec<(String, String)> = signed
        .headers
        .into_iter()
        .filter(|(k, v)| !req.headers.iter().any(|(rk, rv)| rk.eq_ignore_ascii_case(k) && rv == v))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    out.sort();
    out
}

fn time(ctx: &Value) -> SystemTime {
    let t =
        time::OffsetDateTime::parse(ctx["timestamp"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap();
    SystemTime::from(t)
}

/// The path as a client puts it on the wire: a request line cannot carry a raw space or raw
/// UTF-8 (hyper refuses it before the proxy sees anything), so clients send them
/// percent-encoded, and that is what the proxy signs.
fn on_the_wire(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b == b' ' || !b.is_ascii() {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

#[test]
fn the_signer_reproduces_every_published_vector() {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(suite()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert!(dirs.len() >= 38, "the suite is incomplete: {} vectors", dirs.len());
    let mut checked = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let ctx: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("context.json")).unwrap()).unwrap();
        let req = parse(&std::fs::read_to_string(dir.join("request.txt")).unwrap());
        let host = req.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")).unwrap().1.clone();
        let url = format!("https://{host}{}", on_the_wire(&req.path));
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let c = &ctx["credentials"];
        let keys = Keys {
            access_key_id: c["access_key_id"].as_str().unwrap(),
            secret: c["secret_access_key"].as_str().unwrap(),
            token: c["token"].as_str(),
            expires: None,
        };
        let canon = Canon {
            normalize_path: ctx["normalize"].as_bool().unwrap(),
            // The suite's canonical requests encode paths once (`/example%20space/`, not
            // `%2520`), as its contexts carry no `double_uri_encode`.
            double_encode: false,
            content_sha256: ctx["sign_body"].as_bool().unwrap(),
            sign_session_token: !ctx["omit_session_token"].as_bool().unwrap_or(false),
        };
        let got = sign(
            &req.method,
            &url,
            &headers,
            &req.body,
            keys,
            ctx["region"].as_str().unwrap(),
            ctx["service"].as_str().unwrap(),
            time(&ctx),
            canon,
        );
        let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut got: Vec<(String, String)> = got.into_iter().map(|(k, v, _)| (k.to_ascii_lowercase(), v)).collect();
        got.sort();
        assert_eq!(got, expected(dir, &req), "{name}");
        let signature = std::fs::read_to_string(dir.join("header-signature.txt")).unwrap();
        let auth = &got.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(auth.ends_with(&format!("Signature={}", signature.trim())), "{name}: {auth}");
        checked += 1;
    }
    assert_eq!(checked, dirs.len());
}
