//! Is the node's egress guard in force? Checked from inside, before the workload runs.
//!
//! The guard (cgroup BPF, attached by semble-shim to the container's cgroup) refuses `connect`
//! to any address but loopback, the resolvers and the proxy with `EPERM`, UDP included. A UDP
//! `connect` sends nothing (it only picks a route), so it asks the question without a packet:
//! the documentation ranges (RFC 5737, RFC 3849) must be refused, loopback allowed.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Addresses the guard never allows (documentation ranges), asked with a UDP `connect` only.
const REFUSED: &[&str] = &["192.0.2.1:9", "198.51.100.1:9", "203.0.113.1:9", "[2001:db8::1]:9"];

fn connect(to: &str) -> Result<(), std::io::Error> {
    let addr: SocketAddr = to.parse().map_err(|_| std::io::Error::other("bad address"))?;
    let local: SocketAddr = if addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
        .parse()
        .map_err(|_| std::io::Error::other("bad address"))?;
    UdpSocket::bind(local)?.connect(addr)
}

/// `Ok(true)` when the guard is in force, `Ok(false)` when not (yet), `Err` when what is in
/// force refuses loopback too (a broken guard: the workload's own servers would be unreachable).
pub fn in_force() -> Result<bool, String> {
    for to in REFUSED {
        match connect(to) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            // No IPv6 in this namespace: nothing to guard there.
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) && to.starts_with('[') => {}
            _ => return Ok(false),
        }
    }
    match connect("127.0.0.1:9") {
        Ok(()) => Ok(true),
        Err(e) => Err(format!("the egress guard refuses loopback too ({e})")),
    }
}

/// Wait up to `limit` for the guard (`run` attaches it once the container exists).
pub fn wait(limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if in_force()? {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "the node's egress guard is not in force after {}s: the workload's network would not be cut, so it does not start (is semble-shim running as root on a cgroup v2 host?)",
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
