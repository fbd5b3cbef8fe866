//! What a client asked for: the host and port of a request, read strictly.
//!
//! The allow-list decides on the *name the client asked for*, so that name must have exactly
//! one reading. Everything that has two is refused here, before any rule is consulted:
//! non-ASCII names (IDN homographs must arrive as punycode, which then matches no rule unless
//! a rule names it), a trailing dot, characters outside letters/digits/hyphen, and numeric
//! names that resolvers read as IPv4 addresses (`2852039166`, `0251.0376.0251.0376`,
//! `0xa9fea9fe`, `169.254.43518`). Upper case is folded to lower case (DNS names are
//! case-insensitive), so `EVIL-AMAZONAWS.COM` is decided as `evil-amazonaws.com`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// The host part of a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name: lower case, no trailing dot, LDH labels.
    Name(String),
    /// An IP address literal (`10.0.0.1`, `[::1]`).
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
        }
    }
}

/// A host and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The host.
    pub host: Host,
    /// The port.
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Why a host was refused before any rule was consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHost(pub String);

impl fmt::Display for BadHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(msg: impl Into<String>) -> BadHost {
    BadHost(msg.into())
}

/// Parse `host` (from a URI or a `CONNECT` authority, brackets included for IPv6).
pub fn parse_host(raw: &str) -> Result<Host, BadHost> {
    if raw.is_empty() {
        return Err(bad("the request names no host"));
    }
    if let Some(inner) = raw.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err(bad(format!("`{}` is not a valid IPv6 literal", printable(raw))));
        };
        if inner.contains('%') {
            return Err(bad("IPv6 zone identifiers are refused"));
        }
        return inner
            .parse::<Ipv6Addr>()
            .map(|a| Host::Ip(IpAddr::V6(a)))
            .map_err(|_| bad(format!("`{}` is not a valid IPv6 literal", printable(raw))));
    }
    if !raw.is_ascii() {
        return Err(bad(format!(
            "`{}` is not ASCII; internationalized names must be sent as punycode (`xn--…`)",
            printable(raw)
        )));
    }
    let lower = raw.to_ascii_lowercase();
    if lower.ends_with('.') {
        return Err(bad(format!("`{}` ends with a dot; send the name without it", printable(raw))));
    }
    if let Ok(a) = lower.parse::<IpAddr>() {
        return Ok(Host::Ip(a));
    }
    if lower.len() > 253 {
        return Err(bad("the host name is longer than 253 characters"));
    }
    let labels: Vec<&str> = lower.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(bad(format!("`{}` has an empty label", printable(raw))));
        }
        if label.len() > 63 {
            return Err(bad("a label of the host name is longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(bad(format!("`{}` holds characters other than letters, digits, `-` and `.`", printable(raw))));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad(format!("`{}` has a label that starts or ends with `-`", printable(raw))));
        }
    }
    // The last label of a real name is never numeric; resolvers (inet_aton) read such names as
    // IPv4 addresses in decimal, octal or hex, in one to four parts.
    if labels.last().is_some_and(|l| is_numeric_label(l)) {
        return Err(bad(format!(
            "`{}` is an IPv4 address in a non-standard spelling; such names are refused",
            printable(raw)
        )));
    }
    Ok(Host::Name(lower))
}

fn is_numeric_label(label: &str) -> bool {
    if let Some(hex) = label.strip_prefix("0x") {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    label.bytes().all(|b| b.is_ascii_digit())
}

/// Parse `host:port` (a `CONNECT` authority). The port is required.
pub fn parse_authority(raw: &str) -> Result<Target, BadHost> {
    let (host, port) = split_host_port(raw)?;
    let Some(port) = port else {
        return Err(bad(format!("`{}` names no port; write `host:port`", printable(raw))));
    };
    Ok(Target { host: parse_host(host)?, port })
}

/// Split `host[:port]`, keeping IPv6 brackets on the host.
pub fn split_host_port(raw: &str) -> Result<(&str, Option<u16>), BadHost> {
    let (host, port) = if raw.starts_with('[') {
        match raw.find(']') {
            Some(end) => {
                let (h, rest) = raw.split_at(end + 1);
                match rest.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None if rest.is_empty() => (h, None),
                    None => return Err(bad(format!("`{}` is not `host:port`", printable(raw)))),
                }
            }
            None => return Err(bad(format!("`{}` is not a valid IPv6 literal", printable(raw)))),
        }
    } else {
        match raw.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (raw, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && !p.starts_with('+') && !p.starts_with('0') => Some(n),
            _ => return Err(bad(format!("`{}` is not a valid port", printable(p)))),
        },
    };
    Ok((host, port))
}

/// `s` with control characters and non-ASCII escaped, for messages and logs (a CR/LF in a
/// host must never reach a log line as a line break).
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(256));
    for c in s.chars().take(200) {
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_folded_and_checked() {
        assert_eq!(
            parse_host("Bedrock-Runtime.US-EAST-1.amazonaws.com").unwrap(),
            Host::Name("bedrock-runtime.us-east-1.amazonaws.com".into())
        );
        for bad in [
            "example.com.",
            "exa mple.com",
            "exam_ple.com",
            "bedrock-runtіme.amazonaws.com", // Cyrillic і
            "-a.com",
            "a..com",
            "",
            "a.com\r\nX-Injected: 1",
        ] {
            assert!(parse_host(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn numeric_spellings_of_addresses_are_refused() {
        for n in ["2852039166", "0251.0376.0251.0376", "0xa9fea9fe", "169.254.43518", "0xA9.0xFE.0xA9.0xFE", "127.1"] {
            let r = parse_host(n);
            assert!(matches!(r, Err(ref e) if e.0.contains("non-standard")), "{n}: {r:?}");
        }
        // A name whose last label starts with a digit but is not numeric is a name.
        assert_eq!(parse_host("a.3com").unwrap(), Host::Name("a.3com".into()));
    }

    #[test]
    fn literals() {
        assert_eq!(parse_host("169.254.169.254").unwrap(), Host::Ip("169.254.169.254".parse().unwrap()));
        assert_eq!(parse_host("[fd00:ec2::254]").unwrap(), Host::Ip("fd00:ec2::254".parse().unwrap()));
        assert!(parse_host("[fe80::1%eth0]").is_err());
        assert!(parse_host("[::1").is_err());
    }

    #[test]
    fn authorities() {
        let t = parse_authority("example.com:443").unwrap();
        assert_eq!(t.to_string(), "example.com:443");
        let t = parse_authority("[::1]:8443").unwrap();
        assert_eq!(t.to_string(), "[::1]:8443");
        for bad in ["example.com", "example.com:0", "example.com:65536", "example.com:+1", "example.com:08", "[::1]x"] {
            assert!(parse_authority(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn printable_escapes_line_breaks() {
        assert_eq!(printable("a\r\nb"), "a\\r\\nb");
    }
}
