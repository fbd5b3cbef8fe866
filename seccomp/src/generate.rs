//! Policy → OCI seccomp profile.
//!
//! The profile is an allow-list: the default action denies, and each allow rule carries the
//! reason (the baseline group, a capability, or the policy field) as its `comment`. The order of
//! rules and of names within a rule is fixed, so the output is byte-identical for the same policy.

use std::collections::{BTreeMap, BTreeSet};

use semble_policy::explain::SeccompFacts;
use semble_policy::model::{Baseline, DefaultAction, NetworkMode, SandboxPolicy};
use semble_policy::seccomp_profile::{ArgCondition, SeccompProfile, SyscallRule};

use crate::baseline::*;

/// Architectures written into generated profiles. 32-bit ABIs (x86, x32, arm) are left out on
/// purpose: a syscall made through them matches no architecture and is refused.
pub const ARCHITECTURES: &[&str] = &["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"];

/// The syscalls whose unconditional allowance would make a sandbox for untrusted code weak;
/// `explain` lists which of them stay blocked.
pub const NOTABLE_BLOCKED: &[&str] = &[
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "unshare",
    "mount",
    "umount2",
    "pivot_root",
    "userfaultfd",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "io_uring_setup",
    "setns",
    "reboot",
    "swapon",
    "acct",
    "iopl",
    "ioperm",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
];

const ALLOW: &str = "SCMP_ACT_ALLOW";
const ERRNO: &str = "SCMP_ACT_ERRNO";
const ENOSYS: u32 = 38;
const SOCK_TYPE_MASK: u64 = 0xf;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_UDP: u64 = 17;

fn eq(index: u32, value: u64) -> ArgCondition {
    ArgCondition { index, value, value_two: 0, op: "SCMP_CMP_EQ".into() }
}

fn masked_eq(index: u32, mask: u64, value: u64) -> ArgCondition {
    ArgCondition { index, value: mask, value_two: value, op: "SCMP_CMP_MASKED_EQ".into() }
}

fn rule(names: Vec<String>, action: &str, comment: String) -> SyscallRule {
    SyscallRule {
        names,
        action: action.into(),
        errno_ret: None,
        args: Vec::new(),
        comment: Some(comment),
        includes: None,
        excludes: None,
    }
}

/// The unconditionally allowed syscalls of a policy, each with the reason it is allowed. Names
/// that need argument checks (`clone`, `clone3`, `socket`, `personality`) are not in it unless
/// the policy allows them outright.
pub fn allowed(policy: &SandboxPolicy) -> BTreeMap<String, String> {
    let s = &policy.seccomp;
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    if s.baseline != Baseline::None {
        let strict: BTreeSet<&str> = if s.baseline == Baseline::Strict {
            STRICT_REMOVES.iter().flat_map(|g| g.names.iter().copied()).collect()
        } else {
            BTreeSet::new()
        };
        for g in DEFAULT_ALLOW {
            for n in g.names {
                if !strict.contains(n) {
                    out.entry((*n).to_string())
                        .or_insert_with(|| format!("baseline {}: {}", s.baseline.as_str(), g.reason));
                }
            }
        }
        let granted = policy.capabilities.granted();
        for (cap, names) in BY_CAPABILITY {
            if granted.contains(cap) {
                for n in *names {
                    out.entry((*n).to_string()).or_insert_with(|| format!("capability {cap} is granted"));
                }
            }
        }
        if policy.devices.gpu.is_some() {
            for n in GPU_NUMA {
                out.entry((*n).to_string())
                    .or_insert_with(|| "devices.gpu: NUMA-aware allocators set their own memory's policy".into());
            }
        }
    } else {
        for n in RUNTIME_ESSENTIAL {
            out.insert((*n).to_string(), "what every process needs to start and exit".into());
        }
    }
    if policy.filesystem.is_some() {
        for n in LANDLOCK {
            out.insert((*n).to_string(), "Landlock: semble-init applies the filesystem rules".into());
        }
    }
    for n in &s.allow {
        out.insert(n.clone(), "spec.seccomp.allow".into());
    }
    for n in &s.deny {
        out.remove(n);
    }
    out
}

