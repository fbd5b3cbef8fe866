//! Syscall names known to the kernel, for validating policies and decoding denials.
//!
//! The table is generated from libseccomp (`tools/gen-syscall-table.py`) and extended by hand
//! with syscalls newer than the libseccomp release on build hosts.

mod table;

/// One syscall with its numbers on the two architectures semble targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    /// The name, as libseccomp and the OCI profile format write it.
    pub name: &'static str,
    /// Its number on x86_64, if it exists there.
    pub x86_64: Option<u32>,
    /// Its number on aarch64, if it exists there.
    pub aarch64: Option<u32>,
}

impl Syscall {
    /// Whether it exists on either architecture semble targets.
    pub fn on_supported_arch(&self) -> bool {
        self.x86_64.is_some() || self.aarch64.is_some()
    }
}

/// Look a syscall up by name.
pub fn lookup(name: &str) -> Option<&'static Syscall> {
    table::TABLE.binary_search_by(|s| s.name.cmp(name)).ok().and_then(|i| table::TABLE.get(i))
}

/// Look a syscall up by its x86_64 number.
pub fn by_x86_64_number(nr: u32) -> Option<&'static Syscall> {
    table::TABLE.iter().find(|s| s.x86_64 == Some(nr))
}

/// Look a syscall up by its aarch64 number.
pub fn by_aarch64_number(nr: u32) -> Option<&'static Syscall> {
    table::TABLE.iter().find(|s| s.aarch64 == Some(nr))
}

/// Every known name, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    table::TABLE.iter().map(|s| s.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(table::TABLE.windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn well_known_numbers() {
        assert_eq!(lookup("read").and_then(|s| s.x86_64), Some(0));
        assert_eq!(lookup("ptrace").and_then(|s| s.x86_64), Some(101));
        assert_eq!(lookup("openat").and_then(|s| s.aarch64), Some(56));
        assert_eq!(lookup("landlock_restrict_self").and_then(|s| s.x86_64), Some(446));
        assert_eq!(by_x86_64_number(272).map(|s| s.name), Some("unshare"));
        assert!(lookup("open").is_some_and(|s| s.aarch64.is_none()));
        assert!(lookup("socketcall").is_some_and(|s| !s.on_supported_arch()));
        assert!(lookup("not_a_syscall").is_none());
    }
}
