//! Credentials the proxy adds to requests, so the workload never holds them.
//!
//! A rule names a credential (`credential: bedrock`); the proxy's own credentials file defines
//! it. The file lives outside the sandbox (a Kubernetes Secret mounted into the proxy sidecar
//! only, or a root-owned file on the node):
//!
//! ```yaml
//! apiVersion: semble.dev/v1alpha1
//! kind: ProxyCredentials
//! credentials:
//!   bedrock:
//!     awsSigV4:
//!       service: bedrock
//!       region: us-east-1          # optional: read from `<svc>.<region>.amazonaws.com`
//!       from: containerEndpoint    # environment | file | containerEndpoint
//!   anthropic:
//!     header:
//!       name: x-api-key
//!       fromFile: /run/secrets/anthropic-key   # or fromEnv: ANTHROPIC_API_KEY
//!   openai:
//!     header:
//!       name: authorization
//!       prefix: "Bearer "
//!       fromEnv: OPENAI_API_KEY
//! ```
//!
//! * `header`: the value is read from an environment variable or a file (re-read when the
//!   file changes, so a rotated Kubernetes Secret takes effect without a restart).
//! * `awsSigV4`: requests are re-signed with AWS Signature Version 4 (the `aws-sigv4` crate,
//!   maintained by AWS). Keys come from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
//!   `AWS_SESSION_TOKEN` (`environment`), from a JSON file in the container-endpoint format
//!   (`file`), or from the AWS container credential endpoint (`containerEndpoint`: EKS Pod
//!   Identity and ECS task roles, via `AWS_CONTAINER_CREDENTIALS_FULL_URI` or
//!   `…_RELATIVE_URI` and `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), refreshed before they
//!   expire.
//!
//! Before a credential is added, every header that could carry one from the workload is
//! removed ([`CREDENTIAL_HEADERS`]): the workload's own `Authorization` never travels
//! alongside the real one. Secret values are never formatted: [`Secret`]'s `Debug` is
//! redacted and no error message includes a value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, HOST};
use http_body_util::{BodyExt, Empty, Limited};
use semble_policy::diag::Diagnostic;
use semble_policy::read::{index, join, Reader};
use semble_policy::yaml::{self, Node};

use crate::deny::{Deny, Reason};
use crate::sigv4::{Allow, Canon, Keys};

/// Headers removed from every request to a host that has a credential.
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
    "x-amz-date",
    "x-amz-content-sha256",
    "cookie",
];

/// A secret string. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where a header value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// An environment variable of the proxy.
    Env(String),
    /// A file (trailing newline removed); re-read when its modification time changes.
    File(PathBuf),
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSource::Env(v) => write!(f, "environment variable {v}"),
            ValueSource::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

/// Where AWS keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsSource {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    Environment,
    /// A JSON file: `{"AccessKeyId", "SecretAccessKey", "Token"?, "Expiration"?}`.
    File(PathBuf),
    /// The container credential endpoint.
    ContainerEndpoint,
}

/// How a credential is added.
#[derive(Debug)]
pub enum Kind {
    /// A fixed header.
    Header {
        /// Header name (lower case).
        name: HeaderName,
        /// Text before the value (`Bearer `).
        prefix: String,
        /// Where the value comes from.
        source: ValueSource,
    },
    /// AWS SigV4 re-signing.
    AwsSigV4 {
        /// The signing name (`bedrock`).
        service: String,
        /// The region, or `None` to read it from the host.
        region: Option<String>,
        /// Where keys come from.
        source: AwsSource,
        /// What it signs: the service's `x-amz-*` headers and query keys, plus the
        /// credential's `signHeaders` and `queryKeys` ([`crate::sigv4`]).
        allow: Allow,
    },
}

#[derive(Clone)]
struct AwsKeys {
    access_key_id: String,
    secret: Secret,
    token: Option<Secret>,
    expires: Option<SystemTime>,
}

/// A value read once and kept until its source changes or expires.
#[derive(Default)]
struct Cached {
    header: Option<(Option<SystemTime>, HeaderValue)>,
    aws: Option<(Option<SystemTime>, AwsKeys)>,
}

