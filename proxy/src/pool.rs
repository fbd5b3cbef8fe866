//! Connections to upstreams: TCP to a checked address, TLS (rustls) where the rule says the
//! upstream speaks it, HTTP/1.1 or HTTP/2 (chosen by ALPN), and a keep-alive pool.
//!
//! The pool is keyed by the *address* connected to and the TLS name, never by the name alone:
//! a request reuses a connection only when its own, fresh decision allowed that address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use crate::deny::{Deny, Reason};

/// Errors of bodies passed through.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of requests sent upstream and responses sent to clients.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Idle connections kept per key.
const POOL_PER_KEY: usize = 64;

/// Pooled connections are kept per worker thread: a connection's task runs on the thread that
/// opened it, so a request on that thread reuses it without a hop between threads.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Key {
    worker: usize,
    addr: SocketAddr,
    sni: Option<String>,
}

thread_local! {
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Name the current thread's worker index (see `server::start_workers`).
pub fn set_worker(i: usize) {
    WORKER.with(|w| w.set(i));
}

fn worker() -> usize {
    WORKER.with(std::cell::Cell::get)
}

/// A pooled HTTP/1.1 connection, lent for one request and returned when its response ends.
#[derive(Debug)]
pub struct Lease {
    key: Key,
    sender: http1::SendRequest<Body>,
    pool: Arc<Upstreams>,
}

impl Lease {
    /// Give the connection back (its response finished cleanly).
    pub fn release(self) {
        let Lease { key, sender, pool } = self;
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = pool.idle.lock() {
            let list = idle.entry(key).or_default();
            if list.len() < POOL_PER_KEY {
                list.push((sender, Instant::now()));
            }
        };
    }
}

/// A response from upstream.
#[derive(Debug)]
pub struct Sent {
    /// The response.
    pub response: Response<Incoming>,
    /// The address it came from.
    pub addr: SocketAddr,
    /// The HTTP/1.1 connection to return when the body ends (none for HTTP/2).
    pub lease: Option<Lease>,
    /// Time from sending to the response head.
    pub latency: Duration,
}

/// Idle HTTP/1.1 connections by key, with the time each went idle.
type IdleMap = HashMap<Key, Vec<(http1::SendRequest<Body>, Instant)>>;

/// Upstream connections.
#[derive(Debug)]
pub struct Upstreams {
    tls: Arc<rustls::ClientConfig>,
    idle: Mutex<IdleMap>,
    h2: Mutex<HashMap<Key, http2::SendRequest<Body>>>,
    connect_timeout: Duration,
    /// Set when no trusted roots could be loaded (upstream TLS will fail).
    pub roots_problem: Option<String>,
}

/// Build the TLS client configuration: `ca_file` alone when given, else the system roots.
pub fn client_tls(ca_file: Option<&Path>) -> Result<(rustls::ClientConfig, Option<String>), String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut problem = None;
    match ca_file {
        Some(p) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(p)
                .map_err(|e| format!("cannot read --upstream-ca {}: {e}", p.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("--upstream-ca {}: {e}", p.display()))?;
            if certs.is_empty() {
                return Err(format!("--upstream-ca {} holds no PEM certificates", p.display()));
            }
            for c in certs {
                roots.add(c).map_err(|e| format!("--upstream-ca {}: {e}", p.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                problem = Some("no trusted CA certificates were found on this system (install ca-certificates, or pass --upstream-ca)".to_string());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((cfg, problem))
}

enum Fresh {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

impl Upstreams {
    /// Create the pool.
    pub fn new(tls: rustls::ClientConfig, roots_problem: Option<String>, connect_timeout: Duration) -> Arc<Upstreams> {
        Arc::new(Upstreams {
            tls: Arc::new(tls),
            idle: Mutex::new(HashMap::new()),
            h2: Mutex::new(HashMap::new()),
            connect_timeout,
            roots_problem,
        })
    }

    /// Connect TCP to the first of `addrs` that answers (all already checked).
    pub async fn connect_tcp(&self, addrs: &[IpAddr], port: u16) -> Result<(TcpStream, SocketAddr), Deny> {
        let mut last = String::from("no address");
        for ip in addrs {
            let sa = SocketAddr::new(*ip, port);
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(sa)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok((s, sa));
                }
                Ok(Err(e)) => last = format!("{sa}: {e}"),
                Err(_) => last = format!("{sa}: no answer in {}", humantime::format_duration(self.connect_timeout)),
            }
        }
        Err(Deny::new(Reason::ConnectFailed, format!("cannot connect upstream ({last})")))
    }

    fn pooled(&self, addrs: &[IpAddr], port: u16, sni: Option<&str>) -> Option<(Key, Fresh)> {
        for ip in addrs {
            let key = Key { worker: worker(), addr: SocketAddr::new(*ip, port), sni: sni.map(str::to_string) };
            if let Ok(mut h2) = self.h2.lock() {
                if let Some(s) = h2.get(&key) {
                    if s.is_ready() {
                        return Some((key, Fresh::H2(s.clone())));
                    }
                    if s.is_closed() {
                        h2.remove(&key);
                    }
                }
            }
            if let Ok(mut idle) = self.idle.lock() {
                if let Some(list) = idle.get_mut(&key) {
                    while let Some((s, at)) = list.pop() {
                        if s.is_ready() && at.elapsed() < POOL_IDLE {
                            return Some((key, Fresh::H1(s)));
                        }
                    }
                }
            }
        }
        None
    }

    async fn open(&self, addrs: &[IpAddr], port: u16, sni: Option<&str>) -> Result<(Key, Fresh), Deny> {
        let (tcp, addr) = self.connect_tcp(addrs, port).await?;
        let key = Key { worker: worker(), addr, sni: sni.map(str::to_string) };
        match sni {
            None => {
                let (send, conn) = http1::Builder::new()
                    .handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| Deny::new(Reason::ConnectFailed, format!("upstream {addr}: {e}")))?;
                tokio::spawn(conn);
                Ok((key, Fresh::H1(send)))
            }
            Some(name) => {
                let server_name = ServerName::try_from(name.to_string())
                    .map_err(|_| Deny::new(Reason::BadHost, format!("`{name}` is not a TLS server name")))?;
                let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
                let tls = tokio::time::timeout(self.connect_timeout, connector.connect(server_name, tcp))
                    .await
                    .map_err(|_| {
                        Deny::new(Reason::UpstreamTimeout, format!("TLS with {name} ({addr}) did not complete in time"))
                    })?
                    .map_err(|e| {
                        let extra = self.roots_problem.as_deref().map(|p| format!("; {p}")).unwrap_or_default();
                        Deny::new(Reason::UpstreamTls, format!("TLS with {name} ({addr}) failed: {e}{extra}"))
                    })?;
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                if h2 {
                    let (send, conn) = http2::Builder::new(TokioExecutor::new())
                        .handshake(TokioIo::new(tls))
                        .await
                        .map_err(|e| Deny::new(Reason::ConnectFailed, format!("upstream {addr}: {e}")))?;
                    tokio::spawn(conn);
                    if let Ok(mut map) = self.h2.lock() {
                        map.insert(key.clone(), send.clone());
                    }
                    Ok((key, Fresh::H2(send)))
                } else {
                    let (send, conn) = http1::Builder::new()
                        .handshake(TokioIo::new(tls))
                        .await
                        .map_err(|e| Deny::new(Reason::ConnectFailed, format!("upstream {addr}: {e}")))?;
                    tokio::spawn(conn);
                    Ok((key, Fresh::H1(send)))
                }
            }
        }
    }

    /// Send `req` to one of `addrs` (TLS with `sni` when given). A pooled connection is tried
    /// first; when it turns out to have been closed under us and the request can be replayed
    /// (`retry` holds a copy), the copy goes on a fresh connection.
    pub async fn send(
        self: &Arc<Self>,
        addrs: &[IpAddr],
        port: u16,
        sni: Option<&str>,
        req: Request<Body>,
        retry: Option<Request<Body>>,
    ) -> Result<Sent, Deny> {
        let (req, retry) = match self.pooled(addrs, port, sni) {
            Some((key, conn)) => match self.dispatch(key, conn, req).await {
                Ok(sent) => return Ok(sent),
                Err((d, canceled)) => match retry {
                    Some(again) if canceled => (again, None),
                    _ => return Err(d),
                },
            },
            None => (req, retry),
        };
        drop(retry);
        let (key, conn) = self.open(addrs, port, sni).await?;
        self.dispatch(key, conn, req).await.map_err(|(d, _)| d)
    }

    async fn dispatch(self: &Arc<Self>, key: Key, conn: Fresh, req: Request<Body>) -> Result<Sent, (Deny, bool)> {
        let start = Instant::now();
        let addr = key.addr;
        let fail = |e: hyper::Error| {
            // A pooled connection the upstream closed before reading our request.
            let canceled = e.is_canceled() || e.is_incomplete_message();
            (Deny::new(Reason::UpstreamFailed, format!("upstream {addr}: {e}")), canceled)
        };
        match conn {
            Fresh::H1(mut s) => {
                if s.ready().await.is_err() {
                    return Err((
                        Deny::new(Reason::UpstreamFailed, format!("upstream {addr} closed the connection")),
                        true,
                    ));
                }
                let response = s.send_request(req).await.map_err(fail)?;
                let lease = Some(Lease { key, sender: s, pool: self.clone() });
                Ok(Sent { response, addr, lease, latency: start.elapsed() })
            }
            Fresh::H2(mut s) => {
                let mut req = req;
                // HTTP/2 carries the authority in :authority; hyper takes it from the URI.
                if let Some(host) =
                    req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string)
                {
                    let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
                    if let Ok(uri) =
                        http::Uri::builder().scheme("https").authority(host.as_str()).path_and_query(pq).build()
                    {
                        *req.uri_mut() = uri;
                    }
                    req.headers_mut().remove(http::header::HOST);
                }
                *req.version_mut() = http::Version::HTTP_2;
                let response = s.send_request(req).await.map_err(fail)?;
                Ok(Sent { response, addr, lease: None, latency: start.elapsed() })
            }
        }
    }

    /// Drop idle connections past their time (called periodically).
    pub fn sweep(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.retain(|_, list| {
                list.retain(|(s, at)| at.elapsed() < POOL_IDLE && !s.is_closed());
                !list.is_empty()
            });
        }
        if let Ok(mut h2) = self.h2.lock() {
            h2.retain(|_, s| !s.is_closed());
        }
    }
}
