//! The raw file descriptors this crate takes ownership of: notify fds received with
//! `SCM_RIGHTS`, and the recorder's channel inherited across `execve`.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Own a descriptor that arrived in an `SCM_RIGHTS` control message.
pub(crate) fn received(raw: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `raw` in this process's table while delivering the control
    // message; nothing else in the process knows the number, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// Own the recorder's channel, which the parent left open across `execve` at number `raw`.
/// Returns `None` unless `raw` is an open socket.
pub(crate) fn inherited_socket(raw: RawFd) -> Option<OwnedFd> {
    if raw < 3 {
        return None;
    }
    let st = nix::sys::stat::fstat(raw).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return None;
    }
    // SAFETY: `raw` is open (fstat succeeded) and is the socket the recorder passed to this
    // helper process by number; the helper takes it exactly once, before anything else could
    // open or close descriptors.
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}
