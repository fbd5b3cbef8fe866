//! Paths and choices that hold for one invocation, from flags, environment and defaults.

use std::path::{Path, PathBuf};

use crate::cli::{BackendArg, Cli, LogFormat};

/// Default state directory.
pub const DEFAULT_ROOT: &str = "/run/semble-shim";
/// Default policy directory.
pub const DEFAULT_POLICY_DIR: &str = "/etc/semble/policies";
/// Default directory of the proxy's per-policy sockets.
pub const DEFAULT_PROXY_DIR: &str = "/run/semble/proxy";

/// Whether this shim runs rootless, when no `--rootless` flag says: as an ordinary user, or as
/// root only inside a user namespace *with a user's runtime directory* (rootless Podman runs its
/// runtime as the root of the user's namespace, with `XDG_RUNTIME_DIR` set). Root in a system
/// container's namespace (LXD, sysbox) running a rootful engine as a service has no runtime
/// directory and keeps the rootful paths. Rootless, semble keeps its state, policies, sockets and
/// logs in the user's directories, as runc and crun do.
pub fn is_rootless() -> bool {
    rootless_from(
        nix::unistd::geteuid().is_root(),
        in_user_namespace(),
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| !v.is_empty()),
        None,
    )
}

/// [`is_rootless`] from its inputs; `flag` is runc's `--rootless true|false|auto`.
pub fn rootless_from(euid_root: bool, in_userns: bool, runtime_dir: bool, flag: Option<&str>) -> bool {
    match flag {
        Some("true") => true,
        Some("false") => false,
        _ => !euid_root || (in_userns && runtime_dir),
    }
}

/// Whether this process runs in a user namespace other than the host's (its uid map is not the
/// identity over every uid).
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| {
            let first: Vec<&str> = m.lines().next().unwrap_or("").split_whitespace().collect();
            first != ["0", "0", "4294967295"]
        })
        .unwrap_or(false)
}

/// This process's uid as the host sees it: the euid mapped out through `/proc/self/uid_map`
/// (rootless Podman's runtime is uid 0 inside the user's namespace, and the user outside it).
pub fn host_uid() -> u32 {
    let uid = nix::unistd::geteuid().as_raw();
    host_id(&std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default(), uid)
}

/// `id` mapped out through an id map (`INSIDE OUTSIDE COUNT` lines); itself when unmapped.
pub fn host_id(map: &str, id: u32) -> u32 {
    for line in map.lines() {
        let n: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        if let [inside, outside, count] = n[..] {
            let id = u64::from(id);
            if id >= inside && id - inside < count {
                return u32::try_from(outside + (id - inside)).unwrap_or(u32::MAX);
            }
        }
    }
    id
}

/// The user's base directories (XDG): where a rootless shim keeps its things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDirs {
    /// `$XDG_RUNTIME_DIR` (`/run/user/UID`): state, sockets.
    pub runtime: PathBuf,
    /// `$XDG_CONFIG_HOME` (`~/.config`): policies.
    pub config: PathBuf,
    /// `$XDG_STATE_HOME` (`~/.local/state`): kept denial logs, recordings.
    pub state: PathBuf,
    /// `$XDG_DATA_HOME` (`~/.local/share`): rootless Podman's storage.
    pub data: PathBuf,
    /// `$HOME`.
    pub home: PathBuf,
}

impl UserDirs {
    /// From an environment (a map in tests).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> UserDirs {
        let uid = host_uid();
        let dir = |var: &str, fallback: PathBuf| {
            get(var).filter(|v| v.starts_with('/')).map(PathBuf::from).unwrap_or(fallback)
        };
        let runtime = dir("XDG_RUNTIME_DIR", PathBuf::from(format!("/run/user/{uid}")));
        // Without HOME (Podman calls `start` and `delete` without it): a directory in the user's
        // own runtime directory — never a guessable name in a shared directory another user could
        // claim first, nor a passwd lookup (inside a user namespace the host's uid may name
        // someone else there).
        let home = get("HOME")
            .filter(|h| h.starts_with('/'))
            .map(PathBuf::from)
            .unwrap_or_else(|| runtime.join("semble-home"));
        UserDirs {
            runtime,
            config: dir("XDG_CONFIG_HOME", home.join(".config")),
            state: dir("XDG_STATE_HOME", home.join(".local/state")),
            data: dir("XDG_DATA_HOME", home.join(".local/share")),
            home,
        }
    }
}

