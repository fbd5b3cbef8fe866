//! Linux capability names.
//!
//! Policies accept `CHOWN` (Kubernetes style) and `CAP_CHOWN` (OCI style); artifacts use the form
//! their consumer expects.

use std::fmt;

macro_rules! capabilities {
    ($($variant:ident = $num:literal => $name:literal,)*) => {
        /// A Linux capability.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[allow(missing_docs, non_camel_case_types)]
        pub enum Capability {
            $($variant,)*
        }

        impl Capability {
            /// Every capability, in kernel number order.
            pub const ALL: &'static [Capability] = &[$(Capability::$variant,)*];

            /// The name without the `CAP_` prefix, e.g. `CHOWN`.
            pub const fn short_name(self) -> &'static str {
                match self { $(Capability::$variant => $name,)* }
            }

            /// The kernel's number for the capability.
            pub const fn number(self) -> u8 {
                match self { $(Capability::$variant => $num,)* }
            }
        }
    };
}

capabilities! {
    Chown = 0 => "CHOWN",
    DacOverride = 1 => "DAC_OVERRIDE",
    DacReadSearch = 2 => "DAC_READ_SEARCH",
    Fowner = 3 => "FOWNER",
    Fsetid = 4 => "FSETID",
    Kill = 5 => "KILL",
    Setgid = 6 => "SETGID",
    Setuid = 7 => "SETUID",
    Setpcap = 8 => "SETPCAP",
    LinuxImmutable = 9 => "LINUX_IMMUTABLE",
    NetBindService = 10 => "NET_BIND_SERVICE",
    NetBroadcast = 11 => "NET_BROADCAST",
    NetAdmin = 12 => "NET_ADMIN",
    NetRaw = 13 => "NET_RAW",
    IpcLock = 14 => "IPC_LOCK",
    IpcOwner = 15 => "IPC_OWNER",
    SysModule = 16 => "SYS_MODULE",
    SysRawio = 17 => "SYS_RAWIO",
    SysChroot = 18 => "SYS_CHROOT",
    SysPtrace = 19 => "SYS_PTRACE",
    SysPacct = 20 => "SYS_PACCT",
    SysAdmin = 21 => "SYS_ADMIN",
    SysBoot = 22 => "SYS_BOOT",
    SysNice = 23 => "SYS_NICE",
    SysResource = 24 => "SYS_RESOURCE",
    SysTime = 25 => "SYS_TIME",
    SysTtyConfig = 26 => "SYS_TTY_CONFIG",
    Mknod = 27 => "MKNOD",
    Lease = 28 => "LEASE",
    AuditWrite = 29 => "AUDIT_WRITE",
    AuditControl = 30 => "AUDIT_CONTROL",
    Setfcap = 31 => "SETFCAP",
    MacOverride = 32 => "MAC_OVERRIDE",
    MacAdmin = 33 => "MAC_ADMIN",
    Syslog = 34 => "SYSLOG",
    WakeAlarm = 35 => "WAKE_ALARM",
    BlockSuspend = 36 => "BLOCK_SUSPEND",
    AuditRead = 37 => "AUDIT_READ",
    Perfmon = 38 => "PERFMON",
    Bpf = 39 => "BPF",
    CheckpointRestore = 40 => "CHECKPOINT_RESTORE",
}

impl Capability {
    /// The OCI name, e.g. `CAP_CHOWN`.
    pub fn oci_name(self) -> String {
        format!("CAP_{}", self.short_name())
    }

    /// Parse `CHOWN` or `CAP_CHOWN` (upper case, as both Kubernetes and OCI write them).
    pub fn parse(name: &str) -> Option<Capability> {
        let short = name.strip_prefix("CAP_").unwrap_or(name);
        Capability::ALL.iter().copied().find(|c| c.short_name() == short)
    }

    /// Whether granting this capability to untrusted code is a known path out of a container
    /// (used by `explain` and `lint`).
    pub fn is_dangerous(self) -> bool {
        matches!(
            self,
            Capability::SysAdmin
                | Capability::SysModule
                | Capability::SysRawio
                | Capability::SysPtrace
                | Capability::SysBoot
                | Capability::NetAdmin
                | Capability::DacReadSearch
                | Capability::Bpf
                | Capability::Perfmon
                | Capability::MacAdmin
                | Capability::MacOverride
                | Capability::Syslog
                | Capability::LinuxImmutable
                | Capability::SysTime
                | Capability::CheckpointRestore
        )
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// The capabilities a container gets from Docker, Podman and containerd when nothing is said —
/// the base from which a policy that does not `drop: [ALL]` subtracts.
pub const RUNTIME_DEFAULT: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_dense_and_names_round_trip() {
        for (i, c) in Capability::ALL.iter().enumerate() {
            assert_eq!(usize::from(c.number()), i);
            assert_eq!(Capability::parse(c.short_name()), Some(*c));
            assert_eq!(Capability::parse(&c.oci_name()), Some(*c));
        }
        assert_eq!(Capability::ALL.len(), 41);
        assert_eq!(Capability::parse("chown"), None);
    }
}
