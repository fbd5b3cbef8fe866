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

/// Golden files for tests: compare `actual` with the file at `path`, or, with
/// `SEMBLE_UPDATE_GOLDEN` set, rewrite the file (atomically) and review the diff. One helper for
/// every crate's golden tests.
pub mod golden {
    use std::path::Path;

    /// The variable that turns checking into rewriting.
    pub const UPDATE: &str = "SEMBLE_UPDATE_GOLDEN";

    /// `Err` with what differs and how to accept it, unless `path` holds exactly `actual`.
    pub fn check(path: &Path, actual: &[u8]) -> Result<(), String> {
        if std::env::var_os(UPDATE).is_some() {
            return super::write_with(path, actual, false)
                .map_err(|e| format!("cannot write golden file {}: {e}", path.display()));
        }
        let expected = std::fs::read(path)
            .map_err(|e| format!("missing golden file {} ({e}); run with {UPDATE}=1 to create it", path.display()))?;
        if expected == actual {
            return Ok(());
        }
        Err(format!(
            "{} differs from the golden file; if the change is intended, run with {UPDATE}=1 and review the diff\n--- actual ---\n{}",
            path.display(),
            String::from_utf8_lossy(actual)
        ))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn a_difference_names_the_file_and_the_way_to_accept_it() {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let p = dir.path().join("g.txt");
            assert!(super::check(&p, b"x").is_err_and(|e| e.contains("missing golden file")));
            std::fs::write(&p, b"x").unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(super::check(&p, b"x"), Ok(()));
            let e = super::check(&p, b"y").unwrap_err();
            assert!(e.contains("g.txt differs") && e.contains("SEMBLE_UPDATE_GOLDEN=1"), "{e}");
        }
    }
}
