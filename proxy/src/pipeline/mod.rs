//! The decision pipeline: every request, tunnel and intercepted request passes the same stages,
//! in this order, and the first that refuses answers (with its reason's one status,
//! [`crate::deny::Reason`]).
//!
//! | # | stage | decides |
//! |---|---|---|
//! | 1 | [`framing`] | the request's length has one reading (no smuggling) |
//! | 2 | [`target`] | which host and port it asks for, read strictly; URI and `Host` agree |
//! | 3 | [`host_rule`] | a rule allows host and port; how a `CONNECT` is carried |
//! | 4 | [`method_path`] | the rule's `methods` and `paths` admit it (where HTTP is seen) |
//! | 5 | [`addresses`] | every address the name resolves to may be reached |
//! | 6 | [`credential`] | the rule's credential, attached outside the sandbox |
//! | 7 | [`upstream`] | sent to a checked address: forwarded, tunnelled or intercepted |
//!
//! Three entry points compose them:
//!
//! * [`plain`] — `GET http://host/path` on a client connection: stages 1–7.
//! * [`connect`] — `CONNECT host:port`: stages 1, 2, 3, 5 and 7 (a tunnel cannot show its
//!   method, path or body: a rule that needs them gets its tunnel intercepted, or refused).
//! * [`inside`] — a request inside an intercepted tunnel: stages 1–7, its target the tunnel's.

pub mod addresses;
pub mod credential;
pub mod entry;
pub mod framing;
pub mod host_rule;
pub mod method_path;
pub mod target;
pub mod upstream;

use std::convert::Infallible;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::budget::ClientKey;
use crate::deny::Reason;
use crate::host::{printable, Target};
use crate::log::Line;
use crate::pool::Body;
use crate::sniff::{Notes, Sniff};
use crate::state::{ConnInfo, Proxy};
use entry::Entry;
use host_rule::Carry;

/// A plain (absolute-form) request.
pub async fn plain(
    proxy: Arc<Proxy>,
    conn: &ConnInfo,
    note: Option<&'static str>,
    req: Request<Incoming>,
    start: Instant,
) -> Response<Body> {
    let mut line = Line::new(&conn.client, "http");
    line.target = req.uri().authority().map(|a| printable(a.as_str())).unwrap_or_default();
    http(proxy, Entry::Plain, &conn.key, line, note, req, start).await
}

/// A request inside an intercepted tunnel for `tunnel`.
pub async fn inside(
    proxy: Arc<Proxy>,
    conn: &ConnInfo,
    tunnel: &Target,
    note: Option<&'static str>,
    req: Request<Incoming>,
) -> Response<Body> {
    let mut line = Line::new(&conn.client, "intercept");
    line.target = tunnel.to_string();
    http(proxy, Entry::Inside(tunnel), &conn.key, line, note, req, Instant::now()).await
}

/// Stages 1–7 for a request the proxy reads as HTTP.
async fn http(
    proxy: Arc<Proxy>,
    entry: Entry<'_>,
    key: &ClientKey,
    mut line: Line,
    note: Option<&'static str>,
    req: Request<Incoming>,
    start: Instant,
) -> Response<Body> {
    line.method = printable(req.method().as_str());
    line.path = printable(req.uri().path());
    // 1. framing
    let framing = match framing::check(note, req.headers()) {
        Ok(f) => f,
        Err(d) => return proxy.refuse(line, d, start, true),
    };
    let close = framing.has_body;
    // 2. target
    let asked = match target::read(entry, req.uri(), req.headers()) {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, close),
    };
    line.target = asked.shown();
    // 3. host rule
    let rules = proxy.rules.load_full();
    let allowed = match host_rule::decide(&rules, entry, &asked, proxy.intercept.is_some()) {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, close),
    };
    drop(rules);
    let (rule, port, host) = (allowed.rule, allowed.port, asked.host);
    line.rule = rule.label.clone();
    line.target = Target { host: host.clone(), port }.to_string();
    // 4. method and path
    let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let inspect = match method_path::check(entry, &rule, req.method().as_str(), &pq, req.headers()) {
        Ok(i) => i,
        Err(d) => return proxy.refuse(line, d, start, close),
    };
    // 5. addresses
    let addrs = match addresses::check(&proxy, &host, port, &rule).await {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, close),
    };
    // 6. credential, on the request as it will leave
    let tls = rule.spec.tls_on(port);
    let (mut parts, body) = req.into_parts();
    let authority = match upstream::outgoing(&mut parts, &host, port, tls, &pq) {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, close),
    };
    let up_count = Arc::new(AtomicU64::new(0));
    let attached =
        match credential::attach(&proxy, key, &rule, inspect, &mut parts, &authority, body, up_count.clone()).await {
            Ok(a) => a,
            Err(d) => {
                let body_lost = matches!(d.reason, Reason::BodyTooLarge | Reason::BodyFailed);
                return proxy.refuse(line, d, start, body_lost);
            }
        };
    // 7. upstream
    upstream::send(proxy, line, &host, port, tls, &addrs, parts, attached, up_count, start).await
}

