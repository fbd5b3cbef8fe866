//! Backends: the runtimes that actually create containers once semble has prepared the bundle.
//!
//! Every backend speaks runc's command line, so semble passes commands through with the same
//! flags (its own global flags first, as runc and runsc expect) and only intervenes where the
//! policy is concerned.

pub mod embedded;
pub mod runc;
pub mod runsc;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::bundle::BackendKind;
use crate::error::Failure;
use crate::settings::Settings;

/// A backend runtime.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Which.
    pub kind: BackendKind,
    /// Its executable.
    pub binary: PathBuf,
    /// Its state directory.
    pub root: PathBuf,
    /// Global flags of this container's backend invocation (runsc's, derived from the policy and
    /// kept in semble's record so that every later command passes the same).
    pub extra: Vec<String>,
}

impl Backend {
    /// A command line for `cmd args…` with the global flags the backend needs.
    pub fn command(&self, settings: &Settings, cmd: &str, args: Vec<OsString>) -> Command {
        let mut c = Command::new(&self.binary);
        c.args(self.global_args(settings));
        c.arg(cmd);
        c.args(args);
        c
    }

    /// The flags every command of this backend gets, before the command's name.
    pub fn global_args(&self, settings: &Settings) -> Vec<OsString> {
        let mut c: Vec<OsString> = vec!["--root".into(), self.root.clone().into()];
        let p = &settings.passthrough;
        if let Some(log) = &p.log {
            c.push("--log".into());
            c.push(log.into());
            if p.log_json {
                c.push("--log-format".into());
                c.push("json".into());
            }
        }
        if p.debug {
            c.push("--debug".into());
        }
        if p.systemd_cgroup {
            c.push("--systemd-cgroup".into());
        }
        if let Some(r) = &p.rootless {
            c.push(format!("--rootless={r}").into());
        }
        if let Some(criu) = p.criu.as_ref().filter(|_| self.kind == BackendKind::Runc) {
            c.push("--criu".into());
            c.push(criu.into());
        }
        c.extend(self.extra.iter().map(OsString::from));
        c
    }

    /// Whether this backend runs in-process.
    pub fn embedded(&self) -> bool {
        self.kind == BackendKind::Embedded
    }

    /// Whether the backend still knows container `id`.
    pub fn exists(&self, id: &str) -> bool {
        self.root.join(id).join("state.json").exists()
    }
}

/// Why a backend cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The binary is not installed.
    #[error("{0} is not installed (looked for `{1}`)")]
    Missing(&'static str, String),
    /// Not part of this build.
    #[error("the {0} backend is not available in this build of semble-shim")]
    NotBuilt(&'static str),
    /// Installed, but it cannot run containers in this shim's situation (the reason says why and
    /// what to do).
    #[error("{0}")]
    CannotRun(String),
}

impl Unavailable {
    /// Whether installing something would help.
    pub fn installable(&self) -> bool {
        matches!(self, Unavailable::Missing(..))
    }
}

/// Why the embedded backend refuses to run rootless: fail closed where its limits cannot be
/// known to hold.
pub const EMBEDDED_ROOTLESS: &str = "the embedded backend cannot run rootless (nor as root inside a user namespace): its cgroup library (libcgroups) \
     creates the container's cgroups on cgroup v1, which an ordinary user may not, and on cgroup v2 goes on \
     without a word when it cannot create or join them, so the policy's limits would not be known to hold; \
     use the runc backend (`--backend runc`, or `runtime.fallback: [runc]` in the policy) (docs/install-podman.md, rootless)";

/// Find a backend of a kind.
pub fn find(settings: &Settings, kind: BackendKind) -> Result<Backend, Unavailable> {
    match kind {
        BackendKind::Runc => runc::find(settings),
        BackendKind::Runsc => runsc::find(settings),
        BackendKind::Embedded if settings.rootless || crate::settings::in_user_namespace() => {
            Err(Unavailable::CannotRun(EMBEDDED_ROOTLESS.to_string()))
        }
        BackendKind::Embedded => Ok(Backend {
            kind: BackendKind::Embedded,
            binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("semble-shim")),
            root: settings.backend_root("embedded"),
            extra: Vec::new(),
        }),
    }
}

/// A signal as runc accepts it: `9`, `KILL` or `SIGKILL`.
pub fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal, Failure> {
    use std::str::FromStr;
    let bad = || Failure(format!("unknown signal `{s}`; give a number or a name such as SIGTERM"));
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map_err(|_| bad());
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") { name } else { format!("SIG{name}") };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::parse_signal;
    use nix::sys::signal::Signal;

    #[test]
    fn signals_are_read_as_runc_reads_them() {
        assert_eq!(parse_signal("9").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("KILL").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("sigterm").ok(), Some(Signal::SIGTERM));
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
