//! The gVisor backend: runsc runs the container in a user-space kernel; semble derives runsc's
//! flags from the policy (`semble-gvisor`) and enforces the filesystem rules with mounts.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Backend, Unavailable};
use crate::bundle::BackendKind;
use crate::settings::{find_executable, Settings};

/// Find runsc (`--runsc`, `SEMBLE_RUNSC`, or `PATH`).
pub fn find(settings: &Settings) -> Result<Backend, Unavailable> {
    let binary = find_executable(settings.runsc.as_deref(), "runsc").ok_or_else(|| {
        Unavailable::Missing(
            "runsc (gVisor)",
            settings.runsc.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "runsc on PATH".into()),
        )
    })?;
    Ok(Backend { kind: BackendKind::Runsc, binary, root: settings.backend_root("runsc"), extra: Vec::new() })
}

/// What this runsc supports, from `runsc flags` (cached per binary, by size and mtime: runsc
/// takes tens of milliseconds to start).
pub fn probe(settings: &Settings, binary: &Path) -> semble_gvisor::Runsc {
    let kvm_usable = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
    let key = std::fs::metadata(binary).map(|m| format!("{}-{}", m.size(), m.mtime())).unwrap_or_default();
    let cache = settings.root.join("cache").join(format!("runsc-flags-{key}.txt"));
    let text = match std::fs::read_to_string(&cache) {
        Ok(t) if !key.is_empty() => t,
        _ => {
            let out = Command::new(binary).arg("flags").output();
            let t = out
                .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
                .unwrap_or_default();
            if !t.is_empty() && std::fs::create_dir_all(cache.parent().unwrap_or(Path::new("."))).is_ok() {
                let _ = semble_files::write_with(&cache, t.as_bytes(), false);
            }
            t
        }
    };
    parse_flags(&text, kvm_usable)
}

/// Parse `runsc flags` output: flag names, and the platforms `-platform`'s help names.
pub fn parse_flags(text: &str, kvm_usable: bool) -> semble_gvisor::Runsc {
    let mut flags = BTreeSet::new();
    let mut platforms = BTreeSet::new();
    let mut in_platform = false;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix('-') {
            let name = rest.split_whitespace().next().unwrap_or("").to_string();
            in_platform = name == "platform";
            flags.insert(name);
        } else if in_platform {
            for p in ["ptrace", "kvm", "systrap"] {
                if t.contains(p) {
                    platforms.insert(p.to_string());
                }
            }
        }
    }
    semble_gvisor::Runsc { flags, platforms, kvm_usable }
}

/// runsc's binary, for `features`.
pub fn binary(settings: &Settings) -> Option<PathBuf> {
    find_executable(settings.runsc.as_deref(), "runsc")
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_and_platforms_are_parsed() {
        let text = "  -oci-seccomp\n    \tEnables loading OCI seccomp filters inside the sandbox.\n  -platform string\n    \tspecifies which platform to use: ptrace (default), kvm. (default \"ptrace\")\n  -overlay2 value\n";
        let r = super::parse_flags(text, false);
        assert!(r.flags.contains("oci-seccomp") && r.flags.contains("overlay2") && r.flags.contains("platform"));
        assert_eq!(r.platforms.into_iter().collect::<Vec<_>>(), ["kvm", "ptrace"]);
    }
}
