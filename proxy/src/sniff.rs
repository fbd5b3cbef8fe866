//! Request framing as the client sent it, seen before hyper tidies it.
//!
//! hyper reads `Content-Length` + `Transfer-Encoding` the way RFC 9112 allows (the chunked
//! encoding wins, the length is dropped, the connection is closed afterwards) and folds
//! repeated equal lengths into one. That is safe for hyper, but such a request is a request
//! smuggling attempt aimed at whatever sits behind the proxy, and the proxy refuses it. Since
//! the handler only sees hyper's cleaned-up headers, this wrapper watches the bytes of each
//! request head as they are read, notes framing that two parsers could read differently, and
//! the handler asks for the note of its request ([`Notes::next`]).
//!
//! To find where the next head starts it follows the framing itself (a length, or chunks);
//! after `CONNECT` or anything it cannot read it stops watching (hyper then answers or the
//! connection becomes a tunnel).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What was wrong with a request head's framing, in arrival order.
#[derive(Debug, Default, Clone)]
pub struct Notes(Arc<Mutex<VecDeque<Option<&'static str>>>>);

impl Notes {
    /// The note of the next request (`None`: nothing wrong, or not seen).
    pub fn next(&self) -> Option<&'static str> {
        self.0.lock().ok().and_then(|mut q| q.pop_front()).flatten()
    }

    fn push(&self, n: Option<&'static str>) {
        if let Ok(mut q) = self.0.lock() {
            q.push_back(n);
        }
    }
}

#[derive(Debug)]
enum State {
    /// Collecting a head (bytes so far).
    Head(Vec<u8>),
    /// Skipping a body of known length.
    Body(u64),
    /// Inside a chunked body.
    Chunk(Chunk),
    /// Not watching any more.
    Off,
}

#[derive(Debug)]
enum Chunk {
    /// Reading a chunk-size line.
    Size(Vec<u8>),
    /// Skipping chunk data, then its CRLF.
    Data(u64),
    /// Reading trailer lines until an empty one.
    Trailer(Vec<u8>),
}

/// An IO that watches request framing.
#[derive(Debug)]
pub struct Sniff<T> {
    inner: T,
    state: State,
    notes: Notes,
    max_head: usize,
}

impl<T> Sniff<T> {
    /// Wrap `inner`; heads longer than `max_head` are left to hyper to refuse.
    pub fn new(inner: T, max_head: usize) -> (Sniff<T>, Notes) {
        let notes = Notes::default();
        (Sniff { inner, state: State::Head(Vec::new()), notes: notes.clone(), max_head }, notes)
    }

