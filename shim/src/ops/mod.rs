//! The commands. `create`/`run` and `exec` apply the policy; everything else finds the
//! container's backend and passes the command through unchanged.
//!
//! One file per verb: [`create`] (and `run`), [`exec`], [`update`], [`delete`], and the commands
//! passed through to the backend ([`lifecycle`]). Shared here: choosing the backend, reading and
//! writing the container's files.
//!
//! A failing command returns a [`Failure`]: one line that says what, where and how to fix it.
//! `create` either succeeds completely or leaves nothing behind: no record, no container, the
//! bundle's `config.json` as it was.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::SystemTime;

use serde_json::{json, Value};

use semble_policy::compile::oci::POLICY_ANNOTATION;
use semble_policy::model::Backend as PolicyBackend;

use crate::backend::{self, embedded, Backend};
use crate::bundle::{self, BackendKind, Inputs, Mounts};
use crate::cli::{BackendArg, CreateArgs, ExecArgs, UpdateArgs};
use crate::host;
use crate::log::Logger;
use crate::resolve;
use crate::settings::Settings;
use crate::state::{self, Paths, Record, ORIGINAL_CONFIG};
use crate::supervisor;

pub use crate::error::{fail, Failure, Outcome};

mod create;
mod delete;
mod exec;
mod lifecycle;
mod update;

pub use create::{create, runsc_inputs, Mode, RECORD_ANNOTATION};
pub use delete::delete;
pub use exec::exec;
pub use lifecycle::{features, kill, list, passthrough, ps, refuse_checkpoint, spec, start, ENFORCES};
pub use update::update;

pub(super) fn code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Which backend a container gets, and why a fallback was used if one was.
///
/// The policy lists the backends it accepts: `runtime.backend`, then `runtime.fallback` in
/// order. A `--backend` flag (a RuntimeClass handler) must name one of them and is then tried
/// first. A policy naming no backend accepts runc, else the embedded runtime.
pub fn choose_backend(
    settings: &Settings,
    policy: &semble_policy::SandboxPolicy,
) -> Result<(Backend, Option<String>), Failure> {
    let map = |b: PolicyBackend| match b {
        PolicyBackend::Gvisor => BackendKind::Runsc,
        PolicyBackend::Runc => BackendKind::Runc,
        PolicyBackend::Embedded => BackendKind::Embedded,
    };
    let flag = settings.backend.map(|b| match b {
        BackendArg::Runc => BackendKind::Runc,
        BackendArg::Runsc => BackendKind::Runsc,
        BackendArg::Embedded => BackendKind::Embedded,
    });
    let mut accepted: Vec<BackendKind> = match policy.runtime.backend {
        Some(b) => std::iter::once(b).chain(policy.runtime.fallback.iter().copied()).map(map).collect(),
        None => vec![BackendKind::Runc, BackendKind::Embedded],
    };
    if let Some(f) = flag {
        if !accepted.contains(&f) {
            let names: Vec<&str> = accepted.iter().map(|b| b.as_str()).collect();
            return fail(format!(
                "policy `{}` accepts the backends {}; this runtime handler asks for `{}` (--backend); use a handler for one of them or change the policy",
                policy.name,
                names.join(", "),
                f.as_str()
            ));
        }
        if policy.runtime.backend.is_none() {
            // No preference in the policy: the handler's choice is the only one.
            accepted = vec![f];
        } else {
            accepted.retain(|b| *b != f);
            accepted.insert(0, f);
        }
    }
    let mut missing: Vec<String> = Vec::new();
    let mut installable = true;
    for kind in &accepted {
        match backend::find(settings, *kind) {
            Ok(b) => {
                let reason = (!missing.is_empty()).then(|| {
                    format!("{}; using `{}` as policy `{}` allows", missing.join("; "), kind.as_str(), policy.name)
                });
                return Ok((b, reason));
            }
            Err(why) => {
                installable &= why.installable();
                missing.push(why.to_string());
            }
        }
    }
    let hint = if !installable {
        ""
    } else if policy.runtime.fallback.is_empty() && policy.runtime.backend.is_some() {
        "; install it, or give the policy a `runtime.fallback`"
    } else {
        "; install one of them"
    };
    fail(format!("cannot run policy `{}`: {}{hint}", policy.name, missing.join(", and ")))
}

/// Whether the pod sandbox a container's CRI annotations name is one this shim created as a pod's
/// sandbox ([`state::is_pod_sandbox`]); the annotations alone are anyone's to write.
pub fn pod_sandbox_known(settings: &Settings, config: &serde_json::Value) -> bool {
    bundle::engine_key(|k| bundle::annotation(config, k), bundle::CRI_SANDBOX_ID, semble_policy::facts::CRIO_SANDBOX_ID)
        .is_some_and(|id| state::is_pod_sandbox(&settings.records_dir(), id))
}