/// One credential.
pub struct Credential {
    /// Its name in the file.
    pub name: String,
    /// How it is added.
    pub kind: Kind,
    cache: Mutex<Cached>,
    fetch: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// Every credential of the file.
#[derive(Debug, Default)]
pub struct Credentials {
    /// By name.
    pub by_name: BTreeMap<String, Arc<Credential>>,
}

/// The `kind` of a credentials file.
pub const KIND: &str = "ProxyCredentials";

/// Read a credentials file. Problems are reported all at once, with `file:line:column`.
pub fn load(path: &Path) -> Result<Credentials, String> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the credentials file {}: {e}", path.display()))?;
    parse(&src).map_err(|diags| {
        let file = path.display().to_string();
        diags.iter().map(|d| d.render(Some(&file))).collect::<Vec<_>>().join("\n")
    })
}

/// Parse the text of a credentials file.
pub fn parse(src: &str) -> Result<Credentials, Vec<Diagnostic>> {
    let root = yaml::parse(src).map_err(|e| {
        vec![Diagnostic {
            severity: semble_policy::Severity::Error,
            pos: Some(e.pos),
            path: String::new(),
            message: e.message,
            help: None,
        }]
    })?;
    let mut r = Reader::default();
    let mut out = Credentials::default();
    if let Some(top) = r.map(&root, "", &["apiVersion", "kind", "credentials"]) {
        match top.get("kind").and_then(Node::as_str) {
            Some(KIND) => {}
            Some(other) => {
                let pos = top.get("kind").map(|n| n.pos).unwrap_or(root.pos);
                r.error(pos, "kind", format!("unsupported kind `{other}`"), Some(format!("use `kind: {KIND}`")));
            }
            None => r.missing(root.pos, "", "kind", KIND),
        }
        if let Some(v) = top.get("apiVersion") {
            if v.as_str() != Some(semble_policy::model::API_VERSION) {
                r.error(
                    v.pos,
                    "apiVersion",
                    "unsupported apiVersion",
                    Some(format!("use `{}`", semble_policy::model::API_VERSION)),
                );
            }
        }
        match top.get("credentials") {
            Some(n) => {
                if let Some(m) = n.as_map() {
                    for (key, node) in m.iter() {
                        let path = join("credentials", &key.name);
                        if let Some(kind) = read_one(&mut r, node, &path) {
                            let c = Credential {
                                name: key.name.clone(),
                                kind,
                                cache: Mutex::new(Cached::default()),
                                fetch: tokio::sync::Mutex::new(()),
                            };
                            out.by_name.insert(key.name.clone(), Arc::new(c));
                        }
                    }
                } else {
                    r.map(n, "credentials", &[]);
                }
            }
            None => r.missing(root.pos, "", "credentials", "credentials: {bedrock: {awsSigV4: {service: bedrock}}}"),
        }
    } else if root.is_null() {
        r.error(root.pos, "", "the credentials file is empty", Some(format!("start with `kind: {KIND}`")));
    }
    if r.diags.has_errors() {
        return Err(r.diags.into_sorted());
    }
    Ok(out)
}

fn read_one(r: &mut Reader, node: &Node, path: &str) -> Option<Kind> {
    let m = r.map(node, path, &["header", "awsSigV4"])?;
    match (m.get("header"), m.get("awsSigV4")) {
        (Some(h), None) => read_header(r, h, &join(path, "header")),
        (None, Some(a)) => read_aws(r, a, &join(path, "awsSigV4")),
        _ => {
            r.error(
                node.pos,
                path,
                "a credential is either `header` or `awsSigV4`",
                Some("write exactly one of them".into()),
            );
            None
        }
    }
}

