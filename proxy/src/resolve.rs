//! Name resolution: `--resolve` pins first, then `/etc/hosts`, then DNS (hickory-resolver).
//!
//! The proxy resolves every name itself, checks every address it got (see [`crate::addr`]),
//! and connects to one of *those* addresses; nothing looks the name up a second time, so a
//! DNS answer that changes between the check and the connection (rebinding) cannot redirect it.
//! Names are looked up as fully qualified (`name.`): resolv.conf search domains never turn an
//! allowed `api` into `api.corp.internal`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

use crate::config::Pin;
use crate::rules::Deny;

/// The resolver.
#[derive(Debug)]
pub struct Resolver {
    pins: HashMap<(String, u16), Vec<IpAddr>>,
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
                o.use_hosts_file = ResolveHosts::Always;
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
        Resolver { pins, dns, dns_problem }
    }

    /// Resolve `name` for `port`. Errors are `502 dns_failed`.
    pub async fn lookup(&self, name: &str, port: u16) -> Result<Vec<IpAddr>, Deny> {
        if let Some(addrs) = self.pins.get(&(name.to_string(), port)) {
            return Ok(addrs.clone());
        }
        let Some(dns) = &self.dns else {
            let why = self.dns_problem.as_deref().unwrap_or("no resolver");
            return Err(Deny::new(502, "dns_failed", format!("cannot resolve `{name}`: {why}")));
        };
        match dns.lookup_ip(format!("{name}.")).await {
            Ok(found) => {
                let addrs: Vec<IpAddr> = found.iter().collect();
                if addrs.is_empty() {
                    Err(Deny::new(502, "dns_failed", format!("`{name}` has no A or AAAA records")))
                } else {
                    Ok(addrs)
                }
            }
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Err(Deny::new(
                502,
                "dns_failed",
                format!("`{name}` does not resolve (no such name or no address records)"),
            )),
            Err(e) => Err(Deny::new(502, "dns_failed", format!("cannot resolve `{name}`: {e}"))),
        }
    }
}
