//! Which mounts a container may have: judged by what they are, not by how they are spelled.
//!
//! A mount request comes from the engine, which copies in what the container or pod author
//! asked for (volumes, `--mount`, hostPath). Two things are decided here:
//!
//! * **types** are an allow-list: `bind`, `tmpfs`, and the kernel filesystems a container needs
//!   where engines put them (`proc` at `/proc`, `sysfs` at `/sys` and `cgroup`/`cgroup2` at
//!   `/sys/fs/cgroup`, both made read-only, `devpts` at `/dev/pts`, `mqueue` at `/dev/mqueue`).
//!   `overlay`, `devtmpfs`, a second `proc`, anything else: refused by name.
//! * **bind sources** are judged by the object they resolve to on the host: the shim opens each
//!   source itself (`openat2`, magic links such as `/proc/PID/root` refused, ordinary symbolic
//!   links followed), reads back the object's real path, and judges that ([`judge_source`]);
//!   `..` in a source is refused outright. The configuration then names the real path, so the
//!   runtime mounts what was judged.
//!
//! The window between the check and the runtime's mount is closed for everyone but root: a
//! source is refused unless every directory on its way belongs to root (or the shim's own user)
//! and no one else can rename entries in it (not writable by group or others; or sticky, with
//! the next entry also root's). Only root could swap a component in between, and root is
//! trusted. See `docs/security.md`.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// What the shim found out about one bind source on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The object the source resolves to, and, if some user other than root could swap a
    /// directory on the way to it, which one and why.
    Resolved {
        /// Its real path.
        real: PathBuf,
        /// Why the path to it is not safe from other users, if it is not.
        unsafe_ancestor: Option<String>,
    },
    /// It cannot be judged (missing, a magic link on the way, `..`).
    Refused(String),
}

/// Bind sources by their spelling in the request.
pub type Sources = BTreeMap<String, Source>;

/// Every bind source taken as its own real path, safely reached: for tests of the pure merge
/// only (golden files, unit tests), where the paths do not exist on the test host.
pub fn sources_as_written(cfg: &Value) -> Sources {
    cfg.get("mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| is_bind(m))
        .filter_map(|m| m.get("source").and_then(Value::as_str))
        .map(|s| (s.to_string(), Source::Resolved { real: PathBuf::from(normalise(s)), unsafe_ancestor: None }))
        .collect()
}

/// Mount types the kernel filesystems may have, with where they may go (`None`: anywhere).
const KERNEL_FS: &[(&str, &[&str])] = &[
    ("proc", &["/proc"]),
    ("sysfs", &["/sys"]),
    ("cgroup", &["/sys/fs/cgroup"]),
    ("cgroup2", &["/sys/fs/cgroup"]),
    ("devpts", &["/dev/pts"]),
    ("mqueue", &["/dev/mqueue"]),
];

/// Whether a mount is a bind mount (by type, or by option with type `none` or none at all).
pub fn is_bind(m: &Value) -> bool {
    let t = m.get("type").and_then(Value::as_str).unwrap_or("");
    let opt = m
        .get("options")
        .and_then(Value::as_array)
        .is_some_and(|o| o.iter().any(|x| matches!(x.as_str(), Some("bind") | Some("rbind"))));
    t == "bind" || t == "rbind" || ((t.is_empty() || t == "none") && opt)
}

/// Whether a mount carries the `ro` option.
pub fn is_read_only(m: &Value) -> bool {
    m.get("options").and_then(Value::as_array).is_some_and(|o| o.iter().any(|x| x.as_str() == Some("ro")))
}

/// A bind source made absolute against the bundle, as the runtime would read it.
pub fn absolute_source(src: &str, bundle: &Path) -> PathBuf {
    let p = Path::new(src);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        bundle.join(p)
    }
}