fn read_header(r: &mut Reader, node: &Node, path: &str) -> Option<Kind> {
    let m = r.map(node, path, &["name", "prefix", "fromEnv", "fromFile"])?;
    let name = match m.get("name") {
        Some(n) => {
            let s = r.string(n, &join(path, "name"))?;
            match HeaderName::from_bytes(s.to_ascii_lowercase().as_bytes()) {
                Ok(h) if !matches!(h.as_str(), "host" | "connection" | "content-length" | "transfer-encoding") => h,
                _ => {
                    r.error(
                        n.pos,
                        &join(path, "name"),
                        format!("`{s}` cannot be a credential header"),
                        Some("use e.g. `authorization` or `x-api-key`".into()),
                    );
                    return None;
                }
            }
        }
        None => {
            r.missing(node.pos, path, "name", "name: authorization");
            return None;
        }
    };
    let prefix = match m.get("prefix") {
        Some(n) => r.string(n, &join(path, "prefix"))?,
        None => String::new(),
    };
    if HeaderValue::from_str(&prefix).is_err() {
        r.error(node.pos, &join(path, "prefix"), "the prefix holds characters a header cannot carry", None);
    }
    let source = match (m.get("fromEnv"), m.get("fromFile")) {
        (Some(e), None) => ValueSource::Env(r.string(e, &join(path, "fromEnv"))?),
        (None, Some(f)) => {
            let p = PathBuf::from(r.string(f, &join(path, "fromFile"))?);
            if !p.is_absolute() {
                r.error(f.pos, &join(path, "fromFile"), "the path must be absolute", None);
            }
            ValueSource::File(p)
        }
        _ => {
            r.error(
                node.pos,
                path,
                "a header credential needs exactly one of `fromEnv` and `fromFile`",
                Some("e.g. `fromEnv: OPENAI_API_KEY`".into()),
            );
            return None;
        }
    };
    Some(Kind::Header { name, prefix, source })
}

fn read_aws(r: &mut Reader, node: &Node, path: &str) -> Option<Kind> {
    let m = r.map(node, path, &["service", "region", "from", "file", "signHeaders", "queryKeys"])?;
    let service = match m.get("service") {
        Some(n) => r.string(n, &join(path, "service"))?,
        None => {
            r.missing(node.pos, path, "service", "service: bedrock");
            return None;
        }
    };
    let region = match m.get("region") {
        Some(n) => Some(r.string(n, &join(path, "region"))?),
        None => None,
    };
    let from = match m.get("from") {
        Some(n) => r.one_of(n, &join(path, "from"), &[("environment", 0), ("file", 1), ("containerEndpoint", 2)])?,
        None => 0,
    };
    let file = m.get("file").and_then(|n| r.string(n, &join(path, "file")));
    let source = match (from, file) {
        (1, Some(f)) if Path::new(&f).is_absolute() => AwsSource::File(PathBuf::from(f)),
        (1, _) => {
            r.error(
                node.pos,
                &join(path, "file"),
                "`from: file` needs an absolute `file` path",
                Some("add `file: /run/secrets/aws.json`".into()),
            );
            return None;
        }
        (_, Some(_)) => {
            r.error(node.pos, &join(path, "file"), "`file` is only read with `from: file`", None);
            return None;
        }
        (2, None) => AwsSource::ContainerEndpoint,
        _ => AwsSource::Environment,
    };
    let mut sign_headers = Vec::new();
    if let Some(n) = m.get("signHeaders") {
        let hpath = join(path, "signHeaders");
        for (i, item) in r.list(n, &hpath).iter().enumerate() {
            let ip = index(&hpath, i);
            let Some(h) = r.string(item, &ip) else { continue };
            let name = h.to_ascii_lowercase();
            let stem = name.strip_suffix('*').unwrap_or(&name);
            if !name.starts_with("x-amz-") || HeaderName::from_bytes(stem.as_bytes()).is_err() {
                r.error(
                    item.pos,
                    &ip,
                    format!("`{h}` is not an `x-amz-*` header name"),
                    Some(
                        "list `x-amz-…` headers, optionally ending in `*` (other headers are signed as they are)"
                            .into(),
                    ),
                );
            } else if crate::sigv4::SIGNER_HEADERS.contains(&name.as_str()) {
                r.error(item.pos, &ip, format!("`{h}` is set by the signer itself"), Some("remove it".into()));
            } else {
                sign_headers.push(name);
            }
        }
    }
    let mut query_keys = Vec::new();
    if let Some(n) = m.get("queryKeys") {
        let qpath = join(path, "queryKeys");
        for (i, item) in r.list(n, &qpath).iter().enumerate() {
            let ip = index(&qpath, i);
            let Some(k) = r.string(item, &ip) else { continue };
            if k.is_empty() || k.to_ascii_lowercase().starts_with("x-amz-") || k.contains(['&', '=', '?', '#']) {
                r.error(
                    item.pos,
                    &ip,
                    format!("`{k}` cannot be a query key to sign"),
                    Some(
                        "list keys as they appear before `=` (e.g. `versionId`); `X-Amz-*` keys are never signed"
                            .into(),
                    ),
                );
            } else {
                query_keys.push(k);
            }
        }
    }
    let allow = Allow::new(&service, &sign_headers, &query_keys);
    Some(Kind::AwsSigV4 { service, region, source, allow })
}

