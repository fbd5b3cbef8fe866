//! # semble-files: writing files so that readers see the old content or the new, never half of either
//!
//! Both `semble-policy` (compiled artifacts with `--out`) and `semble-shim` (state, cached
//! profiles, pid files) write files other processes read while they run. A reader must never see
//! a half-written file, so every write goes to a temporary file beside the target and is renamed
//! over it. This crate holds only that, so the shim does not depend on a command-line crate to get
//! it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `data` to `path` atomically and durably: a temporary file beside it, fsync, rename,
/// fsync of the directory.
pub fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_with(path, data, true)
}

/// Write `data` to `path` atomically: readers see the old content or the new, never a mix. With
/// `durable`, the data also survives a crash (fsync); without, it costs no disk flush (for
/// runtime state on tmpfs, where there is nothing to survive).
pub fn write_with(path: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            // Make the rename itself durable.
            if let Ok(d) = fs::File::open(&dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failure_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing-dir").join("a.json");
        assert!(write(&p, b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