/// Global flags that are passed on to the backend runtime unchanged.
#[derive(Debug, Clone, Default)]
pub struct Passthrough {
    /// `--log`
    pub log: Option<PathBuf>,
    /// `--log-format json`
    pub log_json: bool,
    /// `--debug`
    pub debug: bool,
    /// `--systemd-cgroup`
    pub systemd_cgroup: bool,
    /// `--rootless VALUE`
    pub rootless: Option<String>,
    /// `--criu PATH`
    pub criu: Option<String>,
}

/// Everything an operation needs to know about its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// State directory (`--root`).
    pub root: PathBuf,
    /// `--policy FILE`.
    pub policy_file: Option<PathBuf>,
    /// Installed policies: the first directory (`--policy-dir`, or the user's when rootless).
    pub policy_dir: PathBuf,
    /// More directories of installed policies, searched after `policy_dir` (rootless: the
    /// system's `/etc/semble/policies`).
    pub more_policy_dirs: Vec<PathBuf>,
    /// Whether the shim runs rootless ([`is_rootless`]).
    pub rootless: bool,
    /// Where what outlives a container goes (kept denial logs, recordings): `ROOT`, or rootless
    /// `$XDG_STATE_HOME/semble`.
    pub state_home: PathBuf,
    /// Rootless: the user's directories.
    pub user_dirs: Option<UserDirs>,
    /// `--backend`.
    pub backend: Option<BackendArg>,
    /// `--runc`.
    pub runc: Option<PathBuf>,
    /// `--runsc`.
    pub runsc: Option<PathBuf>,
    /// `--runsc-platform`.
    pub runsc_platform: Option<String>,
    /// `--init`.
    pub init: Option<PathBuf>,
    /// Proxy sockets.
    pub proxy_dir: PathBuf,
    /// Flags for the backend.
    pub passthrough: Passthrough,
    /// `--record FILE`: record containers' syscalls into a policy instead of filtering them.
    pub record: Option<PathBuf>,
    /// `--allow-record-annotation`: honour `semble.dev/record: "true"`.
    pub allow_record_annotation: bool,
    /// `--resolver`: what a guarded `dns: true` workload may reach on port 53.
    pub resolvers: Vec<std::net::IpAddr>,
    /// `--allow-hook`: hook programs containers may name.
    pub allowed_hooks: Vec<PathBuf>,
    /// `--pin-policy`: the one policy of this handler.
    pub pin_policy: Option<String>,
    /// `--default-policy`: what an unannotated container gets (`refuse` refuses it).
    pub default_policy: Option<String>,
    /// `--enable-audit`: turn the kernel's audit on when it is off (Landlock refusals explained).
    pub enable_audit: bool,
}

impl Settings {
    /// The resolvers a guarded `dns: true` workload under `policy` may reach: the policy's
    /// `network.resolvers`, else `--resolver`, else the node's own (its `resolv.conf`, or
    /// systemd-resolved's upstreams when that holds only its loopback stub).
    pub fn resolvers_for(&self, policy: &semble_policy::SandboxPolicy) -> Vec<std::net::IpAddr> {
        if !policy.network.resolvers.is_empty() {
            return policy.network.resolvers.clone();
        }
        if !self.resolvers.is_empty() {
            return self.resolvers.clone();
        }
        for f in ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"] {
            let found: Vec<std::net::IpAddr> = std::fs::read_to_string(f)
                .map(|t| crate::egress::resolvers(&t))
                .unwrap_or_default()
                .into_iter()
                .filter(|ip| !ip.is_loopback())
                .collect();
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }

    /// From parsed flags.
    pub fn from_cli(cli: &Cli) -> Settings {
        let rootless = rootless_from(
            nix::unistd::geteuid().is_root(),
            in_user_namespace(),
            std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| !v.is_empty()),
            cli.rootless.as_deref(),
        );
        let user_dirs = rootless.then(|| UserDirs::from_env(|k| std::env::var(k).ok()));
        let root = cli.root.clone().unwrap_or_else(|| match &user_dirs {
            Some(u) => u.runtime.join("semble-shim"),
            None => PathBuf::from(DEFAULT_ROOT),
        });
        let (policy_dir, more_policy_dirs) = match (&cli.policy_dir, &user_dirs) {
            (Some(d), _) => (d.clone(), Vec::new()),
            (None, Some(u)) => (u.config.join("semble/policies"), vec![PathBuf::from(DEFAULT_POLICY_DIR)]),
            (None, None) => (PathBuf::from(DEFAULT_POLICY_DIR), Vec::new()),
        };
        let proxy_dir = cli.proxy_dir.clone().unwrap_or_else(|| match &user_dirs {
            Some(u) => u.runtime.join("semble/proxy"),
            None => PathBuf::from(DEFAULT_PROXY_DIR),
        });
        let state_home = match &user_dirs {
            Some(u) if cli.root.is_none() => u.state.join("semble"),
            _ => root.clone(),
        };
        Settings {
            root,
            policy_file: cli.policy.clone(),
            policy_dir,
            more_policy_dirs,
            rootless,
            state_home,
            user_dirs,
            backend: cli.backend.or_else(backend_from_argv0),
            runc: cli.runc.clone(),
            runsc: cli.runsc.clone(),
            runsc_platform: cli.runsc_platform.clone(),
            init: cli.init.clone(),
            proxy_dir,
            record: cli.record.clone(),
            allow_record_annotation: cli.allow_record_annotation,
            resolvers: cli.resolvers.clone(),
            allowed_hooks: cli.allow_hooks.clone(),
            pin_policy: cli.pin_policy.clone(),
            default_policy: cli.default_policy.clone(),
            enable_audit: cli.enable_audit,
            passthrough: Passthrough {
                log: cli.log.clone(),
                log_json: cli.log_format == LogFormat::Json,
                debug: cli.debug,
                systemd_cgroup: cli.systemd_cgroup,
                rootless: cli.rootless.clone(),
                criu: cli.criu.clone(),
            },
        }
    }

    /// Every directory of installed policies, in search order.
    pub fn policy_dirs(&self) -> Vec<PathBuf> {
        std::iter::once(self.policy_dir.clone()).chain(self.more_policy_dirs.iter().cloned()).collect()
    }

    /// Where a deleted container's denial log is kept: `STATE/denials/`.
    pub fn kept_denials_dir(&self) -> PathBuf {
        self.state_home.join("denials")
    }

    /// Where recordings asked for by annotation go: `STATE/recordings/`.
    pub fn recordings_dir(&self) -> PathBuf {
        self.state_home.join("recordings")
    }

    /// The rootless engines' state directories (their files for a container may be mounted into
    /// it): Podman's under the user's runtime and data directories.
    pub fn user_engine_roots(&self) -> Vec<String> {
        match &self.user_dirs {
            Some(u) => crate::mounts::spellings(&[
                u.runtime.join("containers"),
                u.runtime.join("libpod"),
                u.data.join("containers"),
            ]),
            None => Vec::new(),
        }
    }

    /// A rootless user's directories no container may have bound in: the runtime directory,
    /// semble's state root, the proxy's sockets, the user's policies and configuration, semble's
    /// kept logs (empty as root: the host's trees are judged by `mounts`).
    pub fn user_private_dirs(&self) -> crate::mounts::UserPrivate {
        let Some(u) = &self.user_dirs else { return crate::mounts::UserPrivate::default() };
        let mut dirs = vec![
            u.runtime.clone(),
            self.root.clone(),
            self.proxy_dir.clone(),
            u.config.clone(),
            self.state_home.clone(),
            self.policy_dir.clone(),
        ];
        dirs.extend(self.more_policy_dirs.iter().cloned());
        // semble's own binaries, where the user could replace them (a `~/bin`): not the system's
        // trees, which are bound read-only only.
        let system = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"];
        let own = [std::env::current_exe().ok(), self.init_binary()];
        for dir in own.into_iter().flatten().filter_map(|p| p.parent().map(Path::to_path_buf)) {
            if !system.iter().any(|s| dir.starts_with(s)) {
                dirs.push(dir);
            }
        }
        if let Some(p) = self.policy_file.as_ref().and_then(|f| std::path::absolute(f).ok()) {
            dirs.extend(p.parent().map(Path::to_path_buf));
        }
        crate::mounts::UserPrivate::new(&dirs, std::slice::from_ref(&u.home))
    }

    /// semble's own records: `ROOT/semble/`.
    pub fn records_dir(&self) -> PathBuf {
        self.root.join("semble")
    }

    /// Where a backend keeps its state: `ROOT/<backend>/`.
    pub fn backend_root(&self, backend: &str) -> PathBuf {
        self.root.join(backend)
    }

    /// The static `semble-init` to mount into containers.
    pub fn init_binary(&self) -> Option<PathBuf> {
        if let Some(p) = &self.init {
            // The runtime bind-mounts it from the bundle's directory: a relative path would be
            // resolved there, not where the operator typed it.
            return Some(std::path::absolute(p).unwrap_or_else(|_| p.clone()));
        }
        let beside = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("semble-init")));
        [
            beside,
            Some(PathBuf::from("/usr/local/lib/semble/semble-init")),
            Some(PathBuf::from("/usr/local/bin/semble-init")),
        ]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
    }
}