fn families(closed: bool, tcp_only: bool) -> String {
    SOCKET_FAMILIES
        .iter()
        .map(|(_, n)| match (matches!(*n, "AF_INET" | "AF_INET6"), closed, tcp_only) {
            (true, true, true) => format!("{n}/TCP"),
            (true, true, false) => format!("{n}/TCP+UDP"),
            _ => (*n).to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn restricts_ip_to_tcp(policy: &SandboxPolicy) -> bool {
    matches!(policy.network.mode, NetworkMode::None | NetworkMode::Proxy) && !policy.network.dns
}

/// `seccomp(2)`'s `SECCOMP_FILTER_FLAG_NEW_LISTENER`: the filter being loaded gets a notify
/// listener fd.
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u64 = 1 << 3;
const S_IFMT: u64 = 0o170_000;
/// `mknod` file types that are not device nodes: regular (0 and `S_IFREG`), FIFO, socket.
const NON_DEVICE_TYPES: &[u64] = &[0, 0o100_000, 0o010_000, 0o140_000];
/// What a 32-bit id argument means "unchanged": `(uid_t) -1`.
const ID_UNCHANGED: u64 = 0xffff_ffff;
/// The kernel reads a uid or gid argument as its low 32 bits: the rules compare exactly those
/// (so a value with high bits set is judged as the kernel will read it, and `-1` passes whether
/// the caller zero-extends it like glibc or sign-extends it like Go).
const ID_MASK: u64 = 0xffff_ffff;

/// The uid and gid a container's process runs as (after the shim applied the policy). With
/// `runAsNonRoot`, the set*id syscalls may only name these (or "unchanged"): the process's
/// identity is fixed for its whole life, so it can never become uid or gid 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The uid.
    pub uid: u32,
    /// The gid.
    pub gid: u32,
}

/// A syscall the policy allows by name, but only with some arguments. Every filter semble
/// generates carries these rules whatever `spec.seccomp.allow` says: each closes a way around
/// another control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    /// The syscall.
    pub name: &'static str,
    /// Why (the rule's comment, and what a denial explanation names).
    pub reason: String,
    /// How a policy allows more (the fix a denial explanation offers).
    pub fix: String,
    /// The argument sets allowed: each inner list is one rule (its conditions all hold).
    pub allowed: Vec<Vec<ArgCondition>>,
}

/// All combinations of one value per argument: `choices[i]` are the values argument `i` may take.
fn id_rules(choices: &[Vec<u64>]) -> Vec<Vec<ArgCondition>> {
    let mut out: Vec<Vec<ArgCondition>> = vec![Vec::new()];
    for (i, values) in choices.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(0);
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut r = prefix.clone();
                    r.push(masked_eq(index, ID_MASK, *v));
                    r
                })
            })
            .collect();
    }
    out
}

