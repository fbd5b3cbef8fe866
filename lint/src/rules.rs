//! The rule catalogue: every rule's stable ID, default severity, what it finds, how to fix it and
//! what inputs it applies to. `docs/lint-rules.md` is generated from it
//! ([`markdown`]), and SARIF carries it as the driver's rules.

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth knowing.
    Info,
    /// Weakens the sandbox.
    Warning,
    /// Breaks it, or a documented baseline.
    Error,
}

impl Level {
    /// `info`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// A rule of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable ID.
    pub id: &'static str,
    /// Default severity.
    pub level: Level,
    /// What it finds.
    pub summary: &'static str,
    /// How to fix it.
    pub fix: &'static str,
    /// What inputs it applies to.
    pub applies: &'static str,
}

macro_rules! rules {
    ($($id:literal $level:ident $applies:literal $summary:literal $fix:literal;)*) => {
        /// The catalogue.
        pub const RULES: &[Rule] = &[$(Rule { id: $id, level: Level::$level, summary: $summary, fix: $fix, applies: $applies }),*];
    };
}

rules! {
    "SL001" Warning "any" "a suppression without a reason" "write why: `# semble-lint: ignore=RULE reason=\"…\"` or the annotation's value";
    "SP000" Error "policy" "the policy does not validate (each error is reported)" "fix it as the message says; `semble-policy validate FILE` shows every error";
    "SB001" Error "Kubernetes, Compose, Quadlet, OCI" "a privileged container (Pod Security baseline); with a `semble.dev/privileged-reason` annotation it is a warning" "remove `privileged: true` and grant the one capability or device it needs";
    "SB002" Error "Kubernetes" "the host's network, PID or IPC namespace (Pod Security baseline)" "remove hostNetwork/hostPID/hostIPC";
    "SB003" Error "Kubernetes" "a hostPath volume (Pod Security baseline)" "use an emptyDir, a PersistentVolumeClaim or a ConfigMap";
    "SB004" Warning "Kubernetes" "a hostPort (Pod Security baseline)" "expose the port with a Service";
    "SB005" Error "Kubernetes, Compose, Quadlet, OCI" "a capability beyond the Pod Security baseline set, or one that is a known way out (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, …)" "drop it; grant only capabilities from the baseline set";
    "SB006" Warning "Kubernetes" "allowPrivilegeEscalation is not false (Pod Security restricted)" "set securityContext.allowPrivilegeEscalation: false";
    "SB007" Warning "Kubernetes" "runAsNonRoot is not true (Pod Security restricted)" "set securityContext.runAsNonRoot: true and a non-zero runAsUser";
    "SB008" Error "Kubernetes, Compose, Quadlet" "seccomp is Unconfined" "use RuntimeDefault or semble's Localhost profile (semble-policy compile --target seccomp)";
    "SB009" Warning "Kubernetes" "no seccomp profile (Pod Security restricted)" "set securityContext.seccompProfile.type: RuntimeDefault (or Localhost)";
    "SB010" Warning "Kubernetes, OCI" "the root filesystem is writable" "set readOnlyRootFilesystem: true and mount emptyDirs where it writes";
    "SB011" Warning "Kubernetes" "no memory or CPU limit" "set resources.limits.memory and resources.limits.cpu";
    "SB012" Warning "Kubernetes, Compose, Quadlet" "an image without a tag or with `:latest`" "pin a version tag or a digest";
    "SB013" Error "Kubernetes, Compose, Quadlet" "a default credential in the environment (e.g. GF_SECURITY_ADMIN_PASSWORD=admin)" "take the value from a Secret and change it";
    "SB014" Error "Kubernetes" "a pod with a semble policy annotation that does not run under a semble RuntimeClass" "set runtimeClassName: semble-gvisor (or semble-runc)";
    "SB015" Warning "Kubernetes" "CAP_SETUID/CAP_SETGID kept by a non-root user (it can become root in its user namespace)" "drop SETUID and SETGID";
    "SB016" Error "Kubernetes" "procMount: Unmasked (Pod Security baseline)" "remove procMount or set it to Default";
    "SB017" Error "Kubernetes" "a sysctl outside the Pod Security safe set" "remove it, or set it on the node";
    "SB018" Error "Kubernetes" "AppArmor unconfined (Pod Security baseline)" "use RuntimeDefault or a Localhost profile";
    "SB019" Error "Kubernetes" "an SELinux type or user/role override beyond the Pod Security baseline" "use container_t, container_init_t, container_kvm_t or container_engine_t, and no user or role";
    "SB023" Warning "Kubernetes" "a volume type outside the Pod Security restricted set" "use configMap, secret, emptyDir, projected, downwardAPI, persistentVolumeClaim, csi or ephemeral";
    "SB024" Warning "Kubernetes" "workloads in a namespace that no NetworkPolicy in the linted files covers (everything may reach them, and they anything)" "add a default-deny NetworkPolicy (semble-policy compile --target kubernetes emits one)";
    "SB025" Warning "Kubernetes" "capabilities are not dropped with `drop: [ALL]` (Pod Security restricted)" "set securityContext.capabilities.drop: [ALL] and add back only what is needed";
    "SB020" Warning "Kubernetes" "egress open to 0.0.0.0/0 (or ::/0) without excepting private ranges and the metadata address" "add ipBlock.except: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16, 100.64.0.0/10";
    "SB021" Warning "Kubernetes" "DNS egress on UDP 53 without TCP 53 (large answers fail)" "allow port 53 on TCP as well";
    "SB022" Warning "Kubernetes" "a proxy sidecar shares the workload's egress (a NetworkPolicy applies to the whole pod)" "run semble-proxy as a gateway (network.proxy.placement: gateway)";
    "SB030" Error "Compose, Quadlet" "network_mode: host" "use a project network and publish only what must be reachable";
    "SB031" Warning "Compose, Quadlet" "a port published on every address (0.0.0.0)" "publish on 127.0.0.1 (\"127.0.0.1:8080:80\") unless it must be reachable from elsewhere";
    "SB040" Error "seccomp" "the seccomp profile's defaultAction allows" "default to SCMP_ACT_ERRNO and list what is allowed";
    "SB041" Error "seccomp" "the allow-list is too small to start any real program (no execve, mmap or exit_group)" "start from a real baseline (semble-policy compile --target seccomp)";
    "SB050" Error "policy" "an egress rule for every host (`*`)" "name the hosts the workload needs";
    "SB051" Warning "policy" "Landlock is best-effort for a policy that otherwise expects untrusted code (gVisor backend or default seccomp with denies)" "set filesystem.enforcement: required";
    "SB052" Error "policy" "a credential injected on a non-TLS upstream" "use a TLS upstream (port 443, tls: true) for credentialed hosts";
    "SB054" Error "policy" "the policy re-allows a syscall its baseline removes as a known way out (unshare, mount, bpf, keyctl, …)" "remove it from seccomp.allow; if the workload truly needs it, run it under gVisor";
    "SB053" Warning "policy" "the proxy runs as a sidecar on Kubernetes" "use network.proxy.placement: gateway";
}