/// `semble-shim-runc`, `semble-shim-runsc`, `semble-shim-embedded`: a symlink's name chooses the
/// backend. containerd's `BinaryName` takes a path, not arguments, so this is how one handler
/// per backend is configured.
fn backend_from_argv0() -> Option<BackendArg> {
    let argv0 = std::env::args_os().next()?;
    let name = Path::new(&argv0).file_name()?.to_str()?.to_string();
    match name.strip_prefix("semble-shim-")? {
        "runc" => Some(BackendArg::Runc),
        "runsc" | "gvisor" => Some(BackendArg::Runsc),
        "embedded" => Some(BackendArg::Embedded),
        _ => None,
    }
}

/// Find an executable: an explicit path, or a name on `PATH`.
pub fn find_executable(explicit: Option<&Path>, name: &str) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return is_executable(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

/// A regular file with an execute bit.
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_mapped_out_of_a_user_namespace() {
        let rootless_podman = "         0       1001          1\n         1     100000      65536\n";
        assert_eq!(host_id(rootless_podman, 0), 1001);
        assert_eq!(host_id(rootless_podman, 1), 100000);
        assert_eq!(host_id(rootless_podman, 70000), 70000, "unmapped: itself");
        assert_eq!(host_id("         0          0 4294967295\n", 1001), 1001);
    }

    #[test]
    fn rootless_means_an_ordinary_user_or_a_users_namespace_unless_the_flag_says() {
        // (euid is root, in a user namespace, XDG_RUNTIME_DIR set, --rootless)
        assert!(!rootless_from(true, false, true, None), "root on the host, even with a login's runtime dir");
        assert!(rootless_from(false, false, false, None), "an ordinary user");
        assert!(rootless_from(true, true, true, None), "rootless Podman: root in the user's namespace");
        assert!(!rootless_from(true, true, false, None), "a rootful engine in a system container (no runtime dir)");
        assert!(rootless_from(true, false, false, Some("true")));
        assert!(!rootless_from(true, true, true, Some("false")));
        assert!(rootless_from(false, false, false, Some("auto")));
    }

    #[test]
    fn user_dirs_follow_xdg_and_never_fall_back_to_a_shared_directory() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_string())
        };
        let d = UserDirs::from_env(env(&[("HOME", "/home/a"), ("XDG_RUNTIME_DIR", "/run/user/1001")]));
        assert_eq!(d.config, PathBuf::from("/home/a/.config"));
        assert_eq!(d.state, PathBuf::from("/home/a/.local/state"));
        assert_eq!(d.runtime, PathBuf::from("/run/user/1001"));
        let d = UserDirs::from_env(env(&[
            ("HOME", "/home/a"),
            ("XDG_STATE_HOME", "/srv/state"),
            ("XDG_CONFIG_HOME", "rel"),
        ]));
        assert_eq!(d.state, PathBuf::from("/srv/state"));
        assert_eq!(d.config, PathBuf::from("/home/a/.config"), "a relative XDG path is ignored, as the spec says");
        // No HOME (Podman's `delete`): the account's home or the runtime directory, not /tmp.
        let d = UserDirs::from_env(env(&[("XDG_RUNTIME_DIR", "/run/user/1001")]));
        assert!(!d.state.starts_with("/tmp"), "{d:?}");
    }
}
