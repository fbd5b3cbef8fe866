//! The forward proxy: every request decided on its own, then forwarded, tunnelled or
//! intercepted.
//!
//! Order of checks for each request (the first that fails answers):
//! 1. framing: one `Content-Length` at most, never together with `Transfer-Encoding`
//!    (request smuggling), no `user:pass@` in the URI;
//! 2. form: absolute `http://` URI or `CONNECT host:port`; the `Host` header, when present,
//!    names the same host and port as the URI;
//! 3. the host is read strictly ([`crate::target`]);
//! 4. a rule allows host and port ([`crate::rules`]), then method and path where HTTP is seen;
//! 5. the name resolves, and *every* address is ordinary public unicast or admitted by the
//!    rule's `allowAddresses` / `--allow-cidr`, and none is the proxy's own listener;
//! 6. the proxy connects to one of those addresses (never re-resolving).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;

use crate::addr;
use crate::body::{counted, Tracked};
use crate::config::Config;
use crate::creds::{Credentials, Secret};
use crate::intercept::InterceptCa;
use crate::log::{Line, Logger};
use crate::metrics::Metrics;
use crate::net::{ClientIo, Prefixed};
use crate::resolve::Resolver;
use crate::rules::{check_http, Deny, Rule, RuleSet};
use crate::sniff::{Notes, Sniff};
use crate::sys::PipePool;
use crate::target::{parse_authority, parse_host, printable, split_host_port, Host, Target};
use crate::tunnel::{self, Hello};
use crate::upstream::{Body, Upstreams};

/// Everything a request handler needs.
#[derive(Debug)]
pub struct Proxy {
    /// The settings.
    pub config: Config,
    /// The rules in force (swapped whole by the admin API and SIGHUP).
    pub rules: ArcSwap<RuleSet>,
    /// The credentials (swapped whole on SIGHUP).
    pub creds: ArcSwap<Credentials>,
    /// Name resolution.
    pub resolver: Resolver,
    /// Upstream connections.
    pub upstreams: Arc<Upstreams>,
    /// Metrics.
    pub metrics: Metrics,
    /// Decision log.
    pub log: Logger,
    /// The intercept CA, when configured.
    pub intercept: Option<InterceptCa>,
    /// Ports the proxy itself listens on (client and admin).
    pub own_ports: Vec<u16>,
    /// This machine's addresses (a target there on an own port is the proxy itself).
    pub local_ips: Vec<IpAddr>,
    /// Relay pipes.
    pub pipes: PipePool,
    /// Open client connections and tunnels.
    pub connections: AtomicUsize,
    /// The most connections open at once since housekeeping last looked.
    pub peak_connections: AtomicUsize,
    /// The admin bearer token.
    pub admin_token: Option<Secret>,
    http1: hyper::server::conn::http1::Builder,
}

/// A client connection (and the tunnel it may become). Dropping it releases its slot.
#[derive(Debug)]
pub struct ConnInfo {
    /// The client's address (`unix` for Unix sockets).
    pub client: String,
    /// Framing notes of its requests.
    pub notes: Notes,
    proxy: Arc<Proxy>,
}

impl Drop for ConnInfo {
    fn drop(&mut self) {
        self.proxy.connections.fetch_sub(1, Ordering::Relaxed);
        self.proxy.metrics.active_connections.dec();
    }
}

/// Headers that belong to one hop, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    let listed: Vec<String> = h
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter(|t| !t.is_empty())
        .collect();
    for name in HOP_BY_HOP {
        h.remove(*name);
    }
    for name in listed {
        if !matches!(name.as_str(), "host" | "content-length") {
            h.remove(name.as_str());
        }
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed_unsync()
}

