//! semble-proxy end to end: the real binary, real upstreams on loopback, inside a network
//! namespace made for each test with the metadata address and its IPv6 spellings as decoys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use semble_tests::proxylab::*;
use serde_json::Value;

const BEDROCK: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const INVOKE: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/invoke";
const LISTEN: &str = "127.0.0.1:3128";
const ADMIN: &str = "127.0.0.1:9901";
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

const RULES: &str = "\
apiVersion: semble.dev/v1alpha1
kind: ProxyRules
metadata: {name: lab}
egress:
  - host: bedrock-runtime.us-east-1.amazonaws.com
    ports: [443]
    credential: bedrock
  - host: keyed.test
    ports: [443]
    credential: apikey
    methods: [GET, POST]
    paths: [/v1/]
  - host: api.test
    ports: [443]
  - host: \"*.wild.test\"
    ports: [443]
  - host: api.wild.test
    ports: [443]
    credential: apikey
    methods: [GET]
  - host: echo.keyed.test
    ports: [443]
    credential: apikey
  - host: methods.test
    ports: [80]
    tls: false
    methods: [GET, POST]
    paths: [/v1/]
  - host: plain.test
    ports: [80]
    tls: false
  - host: \"*.bad.test\"
    ports: [80]
    tls: false
  - host: self.test
    ports: [3128]
    tls: false
  - host: rebind.test
    ports: [80]
    tls: false
    allowAddresses: [127.0.0.3/32]
";

/// The rules without the credentialed hosts, for labs that give the proxy no credentials.
fn rules_without_credentials() -> String {
    let (head, rules) = RULES.split_at(RULES.find("egress:\n").unwrap() + "egress:\n".len());
    let mut out = head.to_string();
    for block in rules.split("  - host:").filter(|b| !b.is_empty() && !b.contains("credential:")) {
        out.push_str("  - host:");
        out.push_str(block);
    }
    out
}

struct Std {
    lab: Lab,
    proxy: ProxyProc,
    https: Upstream,
    http: Upstream,
    intercept_ca: String,
    rules: std::path::PathBuf,
}

fn pins() -> Vec<String> {
    let mut v = Vec::new();
    for h in [BEDROCK, "keyed.test", "api.test", "x.wild.test", "evil.wild.test", "api.wild.test", "echo.keyed.test"] {
        v.push(format!("{h}:443:127.0.0.1"));
    }
    for (h, a) in [
        ("plain.test", "127.0.0.1"),
        ("methods.test", "127.0.0.1"),
        ("loopback.bad.test", "127.0.0.2"),
        ("private.bad.test", "10.1.2.3"),
        ("metadata.bad.test", "169.254.169.254"),
        ("mapped.bad.test", "[::ffff:169.254.169.254]"),
        ("nat64.bad.test", "[64:ff9b::a9fe:a9fe]"),
        ("6to4.bad.test", "[2002:a9fe:a9fe::]"),
        ("ec2v6.bad.test", "[fd00:ec2::254]"),
        ("mixed.bad.test", "127.0.0.1,169.254.169.254"),
        ("azure.bad.test", "168.63.129.16"),
    ] {
        v.push(format!("{h}:80:{a}"));
    }
    v.push("self.test:3128:127.0.0.1".into());
    v
}

