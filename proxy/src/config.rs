//! The proxy's settings, as the command line gives them, and the parsing of each value.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use semble_policy::compile::proxy::ProxyLimits;

use crate::host::{parse_host, printable, split_host_port, Host};

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path (`unix:/path`).
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Parse `ADDR:PORT`, `[V6]:PORT`, `:PORT` (all addresses) or `unix:/path`.
pub fn parse_listen(s: &str) -> Result<ListenAddr, String> {
    if let Some(path) = s.strip_prefix("unix:") {
        let p = PathBuf::from(path);
        if !p.is_absolute() {
            return Err(format!("`{s}`: a Unix socket path must be absolute, e.g. `unix:/run/semble/proxy.sock`"));
        }
        return Ok(ListenAddr::Unix(p));
    }
    let s2 = if s.starts_with(':') { format!("0.0.0.0{s}") } else { s.to_string() };
    s2.parse::<SocketAddr>().map(ListenAddr::Tcp).map_err(|_| {
        format!("`{s}` is not a listen address; write `127.0.0.1:8080`, `[::1]:8080` or `unix:/path/to.sock`")
    })
}

/// Parse the admin listener: `unix:/path` or a *loopback* `ADDR:PORT` (`/metrics` and `/rules`
/// are for the operator; `:9901` would offer them on every address).
pub fn parse_admin(s: &str) -> Result<ListenAddr, String> {
    match parse_listen(s)? {
        ListenAddr::Tcp(sa) if !sa.ip().is_loopback() => Err(format!(
            "`{s}` would serve the admin API on {}; it listens on loopback or a Unix socket: write `127.0.0.1:{}` or `unix:/run/semble/proxy-admin.sock`",
            if sa.ip().is_unspecified() { "every address".to_string() } else { sa.ip().to_string() },
            sa.port()
        )),
        a => Ok(a),
    }
}

/// A `--resolve HOST:PORT:ADDR` pin, as curl has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The host name (lower case).
    pub host: String,
    /// The port it applies to.
    pub port: u16,
    /// The addresses the name resolves to for that port.
    pub addrs: Vec<IpAddr>,
}

/// Parse `HOST:PORT:ADDR[,ADDR…]` (IPv6 addresses may be bracketed).
pub fn parse_pin(s: &str) -> Result<Pin, String> {
    let usage = || format!("`{}` is not `HOST:PORT:ADDR`, e.g. `api.test:443:127.0.0.1`", printable(s));
    let (host, rest) = s.split_once(':').ok_or_else(usage)?;
    let (port, addrs) = rest.split_once(':').ok_or_else(usage)?;
    let host = match parse_host(host) {
        Ok(Host::Name(n)) => n,
        Ok(Host::Ip(_)) => return Err(format!("`{}`: pin a host name, not an address", printable(s))),
        Err(e) => return Err(format!("`{}`: {e}", printable(s))),
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(usage)?;
    let mut out = Vec::new();
    for a in addrs.split(',') {
        let a = a.trim_start_matches('[').trim_end_matches(']');
        out.push(a.parse::<IpAddr>().map_err(|_| format!("`{}`: `{a}` is not an IP address", printable(s)))?);
    }
    Ok(Pin { host, port, addrs: out })
}

/// Parse a nameserver `ADDR` or `ADDR:PORT` (port 53 by default).
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    match split_host_port(s) {
        Ok((h, p)) => {
            let ip = h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>();
            match ip {
                Ok(ip) => Ok(SocketAddr::new(ip, p.unwrap_or(53))),
                Err(_) => {
                    Err(format!("`{}` is not a nameserver address; write `10.0.0.2` or `127.0.0.1:5353`", printable(s)))
                }
            }
        }
        Err(e) => Err(e.0),
    }
}

/// Parse a CIDR (`10.0.0.0/8`) or a single address (`127.0.0.1` = `/32`).
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        if n != n.trunc() {
            return Err(format!("`{s}` has host bits set; did you mean `{}`?", n.trunc()));
        }
        return Ok(n);
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{}` is not an address range; write `127.0.0.1/32` or `fd00::/8`", printable(s)))
}

/// Parse a duration (`30s`, `5m`, `1500ms`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{}` is not a duration ({e}); write e.g. `30s` or `5m`", printable(s)))
}

/// Bounds on what one client can make the proxy hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent client connections (tunnels included); more get `503`.
    pub max_connections: usize,
    /// Bytes of request line plus headers; more get `431`.
    pub max_header_bytes: usize,
    /// Number of request headers; more get `431`.
    pub max_headers: usize,
    /// Time to receive a whole request head, and to wait for the next one on a kept-alive
    /// connection (slowloris).
    pub header_timeout: Duration,
    /// A connection or tunnel with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
    /// Time to establish a TCP connection (and TLS) to an upstream.
    pub connect_timeout: Duration,
    /// Largest request body the proxy buffers to sign (SigV4 hashes the body); more get `413`.
    pub max_signed_body: usize,
    /// Connections (and tunnels) one client may hold; more get `429`.
    pub max_client_connections: usize,
    /// Bodies read whole, all clients together; more get `503`.
    pub max_buffered_bytes: usize,
    /// Bodies read whole for one client at once; more get `429`.
    pub max_client_buffered_bytes: usize,
}