fn unavailable(name: &str, why: impl fmt::Display) -> Deny {
    Deny::new(Reason::CredentialUnavailable, format!("credential `{name}` is unavailable: {why}"))
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn read_value(source: &ValueSource) -> Result<(Option<SystemTime>, String), String> {
    match source {
        ValueSource::Env(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok((None, v)),
            _ => Err(format!("{source} is not set")),
        },
        ValueSource::File(p) => {
            let m = mtime(p);
            let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {source}: {e}"))?;
            let v = text.trim_end_matches(['\n', '\r']).to_string();
            if v.is_empty() {
                return Err(format!("{source} is empty"));
            }
            Ok((m, v))
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeysJson {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

fn keys_from_json(text: &[u8], origin: &str) -> Result<AwsKeys, String> {
    let j: KeysJson = serde_json::from_slice(text)
        .map_err(|e| format!("{origin} did not give AWS keys in the expected JSON ({})", e.classify_name()))?;
    let expires = match j.expiration {
        Some(s) => Some(
            time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                .map(SystemTime::from)
                .map_err(|_| format!("{origin} gave an Expiration that is not RFC 3339"))?,
        ),
        None => None,
    };
    Ok(AwsKeys {
        access_key_id: j.access_key_id,
        secret: Secret(j.secret_access_key),
        token: j.token.filter(|t| !t.is_empty()).map(Secret),
        expires,
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "missing or wrong fields",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// The container credential endpoint, from the environment the AWS SDKs read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Address to connect to.
    pub addr: std::net::SocketAddr,
    /// `Host` header value.
    pub authority: String,
    /// Path and query.
    pub path: String,
}

/// Read `AWS_CONTAINER_CREDENTIALS_FULL_URI` / `…_RELATIVE_URI`. Only plain HTTP to loopback or
/// to the ECS/EKS endpoint addresses is accepted (what the AWS SDKs accept for `http`).
pub fn container_endpoint() -> Result<Endpoint, String> {
    let (uri, var) = if let Ok(full) = std::env::var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        (full, "AWS_CONTAINER_CREDENTIALS_FULL_URI")
    } else if let Ok(rel) = std::env::var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        (format!("http://169.254.170.2{rel}"), "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    } else {
        return Err(
            "neither AWS_CONTAINER_CREDENTIALS_FULL_URI nor AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set".into()
        );
    };
    let parsed: http::Uri = uri.parse().map_err(|_| format!("{var} is not a URI"))?;
    if parsed.scheme_str() != Some("http") {
        return Err(format!("{var}: only http:// endpoints on loopback or the ECS/EKS addresses are supported"));
    }
    let auth = parsed.authority().ok_or_else(|| format!("{var} names no host"))?;
    let host = auth.host();
    let ip: IpAddr = if host == "localhost" {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{var}: the host must be an IP address or localhost"))?
    };
    let known = [
        IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
        IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
    ];
    if !ip.is_loopback() && !known.contains(&ip) {
        return Err(format!("{var}: {ip} is neither loopback nor an ECS/EKS credential endpoint address"));
    }
    let port = auth.port_u16().unwrap_or(80);
    Ok(Endpoint {
        addr: std::net::SocketAddr::new(ip, port),
        authority: auth.as_str().to_string(),
        path: parsed.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into()),
    })
}

fn container_token() -> Result<Option<String>, String> {
    if let Ok(file) = std::env::var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        let t = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE ({file}): {e}"))?;
        return Ok(Some(t.trim_end_matches(['\n', '\r']).to_string()));
    }
    Ok(std::env::var("AWS_CONTAINER_AUTHORIZATION_TOKEN").ok())
}

async fn fetch_container(endpoint: &Endpoint) -> Result<AwsKeys, String> {
    let what = format!("the container credential endpoint ({})", endpoint.addr);
    let go = async {
        let stream =
            tokio::net::TcpStream::connect(endpoint.addr).await.map_err(|e| format!("cannot reach {what}: {e}"))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        tokio::spawn(conn);
        let mut req = http::Request::get(endpoint.path.as_str()).header(HOST, endpoint.authority.as_str());
        if let Some(token) = container_token()? {
            let v = HeaderValue::from_str(&token)
                .map_err(|_| "the container authorization token holds characters a header cannot carry".to_string())?;
            req = req.header(AUTHORIZATION, v);
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| format!("{what}: {e}"))?;
        let resp = send.send_request(req).await.map_err(|e| format!("{what}: {e}"))?;
        let status = resp.status();
        let body =
            Limited::new(resp.into_body(), 64 * 1024).collect().await.map_err(|e| format!("{what}: {e}"))?.to_bytes();
        if !status.is_success() {
            return Err(format!("{what} answered {status}"));
        }
        keys_from_json(&body, &what)
    };
    tokio::time::timeout(Duration::from_secs(5), go).await.map_err(|_| format!("{what} did not answer in 5 s"))?
}

/// How long before expiry keys are refreshed.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

impl Credential {
    /// Whether the request body is needed (SigV4 hashes it).
    pub fn needs_body(&self) -> bool {
        matches!(self.kind, Kind::AwsSigV4 { .. })
    }

    fn header_value(&self, name: &str, prefix: &str, source: &ValueSource) -> Result<HeaderValue, Deny> {
        let mut cache = self.cache.lock().map_err(|_| unavailable(name, "internal lock poisoned"))?;
        let current = match source {
            ValueSource::File(p) => mtime(p),
            ValueSource::Env(_) => None,
        };
        if let Some((m, v)) = &cache.header {
            if *m == current {
                return Ok(v.clone());
            }
        }
        let (m, value) = read_value(source).map_err(|e| unavailable(name, e))?;
        let mut hv = HeaderValue::from_str(&format!("{prefix}{value}")).map_err(|_| {
            unavailable(name, format!("the value from {source} holds characters a header cannot carry"))
        })?;
        hv.set_sensitive(true);
        cache.header = Some((m, hv.clone()));
        Ok(hv)
    }

    async fn aws_keys(&self, source: &AwsSource) -> Result<AwsKeys, Deny> {
        let name = &self.name;
        let fresh = |k: &AwsKeys| k.expires.is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE);
        let file_mtime = match source {
            AwsSource::File(p) => mtime(p),
            _ => None,
        };
        if let Ok(c) = self.cache.lock() {
            if let Some((m, k)) = &c.aws {
                if *m == file_mtime && fresh(k) {
                    return Ok(k.clone());
                }
            }
        }
        // One fetch at a time; the others wait for its result.
        let _one = self.fetch.lock().await;
        if let Ok(c) = self.cache.lock() {
            if let Some((m, k)) = &c.aws {
                if *m == file_mtime && fresh(k) {
                    return Ok(k.clone());
                }
            }
        }
        let keys = match source {
            AwsSource::Environment => {
                let id = std::env::var("AWS_ACCESS_KEY_ID")
                    .map_err(|_| unavailable(name, "AWS_ACCESS_KEY_ID is not set"))?;
                let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
                    .map_err(|_| unavailable(name, "AWS_SECRET_ACCESS_KEY is not set"))?;
                let token = std::env::var("AWS_SESSION_TOKEN").ok().filter(|t| !t.is_empty()).map(Secret);
                AwsKeys { access_key_id: id, secret: Secret(secret), token, expires: None }
            }
            AwsSource::File(p) => {
                let text =
                    std::fs::read(p).map_err(|e| unavailable(name, format!("cannot read {}: {e}", p.display())))?;
                keys_from_json(&text, &p.display().to_string()).map_err(|e| unavailable(name, e))?
            }
            AwsSource::ContainerEndpoint => {
                let ep = container_endpoint().map_err(|e| unavailable(name, e))?;
                fetch_container(&ep).await.map_err(|e| unavailable(name, e))?
            }
        };
        if let Ok(mut c) = self.cache.lock() {
            c.aws = Some((file_mtime, keys.clone()));
        }
        Ok(keys)
    }

    /// Whether the credential signs this request at all: for SigV4, every `x-amz-*` header
    /// and query key must be on its allow-list. Checked before the body is read.
    pub fn admits(&self, parts: &http::request::Parts) -> Result<(), Deny> {
        match &self.kind {
            Kind::Header { .. } => Ok(()),
            Kind::AwsSigV4 { allow, .. } => allow.admits(&parts.headers, parts.uri.query(), &self.name),
        }
    }

    /// Check that the credential can be produced now (startup and `/readyz`).
    pub async fn check(&self) -> Result<(), Deny> {
        match &self.kind {
            Kind::Header { prefix, source, .. } => self.header_value(&self.name, prefix, source).map(|_| ()),
            Kind::AwsSigV4 { source, .. } => self.aws_keys(source).await.map(|_| ()),
        }
    }

    /// Remove the workload's credential headers and add this credential. `authority` is the
    /// upstream's `host[:port]` as it goes into `Host`; `body` is the whole request body
    /// (only read for SigV4).
    pub async fn apply(&self, parts: &mut http::request::Parts, authority: &str, body: &[u8]) -> Result<(), Deny> {
        strip_credentials(&mut parts.headers);
        let host =
            HeaderValue::from_str(authority).map_err(|_| Deny::new(Reason::BadHost, "the host cannot be a header"))?;
        parts.headers.insert(HOST, host);
        match &self.kind {
            Kind::Header { name, prefix, source } => {
                parts.headers.remove(name);
                let v = self.header_value(&self.name, prefix, source)?;
                parts.headers.insert(name.clone(), v);
                Ok(())
            }
            Kind::AwsSigV4 { service, region, source, allow } => {
                let keys = self.aws_keys(source).await?;
                let region = match region {
                    Some(r) => r.clone(),
                    None => region_of(authority).ok_or_else(|| {
                        unavailable(&self.name, format!("cannot tell the AWS region from `{authority}`; set `region`"))
                    })?,
                };
                self.sigv4(parts, authority, body, service, &region, &keys, allow.s3)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sigv4(
        &self,
        parts: &mut http::request::Parts,
        authority: &str,
        body: &[u8],
        service: &str,
        region: &str,
        keys: &AwsKeys,
        s3: bool,
    ) -> Result<(), Deny> {
        let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let url = format!("https://{authority}{pq}");
        let headers: Vec<(&str, &str)> =
            parts.headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))).collect();
        let fail = |e: &dyn fmt::Display| Deny::new(Reason::SigningFailed, format!("cannot sign the request: {e}"));
        let k = Keys {
            access_key_id: &keys.access_key_id,
            secret: keys.secret.expose(),
            token: keys.token.as_ref().map(Secret::expose),
            expires: keys.expires,
        };
        let canon = Canon::for_service(s3);
        let signed = crate::sigv4::sign(
            parts.method.as_str(),
            &url,
            &headers,
            body,
            k,
            region,
            service,
            SystemTime::now(),
            canon,
        )
        .map_err(|e| fail(&e))?;
        for (name, value, sensitive) in signed {
            let mut v = HeaderValue::from_str(&value).map_err(|e| fail(&e))?;
            v.set_sensitive(sensitive);
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| fail(&e))?;
            parts.headers.insert(n, v);
        }
        Ok(())
    }
}

/// Remove every header that could carry a credential from the workload.
pub fn strip_credentials(headers: &mut http::HeaderMap) {
    for h in CREDENTIAL_HEADERS {
        headers.remove(*h);
    }
}

/// `bedrock-runtime.us-east-1.amazonaws.com` -> `us-east-1`.
pub fn region_of(authority: &str) -> Option<String> {
    let host = authority.split(':').next()?;
    let labels: Vec<&str> = host.split('.').collect();
    labels.iter().skip(1).find(|l| is_region(l)).map(|s| s.to_string())
}

fn is_region(s: &str) -> bool {
    // `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-4`.
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts.last().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

impl Credentials {
    /// The credential called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Credential>> {
        self.by_name.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let c = parse(
            "apiVersion: semble.dev/v1alpha1\nkind: ProxyCredentials\ncredentials:\n  bedrock:\n    awsSigV4: {service: bedrock, from: containerEndpoint}\n  key:\n    header: {name: X-Api-Key, fromEnv: K}\n",
        )
        .unwrap();
        assert!(matches!(c.by_name["bedrock"].kind, Kind::AwsSigV4 { source: AwsSource::ContainerEndpoint, .. }));
        assert!(matches!(&c.by_name["key"].kind, Kind::Header { name, .. } if name == "x-api-key"));
    }

    #[test]
    fn reports_every_problem_with_a_position() {
        let e = parse("kind: ProxyCredentials\ncredentials:\n  a:\n    header: {name: x, fromEnv: A, fromFile: /b}\n  b:\n    awsSigV4: {servce: s}\n  c:\n    awsSigV4: {service: s, from: file}\n").unwrap_err();
        let text: Vec<String> = e.iter().map(|d| d.render(Some("c.yaml"))).collect();
        assert_eq!(text.len(), 4, "{text:#?}");
        assert!(text.iter().any(|t| t.contains("c.yaml:4:") && t.contains("exactly one")), "{text:#?}");
        assert!(text.iter().any(|t| t.contains("unknown field `servce`") && t.contains("service")), "{text:#?}");
        assert!(text.iter().any(|t| t.contains("needs an absolute `file`")), "{text:#?}");
    }

    #[test]
    fn regions() {
        assert_eq!(region_of("bedrock-runtime.us-east-1.amazonaws.com").as_deref(), Some("us-east-1"));
        assert_eq!(region_of("bedrock-runtime.us-gov-west-1.amazonaws.com:443").as_deref(), Some("us-gov-west-1"));
        assert_eq!(region_of("api.example.com"), None);
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(<redacted>)");
    }

    #[tokio::test]
    async fn header_credential_replaces_the_workloads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, "real-key\n").unwrap();
        let c = parse(&format!(
            "kind: ProxyCredentials\ncredentials:\n  k:\n    header: {{name: authorization, prefix: 'Bearer ', fromFile: {}}}\n",
            f.display()
        ))
        .unwrap();
        let (mut parts, ()) = http::Request::get("/v1")
            .header("authorization", "Bearer fake")
            .header("x-api-key", "fake")
            .body(())
            .unwrap()
            .into_parts();
        c.by_name["k"].apply(&mut parts, "api.test", b"").await.unwrap();
        assert_eq!(parts.headers.get_all("authorization").iter().count(), 1);
        assert_eq!(parts.headers["authorization"], "Bearer real-key");
        assert!(parts.headers.get("x-api-key").is_none());
        // Rotation: a new file content is picked up.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&f, "rotated\n").unwrap();
        let (mut parts, ()) = http::Request::get("/").body(()).unwrap().into_parts();
        c.by_name["k"].apply(&mut parts, "api.test", b"").await.unwrap();
        assert_eq!(parts.headers["authorization"], "Bearer rotated");
    }
}
