//! semble's own record of each container: which backend and policy it got, and where its files
//! are. Kept under `ROOT/semble/<id>/`, beside (not inside) the backends' state, so that
//! `start`, `kill`, `exec` and `delete` reach the right backend with the same policy.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bundle::BackendKind;

/// The record format version.
pub const RECORD_VERSION: u32 = 1;
/// Name of the original configuration kept in the bundle.
pub const ORIGINAL_CONFIG: &str = "config.semble-original.json";

/// What semble remembers about a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// Container ID.
    pub id: String,
    /// Backend.
    pub backend: BackendKind,
    /// The policy's name.
    pub policy: String,
    /// Where the policy came from.
    pub policy_source: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// When it was created (RFC 3339).
    pub created: String,
    /// Global flags the backend was given at create (runsc's), repeated on every command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_flags: Vec<String>,
    /// Why a fallback backend was used, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// The cgroup (v2) semble made to hold the container's egress guard, removed on `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard_cgroup: Option<PathBuf>,
    /// Where `delete` keeps the denial log, decided at `create`: rootless, the user's state
    /// directory, which later calls cannot find (Podman gives `start` and `delete` no `HOME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_denials_dir: Option<PathBuf>,
    /// Whether the container is a pod's sandbox: containers of a pod are taken for such only
    /// when their sandbox's record says `true` (`None`: a record of an older semble, trusted as
    /// before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_sandbox: Option<bool>,
}

/// Whether `records` hold the record of a pod sandbox `id` (see [`Record::pod_sandbox`]).
pub fn is_pod_sandbox(records: &Path, id: &str) -> bool {
    if !valid_id(id) {
        return false;
    }
    let Some(r) = std::fs::read(Paths::new(records, id).record())
        .ok()
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        .filter(|r| r.id == id)
    else {
        return false;
    };
    match r.pod_sandbox {
        Some(known) => known,
        // A record of an older semble: what its engine wrote, kept in the bundle (a sandbox is
        // one whose sandbox ID is its own).
        None => std::fs::read(r.bundle.join(ORIGINAL_CONFIG))
            .or_else(|_| std::fs::read(r.bundle.join("config.json")))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|c| {
                let a = |k: &str| c.get("annotations").and_then(|m| m.get(k)).and_then(|v| v.as_str());
                (a(semble_policy::facts::CRI_CONTAINER_TYPE) == Some("sandbox")
                    && a(semble_policy::facts::CRI_SANDBOX_ID) == Some(id))
                    || (a(semble_policy::facts::CRIO_CONTAINER_TYPE) == Some("sandbox")
                        && a(semble_policy::facts::CRIO_SANDBOX_ID) == Some(id))
            }),
    }
}

/// Paths of one container's semble state.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `ROOT/semble/<id>`
    pub dir: PathBuf,
}

impl Paths {
    /// For container `id` under `records_dir`.
    pub fn new(records_dir: &Path, id: &str) -> Paths {
        Paths { dir: records_dir.join(id) }
    }
    /// The record.
    pub fn record(&self) -> PathBuf {
        self.dir.join("record.json")
    }
    /// The policy text the container was created with.
    pub fn policy(&self) -> PathBuf {
        self.dir.join("policy.yaml")
    }
    /// Files mounted at `/.semble`.
    pub fn box_dir(&self) -> PathBuf {
        self.dir.join("box")
    }
    /// Scratch files (exec process descriptions).
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The policy container `id` was created with: its text and the parsed policy.
pub fn stored_policy(paths: &Paths, id: &str) -> Result<(String, semble_policy::SandboxPolicy), String> {
    let text = std::fs::read_to_string(paths.policy())
        .map_err(|e| format!("cannot read the policy of container `{id}`: {e}"))?;
    let policy = semble_policy::parse(&text)
        .map_err(|e| format!("the stored policy of container `{id}` is invalid: {e}"))?
        .policy;
    Ok((text, policy))
}

/// Load a record; `None` when semble does not know the container.
pub fn load(records_dir: &Path, id: &str) -> Result<Option<Record>, String> {
    let p = Paths::new(records_dir, id).record();
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            format!("semble's record `{}` is damaged: {e}; delete the container with `--force`", p.display())
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read semble's record `{}`: {e}", p.display())),
    }
}

/// Every record.
pub fn all(records_dir: &Path) -> Vec<Record> {
    let Ok(rd) = std::fs::read_dir(records_dir) else {
        return Vec::new();
    };
    let mut out: Vec<Record> = rd
        .filter_map(Result::ok)
        .filter_map(|e| load(records_dir, &e.file_name().to_string_lossy()).ok().flatten())
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Whether process `pid` is semble-shim's helper `command` for container `id` (its command line
/// holds both words), not a process that reused a recorded PID.
pub fn is_helper(pid: u32, command: &str, id: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.contains(&command.as_bytes()) && args.contains(&id.as_bytes())
}

/// Whether a container ID is acceptable (runc's rule: letters, digits, `_`, `+`, `-`, `.`).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(id: &str, bundle: &Path, pod_sandbox: Option<bool>) -> Record {
        Record {
            version: RECORD_VERSION,
            id: id.into(),
            backend: BackendKind::Runc,
            policy: "workspace".into(),
            policy_source: "test".into(),
            bundle: bundle.to_path_buf(),
            created: String::new(),
            backend_flags: Vec::new(),
            fallback_reason: None,
            guard_cgroup: None,
            kept_denials_dir: None,
            pod_sandbox,
        }
    }

    fn write(records: &Path, r: &Record) {
        let p = Paths::new(records, &r.id);
        std::fs::create_dir_all(&p.dir).unwrap();
        std::fs::write(p.record(), serde_json::to_vec(r).unwrap()).unwrap();
    }

    #[test]
    fn a_pod_sandbox_is_what_its_record_says_or_older_records_engine_wrote() {
        let t = tempfile::tempdir().unwrap();
        let records = t.path().join("records");
        let bundle = |name: &str, annotations: serde_json::Value| {
            let b = t.path().join(name);
            std::fs::create_dir_all(&b).unwrap();
            std::fs::write(b.join("config.json"), serde_json::json!({"annotations": annotations}).to_string()).unwrap();
            b
        };
        write(&records, &record("sb", &bundle("b1", serde_json::json!({})), Some(true)));
        write(&records, &record("plain", &bundle("b2", serde_json::json!({})), Some(false)));
        let legacy_sb = bundle(
            "b3",
            serde_json::json!({"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "old-sb"}),
        );
        write(&records, &record("old-sb", &legacy_sb, None));
        let legacy_plain = bundle("b4", serde_json::json!({"io.kubernetes.cri.container-type": "sandbox"}));
        write(&records, &record("old-plain", &legacy_plain, None));
        assert!(is_pod_sandbox(&records, "sb"));
        assert!(!is_pod_sandbox(&records, "plain"));
        assert!(is_pod_sandbox(&records, "old-sb"), "an older semble's sandbox, by what its engine wrote");
        assert!(!is_pod_sandbox(&records, "old-plain"), "an older semble's container that only says it is one");
        assert!(!is_pod_sandbox(&records, "missing"));
        assert!(!is_pod_sandbox(&records, "../records/sb"));
    }
}
