//! Stage 5, addresses: the proxy resolves the name itself ([`crate::resolve`]) and *every*
//! address must be ordinary public unicast or admitted by the rule's `allowAddresses` or
//! `--allow-cidr` ([`crate::addr`]); none may be one of the proxy's own listeners. The
//! connection later goes to one of these addresses, never to a second lookup.

use std::net::IpAddr;

use crate::addr;
use crate::deny::{Deny, Reason};
use crate::host::Host;
use crate::rules::Rule;
use crate::state::Proxy;

/// Resolve `host` and check every address for `port` under `rule`.
pub async fn check(proxy: &Proxy, host: &Host, port: u16, rule: &Rule) -> Result<Vec<IpAddr>, Deny> {
    let addrs = match host {
        Host::Name(n) => match proxy.resolver.lookup(n, port).await {
            Ok(a) => a,
            Err(d) => {
                proxy.metrics.dns_failures.inc();
                return Err(d);
            }
        },
        Host::Ip(ip) => vec![*ip],
    };
    let mut refused = Vec::new();
    for a in &addrs {
        let local = a.is_loopback() || a.is_unspecified() || proxy.local_ips.contains(a);
        if local && proxy.own_ports.contains(&port) {
            return Err(Deny::new(Reason::ProxyLoop, format!("{host}:{port} is the proxy itself ({a})")));
        }
        if let Some(why) = addr::refusal(*a, &rule.spec.allow_addresses, &proxy.config.allow_cidr) {
            refused.push(format!("{a} ({why})"));
        }
    }
    if !refused.is_empty() {
        return Err(Deny::new(
            Reason::ReservedAddress,
            format!(
                "`{host}` resolves to {}; only a rule's `allowAddresses` or --allow-cidr can admit such a range",
                refused.join(", ")
            ),
        ));
    }
    Ok(addrs)
}
