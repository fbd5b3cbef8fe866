//! Stage 1, framing: a request whose length two parsers could read differently is request
//! smuggling aimed at whatever sits behind the proxy, and is refused before anything else.
//!
//! hyper has already refused what it cannot parse (`malformed`, `header_too_large`); what it
//! accepts but tidies (a `Content-Length` beside `Transfer-Encoding`, repeated equal lengths) is
//! seen in the raw bytes by [`crate::sniff`], whose note for this request arrives here.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::HeaderMap;

use crate::deny::{Deny, Reason};

/// What the framing says about the request's body.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// The request has a body (a refusal then closes the connection: the body is not read).
    pub has_body: bool,
}

/// Check the framing of a request: the raw-bytes `note` first, then the headers hyper kept.
pub fn check(note: Option<&'static str>, h: &HeaderMap) -> Result<Framing, Deny> {
    if let Some(note) = note {
        return Err(Deny::new(Reason::Smuggling, note));
    }
    let cl = h.get_all(CONTENT_LENGTH).iter().count();
    if cl > 1 {
        return Err(Deny::new(Reason::Smuggling, "more than one Content-Length header"));
    }
    if cl == 1 && h.contains_key(TRANSFER_ENCODING) {
        return Err(Deny::new(Reason::Smuggling, "both Content-Length and Transfer-Encoding"));
    }
    if h.get_all(TRANSFER_ENCODING).iter().count() > 1 {
        return Err(Deny::new(Reason::Smuggling, "more than one Transfer-Encoding header"));
    }
    Ok(Framing { has_body: has_body(h) })
}

/// Whether the request has a body.
pub fn has_body(h: &HeaderMap) -> bool {
    h.contains_key(TRANSFER_ENCODING)
        || h.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn smuggling_shapes() {
        let mut h = HeaderMap::new();
        h.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
        h.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
        assert_eq!(check(None, &h).unwrap_err().reason, Reason::Smuggling);
        let mut h = HeaderMap::new();
        h.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
        h.append(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert_eq!(check(None, &h).unwrap_err().reason, Reason::Smuggling);
        assert_eq!(check(Some("seen in the bytes"), &HeaderMap::new()).unwrap_err().detail, "seen in the bytes");
        let mut h = HeaderMap::new();
        h.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
        assert!(check(None, &h).unwrap().has_body);
    }
}
