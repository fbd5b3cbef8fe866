//! `delete`: the backend's delete, then semble's state, helpers and the bundle's original config.

use super::create::{remove_cgroup, restore_config};
use super::*;

/// `delete`: the backend's delete, then semble's state and the bundle's original config.
pub fn delete(settings: &Settings, log: &mut Logger, id: &str, force: bool) -> Outcome {
    log.with("container", id);
    let rec = state::load(&settings.records_dir(), id)?;
    let Some(rec) = rec else {
        if force {
            return Ok(0);
        }
        return fail(format!("container `{id}` does not exist"));
    };
    let paths = Paths::new(&settings.records_dir(), id);
    let backend = backend::find(settings, rec.backend).map(|mut b| {
        b.extra = rec.backend_flags.clone();
        b
    });
    let status = match &backend {
        Ok(b) if b.embedded() => {
            match embedded::delete(&b.root, id, force) {
                Ok(()) => None,
                // Already gone from libcontainer's state: semble's goes too.
                Err(_) if !b.exists(id) => None,
                Err(e) => return Err(e),
            }
        }
        Ok(b) => {
            let mut args: Vec<OsString> = Vec::new();
            if force {
                args.push("--force".into());
            }
            args.push(id.into());
            Some(
                b.command(settings, "delete", args)
                    .status()
                    .map_err(|e| Failure(format!("cannot run `{}`: {e}", b.binary.display())))?,
            )
        }
        Err(_) => None,
    };
    let gone = match &backend {
        Ok(b) => !b.exists(id),
        Err(_) => true,
    };
    if gone {
        restore_config(&rec.bundle);
        if let Some(note) = supervisor::supervisor_gone(settings, id) {
            log.warn(&note, &[]);
        }
        supervisor::stop(settings, &paths, id);
        crate::subcontainer::stop(&paths, id);
        if let Some(cg) = &rec.guard_cgroup {
            remove_cgroup(cg);
        }
        let _ = fs::remove_dir_all(&paths.dir);
        log.info("container deleted", &[]);
    }
    Ok(status.map(code).unwrap_or(0))
}