/// The response to a refusal: the status, the reason code in `x-semble-reason`, and one line
/// saying what and why.
pub fn deny_response(d: &Deny, close: bool) -> Response<Body> {
    let mut r = Response::new(full(format!("semble-proxy: {}\n", d.detail)));
    *r.status_mut() = StatusCode::from_u16(d.status).unwrap_or(StatusCode::FORBIDDEN);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert("x-semble-reason", HeaderValue::from_static(d.reason));
    if close {
        r.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// What the framing checks found wrong (request smuggling).
fn framing(h: &HeaderMap) -> Result<(), Deny> {
    let cl = h.get_all(CONTENT_LENGTH).iter().count();
    if cl > 1 {
        return Err(Deny::new(400, "smuggling", "more than one Content-Length header"));
    }
    if cl == 1 && h.contains_key(TRANSFER_ENCODING) {
        return Err(Deny::new(400, "smuggling", "both Content-Length and Transfer-Encoding"));
    }
    if h.get_all(TRANSFER_ENCODING).iter().count() > 1 {
        return Err(Deny::new(400, "smuggling", "more than one Transfer-Encoding header"));
    }
    Ok(())
}

fn has_body(h: &HeaderMap) -> bool {
    h.contains_key(TRANSFER_ENCODING)
        || h.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// `host[:port]` as it goes into `Host`, with the default port of the scheme left out.
fn authority_for(host: &Host, port: u16, tls: bool) -> String {
    let default = if tls { 443 } else { 80 };
    if port == default {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

impl Proxy {
    /// Assemble the state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        rules: RuleSet,
        creds: Credentials,
        upstreams: Arc<Upstreams>,
        log: Logger,
        intercept: Option<InterceptCa>,
        own_ports: Vec<u16>,
        local_ips: Vec<IpAddr>,
        admin_token: Option<Secret>,
    ) -> Proxy {
        let resolver = Resolver::new(&config.resolve, &config.nameservers);
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(config.limits.header_timeout)
            .max_headers(config.limits.max_headers)
            .max_header_size(config.limits.max_header_bytes)
            .max_buf_size(config.limits.max_header_bytes.max(8192) + 8192)
            .keep_alive(true);
        Proxy {
            rules: ArcSwap::from_pointee(rules),
            creds: ArcSwap::from_pointee(creds),
            resolver,
            upstreams,
            metrics: Metrics::new(),
            log,
            intercept,
            own_ports,
            local_ips,
            pipes: PipePool::default(),
            connections: AtomicUsize::new(0),
            peak_connections: AtomicUsize::new(0),
            admin_token,
            http1,
            config,
        }
    }

    /// Write a decision's log line and count it.
    pub fn finish(&self, line: &Line) {
        self.log.log(line);
        let rule = (!line.rule.is_empty()).then_some(line.rule.as_str());
        self.metrics.decision(line.decision, rule, line.reason);
    }

    fn refuse(&self, mut line: Line, d: Deny, start: Instant, close: bool) -> Response<Body> {
        line.refusal(&d);
        line.took(start);
        self.finish(&line);
        deny_response(&d, close)
    }

    /// Resolve and check the addresses of an allowed target.
    pub async fn addresses(&self, host: &Host, port: u16, rule: &Rule) -> Result<Vec<IpAddr>, Deny> {
        let addrs = match host {
            Host::Name(n) => match self.resolver.lookup(n, port).await {
                Ok(a) => a,
                Err(d) => {
                    self.metrics.dns_failures.inc();
                    return Err(d);
                }
            },
            Host::Ip(ip) => vec![*ip],
        };
        let mut refused = Vec::new();
        for a in &addrs {
            let local = a.is_loopback() || a.is_unspecified() || self.local_ips.contains(a);
            if local && self.own_ports.contains(&port) {
                return Err(Deny::new(403, "proxy_loop", format!("{host}:{port} is the proxy itself ({a})")));
            }
            if let Some(why) = addr::refusal(*a, &rule.spec.allow_addresses, &self.config.allow_cidr) {
                refused.push(format!("{a} ({why})"));
            }
        }
        if !refused.is_empty() {
            return Err(Deny::new(
                403,
                "reserved_address",
                format!(
                    "`{host}` resolves to {}; only a rule's `allowAddresses` or --allow-cidr can admit such a range",
                    refused.join(", ")
                ),
            ));
        }
        Ok(addrs)
    }

    /// Serve one client connection.
    pub async fn serve(self: Arc<Self>, io: ClientIo, client: String) {
        let slots = self.connections.fetch_add(1, Ordering::Relaxed);
        if slots >= self.config.limits.max_connections {
            self.connections.fetch_sub(1, Ordering::Relaxed);
            let d = Deny::new(503, "too_many_connections", format!("{slots} connections are open (--max-connections)"));
            let mut line = Line::new(&client, "conn");
            line.refusal(&d);
            self.finish(&line);
            let mut io = io;
            let body = format!("semble-proxy: {}\n", d.detail);
            let msg = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), io.write_all(msg.as_bytes())).await;
            return;
        }
        self.peak_connections.fetch_max(slots + 1, Ordering::Relaxed);
        self.metrics.active_connections.inc();
        let (io, notes) = Sniff::new(io, self.config.limits.max_header_bytes);
        let conn = Arc::new(ConnInfo { client: client.clone(), notes, proxy: self.clone() });
        let proxy = self.clone();
        let svc = service_fn(move |req| handle(proxy.clone(), conn.clone(), req));
        let served = self.http1.serve_connection(TokioIo::new(io), svc).with_upgrades().await;
        if let Err(e) = served {
            self.connection_error(&client, "conn", &e);
        }
    }

    /// Log what hyper refused before a request reached a handler.
    fn connection_error(&self, client: &str, mode: &'static str, e: &hyper::Error) {
        let (status, reason) = if e.is_parse_too_large() {
            (431, "header_too_large")
        } else if e.is_parse() || e.is_parse_status() {
            (400, "malformed")
        } else if e.is_timeout() {
            (408, "header_timeout")
        } else {
            return;
        };
        let mut line = Line::new(client, mode);
        line.decision = "deny";
        line.status = status;
        line.reason = reason;
        line.detail = printable(&e.to_string());
        self.finish(&line);
    }
}

/// Handle one request on a client connection.
pub async fn handle(
    proxy: Arc<Proxy>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    if let Some(note) = conn.notes.next() {
        let mut line = Line::new(&conn.client, if req.method() == Method::CONNECT { "connect" } else { "http" });
        line.method = printable(req.method().as_str());
        line.target = req.uri().authority().map(|a| printable(a.as_str())).unwrap_or_default();
        return Ok(proxy.refuse(line, Deny::new(400, "smuggling", note), start, true));
    }
    if req.method() == Method::CONNECT {
        return Ok(connect(proxy, conn, req, start).await);
    }
    Ok(plain(proxy, &conn.client, req, start).await)
}

async fn plain(proxy: Arc<Proxy>, client: &str, req: Request<Incoming>, start: Instant) -> Response<Body> {
    let mut line = Line::new(client, "http");
    line.method = printable(req.method().as_str());
    line.path = printable(req.uri().path());
    let close = has_body(req.headers());
    if let Err(d) = framing(req.headers()) {
        return proxy.refuse(line, d, start, true);
    }
    let Some(authority) = req.uri().authority().cloned() else {
        let d = Deny::new(
            400,
            "not_proxy_request",
            "this is a forward proxy: send `GET http://host/path` or `CONNECT host:443` (set HTTP_PROXY/HTTPS_PROXY)",
        );
        return proxy.refuse(line, d, start, close);
    };
    line.target = printable(authority.as_str());
    match req.uri().scheme_str() {
        Some("http") => {}
        Some("https") => {
            let d = Deny::new(
                400,
                "https_absolute",
                "https:// URIs are not forwarded as plain requests: use CONNECT (HTTPS_PROXY), or http:// and the proxy opens TLS",
            );
            return proxy.refuse(line, d, start, close);
        }
        _ => return proxy.refuse(line, Deny::new(400, "bad_scheme", "only http:// URIs are forwarded"), start, close),
    }
    if authority.as_str().contains('@') {
        let d = Deny::new(400, "userinfo", "`user:password@` in the URI is refused; credentials are the proxy's job");
        return proxy.refuse(line, d, start, close);
    }
    let (host_raw, port) = match split_host_port(authority.as_str()) {
        Ok(x) => x,
        Err(e) => return proxy.refuse(line, Deny::new(400, "bad_host", e.0), start, close),
    };
    let host = match parse_host(host_raw) {
        Ok(h) => h,
        Err(e) => return proxy.refuse(line, Deny::new(400, "bad_host", e.0), start, close),
    };
    line.target = Target { host: host.clone(), port: port.unwrap_or(80) }.to_string();
    if let Err(d) = host_header_matches(req.headers(), &host, port) {
        return proxy.refuse(line, d, start, close);
    }
    let rules = proxy.rules.load_full();
    let allowed = match rules.decide_http(&host, port) {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, close),
    };
    let rule = allowed.rule.clone();
    line.rule = rule.label.clone();
    line.target = Target { host: host.clone(), port: allowed.port }.to_string();
    let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    if let Err(d) = check_http(&rule, req.method().as_str(), &pq) {
        return proxy.refuse(line, d, start, close);
    }
    let addrs = match proxy.addresses(&host, allowed.port, &rule).await {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, close),
    };
    forward(proxy, line, &rule, &host, allowed.port, &addrs, req, pq, start).await
}

