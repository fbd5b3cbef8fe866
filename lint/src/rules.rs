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
    "SB001" Error "Kubernetes (Pod Security baseline `privileged`), Compose, Quadlet, OCI" "a privileged container; with a `semble.dev/privileged-reason` annotation it is a warning" "remove `privileged: true` and grant the one capability or device it needs";
    "SB002" Error "Kubernetes (Pod Security baseline `hostNamespaces`)" "the host's network, PID or IPC namespace" "remove hostNetwork/hostPID/hostIPC";
    "SB003" Error "Kubernetes (Pod Security baseline `hostPathVolumes`)" "a hostPath volume" "use an emptyDir, a PersistentVolumeClaim or a ConfigMap";
    "SB004" Error "Kubernetes (Pod Security baseline `hostPorts`)" "a non-zero hostPort" "expose the port with a Service";
    "SB005" Error "Kubernetes (Pod Security baseline `capabilities_baseline`), Compose, Quadlet, OCI" "an added capability outside the baseline set (in Kubernetes spelled exactly: `chown` and `CAP_CHOWN` are not `CHOWN`), or one that is a known way out (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, …)" "drop it; add only capabilities from the baseline set, written as Kubernetes writes them (`NET_BIND_SERVICE`)";
    "SB006" Warning "Kubernetes (Pod Security restricted `allowPrivilegeEscalation`)" "allowPrivilegeEscalation is not false" "set securityContext.allowPrivilegeEscalation: false";
    "SB007" Warning "Kubernetes (Pod Security restricted `runAsNonRoot`)" "runAsNonRoot is not true (for the container, or for the pod with no container overriding it)" "set securityContext.runAsNonRoot: true and a non-zero runAsUser";
    "SB008" Error "Kubernetes (Pod Security baseline `seccompProfile_baseline`), Compose, Quadlet" "seccomp is Unconfined (or a profile type other than RuntimeDefault or Localhost)" "use RuntimeDefault or semble's Localhost profile (semble-policy compile --target seccomp)";
    "SB009" Warning "Kubernetes (Pod Security restricted `seccompProfile_restricted`)" "a container with no seccomp profile, in a pod that sets none" "set securityContext.seccompProfile.type: RuntimeDefault (or Localhost) on the pod";
    "SB010" Warning "Kubernetes, OCI" "the root filesystem is writable" "set readOnlyRootFilesystem: true and mount emptyDirs where it writes";
    "SB011" Warning "Kubernetes" "no memory or CPU limit" "set resources.limits.memory and resources.limits.cpu";
    "SB012" Warning "Kubernetes, Compose, Quadlet" "an image without a tag or with `:latest`" "pin a version tag or a digest";
    "SB013" Error "Kubernetes, Compose, Quadlet" "a default credential in the environment (e.g. GF_SECURITY_ADMIN_PASSWORD=admin)" "take the value from a Secret and change it";
    "SB014" Error "Kubernetes" "a pod with a semble policy annotation that does not run under a semble RuntimeClass" "set runtimeClassName: semble-gvisor (or semble-runc)";
    "SB015" Warning "Kubernetes" "CAP_SETUID/CAP_SETGID kept by a non-root user (it can become root in its user namespace)" "drop SETUID and SETGID";
    "SB016" Error "Kubernetes (Pod Security baseline `procMount`, restricted `procMount_restricted`)" "a procMount other than Default (an unmasked /proc); a warning where only restricted forbids it (user-namespace pods from v1.35)" "remove procMount or set it to Default";
    "SB017" Error "Kubernetes (Pod Security baseline `sysctls`)" "a sysctl outside the safe set of the Kubernetes version the namespace is held to" "remove it, set it on the node, or raise `pod-security.kubernetes.io/enforce-version` (or `--pss-version`) to the release that made it safe";
    "SB018" Error "Kubernetes (Pod Security baseline `appArmorProfile`)" "an AppArmor profile other than RuntimeDefault or Localhost (field or annotation)" "use RuntimeDefault or a Localhost profile";
    "SB019" Error "Kubernetes (Pod Security baseline `seLinuxOptions`)" "an SELinux type outside the baseline set of the version, or an SELinux user or role" "use container_t, container_init_t, container_kvm_t or (from v1.31) container_engine_t, and no user or role";
    "SB023" Warning "Kubernetes (Pod Security restricted `restrictedVolumes`)" "a volume type outside the restricted set" "use configMap, secret, emptyDir, projected, downwardAPI, persistentVolumeClaim, csi, ephemeral or image";
    "SB024" Warning "Kubernetes" "workloads in a namespace that no NetworkPolicy in the linted files covers (everything may reach them, and they anything)" "add a default-deny NetworkPolicy (semble-policy compile --target kubernetes emits one)";
    "SB025" Warning "Kubernetes (Pod Security restricted `capabilities_restricted`)" "capabilities are not dropped with `drop: [ALL]`, or a capability other than NET_BIND_SERVICE is added back" "set securityContext.capabilities.drop: [ALL] and add back at most NET_BIND_SERVICE";
    "SB026" Error "Kubernetes (Pod Security baseline `hostProbesAndHostLifecycle`, v1.34+)" "a probe or lifecycle handler with a `host` (the kubelet connects there from the node, past every NetworkPolicy)" "remove `host`: probes go to the pod's own address";
    "SB027" Error "Kubernetes (Pod Security baseline `windowsHostProcess`)" "a Windows HostProcess container (it runs on the node, as the node)" "remove windowsOptions.hostProcess";
    "SB028" Warning "Kubernetes (Pod Security restricted `runAsUser`, v1.23+)" "runAsUser: 0 (root) on the pod or a container" "run as a non-zero user ID";
    "SB029" Warning "Kubernetes" "a `pod-security.kubernetes.io/enforce-version` label the admission controller cannot read (it falls back to its default)" "write `latest` or `v1.MINOR` (e.g. `v1.32`)";
    "SB035" Warning "Kubernetes" "a securityContext field at the wrong level: a container-only field (allowPrivilegeEscalation, capabilities, privileged, procMount, readOnlyRootFilesystem) on the pod, or a pod-only one (fsGroup, sysctls, supplementalGroups, …) on a container; Kubernetes drops it (or rejects the object with strict field validation), so it protects nothing" "move it to where the API defines it: each container's securityContext, or the pod's";
    "SB020" Warning "Kubernetes" "egress open to 0.0.0.0/0 (or ::/0) without excepting private ranges and the metadata address" "add ipBlock.except: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16, 100.64.0.0/10";
    "SB021" Warning "Kubernetes" "DNS egress on UDP 53 without TCP 53 (large answers fail)" "allow port 53 on TCP as well";
    "SB022" Warning "Kubernetes" "a proxy sidecar shares the workload's egress (a NetworkPolicy applies to the whole pod)" "run semble-proxy as a gateway (network.proxy.placement: gateway)";
    "SB032" Error "Kubernetes" "egress to everywhere on some port (no `to`, an ipBlock covering most addresses, `namespaceSelector: {}` with an ipBlock) for pods whose traffic must go through a proxy: a proxy sidecar's pod, a pod under a semble `network: proxy` policy, or pods a proxy-only NetworkPolicy confines; the workload reaches the destination without the proxy" "run semble-proxy as a gateway (network.proxy.placement: gateway; semble-policy compile --target kubernetes) and allow these pods egress only to the gateway and DNS";
    "SB033" Warning "Kubernetes" "a namespaceSelector on a label namespaces do not carry unless someone adds it (`name: ingress-nginx`); the label every namespace has is `kubernetes.io/metadata.name`" "select `kubernetes.io/metadata.name: NAME`, or label the namespace in the same change";
    "SB034" Warning "Kubernetes" "pods isolated for egress with no rule allowing DNS (port 53): their names stop resolving" "allow egress to kube-dns (namespace kube-system, k8s-app: kube-dns) on 53/UDP and 53/TCP";
    "SB030" Error "Compose, Quadlet" "network_mode: host" "use a project network and publish only what must be reachable";
    "SB031" Warning "Compose, Quadlet" "a port published on every address (0.0.0.0)" "publish on 127.0.0.1 (\"127.0.0.1:8080:80\") unless it must be reachable from elsewhere";
    "SB040" Error "seccomp, Kubernetes (a Localhost profile in the linted files)" "the seccomp profile's defaultAction allows" "default to SCMP_ACT_ERRNO and list what is allowed";
    "SB041" Error "seccomp, Kubernetes (a Localhost profile in the linted files)" "the allow-list is too small to start any real program (no execve, mmap or exit_group)" "start from a real baseline (semble-policy compile --target seccomp)";
    "SB050" Error "policy" "an egress rule for every host (`*`)" "name the hosts the workload needs";
    "SB051" Warning "policy" "Landlock is best-effort for a policy that otherwise expects untrusted code (gVisor backend or default seccomp with denies)" "set filesystem.enforcement: required";
    "SB052" Error "policy" "a credential injected on a non-TLS upstream" "use a TLS upstream (port 443, tls: true) for credentialed hosts";
    "SB054" Error "policy" "the policy re-allows a syscall its baseline removes as a known way out (unshare, mount, bpf, keyctl, …)" "remove it from seccomp.allow; if the workload truly needs it, run it under gVisor";
    "SB053" Warning "policy" "the proxy runs as a sidecar on Kubernetes" "use network.proxy.placement: gateway";
    "SB055" Warning "policy" "a wildcard egress rule overlaps a more specific one on a shared port (semble-proxy lets the more specific rule decide)" "narrow the wildcard, or remove one of the two rules";
    "SB056" Error "policy" "a credential on a `*.suffix` (or `*`) host: it is added to requests for every name below the suffix, including names other people control" "name the exact host the credential is for, one rule per host";
    "SB057" Error "policy" "`seccomp.dangerouslyAllowNotifyListener`: the workload may create seccomp notify listeners and answer refused syscalls itself once semble's supervisor is gone" "remove it unless the workload is itself a seccomp supervisor";
    "SB058" Error "Quadlet" "`--runtime` in `PodmanArgs`: it is a global flag of `podman`, which `podman run` rejects (`unknown flag: --runtime`), so the unit never starts" "name the runtime in `GlobalArgs=--runtime=semble` (Podman ≥ 4.8), or in the user's `~/.config/containers/containers.conf` (`[engine] runtime = \"semble\"`, any Podman with Quadlet)";
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
    let newest = crate::pod_security::NEWEST_MINOR;
    let mut out = format!("# Lint rules\n\nGenerated by `semble-policy lint --list-rules --format markdown`; do not edit by hand.\n\nSuppress a finding with `# semble-lint: ignore=RULE reason=\"…\"` on its line or the line above, or\nwith the annotation `ignore-check.semble.dev/RULE: \"reason\"` on a Kubernetes object. A suppression\nwithout a reason is itself a finding (SL001).\n\nRules marked *Pod Security* decide exactly as the upstream `pod-security-admission` checks named beside them, at the\npolicy version a pod's namespace is held to: its `pod-security.kubernetes.io/enforce-version` label when the Namespace\nis among the linted files, else `--pss-version` (default `latest`, the newest known: v1.{newest}). What fails `baseline`\nis an error; what only `restricted` forbids is a warning. JSON and SARIF carry the check, level and version of each.\n\n| rule | severity | applies to | finds | fix |\n|---|---|---|---|---|\n");
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
