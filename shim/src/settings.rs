//! Paths and choices that hold for one invocation, from flags, environment and defaults.

use std::path::{Path, PathBuf};

use crate::cli::{BackendArg, Cli, LogFormat};

/// Default state directory.
pub const DEFAULT_ROOT: &str = "/run/semble-shim";
/// Default policy directory.
pub const DEFAULT_POLICY_DIR: &str = "/etc/semble/policies";
/// Default directory of the proxy's per-policy sockets.
pub const DEFAULT_PROXY_DIR: &str = "/run/semble/proxy";

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
    /// Installed policies.
    pub policy_dir: PathBuf,
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
        Settings {
            root: cli.root.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
            policy_file: cli.policy.clone(),
            policy_dir: cli.policy_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_POLICY_DIR)),
            backend: cli.backend.or_else(backend_from_argv0),
            runc: cli.runc.clone(),
            runsc: cli.runsc.clone(),
            runsc_platform: cli.runsc_platform.clone(),
            init: cli.init.clone(),
            proxy_dir: cli.proxy_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_PROXY_DIR)),
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