/// The `Host` header, when present, must name what the URI names.
fn host_header_matches(h: &HeaderMap, host: &Host, port: Option<u16>) -> Result<(), Deny> {
    let mut values = h.get_all(HOST).iter();
    let Some(v) = values.next() else { return Ok(()) };
    if values.next().is_some() {
        return Err(Deny::new(400, "host_mismatch", "more than one Host header"));
    }
    let text = v.to_str().map_err(|_| Deny::new(400, "host_mismatch", "the Host header is not ASCII"))?;
    let (hh, hp) = split_host_port(text).map_err(|e| Deny::new(400, "host_mismatch", format!("Host header: {e}")))?;
    let hh = parse_host(hh).map_err(|e| Deny::new(400, "host_mismatch", format!("Host header: {e}")))?;
    let norm = |p: Option<u16>| p.unwrap_or(80);
    if hh != *host || norm(hp) != norm(port) {
        return Err(Deny::new(
            400,
            "host_mismatch",
            format!("the Host header names `{}` but the request URI names `{host}`", printable(text)),
        ));
    }
    Ok(())
}

/// Send an allowed request upstream and stream the response back.
#[allow(clippy::too_many_arguments)]
async fn forward(
    proxy: Arc<Proxy>,
    mut line: Line,
    rule: &Rule,
    host: &Host,
    port: u16,
    addrs: &[IpAddr],
    req: Request<Incoming>,
    pq: String,
    start: Instant,
) -> Response<Body> {
    let tls = rule.spec.tls;
    let (mut parts, body) = req.into_parts();
    let close = has_body(&parts.headers);
    strip_hop_by_hop(&mut parts.headers);
    let authority = authority_for(host, port, tls);
    parts.uri = match pq.parse() {
        Ok(u) => u,
        Err(_) => {
            return proxy.refuse(line, Deny::new(400, "malformed", "the request path is not a valid URI"), start, close)
        }
    };
    parts.version = http::Version::HTTP_11;
    match HeaderValue::from_str(&authority) {
        Ok(v) => {
            parts.headers.insert(HOST, v);
        }
        Err(_) => return proxy.refuse(line, Deny::new(400, "bad_host", "the host cannot be a header"), start, close),
    }
    let cred = match &rule.spec.credential {
        Some(name) => match proxy.creds.load().get(name) {
            Some(c) => Some(c.clone()),
            None => {
                let d = Deny::new(502, "credential_unavailable", format!("credential `{name}` is not defined"));
                return proxy.refuse(line, d, start, close);
            }
        },
        None => None,
    };
    let idle = proxy.config.limits.idle_timeout;
    let up_count = Arc::new(AtomicU64::new(0));
    let buffered = cred.as_ref().is_some_and(|c| c.needs_body()) || body.is_end_stream();
    let (body, replay) = if buffered {
        let limit = proxy.config.limits.max_signed_body;
        let collected = Limited::new(counted(body, up_count.clone(), idle), limit).collect().await;
        match collected {
            Ok(c) => {
                let b = c.to_bytes();
                (full(b.clone()), Some(b))
            }
            Err(e) => {
                let d = if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    Deny::new(
                        413,
                        "body_too_large",
                        format!("request bodies to credentialed hosts are signed and limited to {limit} bytes"),
                    )
                } else {
                    Deny::new(400, "body_failed", format!("cannot read the request body: {e}"))
                };
                return proxy.refuse(line, d, start, true);
            }
        }
    } else {
        (counted(body, up_count.clone(), idle).boxed_unsync(), None)
    };
    if let Some(c) = &cred {
        line.credential = c.name.clone();
        if let Err(d) = c.apply(&mut parts, &authority, replay.as_deref().unwrap_or(&[])).await {
            return proxy.refuse(line, d, start, false);
        }
    }
    let retry = replay.map(|b| {
        let mut again = Request::from_parts(parts.clone(), full(b));
        *again.version_mut() = http::Version::HTTP_11;
        again
    });
    let req = Request::from_parts(parts, body);
    let sni = match host {
        Host::Name(n) => n.clone(),
        Host::Ip(ip) => ip.to_string(),
    };
    let sent = match proxy.upstreams.send(addrs, port, tls.then_some(sni.as_str()), req, retry).await {
        Ok(s) => s,
        Err(d) => return proxy.refuse(line, d, start, false),
    };
    proxy.metrics.upstream_latency.observe(sent.latency.as_secs_f64());
    line.upstream = sent.addr.to_string();
    line.status = sent.response.status().as_u16();
    line.decision = "allow";
    line.reason = "ok";
    let (mut rp, rbody) = sent.response.into_parts();
    strip_hop_by_hop(&mut rp.headers);
    rp.version = http::Version::HTTP_11;
    let lease = sent.lease;
    let p2 = proxy.clone();
    let on_end = Box::new(move |down: u64, clean: bool| {
        let mut line = line;
        line.bytes_up = up_count.load(Ordering::Relaxed);
        line.bytes_down = down;
        line.took(start);
        if !clean {
            line.detail = "the response was cut short".into();
        }
        p2.metrics.relayed(line.bytes_up, down);
        p2.finish(&line);
        if let (true, Some(l)) = (clean, lease) {
            l.release();
        }
    });
    let body = Tracked::new(rbody, Arc::new(AtomicU64::new(0)), idle, Some(on_end)).boxed_unsync();
    Response::from_parts(rp, body)
}

