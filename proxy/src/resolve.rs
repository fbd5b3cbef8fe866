//! Name resolution: `--resolve` pins first, then a hosts file when the operator names one
//! (`--hosts-file`; none by default — in a pod `/etc/hosts` is shared with the workload, which
//! could otherwise redirect a name the rules allow), then DNS (hickory-resolver).
//!
//! The proxy resolves every name itself, checks every address it got (see [`crate::addr`]),
//! and connects to one of *those* addresses; nothing looks the name up a second time, so a
//! DNS answer that changes between the check and the connection (rebinding) cannot redirect it.
//! A name the hosts file lists gets exactly the addresses listed there, as glibc's `files`
//! source answers before `dns`; the file is re-read when it changes (checked at most once a
//! second). Names are looked up as fully qualified (`name.`): resolv.conf search domains never turn an
//! allowed `api` into `api.corp.internal`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use hickory_resolver::config::{ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

use crate::config::Pin;
use crate::deny::{Deny, Reason};

/// The resolver.
#[derive(Debug)]
pub struct Resolver {
    pins: HashMap<(String, u16), Vec<IpAddr>>,
    hosts: HostsFile,
    dns: Option<TokioResolver>,
    /// Why there is no DNS, when there is none.
    pub dns_problem: Option<String>,
}

impl Resolver {
    /// Build from pins and, when given, explicit nameservers (otherwise `/etc/resolv.conf`).
    pub fn new(pins: &[Pin], nameservers: &[SocketAddr]) -> Resolver {
        let pins = pins.iter().map(|p| ((p.host.clone(), p.port), p.addrs.clone())).collect();
        let builder = if nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| format!("cannot read /etc/resolv.conf: {e}"))
        } else {
            let servers = nameservers
                .iter()
                .map(|sa| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = sa.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = sa.port();
                    NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
                })
                .collect();
            let config = ResolverConfig::from_parts(None, vec![], servers);
            Ok(TokioResolver::builder_with_config(config, TokioRuntimeProvider::default()))
        };
        let (dns, dns_problem) = match builder {
            Ok(mut b) => {
                let o = b.options_mut();
                // The hosts file is read here (see [`HostsFile`]), not by hickory: hickory would
                // still send the AAAA query to DNS for a name /etc/hosts gives only an IPv4
                // address, and wait for it.
                o.use_hosts_file = ResolveHosts::Never;
                o.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
                o.timeout = Duration::from_secs(3);
                o.attempts = 2;
                o.ndots = 0;
                match b.build() {
                    Ok(r) => (Some(r), None),
                    Err(e) => (None, Some(format!("cannot start the DNS resolver: {e}"))),
                }
            }
            Err(e) => (None, Some(e)),
        };
        Resolver { pins, hosts: HostsFile::none(), dns, dns_problem }
    }

    /// Answer names from the hosts file `path` before DNS.
    pub fn with_hosts_file(mut self, path: PathBuf) -> Resolver {
        self.hosts = HostsFile::new(path);
        self
    }

    /// Resolve `name` for `port`. Errors are `502 dns_failed`.
    pub async fn lookup(&self, name: &str, port: u16) -> Result<Vec<IpAddr>, Deny> {
        if let Some(addrs) = self.pins.get(&(name.to_string(), port)) {
            return Ok(addrs.clone());
        }
        if let Some(addrs) = self.hosts.lookup(name) {
            return Ok(addrs);
        }
        let Some(dns) = &self.dns else {
            let why = self.dns_problem.as_deref().unwrap_or("no resolver");
            return Err(Deny::new(Reason::DnsFailed, format!("cannot resolve `{name}`: {why}")));
        };
        match dns.lookup_ip(format!("{name}.")).await {
            Ok(found) => {
                let addrs: Vec<IpAddr> = found.iter().collect();
                if addrs.is_empty() {
                    Err(Deny::new(Reason::DnsFailed, format!("`{name}` has no A or AAAA records")))
                } else {
                    Ok(addrs)
                }
            }
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Err(Deny::new(
                Reason::DnsFailed,
                format!("`{name}` does not resolve (no such name or no address records)"),
            )),
            Err(e) => Err(Deny::new(Reason::DnsFailed, format!("cannot resolve `{name}`: {e}"))),
        }
    }
}

