//! Load generators for the proxy benchmarks that wrk cannot do (`tests/bench/proxy.sh` drives
//! them): bulk `CONNECT` throughput, and many idle tunnels.
//!
//! ```text
//! semble-proxy-bench source --listen 127.0.0.1:9000          # streams bytes to every connection
//! semble-proxy-bench sink   --listen 127.0.0.1:9443          # reads and discards, holds connections
//! semble-proxy-bench bulk   --target 127.0.0.1:9000 [--proxy ADDR --host NAME:PORT] --seconds 5
//! semble-proxy-bench idle   --proxy ADDR --host NAME:PORT --count 9900 --pid PID [--hello SNI]
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

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
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
            eprintln!("usage: semble-proxy-bench source|sink|bulk|idle … (see the source)");
            std::process::exit(2);
        }
    }
}