async fn connect(proxy: Arc<Proxy>, conn: Arc<ConnInfo>, mut req: Request<Incoming>, start: Instant) -> Response<Body> {
    let mut line = Line::new(&conn.client, "connect");
    line.method = "CONNECT".into();
    let Some(authority) = req.uri().authority().cloned() else {
        return proxy.refuse(line, Deny::new(400, "bad_host", "CONNECT needs `host:port`"), start, true);
    };
    line.target = printable(authority.as_str());
    if let Err(d) = framing(req.headers()) {
        return proxy.refuse(line, d, start, true);
    }
    let target = match parse_authority(authority.as_str()) {
        Ok(t) => t,
        Err(e) => return proxy.refuse(line, Deny::new(400, "bad_host", e.0), start, true),
    };
    line.target = target.to_string();
    let rules = proxy.rules.load_full();
    let rule = match rules.decide(&target) {
        Ok(a) => a.rule.clone(),
        Err(d) => return proxy.refuse(line, d, start, false),
    };
    line.rule = rule.label.clone();
    let intercept = rule.needs_http();
    if intercept && (proxy.intercept.is_none() || !rule.spec.tls) {
        let d = Deny::new(
            403,
            "intercept_unavailable",
            format!(
                "requests to `{}` carry a credential or are checked by method/path, so the proxy must see them: send http://{}/… through the proxy, or start it with --intercept-ca-dir",
                target.host, target.host
            ),
        );
        return proxy.refuse(line, d, start, false);
    }
    let addrs = match proxy.addresses(&target.host, target.port, &rule).await {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, false),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    if intercept {
        tokio::spawn(intercepted_tunnel(proxy, conn, on_upgrade, line, target, start));
        return Response::new(full(Bytes::new()));
    }
    let (upstream, addr) = match proxy.upstreams.connect_tcp(&addrs, target.port).await {
        Ok(x) => x,
        Err(d) => return proxy.refuse(line, d, start, false),
    };
    line.upstream = addr.to_string();
    tokio::spawn(pass_through(proxy, conn, on_upgrade, line, target, rule, upstream, start));
    Response::new(full(Bytes::new()))
}

