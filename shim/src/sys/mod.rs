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
