//! The runc backend: runc does the work, semble prepares the bundle and checks from inside.

use std::path::PathBuf;

use super::{Backend, Unavailable};
use crate::bundle::BackendKind;
use crate::settings::{find_executable, Settings};

/// Find runc (`--runc`, `SEMBLE_RUNC`, or `PATH`).
pub fn find(settings: &Settings) -> Result<Backend, Unavailable> {
    let binary = find_executable(settings.runc.as_deref(), "runc").ok_or_else(|| {
        Unavailable::Missing(
            "runc",
            settings.runc.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "runc on PATH".into()),
        )
    })?;
    Ok(Backend { kind: BackendKind::Runc, binary, root: settings.backend_root("runc"), extra: Vec::new() })
}

/// runc's binary for commands that do not depend on a container (spec, features).
pub fn binary(settings: &Settings) -> Option<PathBuf> {
    find_executable(settings.runc.as_deref(), "runc")
}