async fn upgraded(on_upgrade: hyper::upgrade::OnUpgrade) -> Option<(ClientIo, Bytes)> {
    let up = on_upgrade.await.ok()?;
    let parts = up.downcast::<TokioIo<Sniff<ClientIo>>>().ok()?;
    Some((parts.io.into_inner().into_inner(), parts.read_buf))
}

#[allow(clippy::too_many_arguments)]
async fn pass_through(
    proxy: Arc<Proxy>,
    conn: Arc<ConnInfo>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    mut line: Line,
    target: Target,
    rule: Rule,
    mut upstream: tokio::net::TcpStream,
    start: Instant,
) {
    let Some((mut client, early)) = upgraded(on_upgrade).await else { return };
    let _conn = conn;
    proxy.metrics.active_tunnels.inc();
    // Copy what hyper read past the CONNECT head, and let its buffer go.
    let mut first = early.to_vec();
    drop(early);
    if rule.spec.tls {
        let hello = tunnel::client_hello(&mut client, &mut first, proxy.config.limits.header_timeout).await;
        if let Err((d, reply)) = check_hello(&target, hello) {
            if let Some(reply) = reply {
                let _ = client.write_all(&reply).await;
            }
            line.refusal(&d);
            line.took(start);
            proxy.finish(&line);
            proxy.metrics.active_tunnels.dec();
            return;
        }
    }
    let sent = first.len() as u64;
    if !first.is_empty() && upstream.write_all(&first).await.is_err() {
        proxy.metrics.active_tunnels.dec();
        return;
    }
    drop(first);
    let moved = tunnel::relay(&client, &upstream, &proxy.pipes, proxy.config.limits.idle_timeout).await;
    line.decision = "allow";
    line.status = 200;
    line.reason = "ok";
    line.bytes_up = moved.up + sent;
    line.bytes_down = moved.down;
    if moved.idle_closed {
        line.detail = "closed after the idle timeout".into();
    }
    line.took(start);
    proxy.metrics.relayed(line.bytes_up, line.bytes_down);
    proxy.finish(&line);
    proxy.metrics.active_tunnels.dec();
}

