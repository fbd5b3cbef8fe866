//! Apply a Landlock ruleset to the calling thread (and what it executes).
//!
//! Every right the running kernel knows is *handled* (denied unless a rule grants it); rules
//! grant what the policy lists. On a kernel with an older Landlock ABI the newer rights are not
//! handled, and the report says the ruleset is partially enforced. Without Landlock at all, a
//! `required` ruleset is an error.

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use semble_policy::compile::landlock::{FsAccess, Ruleset as Spec, Scope as SpecScope};

/// What was enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Fully, partially or not enforced.
    pub status: Enforced,
    /// Rule paths that do not exist in this container (nothing was granted there).
    pub missing: Vec<String>,
}

/// How much of the ruleset the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforced {
    /// Everything.
    Fully,
    /// What the kernel's Landlock ABI supports.
    Partially,
    /// Nothing (no Landlock in this kernel).
    Not,
}

/// Why the ruleset could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// The kernel has no Landlock and the policy requires it.
    #[error("the kernel does not support Landlock and the policy requires it (filesystem.enforcement: required)")]
    Unavailable,
    /// The kernel's Landlock lacks TCP rules and the policy needs them.
    #[error("the kernel's Landlock cannot restrict TCP ports (needs ABI 4, Linux 6.7) and this workload's network must be cut by it")]
    NoNetSupport,
    /// A rule path could not be opened for another reason than not existing.
    #[error("cannot open `{path}` for a Landlock rule: {source}")]
    Path {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The landlock crate reported an error.
    #[error("Landlock refused the ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
}

fn access(list: &[FsAccess]) -> BitFlags<AccessFs> {
    let mut out = BitFlags::EMPTY;
    for a in list {
        out |= match a {
            FsAccess::Execute => AccessFs::Execute,
            FsAccess::WriteFile => AccessFs::WriteFile,
            FsAccess::ReadFile => AccessFs::ReadFile,
            FsAccess::ReadDir => AccessFs::ReadDir,
            FsAccess::RemoveDir => AccessFs::RemoveDir,
            FsAccess::RemoveFile => AccessFs::RemoveFile,
            FsAccess::MakeChar => AccessFs::MakeChar,
            FsAccess::MakeDir => AccessFs::MakeDir,
            FsAccess::MakeReg => AccessFs::MakeReg,
            FsAccess::MakeSock => AccessFs::MakeSock,
            FsAccess::MakeFifo => AccessFs::MakeFifo,
            FsAccess::MakeBlock => AccessFs::MakeBlock,
            FsAccess::MakeSym => AccessFs::MakeSym,
            FsAccess::Refer => AccessFs::Refer,
            FsAccess::Truncate => AccessFs::Truncate,
            FsAccess::IoctlDev => AccessFs::IoctlDev,
        };
    }
    out
}

/// The newest ABI whose rights semble has vetted for filesystem rules.
const FS_ABI: ABI = ABI::V5;

/// Apply the ruleset to the calling thread. Irreversible.
pub fn apply(spec: &Spec) -> Result<Report, LandlockError> {
    let required = spec.required();
    let mut ruleset = Ruleset::default().set_compatibility(CompatLevel::BestEffort);
    let handled_fs = AccessFs::from_all(FS_ABI);
    ruleset = ruleset.handle_access(handled_fs)?;
    if spec.net.is_some() {
        // Net rules are only requested when the workload's network must be cut: never silently
        // skip them.
        ruleset = ruleset
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessNet::from_all(ABI::V4))
            .map_err(|_| LandlockError::NoNetSupport)?;
        ruleset = ruleset.set_compatibility(CompatLevel::BestEffort);
    }
    let mut scopes: BitFlags<Scope> = BitFlags::EMPTY;
    for s in &spec.scopes {
        scopes |= match s {
            SpecScope::AbstractUnixSocket => Scope::AbstractUnixSocket,
            SpecScope::Signal => Scope::Signal,
        };
    }
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes)?;
    }
    let mut created = ruleset.create()?;
    if spec.log {
        // Linux 6.15 (ABI 7): the kernel logs the domain's refusals after `execve` too — the
        // workload's — through audit, where the container's supervisor reads them. On older
        // kernels the flag is dropped (best effort): nothing is logged, nothing else changes.
        created = created.log_new_exec(true)?;
    }
    let mut missing = Vec::new();
    for rule in &spec.rules {
        let fd = match PathFd::new(&rule.path) {
            Ok(fd) => fd,
            Err(e) => {
                let io = std::io::Error::other(e.to_string());
                if std::fs::symlink_metadata(&rule.path).is_err() {
                    missing.push(rule.path.clone());
                    continue;
                }
                return Err(LandlockError::Path { path: rule.path.clone(), source: io });
            }
        };
        let mut rights = access(&rule.access) & handled_fs;
        let is_dir = std::fs::metadata(&rule.path).map(|m| m.is_dir()).unwrap_or(false);
        if !is_dir {
            rights &= AccessFs::from_file(FS_ABI);
        }
        if rights.is_empty() {
            continue;
        }
        created = created.add_rule(PathBeneath::new(fd, rights))?;
    }
    if let Some(net) = &spec.net {
        for port in &net.bind_tcp {
            created = created.add_rule(NetPort::new(*port, AccessNet::BindTcp))?;
        }
        for port in &net.connect_tcp {
            created = created.add_rule(NetPort::new(*port, AccessNet::ConnectTcp))?;
        }
    }
    let status = created.restrict_self()?;
    let status = match status.ruleset {
        RulesetStatus::FullyEnforced => Enforced::Fully,
        RulesetStatus::PartiallyEnforced => Enforced::Partially,
        RulesetStatus::NotEnforced => Enforced::Not,
    };
    if status == Enforced::Not && required {
        return Err(LandlockError::Unavailable);
    }
    Ok(Report { status, missing })
}

/// Tell the container's supervisor that this process created a Landlock domain, then make the
/// domain's first logged refusal happen at once, while this process (the domain's creator, whose
/// pid the kernel writes in the domain's record) is alive: a signal-existence check on pid 1,
/// which is outside the new domain, refused by the signal scope. The supervisor matches the
/// domain record's pid with the one the kernel attested on the connection, and leaves this
/// first refusal out of the log. Best effort: nothing here changes what is enforced.
pub fn announce(supervisor: &std::os::unix::net::UnixStream) {
    use std::os::fd::AsRawFd;
    let creds = nix::sys::socket::UnixCredentials::new();
    let cmsg = [nix::sys::socket::ControlMessage::ScmCredentials(&creds)];
    let iov = [std::io::IoSlice::new(semble_policy::compile::oci::DOMAIN_MESSAGE)];
    let sent =
        nix::sys::socket::sendmsg::<()>(supervisor.as_raw_fd(), &iov, &cmsg, nix::sys::socket::MsgFlags::empty(), None);
    if sent.is_ok() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), None);
    }
}
