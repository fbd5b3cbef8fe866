//! What the shim tells `semble-init`: one JSON file, bind-mounted read-only into the container.

use serde::{Deserialize, Serialize};

use semble_policy::compile::landlock::Ruleset;

/// The format version.
pub const VERSION: u32 = 1;

/// Where the shim mounts its files inside the container.
pub const MOUNT_DIR: &str = "/.semble";
/// The init binary inside the container.
pub const INIT_PATH: &str = "/.semble/init";
/// The configuration file inside the container.
pub const CONFIG_PATH: &str = "/.semble/init.json";
/// The seccomp supervisor's socket inside the container.
pub const NOTIFY_PATH: &str = "/.semble/notify.sock";
/// The directory holding the proxy's Unix socket inside the container.
pub const PROXY_DIR: &str = "/.semble/proxy";

/// The configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitConfig {
    /// [`VERSION`].
    pub version: u32,
    /// The container's ID (for messages).
    pub container_id: String,
    /// The policy's name (for messages).
    pub policy: String,
    /// The Landlock ruleset to apply to the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock: Option<Ruleset>,
    /// What the runtime must already have done; `semble-init` refuses to start the workload
    /// otherwise.
    pub expect: Expect,
    /// The policy's seccomp filter (BPF, path inside the container), loaded by `semble-init`
    /// before anything else runs; `None` when the runtime applies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<String>,
    /// A second seccomp filter (BPF, path inside the container) stacked on the policy's: the
    /// container's own profile, which the policy must not weaken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_seccomp: Option<String>,
    /// Bridge `listen` (inside the container) to the proxy's Unix socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_bridge: Option<Bridge>,
    /// The node's egress guard is attached to the container's cgroup: before the workload runs,
    /// `semble-init` checks it is in force (waiting for it, as `run` attaches it once the
    /// container exists), and refuses to start the workload otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub egress_guard: bool,
    /// The supervisor's socket (path inside the container): the policy's filter is loaded with
    /// a notify listener, which is handed over there before anything else runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
}

/// Checks of the runtime's work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Expect {
    /// The capabilities the process may hold (OCI names, `CAP_…`); holding any other is an error.
    pub capabilities: Vec<String>,
    /// `no_new_privs` must be set.
    pub no_new_privs: bool,
    /// A seccomp filter must be in force.
    pub seccomp: bool,
    /// The uid the process must run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The gid the process must run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// A TCP-to-Unix-socket bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bridge {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Unix socket to forward to (path inside the container).
    pub socket: String,
}
