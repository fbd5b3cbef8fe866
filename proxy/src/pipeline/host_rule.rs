//! Stage 3, host rule: a rule of the allow-list must admit the host and port ([`crate::rules`]
//! matches). For a `CONNECT`, the rule also decides how the tunnel is carried: a rule with a
//! credential, `methods` or `paths` needs its requests seen in clear, so its tunnels are
//! intercepted, and refused where no intercept CA is configured — never tunnelled blind.

use super::entry::Entry;
use super::target::Asked;
use crate::deny::{Deny, Reason};
use crate::host::Target;
use crate::rules::{Rule, RuleSet};

/// How the requests under an allowed rule are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carry {
    /// HTTP the proxy reads (plain requests, and requests inside an intercepted tunnel).
    Http,
    /// A `CONNECT` tunnel relayed byte for byte (its ClientHello checked for a TLS rule).
    Tunnel,
    /// A `CONNECT` tunnel whose TLS the proxy terminates, to decide each request inside.
    Intercept,
}

/// What the host rule allowed.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// The rule.
    pub rule: Rule,
    /// The port to connect to.
    pub port: u16,
    /// How it is carried.
    pub carry: Carry,
}

/// Decide `asked` against `rules`. `intercept_ca` says whether tunnels can be intercepted.
pub fn decide(rules: &RuleSet, entry: Entry<'_>, asked: &Asked, intercept_ca: bool) -> Result<Allowed, Deny> {
    let allowed = match (entry, asked.port) {
        (Entry::Plain, port) => rules.decide_http(&asked.host, port)?,
        (_, Some(port)) => rules.decide(&Target { host: asked.host.clone(), port })?,
        (_, None) => return Err(Deny::new(Reason::BadHost, "the request names no port")),
    };
    let (rule, port) = (allowed.rule.clone(), allowed.port);
    let carry = match entry {
        Entry::Connect if rule.needs_http() => {
            if !intercept_ca || !rule.spec.tls_on(port) {
                let host = &asked.host;
                return Err(Deny::new(
                    Reason::InterceptUnavailable,
                    format!(
                        "requests to `{host}` carry a credential or are checked by method/path, so the proxy must see them: send http://{host}/… through the proxy, or start it with --intercept-ca-dir"
                    ),
                ));
            }
            Carry::Intercept
        }
        Entry::Connect => Carry::Tunnel,
        Entry::Plain | Entry::Inside(_) => Carry::Http,
    };
    Ok(Allowed { rule, port, carry })
}