/// Whether an ELF executable is statically linked (has no `PT_INTERP`).
pub fn is_static_elf(path: &Path) -> Result<bool, String> {
    use std::io::Read;
    // The ELF header and program headers sit at the start of the file.
    let mut data = Vec::with_capacity(4096);
    fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut data))
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let rd16 = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let rd32 = |o: usize| data.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let rd64 = |o: usize| data.get(o..o + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes);
    if data.get(..4) != Some(b"\x7fELF") || data.get(4) != Some(&2) || data.get(5) != Some(&1) {
        return Err(format!("`{}` is not a 64-bit little-endian ELF executable", path.display()));
    }
    let bad = || format!("`{}` has a damaged ELF header", path.display());
    let phoff = usize::try_from(rd64(0x20).ok_or_else(bad)?).map_err(|_| bad())?;
    let phentsize = usize::from(rd16(0x36).ok_or_else(bad)?);
    let phnum = usize::from(rd16(0x38).ok_or_else(bad)?);
    for i in 0..phnum {
        const PT_INTERP: u32 = 3;
        if rd32(phoff + i * phentsize).ok_or_else(bad)? == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(super) fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

/// serde_json's message without its trailing position (we print the position ourselves).
pub fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

pub(super) fn read_config(path: &Path) -> Result<Value, Failure> {
    let text = fs::read_to_string(path).map_err(|e| Failure(format!("cannot read `{}`: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Failure(format!(
            "cannot parse `{}` at line {} column {}: {}; fix the JSON",
            path.display(),
            e.line(),
            e.column(),
            json_reason(&e)
        ))
    })
}

pub(super) fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), Failure> {
    // Atomic, not flushed: runtime state lives as long as the container (runc does the same).
    semble_files::write_with(path, data, false)
        .map_err(|e| Failure(format!("cannot write `{}`: {e}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Failure(format!("cannot set permissions of `{}`: {e}", path.display())))
}

pub(super) fn mkdir(path: &Path, mode: u32) -> Result<(), Failure> {
    fs::create_dir_all(path).map_err(|e| Failure(format!("cannot create `{}`: {e}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Failure(format!("cannot set permissions of `{}`: {e}", path.display())))
}

/// Compile a profile to BPF for this host, or reuse the program compiled for the same profile
/// before (`ROOT/cache/seccomp/`). Most containers of a node share a few policies, so nearly
/// every start is a cache hit.
pub(super) fn compile_cached(
    settings: &Settings,
    profile: &semble_policy::seccomp_profile::SeccompProfile,
) -> Result<Vec<u8>, String> {
    use std::hash::{Hash, Hasher};
    let json = serde_json::to_vec(profile).map_err(|e| e.to_string())?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut h);
    std::env::consts::ARCH.hash(&mut h);
    let dir = settings.root.join("cache").join("seccomp");
    let key = format!("{:016x}", h.finish());
    let (json_path, bpf_path) = (dir.join(format!("{key}.json")), dir.join(format!("{key}.bpf")));
    // A hit must match the whole profile, not only its hash.
    if let (Ok(cached_json), Ok(bpf)) = (fs::read(&json_path), fs::read(&bpf_path)) {
        if cached_json == json && !bpf.is_empty() {
            return Ok(bpf);
        }
    }
    let bpf = semble_seccomp::bpf::compile(profile, semble_seccomp::bpf::Arch::native()).map_err(|e| e.to_string())?;
    if fs::create_dir_all(&dir).is_ok() {
        // Program first, profile second: a reader that finds the profile finds the program.
        let _ = semble_files::write_with(&bpf_path, &bpf, false);
        let _ = semble_files::write_with(&json_path, &json, false);
    }
    Ok(bpf)
}

/// Spawn `cmd` and forward every signal the shim receives to it until it exits.
pub(super) fn run_forwarding_signals(
    mut cmd: Command,
    on_started: Option<Box<dyn FnOnce() + Send>>,
) -> std::io::Result<ExitStatus> {
    use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
    use nix::unistd::Pid;
    let all = SigSet::all();
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old)).map_err(std::io::Error::from)?;
    // The standard library resets the signal mask in the child.
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            return Err(e);
        }
    };
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    // A helper thread started here inherits the blocked mask: signals stay with this loop.
    let helper = on_started.map(std::thread::spawn);
    loop {
        if let Some(status) = child.try_wait()? {
            if let Some(h) = helper {
                let _ = h.join();
            }
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            return Ok(status);
        }
        match all.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => continue,
            Ok(sig) => {
                let _ = kill(pid, sig);
            }
        }
    }
}

pub(super) fn record_and_backend(settings: &Settings, id: &str) -> Result<(Record, Backend), Failure> {
    let rec =
        state::load(&settings.records_dir(), id)?.ok_or_else(|| Failure(format!("container `{id}` does not exist")))?;
    let mut b = backend::find(settings, rec.backend).map_err(|e| {
        Failure(format!("container `{id}` runs under {}, which is no longer usable: {e}", rec.backend.as_str()))
    })?;
    b.extra = rec.backend_flags.clone();
    Ok((rec, b))
}
