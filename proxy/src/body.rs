//! A body wrapper that counts bytes, enforces an idle timeout between frames, and runs a
//! hook when the body ends (to write the decision's log line with its byte count and give a
//! kept-alive upstream connection back to the pool).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use crate::pool::BoxError;

/// Called once with the byte count and whether the body ended cleanly.
pub type OnEnd = Box<dyn FnOnce(u64, bool) + Send>;

/// The wrapper.
pub struct Tracked<B> {
    inner: B,
    count: Arc<AtomicU64>,
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    on_end: Option<OnEnd>,
    empty: bool,
    expected: Option<u64>,
}

impl<B> std::fmt::Debug for Tracked<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked").field("count", &self.count.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl<B: Body> Tracked<B> {
    /// Wrap `inner`; bytes are added to `count`.
    pub fn new(inner: B, count: Arc<AtomicU64>, idle: Duration, on_end: Option<OnEnd>) -> Self {
        let empty = inner.is_end_stream();
        let expected = inner.size_hint().exact();
        Tracked { inner, count, idle, timer: None, on_end, empty, expected }
    }
}

impl<B> Tracked<B> {
    fn end(&mut self, clean: bool) {
        if let Some(f) = self.on_end.take() {
            f(self.count.load(Ordering::Relaxed), clean);
        }
    }
}

/// The error of a body that stalled.
#[derive(Debug, thiserror::Error)]
#[error("no body data for {0:?}")]
pub struct Stalled(pub Duration);

impl<B> Body for Tracked<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.timer = None;
                if let Some(d) = frame.data_ref() {
                    let total = this.count.fetch_add(d.len() as u64, Ordering::Relaxed) + d.len() as u64;
                    // A body of known length is complete with its last byte; the server may
                    // never poll again for the end.
                    if this.expected == Some(total) {
                        this.end(true);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.end(false);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.end(true);
                Poll::Ready(None)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.end(false);
                    return Poll::Ready(Some(Err(Box::new(Stalled(idle)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        if let Some(f) = self.on_end.take() {
            // Bodies with nothing in them (HEAD, 204, 304) may never be polled: they ended
            // cleanly. Anything else dropped early was cut short.
            f(self.count.load(Ordering::Relaxed), self.empty);
        }
    }
}

/// Wrap a body with no hook (request bodies: only counted and timed).
pub fn counted<B: Body>(inner: B, count: Arc<AtomicU64>, idle: Duration) -> Tracked<B> {
    Tracked::new(inner, count, idle, None)
}

/// A complete body from bytes.
pub fn full(b: impl Into<Bytes>) -> crate::pool::Body {
    use http_body_util::BodyExt as _;
    http_body_util::Full::new(b.into()).map_err(|never| match never {}).boxed_unsync()
}