/// Check the first flight of a TLS tunnel; on refusal, what to send back.
fn check_hello(target: &Target, hello: Hello) -> Result<(), (Deny, Option<Vec<u8>>)> {
    match hello {
        Hello::Tls(sni) => {
            let ok = match (&target.host, sni.as_deref()) {
                (Host::Name(n), Some(s)) => s.eq_ignore_ascii_case(n),
                (Host::Name(_), None) => false,
                (Host::Ip(_), None) => true,
                (Host::Ip(ip), Some(s)) => s == ip.to_string(),
            };
            if ok {
                Ok(())
            } else {
                let detail = match sni {
                    Some(s) => {
                        format!("the TLS ClientHello names `{}` but CONNECT named `{}`", printable(&s), target.host)
                    }
                    None => format!("the TLS ClientHello names no server, CONNECT named `{}`", target.host),
                };
                Err((Deny::new(403, "sni_mismatch", detail), Some(tunnel::TLS_ACCESS_DENIED.to_vec())))
            }
        }
        Hello::NotTls { http } => {
            let detail =
                format!("`{target}` is allowed for TLS only, and the tunnel did not start with a TLS ClientHello");
            let reply = http.then(|| {
                let body = format!("semble-proxy: {detail}\n");
                format!(
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Semble-Reason: not_tls\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            });
            Err((Deny::new(403, "not_tls", detail), reply))
        }
        Hello::Invalid(e) => Err((
            Deny::new(
                403,
                "not_tls",
                format!("the tunnel's first bytes are not a usable TLS ClientHello ({})", printable(&e)),
            ),
            Some(tunnel::TLS_ACCESS_DENIED.to_vec()),
        )),
        Hello::Gone => Err((Deny::new(408, "no_client_hello", "the client sent no ClientHello in time"), None)),
    }
}

async fn intercepted_tunnel(
    proxy: Arc<Proxy>,
    conn: Arc<ConnInfo>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    mut line: Line,
    target: Target,
    start: Instant,
) {
    let Some((client, early)) = upgraded(on_upgrade).await else { return };
    let Some(ca) = &proxy.intercept else { return };
    let host = target.host.to_string();
    proxy.metrics.active_tunnels.inc();
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), Prefixed::new(early, client));
    let fail = |mut line: Line, d: Deny| {
        line.refusal(&d);
        line.took(start);
        proxy.finish(&line);
        proxy.metrics.active_tunnels.dec();
    };
    let handshake = match tokio::time::timeout(proxy.config.limits.header_timeout, acceptor).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            return fail(
                line,
                Deny::new(403, "not_tls", format!("the tunnel did not start with a TLS ClientHello ({e})")),
            );
        }
        Err(_) => return fail(line, Deny::new(408, "no_client_hello", "the client sent no ClientHello in time")),
    };
    let sni = handshake.client_hello().server_name().map(str::to_string);
    if let Err((d, _)) = check_hello(&target, Hello::Tls(sni)) {
        return fail(line, d);
    }
    let cfg = match ca.server_config(&host) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                line,
                Deny::new(502, "intercept_failed", format!("cannot issue a certificate for `{host}`: {e}")),
            )
        }
    };
    let tls = match handshake.into_stream(cfg).await {
        Ok(t) => t,
        Err(e) => {
            let d = Deny::new(
                403,
                "client_tls",
                format!("TLS with the client failed ({e}); does the sandbox trust the intercept CA?"),
            );
            return fail(line, d);
        }
    };
    let ctx = Arc::new(target);
    let p = proxy.clone();
    let client_name = conn.client.clone();
    let (tls, notes) = Sniff::new(tls, proxy.config.limits.max_header_bytes);
    let svc = service_fn(move |req| {
        let (p, ctx, client, notes) = (p.clone(), ctx.clone(), client_name.clone(), notes.clone());
        async move { Ok::<_, Infallible>(inside(p, &client, &ctx, &notes, req).await) }
    });
    if let Err(e) = proxy.http1.serve_connection(TokioIo::new(tls), svc).await {
        proxy.connection_error(&conn.client, "intercept", &e);
    }
    line.decision = "allow";
    line.status = 200;
    line.reason = "intercepted";
    line.took(start);
    proxy.finish(&line);
    proxy.metrics.active_tunnels.dec();
}

