//! `CONNECT` tunnels: the ClientHello check, then a zero-copy relay.
//!
//! For a rule that speaks TLS the proxy reads the client's first flight before forwarding a
//! byte of it and checks the ClientHello's server name (SNI) against the host the client named
//! in `CONNECT`: a tunnel opened for an allowed name cannot carry a TLS session for another
//! (domain fronting by SNI). Plain HTTP sent into such a tunnel is answered with `403` inside it.
//! The ClientHello is parsed by rustls's `Acceptor`, not by hand.
//!
//! The relay moves bytes with `splice(2)` through a pipe (socket → pipe → socket, no copy
//! through user space). Pipes come from a pool and go back as soon as a burst is forwarded,
//! so an idle tunnel holds two sockets, a task and a timer, nothing else.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, Interest};

use crate::net::{ClientIo, Side};
use crate::sys::{self, PipePool};

/// What the first flight of a tunnel turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// A TLS ClientHello with this server name (or none).
    Tls(Option<String>),
    /// Not TLS; `http` when it looks like a plaintext HTTP request.
    NotTls {
        /// Starts with an HTTP method.
        http: bool,
    },
    /// A TLS record that rustls could not read as a ClientHello.
    Invalid(String),
    /// The client closed, or sent nothing in time.
    Gone,
}

/// Largest first flight the proxy buffers (a ClientHello with post-quantum key shares is ~2 KiB).
const HELLO_MAX: usize = 64 * 1024;

