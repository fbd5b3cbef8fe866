//! Raw system calls the shim makes that have no safe wrapper. Each block says why it is sound.
#![allow(unsafe_code)]

/// The Landlock ABI version of the running kernel, or `None` when Landlock is unavailable
/// (not built in, disabled at boot, or refused by a seccomp filter around the shim).
pub fn landlock_abi() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
    // SAFETY: with the VERSION flag the kernel reads no memory (attr NULL, size 0) and returns the
    // ABI version or an error.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(r).ok().filter(|v| *v > 0)
}

/// Bring the loopback interface of the calling thread's network namespace up (a new namespace
/// starts with it down). Needs CAP_NET_ADMIN in that namespace.
pub fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value (empty name, no flags).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `ifr`, a valid `ifreq` that
    // lives across the call; the socket fd is open.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: reading the `ifru_flags` member the kernel just wrote.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    let up = libc::c_short::try_from(libc::IFF_UP | libc::IFF_RUNNING).unwrap_or(1);
    ifr.ifr_ifru.ifru_flags = flags | up;
    // SAFETY: SIOCSIFFLAGS reads `ifr`, a valid `ifreq` naming `lo` with the new flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Take ownership of descriptor `fd`, which this process's parent left open across exec for it
/// (by number, on the command line). It is made close-on-exec so that children do not inherit it.
pub fn inherited_fd(fd: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use std::os::fd::FromRawFd;
    if fd < 3 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "0, 1 and 2 are stdio"));
    }
    // EBADF when it is not open.
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    // SAFETY: `fd` is open (checked just above) and nothing else in this process owns it: the
    // parent passed it by number for this single use, and the caller takes it once, at start-up.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
