//! The command line: runc's, flag for flag, plus semble's own global flags.
//!
//! containerd's runc shim (`BinaryName`), `ctr --runc-binary`, Podman (`--runtime`), CRI-O and
//! Kubernetes RuntimeClass handlers call `semble-shim` exactly as they call runc. Only clap
//! structs live here; each command's work is in [`crate::ops`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  # run a bundle under the workspace policy (runc backend)
  semble-shim --policy examples/workspace.yaml run --bundle /path/to/bundle demo
  # let the container's annotation pick an installed policy
  podman --runtime /usr/local/bin/semble-shim run --annotation semble.dev/policy=workspace IMAGE
  ctr run --runc-binary /usr/local/bin/semble-shim IMAGE demo
  # what would a bundle get?
  semble-shim explain-bundle /path/to/bundle
  # which syscalls did the policy refuse, by which rule, and how to allow them?
  semble-shim denials demo
  # record a policy from a run (development only: nothing is filtered while recording)
  semble-shim --policy examples/workspace.yaml --record /tmp/demo.yaml run --bundle /path/to/bundle demo

Policy selection: --policy FILE, else the `semble.dev/policy` annotation (NAME.yaml in the policy
directory), else DIR/default.yaml, else the built-in default.
Exit codes: the runtime's own; 1 when semble refuses a container (one line on stderr says why).";

