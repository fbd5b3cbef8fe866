//! One client connection: its slot under `--max-connections`, the framing watch on its bytes,
//! HTTP/1.1 served by hyper, and each request handed to the pipeline's entry point.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::budget::ClientKey;
use crate::deny::{Deny, Reason};
use crate::log::Line;
use crate::net::ClientIo;
use crate::pipeline;
use crate::pool::Body;
use crate::sniff::Sniff;
use crate::state::{ConnInfo, Proxy};

/// Serve one client connection.
pub async fn serve(proxy: Arc<Proxy>, io: ClientIo, client: String, key: ClientKey) {
    let slots = proxy.connections.fetch_add(1, Ordering::Relaxed);
    if slots >= proxy.config.limits.max_connections {
        proxy.connections.fetch_sub(1, Ordering::Relaxed);
        let d = Deny::new(Reason::TooManyConnections, format!("{slots} connections are open (--max-connections)"));
        turn_away(&proxy, io, &client, &d).await;
        return;
    }
    let slot = match proxy.budgets.connection(&key) {
        Ok(s) => s,
        Err(d) => {
            proxy.connections.fetch_sub(1, Ordering::Relaxed);
            turn_away(&proxy, io, &client, &d).await;
            return;
        }
    };
    proxy.peak_connections.fetch_max(slots + 1, Ordering::Relaxed);
    proxy.metrics.active_connections.inc();
    let (io, notes) = Sniff::new(io, proxy.config.limits.max_header_bytes);
    let conn = Arc::new(ConnInfo::new(client.clone(), key, slot, notes, proxy.clone()));
    let p = proxy.clone();
    let svc = service_fn(move |req| handle(p.clone(), conn.clone(), req));
    let served = proxy.http1.serve_connection(TokioIo::new(io), svc).with_upgrades().await;
    if let Err(e) = served {
        proxy.connection_error(&client, "conn", &e);
    }
}

/// Refuse a connection before reading from it: one line, one response, closed.
async fn turn_away(proxy: &Proxy, mut io: ClientIo, client: &str, d: &Deny) {
    let mut line = Line::new(client, "conn");
    line.refusal(d);
    proxy.finish(&line);
    let body = format!("semble-proxy: {}\n", d.detail);
    let status = http::StatusCode::from_u16(d.status()).map(|s| s.to_string()).unwrap_or_default();
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nX-Semble-Reason: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        d.reason.code(),
        body.len()
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), io.write_all(msg.as_bytes())).await;
}

/// Hand one request to the pipeline's entry point for its kind.
async fn handle(proxy: Arc<Proxy>, conn: Arc<ConnInfo>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let note = conn.notes.next();
    if req.method() == Method::CONNECT {
        return Ok(pipeline::connect(proxy, conn, note, req, start).await);
    }
    Ok(pipeline::plain(proxy, &conn, note, req, start).await)
}