impl std::str::FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Level, String> {
        match s {
            "info" => Ok(Level::Info),
            "warning" => Ok(Level::Warning),
            "error" => Ok(Level::Error),
            other => Err(format!("`{other}` is not a level; use info, warning or error")),
        }
    }
}

/// The rule with this ID (the first rule, `SL001`, for an unknown ID: rule IDs are literals in
/// this crate and a test checks each one exists).
pub fn rule(id: &str) -> &'static Rule {
    RULES.iter().find(|r| r.id == id).unwrap_or(&RULES[0])
}

/// The catalogue as Markdown (`docs/lint-rules.md`).
pub fn markdown() -> String {
    let mut out = String::from("# Lint rules\n\nGenerated by `semble-policy lint --list-rules --format markdown`; do not edit by hand.\n\nSuppress a finding with `# semble-lint: ignore=RULE reason=\"…\"` on its line or the line above, or\nwith the annotation `ignore-check.semble.dev/RULE: \"reason\"` on a Kubernetes object. A suppression\nwithout a reason is itself a finding (SL001).\n\n| rule | severity | applies to | finds | fix |\n|---|---|---|---|---|\n");
    for r in RULES {
        out.push_str(&format!(
            "| <a id=\"{}\"></a>`{}` | {} | {} | {} | {} |\n",
            r.id.to_ascii_lowercase(),
            r.id,
            r.level.as_str(),
            r.applies,
            r.summary,
            r.fix.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique() {
        let ids: std::collections::BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), RULES.len());
    }
}
