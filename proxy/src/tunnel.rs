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
use crate::tls::{self, Step, Watch};

/// What the first flight of a tunnel turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// A TLS ClientHello with this server name (or none), and whether it carries Encrypted
    /// Client Hello (or the older encrypted SNI).
    Tls {
        /// The SNI.
        sni: Option<String>,
        /// An ECH (or ESNI) extension is present.
        ech: bool,
    },
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

/// Read a ClientHello from `records` (record-layer bytes, complete): rustls's `Acceptor`
/// parses and validates it and gives the server name; the extension list is read for ECH.
/// `None` while incomplete.
pub fn parse_hello(records: &[u8]) -> Option<Hello> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rest = records;
    while !rest.is_empty() {
        match acceptor.read_tls(&mut rest) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Some(Hello::Invalid(e.to_string())),
        }
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => {
            let sni = accepted.client_hello().server_name().map(str::to_string);
            let Some(exts) = tls::first_handshake_message(records).and_then(|m| tls::client_hello_extensions(&m))
            else {
                return Some(Hello::Invalid("its extension list cannot be read".into()));
            };
            let ech = exts.iter().any(|t| *t == tls::EXT_ECH || *t == tls::EXT_ESNI);
            Some(Hello::Tls { sni, ech })
        }
        Ok(None) => None,
        Err((e, _alert)) => Some(Hello::Invalid(e.to_string())),
    }
}

/// Read the client's first flight into `buf` (which may already hold bytes) and classify it.
pub async fn client_hello(client: &mut ClientIo, buf: &mut Vec<u8>, wait: Duration) -> Hello {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if !buf.is_empty() {
            if buf[0] != 0x16 {
                let http = [&b"GET "[..], b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT "]
                    .iter()
                    .any(|m| buf.starts_with(m) || m.starts_with(buf));
                return Hello::NotTls { http };
            }
            if let Some(h) = parse_hello(buf) {
                return h;
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

thread_local! {
    /// The read buffer of watched tunnels on this worker thread.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 16 * 1024]);
}

/// Relay a TLS tunnel whose first ClientHello was checked: each direction is watched record by
/// record ([`crate::tls::Watch`]) — a second ClientHello (after a HelloRetryRequest) is held and
/// given to `check`, a TLS 1.2 renegotiation cuts the tunnel — and once a TLS 1.3 ServerHello
/// has gone by both directions switch to the `splice(2)` relay. Returns the bytes moved and, for
/// a cut tunnel, why.
/// `early` holds client bytes already read past its first ClientHello; they are watched like the
/// rest.
pub async fn relay_tls(
    client: &ClientIo,
    upstream: &tokio::net::TcpStream,
    early: &[u8],
    pipes: &PipePool,
    idle: Duration,
    check: &(dyn Fn(&[u8]) -> Result<(), String> + Sync),
) -> (Moved, Option<String>) {
    let act = Activity { start: Instant::now(), last_ms: AtomicU64::new(0) };
    let shared = tls::Shared::default();
    let (up, down) = tokio::join!(
        watched(client, upstream, tls::Side::Client, early, &shared, pipes, idle, &act, check),
        watched(upstream, client, tls::Side::Server, &[], &shared, pipes, idle, &act, check)
    );
    let idle_closed = matches!(&up, Err(e) if e.kind() == io::ErrorKind::TimedOut)
        || matches!(&down, Err(e) if e.kind() == io::ErrorKind::TimedOut);
    let cut = [&up, &down].iter().find_map(|r| r.as_ref().ok().and_then(|(_, c)| c.clone()));
    let n = |r: &io::Result<(u64, Option<String>)>| r.as_ref().map(|(n, _)| *n).unwrap_or(0);
    (Moved { up: n(&up), down: n(&down), idle_closed }, cut)
}

/// One watched direction (see [`relay_tls`]).
#[allow(clippy::too_many_arguments)]
async fn watched(
    src: &impl Side,
    dst: &impl Side,
    side: tls::Side,
    early: &[u8],
    shared: &tls::Shared,
    pipes: &PipePool,
    idle: Duration,
    act: &Activity,
    check: &(dyn Fn(&[u8]) -> Result<(), String> + Sync),
) -> io::Result<(u64, Option<String>)> {
    let mut w = Watch::new(side);
    let mut total = 0u64;
    let mut first = Some(early.to_vec()).filter(|e| !e.is_empty());
    loop {
        if shared.state.load(std::sync::atomic::Ordering::SeqCst) == tls::TLS13 && !w.holding() {
            // The handshake is past anything a second ClientHello or a renegotiation could use.
            let held = w.take_pending();
            write_all(dst, &held, idle, act).await?;
            return Ok((total + pump(src, dst, pipes, idle, act).await?, None));
        }
        if let Some(e) = first.take() {
            let steps = w.feed(shared, &e);
            if let Some(why) = apply(steps, src, dst, idle, act, check).await? {
                return Ok((total, Some(why)));
            }
            continue;
        }
        wait(src, Interest::READABLE, idle, act).await?;
        // Read into this thread's scratch buffer and let the watch copy what it keeps: an idle
        // watched tunnel holds no buffer of its own.
        let read = src.try_io_with(Interest::READABLE, || {
            SCRATCH.with_borrow_mut(|buf| {
                let n = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&src.fd()), buf).map_err(io::Error::from)?;
                Ok((n, w.feed(shared, &buf[..n])))
            })
        });
        let (n, steps) = match read {
            Ok((0, _)) => {
                sys::shutdown_write(dst.fd());
                return Ok((total, None));
            }
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                sys::shutdown_both(src.fd());
                sys::shutdown_both(dst.fd());
                return Err(e);
            }
        };
        act.touch();
        total += n as u64;
        if let Some(why) = apply(steps, src, dst, idle, act, check).await? {
            return Ok((total, Some(why)));
        }
    }
}

/// Carry out what the watch said; `Some(why)` when the tunnel was cut.
async fn apply(
    steps: Vec<Step>,
    src: &impl Side,
    dst: &impl Side,
    idle: Duration,
    act: &Activity,
    check: &(dyn Fn(&[u8]) -> Result<(), String> + Sync),
) -> io::Result<Option<String>> {
    for step in steps {
        let cut = match step {
            Step::Forward(b) => {
                write_all(dst, &b, idle, act).await?;
                None
            }
            Step::Check(records) => match check(&records) {
                Ok(()) => {
                    write_all(dst, &records, idle, act).await?;
                    None
                }
                Err(why) => {
                    // Before the handshake completes an alert is still readable by the client.
                    let _ = write_all(src, TLS_ACCESS_DENIED, idle, act).await;
                    Some(why)
                }
            },
            Step::Cut(why) => Some(why.to_string()),
        };
        if let Some(why) = cut {
            sys::shutdown_both(src.fd());
            sys::shutdown_both(dst.fd());
            return Ok(Some(why));
        }
    }
    Ok(None)
}

async fn write_all(dst: &impl Side, mut b: &[u8], idle: Duration, act: &Activity) -> io::Result<()> {
    while !b.is_empty() {
        wait(dst, Interest::WRITABLE, idle, act).await?;
        match dst.try_io_with(Interest::WRITABLE, || nix::unistd::write(dst.fd(), b).map_err(io::Error::from)) {
            Ok(m) => {
                b = &b[m..];
                act.touch();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
