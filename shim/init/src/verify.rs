//! Check that the runtime really applied the policy before running anything.
//!
//! A runtime that silently ignored part of `config.json` (an old runc, a misconfigured handler,
//! a bug) would otherwise run the workload with more power than the policy allows. These checks
//! read the kernel's view of the process, not the configuration.

use std::collections::BTreeSet;

use crate::config::Expect;

/// A check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The process holds a capability the policy does not grant.
    #[error("the process holds {set} capability `{cap}`, which the policy does not grant; the runtime did not apply the policy's capabilities")]
    ExtraCapability {
        /// Which set.
        set: &'static str,
        /// Which capability.
        cap: String,
    },
    /// `no_new_privs` is not set.
    #[error("no_new_privs is not set; the runtime did not apply `noNewPrivileges: true`")]
    NoNewPrivs,
    /// No seccomp filter is in force.
    #[error("no seccomp filter is in force; the runtime did not apply the policy's seccomp profile")]
    NoSeccomp,
    /// The process runs as the wrong user.
    #[error("the process runs as uid {actual}, the policy says {expected}")]
    WrongUser {
        /// Expected.
        expected: u32,
        /// Actual.
        actual: u32,
    },
    /// The process runs with the wrong group.
    #[error("the process runs as gid {actual}, the policy says {expected}")]
    WrongGroup {
        /// Expected.
        expected: u32,
        /// Actual.
        actual: u32,
    },
    /// The kernel could not be asked.
    #[error("cannot read {what}: {detail}")]
    Unreadable {
        /// What.
        what: &'static str,
        /// Why.
        detail: String,
    },
}

/// Check capabilities, no_new_privs and the user (the seccomp check is [`verify_seccomp`]).
pub fn verify(expect: &Expect) -> Result<(), VerifyError> {
    let allowed: BTreeSet<&str> = expect.capabilities.iter().map(String::as_str).collect();
    for (set, name) in [
        (caps::CapSet::Effective, "effective"),
        (caps::CapSet::Permitted, "permitted"),
        (caps::CapSet::Inheritable, "inheritable"),
        (caps::CapSet::Ambient, "ambient"),
        (caps::CapSet::Bounding, "bounding"),
    ] {
        let held = match caps::read(None, set) {
            Ok(h) => h,
            // A kernel without ambient capabilities (gVisor) holds none.
            Err(_) if name == "ambient" => continue,
            Err(e) => return Err(VerifyError::Unreadable { what: "capabilities", detail: e.to_string() }),
        };
        let mut held: Vec<String> = held.iter().map(|c| c.to_string()).collect();
        held.sort();
        if let Some(cap) = held.into_iter().find(|c| !allowed.contains(c.as_str())) {
            return Err(VerifyError::ExtraCapability { set: name, cap });
        }
    }
    if expect.no_new_privs {
        let nnp = nix::sys::prctl::get_no_new_privs()
            .map_err(|e| VerifyError::Unreadable { what: "no_new_privs", detail: e.to_string() })?;
        if !nnp {
            return Err(VerifyError::NoNewPrivs);
        }
    }
    if let Some(expected) = expect.uid {
        let actual = nix::unistd::getuid().as_raw();
        if actual != expected {
            return Err(VerifyError::WrongUser { expected, actual });
        }
    }
    if let Some(expected) = expect.gid {
        let actual = nix::unistd::getgid().as_raw();
        if actual != expected {
            return Err(VerifyError::WrongGroup { expected, actual });
        }
    }
    Ok(())
}

/// A seccomp filter must be in force (checked after `semble-init` loaded the policy's).
pub fn verify_seccomp(expect: &Expect) -> Result<(), VerifyError> {
    if expect.seccomp && seccomp_mode()? < 2 {
        return Err(VerifyError::NoSeccomp);
    }
    Ok(())
}

/// The `Seccomp:` field of `/proc/self/status` (0 off, 1 strict, 2 filter).
pub fn seccomp_mode() -> Result<u8, VerifyError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| VerifyError::Unreadable { what: "/proc/self/status", detail: e.to_string() })?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(VerifyError::Unreadable { what: "/proc/self/status", detail: "no `Seccomp:` line".into() })
}