/// Resolve every bind source of a configuration on this host (I/O; `judge_*` are pure).
pub fn resolve_sources(cfg: &Value, bundle: &Path) -> Sources {
    let mut out = Sources::new();
    for m in cfg.get("mounts").and_then(Value::as_array).into_iter().flatten() {
        if !is_bind(m) {
            continue;
        }
        let Some(src) = m.get("source").and_then(Value::as_str) else { continue };
        out.entry(src.to_string()).or_insert_with(|| resolve(&absolute_source(src, bundle)));
    }
    out
}

fn resolve(path: &Path) -> Source {
    if path.components().any(|c| c == Component::ParentDir) {
        return Source::Refused("it contains `..`; name the directory itself".into());
    }
    let real = match crate::sys::real_path_no_magic_links(path) {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Source::Refused(
                "it goes through a link into another process's filesystem view (/proc/PID/root, /proc/PID/fd…)".into(),
            )
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Source::Refused("it does not exist".into()),
        Err(e) => return Source::Refused(format!("it cannot be opened: {e}")),
    };
    Source::Resolved { unsafe_ancestor: unsafe_ancestor(&real), real }
}

/// The first directory on the way to `real` that a user other than root (or the shim's own
/// user) could change entries of, if any.
fn unsafe_ancestor(real: &Path) -> Option<String> {
    let me = nix::unistd::geteuid().as_raw();
    // Inside a user namespace (rootless Podman runs the runtime as its namespace's root), the
    // host's root and every other unmapped user look alike: the overflow uid. A rootless shim
    // binds with its user's own rights, so a swapped path exposes nothing that user cannot read.
    let overflow = crate::settings::in_user_namespace()
        .then(|| std::fs::read_to_string("/proc/sys/kernel/overflowuid").ok()?.trim().parse::<u32>().ok())
        .flatten();
    // The overflow uid is trusted only for the system's own directories and inside the trees
    // only ever bound read-only (packages own them): another local user's directories look the
    // same from inside the namespace and must not pass.
    let trusted = |uid: u32, path: &Path| {
        uid == 0
            || uid == me
            || (Some(uid) == overflow
                && (SYSTEM_DIRECTORIES.iter().any(|s| path == Path::new(s))
                    || READ_ONLY_TREES.iter().any(|t| within(&path.to_string_lossy(), t))))
    };
    let mut dir = PathBuf::from("/");
    for c in real.components().skip(1) {
        let next = dir.join(c);
        let (Ok(d), Ok(n)) = (std::fs::symlink_metadata(&dir), std::fs::symlink_metadata(&next)) else {
            return Some(format!("`{}` cannot be examined", next.display()));
        };
        let writable_by_others = d.mode() & 0o022 != 0;
        let sticky = d.mode() & 0o1000 != 0;
        if !trusted(d.uid(), &dir) {
            return Some(format!("`{}` belongs to uid {}", dir.display(), d.uid()));
        }
        if writable_by_others && !(sticky && trusted(n.uid(), &next)) {
            return Some(format!(
                "`{}` is writable by others{}",
                dir.display(),
                if sticky { format!(" and `{}` is not root's", next.display()) } else { String::new() }
            ));
        }
        dir = next;
    }
    None
}

/// Directories root owns on every host, which a rootless shim sees owned by the overflow uid.
const SYSTEM_DIRECTORIES: &[&str] = &[
    "/",
    "/home",
    "/srv",
    "/mnt",
    "/media",
    "/opt",
    "/var",
    "/var/home",
    "/var/lib",
    "/var/tmp",
    "/tmp",
    "/run",
    "/run/user",
];

/// Trees whose files are bound read-only only ([`judge_source`]) and that the system's packages
/// own: the overflow uid is trusted anywhere in them.
const READ_ONLY_TREES: &[&str] = &["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc"];