fn start_std(extra: &[&str]) -> Std {
    let lab = Lab::new();
    lab.assert_recorders_work();
    let https = lab.https_upstream(
        "127.0.0.1:443",
        &[BEDROCK, "keyed.test", "api.test", "x.wild.test", "evil.wild.test", "api.wild.test", "echo.keyed.test"],
    );
    let http = lab.http_upstream("127.0.0.1:80");
    let rules = lab.write("rules.yaml", RULES);
    let key = lab.write("apikey", &format!("{API_KEY}\n"));
    let creds = lab.write(
        "credentials.yaml",
        &format!(
            "apiVersion: semble.dev/v1alpha1\nkind: ProxyCredentials\ncredentials:\n  bedrock:\n    awsSigV4: {{service: bedrock, from: environment}}\n  apikey:\n    header: {{name: x-api-key, fromFile: {}}}\n",
            key.display()
        ),
    );
    let token = lab.write("token", TOKEN);
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let ca_dir = lab.path("intercept-ca");
    let mut args: Vec<String> = vec![
        "--rules".into(),
        rules.display().to_string(),
        "--credentials".into(),
        creds.display().to_string(),
        "--listen".into(),
        LISTEN.into(),
        "--admin".into(),
        ADMIN.into(),
        "--admin-token-file".into(),
        token.display().to_string(),
        "--upstream-ca".into(),
        lab.ca.path.display().to_string(),
        "--allow-cidr".into(),
        "127.0.0.1/32".into(),
        "--intercept-ca-dir".into(),
        ca_dir.display().to_string(),
        "--header-timeout".into(),
        "1s".into(),
        // No DNS here but the tests' own: a name nobody pinned must not be looked up elsewhere.
        "--nameserver".into(),
        "127.0.0.1:1".into(),
    ];
    for p in pins() {
        args.push("--resolve".into());
        args.push(p);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let env = vec![("AWS_ACCESS_KEY_ID", AKID.to_string()), ("AWS_SECRET_ACCESS_KEY", SECRET.to_string())];
    let proxy = ProxyProc::start(&lab, &args, &env);
    let intercept_ca = std::fs::read_to_string(ca_dir.join("ca.crt")).unwrap();
    Std { lab, proxy, https, http, intercept_ca, rules }
}

fn assert_no_secrets(log: &str) {
    for s in [SECRET, API_KEY, SESSION_TOKEN] {
        assert!(!log.contains(s), "a secret reached the log:\n{log}");
    }
}

#[test]
fn plain_http_is_forwarded_and_every_request_is_decided() {
    let s = start_std(&[]);
    let r = get(s.proxy.addr, "http://plain.test/hello?q=1", &[("authorization", "Bearer workload-own")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["path"], "/hello?q=1");
    // No credential on this rule: the workload's own header goes through untouched.
    assert_eq!(j["headers"]["authorization"][0], "Bearer workload-own");
    assert_eq!(j["headers"]["host"][0], "plain.test");
    assert!(j["headers"].get("proxy-connection").is_none());
    let line = s.proxy.wait_line("for the allowed GET", |v| v["target"] == "plain.test:80" && v["decision"] == "allow");
    assert_eq!(line["rule"], "plain.test:80");
    assert_eq!(line["upstream"], "127.0.0.1:80");
    assert_eq!(line["path"], "/hello", "the query string is not logged");
    assert!(line["bytes_down"].as_u64().unwrap() > 0);
    s.lab.assert_decoys_untouched();
}

#[test]
fn plain_upstream_mode_opens_tls_and_signs_with_sigv4() {
    let s = start_std(&[]);
    let body = br#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":8,"messages":[]}"#;
    let r = request(
        s.proxy.addr,
        "POST",
        &format!("http://{BEDROCK}{INVOKE}"),
        &[
            ("content-type", "application/json"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIAWORKLOADFAKE/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00"),
            ("x-amz-security-token", "workload-token"),
            ("x-amz-date", "20200101T000000Z"),
        ],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["sigv4"]["valid"], true, "{j}");
    assert_eq!(j["sigv4"]["akid"], AKID);
    assert_eq!(j["sigv4"]["region"], "us-east-1");
    assert_eq!(j["sigv4"]["service"], "bedrock");
    assert_eq!(j["headers"]["authorization"].as_array().unwrap().len(), 1);
    assert!(j["headers"].get("x-amz-security-token").is_none(), "the workload's token was forwarded: {j}");
    assert_eq!(j["body"].as_str().unwrap().as_bytes(), body);
    assert_eq!(j["path"], INVOKE);
    // The upstream offered h2; the proxy took it.
    assert_eq!(j["version"], "HTTP/2.0");
    let line = s.proxy.wait_line("for the signed POST", |v| v["mode"] == "http" && v["credential"] == "bedrock");
    assert_eq!(line["target"], format!("{BEDROCK}:443"));
    assert_no_secrets(&s.proxy.log_text());
    s.lab.assert_decoys_untouched();
}

#[test]
fn connect_tunnels_tls_and_refuses_a_different_sni() {
    let s = start_std(&[]);
    let (tunnel, r) = connect(s.proxy.addr, "api.test:443");
    assert_eq!(r.status, 200);
    let mut t = tls(tunnel, "api.test", &[&s.lab.ca.pem]);
    let r = over(&mut t, "GET", "/through-the-tunnel", "api.test", &[("authorization", "Bearer mine")], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/through-the-tunnel");
    assert_eq!(r.json()["headers"]["authorization"][0], "Bearer mine");
    drop(t);
    s.proxy.wait_line("for the tunnel", |v| {
        v["mode"] == "connect" && v["decision"] == "allow" && v["target"] == "api.test:443"
    });

    // Domain fronting: a tunnel opened for api.test carrying TLS for another (also allowed) name.
    let before = s.https.requests.load(Ordering::SeqCst);
    let (tunnel, r) = connect(s.proxy.addr, "api.test:443");
    assert_eq!(r.status, 200);
    let client = tunnel.local_addr().unwrap().to_string();
    let mut t = tls(tunnel, "x.wild.test", &[&s.lab.ca.pem]);
    assert!(over(&mut t, "GET", "/", "x.wild.test", &[], b"").is_err(), "a fronted TLS session got through");
    let line =
        s.proxy.wait_line("for the SNI refusal", |v| v["client"] == client.as_str() && v["reason"] == "sni_mismatch");
    assert!(line["detail"].as_str().unwrap().contains("x.wild.test"), "{line}");
    assert_eq!(s.https.requests.load(Ordering::SeqCst), before, "the fronted request reached the upstream");
    s.lab.assert_decoys_untouched();
}

#[test]
fn intercept_mode_injects_credentials_and_checks_each_request() {
    let s = start_std(&[]);
    // SigV4 through intercepted TLS.
    let (tunnel, r) = connect(s.proxy.addr, &format!("{BEDROCK}:443"));
    assert_eq!(r.status, 200);
    let mut t = tls(tunnel, BEDROCK, &[&s.intercept_ca]);
    let r = over(
        &mut t,
        "POST",
        INVOKE,
        BEDROCK,
        &[("authorization", "AWS4-HMAC-SHA256 fake"), ("content-type", "application/json")],
        b"{}",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["sigv4"]["valid"], true, "{j}");
    assert_eq!(j["headers"]["authorization"].as_array().unwrap().len(), 1);
    // A second request on the same intercepted connection is decided again.
    let r = over(&mut t, "POST", INVOKE, BEDROCK, &[], b"{}").unwrap();
    assert_eq!(r.json()["sigv4"]["valid"], true);
    // The tunnel is for one host.
    let r = over(&mut t, "GET", "/", "api.test", &[], b"").unwrap();
    assert_eq!((r.status, r.reason()), (421, "misdirected"));
    drop(t);

    // A static header credential, with methods and paths.
    let (tunnel, _) = connect(s.proxy.addr, "keyed.test:443");
    let mut t = tls(tunnel, "keyed.test", &[&s.intercept_ca]);
    let r = over(
        &mut t,
        "GET",
        "/v1/models",
        "keyed.test",
        &[("x-api-key", "workload-fake"), ("authorization", "Bearer nope")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["headers"]["x-api-key"], serde_json::json!([API_KEY]));
    assert!(j["headers"].get("authorization").is_none(), "{j}");
    let r = over(&mut t, "GET", "/v2/models", "keyed.test", &[], b"").unwrap();
    assert_eq!((r.status, r.reason()), (403, "path_not_allowed"));
    let r = over(&mut t, "DELETE", "/v1/models/x", "keyed.test", &[], b"").unwrap();
    assert_eq!((r.status, r.reason()), (403, "method_not_allowed"));
    let r = over(&mut t, "GET", "/v1/../admin", "keyed.test", &[], b"").unwrap();
    assert_eq!((r.status, r.reason()), (400, "path_not_canonical"));
    drop(t);

    // A client that does not trust the intercept CA cannot be fooled into sending anything.
    let (tunnel, _) = connect(s.proxy.addr, "keyed.test:443");
    let mut t = tls(tunnel, "keyed.test", &[&s.lab.ca.pem]);
    assert!(over(&mut t, "GET", "/v1/models", "keyed.test", &[], b"").is_err());

    // The decision line is written when the request ends, which may be after the client read the answer.
    s.proxy.wait_line("an intercepted, credentialed allow", |v| {
        v["mode"] == "intercept" && v["credential"] == "apikey" && v["decision"] == "allow"
    });
    assert_no_secrets(&s.proxy.log_text());
    s.lab.assert_decoys_untouched();
}

#[test]
fn curl_works_through_every_mode() {
    let s = start_std(&[]);
    let curl = semble_tests::require_tool("curl", "curl");
    let ica = s.lab.write("intercept.pem", &s.intercept_ca);
    let run = |args: &[&str]| -> String {
        let out = std::process::Command::new(&curl)
            .args(["-sS", "--max-time", "10", "-x", &format!("http://{LISTEN}")])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let j: Value = serde_json::from_str(&run(&["http://plain.test/curl"])).unwrap();
    assert_eq!(j["path"], "/curl");
    let j: Value =
        serde_json::from_str(&run(&["--cacert", &s.lab.ca.path.display().to_string(), "https://api.test/tunnel"]))
            .unwrap();
    assert_eq!(j["path"], "/tunnel");
    let j: Value = serde_json::from_str(&run(&[
        "--cacert",
        &ica.display().to_string(),
        "-d",
        "{}",
        &format!("https://{BEDROCK}{INVOKE}"),
    ]))
    .unwrap();
    assert_eq!(j["sigv4"]["valid"], true, "{j}");
    let out = std::process::Command::new(&curl)
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", &format!("http://{LISTEN}"), "http://evil.test/"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403");
    s.lab.assert_decoys_untouched();
}

/// One attack: bytes on a fresh connection, the status expected, and the reason the log must
/// give for it.
struct Attack {
    name: &'static str,
    bytes: Vec<u8>,
    status: u16,
    reason: &'static str,
}

fn get_req(url: &str, host: &str) -> Vec<u8> {
    format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

fn connect_req(authority: &str) -> Vec<u8> {
    format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes()
}

fn attacks() -> Vec<Attack> {
    let a = |name, bytes, status, reason| Attack { name, bytes, status, reason };
    let mut big = b"GET http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 40 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    let mut many = b"GET http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\n".to_vec();
    for i in 0..150 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    vec![
        a("disallowed domain", get_req("http://evil.test/", "evil.test"), 403, "no_rule"),
        a("suffix trick: evil-amazonaws.com", get_req("http://evil-amazonaws.com/", "evil-amazonaws.com"), 403, "no_rule"),
        a("suffix trick: amazonaws.com.evil.net", get_req("http://amazonaws.com.evil.net/", "amazonaws.com.evil.net"), 403, "no_rule"),
        a("suffix trick: evil-wild.test vs *.wild.test", connect_req("evil-wild.test:443"), 403, "no_rule"),
        a("wildcard apex wild.test", connect_req("wild.test:443"), 403, "no_rule"),
        a("trailing dot", get_req("http://plain.test./", "plain.test."), 400, "bad_host"),
        a("upper case of a disallowed name", get_req("http://EVIL-AMAZONAWS.COM/", "EVIL-AMAZONAWS.COM"), 403, "no_rule"),
        a("IDN homograph, punycode", connect_req("xn--bedrock-runtme-z2j.us-east-1.amazonaws.com:443"), 403, "no_rule"),
        a("IDN homograph, raw UTF-8", connect_req("bedrock-runt\u{456}me.us-east-1.amazonaws.com:443"), 400, "malformed"),
        a("IPv4 literal", get_req("http://127.0.0.1/", "127.0.0.1"), 403, "ip_literal"),
        a("IPv6 literal", connect_req("[::1]:443"), 403, "ip_literal"),
        a("decimal IPv4", get_req("http://2852039166/", "2852039166"), 400, "bad_host"),
        a("octal IPv4", get_req("http://0251.0376.0251.0376/", "0251.0376.0251.0376"), 400, "bad_host"),
        a("hex IPv4", get_req("http://0xa9fea9fe/", "0xa9fea9fe"), 400, "bad_host"),
        a("metadata address", get_req("http://169.254.169.254/latest/meta-data/", "169.254.169.254"), 403, "ip_literal"),
        a("metadata, IPv4-mapped", get_req("http://[::ffff:169.254.169.254]/", "[::ffff:169.254.169.254]"), 403, "ip_literal"),
        a("metadata, NAT64", get_req("http://[64:ff9b::a9fe:a9fe]/", "[64:ff9b::a9fe:a9fe]"), 403, "ip_literal"),
        a("metadata, 6to4", get_req("http://[2002:a9fe:a9fe::]/", "[2002:a9fe:a9fe::]"), 403, "ip_literal"),
        a("name resolving to loopback", get_req("http://loopback.bad.test/", "loopback.bad.test"), 403, "reserved_address"),
        a("name resolving to a private address", get_req("http://private.bad.test/", "private.bad.test"), 403, "reserved_address"),
        a("name resolving to the metadata address", get_req("http://metadata.bad.test/", "metadata.bad.test"), 403, "reserved_address"),
        a("name resolving to IPv4-mapped metadata", get_req("http://mapped.bad.test/", "mapped.bad.test"), 403, "reserved_address"),
        a("name resolving to NAT64 metadata", get_req("http://nat64.bad.test/", "nat64.bad.test"), 403, "reserved_address"),
        a("name resolving to 6to4 metadata", get_req("http://6to4.bad.test/", "6to4.bad.test"), 403, "reserved_address"),
        a("name resolving to fd00:ec2::254", get_req("http://ec2v6.bad.test/", "ec2v6.bad.test"), 403, "reserved_address"),
        a("one good and one metadata address", get_req("http://mixed.bad.test/", "mixed.bad.test"), 403, "reserved_address"),
        a("name resolving to Azure's 168.63.129.16", get_req("http://azure.bad.test/", "azure.bad.test"), 403, "reserved_address"),

        a("Host header differs from the URI", get_req("http://plain.test/", "evil.test"), 400, "host_mismatch"),
        a("request to the proxy's own listener", get_req("http://self.test:3128/", "self.test:3128"), 403, "proxy_loop"),
        a("CONNECT to the proxy by address", connect_req("127.0.0.1:3128"), 403, "ip_literal"),
        a("CONNECT to a disallowed port", connect_req("api.test:22"), 403, "port_not_allowed"),
        a("CONNECT to a credentialed host, port 80", connect_req("bedrock-runtime.us-east-1.amazonaws.com:80"), 403, "port_not_allowed"),
        a(
            "smuggling: Content-Length with Transfer-Encoding",
            b"POST http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
            "smuggling",
        ),
        a(
            "smuggling: duplicate Content-Length",
            b"POST http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
            400,
            "smuggling",
        ),
        a(
            "smuggling: conflicting Content-Length",
            b"POST http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc".to_vec(),
            400,
            "malformed",
        ),
        a(
            "header injection: bare CR",
            b"GET http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nX-A: a\rInjected: 1\r\n\r\n".to_vec(),
            400,
            "malformed",
        ),
        a(
            "header injection: LF in a name",
            b"GET http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nX-A\nInjected: 1\r\n\r\n".to_vec(),
            400,
            "malformed",
        ),
        a("oversized headers", big, 431, "header_too_large"),
        a("too many headers", many, 431, "header_too_large"),
        a("https:// in absolute form", get_req("https://api.test/", "api.test"), 400, "https_absolute"),
        a("credentials in the URI", get_req("http://user:pw@plain.test/", "plain.test"), 400, "userinfo"),
        a("origin-form request to the proxy", get_req("/", "127.0.0.1:3128"), 400, "not_proxy_request"),
        a("CONNECT without a port", connect_req("api.test"), 400, "bad_host"),
    ]
}

#[test]
fn attacks_are_refused_with_the_right_status_and_a_log_line() {
    let s = start_std(&[]);
    let cases = attacks();
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    for case in &cases {
        let mut c = dial(s.proxy.addr);
        let client = c.local_addr().unwrap().to_string();
        c.write_all(&case.bytes).unwrap();
        let got = read_response(&mut c, true).map(|r| r.status).unwrap_or(0);
        if got != case.status {
            failures.push(format!("{}: status {got}, want {}", case.name, case.status));
            continue;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let lines = s.proxy.decisions();
            if lines
                .iter()
                .any(|v| v["client"] == client.as_str() && v["reason"] == case.reason && v["status"] == case.status)
            {
                break;
            }
            if std::time::Instant::now() > deadline {
                let mine: Vec<&Value> = lines.iter().filter(|v| v["client"] == client.as_str()).collect();
                failures.push(format!("{}: no log line with reason {} (got {mine:?})", case.name, case.reason));
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert!(failures.is_empty(), "{} of {} attacks misjudged:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_eq!(s.http.requests.load(Ordering::SeqCst), 0, "an attack reached the upstream");
    s.lab.assert_decoys_untouched();
}

#[test]
fn keep_alive_does_not_carry_a_decision_to_the_next_request() {
    let s = start_std(&[]);
    let mut c = dial(s.proxy.addr);
    c.write_all(b"GET http://plain.test/first HTTP/1.1\r\nHost: plain.test\r\n\r\n").unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 200);
    c.write_all(b"GET http://evil.test/second HTTP/1.1\r\nHost: evil.test\r\n\r\n").unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!((r.status, r.reason()), (403, "no_rule"));
    let client = c.local_addr().unwrap().to_string();
    s.proxy.wait_line("for the second request", |v| v["client"] == client.as_str() && v["target"] == "evil.test:80");
    s.lab.assert_decoys_untouched();
}

#[test]
fn tunnels_to_tls_rules_refuse_plaintext_and_slowloris_is_cut() {
    let s = start_std(&[]);
    let (mut t, r) = connect(s.proxy.addr, "api.test:443");
    assert_eq!(r.status, 200);
    let client = t.local_addr().unwrap().to_string();
    t.write_all(b"GET / HTTP/1.1\r\nHost: api.test\r\n\r\n").unwrap();
    let r = read_response(&mut t, false).unwrap();
    assert_eq!((r.status, r.reason()), (403, "not_tls"));
    s.proxy.wait_line("for plaintext in a TLS tunnel", |v| v["client"] == client.as_str() && v["reason"] == "not_tls");
    assert_eq!(s.https.requests.load(Ordering::SeqCst), 0);

    // Slowloris: half a request head, then nothing (the lab's --header-timeout is 1s).
    let mut c = dial(s.proxy.addr);
    let client = c.local_addr().unwrap().to_string();
    c.write_all(b"GET http://plain.test/ HTTP/1.1\r\nHost: pla").unwrap();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the connection should be closed, got {:?}", String::from_utf8_lossy(&buf[..n]));
    assert!(start.elapsed() < Duration::from_secs(4), "the slow client was held for {:?}", start.elapsed());
    s.proxy.wait_line("for the slow client", |v| v["client"] == client.as_str() && v["reason"] == "header_timeout");
    s.lab.assert_decoys_untouched();
}

#[test]
fn dns_rebinding_between_check_and_connect_cannot_redirect() {
    let lab = Lab::new();
    let good = lab.http_upstream("127.0.0.3:80");
    // Every other answer is the metadata address, with TTL 0.
    let flip = Arc::new(AtomicU32::new(0));
    let f = flip.clone();
    let (dns, queries) = dns_server(move |name, v6| {
        if name != "rebind.test" || v6 {
            return vec![];
        }
        let n = f.fetch_add(1, Ordering::SeqCst);
        vec![if n % 2 == 0 { "127.0.0.3".parse::<IpAddr>().unwrap() } else { "169.254.169.254".parse().unwrap() }]
    });
    let rules = lab.write("rules.yaml", &rules_without_credentials());
    let args: Vec<String> = vec!["--rules".into(), rules.display().to_string(), "--nameserver".into(), dns.to_string()];
    let proxy = ProxyProc::start(&lab, &args, &[]);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..12 {
        let r = get(proxy.addr, "http://rebind.test/", &[]);
        match (r.status, r.reason()) {
            (200, _) => ok += 1,
            (403, "reserved_address") => refused += 1,
            other => panic!("unexpected answer {other:?}: {}", r.text()),
        }
    }
    assert!(queries.load(Ordering::SeqCst) >= 12, "the proxy cached an answer with TTL 0");
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
    assert_eq!(good.requests.load(Ordering::SeqCst), ok);
    lab.assert_decoys_untouched();
}

fn admin(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> Resp {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\n{auth}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(addr, req.as_bytes()).unwrap()
}

#[test]
fn admin_api_swaps_rules_atomically_and_keeps_good_rules() {
    let s = start_std(&[]);
    let a: SocketAddr = ADMIN.parse().unwrap();
    assert_eq!(admin(a, "GET", "/healthz", None, "").status, 200);
    assert_eq!(admin(a, "GET", "/readyz", None, "").status, 200);
    // /rules without the token, or with a wrong one.
    let r = admin(a, "GET", "/rules", None, "");
    assert_eq!(r.status, 401);
    assert_eq!(admin(a, "PUT", "/rules", Some("wrong-token-wrong-token"), RULES).status, 401);
    s.proxy.wait_line("for the refused admin call", |v| v["mode"] == "admin" && v["reason"] == "admin_unauthorized");
    let r = admin(a, "GET", "/rules", Some(TOKEN), "");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["egress"].as_array().unwrap().len(), 11);

    // Invalid rules: refused with every problem, old rules stay.
    let bad = "kind: ProxyRules\negress:\n  - host: 10.0.0.1\n  - host: ok.test\n    ports: [0]\n    credentail: x\n";
    let r = admin(a, "PUT", "/rules", Some(TOKEN), bad);
    assert_eq!(r.status, 400);
    let t = r.text();
    assert!(t.contains("PUT /rules:3:") && t.contains("allowAddresses"), "{t}");
    assert!(t.contains("credentail") && t.contains("credential"), "{t}");
    assert!(t.contains("previous rules stay"), "{t}");
    // A rule naming an undefined credential is refused too.
    let undefined = "kind: ProxyRules\negress:\n  - host: new.test\n    credential: nosuch\n";
    assert_eq!(admin(a, "PUT", "/rules", Some(TOKEN), undefined).status, 400);
    assert_eq!(get(s.proxy.addr, "http://plain.test/", &[]).status, 200, "the old rules must still hold");

    // A good update takes effect for the next request.
    let new = "kind: ProxyRules\nmetadata: {name: v2}\negress:\n  - host: plain.test\n    ports: [80]\n    tls: false\n    methods: [POST]\n";
    assert_eq!(admin(a, "PUT", "/rules", Some(TOKEN), new).status, 200);
    let r = get(s.proxy.addr, "http://plain.test/", &[]);
    assert_eq!((r.status, r.reason()), (403, "method_not_allowed"));
    assert_eq!(request(s.proxy.addr, "POST", "http://plain.test/", &[], b"x").status, 200);

    // SIGHUP reloads the file (back to the original rules); a broken file changes nothing.
    s.proxy.signal(nix::sys::signal::Signal::SIGHUP);
    s.proxy.wait_line("for the reload", |v| v["event"] == "rules_applied" && v["source"] == "SIGHUP");
    assert_eq!(get(s.proxy.addr, "http://plain.test/", &[]).status, 200);
    std::fs::write(&s.rules, "kind: ProxyRules\negress: [{host: \"*.\"}]\n").unwrap();
    s.proxy.signal(nix::sys::signal::Signal::SIGHUP);
    let rejected =
        s.proxy.wait_line("for the rejected reload", |v| v["event"] == "rules_rejected" && v["source"] == "SIGHUP");
    assert!(rejected["errors"].as_str().unwrap().contains("rules.yaml:2:"), "{rejected}");
    assert_eq!(get(s.proxy.addr, "http://plain.test/", &[]).status, 200);

    // Metrics name decisions by rule and reason, never by what the client asked for.
    let m = admin(a, "GET", "/metrics", None, "").text();
    assert!(m.contains("semble_proxy_requests_total{decision=\"allow\",rule=\"plain.test:80\",reason=\"ok\"}"), "{m}");
    assert!(m.contains("reason=\"method_not_allowed\""), "{m}");
    assert!(m.contains("semble_proxy_rule_reload_failures_total 3"), "{m}");
    assert!(m.contains("semble_proxy_upstream_latency_seconds_bucket"), "{m}");
    assert!(m.contains("semble_proxy_active_tunnels"), "{m}");
    s.lab.assert_decoys_untouched();
}

#[test]
fn credentials_from_the_aws_container_endpoint() {
    let lab = Lab::new();
    let _https = lab.https_upstream("127.0.0.1:443", &[BEDROCK]);
    let (ep, hits) = credential_endpoint("pod-identity-token");
    let token_file = lab.write("eks-token", "wrong-token\n");
    let rules =
        lab.write("rules.yaml", &format!("kind: ProxyRules\negress:\n  - host: {BEDROCK}\n    credential: bedrock\n"));
    let creds = lab.write(
        "creds.yaml",
        "kind: ProxyCredentials\ncredentials:\n  bedrock:\n    awsSigV4: {service: bedrock, region: us-east-1, from: containerEndpoint}\n",
    );
    let args: Vec<String> = [
        "--rules",
        &rules.display().to_string(),
        "--credentials",
        &creds.display().to_string(),
        "--resolve",
        &format!("{BEDROCK}:443:127.0.0.1"),
        "--allow-cidr",
        "127.0.0.1/32",
        "--upstream-ca",
        &lab.ca.path.display().to_string(),
        "--admin",
        ADMIN,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = vec![
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", format!("http://{ep}/creds")),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file.display().to_string()),
    ];
    let proxy = ProxyProc::start(&lab, &args, &env);
    let a: SocketAddr = ADMIN.parse().unwrap();
    // The endpoint refuses the token: not ready, and requests fail closed.
    let r = admin(a, "GET", "/readyz", None, "");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("401"), "{}", r.text());
    let r = request(proxy.addr, "POST", &format!("http://{BEDROCK}{INVOKE}"), &[], b"{}");
    assert_eq!((r.status, r.reason()), (502, "credential_unavailable"));
    // The token is rotated in its file: the next fetch works.
    std::fs::write(&token_file, "pod-identity-token\n").unwrap();
    assert_eq!(admin(a, "GET", "/readyz", None, "").status, 200);
    let r = request(proxy.addr, "POST", &format!("http://{BEDROCK}{INVOKE}"), &[], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["sigv4"]["valid"], true, "{j}");
    assert!(j["sigv4"]["signed"].as_array().unwrap().iter().any(|h| h == "x-amz-security-token"), "{j}");
    assert_eq!(j["headers"]["x-amz-security-token"][0], SESSION_TOKEN);
    // Cached until near expiry: one more request, no new fetch.
    let before = hits.load(Ordering::SeqCst);
    request(proxy.addr, "POST", &format!("http://{BEDROCK}{INVOKE}"), &[], b"{}");
    assert_eq!(hits.load(Ordering::SeqCst), before);
    assert_no_secrets(&proxy.log_text());
    lab.assert_decoys_untouched();
}

#[test]
fn unix_socket_listener_and_connection_limit() {
    let lab = Lab::new();
    let _http = lab.http_upstream("127.0.0.1:80");
    let rules = lab.write("rules.yaml", &rules_without_credentials());
    let sock = lab.path("proxy.sock");
    let args: Vec<String> = [
        "--rules",
        &rules.display().to_string(),
        "--listen",
        &format!("unix:{}", sock.display()),
        "--listen",
        LISTEN,
        "--resolve",
        "plain.test:80:127.0.0.1",
        "--allow-cidr",
        "127.0.0.1/32",
        "--max-connections",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let _proxy = ProxyProc::start(&lab, &args, &[]);
    let mut u = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    u.write_all(b"GET http://plain.test/unix HTTP/1.1\r\nHost: plain.test\r\n\r\n").unwrap();
    let r = read_response(&mut u, false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/unix");
    // Two connections open (the Unix one and this), the third is turned away.
    let _held = dial(LISTEN.parse().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    let r = raw(LISTEN.parse().unwrap(), b"GET http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\n\r\n").unwrap();
    assert_eq!(r.status, 503);
    lab.assert_decoys_untouched();
}

#[test]
fn bad_configuration_is_one_clear_error() {
    let lab = Lab::new();
    let proxy = semble_tests::bin("semble-proxy");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(&proxy).args(args).envs(env.iter().copied()).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let bad = lab.write("bad.yaml", "kind: ProxyRules\negress:\n  - host: api.test\n    prots: [443]\n");
    let (code, err, _) = run(&["--rules", &bad.display().to_string()], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("bad.yaml:4:5") && err.contains("did you mean `ports`"), "{err}");
    let rules =
        lab.write("r.yaml", &format!("kind: ProxyRules\negress:\n  - host: {BEDROCK}\n    credential: bedrock\n"));
    let (code, err, _) = run(&["--rules", &rules.display().to_string()], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("credential `bedrock`") && err.contains("--credentials"), "{err}");
    let creds =
        lab.write("c.yaml", "kind: ProxyCredentials\ncredentials:\n  bedrock:\n    awsSigV4: {service: bedrock}\n");
    let (code, err, _) =
        run(&["--rules", &rules.display().to_string(), "--credentials", &creds.display().to_string()], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("AWS_ACCESS_KEY_ID is not set"), "{err}");
    let (code, _, out) = run(
        &["--rules", &rules.display().to_string(), "--credentials", &creds.display().to_string(), "--check"],
        &[("AWS_ACCESS_KEY_ID", AKID), ("AWS_SECRET_ACCESS_KEY", SECRET)],
    );
    assert_eq!(code, Some(0));
    assert!(
        out.contains("allow bedrock-runtime.us-east-1.amazonaws.com:443 (tls, credential bedrock)")
            && out.contains("credential bedrock: available"),
        "{out}"
    );
    assert!(!out.contains(SECRET));
    let token = lab.write("token", TOKEN);
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let plain = lab.write("p.yaml", "kind: ProxyRules\negress:\n  - host: api.test\n");
    let (code, err, _) =
        run(&["--rules", &plain.display().to_string(), "--admin-token-file", &token.display().to_string()], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("chmod 600"), "{err}");
    let (code, err, _) = run(&["--rules", &plain.display().to_string(), "--listen", "localhost:80"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a listen address"), "{err}");
    // The admin API never listens beyond loopback.
    let (code, err, _) = run(&["--rules", &plain.display().to_string(), "--admin", ":9901"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("every address") && err.contains("127.0.0.1:9901"), "{err}");
    // An intercept CA key others can read is refused, in one line.
    let ca = lab.path("ca");
    let (code, err, _) = run(
        &["--rules", &plain.display().to_string(), "--intercept-ca-dir", &ca.display().to_string(), "--check"],
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    std::fs::set_permissions(ca.join("ca.key"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (code, err, _) = run(
        &["--rules", &plain.display().to_string(), "--intercept-ca-dir", &ca.display().to_string(), "--check"],
        &[],
    );
    assert_eq!(code, Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
}

/// A deterministic byte stream (xorshift), so what arrives can be checked byte for byte.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

#[test]
fn tunnels_relay_bulk_data_byte_exact_both_ways_with_half_close() {
    let lab = Lab::new();
    // An echo upstream: everything back, then close its sending side when the client has.
    let listener = std::net::TcpListener::bind("127.0.0.5:7000").unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut back = s.try_clone().unwrap();
                let _ = std::io::copy(&mut s, &mut back);
                let _ = back.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    let rules =
        lab.write("rules.yaml", "kind: ProxyRules\negress:\n  - {host: echo.test, ports: [7000], tls: false}\n");
    let args: Vec<String> = [
        "--rules",
        &rules.display().to_string(),
        "--resolve",
        "echo.test:7000:127.0.0.5",
        "--allow-cidr",
        "127.0.0.5/32",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let proxy = ProxyProc::start(&lab, &args, &[]);
    // Several tunnels at once, so bursts share the pipe pool; sizes straddle the pipe size.
    let sizes = [1, 4096, (1 << 20) - 1, (1 << 20) + 1, 48 << 20];
    let runs: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let addr = proxy.addr;
            std::thread::spawn(move || {
                let (s, r) = connect(addr, "echo.test:7000");
                assert_eq!(r.status, 200, "{}", r.text());
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let data = pattern(n, i as u64 + 1);
                let mut w = s.try_clone().unwrap();
                let sent = data.clone();
                let writer = std::thread::spawn(move || {
                    w.write_all(&sent).unwrap();
                    w.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut got = Vec::with_capacity(n);
                let mut s = s;
                s.read_to_end(&mut got).unwrap();
                writer.join().unwrap();
                assert_eq!(got.len(), n, "tunnel {i}: {} of {n} bytes came back", got.len());
                assert!(got == data, "tunnel {i}: the bytes that came back differ from those sent");
            })
        })
        .collect();
    for r in runs {
        r.join().unwrap();
    }
    for &n in &sizes {
        proxy.wait_line(&format!("the {n}-byte tunnel"), |v| {
            v["mode"] == "connect" && v["bytes_up"] == n as u64 && v["bytes_down"] == n as u64
        });
    }
    lab.assert_decoys_untouched();
}

/// Issue 23, item 2: the rule gaps. Each attack is mounted against an echoing upstream (which
/// returns the request it got, injected credential included), and each is shown refused
/// before reaching it; the legitimate request beside each still works.
#[test]
fn rule_gaps_trace_odd_methods_path_parameters_and_method_overrides_are_refused() {
    let s = start_std(&[]);
    let upstream_saw = || s.https.requests.load(Ordering::SeqCst) + s.http.requests.load(Ordering::SeqCst);

    // The credentialed echo host works for GET, and the key is the proxy's.
    let r = get(s.proxy.addr, "http://echo.keyed.test/hello", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["x-api-key"][0], API_KEY);
    let before = upstream_saw();
    // TRACE/TRACK would echo the key back: refused under every rule, plain and intercepted.
    for m in ["TRACE", "TRACK"] {
        let r = request(s.proxy.addr, m, "http://echo.keyed.test/", &[], b"");
        assert_eq!((r.status, r.reason()), (403, "method_refused"), "{m}");
        assert!(!r.text().contains(API_KEY));
        let r = request(s.proxy.addr, m, "http://plain.test/", &[], b"");
        assert_eq!((r.status, r.reason()), (403, "method_refused"), "{m} to a rule without a credential");
    }
    // A non-standard method under a credential.
    let r = request(s.proxy.addr, "PROPFIND", "http://echo.keyed.test/", &[], b"");
    assert_eq!((r.status, r.reason()), (403, "method_refused"));
    assert_eq!(upstream_saw(), before, "a refused method reached the upstream");
    // ... while a rule without credential or methods passes it.
    assert_eq!(request(s.proxy.addr, "PROPFIND", "http://plain.test/dav", &[], b"").status, 200);

    // Inside intercepted TLS: TRACE and CONNECT refused, GET fine.
    let (tunnel, r) = connect(s.proxy.addr, "echo.keyed.test:443");
    assert_eq!(r.status, 200);
    let mut t = tls(tunnel, "echo.keyed.test", &[&s.intercept_ca]);
    let before = upstream_saw();
    let r = over(&mut t, "TRACE", "/", "echo.keyed.test", &[], b"").unwrap();
    assert_eq!((r.status, r.reason()), (403, "method_refused"));
    // A tunnel inside the tunnel: to another host it is misdirected, to the same one refused.
    let r = over(&mut t, "CONNECT", "evil.test:443", "echo.keyed.test", &[], b"").unwrap();
    assert_eq!((r.status, r.reason()), (421, "misdirected"));
    let (tunnel, _) = connect(s.proxy.addr, "echo.keyed.test:443");
    let mut t = tls(tunnel, "echo.keyed.test", &[&s.intercept_ca]);
    let r = over(&mut t, "CONNECT", "echo.keyed.test:443", "echo.keyed.test:443", &[], b"").unwrap();
    assert_eq!((r.status, r.reason()), (403, "method_refused"));
    let (tunnel, _) = connect(s.proxy.addr, "echo.keyed.test:443");
    let mut t = tls(tunnel, "echo.keyed.test", &[&s.intercept_ca]);
    assert_eq!(upstream_saw(), before);
    let r = over(&mut t, "GET", "/ok", "echo.keyed.test", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    drop(t);

    // `;` path parameters: `/v1/..;/admin` is `/admin` to Tomcat, Jetty and Spring.
    let before = upstream_saw();
    for p in ["/v1/..;/admin", "/v1/x;jsessionid=0/..;/admin", "/v1/..%3B/admin"] {
        let r = get(s.proxy.addr, &format!("http://methods.test{p}"), &[]);
        assert_eq!((r.status, r.reason()), (400, "path_not_canonical"), "{p}");
    }
    // Method-override carriers under `methods: [GET, POST]`.
    for h in ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"] {
        let r = get(s.proxy.addr, "http://methods.test/v1/items/1", &[(h, "DELETE")]);
        assert_eq!((r.status, r.reason()), (403, "method_override"), "{h}");
    }
    let r = get(s.proxy.addr, "http://methods.test/v1/items/1?_method=DELETE", &[]);
    assert_eq!((r.status, r.reason()), (403, "method_override"));
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = request(s.proxy.addr, "POST", "http://methods.test/v1/items/1", &form, b"name=x&_method=DELETE");
    assert_eq!((r.status, r.reason()), (403, "method_override"));
    assert_eq!(upstream_saw(), before, "a refused request reached the upstream");
    // The legitimate requests.
    let r = get(s.proxy.addr, "http://methods.test/v1/items/1", &[]);
    assert_eq!(r.status, 200);
    let r = request(s.proxy.addr, "POST", "http://methods.test/v1/items", &form, b"name=x&method=kept");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["body"], "name=x&method=kept", "the form body must arrive intact");
    s.lab.assert_decoys_untouched();
}

/// Issue 23, item 3: `*.wild.test` (a plain tunnel) is listed before `api.wild.test` (a
/// credential and `methods: [GET]`). The most specific rule decides: api.wild.test is
/// intercepted, its DELETE refused, its GET credentialed; other names below wild.test still
/// tunnel blind.
#[test]
fn the_most_specific_rule_decides_whatever_the_order() {
    let s = start_std(&[]);
    let (tunnel, r) = connect(s.proxy.addr, "api.wild.test:443");
    assert_eq!(r.status, 200);
    // The proxy answers TLS with its intercept CA: a client trusting only the upstream's CA fails.
    let mut t = tls(tunnel, "api.wild.test", &[&s.intercept_ca]);
    let before = s.https.requests.load(Ordering::SeqCst);
    let r = over(&mut t, "DELETE", "/v1/everything", "api.wild.test", &[], b"").unwrap();
    assert_eq!((r.status, r.reason()), (403, "method_not_allowed"));
    assert_eq!(s.https.requests.load(Ordering::SeqCst), before, "the DELETE went through");
    let r = over(&mut t, "GET", "/v1/models", "api.wild.test", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["x-api-key"][0], API_KEY);
    drop(t);
    s.proxy.wait_line("for the decision under the specific rule", |v| {
        v["mode"] == "intercept" && v["rule"] == "api.wild.test:443" && v["reason"] == "method_not_allowed"
    });
    // A name only the wildcard matches is still a blind tunnel (the upstream's own certificate).
    let (tunnel, r) = connect(s.proxy.addr, "x.wild.test:443");
    assert_eq!(r.status, 200);
    let mut t = tls(tunnel, "x.wild.test", &[&s.lab.ca.pem]);
    let r = over(&mut t, "DELETE", "/anything", "x.wild.test", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    s.lab.assert_decoys_untouched();
}

const S3: &str = "results.s3.us-east-1.amazonaws.com";

/// Issue 23, item 1: SigV4 as a confused deputy. Under a `PUT,POST /results/` rule the
/// workload asks the proxy to sign a copy of another object, an ACL change, a grant and S3
/// sub-resources; each is refused before the body is read and nothing reaches the upstream.
/// The legitimate S3 PUT (with its `x-amz-content-sha256`, S3's path encoding and user
/// metadata) and a Bedrock-style call are signed correctly, as the upstream's independent
/// verifier checks.
#[test]
fn sigv4_signs_only_what_the_credentials_service_needs() {
    let lab = Lab::new();
    let https = lab.https_upstream("127.0.0.1:443", &[S3, BEDROCK]);
    let rules = lab.write(
        "rules.yaml",
        &format!(
            "kind: ProxyRules\negress:\n  - host: {S3}\n    credential: s3\n    methods: [PUT, POST]\n    paths: [/results/]\n  - host: {BEDROCK}\n    credential: bedrock\n"
        ),
    );
    let creds = lab.write(
        "creds.yaml",
        "kind: ProxyCredentials\ncredentials:\n  s3:\n    awsSigV4: {service: s3, from: environment}\n  bedrock:\n    awsSigV4: {service: bedrock, from: environment}\n",
    );
    let args: Vec<String> = [
        "--rules",
        &rules.display().to_string(),
        "--credentials",
        &creds.display().to_string(),
        "--resolve",
        &format!("{S3}:443:127.0.0.1"),
        "--resolve",
        &format!("{BEDROCK}:443:127.0.0.1"),
        "--allow-cidr",
        "127.0.0.1/32",
        "--upstream-ca",
        &lab.ca.path.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = vec![("AWS_ACCESS_KEY_ID", AKID.to_string()), ("AWS_SECRET_ACCESS_KEY", SECRET.to_string())];
    let proxy = ProxyProc::start(&lab, &args, &env);
    let url = |pq: &str| format!("http://{S3}{pq}");
    let deputy = [
        ("x-amz-copy-source", "/payroll/salaries.csv"),
        ("x-amz-acl", "public-read"),
        ("x-amz-grant-full-control", "id=attacker"),
    ];
    type DeputyCall<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str);
    let attacks: Vec<DeputyCall> = vec![
        ("PUT", url("/results/x?acl"), deputy.to_vec(), "amz_header_refused"),
        ("PUT", url("/results/x?acl"), vec![], "query_refused"),
        ("PUT", url("/results/x"), vec![deputy[0]], "amz_header_refused"),
        ("PUT", url("/results/x"), vec![deputy[1]], "amz_header_refused"),
        ("PUT", url("/results/x"), vec![deputy[2]], "amz_header_refused"),
        ("PUT", url("/results/x?tagging"), vec![], "query_refused"),
        ("PUT", url("/results/x"), vec![("x-amz-tagging", "k=v")], "amz_header_refused"),
        ("POST", url("/results/x?select&select-type=2"), vec![], "query_refused"),
        ("POST", url("/results/?delete"), vec![], "query_refused"),
        ("PUT", url("/results/x?X-Amz-Signature=00&X-Amz-Credential=AKIA"), vec![], "query_refused"),
        ("POST", format!("http://{BEDROCK}{INVOKE}"), vec![("x-amz-acl", "public-read")], "amz_header_refused"),
    ];
    for (method, u, headers, reason) in &attacks {
        let r = request(proxy.addr, method, u, headers, b"payload");
        assert_eq!((r.status, r.reason()), (403, *reason), "{method} {u} {headers:?}: {}", r.text());
    }
    assert_eq!(https.requests.load(Ordering::SeqCst), 0, "a deputy request reached the upstream");

    // The legitimate S3 PUT: signed with its body hash, S3's single path encoding, metadata.
    let body = b"run 7: accuracy 0.93\n";
    let r = request(
        proxy.addr,
        "PUT",
        &url("/results/run%207.txt"),
        &[("content-type", "text/plain"), ("x-amz-meta-run", "7"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["sigv4"]["valid"], true, "{j}");
    assert_eq!(j["sigv4"]["service"], "s3");
    let signed = j["sigv4"]["signed"].to_string();
    assert!(signed.contains("x-amz-content-sha256") && signed.contains("x-amz-meta-run"), "{signed}");
    let sha = j["headers"]["x-amz-content-sha256"][0].as_str().unwrap();
    let want: String = {
        use sha2::Digest;
        sha2::Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
    };
    assert_eq!(sha, want, "the workload's UNSIGNED-PAYLOAD must be replaced by the body's hash");
    assert_eq!(j["path"], "/results/run%207.txt");
    assert_eq!(j["body"].as_str().unwrap().as_bytes(), body);
    // Multipart upload keys are S3's ordinary calls.
    let r = request(proxy.addr, "POST", &url("/results/big.bin?uploads"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sigv4"]["valid"], true);
    let r = request(proxy.addr, "PUT", &url("/results/big.bin?partNumber=1&uploadId=abc"), &[], b"part");
    assert_eq!(r.json()["sigv4"]["valid"], true, "{}", r.text());
    // Bedrock-style: no content hash header, the path normalised and encoded twice.
    let r = request(
        proxy.addr,
        "POST",
        &format!("http://{BEDROCK}{INVOKE}"),
        &[("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(
        (j["sigv4"]["valid"].clone(), j["sigv4"]["service"].clone()),
        (Value::Bool(true), Value::from("bedrock")),
        "{j}"
    );
    assert!(j["headers"].get("x-amz-content-sha256").is_none());
    assert_no_secrets(&proxy.log_text());
    lab.assert_decoys_untouched();
}

/// Issue 23, item 7: the framing watch stops at a `CONNECT` (what follows is tunnel bytes). A
/// refused `CONNECT` used to leave the connection open, and a smuggling-shaped request after it
/// went upstream unchecked. Now the refusal closes the connection: nothing after it is read.
#[test]
fn a_refused_connect_closes_the_connection_so_nothing_is_smuggled_after_it() {
    let s = start_std(&[]);
    for smuggled in [
        &b"POST http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"[..],
        b"POST http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        let mut c = dial(s.proxy.addr);
        let mut bytes = b"CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n".to_vec();
        bytes.extend_from_slice(smuggled);
        c.write_all(&bytes).unwrap();
        // Read until the proxy closes (the lab's reads time out after 5 s).
        let mut all = Vec::new();
        let _ = c.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all);
        assert!(text.starts_with("HTTP/1.1 403"), "{text}");
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "a second request was served on the connection:\n{text}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.http.requests.load(Ordering::SeqCst), 0, "the smuggled request reached the upstream");
    // A CONNECT that is allowed still becomes a tunnel.
    let (_t, r) = connect(s.proxy.addr, "api.test:443");
    assert_eq!(r.status, 200);
    s.lab.assert_decoys_untouched();
}

/// Issue 23, item 6: a log pipe nobody reads. The proxy's standard error is a pipe the test
/// holds and does not drain; 24,000 refused requests fill it and the queue behind it. Requests
/// keep being answered (lines are dropped and counted, never waited for), `/healthz` says the
/// pipeline is stuck, and once the pipe is read again health returns and the drop is reported.
#[test]
fn a_stalled_log_pipe_never_blocks_requests_and_health_says_so() {
    let lab = Lab::new();
    let http = lab.http_upstream("127.0.0.1:80");
    let rules = lab.write("rules.yaml", &rules_without_credentials());
    let args: Vec<String> = [
        "--rules",
        &rules.display().to_string(),
        "--resolve",
        "plain.test:80:127.0.0.1",
        "--allow-cidr",
        "127.0.0.1/32",
        "--admin",
        ADMIN,
        "--log-stall-timeout",
        "1s",
        "--nameserver",
        "127.0.0.1:1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (proxy, mut stderr) = ProxyProc::start_with_stderr_pipe(&args, &[]);
    let a: SocketAddr = ADMIN.parse().unwrap();
    assert_eq!(admin(a, "GET", "/healthz", None, "").status, 200);
    let per_conn = 6000;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let addr = proxy.addr;
            std::thread::spawn(move || {
                let c = dial(addr);
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut w = c.try_clone().unwrap();
                let writer = std::thread::spawn(move || {
                    let one = b"GET http://evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n";
                    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 500).collect();
                    for _ in 0..per_conn / 500 {
                        w.write_all(&batch).unwrap();
                    }
                });
                let mut r = std::io::BufReader::new(c);
                let mut refused = 0;
                for _ in 0..per_conn {
                    let resp = read_response(&mut r, false).unwrap();
                    assert_eq!(resp.status, 403);
                    refused += 1;
                }
                writer.join().unwrap();
                refused
            })
        })
        .collect();
    let start = std::time::Instant::now();
    let refused: usize = runs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(refused, 4 * per_conn);
    // The pipe and the queue are full now; a legitimate request is still served at once.
    let t = std::time::Instant::now();
    let r = get(proxy.addr, "http://plain.test/after", &[]);
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "a request waited {:?} behind the log", t.elapsed());
    assert_eq!(http.requests.load(Ordering::SeqCst), 1);
    std::thread::sleep(Duration::from_millis(1200));
    let h = admin(a, "GET", "/healthz", None, "");
    assert_eq!(h.status, 503, "health says ok while the log is stuck ({:?} of load)", start.elapsed());
    assert!(h.text().contains("blocked") && h.text().contains("dropped"), "{}", h.text());
    let m = admin(a, "GET", "/metrics", None, "").text();
    let dropped: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("semble_proxy_log_lines_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(dropped > 0, "{m}");
    // Someone reads standard error again: health comes back and the drop is reported in the log.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while stderr.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("\"event\":\"log_lines_dropped\"") {
                let _ = tx.send(line.clone());
            }
            line.clear();
        }
    });
    let reported = rx.recv_timeout(Duration::from_secs(10)).expect("no log_lines_dropped event");
    let v: Value = serde_json::from_str(&reported).unwrap();
    assert!(v["dropped"].as_u64().unwrap() > 0, "{v}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while admin(a, "GET", "/healthz", None, "").status != 200 {
        assert!(std::time::Instant::now() < deadline, "health did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.assert_decoys_untouched();
}

/// A TLS record.
fn record(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![typ, 3, 3];
    r.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// Read one TLS record off `s`.
fn read_record(s: &mut impl Read) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 5];
    s.read_exact(&mut h)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes([h[3], h[4]]))];
    s.read_exact(&mut body)?;
    Ok((h[0], body))
}

/// The first flight of a real rustls client for `sni` (whose key share is for the first of
/// `groups`).
fn client_hello_for(sni: &str, groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>) -> Vec<u8> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = groups;
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut c = rustls::ClientConnection::new(Arc::new(cfg), sni.to_string().try_into().unwrap()).unwrap();
    let mut out = Vec::new();
    c.write_tls(&mut out).unwrap();
    out
}

/// `hello` (one record holding one ClientHello) with one more extension, `ext` with `body`.
fn with_extension(hello: &[u8], ext: u16, body: &[u8]) -> Vec<u8> {
    let mut msg = hello[5..].to_vec();
    let mut i = 4 + 2 + 32;
    i += 1 + usize::from(msg[i]);
    i += 2 + usize::from(u16::from_be_bytes([msg[i], msg[i + 1]]));
    i += 1 + usize::from(msg[i]);
    let ext_len = u16::from_be_bytes([msg[i], msg[i + 1]]) + 4 + u16::try_from(body.len()).unwrap();
    msg[i..i + 2].copy_from_slice(&ext_len.to_be_bytes());
    msg.extend_from_slice(&ext.to_be_bytes());
    msg.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    msg.extend_from_slice(body);
    let body_len = u32::try_from(msg.len() - 4).unwrap().to_be_bytes();
    msg[1..4].copy_from_slice(&body_len[1..]);
    record(22, &msg)
}

/// Issue 23, item 4: the SNI check looks at every ClientHello, refuses Encrypted Client Hello,
/// cuts a TLS 1.2 renegotiation, and `tls` follows each port.
#[test]
fn every_client_hello_is_checked_ech_is_refused_and_tls_follows_each_port() {
    use rustls::crypto::ring::kx_group::{SECP256R1, X25519};
    let lab = Lab::new();
    // An upstream that only speaks P-256: a client leading with X25519 gets a HelloRetryRequest.
    let mut p256_only = rustls::crypto::ring::default_provider();
    p256_only.kx_groups = vec![SECP256R1];
    let https =
        lab.https_upstream_config("127.0.0.1:443", lab.ca.server_config_with(&["api.test", "x.wild.test"], p256_only));
    // Echoes on 8443 and 9000, for the per-port check.
    for port in [8443, 9000] {
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut back = s.try_clone().unwrap();
                    let mut s = s;
                    let _ = std::io::copy(&mut s, &mut back);
                });
            }
        });
    }
    // A TLS 1.2-speaking stand-in on 127.0.0.7:443 that records what reaches it.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let l = std::net::TcpListener::bind("127.0.0.7:443").unwrap();
    let sn = seen.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let Ok((22, _hello)) = read_record(&mut s) else { continue };
            let mut sh = vec![2, 0, 0, 38, 3, 3];
            sh.extend_from_slice(&[9u8; 32]);
            sh.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
            let _ = s.write_all(&record(22, &sh));
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sn.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    let rules = lab.write(
        "rules.yaml",
        "kind: ProxyRules\negress:\n  - {host: api.test, ports: [443, 8443, 9000]}\n  - {host: \"*.wild.test\"}\n  - {host: reneg.test}\n",
    );
    let mut args: Vec<String> =
        ["--rules", &rules.display().to_string(), "--allow-cidr", "127.0.0.0/8", "--nameserver", "127.0.0.1:1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for pin in [
        "api.test:443:127.0.0.1",
        "api.test:8443:127.0.0.1",
        "api.test:9000:127.0.0.1",
        "x.wild.test:443:127.0.0.1",
        "reneg.test:443:127.0.0.7",
    ] {
        args.extend(["--resolve".to_string(), pin.to_string()]);
    }
    let proxy = ProxyProc::start(&lab, &args, &[]);

    // 1. The legitimate client goes through a HelloRetryRequest: its second ClientHello names
    //    the same server, is forwarded, and the request is served.
    let (tunnel, r) = connect(proxy.addr, "api.test:443");
    assert_eq!(r.status, 200);
    let mut t = tls(tunnel, "api.test", &[&lab.ca.pem]);
    let r = over(&mut t, "GET", "/after-retry", "api.test", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    drop(t);
    proxy.wait_line("for the tunnel through a retry", |v| v["mode"] == "connect" && v["decision"] == "allow");

    // 2. A second ClientHello that names another server is refused, and never reaches it.
    let before = https.requests.load(Ordering::SeqCst);
    let (mut tunnel, r) = connect(proxy.addr, "api.test:443");
    assert_eq!(r.status, 200);
    let client = tunnel.local_addr().unwrap().to_string();
    tunnel.write_all(&client_hello_for("api.test", vec![X25519, SECP256R1])).unwrap();
    let (typ, hrr) = read_record(&mut tunnel).unwrap();
    assert_eq!((typ, hrr[0]), (22, 2), "the upstream did not answer with a HelloRetryRequest");
    tunnel.write_all(&client_hello_for("x.wild.test", vec![SECP256R1])).unwrap();
    let mut rest = Vec::new();
    let _ = tunnel.read_to_end(&mut rest);
    // (The server's middlebox-compatibility ChangeCipherSpec may come first.)
    assert!(rest.windows(7).any(|w| w == [21, 3, 3, 0, 2, 2, 49]), "no access_denied alert before the cut: {rest:?}");
    let line = proxy
        .wait_line("for the second ClientHello", |v| v["client"] == client.as_str() && v["reason"] == "sni_mismatch");
    assert!(line["detail"].as_str().unwrap().contains("second ClientHello"), "{line}");
    assert_eq!(https.requests.load(Ordering::SeqCst), before);

    // 3. Encrypted Client Hello (real or GREASE: the proxy cannot tell) is refused.
    let (mut tunnel, _) = connect(proxy.addr, "api.test:443");
    let client = tunnel.local_addr().unwrap().to_string();
    // An outer ECHClientHello as GREASE ECH sends it: type outer, HKDF-SHA256 + AES-128-GCM,
    // a config id, a 32-byte encapsulated key, a payload.
    let mut ech = vec![0, 0, 1, 0, 1, 0x42, 0, 32];
    ech.extend_from_slice(&[7; 32]);
    ech.extend_from_slice(&[0, 64]);
    ech.extend_from_slice(&[9; 64]);
    tunnel.write_all(&with_extension(&client_hello_for("api.test", vec![SECP256R1]), 0xfe0d, &ech)).unwrap();
    let (typ, _) = read_record(&mut tunnel).unwrap();
    assert_eq!(typ, 21, "an ECH ClientHello got an answer other than an alert");
    proxy.wait_line("for the ECH refusal", |v| v["client"] == client.as_str() && v["reason"] == "ech_refused");
    // The same ClientHello without the extension is fine.
    let (mut tunnel, _) = connect(proxy.addr, "api.test:443");
    tunnel.write_all(&client_hello_for("api.test", vec![SECP256R1])).unwrap();
    assert_eq!(read_record(&mut tunnel).unwrap().0, 22, "the upstream's ServerHello");
    drop(tunnel);

    // 4. TLS 1.2 renegotiation: after the handshake records and data, a new handshake record
    //    cuts the tunnel before it reaches the server.
    let (mut tunnel, r) = connect(proxy.addr, "reneg.test:443");
    assert_eq!(r.status, 200);
    let client = tunnel.local_addr().unwrap().to_string();
    tunnel.write_all(&client_hello_for("reneg.test", vec![X25519])).unwrap();
    assert_eq!(read_record(&mut tunnel).unwrap().0, 22);
    let mut flight = record(22, &[16, 0, 0, 1, 0]);
    flight.extend(record(20, &[1]));
    flight.extend(record(22, &[0xaa; 40]));
    flight.extend(record(23, b"APPDATA-BEFORE"));
    tunnel.write_all(&flight).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    tunnel.write_all(&record(22, b"RENEGOTIATING-CLIENT-HELLO")).unwrap();
    let mut rest = Vec::new();
    let _ = tunnel.read_to_end(&mut rest);
    proxy.wait_line("for the renegotiation", |v| v["client"] == client.as_str() && v["reason"] == "tls_renegotiation");
    let got = seen.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("APPDATA-BEFORE"), "the data before the renegotiation did not arrive");
    assert!(!text.contains("RENEGOTIATING"), "the renegotiation reached the server");

    // 5. `tls` follows each port: 443 and 8443 are TLS ports of this rule, 9000 is not.
    for (port, tls_port) in [(8443, true), (9000, false)] {
        let (mut t, r) = connect(proxy.addr, &format!("api.test:{port}"));
        assert_eq!(r.status, 200);
        t.write_all(b"GET / HTTP/1.1\r\nHost: api.test\r\n\r\n").unwrap();
        let mut got = vec![0u8; 12];
        t.read_exact(&mut got).unwrap();
        if tls_port {
            assert_eq!(&got, b"HTTP/1.1 403", "plaintext into TLS port {port}");
        } else {
            assert_eq!(&got, b"GET / HTTP/1", "port {port} relays as it is");
        }
    }
    lab.assert_decoys_untouched();
}

/// Issue 23, item 5: one client cannot starve a shared gateway. An abusive client (its own
/// source address) holds every connection its budget allows with unfinished heads, and a
/// signed upload that holds its body budget: its next connection and its next upload are
/// refused at once, while other clients keep being served, signed uploads included.
#[test]
fn one_client_at_its_limits_does_not_starve_the_others() {
    let lab = Lab::new();
    let http = lab.http_upstream("127.0.0.1:80");
    let https = lab.https_upstream("127.0.0.1:443", &[BEDROCK]);
    let rules = lab.write(
        "rules.yaml",
        &format!("kind: ProxyRules\negress:\n  - {{host: plain.test, ports: [80], tls: false}}\n  - {{host: {BEDROCK}, credential: bedrock}}\n"),
    );
    let creds = lab.write(
        "creds.yaml",
        "kind: ProxyCredentials\ncredentials:\n  bedrock:\n    awsSigV4: {service: bedrock, from: environment}\n",
    );
    let args: Vec<String> = [
        "--rules",
        &rules.display().to_string(),
        "--credentials",
        &creds.display().to_string(),
        "--resolve",
        "plain.test:80:127.0.0.1",
        "--resolve",
        &format!("{BEDROCK}:443:127.0.0.1"),
        "--allow-cidr",
        "127.0.0.1/32",
        "--upstream-ca",
        &lab.ca.path.display().to_string(),
        "--max-client-connections",
        "8",
        "--max-signed-body",
        "1048576",
        "--max-client-buffered-bytes",
        "1048576",
        "--max-buffered-bytes",
        "2097152",
        "--header-timeout",
        "30s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = vec![("AWS_ACCESS_KEY_ID", AKID.to_string()), ("AWS_SECRET_ACCESS_KEY", SECRET.to_string())];
    let proxy = ProxyProc::start(&lab, &args, &env);
    let abuser: IpAddr = "127.0.0.2".parse().unwrap();
    // Eight unfinished heads (~30 KB each): the abuser's whole connection budget.
    let mut held = Vec::new();
    for _ in 0..7 {
        let mut c = dial_from(abuser, proxy.addr);
        let mut head = b"GET http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nX-Pad: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', 30_000));
        c.write_all(&head).unwrap();
        held.push(c);
    }
    // The eighth: a signed upload that declares 1 MiB and sends 100 bytes, holding the body budget.
    let mut upload = dial_from(abuser, proxy.addr);
    write!(upload, "POST http://{BEDROCK}{INVOKE} HTTP/1.1\r\nHost: {BEDROCK}\r\nContent-Length: 1048576\r\n\r\n")
        .unwrap();
    upload.write_all(&[b'x'; 100]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Its ninth connection is refused at once.
    let mut ninth = dial_from(abuser, proxy.addr);
    let r = read_response(&mut ninth, false).unwrap();
    assert_eq!((r.status, r.reason()), (429, "client_connections"));
    // Another client is served, plain and signed, while the abuser holds all that.
    let other: IpAddr = "127.0.0.3".parse().unwrap();
    let mut c = dial_from(other, proxy.addr);
    c.write_all(b"GET http://plain.test/ok HTTP/1.1\r\nHost: plain.test\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
    let mut c = dial_from(other, proxy.addr);
    let body = vec![b'y'; 600_000];
    write!(
        c,
        "POST http://{BEDROCK}{INVOKE} HTTP/1.1\r\nHost: {BEDROCK}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(&body).unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["sigv4"]["valid"], true);
    assert_eq!(http.requests.load(Ordering::SeqCst), 1);
    assert_eq!(https.requests.load(Ordering::SeqCst), 1);
    // The abuser closes one head and tries a second upload: its body budget is still taken.
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut second = dial_from(abuser, proxy.addr);
    write!(second, "POST http://{BEDROCK}{INVOKE} HTTP/1.1\r\nHost: {BEDROCK}\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    let r = read_response(&mut second, false).unwrap();
    assert_eq!((r.status, r.reason()), (429, "client_buffered"));
    // Once the upload ends, the budget is free again.
    drop(upload);
    std::thread::sleep(Duration::from_millis(300));
    let mut third = dial_from(abuser, proxy.addr);
    write!(third, "POST http://{BEDROCK}{INVOKE} HTTP/1.1\r\nHost: {BEDROCK}\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{{}}").unwrap();
    assert_eq!(read_response(&mut third, false).unwrap().status, 200);
    lab.assert_decoys_untouched();
}
