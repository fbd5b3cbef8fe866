//! Raw system calls the shim makes that have no safe wrapper. Each block says why it is sound.
#![allow(unsafe_code)]

pub mod audit;

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

/// Load an eBPF program of type `BPF_PROG_TYPE_CGROUP_SOCK_ADDR` for `attach_type`. `program`
/// is `struct bpf_insn`s as bytes. On a verifier refusal, the error carries the verifier's log.
pub fn bpf_load_sock_addr(program: &[u8], attach_type: u32, name: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
    // The part of `union bpf_attr` BPF_PROG_LOAD reads, up to `expected_attach_type`; the
    // kernel takes a shorter attribute as zero-filled.
    #[repr(C)]
    struct LoadAttr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }
    if program.is_empty() || program.len() % 8 != 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a whole number of BPF instructions"));
    }
    // 8-byte aligned storage for the instructions.
    let words: Vec<u64> =
        program.chunks_exact(8).map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect();
    let license = b"Apache-2.0\0";
    let mut log = vec![0u8; 16 * 1024];
    let mut prog_name = [0u8; 16];
    for (d, s) in prog_name.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    let attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        insn_cnt: u32::try_from(words.len()).map_err(|_| std::io::Error::from_raw_os_error(libc::E2BIG))?,
        insns: words.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: u32::try_from(log.len()).unwrap_or(0),
        log_buf: log.as_mut_ptr() as u64,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
        prog_ifindex: 0,
        expected_attach_type: attach_type,
    };
    // SAFETY: `attr` is a valid BPF_PROG_LOAD attribute whose pointers (instructions, license,
    // log buffer) point into buffers that outlive the call; the kernel writes at most
    // `log_size` bytes into `log`.
    let r = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &attr as *const LoadAttr, std::mem::size_of::<LoadAttr>())
    };
    if r < 0 {
        let err = std::io::Error::last_os_error();
        let text = String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)]).replace('\n', " ");
        return Err(std::io::Error::new(err.kind(), format!("{err}; verifier: {}", text.trim())));
    }
    let fd = i32::try_from(r).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel returned a new descriptor for the program; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Attach program `prog` to cgroup directory `cgroup` at `attach_type`, with
/// `BPF_F_ALLOW_MULTI` (other programs attached there, or above, keep running: every one must
/// allow). The attachment lives as long as the cgroup.
pub fn bpf_attach(cgroup: &std::fs::File, prog: &std::os::fd::OwnedFd, attach_type: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_F_ALLOW_MULTI: u32 = 2;
    #[repr(C)]
    struct AttachAttr {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
    }
    let fd = |f: i32| u32::try_from(f).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF));
    let attr = AttachAttr {
        target_fd: fd(cgroup.as_raw_fd())?,
        attach_bpf_fd: fd(prog.as_raw_fd())?,
        attach_type,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attr` is a valid BPF_PROG_ATTACH attribute naming two open descriptors; the kernel
    // only reads it.
    let r = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_PROG_ATTACH, &attr as *const AttachAttr, std::mem::size_of::<AttachAttr>())
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The real path of the object `path` names, following ordinary symbolic links but refusing
/// magic links (`/proc/PID/root`, `/proc/PID/fd/N`, which lead into other processes' views:
/// `ELOOP`). The kernel's own name for the opened object, so nothing can differ from what a
/// later open of that path finds, short of someone renaming directories on the way.
pub fn real_path_no_magic_links(path: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::os::fd::FromRawFd;
    let how = OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let raw = openat2(libc::AT_FDCWD, path, how)?;
    // SAFETY: openat2 returned a new descriptor that nothing else owns; it is closed when `fd`
    // is dropped at the end of this function.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    let real = std::fs::read_link(format!("/proc/self/fd/{raw}"))?;
    drop(fd);
    Ok(real)
}

/// Make directory `name` (one component) inside directory `dir`, through `dir`'s descriptor and
/// without following a symbolic link at `dir` or at `name`: a link in a container image cannot
/// send it elsewhere. `Ok(true)` when made, `Ok(false)` when a directory is already there.
pub fn mkdir_beneath(dir: &std::path::Path, name: &str, mode: u32) -> std::io::Result<bool> {
    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a single path component"));
    }
    let fd = nix::fcntl::open(dir, OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: `open` returned a new descriptor nothing else owns; `owned` closes it on return.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&owned);
    match mkdirat(Some(raw), name, Mode::from_bits_truncate(mode)) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EEXIST) => {
            let st = fstatat(Some(raw), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
                Ok(false)
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("`{name}` exists and is not a directory"),
                ))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The size of extended attribute `name` of `path` (following links), `None` when it has none
/// or it cannot be read.
pub fn getxattr_len(path: &std::path::Path, name: &str) -> Option<usize> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    // SAFETY: both strings are NUL-terminated and live across the call; with a NULL buffer and
    // size 0 the kernel writes nothing and returns the value's size.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
    usize::try_from(r).ok()
}
