//! The client side of a connection: TCP or Unix socket, one type for hyper and the relay.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A client connection.
#[derive(Debug)]
pub enum ClientIo {
    /// From a TCP listener.
    Tcp(TcpStream),
    /// From a Unix socket listener (the bridge of a network-less container).
    Unix(UnixStream),
}

macro_rules! both {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            ClientIo::Tcp($s) => $e,
            ClientIo::Unix($s) => $e,
        }
    };
}

impl AsyncRead for ClientIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        both!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        both!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        both!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        both!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        both!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
}

/// What the relay needs of a socket: its descriptor and tokio's readiness.
pub trait Side {
    /// The descriptor.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Wait until ready for `interest`.
    fn ready_for(&self, interest: Interest) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Run a non-blocking operation; `WouldBlock` clears readiness.
    fn try_io_with<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

impl Side for TcpStream {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
    async fn ready_for(&self, interest: Interest) -> io::Result<()> {
        self.ready(interest).await.map(|_| ())
    }
    fn try_io_with<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        self.try_io(interest, f)
    }
}

impl Side for ClientIo {
    fn fd(&self) -> BorrowedFd<'_> {
        both!(self, s => s.as_fd())
    }
    async fn ready_for(&self, interest: Interest) -> io::Result<()> {
        both!(self, s => s.ready(interest).await.map(|_| ()))
    }
    fn try_io_with<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        both!(self, s => s.try_io(interest, f))
    }
}

/// An IO that yields `prefix` before reading from `io` (bytes a client sent before we were
/// ready for them, e.g. read by hyper together with the `CONNECT` head).
#[derive(Debug)]
pub struct Prefixed<T> {
    prefix: Bytes,
    /// The connection.
    pub io: T,
}

impl<T> Prefixed<T> {
    /// Wrap.
    pub fn new(prefix: Bytes, io: T) -> Self {
        Prefixed { prefix, io }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