/// One request inside an intercepted tunnel: decided like any other, and only to the host the
/// tunnel was opened for.
async fn inside(
    proxy: Arc<Proxy>,
    client: &str,
    target: &Target,
    notes: &Notes,
    req: Request<Incoming>,
) -> Response<Body> {
    let start = Instant::now();
    let mut line = Line::new(client, "intercept");
    line.method = printable(req.method().as_str());
    line.path = printable(req.uri().path());
    line.target = target.to_string();
    if let Some(note) = notes.next() {
        return proxy.refuse(line, Deny::new(400, "smuggling", note), start, true);
    }
    let close = has_body(req.headers());
    if let Err(d) = framing(req.headers()) {
        return proxy.refuse(line, d, start, true);
    }
    if let Some(a) = req.uri().authority() {
        let same = parse_authority(a.as_str())
            .ok()
            .or_else(|| parse_host(a.as_str()).ok().map(|h| Target { host: h, port: 443 }));
        if same.as_ref() != Some(target) {
            let d = Deny::new(
                421,
                "host_mismatch",
                format!("this tunnel is for `{target}`, not `{}`", printable(a.as_str())),
            );
            return proxy.refuse(line, d, start, close);
        }
    }
    let hh = req.headers().get(HOST).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(hh) = hh {
        let ok = split_host_port(&hh)
            .ok()
            .and_then(|(h, p)| parse_host(h).ok().map(|h| (h, p.unwrap_or(443))))
            .is_some_and(|(h, p)| h == target.host && p == target.port);
        if !ok {
            let d = Deny::new(
                421,
                "host_mismatch",
                format!("this tunnel is for `{target}`, but the Host header names `{}`", printable(&hh)),
            );
            return proxy.refuse(line, d, start, close);
        }
    }
    let rules = proxy.rules.load_full();
    let rule = match rules.decide(target) {
        Ok(a) => a.rule.clone(),
        Err(d) => return proxy.refuse(line, d, start, close),
    };
    line.rule = rule.label.clone();
    let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    if let Err(d) = check_http(&rule, req.method().as_str(), &pq) {
        return proxy.refuse(line, d, start, close);
    }
    let addrs = match proxy.addresses(&target.host, target.port, &rule).await {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, close),
    };
    forward(proxy, line, &rule, &target.host, target.port, &addrs, req, pq, start).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-secret-hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn smuggling_shapes() {
        let mut h = HeaderMap::new();
        h.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
        h.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
        assert_eq!(framing(&h).unwrap_err().reason, "smuggling");
        let mut h = HeaderMap::new();
        h.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
        h.append(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert_eq!(framing(&h).unwrap_err().reason, "smuggling");
    }

    #[test]
    fn host_header_must_agree() {
        let mut h = HeaderMap::new();
        let host = Host::Name("a.test".into());
        h.insert(HOST, HeaderValue::from_static("a.test:80"));
        assert!(host_header_matches(&h, &host, None).is_ok());
        h.insert(HOST, HeaderValue::from_static("b.test"));
        assert_eq!(host_header_matches(&h, &host, None).unwrap_err().reason, "host_mismatch");
        h.insert(HOST, HeaderValue::from_static("a.test:8080"));
        assert!(host_header_matches(&h, &host, None).is_err());
    }

    #[test]
    fn sni_check() {
        let t = parse_authority("api.test:443").unwrap();
        assert!(check_hello(&t, Hello::Tls(Some("API.test".into()))).is_ok());
        assert_eq!(check_hello(&t, Hello::Tls(Some("evil.test".into()))).unwrap_err().0.reason, "sni_mismatch");
        assert_eq!(check_hello(&t, Hello::Tls(None)).unwrap_err().0.reason, "sni_mismatch");
        let (d, reply) = check_hello(&t, Hello::NotTls { http: true }).unwrap_err();
        assert_eq!(d.reason, "not_tls");
        assert!(reply.unwrap().starts_with(b"HTTP/1.1 403"));
    }
}