/// `/etc/hosts`, parsed, re-read when its modification time changes.
#[derive(Debug)]
struct HostsFile {
    path: PathBuf,
    state: RwLock<HostsState>,
}

#[derive(Debug, Default)]
struct HostsState {
    checked: Option<Instant>,
    mtime: Option<SystemTime>,
    names: HashMap<String, Vec<IpAddr>>,
}

impl HostsFile {
    /// No hosts file: every name goes to the pins, then DNS.
    fn none() -> HostsFile {
        HostsFile { path: PathBuf::new(), state: RwLock::new(HostsState::default()) }
    }

    fn new(path: PathBuf) -> HostsFile {
        HostsFile { path, state: RwLock::new(HostsState::default()) }
    }

    fn lookup(&self, name: &str) -> Option<Vec<IpAddr>> {
        if self.path.as_os_str().is_empty() {
            return None;
        }
        let fresh = |s: &HostsState| s.checked.is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        if let Ok(s) = self.state.read() {
            if fresh(&s) {
                return s.names.get(name).cloned();
            }
        }
        let Ok(mut s) = self.state.write() else { return None };
        if !fresh(&s) {
            s.checked = Some(Instant::now());
            let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
            if mtime != s.mtime {
                s.mtime = mtime;
                s.names = std::fs::read_to_string(&self.path).map(|t| parse_hosts(&t)).unwrap_or_default();
            }
        }
        s.names.get(name).cloned()
    }
}

/// Parse hosts-file text: `ADDRESS NAME [ALIAS…]`, `#` comments; names are matched lowercase;
/// lines whose address does not parse (or carries a zone, `fe80::1%eth0`) are skipped.
fn parse_hosts(text: &str) -> HashMap<String, Vec<IpAddr>> {
    let mut names: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(Ok(addr)) = fields.next().map(str::parse::<IpAddr>) else { continue };
        for name in fields {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let list = names.entry(name).or_default();
            if !list.contains(&addr) {
                list.push(addr);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn hosts_file_parsing() {
        let t = "127.0.0.1 localhost\n::1 localhost ip6-localhost # v6\n# 10.0.0.1 commented.test\n\
                 192.0.2.7\tOrigin.Test  alias.test.\nfe80::1%eth0 zoned.test\nnot-an-ip bad.test\n";
        let h = parse_hosts(t);
        assert_eq!(h["localhost"], vec!["127.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
        assert_eq!(h["origin.test"], vec!["192.0.2.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(h["alias.test"], h["origin.test"]);
        assert!(!h.contains_key("commented.test") && !h.contains_key("zoned.test") && !h.contains_key("bad.test"));
    }

    #[tokio::test]
    async fn hosts_file_answers_before_dns_and_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "192.0.2.1 a.test\n").unwrap();
        // Port 1 on loopback: any DNS query would fail (or time out), so an answer proves the
        // hosts file gave it.
        let r = Resolver::new(&[], &["127.0.0.1:1".parse().unwrap()]).with_hosts_file(path.clone());
        let t = Instant::now();
        assert_eq!(r.lookup("a.test", 443).await.unwrap(), vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert!(t.elapsed() < Duration::from_secs(1), "the hosts file must answer without asking DNS");
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(&path, "192.0.2.2 a.test\n").unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
        assert_eq!(r.lookup("a.test", 443).await.unwrap(), vec!["192.0.2.2".parse::<IpAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn without_a_hosts_file_etc_hosts_is_not_read() {
        // `localhost` is in every /etc/hosts; with no hosts file and no DNS it does not resolve.
        let r = Resolver::new(&[], &["127.0.0.1:1".parse().unwrap()]);
        assert!(r.hosts.lookup("localhost").is_none());
    }
}