    /// The wrapped IO.
    pub fn into_inner(self) -> T {
        self.inner
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let state = std::mem::replace(&mut self.state, State::Off);
            self.state = match state {
                State::Off => return,
                State::Body(left) => {
                    let n = left.min(data.len() as u64);
                    data = &data[usize::try_from(n).unwrap_or(data.len())..];
                    if left == n {
                        State::Head(Vec::new())
                    } else {
                        State::Body(left - n)
                    }
                }
                State::Head(mut buf) => {
                    if buf.is_empty() {
                        // Blank lines between requests are allowed (RFC 9112 §2.2).
                        let skip = data.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
                        data = &data[skip..];
                        // The usual case: the whole head in one read, parsed where it lies.
                        if let Some(i) = find(data, b"\r\n\r\n") {
                            let next = self.head(&data[..i + 4]);
                            data = &data[i + 4..];
                            self.state = next;
                            continue;
                        }
                    }
                    let before = buf.len();
                    buf.extend_from_slice(&data[..data.len().min(self.max_head + 4)]);
                    match find(&buf, b"\r\n\r\n") {
                        Some(i) => {
                            data = &data[(i + 4).saturating_sub(before).min(data.len())..];
                            self.head(&buf[..i + 4])
                        }
                        None if buf.len() > self.max_head => State::Off,
                        None => {
                            self.state = State::Head(buf);
                            return;
                        }
                    }
                }
                State::Chunk(Chunk::Size(mut line)) => {
                    let before = line.len();
                    line.extend_from_slice(&data[..data.len().min(1100)]);
                    match find(&line, b"\r\n") {
                        Some(i) => {
                            data = &data[(i + 2).saturating_sub(before).min(data.len())..];
                            let text = String::from_utf8_lossy(&line[..i]);
                            let size =
                                text.split(';').next().map(str::trim).and_then(|s| u64::from_str_radix(s, 16).ok());
                            match size {
                                Some(0) => State::Chunk(Chunk::Trailer(Vec::new())),
                                Some(n) => State::Chunk(Chunk::Data(n.saturating_add(2))),
                                None => State::Off,
                            }
                        }
                        None if line.len() > 1024 => State::Off,
                        None => {
                            self.state = State::Chunk(Chunk::Size(line));
                            return;
                        }
                    }
                }
                State::Chunk(Chunk::Data(left)) => {
                    let n = left.min(data.len() as u64);
                    data = &data[usize::try_from(n).unwrap_or(data.len())..];
                    if left == n {
                        State::Chunk(Chunk::Size(Vec::new()))
                    } else {
                        State::Chunk(Chunk::Data(left - n))
                    }
                }
                State::Chunk(Chunk::Trailer(mut buf)) => {
                    let before = buf.len();
                    buf.extend_from_slice(&data[..data.len().min(self.max_head + 4)]);
                    if buf.starts_with(b"\r\n") {
                        data = &data[2usize.saturating_sub(before).min(data.len())..];
                        State::Head(Vec::new())
                    } else if let Some(i) = find(&buf, b"\r\n\r\n") {
                        data = &data[(i + 4).saturating_sub(before).min(data.len())..];
                        State::Head(Vec::new())
                    } else if buf.len() > self.max_head {
                        State::Off
                    } else {
                        self.state = State::Chunk(Chunk::Trailer(buf));
                        return;
                    }
                }
            };
        }
    }

    /// Note what is wrong with `head` and decide how its body is framed.
    fn head(&self, head: &[u8]) -> State {
        let mut headers = [httparse::EMPTY_HEADER; 256];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => {
                // hyper will refuse it; keep the queue aligned with requests that reach the
                // handler by not noting anything, and stop watching.
                return State::Off;
            }
        }
        let (mut cl, mut te, mut length) = (0usize, 0usize, None::<u64>);
        let mut chunked = false;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                cl += 1;
                length = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse().ok());
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te += 1;
                chunked = h.value.to_ascii_lowercase().ends_with(b"chunked");
            }
        }
        let note = if cl > 1 {
            Some("more than one Content-Length header")
        } else if cl == 1 && te > 0 {
            Some("both Content-Length and Transfer-Encoding")
        } else if te > 1 {
            Some("more than one Transfer-Encoding header")
        } else {
            None
        };
        self.notes.push(note);
        if req.method == Some("CONNECT") || note.is_some() {
            // A tunnel, or a request refused with `Connection: close`.
            return State::Off;
        }
        match (te, chunked, length) {
            (1, true, _) => State::Chunk(Chunk::Size(Vec::new())),
            (0, _, Some(0)) | (0, _, None) => State::Head(Vec::new()),
            (0, _, Some(n)) => State::Body(n),
            _ => State::Off,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl<T: AsyncRead + Unpin> AsyncRead for Sniff<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            if !matches!(this.state, State::Off) {
                this.feed(&buf.filled()[before..]);
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Sniff<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notes(chunks: &[&[u8]]) -> Vec<Option<&'static str>> {
        let (mut s, n) = Sniff::new((), 32 * 1024);
        for c in chunks {
            s.feed(c);
        }
        let v = n.0.lock().unwrap().iter().copied().collect();
        v
    }

    #[test]
    fn notes_each_request_of_a_kept_alive_connection() {
        let two = b"POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET http://b/ HTTP/1.1\r\nHost: b\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(notes(&[two]), vec![None, Some("more than one Content-Length header")]);
        // Byte by byte, the same.
        let bytes: Vec<&[u8]> = two.chunks(1).collect();
        assert_eq!(notes(&bytes), vec![None, Some("more than one Content-Length header")]);
    }

    #[test]
    fn follows_chunked_bodies() {
        let req = b"POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET http://b/ HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(notes(&[req]), vec![None, Some("both Content-Length and Transfer-Encoding")]);
    }

    #[test]
    fn stops_at_connect() {
        let req = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03\x01GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n";
        assert_eq!(notes(&[req]), vec![None]);
    }
}
