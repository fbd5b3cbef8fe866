//! Stage 7, upstream: the allowed request goes to one of the addresses stage 5 checked.
//!
//! * HTTP (plain and intercepted requests): sent over a pooled or fresh connection
//!   ([`crate::pool`]), TLS where the rule says the upstream speaks it; the response streams
//!   back and the decision is logged when it ends.
//! * `CONNECT` tunnels: for a TLS rule the client's first flight must be a TLS ClientHello
//!   naming the host `CONNECT` named (domain fronting by SNI is refused), then bytes are relayed
//!   with `splice(2)` ([`crate::tunnel`]).
//! * intercepted tunnels: TLS with the client, a certificate for the tunnel's host from the
//!   intercept CA ([`crate::intercept`]); each request inside enters the pipeline again.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, HOST};
use http::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::credential::Attached;
use crate::body::{full, Tracked};
use crate::deny::{Deny, Reason};
use crate::host::{printable, Host, Target};
use crate::log::Line;
use crate::net::{ClientIo, Prefixed};
use crate::pool::Body;
use crate::sniff::Sniff;
use crate::state::{ConnInfo, Proxy};
use crate::tls;
use crate::tunnel::{self, Hello};

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

/// Remove hop-by-hop headers and those the `Connection` header lists.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
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

/// `host[:port]` as it goes into `Host`, with the default port of the scheme left out.
fn authority_for(host: &Host, port: u16, tls: bool) -> String {
    let default = if tls { 443 } else { 80 };
    if port == default {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

/// Turn the request head into the one that leaves: hop-by-hop headers removed, origin-form
/// `pq`, HTTP/1.1, the upstream's `Host`. Returns that `Host` value.
pub fn outgoing(parts: &mut http::request::Parts, host: &Host, port: u16, tls: bool, pq: &str) -> Result<String, Deny> {
    strip_hop_by_hop(&mut parts.headers);
    let authority = authority_for(host, port, tls);
    parts.uri = pq.parse().map_err(|_| Deny::new(Reason::Malformed, "the request path is not a valid URI"))?;
    parts.version = http::Version::HTTP_11;
    let v = HeaderValue::from_str(&authority).map_err(|_| Deny::new(Reason::BadHost, "the host cannot be a header"))?;
    parts.headers.insert(HOST, v);
    Ok(authority)
}

/// Send an allowed request upstream and stream the response back; the decision is logged when
/// the response ends.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    proxy: Arc<Proxy>,
    mut line: Line,
    host: &Host,
    port: u16,
    tls: bool,
    addrs: &[IpAddr],
    parts: http::request::Parts,
    attached: Attached,
    up_count: Arc<AtomicU64>,
    start: Instant,
) -> Response<Body> {
    let Attached { body, replay, credential, budget } = attached;
    if let Some(c) = credential {
        line.credential = c;
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
    let sent = proxy.upstreams.send(addrs, port, tls.then_some(sni.as_str()), req, retry).await;
    // The body has gone (or will not): its reservation ends.
    drop(budget);
    let sent = match sent {
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
    let idle = proxy.config.limits.idle_timeout;
    let body = Tracked::new(rbody, Arc::new(AtomicU64::new(0)), idle, Some(on_end));
    Response::from_parts(rp, http_body_util::BodyExt::boxed_unsync(body))
}

/// The client's connection once hyper hands it over after `200` to `CONNECT`, with the bytes
/// hyper had already read past the head.
pub async fn upgraded(on_upgrade: hyper::upgrade::OnUpgrade) -> Option<(ClientIo, Bytes)> {
    let up = on_upgrade.await.ok()?;
    let parts = up.downcast::<TokioIo<Sniff<ClientIo>>>().ok()?;
    Some((parts.io.into_inner().into_inner(), parts.read_buf))
}

/// Relay a tunnel (after the ClientHello check, for a TLS rule) until both ends close.
#[allow(clippy::too_many_arguments)]
pub async fn tunnel(
    proxy: Arc<Proxy>,
    conn: Arc<ConnInfo>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    mut line: Line,
    target: Target,
    tls: bool,
    mut upstream: tokio::net::TcpStream,
    start: Instant,
) {
    let Some((mut client, early)) = upgraded(on_upgrade).await else { return };
    let _conn = conn;
    proxy.metrics.active_tunnels.inc();
    // Copy what hyper read past the CONNECT head, and let its buffer go.
    let mut first = early.to_vec();
    drop(early);
    if tls {
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
    // For a TLS rule only the checked ClientHello goes on now; what followed it is watched.
    let split = if tls { tls::first_message_records_len(&first).unwrap_or(first.len()) } else { first.len() };
    let rest = first.split_off(split);
    let sent = first.len() as u64;
    if !first.is_empty() && upstream.write_all(&first).await.is_err() {
        proxy.metrics.active_tunnels.dec();
        return;
    }
    drop(first);
    let idle = proxy.config.limits.idle_timeout;
    let (moved, cut) = if tls {
        // Every later ClientHello (after a HelloRetryRequest) is checked like the first.
        let t = target.clone();
        let check = move |records: &[u8]| match tunnel::parse_hello(records) {
            Some(h) => check_hello(&t, h).map_err(|(d, _)| format!("second ClientHello: {}", d.detail)),
            None => Err("second ClientHello: incomplete".to_string()),
        };
        tunnel::relay_tls(&client, &upstream, &rest, &proxy.pipes, idle, &check).await
    } else {
        (tunnel::relay(&client, &upstream, &proxy.pipes, idle).await, None)
    };
    line.bytes_up = moved.up + sent;
    line.bytes_down = moved.down;
    match cut {
        Some(why) => {
            let reason = if why.starts_with("second ClientHello") {
                if why.contains("Encrypted Client Hello") {
                    Reason::EchRefused
                } else {
                    Reason::SniMismatch
                }
            } else if why.contains("renegotiation") {
                Reason::TlsRenegotiation
            } else {
                Reason::NotTls
            };
            line.refusal(&Deny::new(reason, why));
        }
        None => {
            line.decision = "allow";
            line.status = 200;
            line.reason = "ok";
            if moved.idle_closed {
                line.detail = "closed after the idle timeout".into();
            }
        }
    }
    line.took(start);
    proxy.metrics.relayed(line.bytes_up, line.bytes_down);
    proxy.finish(&line);
    proxy.metrics.active_tunnels.dec();
}

/// Check the first flight of a TLS tunnel; on refusal, what to send back.
pub fn check_hello(target: &Target, hello: Hello) -> Result<(), (Deny, Option<Vec<u8>>)> {
    match hello {
        Hello::Tls { ech: true, .. } => Err((
            Deny::new(
                Reason::EchRefused,
                format!(
                    "the TLS ClientHello to `{}` carries Encrypted Client Hello: the server would act on a name the proxy cannot read; turn ECH off in the client, or have the rule's requests intercepted",
                    target.host
                ),
            ),
            Some(tunnel::TLS_ACCESS_DENIED.to_vec()),
        )),
        Hello::Tls { sni, ech: false } => {
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
                Err((Deny::new(Reason::SniMismatch, detail), Some(tunnel::TLS_ACCESS_DENIED.to_vec())))
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
            Err((Deny::new(Reason::NotTls, detail), reply))
        }
        Hello::Invalid(e) => Err((
            Deny::new(
                Reason::NotTls,
                format!("the tunnel's first bytes are not a usable TLS ClientHello ({})", printable(&e)),
            ),
            Some(tunnel::TLS_ACCESS_DENIED.to_vec()),
        )),
        Hello::Gone => Err((Deny::new(Reason::NoClientHello, "the client sent no ClientHello in time"), None)),
    }
}

/// TLS with the client of an intercepted tunnel, presenting a certificate for `target`.
pub async fn accept_intercepted(
    proxy: &Proxy,
    target: &Target,
    client: ClientIo,
    early: Bytes,
) -> Result<tokio_rustls::server::TlsStream<Prefixed<ClientIo>>, Deny> {
    let Some(ca) = &proxy.intercept else {
        return Err(Deny::new(Reason::InterceptUnavailable, "no intercept CA is configured"));
    };
    let host = target.host.to_string();
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), Prefixed::new(early, client));
    let handshake = match tokio::time::timeout(proxy.config.limits.header_timeout, acceptor).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            return Err(Deny::new(Reason::NotTls, format!("the tunnel did not start with a TLS ClientHello ({e})")));
        }
        Err(_) => return Err(Deny::new(Reason::NoClientHello, "the client sent no ClientHello in time")),
    };
    let sni = handshake.client_hello().server_name().map(str::to_string);
    // The proxy terminates this TLS itself: an ECH extension reaches no one, only the name matters.
    check_hello(target, Hello::Tls { sni, ech: false }).map_err(|(d, _)| d)?;
    let cfg = ca
        .server_config(&host)
        .map_err(|e| Deny::new(Reason::InterceptFailed, format!("cannot issue a certificate for `{host}`: {e}")))?;
    handshake.into_stream(cfg).await.map_err(|e| {
        Deny::new(
            Reason::ClientTls,
            format!("TLS with the client failed ({e}); does the sandbox trust the intercept CA?"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::parse_authority;

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
    fn sni_check() {
        let t = parse_authority("api.test:443").unwrap();
        let tls = |sni: Option<&str>, ech| Hello::Tls { sni: sni.map(str::to_string), ech };
        assert!(check_hello(&t, tls(Some("API.test"), false)).is_ok());
        assert_eq!(check_hello(&t, tls(Some("evil.test"), false)).unwrap_err().0.reason, Reason::SniMismatch);
        assert_eq!(check_hello(&t, tls(None, false)).unwrap_err().0.reason, Reason::SniMismatch);
        assert_eq!(check_hello(&t, tls(Some("api.test"), true)).unwrap_err().0.reason, Reason::EchRefused);
        let (d, reply) = check_hello(&t, Hello::NotTls { http: true }).unwrap_err();
        assert_eq!(d.reason, Reason::NotTls);
        assert!(reply.unwrap().starts_with(b"HTTP/1.1 403"));
    }
}
