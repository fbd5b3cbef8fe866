//! errno names a policy may choose for denied syscalls.

/// `(name, number)` pairs accepted in `seccomp.errno`.
pub const ERRNOS: &[(&str, u32)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("EIO", 5),
    ("EBADF", 9),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("EBUSY", 16),
    ("EEXIST", 17),
    ("EINVAL", 22),
    ("ENOSPC", 28),
    ("EROFS", 30),
    ("ENOSYS", 38),
    ("EOPNOTSUPP", 95),
    ("EAFNOSUPPORT", 97),
];

/// The number for an errno name.
pub fn number(name: &str) -> Option<u32> {
    ERRNOS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// The name for an errno number, if it is one we know.
pub fn name(number: u32) -> Option<&'static str> {
    ERRNOS.iter().find(|(_, v)| *v == number).map(|(n, _)| *n)
}
