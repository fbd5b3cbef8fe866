//! Stage 2, target: which host and port the request asks for, read strictly
//! ([`crate::host`]), and one reading only: where a request names its host twice (the URI and
//! the `Host` header, or a request inside a tunnel opened for another host), both must agree.
//!
//! | entry | the target is | refused |
//! |---|---|---|
//! | plain | the absolute `http://` URI; the port may be left to the rule | `not_proxy_request`, `https_absolute`, `bad_scheme`, `userinfo`, `bad_host`, `host_mismatch` |
//! | `CONNECT` | `host:port` | `bad_host` |
//! | inside a tunnel | the tunnel's `host:port`; a URI authority or `Host` header must name it | `misdirected` |

use http::header::HOST;
use http::{HeaderMap, Uri};

use super::entry::Entry;
use crate::deny::{Deny, Reason};
use crate::host::{parse_authority, parse_host, printable, split_host_port, Host, Target};

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The host.
    pub host: Host,
    /// The port, when the request names one (always, but for plain requests without one).
    pub port: Option<u16>,
}

impl Asked {
    /// `host:port`, with the port plain HTTP would use when none is named.
    pub fn shown(&self) -> String {
        Target { host: self.host.clone(), port: self.port.unwrap_or(80) }.to_string()
    }
}

/// Read the target of a request that came in by `entry`.
pub fn read(entry: Entry<'_>, uri: &Uri, headers: &HeaderMap) -> Result<Asked, Deny> {
    match entry {
        Entry::Plain => plain(uri, headers),
        Entry::Connect => {
            let a = uri.authority().ok_or_else(|| Deny::new(Reason::BadHost, "CONNECT needs `host:port`"))?;
            let t = parse_authority(a.as_str()).map_err(|e| Deny::new(Reason::BadHost, e.0))?;
            Ok(Asked { host: t.host, port: Some(t.port) })
        }
        Entry::Inside(tunnel) => inside(tunnel, uri, headers),
    }
}

fn plain(uri: &Uri, headers: &HeaderMap) -> Result<Asked, Deny> {
    let Some(authority) = uri.authority() else {
        return Err(Deny::new(
            Reason::NotProxyRequest,
            "this is a forward proxy: send `GET http://host/path` or `CONNECT host:443` (set HTTP_PROXY/HTTPS_PROXY)",
        ));
    };
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(Deny::new(
                Reason::HttpsAbsolute,
                "https:// URIs are not forwarded as plain requests: use CONNECT (HTTPS_PROXY), or http:// and the proxy opens TLS",
            ))
        }
        _ => return Err(Deny::new(Reason::BadScheme, "only http:// URIs are forwarded")),
    }
    if authority.as_str().contains('@') {
        return Err(Deny::new(
            Reason::Userinfo,
            "`user:password@` in the URI is refused; credentials are the proxy's job",
        ));
    }
    let (raw, port) = split_host_port(authority.as_str()).map_err(|e| Deny::new(Reason::BadHost, e.0))?;
    let host = parse_host(raw).map_err(|e| Deny::new(Reason::BadHost, e.0))?;
    let asked = Asked { host, port };
    if let Some(named) = host_header(headers, 80).map_err(|why| Deny::new(Reason::HostMismatch, why))? {
        if named.host != asked.host || named.port != asked.port.unwrap_or(80) {
            return Err(Deny::new(
                Reason::HostMismatch,
                format!("the Host header names `{named}` but the request URI names `{}`", asked.host),
            ));
        }
    }
    Ok(asked)
}

fn inside(tunnel: &Target, uri: &Uri, headers: &HeaderMap) -> Result<Asked, Deny> {
    let elsewhere = |what: &str, named: &str| {
        Deny::new(Reason::Misdirected, format!("this tunnel is for `{tunnel}`, {what} `{}`", printable(named)))
    };
    if let Some(a) = uri.authority() {
        let named = parse_authority(a.as_str())
            .ok()
            .or_else(|| parse_host(a.as_str()).ok().map(|host| Target { host, port: 443 }));
        if named.as_ref() != Some(tunnel) {
            return Err(elsewhere("not", a.as_str()));
        }
    }
    let raw = headers.get(HOST).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match host_header(headers, 443) {
        Ok(None) => {}
        Ok(Some(named)) if named == *tunnel => {}
        _ => return Err(elsewhere("but the Host header names", raw.as_deref().unwrap_or(""))),
    }
    Ok(Asked { host: tunnel.host.clone(), port: Some(tunnel.port) })
}

/// The `Host` header, read as strictly as a target (`default_port` when it names none).
/// `Err` says what is wrong with it; `Ok(None)` when there is none.
fn host_header(h: &HeaderMap, default_port: u16) -> Result<Option<Target>, String> {
    let mut values = h.get_all(HOST).iter();
    let Some(v) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err("more than one Host header".into());
    }
    let text = v.to_str().map_err(|_| "the Host header is not ASCII".to_string())?;
    let (host, port) = split_host_port(text).map_err(|e| format!("Host header: {e}"))?;
    let host = parse_host(host).map_err(|e| format!("Host header: {e}"))?;
    Ok(Some(Target { host, port: port.unwrap_or(default_port) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn plain_with(uri: &str, host: &str) -> Result<Asked, Reason> {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_str(host).unwrap());
        read(Entry::Plain, &uri.parse().unwrap(), &h).map_err(|d| d.reason)
    }

    #[test]
    fn host_header_must_agree_with_the_uri() {
        assert!(plain_with("http://a.test/", "a.test:80").is_ok());
        assert_eq!(plain_with("http://a.test/", "b.test"), Err(Reason::HostMismatch));
        assert_eq!(plain_with("http://a.test/", "a.test:8080"), Err(Reason::HostMismatch));
        assert_eq!(plain_with("http://a.test:8080/", "a.test:8080").unwrap().port, Some(8080));
    }

    #[test]
    fn inside_a_tunnel_only_its_host() {
        let t = parse_authority("api.test:443").unwrap();
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("api.test"));
        assert!(read(Entry::Inside(&t), &"/x".parse().unwrap(), &h).is_ok());
        h.insert(HOST, HeaderValue::from_static("other.test"));
        assert_eq!(read(Entry::Inside(&t), &"/x".parse().unwrap(), &h).unwrap_err().reason, Reason::Misdirected);
        let h = HeaderMap::new();
        let e = read(Entry::Inside(&t), &"https://other.test/x".parse().unwrap(), &h).unwrap_err();
        assert_eq!(e.reason, Reason::Misdirected);
    }
}
