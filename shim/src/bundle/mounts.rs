//! Mounts: the request's judged ([`crate::mounts`]), semble's own added (`/.semble`, the
//! scratch tmpfs of writable paths), and under gVisor the filesystem section as mounts.

use super::*;

pub(super) fn bind(source: &Path, dest: &str, file: bool) -> Value {
    let mut options = vec!["bind", "ro", "nosuid", "nodev"];
    if !file {
        options.push("noexec");
    }
    json!({"destination": dest, "type": "bind", "source": source.to_string_lossy(), "options": options})
}

/// Under gVisor, enforce the `filesystem` section with mounts, placed before the engine's so
/// that its files under these paths (`/etc/hosts`…) stay on top. Returns a summary.
pub(super) fn gvisor_filesystem_mounts(
    cfg: &mut Value,
    policy: &SandboxPolicy,
    r: &RunscInputs,
) -> Result<String, Refusal> {
    let mut mounted: Vec<String> = cfg
        .get("mounts")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(|x| x.get("destination").and_then(Value::as_str)).map(normalise).collect())
        .unwrap_or_default();
    // semble's own mount point comes later.
    mounted.push(MOUNT_DIR.to_string());
    let (mut hidden, mut ro) = (0, 0);
    let new: Vec<Value> = semble_gvisor::filesystem_mounts(policy, &r.root_entries, &mounted, &r.present)
        .iter()
        .map(|m| match m {
            semble_gvisor::FsMount::HideDir { path } => {
                hidden += 1;
                json!({"destination": path, "type": "tmpfs", "source": "tmpfs",
                       "options": ["ro", "nosuid", "nodev", "noexec", "mode=0000", "size=4096"]})
            }
            semble_gvisor::FsMount::ReadOnly { path, exec } => {
                ro += 1;
                let mut options = vec!["rbind", "ro", "nosuid", "nodev"];
                if !exec {
                    options.push("noexec");
                }
                json!({"destination": path, "type": "bind", "source": r.rootfs.join(path.trim_start_matches('/')),
                       "options": options})
            }
        })
        .collect();
    let list = cfg.as_object_mut().ok_or(Refusal::WrongType("(root)"))?.entry("mounts").or_insert_with(|| json!([]));
    let list = list.as_array_mut().ok_or(Refusal::WrongType("mounts"))?;
    let noexec = noexec_writable_mounts(list, policy)?;
    for (i, m) in new.into_iter().enumerate() {
        list.insert(i, m);
    }
    let mut summary = format!("{hidden} unlisted top-level directories hidden, {ro} read-only binds");
    if !noexec.is_empty() {
        summary.push_str(&format!(", noexec on the engine's {}", noexec.join(", ")));
    }
    Ok(summary)
}

/// Under gVisor a mount's options are the only execute control (there is no Landlock): the
/// engine's own mounts on the policy's `readWrite` paths (a pod's emptyDir on `/tmp` or
/// `/workspace`) get `noexec`, `nosuid` and `nodev`, unless an `execute` path lies on, under or
/// above them. Returns the destinations changed.
pub(super) fn noexec_writable_mounts(list: &mut [Value], policy: &SandboxPolicy) -> Result<Vec<String>, Refusal> {
    let Some(fs) = &policy.filesystem else { return Ok(Vec::new()) };
    let within = |a: &str, b: &str| b == "/" || a == b || a.starts_with(&format!("{b}/"));
    let mut changed = Vec::new();
    for m in list.iter_mut() {
        let Some(dest) = m.get("destination").and_then(Value::as_str).map(normalise) else { continue };
        let writable = fs.read_write.iter().map(|p| normalise(p)).any(|p| p != "/" && within(&dest, &p));
        let runs_code = fs.execute.iter().map(|p| normalise(p)).any(|p| within(&dest, &p) || within(&p, &dest));
        if !writable || runs_code {
            continue;
        }
        let obj = m.as_object_mut().ok_or(Refusal::WrongType("mounts"))?;
        let options = obj.entry("options").or_insert_with(|| json!([]));
        let options = options.as_array_mut().ok_or(Refusal::WrongType("mounts[].options"))?;
        let mut added = false;
        for o in ["noexec", "nosuid", "nodev"] {
            let (on, off) = (o, &o[2..]);
            options.retain(|x| x.as_str() != Some(off));
            if !options.iter().any(|x| x.as_str() == Some(on)) {
                options.push(json!(on));
                added |= o == "noexec";
            }
        }
        if added {
            changed.push(dest);
        }
    }
    Ok(changed)
}

/// tmpfs sizes for writable paths the runtime did not mount: a quarter of the memory limit,
/// at most 1 GiB (tmpfs pages count against the container's memory).
pub(super) fn scratch_size(policy: &SandboxPolicy) -> u64 {
    const DEFAULT: u64 = 256 << 20;
    policy.resources.memory.map(|m| (m / 4).clamp(16 << 20, 1 << 30)).unwrap_or(DEFAULT)
}