/// The argument restrictions of a policy's filter. `identity` is the container's uid and gid
/// (`None` when compiling a policy on its own: then, under `runAsNonRoot`, the policy's
/// `user`/`group` when set, else no set*id call may change anything).
pub fn restrictions(policy: &SandboxPolicy, identity: Option<Identity>) -> Vec<Restriction> {
    let mut out = Vec::new();
    if !policy.seccomp.dangerously_allow_notify_listener {
        out.push(Restriction {
            name: "seccomp",
            reason: "seccomp: never with SECCOMP_FILTER_FLAG_NEW_LISTENER (a workload must not answer seccomp notifications)".into(),
            fix: "set spec.seccomp.dangerouslyAllowNotifyListener: true (dangerous: the workload can then let through what the policy refuses once semble's supervisor is gone)".into(),
            allowed: vec![vec![masked_eq(1, SECCOMP_FILTER_FLAG_NEW_LISTENER, 0)]],
        });
    }
    if !policy.capabilities.granted().contains(&semble_policy::Capability::Mknod) {
        for (name, arg) in [("mknod", 1), ("mknodat", 2)] {
            out.push(Restriction {
                name,
                reason: format!("{name}: no device nodes (S_IFCHR, S_IFBLK) without capability MKNOD"),
                fix: "grant capability MKNOD (spec.capabilities.add) and list the device in spec.devices.allow".into(),
                allowed: NON_DEVICE_TYPES.iter().map(|t| vec![masked_eq(arg, S_IFMT, *t)]).collect(),
            });
        }
    }
    if policy.process.run_as_non_root {
        let pinned = identity
            .or_else(|| policy.process.user.map(|u| Identity { uid: u, gid: policy.process.group.unwrap_or(u) }));
        let (uids, gids, who) = match pinned {
            Some(id) => {
                let with = |v: u32| vec![u64::from(v), ID_UNCHANGED];
                (with(id.uid), with(id.gid), format!("uid {} gid {}", id.uid, id.gid))
            }
            None => (vec![ID_UNCHANGED], vec![ID_UNCHANGED], "its starting uid and gid".to_string()),
        };
        let fix = "set spec.process.runAsNonRoot: false (dangerous: the workload could then make itself root with CAP_SETUID/CAP_SETGID)".to_string();
        let reason = |name: &str| format!("{name}: runAsNonRoot pins the identity to {who} (never uid or gid 0)");
        let table: [(&'static str, &Vec<u64>, usize); 8] = [
            ("setuid", &uids, 1),
            ("setreuid", &uids, 2),
            ("setresuid", &uids, 3),
            ("setfsuid", &uids, 1),
            ("setgid", &gids, 1),
            ("setregid", &gids, 2),
            ("setresgid", &gids, 3),
            ("setfsgid", &gids, 1),
        ];
        for (name, values, args) in table {
            let choices: Vec<Vec<u64>> = (0..args).map(|_| values.clone()).collect();
            out.push(Restriction { name, reason: reason(name), fix: fix.clone(), allowed: id_rules(&choices) });
        }
        out.push(Restriction {
            name: "setgroups",
            reason: "setgroups: runAsNonRoot allows only clearing the supplementary groups (never gid 0)".into(),
            fix,
            allowed: vec![vec![masked_eq(0, 0xffff_ffff, 0)]],
        });
    }
    out
}

/// Generate the profile of a policy on its own (`semble-policy compile`).
pub fn profile(policy: &SandboxPolicy) -> SeccompProfile {
    profile_for(policy, None)
}

/// Generate the profile for a container running as `identity` (see [`restrictions`]).
pub fn profile_for(policy: &SandboxPolicy, identity: Option<Identity>) -> SeccompProfile {
    let s = &policy.seccomp;
    let mut allowed = allowed(policy);
    let denied: BTreeSet<&str> = s.deny.iter().map(String::as_str).collect();
    // Names allowed only with some arguments leave the unconditional set.
    let restricted: Vec<Restriction> =
        restrictions(policy, identity).into_iter().filter(|r| allowed.remove(r.name).is_some()).collect();

    // One allow rule per reason, in first-seen order of the baseline groups.
    let mut by_reason: Vec<(String, Vec<String>)> = Vec::new();
    for (name, reason) in &allowed {
        match by_reason.iter_mut().find(|(r, _)| r == reason) {
            Some((_, names)) => names.push(name.clone()),
            None => by_reason.push((reason.clone(), vec![name.clone()])),
        }
    }
    by_reason.sort_by_key(|(r, _)| reason_order(r));
    let mut syscalls: Vec<SyscallRule> =
        by_reason.into_iter().map(|(reason, names)| rule(names, ALLOW, reason)).collect();

    if s.baseline != Baseline::None {
        // personality: only the execution domains Docker allows.
        if !allowed.contains_key("personality") && !denied.contains("personality") {
            for v in PERSONALITY_VALUES {
                let mut r = rule(
                    vec!["personality".into()],
                    ALLOW,
                    "personality: only PER_LINUX, PER_LINUX32, UNAME26 and the query".into(),
                );
                r.args.push(eq(0, *v));
                syscalls.push(r);
            }
        }
        // clone without namespace flags; clone3 hides its flags in memory, so it reports ENOSYS
        // and libc falls back to clone.
        if !allowed.contains_key("clone") && !denied.contains("clone") {
            let mut r = rule(
                vec!["clone".into()],
                ALLOW,
                "clone without namespace flags (CLONE_NEWUSER, CLONE_NEWNS, …)".into(),
            );
            r.args.push(masked_eq(0, CLONE_NAMESPACE_FLAGS, 0));
            syscalls.push(r);
        }
        if !allowed.contains_key("clone3") && !denied.contains("clone3") {
            let mut r = rule(
                vec!["clone3".into()],
                ERRNO,
                "clone3 cannot be filtered by flags: ENOSYS makes libc fall back to clone".into(),
            );
            r.errno_ret = Some(ENOSYS);
            syscalls.push(r);
        }
        // socket: by address family. Under `none`/`proxy`, IP sockets are TCP (and UDP for DNS)
        // only: no ICMP, SCTP or other protocols whose packets no egress guard looks at.
        if !allowed.contains_key("socket") && !denied.contains("socket") {
            let closed = matches!(policy.network.mode, NetworkMode::None | NetworkMode::Proxy);
            let tcp_only = restricts_ip_to_tcp(policy);
            let mut comment = format!("socket: {} only", families(closed, tcp_only));
            if closed {
                let dns = if tcp_only { "without DNS" } else { "with DNS" };
                comment = format!("{comment} (network mode `{}` {dns})", policy.network.mode.as_str());
            }
            for (family, name) in SOCKET_FAMILIES {
                let is_ip = matches!(*name, "AF_INET" | "AF_INET6");
                if is_ip && closed {
                    let mut kinds = vec![(SOCK_STREAM, IPPROTO_TCP)];
                    if !tcp_only {
                        kinds.push((SOCK_DGRAM, IPPROTO_UDP));
                    }
                    for (kind, proto) in kinds {
                        for p in [0, proto] {
                            let mut r = rule(vec!["socket".into()], ALLOW, comment.clone());
                            r.args.push(eq(0, *family));
                            r.args.push(masked_eq(1, SOCK_TYPE_MASK, kind));
                            r.args.push(eq(2, p));
                            syscalls.push(r);
                        }
                    }
                } else {
                    let mut r = rule(vec!["socket".into()], ALLOW, comment.clone());
                    r.args.push(eq(0, *family));
                    syscalls.push(r);
                }
            }
        }
    }
    for x in &restricted {
        for conditions in &x.allowed {
            let mut r = rule(vec![x.name.to_string()], ALLOW, x.reason.clone());
            r.args = conditions.clone();
            syscalls.push(r);
        }
    }
    if !s.deny.is_empty() {
        let mut r = rule(s.deny.clone(), ERRNO, "spec.seccomp.deny".into());
        r.errno_ret = Some(s.errno);
        syscalls.push(r);
    }
    SeccompProfile {
        default_action: s.default_action.oci_name().into(),
        default_errno_ret: (s.default_action == DefaultAction::Errno).then_some(s.errno),
        architectures: ARCHITECTURES.iter().map(|a| (*a).to_string()).collect(),
        arch_map: Vec::new(),
        flags: Vec::new(),
        listener_path: None,
        listener_metadata: None,
        syscalls,
    }
}

const NOTIFY: &str = "SCMP_ACT_NOTIFY";

/// The syscalls a filter with explanations needs allowed: `semble-init` hands the notify fd to
/// the supervisor with `sendmsg` and closes its copy after loading the filter.
pub const NOTIFY_HANDOVER: &[&str] = &["sendmsg", "close", "setsockopt", "read"];

/// Why the policy's denials cannot be explained by seccomp user notification, if they cannot.
pub fn notify_unsupported(policy: &SandboxPolicy) -> Option<String> {
    let s = &policy.seccomp;
    if !s.explain_denials {
        return Some("spec.seccomp.explainDenials is false".into());
    }
    if s.default_action != DefaultAction::Errno {
        return Some(format!(
            "the default action is `{}`, not `errno`: only refusals with an errno can be explained",
            s.default_action.as_str()
        ));
    }
    let allowed = allowed(policy);
    if let Some(n) = NOTIFY_HANDOVER.iter().find(|n| !allowed.contains_key(**n)) {
        return Some(format!("the policy does not allow `{n}`, which hands the notify fd to the supervisor"));
    }
    None
}

/// The profile with explanations: every refusal that returns the policy's errno (the denied
/// syscalls and the default action) becomes `SCMP_ACT_NOTIFY`, answered by the supervisor with
/// that same errno. Allowed syscalls and their argument rules are untouched, so they cost what
/// they cost before; `clone3`'s ENOSYS stays in the kernel.
pub fn notify_profile(profile: &SeccompProfile, errno: u32) -> SeccompProfile {
    let mut p = profile.clone();
    if p.default_action == ERRNO && p.default_errno_ret.unwrap_or(1) == errno {
        p.default_action = NOTIFY.into();
        p.default_errno_ret = None;
    }
    for r in &mut p.syscalls {
        if r.action == ERRNO && r.errno_ret.unwrap_or(1) == errno {
            r.action = NOTIFY.into();
            r.errno_ret = None;
        }
    }
    p
}

/// The profile of a recording run: every syscall notifies (the recorder answers "continue"),
/// except the handover of the notify fd itself.
pub fn record_profile() -> SeccompProfile {
    SeccompProfile {
        default_action: NOTIFY.into(),
        default_errno_ret: None,
        architectures: ARCHITECTURES.iter().map(|a| (*a).to_string()).collect(),
        arch_map: Vec::new(),
        flags: Vec::new(),
        listener_path: None,
        listener_metadata: None,
        syscalls: vec![
            rule(
                vec!["sendmsg".into()],
                ALLOW,
                "the recorder's own channel: the notify fd is handed over with it".into(),
            ),
            {
                // Even a recording refuses a notify listener to the workload: it could answer
                // its own notifications before the recorder sees them.
                let mut r =
                    rule(vec!["seccomp".into()], ERRNO, "seccomp: never with SECCOMP_FILTER_FLAG_NEW_LISTENER".into());
                r.args.push(masked_eq(1, SECCOMP_FILTER_FLAG_NEW_LISTENER, SECCOMP_FILTER_FLAG_NEW_LISTENER));
                r.errno_ret = Some(1);
                r
            },
        ],
    }
}

/// Baseline groups first (in their declared order), then capabilities, Landlock, the policy's own.
fn reason_order(reason: &str) -> (usize, String) {
    let group = reason.split_once(": ").map(|(_, g)| g).unwrap_or(reason);
    if let Some(i) = DEFAULT_ALLOW.iter().position(|g| g.reason == group) {
        return (i, String::new());
    }
    let rank = if reason.starts_with("capability") {
        100
    } else if reason.starts_with("Landlock") {
        101
    } else if reason == "spec.seccomp.allow" {
        103
    } else {
        102
    };
    (rank, reason.to_string())
}

/// What `explain` shows about the seccomp side of a policy.
pub fn facts(profile: &SeccompProfile, bpf_instructions: Option<usize>) -> SeccompFacts {
    let allowed: BTreeSet<&str> = profile.unconditionally_allowed().collect();
    let mut conditional: Vec<String> = Vec::new();
    for r in profile
        .syscalls
        .iter()
        .filter(|r| !r.args.is_empty() || (r.action != ALLOW && r.comment.as_deref() != Some("spec.seccomp.deny")))
    {
        if let Some(c) = &r.comment {
            if !conditional.contains(c) {
                conditional.push(c.clone());
            }
        }
    }
    let blocked = NOTABLE_BLOCKED.iter().filter(|n| !allowed.contains(**n)).map(|n| (*n).to_string()).collect();
    SeccompFacts { allowed: allowed.len(), conditional, blocked, bpf_instructions }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(spec: &str) -> SandboxPolicy {
        let src = format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: t}}\nspec:\n{spec}");
        semble_policy::parse(&src).unwrap().policy
    }

    #[test]
    fn dangerous_syscalls_are_never_allowed_by_a_baseline() {
        for baseline in ["default", "strict"] {
            let p = policy(&format!("  seccomp: {{baseline: {baseline}}}\n  capabilities: {{drop: [ALL], add: [SYS_ADMIN, SYS_PTRACE, SYS_MODULE, SYS_BOOT, BPF, PERFMON, SYS_RAWIO, DAC_READ_SEARCH]}}\n  network: {{mode: none}}\n"));
            let prof = profile(&p);
            let allowed: BTreeSet<&str> = prof.unconditionally_allowed().collect();
            for g in NEVER_BY_DEFAULT {
                for n in g.names {
                    assert!(!allowed.contains(n), "{baseline} allows {n}");
                }
            }
        }
    }

    #[test]
    fn deny_removes_from_the_baseline_and_gets_its_own_rule() {
        let p = policy("  seccomp: {deny: [getpid, clone], errno: EACCES}\n  network: {mode: none}\n");
        let prof = profile(&p);
        assert!(!prof.unconditionally_allowed().any(|n| n == "getpid"));
        assert!(!prof.syscalls.iter().any(|r| r.action == ALLOW && r.names.iter().any(|n| n == "clone")));
        let deny = prof.syscalls.iter().find(|r| r.comment.as_deref() == Some("spec.seccomp.deny")).unwrap();
        assert_eq!(deny.names, vec!["getpid", "clone"]);
        assert_eq!(deny.errno_ret, Some(13));
    }

    #[test]
    fn allow_adds_unconditionally_and_replaces_argument_rules() {
        let p = policy("  seccomp: {allow: [ptrace, clone]}\n  network: {mode: none}\n");
        let prof = profile(&p);
        assert!(prof.unconditionally_allowed().any(|n| n == "ptrace"));
        assert!(prof.unconditionally_allowed().any(|n| n == "clone"));
        assert!(!prof.syscalls.iter().any(|r| r.names == ["clone"] && !r.args.is_empty()));
    }

    #[test]
    fn capability_conditional_rules_follow_granted_capabilities() {
        let without = profile(&policy("  network: {mode: none}\n"));
        assert!(!without.unconditionally_allowed().any(|n| n == "chroot"));
        let with = profile(&policy("  capabilities: {add: [SYS_CHROOT]}\n  network: {mode: none}\n"));
        assert!(with.unconditionally_allowed().any(|n| n == "chroot"));
    }

    #[test]
    fn gpu_policies_get_their_own_numa_policy_and_nothing_that_moves_other_processes_pages() {
        let plain = allowed(&policy("  network: {mode: none}\n"));
        let gpu = allowed(&policy("  devices: {gpu: nvidia}\n  network: {mode: none}\n"));
        for n in GPU_NUMA {
            assert!(!plain.contains_key(*n), "{n} without a GPU");
            assert!(gpu.get(*n).is_some_and(|r| r.starts_with("devices.gpu")), "{n}: {gpu:?}");
        }
        for n in ["migrate_pages", "move_pages", "set_mempolicy_home_node"] {
            assert!(!gpu.contains_key(n), "{n} moves other processes' pages or is not needed");
        }
        // A deny still wins, and the strict baseline gets them too.
        let denied =
            allowed(&policy("  devices: {gpu: nvidia}\n  seccomp: {deny: [mbind]}\n  network: {mode: none}\n"));
        assert!(!denied.contains_key("mbind"));
        let strict =
            allowed(&policy("  devices: {gpu: nvidia}\n  seccomp: {baseline: strict}\n  network: {mode: none}\n"));
        assert!(strict.contains_key("get_mempolicy"));
        let none = allowed(&policy(
            "  devices: {gpu: nvidia}\n  seccomp: {baseline: none, allow: [read]}\n  network: {mode: none}\n",
        ));
        assert!(!none.contains_key("mbind"), "baseline none is the allow-list only");
    }

    #[test]
    fn strict_is_a_subset_of_default() {
        let d = profile(&policy("  network: {mode: none}\n"));
        let s = profile(&policy("  seccomp: {baseline: strict}\n  network: {mode: none}\n"));
        let d: BTreeSet<&str> = d.unconditionally_allowed().collect();
        let s: BTreeSet<&str> = s.unconditionally_allowed().collect();
        assert!(s.is_subset(&d));
        assert!(!s.contains("memfd_create"));
    }

    #[test]
    fn landlock_syscalls_only_with_a_filesystem_section() {
        let without = profile(&policy("  network: {mode: none}\n"));
        assert!(!without.unconditionally_allowed().any(|n| n == "landlock_restrict_self"));
        let with = profile(&policy("  filesystem: {readOnly: [/usr], execute: [/bin]}\n  network: {mode: none}\n"));
        assert!(with.unconditionally_allowed().any(|n| n == "landlock_restrict_self"));
    }

    #[test]
    fn baseline_none_is_the_allow_list_plus_the_essentials() {
        let p = policy("  seccomp: {baseline: none, allow: [read, openat]}\n  network: {mode: none}\n");
        let prof = profile(&p);
        let allowed: BTreeSet<&str> = prof.unconditionally_allowed().collect();
        assert!(allowed.contains("read") && allowed.contains("execve"));
        assert!(!allowed.contains("socket") && !prof.syscalls.iter().any(|r| r.names == ["socket"]));
    }

    #[test]
    fn notify_profile_turns_the_policys_refusals_into_notifications_only() {
        let p = policy("  seccomp: {deny: [ptrace]}\n  network: {mode: none}\n");
        let plain = profile(&p);
        let n = notify_profile(&plain, p.seccomp.errno);
        assert_eq!(n.default_action, NOTIFY);
        assert_eq!(n.default_errno_ret, None);
        let deny = n.syscalls.iter().find(|r| r.comment.as_deref() == Some("spec.seccomp.deny")).unwrap();
        assert_eq!(deny.action, NOTIFY);
        // clone3's ENOSYS is not the policy's errno: it stays in the kernel.
        let clone3 = n.syscalls.iter().find(|r| r.names == ["clone3"]).unwrap();
        assert_eq!((clone3.action.as_str(), clone3.errno_ret), (ERRNO, Some(ENOSYS)));
        // Allowed syscalls are exactly as before.
        let allow = |p: &SeccompProfile| p.syscalls.iter().filter(|r| r.action == ALLOW).cloned().collect::<Vec<_>>();
        assert_eq!(allow(&plain), allow(&n));
        assert_eq!(notify_unsupported(&p), None);
    }

    #[test]
    fn explanations_are_off_where_they_cannot_work() {
        let off = policy("  seccomp: {explainDenials: false}\n  network: {mode: none}\n");
        assert!(notify_unsupported(&off).unwrap().contains("explainDenials"));
        let kill = policy("  seccomp: {defaultAction: kill-process}\n  network: {mode: none}\n");
        assert!(notify_unsupported(&kill).unwrap().contains("default action"));
        let tiny = policy("  seccomp: {baseline: none, allow: [read]}\n  network: {mode: none}\n");
        assert!(notify_unsupported(&tiny).unwrap().contains("sendmsg"));
    }

    #[test]
    fn restricted_syscalls_leave_the_unconditional_set_whatever_allow_says() {
        let p = policy("  seccomp: {allow: [seccomp, setuid, mknod]}\n  process: {user: 1000, runAsNonRoot: true}\n  network: {mode: none}\n");
        let prof = profile(&p);
        let unconditional: BTreeSet<&str> = prof.unconditionally_allowed().collect();
        for n in ["seccomp", "setuid", "setresuid", "setgroups", "mknod", "mknodat"] {
            assert!(!unconditional.contains(n), "{n} must only be allowed with arguments");
            assert!(prof.syscalls.iter().any(|r| r.names == [n] && !r.args.is_empty()), "{n} has no rule");
        }
        // setresuid: the uid or "unchanged" in each of three arguments, low 32 bits compared.
        assert_eq!(prof.syscalls.iter().filter(|r| r.names == ["setresuid"]).count(), 8);
        let setuid: Vec<(u64, u64)> = prof
            .syscalls
            .iter()
            .filter(|r| r.names == ["setuid"])
            .map(|r| (r.args[0].value, r.args[0].value_two))
            .collect();
        assert_eq!(setuid, [(0xffff_ffff, 1000), (0xffff_ffff, 0xffff_ffff)]);
        // The container's identity wins over the policy's.
        let pinned = profile_for(&p, Some(Identity { uid: 2000, gid: 3000 }));
        assert!(pinned.syscalls.iter().any(|r| r.names == ["setgid"] && r.args[0].value_two == 3000));
    }

    #[test]
    fn a_notify_listener_needs_the_field_that_warns_and_mknod_the_capability() {
        let p = policy("  seccomp: {dangerouslyAllowNotifyListener: true}\n  capabilities: {add: [MKNOD]}\n  network: {mode: none}\n");
        let prof = profile(&p);
        let unconditional: BTreeSet<&str> = prof.unconditionally_allowed().collect();
        assert!(unconditional.contains("seccomp") && unconditional.contains("mknod"));
        // Without runAsNonRoot the identity calls are the baseline's.
        assert!(unconditional.contains("setuid"));
        // The recording profile refuses the flag too.
        let rec = record_profile();
        assert!(rec.syscalls.iter().any(|r| r.names == ["seccomp"] && r.action == ERRNO));
    }

    #[test]
    fn output_is_deterministic() {
        let p = policy("  seccomp: {deny: [ptrace]}\n  network: {mode: none}\n");
        let a = serde_json::to_string(&profile(&p)).unwrap();
        let b = serde_json::to_string(&profile(&p)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn every_baseline_name_is_a_known_syscall() {
        let groups = DEFAULT_ALLOW.iter().chain(NEVER_BY_DEFAULT).chain(STRICT_REMOVES);
        for g in groups {
            for n in g.names {
                assert!(semble_policy::syscalls::lookup(n).is_some(), "unknown syscall {n}");
            }
        }
        for n in LANDLOCK.iter().chain(RUNTIME_ESSENTIAL) {
            assert!(semble_policy::syscalls::lookup(n).is_some(), "unknown syscall {n}");
        }
    }
}