/// A `CONNECT`: answered `200` once stages 1, 2, 3 and 5 allowed it; the tunnel (stage 7) then
/// runs on its own task. A refused `CONNECT` closes the connection: the framing watch stops at
/// a `CONNECT` (what follows is a tunnel's bytes), so nothing more is read as requests there.
pub async fn connect(
    proxy: Arc<Proxy>,
    conn: Arc<ConnInfo>,
    note: Option<&'static str>,
    mut req: Request<Incoming>,
    start: Instant,
) -> Response<Body> {
    let mut line = Line::new(&conn.client, "connect");
    line.method = "CONNECT".into();
    line.target = req.uri().authority().map(|a| printable(a.as_str())).unwrap_or_default();
    // 1. framing
    if let Err(d) = framing::check(note, req.headers()) {
        return proxy.refuse(line, d, start, true);
    }
    // 2. target
    let asked = match target::read(Entry::Connect, req.uri(), req.headers()) {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, true),
    };
    line.target = asked.shown();
    // 3. host rule
    let rules = proxy.rules.load_full();
    let allowed = match host_rule::decide(&rules, Entry::Connect, &asked, proxy.intercept.is_some()) {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, true),
    };
    drop(rules);
    let target = Target { host: asked.host, port: allowed.port };
    line.rule = allowed.rule.label.clone();
    // 5. addresses
    let addrs = match addresses::check(&proxy, &target.host, target.port, &allowed.rule).await {
        Ok(a) => a,
        Err(d) => return proxy.refuse(line, d, start, true),
    };
    // 7. upstream
    let on_upgrade = hyper::upgrade::on(&mut req);
    if allowed.carry == Carry::Intercept {
        tokio::spawn(intercepted(proxy, conn, on_upgrade, line, target, start));
        return Response::new(crate::body::full(Bytes::new()));
    }
    let (upstream, addr) = match proxy.upstreams.connect_tcp(&addrs, target.port).await {
        Ok(x) => x,
        Err(d) => return proxy.refuse(line, d, start, true),
    };
    line.upstream = addr.to_string();
    let tls = allowed.rule.spec.tls_on(target.port);
    tokio::spawn(upstream::tunnel(proxy, conn, on_upgrade, line, target, tls, upstream, start));
    Response::new(crate::body::full(Bytes::new()))
}

/// An intercepted tunnel: TLS with the client, then every request inside enters by [`inside`].
async fn intercepted(
    proxy: Arc<Proxy>,
    conn: Arc<ConnInfo>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    mut line: Line,
    target: Target,
    start: Instant,
) {
    let Some((client, early)) = upstream::upgraded(on_upgrade).await else { return };
    proxy.metrics.active_tunnels.inc();
    let tls = match upstream::accept_intercepted(&proxy, &target, client, early).await {
        Ok(t) => t,
        Err(d) => {
            line.refusal(&d);
            line.took(start);
            proxy.finish(&line);
            proxy.metrics.active_tunnels.dec();
            return;
        }
    };
    let target = Arc::new(target);
    let p = proxy.clone();
    let (tls, notes): (Sniff<_>, Notes) = Sniff::new(tls, proxy.config.limits.max_header_bytes);
    let c = conn.clone();
    let svc = service_fn(move |req| {
        let (p, target, conn, notes) = (p.clone(), target.clone(), c.clone(), notes.clone());
        async move { Ok::<_, Infallible>(inside(p, &conn, &target, notes.next(), req).await) }
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