/// Read the client's first flight into `buf` (which may already hold bytes) and classify it.
pub async fn client_hello(client: &mut ClientIo, buf: &mut Vec<u8>, wait: Duration) -> Hello {
    let deadline = tokio::time::Instant::now() + wait;
    let mut acceptor = rustls::server::Acceptor::default();
    let mut fed = 0;
    loop {
        if !buf.is_empty() {
            if buf[0] != 0x16 {
                let http = [&b"GET "[..], b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT "]
                    .iter()
                    .any(|m| buf.starts_with(m) || m.starts_with(buf));
                return Hello::NotTls { http };
            }
            while fed < buf.len() {
                let mut rest = &buf[fed..];
                match acceptor.read_tls(&mut rest) {
                    Ok(0) => break,
                    Ok(n) => fed += n,
                    Err(e) => return Hello::Invalid(e.to_string()),
                }
            }
            match acceptor.accept() {
                Ok(Some(accepted)) => return Hello::Tls(accepted.client_hello().server_name().map(str::to_string)),
                Ok(None) => {}
                Err((e, _alert)) => return Hello::Invalid(e.to_string()),
            }
        }
        if buf.len() >= HELLO_MAX {
            return Hello::Invalid("the first flight is larger than 64 KiB".into());
        }
        buf.reserve(4096);
        match tokio::time::timeout_at(deadline, client.read_buf(buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Hello::Gone,
            Ok(Ok(_)) => {}
        }
    }
}

/// A TLS `access_denied` alert, sent when a tunnel is cut after its ClientHello.
pub const TLS_ACCESS_DENIED: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31];

/// Bytes moved by a relay.
#[derive(Debug, Default, Clone, Copy)]
pub struct Moved {
    /// Client to upstream.
    pub up: u64,
    /// Upstream to client.
    pub down: u64,
    /// Closed for inactivity.
    pub idle_closed: bool,
}

struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Duration {
        let now = self.start.elapsed();
        now.saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Relay both directions until both ends have closed (half-close is passed on), or nothing
/// moved either way for `idle`.
pub async fn relay(client: &ClientIo, upstream: &tokio::net::TcpStream, pipes: &PipePool, idle: Duration) -> Moved {
    let act = Activity { start: Instant::now(), last_ms: AtomicU64::new(0) };
    let (up, down) = tokio::join!(pump(client, upstream, pipes, idle, &act), pump(upstream, client, pipes, idle, &act));
    let idle_closed = matches!(&up, Err(e) if e.kind() == io::ErrorKind::TimedOut)
        || matches!(&down, Err(e) if e.kind() == io::ErrorKind::TimedOut);
    let n = |r: &io::Result<u64>, partial: u64| r.as_ref().map(|n| *n).unwrap_or(partial);
    Moved { up: n(&up, 0), down: n(&down, 0), idle_closed }
}

/// One direction: `src` → pipe → `dst`, falling back to a user-space copy where the kernel
/// cannot splice (`EINVAL`).
///
/// Reading and writing overlap: while `dst` drains the pipe, more is spliced in behind it. A
/// splice into a pipe that already holds data can fail with `EAGAIN` because the *pipe* is full
/// (its slots, not its bytes), so only a splice into an empty pipe is taken as "the socket is
/// empty" and clears `src`'s readiness; otherwise the loop waits for `dst` to drain.
async fn pump(src: &impl Side, dst: &impl Side, pipes: &PipePool, idle: Duration, act: &Activity) -> io::Result<u64> {
    let mut total = 0u64;
    let mut pipe: Option<sys::Pipe> = None;
    let result: io::Result<()> = async {
        let mut held = 0usize;
        let mut eof = false;
        loop {
            let mut progress = false;
            let mut src_empty = false;
            if !eof {
                let p = match &pipe {
                    Some(p) => p,
                    None => pipe.insert(pipes.get()?),
                };
                if held < p.cap {
                    let splice_in = || sys::splice_nb(src.fd(), &p.w, p.cap - held);
                    let got = if held == 0 { src.try_io_with(Interest::READABLE, splice_in) } else { splice_in() };
                    match got {
                        Ok(0) => eof = true,
                        Ok(n) => {
                            held += n;
                            total += n as u64;
                            progress = true;
                            act.touch();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => src_empty = held == 0,
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && total == 0 => {
                            if let Some(p) = pipe.take() {
                                pipes.put(p);
                            }
                            return copy(src, dst, idle, act, &mut total).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            if held > 0 {
                if let Some(p) = &pipe {
                    match dst.try_io_with(Interest::WRITABLE, || sys::splice_nb(&p.r, dst.fd(), held)) {
                        Ok(m) => {
                            held -= m;
                            progress = true;
                            // A slow reader draining what is queued is activity too.
                            act.touch();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if held == 0 {
                if eof {
                    return Ok(());
                }
                if src_empty {
                    // Nothing in flight: an idle tunnel holds no pipe.
                    if let Some(p) = pipe.take() {
                        pipes.put(p);
                    }
                    wait(src, Interest::READABLE, idle, act).await?;
                }
            } else if !progress {
                wait(dst, Interest::WRITABLE, idle, act).await?;
            }
        }
    }
    .await;
    if let Some(p) = pipe {
        // Close a pipe that may still hold bytes rather than pool it.
        if result.is_ok() {
            pipes.put(p);
        }
    }
    match result {
        Ok(()) => {
            sys::shutdown_write(dst.fd());
            Ok(total)
        }
        Err(e) => {
            // Wake the other direction: this tunnel is over.
            sys::shutdown_both(src.fd());
            sys::shutdown_both(dst.fd());
            if e.kind() == io::ErrorKind::TimedOut {
                Err(e)
            } else {
                Ok(total)
            }
        }
    }
}

/// Wait for `side` to become ready; `TimedOut` once nothing moved either way for `idle`.
async fn wait(side: &impl Side, interest: Interest, idle: Duration, act: &Activity) -> io::Result<()> {
    loop {
        match tokio::time::timeout(idle, side.ready_for(interest)).await {
            Ok(r) => return r,
            Err(_) if act.idle_for() >= idle => return Err(io::Error::new(io::ErrorKind::TimedOut, "idle")),
            Err(_) => {}
        }
    }
}

async fn copy(src: &impl Side, dst: &impl Side, idle: Duration, act: &Activity, total: &mut u64) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        wait(src, Interest::READABLE, idle, act).await?;
        let n = match src.try_io_with(Interest::READABLE, || {
            nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&src.fd()), &mut buf).map_err(io::Error::from)
        }) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        act.touch();
        let mut off = 0;
        while off < n {
            wait(dst, Interest::WRITABLE, idle, act).await?;
            match dst
                .try_io_with(Interest::WRITABLE, || nix::unistd::write(dst.fd(), &buf[off..n]).map_err(io::Error::from))
            {
                Ok(m) => {
                    off += m;
                    act.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        *total += n as u64;
    }
}