/// With a read-only root, the policy's `readWrite` paths would not be writable unless something
/// is mounted there: mount a tmpfs (nosuid, nodev, noexec) on each that has no mount yet.
pub(super) fn add_scratch_mounts(
    cfg: &mut Value,
    policy: &SandboxPolicy,
    uid: u32,
    gid: u64,
) -> Result<Vec<String>, Refusal> {
    let Some(fs) = &policy.filesystem else {
        return Ok(Vec::new());
    };
    let root = cfg.as_object_mut().ok_or(Refusal::WrongType("(root)"))?;
    let mounts = root.entry("mounts").or_insert_with(|| json!([]));
    let mounts = mounts.as_array_mut().ok_or(Refusal::WrongType("mounts"))?;
    let existing: Vec<String> =
        mounts.iter().filter_map(|m| m.get("destination").and_then(Value::as_str)).map(normalise).collect();
    let size = scratch_size(policy);
    let mut added = Vec::new();
    for p in &fs.read_write {
        let covered = existing.iter().any(|d| d != "/" && (d == p || p.starts_with(&format!("{d}/"))));
        if covered || p == "/" {
            continue;
        }
        let mut options = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
        if matches!(p.as_str(), "/tmp" | "/var/tmp" | "/dev/shm") {
            options.push("mode=1777".into());
        } else {
            options.extend(["mode=0755".to_string(), format!("uid={uid}"), format!("gid={gid}")]);
        }
        options.push(format!("size={size}"));
        mounts.push(json!({"destination": p, "type": "tmpfs", "source": "tmpfs", "options": options}));
        added.push(format!("{p} ({})", semble_policy::quantity::format_bytes(size)));
    }
    Ok(added)
}

pub(super) fn union_paths(linux: &mut Map<String, Value>, key: &str, add: &[&str]) {
    let entry = linux.entry(key.to_string()).or_insert_with(|| json!([]));
    if !entry.is_array() {
        *entry = json!([]);
    }
    if let Value::Array(list) = entry {
        for p in add {
            if !list.iter().any(|v| v.as_str() == Some(p)) {
                list.push(json!(p));
            }
        }
    }
}

pub(super) fn normalise(p: &str) -> String {
    crate::mounts::normalise(p)
}

/// Judge every mount: types, reserved destinations, and each bind source by the object it
/// resolves to ([`crate::mounts`]); bind sources are rewritten to their real paths and the
/// kernel's view of the host (`sysfs`, `cgroup`) is made read-only.
pub(super) fn check_mounts(
    cfg: &mut Value,
    inputs: &Inputs<'_>,
    annotations: &BTreeMap<String, String>,
    in_pod: bool,
) -> Result<(), Refusal> {
    use crate::mounts::{is_bind, is_read_only, judge_source, judge_type, Owner, Source};
    let policy = inputs.policy.name.clone();
    // The pod's sandbox and UID name engine files only for a container of a pod semble made
    // (annotations alone are anyone's to write), and only from the engine's own keys.
    let get = |k: &str| annotations.get(k).map(String::as_str);
    let sandbox =
        in_pod.then(|| super::engine_key(get, CRI_SANDBOX_ID, semble_policy::facts::CRIO_SANDBOX_ID)).flatten();
    let pod_uid = in_pod.then(|| super::engine_key(get, CRI_SANDBOX_UID, CRIO_POD_UID)).flatten();
    let owner = Owner {
        id: inputs.id,
        sandbox,
        pod_uid,
        gpu: inputs.policy.devices.gpu.is_some(),
        engine_roots: inputs.engine_roots.to_vec(),
        private: inputs.private_dirs.clone(),
    };
    let Some(mounts) = cfg.get_mut("mounts").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let mut seen_proc = false;
    for m in mounts.iter_mut() {
        let dest = m.get("destination").and_then(Value::as_str).unwrap_or("").to_string();
        let d = normalise(&dest);
        if d == MOUNT_DIR || d.starts_with(&format!("{MOUNT_DIR}/")) {
            return Err(Refusal::Reserved(dest));
        }
        judge_type(m, &mut seen_proc).map_err(|why| Refusal::MountType(policy.clone(), why))?;
        let kind = m.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        if matches!(kind.as_str(), "sysfs" | "cgroup" | "cgroup2") && !is_read_only(m) {
            if let Some(o) = m.as_object_mut() {
                let opts = o.entry("options").or_insert_with(|| json!([]));
                if let Some(list) = opts.as_array_mut() {
                    list.retain(|x| x.as_str() != Some("rw"));
                    list.push(json!("ro"));
                }
            }
        }
        if !is_bind(m) {
            continue;
        }
        let src = m.get("source").and_then(Value::as_str).unwrap_or("").to_string();
        let refuse = |why: String| Refusal::Mount(src.clone(), dest.clone(), policy.clone(), why);
        let real = match inputs.sources.get(&src) {
            Some(Source::Resolved { real, unsafe_ancestor: None }) => real.clone(),
            Some(Source::Resolved { unsafe_ancestor: Some(why), .. }) => {
                return Err(refuse(format!("another user could swap a directory on its way before the runtime mounts it ({why}); mount a path whose directories only root can change")))
            }
            Some(Source::Refused(why)) => return Err(refuse(why.clone())),
            None => return Err(refuse("it was not examined on this host".into())),
        };
        judge_source(&real, is_read_only(m), &owner)
            .map_err(|why| refuse(format!("{why}; mount a narrower directory")))?;
        m["source"] = json!(real.to_string_lossy());
    }
    Ok(())
}