/// Who the container is, for telling its own engine files from other containers'.
#[derive(Debug, Clone, Default)]
pub struct Owner<'a> {
    /// The container's ID.
    pub id: &'a str,
    /// Its pod sandbox's ID (CRI), if any.
    pub sandbox: Option<&'a str>,
    /// Its pod's UID (CRI), if any.
    pub pod_uid: Option<&'a str>,
    /// The policy passes GPUs through (the driver's files a CDI spec mounts are allowed).
    pub gpu: bool,
    /// More engine state directories (a rootless Podman's, in its user's directories).
    pub engine_roots: Vec<String>,
    /// A rootless user's own private directories and home ([`UserPrivate`]).
    pub private: UserPrivate,
}

/// A rootless user's directories no container may have bound in, as real paths (resolved
/// through symbolic links, as bind sources are) and as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPrivate {
    /// Never bound, nor anything above them: the runtime directory, semble's state, policies
    /// and proxy sockets, the configuration and state directories, semble's own binaries.
    pub dirs: Vec<String>,
    /// Home directories besides `/home/USER`: neither they nor their hidden entries are bound.
    pub homes: Vec<String>,
}

impl UserPrivate {
    /// From paths as the environment gives them: each is kept as written (normalised) and as
    /// its real path when it exists.
    pub fn new(dirs: &[PathBuf], homes: &[PathBuf]) -> UserPrivate {
        UserPrivate { dirs: spellings(dirs), homes: spellings(homes) }
    }
}

