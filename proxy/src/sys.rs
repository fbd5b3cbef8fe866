//! The kernel interfaces of the relay: pipes and `splice(2)` (through nix's safe wrappers),
//! and giving freed heap back to the system after a burst of tunnels closes.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use nix::fcntl::{splice, OFlag, SpliceFFlags};

/// A pipe used as the kernel-side buffer of one relay direction.
#[derive(Debug)]
pub struct Pipe {
    /// Read end.
    pub r: OwnedFd,
    /// Write end.
    pub w: OwnedFd,
    /// Capacity in bytes (what the kernel granted).
    pub cap: usize,
}

/// Pipes kept for reuse: an idle tunnel holds none, so ten thousand idle tunnels cost no pipe
/// descriptors and no pipe buffers.
#[derive(Debug, Default)]
pub struct PipePool {
    free: Mutex<Vec<Pipe>>,
}

/// The size asked for each pipe: the most one splice round trip moves.
pub const PIPE_BYTES: usize = 1 << 20;
const PIPE_BYTES_I32: i32 = 1 << 20;

/// Pipes kept when returned (more are closed): 64 × 1 MiB stays inside the default
/// `fs.pipe-user-pages-soft` (64 MiB), past which new pipes shrink to one page.
const KEEP: usize = 64;

impl PipePool {
    /// A pipe from the pool, or a new one.
    pub fn get(&self) -> io::Result<Pipe> {
        if let Some(p) = self.free.lock().ok().and_then(|mut f| f.pop()) {
            return Ok(p);
        }
        let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        // A bigger pipe moves more per splice round trip; failing to grow it only costs speed.
        // Without CAP_SYS_RESOURCE the kernel caps this at fs.pipe-max-size (1 MiB by default)
        // and, past fs.pipe-user-pages-soft, at one page.
        use nix::fcntl::{fcntl, FcntlArg};
        use std::os::fd::AsRawFd;
        let _ = fcntl(w.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_BYTES_I32));
        let cap = fcntl(w.as_raw_fd(), FcntlArg::F_GETPIPE_SZ).map_or(4096, |n| usize::try_from(n).unwrap_or(4096));
        Ok(Pipe { r, w, cap })
    }

    /// Return an *empty* pipe.
    pub fn put(&self, p: Pipe) {
        if let Ok(mut f) = self.free.lock() {
            if f.len() < KEEP {
                f.push(p);
            }
        }
    }
}

/// Move up to `len` bytes from `from` to `to` without copying through user space. Both are
/// non-blocking; `Ok(0)` from a socket is end of stream.
pub fn splice_nb(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
    splice(from, None, to, None, len, SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE)
        .map_err(io::Error::from)
}

/// Shut down the write side of a socket (half-close after the peer's end of stream).
pub fn shutdown_write(fd: impl AsFd) {
    use std::os::fd::AsRawFd;
    let _ = nix::sys::socket::shutdown(fd.as_fd().as_raw_fd(), nix::sys::socket::Shutdown::Write);
}

/// Shut down both directions of a socket (wakes a relay waiting on it).
pub fn shutdown_both(fd: impl AsFd) {
    use std::os::fd::AsRawFd;
    let _ = nix::sys::socket::shutdown(fd.as_fd().as_raw_fd(), nix::sys::socket::Shutdown::Both);
}

/// Return free heap pages to the system (glibc keeps them otherwise, and the memory of
/// thousands of closed tunnels would look held).
#[allow(unsafe_code)]
pub fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks and releases the allocator's free lists; it takes no
    // pointers from us and is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}
