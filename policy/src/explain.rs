//! `semble-policy explain FILE`: what a workload under a policy can and cannot do, and why.

use std::fmt::Write;

use crate::caps::Capability;
use crate::compile::landlock::IMPLICIT_DEVICES;
use crate::errno;
use crate::model::*;
use crate::quantity::{format_bytes, format_millicores};

/// What the seccomp generator found, supplied by the caller (this crate does not compile
/// seccomp).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeccompFacts {
    /// Syscalls allowed without conditions.
    pub allowed: usize,
    /// Rules that allow a syscall only with some arguments, one line each.
    pub conditional: Vec<String>,
    /// Dangerous syscalls that stay blocked.
    pub blocked: Vec<String>,
    /// BPF instructions of the compiled filter on x86_64, when it was compiled.
    pub bpf_instructions: Option<usize>,
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join(", ")
    }
}

/// Render the explanation.
pub fn explain(policy: &SandboxPolicy, seccomp: &SeccompFacts) -> String {
    let mut out = String::new();
    let mut can: Vec<String> = Vec::new();
    let mut cannot: Vec<String> = Vec::new();
    let _ = writeln!(out, "policy `{}`", policy.name);
    if let Some(d) = &policy.description {
        let _ = writeln!(out, "  {}", d.trim());
    }
    let _ = writeln!(out);

    // Runtime
    let fallbacks = policy.runtime.fallback.iter().map(|b| b.as_str()).collect::<Vec<_>>().join(", then ");
    let runtime = match (policy.runtime.backend, fallbacks.is_empty()) {
        (Some(Backend::Gvisor), false) => format!("gVisor (runsc): a user-space kernel between the workload and the host; when runsc is missing, {fallbacks} with the full seccomp/Landlock stack"),
        (Some(Backend::Gvisor), true) => "gVisor (runsc) only: refuse to start where runsc is missing".to_string(),
        (Some(b), false) => format!("{b}; when it is missing, {fallbacks}"),
        (Some(b), true) => format!("{b} only: refuse to start where it is missing"),
        (None, _) => "runc where installed, otherwise the embedded runtime".to_string(),
    };
    let _ = writeln!(out, "runtime       {runtime}");

    // Process
    let p = &policy.process;
    let mut proc = Vec::new();
    match p.user {
        Some(0) => proc.push("runs as root (uid 0)".to_string()),
        Some(u) => proc.push(format!("runs as uid {u}, gid {}", p.group.unwrap_or(u))),
        None => proc.push("keeps the image's user".to_string()),
    }
    if p.run_as_non_root {
        proc.push("refuses uid 0".into());
    }
    proc.push(if p.no_new_privileges {
        "no_new_privs (setuid binaries gain nothing)".into()
    } else {
        "setuid binaries work (noNewPrivileges: false)".into()
    });
    proc.push(if p.read_only_root_filesystem {
        "root filesystem read-only".into()
    } else {
        "root filesystem writable".into()
    });
    for (k, v) in &p.rlimits {
        proc.push(format!("{} {}/{}", k.oci_name(), v.soft, v.hard));
    }
    let _ = writeln!(out, "process       {}", proc.join("; "));
    if p.read_only_root_filesystem {
        cannot.push("modify the image's files (read-only root filesystem)".into());
    }
    if p.no_new_privileges {
        cannot.push("gain privileges through setuid binaries or file capabilities (no_new_privs)".into());
    }

    // Capabilities
    let granted = policy.capabilities.granted();
    let names: Vec<String> = granted.iter().map(|c| c.to_string()).collect();
    let base = if policy.capabilities.drop_all { "everything else dropped" } else { "from the runtime's default set" };
    if names.is_empty() {
        let _ = writeln!(out, "capabilities  none: every capability is dropped");
    } else {
        let _ = writeln!(out, "capabilities  {} ({base})", names.join(", "));
    }
    for c in &granted {
        if c.is_dangerous() {
            can.push(format!("use `{c}`, a capability that has been used to escape containers"));
        }
    }
    if !granted.contains(&Capability::NetRaw) {
        cannot.push("open raw or packet sockets (no NET_RAW)".into());
    }
    if !granted.contains(&Capability::SysAdmin) {
        cannot.push("mount filesystems or administer the system (no SYS_ADMIN)".into());
    }
    if granted.contains(&Capability::Setuid) && p.user.is_some_and(|u| u != 0) {
        can.push("change its uid, to 0 as well (SETUID is kept): root inside the container, with only the capabilities above".into());
    }

    // Seccomp
    let s = &policy.seccomp;
    let errno_name = errno::name(s.errno).map(str::to_string).unwrap_or_else(|| s.errno.to_string());
    let other = match s.default_action {
        DefaultAction::Errno => format!("everything else fails with {errno_name}"),
        DefaultAction::KillProcess => "everything else kills the process".into(),
        DefaultAction::KillThread => "everything else kills the thread".into(),
        DefaultAction::Trap => "everything else raises SIGSYS".into(),
        DefaultAction::Log => "everything else is ALLOWED and only logged (audit mode)".into(),
    };
    let mut sc = format!("baseline `{}`: {} syscalls allowed", s.baseline.as_str(), seccomp.allowed);
    if !s.allow.is_empty() {
        let _ = write!(sc, " (added: {})", s.allow.join(", "));
    }
    if !s.deny.is_empty() {
        let _ = write!(sc, "; denied by name: {}", s.deny.join(", "));
    }
    let _ = write!(sc, "; {other}");
    if let Some(n) = seccomp.bpf_instructions {
        let _ = write!(sc, "; {n} BPF instructions on x86_64");
    }
    let _ = writeln!(out, "seccomp       {sc}");
    for c in &seccomp.conditional {
        let _ = writeln!(out, "              {c}");
    }
    if s.explain_denials {
        let _ = writeln!(
            out,
            "              denials are explained as they happen (seccomp.explainDenials; runc and embedded backends, not under gVisor)"
        );
    }
    if !seccomp.blocked.is_empty() {
        cannot.push(format!("call {} (seccomp)", seccomp.blocked.join(", ")));
    }

    // Filesystem
    match &policy.filesystem {
        Some(fs) => {
            let _ = writeln!(
                out,
                "filesystem    Landlock ({}): read-only {}; read-write {}; execute {}; plus the devices {}",
                fs.enforcement.as_str(),
                list(&fs.read_only),
                list(&fs.read_write),
                list(&fs.execute),
                IMPLICIT_DEVICES.join(" ")
            );
            if fs.enforcement == Enforcement::BestEffort {
                let _ = writeln!(
                    out,
                    "              best-effort: on a kernel without Landlock these rules are NOT enforced"
                );
            }
            let writable = if fs.read_write.is_empty() {
                "anywhere".to_string()
            } else {
                format!("outside {}", fs.read_write.join(", "))
            };
            cannot.push(format!("write {writable} (Landlock)"));
            cannot.push(format!("execute programs outside {} (Landlock)", fs.execute.join(", ")));
            cannot.push("read files outside the listed paths (Landlock)".into());
        }
        None => {
            let _ =
                writeln!(out, "filesystem    no Landlock rules: every file the image and mounts expose is reachable");
        }
    }

    // SELinux
    match &policy.selinux {
        Some(se) => {
            let level = match &se.level {
                Some(SelinuxLevel::Fixed(l)) => l.clone(),
                Some(SelinuxLevel::Auto) => "a unique category pair per container".into(),
                None => "the runtime's level".into(),
            };
            let _ = writeln!(out, "selinux       type `{}`, level {level} ({})", se.type_, se.enforcement.as_str());
        }
        None => {
            let _ = writeln!(out, "selinux       not set (the runtime's default label, if SELinux is on)");
        }
    }

    // Network
    let n = &policy.network;
    match n.mode {
        NetworkMode::None => {
            let _ = writeln!(out, "network       none: a private network namespace with loopback only");
            cannot.push("reach any network address, including 169.254.169.254 (no interface)".into());
        }
        NetworkMode::Proxy => {
            let _ = writeln!(out, "network       proxy: no route out; semble-proxy on 127.0.0.1:{} is the only way out ({} placement on Kubernetes)", n.proxy.port, n.proxy.placement.as_str());
            for r in &n.egress {
                let ports: Vec<String> = r.ports.iter().map(u16::to_string).collect();
                let mut line = format!("              egress {}:{}", r.host, ports.join(","));
                if let Some(c) = &r.credential {
                    let _ = write!(line, " with credential `{c}` injected by the proxy");
                }
                if !r.methods.is_empty() {
                    let _ = write!(line, " methods {}", r.methods.join(","));
                }
                if !r.paths.is_empty() {
                    let _ = write!(line, " paths {}", r.paths.join(","));
                }
                let _ = writeln!(out, "{line}");
                can.push(format!("reach {} on port {} through the proxy", r.host, ports.join(",")));
            }
            cannot.push("reach any other host, an IP address directly, or 169.254.169.254".into());
            if n.egress.iter().any(|r| r.credential.is_some()) {
                cannot.push("read the injected credentials (they are added outside the sandbox)".into());
            }
        }
        NetworkMode::Open => {
            let _ = writeln!(out, "network       open: the runtime's network, not restricted by semble");
            can.push("reach any address the host network allows".into());
        }
    }
    let _ = writeln!(
        out,
        "              dns {}",
        if n.dns { "allowed (cluster resolver)" } else { "not allowed (the proxy resolves names)" }
    );
    for r in &n.ingress {
        let who = match (&r.from.namespace, &r.from.pods, &r.from.cidr) {
            (Some(ns), Some(p), _) => format!("pods {} in namespace {ns}", labels(p)),
            (Some(ns), None, _) => format!("namespace {ns}"),
            (None, Some(p), _) => format!("pods {} in its own namespace", labels(p)),
            (None, None, Some(c)) => format!("{c}"),
            (None, None, None) => "nobody".into(),
        };
        let ports: Vec<String> = r
            .ports
            .iter()
            .map(|p| match p.end_port {
                Some(e) => format!("{}-{}/{}", p.port, e, p.protocol.as_str()),
                None => format!("{}/{}", p.port, p.protocol.as_str()),
            })
            .collect();
        let _ = writeln!(out, "              ingress from {who} on {}", ports.join(", "));
        can.push(format!("accept connections from {who} on {}", ports.join(", ")));
    }

    // Devices, resources
    if policy.devices.gpu.is_some() || !policy.devices.allow.is_empty() {
        let mut devs: Vec<String> = policy.devices.allow.iter().map(|d| format!("{} ({})", d.path, d.access)).collect();
        if policy.devices.gpu == Some(Gpu::Nvidia) {
            devs.insert(0, "NVIDIA GPUs (/dev/nvidia*)".into());
        }
        let _ = writeln!(out, "devices       {}", devs.join(", "));
        can.push(format!("use {}", devs.join(", ")));
    }
    let r = &policy.resources;
    let mut res = Vec::new();
    if let Some(m) = r.memory {
        res.push(format!("memory {}", format_bytes(m)));
    }
    if let Some(c) = r.cpu {
        res.push(format!("cpu {}", format_millicores(c)));
    }
    if let Some(pids) = r.pids {
        res.push(format!("pids {pids}"));
    }
    let _ = writeln!(out, "resources     {}", if res.is_empty() { "no limits".into() } else { res.join(", ") });
    if let Some(ns) = &policy.kubernetes.namespace {
        let _ = writeln!(out, "kubernetes    namespace {ns}, pods {}", labels(&policy.kubernetes.pod_selector));
    }

    let _ = writeln!(out, "\nthe workload can:");
    if can.is_empty() {
        let _ = writeln!(out, "  - run its programs within the limits above");
    }
    for c in &can {
        let _ = writeln!(out, "  - {c}");
    }
    let _ = writeln!(out, "\nthe workload cannot:");
    for c in &cannot {
        let _ = writeln!(out, "  - {c}");
    }
    out
}

fn labels(m: &std::collections::BTreeMap<String, String>) -> String {
    if m.is_empty() {
        return "(all)".into();
    }
    m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}
