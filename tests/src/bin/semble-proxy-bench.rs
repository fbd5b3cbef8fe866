//! Load generators for the proxy benchmarks that wrk cannot do (`tests/bench/proxy.sh` drives
//! them): bulk `CONNECT` throughput, and many idle tunnels.
//!
//! ```text
//! semble-proxy-bench source --listen 127.0.0.1:9000          # streams bytes to every connection
//! semble-proxy-bench sink   --listen 127.0.0.1:9443          # reads and discards, holds connections
//! semble-proxy-bench bulk   --target 127.0.0.1:9000 [--proxy ADDR --host NAME:PORT] --seconds 5
//! semble-proxy-bench idle   --proxy ADDR --host NAME:PORT --count 9900 --pid PID [--hello SNI]
//! semble-proxy-bench origin --listen 127.0.0.1:8081 [--size 1024]   # HTTP/1.1 upstream: GET gets SIZE bytes, anything else 200 after reading its body
//! semble-proxy-bench load   --proxy ADDR --url http://NAME:PORT/ --conns 64 --seconds 5 [--threads 2] [--from IP]
//!                           # keep-alive absolute-form GETs; prints `rps p50_ms p99_ms errors`
//! semble-proxy-bench abuse  --proxy ADDR --from 127.0.0.2 --conns 128 --url http://NAME:PORT/ --upload-url http://SIGNED:PORT/
//!                           --upload-bytes 33554432 --upload-send 32505856 --seconds 12 [--pid PID]
//!                           # one client at its per-client limits: conns-1 unfinished ~30 KB heads, one signed upload
//!                           # holding its body budget, and further connections and uploads tried all along;
//!                           # prints `held_heads uploads_held refused_conns refused_uploads other max_rss_kib`
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark tool: failing loudly is right

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn need(args: &[String], name: &str) -> String {
    arg(args, name).unwrap_or_else(|| panic!("missing {name}"))
}

/// Open a tunnel through `proxy` to `host` (`name:port`).
async fn tunnel(proxy: SocketAddr, host: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(proxy).await?;
    s.set_nodelay(true)?;
    s.write_all(format!("CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).await?;
    let mut head = Vec::with_capacity(128);
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await? == 0 {
            return Err(std::io::Error::other("proxy closed during CONNECT"));
        }
        head.push(b[0]);
    }
    if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
        return Err(std::io::Error::other(format!("CONNECT refused: {}", String::from_utf8_lossy(&head))));
    }
    Ok(s)
}

/// A real ClientHello for `sni` (what a TLS client sends first).
fn client_hello(sni: &str) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut c = rustls::ClientConnection::new(Arc::new(cfg), sni.to_string().try_into().unwrap()).unwrap();
    let mut out = Vec::new();
    c.write_tls(&mut out).unwrap();
    out
}

