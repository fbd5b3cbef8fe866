//! The few raw system calls `semble-init` makes that have no safe wrapper.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

/// Fork the process.
///
/// Callers must only fork while single-threaded, so that the child may allocate freely.
pub(crate) fn fork() -> Result<ForkResult, Errno> {
    // SAFETY: `semble-init` forks before it starts any thread (the bridge threads start after
    // the workload is forked), so the child inherits no lock held by another thread.
    unsafe { nix::unistd::fork() }
}

/// Load a classic BPF seccomp program (a `struct sock_filter` array) on top of the filters
/// already in force. Requires `no_new_privs`. With `listener`, the kernel returns the filter's
/// user-notification fd (close-on-exec).
pub(crate) fn seccomp_load(program: &[u8], listener: bool) -> Result<Option<OwnedFd>, Errno> {
    const SOCK_FILTER_SIZE: usize = 8;
    if program.is_empty() || program.len() % SOCK_FILTER_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let len = u16::try_from(program.len() / SOCK_FILTER_SIZE).map_err(|_| Errno::E2BIG)?;
    // Copy into properly aligned storage: the byte buffer has no alignment guarantee.
    let mut filters: Vec<libc::sock_filter> = program
        .chunks_exact(SOCK_FILTER_SIZE)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog { len, filter: filters.as_mut_ptr() };
    let flags: libc::c_ulong = if listener { SECCOMP_FILTER_FLAG_NEW_LISTENER } else { 0 };
    // SAFETY: `prog` points to `len` valid `sock_filter`s that outlive the call; the kernel copies
    // the program before returning.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, &prog as *const libc::sock_fprog)
    };
    if r < 0 {
        return Err(Errno::last());
    }
    if !listener {
        return Ok(None);
    }
    let fd = RawFd::try_from(r).map_err(|_| Errno::EBADF)?;
    // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns a new descriptor that
    // nothing else in this process knows; it becomes owned here exactly once.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;

/// The process group of the terminal on fd 0 becomes `pgid` (job control for the workload).
pub(crate) fn give_terminal_to(pgid: Pid) -> Result<(), Errno> {
    nix::unistd::tcsetpgrp(std::io::stdin(), pgid)
}