/// Absolute paths as written (normalised: no trailing `/`, no `.`) and as real paths where they
/// exist — bind sources are judged by their real paths, so a list of directories to compare them
/// with holds both (`/home` may be a link to `/var/home`).
pub fn spellings(paths: &[PathBuf]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paths.iter().filter(|p| p.is_absolute()) {
        let written = normalise(&p.to_string_lossy());
        let real = std::fs::canonicalize(p).ok().map(|r| r.to_string_lossy().into_owned());
        for s in std::iter::once(written).chain(real) {
            if s != "/" && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Host paths whose exposure is a way out: binding one of them, or anything above them, is
/// refused.
const PROTECTED: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib64",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/var/lib",
    "/var/log",
    "/var/tmp",
    "/var/lib/containerd",
    "/var/lib/containers",
    "/var/lib/docker",
    "/var/lib/kubelet",
    "/var/lib/crio",
    "/opt",
];

/// Trees nothing may be bound from.
const NEVER: &[&str] = &["/proc", "/sys", "/dev", "/boot", "/root"];

/// System trees whose files may be bound read-only only (host libraries and tools, as CDI
/// specs mount the GPU driver's).
const SYSTEM: &[&str] = &["/usr", "/lib", "/lib64", "/bin", "/sbin", "/opt"];

/// Files under `/etc` a container may have read-only (engines and CDI bind these).
const ETC_READ_ONLY: &[&str] =
    &["/etc/localtime", "/etc/timezone", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/machine-id"];

/// Driver files a GPU policy's CDI spec mounts, read-only.
const GPU_READ_ONLY: &[&str] =
    &["/etc/vulkan", "/etc/OpenCL", "/etc/nvidia", "/lib/firmware/nvidia", "/run/nvidia-persistenced/socket"];

/// Engines' state: a container may have the files the engine made for it (its hosts file, its
/// pod's shm…), volumes, and nothing else from these trees (sockets, other containers' files).
const ENGINE_STATE: &[&str] = &[
    "/run/containerd",
    "/var/lib/containerd",
    "/run/containers",
    "/var/lib/containers",
    "/run/libpod",
    "/run/podman",
    "/run/crio",
    "/var/lib/crio",
    "/run/docker",
    "/var/lib/docker",
    "/var/lib/kubelet",
];

fn within(path: &str, tree: &str) -> bool {
    tree == "/" || path == tree || path.strip_prefix(tree).is_some_and(|r| r.starts_with('/'))
}

/// Whether `s` has the shape engines give container and sandbox IDs (Podman, containerd's CRI,
/// CRI-O: 64 hexadecimal digits; at least 32 are required). A name chosen by hand — or a CRI
/// annotation a container author wrote, such as `storage` or `containers` — names directories
/// of the engine itself, never one container's.
fn engine_id(s: &str) -> bool {
    s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `s` is a UUID (a pod's UID, as the kubelet names its directories).
fn uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// Whether `real` (inside an engine's state tree `tree`) belongs to this container: below the
/// tree, a path component is its ID or its sandbox's (both of an engine's ID shape), it is under
/// its pod's kubelet directory, or it is a named volume.
fn owned_by(real: &str, tree: &str, o: &Owner<'_>) -> bool {
    let below = real.strip_prefix(tree).unwrap_or("");
    let ours = |p: &str| engine_id(p) && (p == o.id || Some(p) == o.sandbox);
    if below.split('/').any(ours) {
        return true;
    }
    if let (Some(uid), Some(rest)) = (o.pod_uid.filter(|u| uuid(u)), real.strip_prefix("/var/lib/kubelet/pods/")) {
        if rest.split('/').next() == Some(uid) {
            return true;
        }
    }
    // Named volumes (`VOLUMES/NAME/_data`): user data, by design shared between containers.
    let rootless_volumes = o.engine_roots.iter().map(|r| format!("{r}/storage/volumes/"));
    ["/var/lib/containers/storage/volumes/".to_string(), "/var/lib/docker/volumes/".to_string()]
        .into_iter()
        .chain(rootless_volumes)
        .any(|v| real.strip_prefix(v.as_str()).is_some_and(|r| r.split('/').nth(1) == Some("_data")))
}

/// Judge a bind source by its real path. `Err` says why it is refused.
pub fn judge_source(real: &Path, read_only: bool, o: &Owner<'_>) -> Result<(), String> {
    let r = real.to_string_lossy();
    // `/var/run` is a link to `/run` on every distribution semble supports.
    let r = match r.strip_prefix("/var/run") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/run{rest}"),
        _ => r.into_owned(),
    };
    let r = r.as_str();
    if let Some(p) = PROTECTED.iter().find(|p| within(p, r)) {
        return Err(if r == *p { format!("it is the host's `{p}`") } else { format!("it holds the host's `{p}`") });
    }
    if o.gpu && GPU_READ_ONLY.iter().any(|g| within(r, g)) {
        return if read_only { Ok(()) } else { Err("GPU driver files are mounted read-only only; add `ro`".into()) };
    }
    if let Some(t) = NEVER.iter().find(|t| within(r, t)) {
        return Err(format!("nothing under the host's `{t}` is mounted into a sandbox"));
    }
    if within(r, "/etc") {
        if ETC_READ_ONLY.contains(&r) {
            return if read_only {
                Ok(())
            } else {
                Err("host configuration files are mounted read-only only; add `ro`".into())
            };
        }
        return Err("host configuration under `/etc` is not mounted into a sandbox".into());
    }
    if let Some(t) = SYSTEM.iter().find(|t| within(r, t)) {
        return if read_only {
            Ok(())
        } else {
            Err(format!("files of the host's `{t}` are mounted read-only only; add `ro`"))
        };
    }
    if let Some(t) =
        ENGINE_STATE.iter().copied().chain(o.engine_roots.iter().map(String::as_str)).find(|t| within(r, t))
    {
        return if owned_by(r, t, o) {
            Ok(())
        } else {
            Err(format!(
                "it is the engine's state under `{t}` (sockets, other containers' files), not this container's"
            ))
        };
    }
    if let Some(p) = o.private.dirs.iter().find(|p| within(r, p) || within(p, r)) {
        return Err(format!(
            "it {} the user's `{p}` (semble's state and policies, the proxy's sockets, the session's configuration)",
            if within(r, p) { "is in" } else { "holds" }
        ));
    }
    if within(r, "/run") {
        // The rest of /run: sockets (systemd, D-Bus, users' runtime directories).
        return Err("it is under the host's `/run` (sockets of systemd, D-Bus, users' sessions)".into());
    }
    // Homes: `/home/USER` (and `/var/home/USER`, where `/home` is a link to it), and the rootless
    // user's own wherever it is.
    let whole =
        || "it is a user's whole home directory (keys, credentials); mount a project directory in it".to_string();
    let hidden = |f: &str| {
        format!("it is in a hidden directory of a user's home (`{f}`: keys, credentials, configuration, services that run as the user)")
    };
    for base in ["/home", "/var/home"] {
        if let Some(home) = r.strip_prefix(base).and_then(|h| h.strip_prefix('/')) {
            let mut parts = home.split('/');
            match (parts.next(), parts.next()) {
                (_, None) => return Err(whole()),
                (_, Some(f)) if f.starts_with('.') => return Err(hidden(f)),
                _ => {}
            }
        }
    }
    for home in &o.private.homes {
        if r == home || within(home, r) {
            return Err(whole());
        }
        if let Some(f) =
            r.strip_prefix(home.as_str()).and_then(|h| h.strip_prefix('/')).and_then(|h| h.split('/').next())
        {
            if f.starts_with('.') {
                return Err(hidden(f));
            }
        }
    }
    Ok(())
}

/// The checks of the mount list that need no host facts: types and where kernel filesystems go.
/// Returns the index of the mount refused and why.
pub fn judge_type(m: &Value, seen_proc: &mut bool) -> Result<(), String> {
    if is_bind(m) {
        return Ok(());
    }
    let t = m.get("type").and_then(Value::as_str).unwrap_or("");
    let dest = normalise(m.get("destination").and_then(Value::as_str).unwrap_or(""));
    if t == "tmpfs" {
        return Ok(());
    }
    match KERNEL_FS.iter().find(|(k, _)| *k == t) {
        Some((_, places)) if places.contains(&dest.as_str()) => {
            if t == "proc" {
                if *seen_proc {
                    return Err("a second `proc` mount".into());
                }
                *seen_proc = true;
            }
            Ok(())
        }
        Some((_, places)) => Err(format!("a `{t}` mount at `{dest}`: it only goes at {}", places.join(", "))),
        None if t.is_empty() => Err(format!("a mount at `{dest}` without a type; give it `bind` or `tmpfs`")),
        None => Err(format!("a `{t}` mount at `{dest}`: mount types are bind, tmpfs and the kernel filesystems engines put at /proc, /sys, /dev/pts and /dev/mqueue")),
    }
}

/// `/a/./b//c/` → `/a/b/c`.
pub fn normalise(p: &str) -> String {
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    format!("/{}", parts.join("/"))
}

/// The trees and files above, for docs and tests.
pub fn rules() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("protected (refused, and anything holding them)", PROTECTED.to_vec()),
        ("never bound from", NEVER.to_vec()),
        ("read-only only", SYSTEM.to_vec()),
        ("read-only under /etc", ETC_READ_ONLY.to_vec()),
        ("engine state (the container's own files and named volumes only)", ENGINE_STATE.to_vec()),
        ("GPU driver files, read-only (GPU policies)", GPU_READ_ONLY.to_vec()),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const C1: &str = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";
    const SB9: &str = "5b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b9";
    const POD: &str = "0e7a8d2c-3b1f-4f7e-9a55-2d6c1e0b7f11";

    fn o() -> Owner<'static> {
        Owner {
            id: C1,
            sandbox: Some(SB9),
            pod_uid: Some(POD),
            gpu: false,
            engine_roots: vec!["/run/user/1001/containers".into(), "/home/alice/.local/share/containers".into()],
            private: UserPrivate {
                dirs: vec![
                    "/run/user/1001".into(),
                    "/tmp/podman-run-1001".into(),
                    "/home/alice/.config".into(),
                    "/srv/alice-state".into(),
                ],
                homes: vec!["/srv/homes/alice".into()],
            },
        }
    }

    #[test]
    fn sources_are_judged_by_where_they_lead() {
        let refused = [
            ("/", false),
            ("/tmp", false),
            ("/run", false),
            ("/etc/shadow", true),
            ("/etc/semble/credentials.yaml", true),
            ("/proc/1", true),
            ("/sys/kernel", true),
            ("/dev/sda", true),
            ("/root/.ssh", true),
            ("/run/containerd", false),
            ("/run/containerd/containerd.sock", false),
            ("/run/podman/podman.sock", false),
            ("/run/docker.sock", false),
            ("/run/systemd/private", false),
            ("/run/user/1000", false),
            ("/var/lib/kubelet/pods/other-uid/volumes/secret", true),
            ("/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/other/hosts", true),
            ("/usr/lib/x86_64-linux-gnu", false),
            ("/home/alice", false),
            ("/run/user/1001/containers/vfs-containers/other/userdata/hostname", false),
        ];
        for (p, ro) in refused {
            assert!(judge_source(Path::new(p), ro, &o()).is_err(), "{p} must be refused");
        }
        let allowed = [
            ("/data/models", false),
            ("/tmp/semble-test/volume", false),
            ("/home/alice/project", false),
            ("/etc/localtime", true),
            ("/usr/lib/x86_64-linux-gnu/libcuda.so.1", true),
            ("/var/lib/kubelet/pods/0e7a8d2c-3b1f-4f7e-9a55-2d6c1e0b7f11/volumes/kubernetes.io~empty-dir/work", false),
            ("/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/5b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b95b9/hosts", false),
            ("/run/containers/storage/overlay-containers/c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1/userdata/hosts", false),
            ("/var/lib/containers/storage/volumes/models/_data", false),
            ("/run/user/1001/containers/vfs-containers/c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1/userdata/hostname", false),
            ("/home/alice/.local/share/containers/storage/volumes/models/_data", false),
        ];
        for (p, ro) in allowed {
            assert!(judge_source(Path::new(p), ro, &o()).is_ok(), "{p}: {:?}", judge_source(Path::new(p), ro, &o()));
        }
        let gpu = Owner { gpu: true, ..o() };
        assert!(judge_source(Path::new("/run/nvidia-persistenced/socket"), true, &gpu).is_ok());
        assert!(judge_source(Path::new("/run/nvidia-persistenced/socket"), true, &o()).is_err());
    }

    #[test]
    fn a_container_author_cannot_name_the_engine_or_the_users_private_directories() {
        // CRI annotations a container author wrote, naming the engine's own directories.
        for sandbox in ["containers", "storage", "overlay-containers", "userdata"] {
            let forged = Owner { sandbox: Some(sandbox), ..o() };
            for p in [
                "/run/user/1001/containers",
                "/run/user/1001/containers/auth.json",
                "/var/lib/containers/storage/overlay-containers/x/userdata/config.json",
                "/home/alice/.local/share/containers/storage",
            ] {
                let got = judge_source(Path::new(p), false, &forged);
                assert!(got.is_err(), "{p} with sandbox `{sandbox}` must be refused");
            }
        }
        // The engine tree's own root is never one container's, even named by a real-shaped ID.
        let named = Owner { id: "4ab1d5e2c3f4a5b6c7d8e9f0a1b2c3d4", ..o() };
        assert!(judge_source(Path::new("/run/user/1001/containers"), false, &named).is_err());
        // A pod UID that is not a UUID names nothing.
        let pod = Owner { pod_uid: Some("pods"), ..o() };
        assert!(judge_source(Path::new("/var/lib/kubelet/pods/pods/x"), false, &pod).is_err());
        // The rootless user's own directories, wherever XDG puts them, and hidden ones at home.
        for p in [
            "/tmp/podman-run-1001",
            "/tmp/podman-run-1001/podman/podman.sock",
            "/tmp/podman-run-1001/semble-shim/semble/other/box",
            "/home/alice/.config",
            "/home/alice/.config/semble/policies",
            "/home/alice/.config/systemd/user",
            "/home/alice/.local/state/semble/denials",
            "/home/alice/.ssh",
            "/srv/alice-state",
            "/srv",
        ] {
            assert!(judge_source(Path::new(p), false, &o()).is_err(), "{p} must be refused");
        }
        assert!(judge_source(Path::new("/srv/project"), false, &o()).is_ok());
        // Homes elsewhere: /var/home (where /home links to it) and the user's own.
        for p in
            ["/var/home/alice", "/var/home/alice/.ssh", "/srv/homes/alice", "/srv/homes/alice/.bashrc", "/srv/homes"]
        {
            assert!(judge_source(Path::new(p), false, &o()).is_err(), "{p} must be refused");
        }
        assert!(judge_source(Path::new("/srv/homes/alice/project"), false, &o()).is_ok());
        // Written with a trailing slash or through a link, the private list still holds.
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("cfg");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        let u = UserPrivate::new(&[PathBuf::from(format!("{}/", t.path().join("link").display()))], &[]);
        let owner = Owner { private: u, ..o() };
        let inside = std::fs::canonicalize(&real).unwrap().join("systemd");
        assert!(judge_source(&inside, false, &owner).is_err(), "{}", inside.display());
    }

    #[test]
    fn only_known_types_where_engines_put_them() {
        let mut proc = false;
        let m = |t: &str, d: &str| serde_json::json!({"type": t, "destination": d, "source": t});
        assert!(judge_type(&m("proc", "/proc"), &mut proc).is_ok());
        assert!(judge_type(&m("proc", "/proc"), &mut proc).is_err(), "a second proc");
        assert!(judge_type(&m("proc", "/hostproc"), &mut false).is_err());
        assert!(judge_type(&m("sysfs", "/sys"), &mut false).is_ok());
        assert!(judge_type(&m("sysfs", "/x"), &mut false).is_err());
        assert!(judge_type(&m("overlay", "/x"), &mut false).is_err());
        assert!(judge_type(&m("devtmpfs", "/x"), &mut false).is_err());
        assert!(judge_type(&m("tmpfs", "/x"), &mut false).is_ok());
        assert!(judge_type(
            &serde_json::json!({"type": "none", "destination": "/x", "source": "/y", "options": ["rbind"]}),
            &mut false
        )
        .is_ok());
    }

    #[test]
    fn resolution_refuses_dot_dot_and_magic_links_and_reads_symlinks() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(resolve(&t.path().join("a/../b")), Source::Refused(m) if m.contains("..")));
        assert!(
            matches!(resolve(Path::new("/proc/self/root/etc")), Source::Refused(m) if m.contains("/proc/PID/root"))
        );
        std::fs::create_dir(t.path().join("real")).unwrap();
        std::os::unix::fs::symlink(t.path().join("real"), t.path().join("link")).unwrap();
        match resolve(&t.path().join("link")) {
            Source::Resolved { real, .. } => assert_eq!(real, t.path().join("real").canonicalize().unwrap()),
            other => panic!("{other:?}"),
        }
        std::os::unix::fs::symlink("/", t.path().join("up")).unwrap();
        match resolve(&t.path().join("up")) {
            Source::Resolved { real, .. } => assert_eq!(real, Path::new("/")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_directory_another_user_controls_makes_the_source_unsafe() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("theirs");
        std::fs::create_dir_all(dir.join("vol")).unwrap();
        nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(4242)), None).unwrap();
        match resolve(&dir.join("vol")) {
            Source::Resolved { unsafe_ancestor: Some(why), .. } => assert!(why.contains("4242"), "{why}"),
            other => panic!("{other:?}"),
        }
        let mine = t.path().join("mine");
        std::fs::create_dir_all(mine.join("vol")).unwrap();
        assert!(matches!(resolve(&mine.join("vol")), Source::Resolved { unsafe_ancestor: None, .. }));
    }
}
