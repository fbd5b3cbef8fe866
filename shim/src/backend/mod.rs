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
        c.arg("--root").arg(&self.root);
        let p = &settings.passthrough;
        if let Some(log) = &p.log {
            c.arg("--log").arg(log);
            if p.log_json {
                c.arg("--log-format").arg("json");
            }
        }
        if p.debug {
            c.arg("--debug");
        }
        if p.systemd_cgroup {
            c.arg("--systemd-cgroup");
        }
        if let Some(r) = &p.rootless {
            c.arg(format!("--rootless={r}"));
        }
        if let Some(criu) = p.criu.as_ref().filter(|_| self.kind == BackendKind::Runc) {
            c.arg("--criu").arg(criu);
        }
        c.args(&self.extra);
        c.arg(cmd);
        c.args(args);
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
}

/// Find a backend of a kind.
pub fn find(settings: &Settings, kind: BackendKind) -> Result<Backend, Unavailable> {
    match kind {
        BackendKind::Runc => runc::find(settings),
        BackendKind::Runsc => runsc::find(settings),
        BackendKind::Embedded => Ok(Backend {
            kind: BackendKind::Embedded,
            binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("semble-shim")),
            root: settings.backend_root("embedded"),
            extra: Vec::new(),
        }),
    }
}