/// A drop-in OCI runtime that enforces a SandboxPolicy.
#[derive(Debug, Parser)]
#[command(name = "semble-shim", version, about, after_help = AFTER_HELP, disable_version_flag = true)]
pub struct Cli {
    /// Print the version (and the backend runtimes found).
    #[arg(long, short = 'v', global = false)]
    pub version: bool,
    /// State directory (runc: `--root`).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Log file (runc: `--log`); stderr when absent.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Log format: `text` or `json` (containerd reads JSON lines on failure).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Debug logging.
    #[arg(long)]
    pub debug: bool,
    /// Use systemd to manage cgroups (passed to the backend).
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (passed to the backend).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// CRIU binary (accepted for compatibility; checkpoint/restore is refused).
    #[arg(long)]
    pub criu: Option<String>,
    /// Apply this policy file to every container (overrides annotations).
    #[arg(long, env = "SEMBLE_POLICY")]
    pub policy: Option<PathBuf>,
    /// Directory of installed policies (`NAME.yaml`, `default.yaml`).
    #[arg(long, env = "SEMBLE_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Backend runtime: runc, runsc (gVisor) or embedded; overrides the policy's choice where the
    /// policy allows it.
    #[arg(long, value_enum, env = "SEMBLE_BACKEND")]
    pub backend: Option<BackendArg>,
    /// Path of runc (default: `runc` on PATH).
    #[arg(long, env = "SEMBLE_RUNC")]
    pub runc: Option<PathBuf>,
    /// Path of runsc (default: `runsc` on PATH).
    #[arg(long, env = "SEMBLE_RUNSC")]
    pub runsc: Option<PathBuf>,
    /// gVisor platform when the policy names none (`ptrace`, `systrap`, `kvm`).
    #[arg(long, env = "SEMBLE_RUNSC_PLATFORM")]
    pub runsc_platform: Option<String>,
    /// Path of the static semble-init (default: beside semble-shim).
    #[arg(long, env = "SEMBLE_INIT")]
    pub init: Option<PathBuf>,
    /// Directory of the egress proxy's sockets (`DIR/POLICY/proxy.sock`).
    #[arg(long, env = "SEMBLE_PROXY_DIR")]
    pub proxy_dir: Option<PathBuf>,
    /// The resolvers a `dns: true` workload may reach on port 53 when its egress is guarded (a
    /// pod's, or one kept for ingress): the cluster's DNS Service on a Kubernetes node. Repeat,
    /// or separate with commas. Default: the policy's `network.resolvers`, else the node's own
    /// (`/etc/resolv.conf`). Never the container's: its `resolv.conf` is the pod author's.
    #[arg(long = "resolver", value_name = "IP", env = "SEMBLE_RESOLVERS", value_delimiter = ',')]
    pub resolvers: Vec<std::net::IpAddr>,
    /// This handler runs this installed policy only (a RuntimeClass handler or Podman runtime
    /// bound to one policy): a container naming another one is refused.
    #[arg(long, value_name = "NAME", env = "SEMBLE_PIN_POLICY")]
    pub pin_policy: Option<String>,
    /// What a container without a `semble.dev/policy` annotation gets: an installed policy's
    /// name, or `refuse`. Default: `POLICY_DIR/default.yaml`, else the built-in default.
    #[arg(long, value_name = "NAME|refuse", env = "SEMBLE_DEFAULT_POLICY")]
    pub default_policy: Option<String>,
    /// A hook program containers may name (OCI `hooks` run on the host, as root): every other
    /// hook is refused. For CDI's `nvidia-ctk`, for instance. Repeat, or separate with commas.
    #[arg(long = "allow-hook", value_name = "PATH", env = "SEMBLE_ALLOW_HOOKS", value_delimiter = ',')]
    pub allow_hooks: Vec<PathBuf>,
    /// Turn the kernel's audit on when it is off, so that Landlock refusals are logged and
    /// explained (Linux 6.15+). Host-wide: every audit record then also reaches the kernel log
    /// unless auditd runs. Off by default: semble never changes audit on its own.
    #[arg(long, env = "SEMBLE_ENABLE_AUDIT")]
    pub enable_audit: bool,
    /// Record the container's syscalls into a policy at FILE instead of filtering them
    /// (development only: nothing is filtered while recording).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Honour the annotation `semble.dev/record: "true"` (recordings go to ROOT/recordings/ID.yaml).
    #[arg(long)]
    pub allow_record_annotation: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time="…" level=… msg="…"`
    Text,
    /// `{"level":…,"msg":…,"time":…}`
    Json,
}

/// Backend selection on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// runc
    Runc,
    /// gVisor's runsc
    Runsc,
    /// The embedded libcontainer runtime
    Embedded,
}

/// Commands (runc's, plus `explain-bundle`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container (apply the policy, then the backend's `create`).
    Create(CreateArgs),
    /// Create and start a container, and wait for it unless `--detach`.
    Run(RunArgs),
    /// Start a created container.
    Start(IdArg),
    /// Print a container's state (JSON).
    State(IdArg),
    /// Send a signal to a container's init (or every process with `--all`).
    Kill(KillArgs),
    /// Delete a container and semble's state for it.
    Delete(DeleteArgs),
    /// Run a process in a running container, under the same policy.
    Exec(ExecArgs),
    /// List a container's processes.
    Ps(PsArgs),
    /// Freeze a container.
    Pause(IdArg),
    /// Thaw a container.
    Resume(IdArg),
    /// Change a container's cgroup limits (never above the policy's).
    Update(UpdateArgs),
    /// Stream a container's events.
    Events(EventsArgs),
    /// Print the OCI features document, extended with what semble enforces.
    Features,
    /// Write a template config.json (the backend's `spec`).
    Spec(SpecArgs),
    /// List containers (all backends).
    List(ListArgs),
    /// Explain what a bundle gets (or got) from semble: policy, backend, every control.
    ExplainBundle(ExplainArgs),
    /// Check this node: semble-init, backends (and, with --run, a real container under each),
    /// Landlock, seccomp notify, cgroups, SELinux, the policies, containerd's handlers.
    #[command(
        after_help = "Examples:\n  semble-shim doctor\n  semble-shim doctor --run            # also start a container under each backend\n  semble-shim --runsc /usr/local/bin/runsc doctor --format json\n\nExit status: 1 when a check fails (a configured handler would fail), 0 otherwise."
    )]
    Doctor(DoctorArgs),
    /// Summarize the syscalls a container's policy refused: rule, count, first and last seen, fix.
    #[command(
        after_help = "Examples:\n  semble-shim denials web-1\n  semble-shim denials web-1 --format json\n  semble-shim denials web-1 --patch > allow.yaml   # an overlay allowing what was refused\n  semble-shim denials                             # every container semble knows\n\nThe log of a deleted container is kept as ROOT/denials/ID.jsonl."
    )]
    Denials(DenialsArgs),
    /// (internal) The per-container seccomp supervisor; `create` starts it.
    #[command(hide = true)]
    Supervise(SuperviseArgs),
    /// (internal) Holds a gVisor sub-container's stdio until `start`, then waits for it;
    /// `create` starts it (see the `subcontainer` module).
    #[command(hide = true)]
    Hold(HoldArgs),
    /// Refused: checkpoint/restore would start a container without applying the policy.
    Checkpoint(RawArgs),
    /// Refused: checkpoint/restore would start a container without applying the policy.
    Restore(RawArgs),
}

/// `doctor` flags.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Start a busybox container under each backend found.
    #[arg(long)]
    pub run: bool,
    /// containerd's configuration file (its `imports` are read too).
    #[arg(long, default_value = "/etc/containerd/config.toml")]
    pub containerd_config: PathBuf,
    /// The busybox used for `--run`.
    #[arg(long, default_value = "/bin/busybox")]
    pub busybox: PathBuf,
    /// A directory of CDI specs the engines read (repeat; default `/etc/cdi` and `/var/run/cdi`).
    #[arg(long = "cdi-spec-dir", value_name = "DIR")]
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// `text` or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

/// `denials` flags.
#[derive(Debug, Args)]
pub struct DenialsArgs {
    /// The container (default: every container with a denial log).
    pub id: Option<String>,
    /// `text` or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Print a policy overlay allowing what was refused (with a warning per dangerous syscall).
    #[arg(long)]
    pub patch: bool,
}

/// `supervise` flags.
#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// The container.
    pub id: String,
    /// Record into this policy file instead of explaining.
    #[arg(long)]
    pub record: Option<PathBuf>,
}

/// `hold` flags.
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// The container.
    pub id: String,
    /// The inherited listening socket `start` connects to.
    #[arg(long)]
    pub listen_fd: i32,
    /// runsc's command line up to the command (binary and global flags).
    #[arg(last = true, required = true)]
    pub runsc: Vec<std::ffi::OsString>,
}

/// A container ID.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The container ID.
    pub id: String,
}

/// Arguments not interpreted by semble.
#[derive(Debug, Args)]
pub struct RawArgs {
    /// Ignored.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// `create` flags (runc's).
#[derive(Debug, Args, Clone)]
pub struct CreateArgs {
    /// The bundle directory (holds config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's init PID here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket receiving the pseudo-terminal's master fd.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Do not use pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many extra file descriptors (from fd 3).
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container ID.
    pub id: String,
}

/// `run` flags.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Create flags.
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the container after it exits.
    #[arg(long)]
    pub keep: bool,
}

/// `kill` flags.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// The container ID.
    pub id: String,
    /// Signal name or number (default SIGTERM).
    pub signal: Option<String>,
}

/// `delete` flags.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container first.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// The container ID.
    pub id: String,
}

/// `exec` flags (runc's).
#[derive(Debug, Args, Clone)]
pub struct ExecArgs {
    /// process.json describing the process.
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Detach.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's PID here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket receiving the pseudo-terminal's master fd.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Working directory.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Environment variables (`KEY=VALUE`).
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// `UID[:GID]` (the policy's user wins).
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Additional gids.
    #[arg(long, short = 'g')]
    pub additional_gids: Vec<u32>,
    /// SELinux process label.
    #[arg(long)]
    pub process_label: Option<String>,
    /// AppArmor profile.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// no_new_privs (always set under a policy that asks for it).
    #[arg(long)]
    pub no_new_privs: bool,
    /// Capabilities to add (intersected with the policy's).
    #[arg(long, short = 'c')]
    pub cap: Vec<String>,
    /// Extra file descriptors.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// cgroup to run in.
    #[arg(long)]
    pub cgroup: Option<String>,
    /// Allow exec in a paused container.
    #[arg(long)]
    pub ignore_paused: bool,
    /// The container ID.
    pub id: String,
    /// The command (when no `--process`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `ps` flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// `table` or `json`.
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    /// The container ID.
    pub id: String,
    /// Arguments for ps(1).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `update` flags (runc's); limits above the policy's are lowered to it.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Resources as JSON (`-` for stdin).
    #[arg(long, short = 'r')]
    pub resources: Option<String>,
    /// Memory limit in bytes.
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory+swap limit in bytes.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory reservation.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// CPU quota.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU period.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU shares.
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// Allowed CPUs.
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Allowed memory nodes.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Task limit.
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block I/O weight.
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// The container ID.
    pub id: String,
}

/// `events` flags.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Stats interval.
    #[arg(long)]
    pub interval: Option<String>,
    /// Print stats once.
    #[arg(long)]
    pub stats: bool,
    /// The container ID.
    pub id: String,
}

/// `spec` flags.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into.
    #[arg(long, short = 'b')]
    pub bundle: Option<PathBuf>,
    /// A template for rootless containers.
    #[arg(long)]
    pub rootless: bool,
}

/// `list` flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// `table` or `json`.
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    /// IDs only.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `explain-bundle` flags.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// `text` or `json`.
    #[arg(long, default_value = "text")]
    pub format: String,
    /// The container ID to assume (for a bundle not created yet).
    #[arg(long, default_value = "explain")]
    pub id: String,
}