fn rss_kib(pid: &str) -> u64 {
    // Sum over the process and its children (squid runs a worker process).
    let mut total = 0;
    let mut pids = vec![pid.to_string()];
    if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        pids.extend(children.split_whitespace().map(str::to_string));
    }
    for p in pids {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/status")) {
            total += s
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// Read an HTTP/1.1 response (head, then a `Content-Length` body) from `s`, keeping what
/// follows in `buf`. Returns the status.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::Error::other("closed in a body"));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..end + 4 + len);
            return Ok(status);
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Connect to `to`, from the source address `from` when given.
async fn dial(to: SocketAddr, from: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let sock = if to.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    if let Some(ip) = from {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let s = sock.connect(to).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn host_of(url: &str) -> String {
    url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("").to_string()
}

/// The `origin` upstream: one task per connection, requests read and answered in turn.
async fn origin(listen: String, size: usize) {
    let l = TcpListener::bind(listen).await.unwrap();
    let body = Arc::new(vec![b'a'; size]);
    loop {
        let Ok((mut s, _)) = l.accept().await else { continue };
        let _ = s.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            let mut chunk = [0u8; 16384];
            loop {
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < end + 4 + len {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..end + 4 + len);
                let reply = if head.starts_with("get ") { &body[..] } else { &b"ok"[..] };
                let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", reply.len()).into_bytes();
                out.extend_from_slice(reply);
                if s.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Keep-alive GETs on `conns` connections for `seconds`: requests per second, p50 and p99 in
/// milliseconds, errors.
async fn load(proxy: SocketAddr, url: String, conns: usize, seconds: f64, from: Option<std::net::IpAddr>) {
    let host = host_of(&url);
    let req = Arc::new(format!("GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes());
    let warmup = Duration::from_millis(500);
    let start = Instant::now() + warmup;
    let end = start + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(64 * 1024);
            let mut errors = 0u64;
            let mut s = match dial(proxy, from).await {
                Ok(s) => s,
                Err(_) => return (lat, 1),
            };
            let mut buf = Vec::with_capacity(4096);
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let ok = s.write_all(&req).await.is_ok() && matches!(read_response(&mut s, &mut buf).await, Ok(200));
                if !ok {
                    errors += 1;
                    buf.clear();
                    match dial(proxy, from).await {
                        Ok(n) => s = n,
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                    continue;
                }
                if t >= start {
                    lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    // Nearest rank: the index is small and non-negative, the cast exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let pct = |p: f64| all.get(((all.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0) as f64 / 1000.0;
    let rps = all.len() as f64 / seconds;
    println!("{rps:.0} {:.3} {:.3} {errors}", pct(0.50), pct(0.99));
}

/// One client at its per-client limits (see the module docs).
#[allow(clippy::too_many_arguments)]
async fn abuse(
    proxy: SocketAddr,
    from: std::net::IpAddr,
    conns: usize,
    url: String,
    upload_url: String,
    upload_bytes: usize,
    upload_send: usize,
    seconds: f64,
    pid: Option<String>,
) {
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let held = Arc::new(AtomicU64::new(0));
    let uploads = Arc::new(AtomicU64::new(0));
    let refused_conns = Arc::new(AtomicU64::new(0));
    let refused_uploads = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let host = host_of(&url);
    let mut pad = format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nX-Pad: ").into_bytes();
    pad.extend(std::iter::repeat_n(b'a', 30_000));
    let pad = Arc::new(pad);
    let mut tasks = Vec::new();
    // Unfinished heads, re-opened when the header timeout closes them.
    for _ in 0..conns.saturating_sub(1) {
        let (pad, held) = (pad.clone(), held.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let Ok(mut s) = dial(proxy, Some(from)).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if s.write_all(&pad).await.is_err() {
                    continue;
                }
                held.fetch_add(1, Ordering::Relaxed);
                let mut b = [0u8; 512];
                let _ = tokio::time::timeout_at(end.into(), s.read(&mut b)).await;
                held.fetch_sub(1, Ordering::Relaxed);
            }
        }));
    }
    // One signed upload that sends most of its declared body and then stalls.
    let up_host = host_of(&upload_url);
    let head = Arc::new(
        format!("POST {upload_url} HTTP/1.1\r\nHost: {up_host}\r\nContent-Length: {upload_bytes}\r\n\r\n").into_bytes(),
    );
    {
        let (head, uploads) = (head.clone(), uploads.clone());
        tasks.push(tokio::spawn(async move {
            let chunk = vec![b'u'; 256 * 1024];
            while Instant::now() < end {
                let Ok(mut s) = dial(proxy, Some(from)).await else { continue };
                if s.write_all(&head).await.is_err() {
                    continue;
                }
                let mut sent = 0;
                while sent < upload_send {
                    let n = chunk.len().min(upload_send - sent);
                    if s.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                    sent += n;
                }
                uploads.fetch_add(1, Ordering::Relaxed);
                let mut b = [0u8; 512];
                let _ = tokio::time::timeout_at(end.into(), s.read(&mut b)).await;
                uploads.fetch_sub(1, Ordering::Relaxed);
            }
        }));
    }
    // More connections and uploads, tried all along: refused at once while at the limits.
    {
        let (head, rc, ru, other) = (head.clone(), refused_conns.clone(), refused_uploads.clone(), other.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            while Instant::now() < end {
                for upload in [false, true] {
                    let Ok(mut s) = dial(proxy, Some(from)).await else { continue };
                    if upload {
                        let _ = s.write_all(&head).await;
                    }
                    let mut buf = Vec::new();
                    let r = tokio::time::timeout(Duration::from_secs(2), read_response(&mut s, &mut buf)).await;
                    match r {
                        Ok(Ok(429)) if upload => ru.fetch_add(1, Ordering::Relaxed),
                        Ok(Ok(429)) => rc.fetch_add(1, Ordering::Relaxed),
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    let mut max_rss = 0;
    let mut at_limits = (0, 0);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(p) = &pid {
            max_rss = max_rss.max(rss_kib(p));
        }
        at_limits = (at_limits.0.max(held.load(Ordering::Relaxed)), at_limits.1.max(uploads.load(Ordering::Relaxed)));
    }
    for t in tasks {
        t.abort();
    }
    println!(
        "{} {} {} {} {} {max_rss}",
        at_limits.0,
        at_limits.1,
        refused_conns.load(Ordering::Relaxed),
        refused_uploads.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads").map(|s| s.parse().unwrap()).unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    rt.block_on(run(args));
}

async fn run(args: Vec<String>) {
    match args.get(1).map(String::as_str) {
        Some("origin") => {
            let size = arg(&args, "--size").map(|s| s.parse().unwrap()).unwrap_or(1024);
            origin(need(&args, "--listen"), size).await;
        }
        Some("load") => {
            let from = arg(&args, "--from").map(|s| s.parse().unwrap());
            load(
                need(&args, "--proxy").parse().unwrap(),
                need(&args, "--url"),
                arg(&args, "--conns").map(|s| s.parse().unwrap()).unwrap_or(64),
                arg(&args, "--seconds").map(|s| s.parse().unwrap()).unwrap_or(5.0),
                from,
            )
            .await;
        }
        Some("abuse") => {
            abuse(
                need(&args, "--proxy").parse().unwrap(),
                need(&args, "--from").parse().unwrap(),
                need(&args, "--conns").parse().unwrap(),
                need(&args, "--url"),
                need(&args, "--upload-url"),
                need(&args, "--upload-bytes").parse().unwrap(),
                need(&args, "--upload-send").parse().unwrap(),
                arg(&args, "--seconds").map(|s| s.parse().unwrap()).unwrap_or(12.0),
                arg(&args, "--pid"),
            )
            .await;
        }
        Some("source") => {
            let l = TcpListener::bind(need(&args, "--listen")).await.unwrap();
            let chunk = vec![0u8; 256 * 1024];
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let chunk = chunk.clone();
                tokio::spawn(async move { while s.write_all(&chunk).await.is_ok() {} });
            }
        }
        Some("sink") => {
            let l = TcpListener::bind(need(&args, "--listen")).await.unwrap();
            loop {
                let Ok((mut s, _)) = l.accept().await else { continue };
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        }
        Some("bulk") => {
            let seconds: u64 = arg(&args, "--seconds").map(|s| s.parse().unwrap()).unwrap_or(5);
            let mut s = match arg(&args, "--proxy") {
                Some(p) => tunnel(p.parse().unwrap(), &need(&args, "--host")).await.unwrap(),
                None => TcpStream::connect(need(&args, "--target")).await.unwrap(),
            };
            let mut buf = vec![0u8; 256 * 1024];
            // Warm up, then measure.
            let warm = Instant::now();
            while warm.elapsed() < Duration::from_millis(500) {
                let _ = s.read(&mut buf).await.unwrap();
            }
            let (start, mut n) = (Instant::now(), 0u64);
            while start.elapsed() < Duration::from_secs(seconds) {
                n += s.read(&mut buf).await.unwrap() as u64;
            }
            let gbps = n as f64 * 8.0 / start.elapsed().as_secs_f64() / 1e9;
            println!("{gbps:.3}");
        }
        Some("idle") => {
            let proxy: SocketAddr = need(&args, "--proxy").parse().unwrap();
            let host = need(&args, "--host");
            let count: usize = need(&args, "--count").parse().unwrap();
            let pid = need(&args, "--pid");
            let hello = arg(&args, "--hello").map(|sni| client_hello(&sni));
            // Warm the proxy up with a few tunnels first, so the baseline holds its runtime.
            let mut warm = Vec::new();
            for _ in 0..16 {
                warm.push(tunnel(proxy, &host).await.unwrap());
            }
            drop(warm);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let base = rss_kib(&pid);
            let open = Arc::new(AtomicU64::new(0));
            let mut held = Vec::with_capacity(count);
            for i in 0..count {
                let mut s = match tunnel(proxy, &host).await {
                    Ok(s) => s,
                    Err(e) => panic!("tunnel {i}: {e}"),
                };
                if let Some(h) = &hello {
                    s.write_all(h).await.unwrap();
                }
                held.push(s);
                open.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let full = rss_kib(&pid);
            drop(held);
            // semble-proxy gives memory back on its 10 s housekeeping tick.
            tokio::time::sleep(Duration::from_secs(12)).await;
            let after = rss_kib(&pid);
            let per = (full.saturating_sub(base)) as f64 / count as f64;
            println!("{count} {base} {full} {after} {per:.2}");
        }
        _ => {
            eprintln!("usage: semble-proxy-bench source|sink|bulk|idle|origin|load|abuse … (see the source)");
            std::process::exit(2);
        }
    }
}