impl Limits {
    /// The memory-relevant maxima, in the form the memory bound is computed from.
    pub fn maxima(&self) -> ProxyLimits {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        ProxyLimits {
            max_connections: n(self.max_connections),
            max_client_connections: n(self.max_client_connections),
            max_header_bytes: n(self.max_header_bytes),
            max_signed_body: n(self.max_signed_body),
            max_buffered_bytes: n(self.max_buffered_bytes),
            max_client_buffered_bytes: n(self.max_client_buffered_bytes),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let m = ProxyLimits::default();
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Limits {
            max_connections: n(m.max_connections),
            max_header_bytes: n(m.max_header_bytes),
            max_headers: 100,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            max_signed_body: n(m.max_signed_body),
            max_client_connections: n(m.max_client_connections),
            max_buffered_bytes: n(m.max_buffered_bytes),
            max_client_buffered_bytes: n(m.max_client_buffered_bytes),
        }
    }
}

/// Where the rules come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesSource {
    /// `--policy FILE`: a SandboxPolicy; its `network.egress`.
    Policy(PathBuf),
    /// `--rules FILE`: a ProxyRules file.
    Rules(PathBuf),
}

impl RulesSource {
    /// The file.
    pub fn path(&self) -> &PathBuf {
        match self {
            RulesSource::Policy(p) | RulesSource::Rules(p) => p,
        }
    }
}

/// Everything the proxy is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The rules file.
    pub rules: RulesSource,
    /// Client listeners.
    pub listen: Vec<ListenAddr>,
    /// The admin API listener.
    pub admin: Option<ListenAddr>,
    /// File holding the admin bearer token.
    pub admin_token_file: Option<PathBuf>,
    /// The credentials file.
    pub credentials: Option<PathBuf>,
    /// Name pins.
    pub resolve: Vec<Pin>,
    /// CA bundle trusted for upstream TLS instead of the system roots.
    pub upstream_ca: Option<PathBuf>,
    /// Reserved ranges the operator permits for every rule.
    pub allow_cidr: Vec<IpNet>,
    /// Where the intercept CA lives (generated on first start).
    pub intercept_ca_dir: Option<PathBuf>,
    /// Nameservers to use instead of `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// A hosts file answering before DNS (`--hosts-file`); none by default.
    pub hosts_file: Option<PathBuf>,
    /// Resource bounds.
    pub limits: Limits,
    /// Permissions of Unix listener sockets.
    pub socket_mode: u32,
    /// Threads serving clients, each with its own event loop (0: one per available CPU).
    pub workers: usize,
    /// A decision-log write blocked this long makes `/healthz` fail.
    pub log_stall_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("127.0.0.1:8080").unwrap(), ListenAddr::Tcp("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(parse_listen(":8080").unwrap(), ListenAddr::Tcp("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(parse_listen("unix:/run/p.sock").unwrap(), ListenAddr::Unix("/run/p.sock".into()));
        assert!(parse_listen("unix:rel.sock").unwrap_err().contains("absolute"));
        assert!(parse_listen("localhost:80").is_err());
    }

    #[test]
    fn the_admin_api_listens_on_loopback_only() {
        assert!(parse_admin("127.0.0.1:9901").is_ok());
        assert!(parse_admin("[::1]:9901").is_ok());
        assert!(parse_admin("unix:/run/a.sock").is_ok());
        let e = parse_admin(":9901").unwrap_err();
        assert!(e.contains("every address") && e.contains("127.0.0.1:9901"), "{e}");
        assert!(parse_admin("10.0.0.5:9901").unwrap_err().contains("10.0.0.5"));
        assert!(parse_admin("[::]:9901").is_err());
    }

    #[test]
    fn pins() {
        let p = parse_pin("API.test:443:127.0.0.1,[::1]").unwrap();
        assert_eq!(p.host, "api.test");
        assert_eq!(p.addrs.len(), 2);
        assert!(parse_pin("api.test:443").is_err());
        assert!(parse_pin("1.2.3.4:443:127.0.0.1").is_err());
        assert!(parse_pin("api.test:x:127.0.0.1").is_err());
    }

    #[test]
    fn cidrs_and_nameservers() {
        assert_eq!(parse_cidr("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        assert!(parse_cidr("10.0.0.1/8").unwrap_err().contains("10.0.0.0/8"));
        assert_eq!(parse_nameserver("127.0.0.1:5353").unwrap().port(), 5353);
        assert_eq!(parse_nameserver("10.0.0.2").unwrap().port(), 53);
        assert_eq!(parse_nameserver("[::1]:5353").unwrap().port(), 5353);
    }
}
