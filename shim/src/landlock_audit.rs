//! Landlock refusals, explained: the kernel's audit records of a container's Landlock domain
//! turned into the same lines as seccomp's (path, right, policy field, fix).
//!
//! Linux 6.15 (Landlock ABI 7) logs a domain's refusals through audit when the domain asks for
//! it (`semble-init` sets `LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON` when the container's denials
//! are explained): one `LANDLOCK_ACCESS` record (type 1423) per refusal, naming the domain, the
//! rights that were missing (`blockers=fs.read_file`) and the object (`path="/secret/file"`),
//! and, with a domain's first refusal, one `LANDLOCK_DOMAIN` record (1424) saying which process
//! created it (`pid=`, the host's pid). A task with an audit context adds a `SYSCALL` record
//! (the syscall, its result, the task's pid and name) with the same serial.
//!
//! Every container's supervisor reads every record of the host (the audit multicast group), so
//! it must pick its own container's. The domain's creator tells it: right after restricting
//! itself, `semble-init` sends one message with its credentials on the connection that handed
//! over the seccomp listener (the kernel attests the pid), then causes a first refusal (a signal
//! check on pid 1, outside the domain) so that the domain's record comes out while it is alive.
//! A domain record whose creator pid was announced on this supervisor's socket is this
//! container's; any other (another container's, a workload's own nested domain) is not, after a
//! short grace period for the announcement to arrive. Nothing a workload writes can claim
//! another container's domain: the creator pid comes from the kernel on both sides.
//!
//! This module is pure (records in, denial lines out); the socket is in `sys::audit`, the loop
//! in [`crate::supervisor`].

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use semble_policy::compile::landlock::{FsAccess, NetRules, PathRule};
use semble_seccomp::denials::{printable, Denial, LANDLOCK};

/// Audit record types.
pub const AUDIT_SYSCALL: u16 = 1300;
/// End of a multi-record event.
pub const AUDIT_EOE: u16 = 1320;
/// A Landlock refusal.
pub const AUDIT_LANDLOCK_ACCESS: u16 = 1423;
/// A Landlock domain's life (first refusal: `status=allocated`; end: `status=deallocated`).
pub const AUDIT_LANDLOCK_DOMAIN: u16 = 1424;

/// How long a domain record waits for its creator's announcement before it is taken for
/// another container's.
const GRACE: Duration = Duration::from_secs(3);
/// How long the records of one event wait for the event's end (`EOE`, or nothing when the task
/// has no audit context).
const EVENT_WAIT: Duration = Duration::from_millis(150);
/// The most refusals held for domains not yet known (a burst from another container).
const HELD_MAX: usize = 256;
/// The most announced creators remembered.
const CREATORS_MAX: usize = 256;

/// One audit record, parsed: its serial and `key=value` fields (values unquoted, hex decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's type.
    pub kind: u16,
    /// The event's serial (records of one syscall share it).
    pub serial: u64,
    /// The fields, in order.
    pub fields: Vec<(String, String)>,
}

impl Record {
    /// A field's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Fields whose value the kernel writes with `audit_log_untrustedstring`: quoted, or in hex when
/// it holds a quote, a space or a control character.
const UNTRUSTED: &[&str] = &["path", "name", "comm", "exe", "ocomm", "proctitle"];

fn hex_decode(v: &str) -> Option<String> {
    if v.is_empty() || v.len() % 2 != 0 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..v.len()).step_by(2).map(|i| u8::from_str_radix(v.get(i..i + 2)?, 16).ok()).collect();
    Some(String::from_utf8_lossy(&bytes?).into_owned())
}

/// Parse a record's text (`audit(SECONDS.MILLIS:SERIAL): key=value …`).
pub fn parse(kind: u16, text: &str) -> Option<Record> {
    let rest = text.strip_prefix("audit(")?;
    let (stamp, rest) = rest.split_once("):")?;
    let serial = stamp.rsplit_once(':')?.1.parse::<u64>().ok()?;
    let mut fields = Vec::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let Some((key, after)) = s.split_once('=') else { break };
        let key = key.trim().to_string();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.split_once('"') {
                Some((v, n)) => (v.to_string(), n),
                None => (q.to_string(), ""),
            }
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            let raw = &after[..end];
            let v = if UNTRUSTED.contains(&key.as_str()) {
                hex_decode(raw).unwrap_or_else(|| raw.into())
            } else {
                raw.into()
            };
            (v, &after[end..])
        };
        fields.push((key, value));
        s = next.trim_start();
    }
    Some(Record { kind, serial, fields })
}

/// What the kernel refused, as the workload sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// A file or directory.
    Path(String),
    /// A TCP port to bind or connect to.
    Port {
        /// Bind (`true`) or connect.
        bind: bool,
        /// The port.
        port: u16,
    },
    /// A process outside the sandbox (a signal).
    Task {
        /// Its pid, as the host sees it.
        pid: u32,
        /// Its name.
        comm: String,
    },
    /// Something else the record names.
    Other(String),
}

impl Object {
    fn of(r: &Record) -> Object {
        let blockers = r.get("blockers").unwrap_or("");
        if blockers.contains("net.bind_tcp") || blockers.contains("net.connect_tcp") {
            let bind = blockers.contains("net.bind_tcp");
            let port = ["lport", "src", "fport", "dest", "dport", "sport"]
                .iter()
                .find_map(|k| r.get(k).and_then(|v| v.parse::<u16>().ok()))
                .unwrap_or(0);
            return Object::Port { bind, port };
        }
        if let Some(pid) = r.get("opid").and_then(|p| p.parse::<u32>().ok()) {
            return Object::Task { pid, comm: r.get("ocomm").unwrap_or("").to_string() };
        }
        if let Some(p) = r.get("path").or_else(|| r.get("name")) {
            return Object::Path(p.to_string());
        }
        Object::Other(String::new())
    }

    /// As written in a line (workload-controlled text made printable).
    pub fn describe(&self) -> String {
        match self {
            Object::Path(p) => printable(p),
            Object::Port { port, .. } => format!("tcp port {port}"),
            Object::Task { pid, comm } => format!("pid {pid} ({})", printable(comm)),
            Object::Other(o) => printable(o),
        }
    }
}

fn short(name: &str) -> &str {
    name.strip_prefix("fs.").unwrap_or(name)
}

fn within(path: &str, tree: &str) -> bool {
    tree == "/" || path == tree || path.strip_prefix(tree).is_some_and(|r| r.starts_with('/'))
}

/// The verdict on one refusal: the rule that decided it, the fix, the errno the caller got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Which part of the policy refused it.
    pub rule: String,
    /// How a policy would allow it (or why none can).
    pub fix: String,
    /// What the caller got, when the record does not say.
    pub errno: &'static str,
}

/// What the container's Landlock ruleset says about a refusal of `blockers` on `object`.
pub fn attribute(rules: &[PathRule], net: Option<&NetRules>, mode: &str, blockers: &str, object: &Object) -> Verdict {
    let names: Vec<&str> = blockers.split(',').filter(|b| !b.is_empty()).collect();
    let has = |n: &str| names.contains(&n);
    if has("scope.signal") {
        return Verdict {
            rule:
                "Landlock scope: no signals to processes outside the sandbox (semble-init, other containers, the host)"
                    .into(),
            fix: "none: semble always sets this scope; signal only the workload's own processes".into(),
            errno: "EPERM",
        };
    }
    if has("scope.abstract_unix_socket") {
        return Verdict {
            rule: "Landlock scope: no connections to abstract Unix sockets made outside the sandbox".into(),
            fix: "none: semble always sets this scope; reach such a service through a socket file the policy lists"
                .into(),
            errno: "EPERM",
        };
    }
    if has("ptrace") {
        return Verdict {
            rule: "Landlock: a sandboxed process never traces or inspects a process outside its sandbox".into(),
            fix: "none".into(),
            errno: "EPERM",
        };
    }
    if has("fs.change_topology") {
        return Verdict {
            rule: "Landlock: a sandboxed process never changes its mounts".into(),
            fix: "none: mount what the workload needs through the container's configuration (a volume)".into(),
            errno: "EPERM",
        };
    }
    if let Object::Port { bind, port } = object {
        let (allowed, what) = match net {
            Some(n) if *bind => (n.bind_tcp.clone(), "bind"),
            Some(n) => (n.connect_tcp.clone(), "connect to"),
            None => (Vec::new(), if *bind { "bind" } else { "connect to" }),
        };
        let list = if allowed.is_empty() {
            "none".to_string()
        } else {
            allowed.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        };
        let fix = if *bind {
            format!("add TCP port {port} to a spec.network.ingress rule")
        } else {
            format!("none under network mode `{mode}`: connections leave through the proxy (spec.network.egress), or go to the workload's own ingress ports")
        };
        return Verdict {
            rule: format!("network mode `{mode}`: Landlock lets the workload {what} TCP ports {list} only"),
            fix,
            errno: "EACCES",
        };
    }
    let path = match object {
        Object::Path(p) => p.as_str(),
        _ => "",
    };
    let shown = printable(path);
    // The most specific rule covering the path, and what all covering rules grant.
    let covering: Vec<&PathRule> = rules.iter().filter(|r| !path.is_empty() && within(path, &r.path)).collect();
    let granted: Vec<FsAccess> = {
        let mut g: Vec<FsAccess> = covering.iter().flat_map(|r| r.access.iter().copied()).collect();
        g.sort();
        g.dedup();
        g
    };
    let missing: Vec<&str> = names.iter().map(|n| short(n)).collect();
    let rule = match covering.iter().max_by_key(|r| r.path.len()) {
        None => format!("no Landlock rule covers `{shown}`, which needs {}", missing.join(", ")),
        Some(r) => {
            let rights: Vec<String> = granted
                .iter()
                .map(|a| serde_json::to_value(a).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())
                .map(|s| s.replace('-', "_"))
                .collect();
            format!("{} `{}` grants {} only, not {}", r.reason, r.path, rights.join(", "), missing.join(", "))
        }
    };
    let errno = if has("fs.refer") && names.len() == 1 { "EXDEV" } else { "EACCES" };
    let fix = if has("fs.make_char") || has("fs.make_block") {
        "none: device nodes are never made in a sandbox; the container's configuration passes devices in".into()
    } else if has("fs.ioctl_dev") {
        if crate::bundle::is_nvidia_name(path) {
            format!("`{shown}` is an NVIDIA node that `devices.gpu: nvidia` does not open for CUDA; list it in spec.devices.allow if the workload needs it")
        } else {
            format!("list `{shown}` in spec.devices.allow (read, write and ioctl on the host node's own number)")
        }
    } else {
        match semble_seccomp::denials::landlock_field(blockers) {
            Some("execute") => format!(
                "add `{shown}` to spec.filesystem.execute (with the directory of its ELF interpreter, e.g. `/lib`)"
            ),
            Some(field) => format!("add `{shown}` to spec.filesystem.{field}"),
            None => "none".into(),
        }
    };
    Verdict { rule, fix, errno }
}

/// The syscall a record's event was (from its `SYSCALL` record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SyscallInfo {
    pid: u32,
    comm: String,
    exe: String,
    syscall: String,
    errno: Option<String>,
}

impl SyscallInfo {
    fn of(r: &Record) -> SyscallInfo {
        let nr = r.get("syscall").and_then(|n| n.parse::<u32>().ok());
        let syscall = match (r.get("arch"), nr) {
            (Some("c000003e"), Some(n)) => semble_policy::syscalls::by_x86_64_number(n).map(|s| s.name.to_string()),
            (Some("c00000b7"), Some(n)) => semble_policy::syscalls::by_aarch64_number(n).map(|s| s.name.to_string()),
            _ => None,
        }
        .unwrap_or_default();
        let errno = r
            .get("exit")
            .and_then(|e| e.parse::<i32>().ok())
            .filter(|e| *e < 0)
            .map(|e| format!("{:?}", nix::errno::Errno::from_raw(-e)));
        SyscallInfo {
            pid: r.get("pid").and_then(|p| p.parse().ok()).unwrap_or(0),
            comm: printable(r.get("comm").unwrap_or("")),
            exe: printable(r.get("exe").unwrap_or("")),
            syscall,
            errno,
        }
    }
}

#[derive(Debug, Clone)]
struct Access {
    record: Record,
    syscall: Option<SyscallInfo>,
}

#[derive(Debug)]
enum Domain {
    /// This container's; `announced` once its first refusal (the announcement) went by.
    Ours { announced: bool },
    /// Not known yet: its record's creator (if seen), since when, and its refusals so far.
    Unknown { creator: Option<u32>, since: Instant, held: Vec<Access> },
    /// Another container's, or a workload's own nested domain.
    Theirs,
}

#[derive(Debug)]
struct Event {
    since: Instant,
    records: Vec<Record>,
}

/// The container's Landlock explainer: records in, denial lines out.
#[derive(Debug)]
pub struct Explainer {
    container: String,
    policy: String,
    mode: String,
    rules: Vec<PathRule>,
    net: Option<NetRules>,
    creators: Vec<(u32, Instant)>,
    domains: HashMap<u64, Domain>,
    events: BTreeMap<u64, Event>,
    held: usize,
}

impl Explainer {
    /// For container `container` under `policy` (network mode `mode`), whose ruleset has `rules`
    /// and `net`.
    pub fn new(container: &str, policy: &str, mode: &str, rules: Vec<PathRule>, net: Option<NetRules>) -> Explainer {
        Explainer {
            container: container.into(),
            policy: policy.into(),
            mode: mode.into(),
            rules,
            net,
            creators: Vec::new(),
            domains: HashMap::new(),
            events: BTreeMap::new(),
            held: 0,
        }
    }

    /// Domains known to be this container's.
    pub fn ours(&self) -> usize {
        self.domains.values().filter(|d| matches!(d, Domain::Ours { .. })).count()
    }

    /// A process of the container created a domain (pid attested by the kernel).
    pub fn creator(&mut self, pid: u32, now: Instant) -> Vec<Denial> {
        if self.creators.len() >= CREATORS_MAX {
            self.creators.remove(0);
        }
        self.creators.push((pid, now));
        // Its domain's record may have come first.
        let found: Vec<u64> = self
            .domains
            .iter()
            .filter(|(_, d)| matches!(d, Domain::Unknown { creator: Some(c), .. } if *c == pid))
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in found {
            self.creators.retain(|(p, _)| *p != pid);
            out.extend(self.adopt(id));
        }
        out
    }

    /// One record from the audit socket.
    pub fn record(&mut self, kind: u16, text: &str, now: Instant) -> Vec<Denial> {
        if !matches!(kind, AUDIT_LANDLOCK_ACCESS | AUDIT_LANDLOCK_DOMAIN | AUDIT_SYSCALL | AUDIT_EOE) {
            return Vec::new();
        }
        let Some(r) = parse(kind, text) else { return Vec::new() };
        let serial = r.serial;
        if kind == AUDIT_EOE {
            return self.finish(serial);
        }
        // A SYSCALL record only matters for an event that has a Landlock record.
        if kind == AUDIT_SYSCALL && !self.events.contains_key(&serial) {
            return Vec::new();
        }
        self.events.entry(serial).or_insert(Event { since: now, records: Vec::new() }).records.push(r);
        Vec::new()
    }

    /// Time passing: events without an end, domains never announced.
    pub fn tick(&mut self, now: Instant) -> Vec<Denial> {
        let done: Vec<u64> =
            self.events.iter().filter(|(_, e)| now.duration_since(e.since) >= EVENT_WAIT).map(|(s, _)| *s).collect();
        let mut out = Vec::new();
        for s in done {
            out.extend(self.finish(s));
        }
        let mut released = 0;
        for d in self.domains.values_mut() {
            if let Domain::Unknown { since, held, .. } = d {
                if now.duration_since(*since) >= GRACE {
                    released += held.len();
                    *d = Domain::Theirs;
                }
            }
        }
        self.held = self.held.saturating_sub(released);
        self.creators.retain(|(_, t)| now.duration_since(*t) < Duration::from_secs(600));
        out
    }

    fn finish(&mut self, serial: u64) -> Vec<Denial> {
        let Some(event) = self.events.remove(&serial) else { return Vec::new() };
        let syscall = event.records.iter().find(|r| r.kind == AUDIT_SYSCALL).map(SyscallInfo::of);
        let mut out = Vec::new();
        // Accesses first (the kernel writes them before the domain's record), then domains.
        let mut now_explained = Vec::new();
        for r in event.records.iter().filter(|r| r.kind == AUDIT_LANDLOCK_ACCESS) {
            let Some(id) = r.get("domain").and_then(|d| u64::from_str_radix(d, 16).ok()) else { continue };
            let access = Access { record: r.clone(), syscall: syscall.clone() };
            match self.domains.entry(id).or_insert(Domain::Unknown {
                creator: None,
                since: event.since,
                held: Vec::new(),
            }) {
                Domain::Ours { announced } => {
                    let first = !*announced;
                    *announced = true;
                    now_explained.push((access, first));
                }
                Domain::Unknown { held, .. } => {
                    if self.held < HELD_MAX {
                        held.push(access);
                        self.held += 1;
                    }
                }
                Domain::Theirs => {}
            }
        }
        out.extend(now_explained.iter().filter_map(|(a, first)| self.explain(a, *first)));
        for r in event.records.iter().filter(|r| r.kind == AUDIT_LANDLOCK_DOMAIN) {
            let Some(id) = r.get("domain").and_then(|d| u64::from_str_radix(d, 16).ok()) else { continue };
            match r.get("status") {
                Some("allocated") => {
                    let pid = r.get("pid").and_then(|p| p.parse::<u32>().ok());
                    let announced = pid.is_some_and(|p| self.creators.iter().any(|(c, _)| *c == p));
                    if announced {
                        self.creators.retain(|(c, _)| Some(*c) != pid);
                        out.extend(self.adopt(id));
                    } else if let Some(Domain::Unknown { creator, .. }) = self.domains.get_mut(&id) {
                        *creator = pid;
                    } else {
                        self.domains.entry(id).or_insert(Domain::Unknown {
                            creator: pid,
                            since: event.since,
                            held: Vec::new(),
                        });
                    }
                }
                Some("deallocated") => {
                    if let Some(Domain::Unknown { held, .. }) = self.domains.remove(&id) {
                        self.held = self.held.saturating_sub(held.len());
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Domain `id` is this container's: explain what it held, leaving out the announcement.
    fn adopt(&mut self, id: u64) -> Vec<Denial> {
        let held = match self.domains.insert(id, Domain::Ours { announced: false }) {
            Some(Domain::Unknown { held, .. }) => held,
            _ => Vec::new(),
        };
        self.held = self.held.saturating_sub(held.len());
        let mut out = Vec::new();
        for (i, a) in held.iter().enumerate() {
            if let Some(d) = self.explain(a, i == 0) {
                out.push(d);
            }
        }
        if !held.is_empty() {
            self.domains.insert(id, Domain::Ours { announced: true });
        }
        out
    }

    /// The line for one refusal; `None` for the announcement (the domain's first refusal, a
    /// signal check made by semble-init itself).
    fn explain(&self, a: &Access, first: bool) -> Option<Denial> {
        let blockers = a.record.get("blockers").unwrap_or("");
        if first && blockers == "scope.signal" {
            return None;
        }
        let object = Object::of(&a.record);
        let v = attribute(&self.rules, self.net.as_ref(), &self.mode, blockers, &object);
        let rights: Vec<&str> = blockers.split(',').map(short).collect();
        let sys = a.syscall.clone().unwrap_or_default();
        let what = format!("{} `{}`", rights.join(","), object.describe());
        let call = if sys.syscall.is_empty() { what } else { format!("{}: {what}", sys.syscall) };
        Some(Denial {
            time: semble_supervisor::notify::now(),
            container: self.container.clone(),
            policy: self.policy.clone(),
            pid: sys.pid,
            comm: sys.comm,
            exe: sys.exe,
            syscall: sys.syscall,
            call,
            rule: v.rule,
            errno: sys.errno.unwrap_or_else(|| v.errno.to_string()),
            fix: v.fix,
            danger: None,
            suppressed: 0,
            kind: LANDLOCK.into(),
            path: object.describe(),
            access: printable(blockers),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rules() -> Vec<PathRule> {
        let p = |path: &str, access: &[FsAccess], reason: &str| PathRule {
            path: path.into(),
            access: access.to_vec(),
            reason: reason.into(),
        };
        vec![
            p("/etc", semble_policy::compile::landlock::READ, "filesystem.readOnly"),
            p("/tmp", semble_policy::compile::landlock::READ_WRITE, "filesystem.readWrite"),
            p("/usr/bin", semble_policy::compile::landlock::EXECUTE, "filesystem.execute"),
            p("/dev/null", semble_policy::compile::landlock::DEVICE, "implicit device"),
        ]
    }

    fn explainer() -> Explainer {
        let net = NetRules { bind_tcp: vec![11434], connect_tcp: vec![11434] };
        Explainer::new("c1", "workspace", "none", rules(), Some(net))
    }

    const ACCESS: &str =
        r#"audit(1729738800.268:30): domain=195ba459b blockers=fs.read_file path="/secret/file" dev="vda" ino=351"#;
    const DOMAIN: &str = r#"audit(1729738800.268:30): domain=195ba459b status=allocated mode=enforcing pid=300 uid=0 exe="/.semble/init" comm="init""#;
    const SYSCALL: &str = r#"audit(1729738800.268:30): arch=c000003e syscall=257 success=no exit=-13 a0=ffffff9c items=0 ppid=299 pid=301 auid=4294967295 uid=1000 comm="cat" exe="/bin/busybox" key=(null)"#;

    #[test]
    fn records_parse_quoted_hex_and_bare_values() {
        let r = parse(AUDIT_LANDLOCK_ACCESS, ACCESS).unwrap();
        assert_eq!(r.serial, 30);
        assert_eq!(r.get("domain"), Some("195ba459b"));
        assert_eq!(r.get("path"), Some("/secret/file"));
        assert_eq!(r.get("ino"), Some("351"));
        // A path with a space is written in hex.
        let r = parse(AUDIT_LANDLOCK_ACCESS, "audit(1.2:7): domain=1 blockers=fs.read_file path=2F612062 dev=\"vda\"")
            .unwrap();
        assert_eq!(r.get("path"), Some("/a b"));
        assert!(parse(AUDIT_LANDLOCK_ACCESS, "garbage").is_none());
    }

    #[test]
    fn each_refusal_names_the_rule_and_the_field_that_would_allow_it() {
        let r = rules();
        let v = attribute(&r, None, "none", "fs.read_file", &Object::Path("/secret/file".into()));
        assert!(v.rule.contains("no Landlock rule covers `/secret/file`"), "{v:?}");
        assert_eq!(v.fix, "add `/secret/file` to spec.filesystem.readOnly");
        let v = attribute(&r, None, "none", "fs.write_file", &Object::Path("/etc/passwd".into()));
        assert!(v.rule.starts_with("filesystem.readOnly `/etc` grants read_file, read_dir only"), "{v:?}");
        assert_eq!(v.fix, "add `/etc/passwd` to spec.filesystem.readWrite");
        let v = attribute(&r, None, "none", "fs.execute", &Object::Path("/tmp/x".into()));
        assert!(v.fix.contains("spec.filesystem.execute"), "{v:?}");
        let v = attribute(&r, None, "none", "fs.make_reg", &Object::Path("/etc".into()));
        assert!(v.fix.ends_with("spec.filesystem.readWrite"), "{v:?}");
        let v = attribute(&r, None, "none", "fs.ioctl_dev", &Object::Path("/dev/nvidia-modeset".into()));
        assert!(v.fix.contains("devices.allow"), "{v:?}");
        let v = attribute(&r, None, "none", "fs.make_char", &Object::Path("/tmp".into()));
        assert!(v.fix.starts_with("none"), "{v:?}");
        let v = attribute(&r, None, "none", "scope.signal", &Object::Task { pid: 1, comm: "init".into() });
        assert_eq!(v.errno, "EPERM");
        let net = NetRules { bind_tcp: vec![11434], connect_tcp: vec![11434] };
        let v = attribute(&r, Some(&net), "none", "net.connect_tcp", &Object::Port { bind: false, port: 443 });
        assert!(v.rule.contains("connect to TCP ports 11434 only"), "{v:?}");
        let v = attribute(&r, Some(&net), "none", "net.bind_tcp", &Object::Port { bind: true, port: 8080 });
        assert_eq!(v.fix, "add TCP port 8080 to a spec.network.ingress rule");
    }

    #[test]
    fn an_announced_domain_is_explained_and_its_announcement_left_out() {
        let t0 = Instant::now();
        let mut e = explainer();
        // The creator announces itself, then its first refusal (the signal check) arrives with
        // the domain's record, then a real refusal with its syscall record.
        assert!(e.creator(300, t0).is_empty());
        let sig = r#"audit(1.0:29): domain=195ba459b blockers=scope.signal opid=250 ocomm="init""#;
        let dom = DOMAIN.replace(":30)", ":29)");
        assert!(e.record(AUDIT_LANDLOCK_ACCESS, sig, t0).is_empty());
        assert!(e.record(AUDIT_LANDLOCK_DOMAIN, &dom, t0).is_empty());
        assert!(e.record(AUDIT_EOE, "audit(1.0:29): ", t0).is_empty(), "the announcement is not a denial");
        assert_eq!(e.ours(), 1);
        assert!(e.record(AUDIT_LANDLOCK_ACCESS, ACCESS, t0).is_empty());
        assert!(e.record(AUDIT_SYSCALL, SYSCALL, t0).is_empty());
        let out = e.record(AUDIT_EOE, "audit(1729738800.268:30): ", t0);
        assert_eq!(out.len(), 1, "{out:?}");
        let d = &out[0];
        assert_eq!((d.kind.as_str(), d.path.as_str(), d.access.as_str()), ("landlock", "/secret/file", "fs.read_file"));
        assert_eq!((d.pid, d.comm.as_str(), d.syscall.as_str(), d.errno.as_str()), (301, "cat", "openat", "EACCES"));
        assert_eq!(d.fix, "add `/secret/file` to spec.filesystem.readOnly");
        assert!(
            d.text().starts_with("semble: landlock denied openat: read_file `/secret/file` (EACCES) to pid 301 `cat`"),
            "{}",
            d.text()
        );
    }

    #[test]
    fn another_containers_domain_is_never_taken_even_when_it_comes_first() {
        let t0 = Instant::now();
        let mut e = explainer();
        // A domain whose creator nobody announced here: held, then dropped after the grace.
        let other = ACCESS.replace("195ba459b", "aa");
        let other_dom = DOMAIN.replace("195ba459b", "aa").replace("pid=300", "pid=999");
        e.record(AUDIT_LANDLOCK_ACCESS, &other, t0);
        e.record(AUDIT_LANDLOCK_DOMAIN, &other_dom, t0);
        assert!(e.tick(t0 + Duration::from_millis(200)).is_empty());
        assert!(e.tick(t0 + GRACE + Duration::from_secs(1)).is_empty());
        assert_eq!(e.ours(), 0);
        // Records without audit context (no SYSCALL, no EOE): the domain's record comes under
        // a serial of its own, and the announcement after it; still explained, announcement out.
        let mut e = explainer();
        let sig = r#"audit(1.0:40): domain=beef blockers=scope.signal opid=250 ocomm="init""#;
        let dom = r#"audit(1.0:41): domain=beef status=allocated mode=enforcing pid=300 uid=0 exe="/.semble/init" comm="init""#;
        let acc = r#"audit(1.0:42): domain=beef blockers=fs.write_file path="/etc/x" dev="vda" ino=2"#;
        e.record(AUDIT_LANDLOCK_ACCESS, sig, t0);
        e.record(AUDIT_LANDLOCK_DOMAIN, dom, t0);
        e.record(AUDIT_LANDLOCK_ACCESS, acc, t0);
        assert!(e.tick(t0 + Duration::from_millis(200)).is_empty(), "nobody announced pid 300 yet");
        let out = e.creator(300, t0 + Duration::from_millis(300));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].path, "/etc/x");
        assert_eq!(out[0].pid, 0, "no audit context: no pid to name");
        assert!(
            out[0].text().starts_with("semble: landlock denied write_file `/etc/x` (EACCES) in container c1"),
            "{}",
            out[0].text()
        );
    }

    #[test]
    fn workload_strings_cannot_forge_lines() {
        let t0 = Instant::now();
        let mut e = explainer();
        e.creator(300, t0);
        e.record(AUDIT_LANDLOCK_ACCESS, r#"audit(1.0:1): domain=1 blockers=scope.signal opid=2 ocomm="x""#, t0);
        e.record(AUDIT_LANDLOCK_DOMAIN, r#"audit(1.0:1): domain=1 status=allocated pid=300"#, t0);
        e.record(AUDIT_EOE, "audit(1.0:1): ", t0);
        // "/x\n      - bpf" in hex, as the kernel writes a path with a control character.
        let hex: String = "/x\n      - bpf".bytes().map(|b| format!("{b:02X}")).collect();
        let rec = format!("audit(1.0:2): domain=1 blockers=fs.read_file path={hex} dev=\"vda\" ino=3");
        e.record(AUDIT_LANDLOCK_ACCESS, &rec, t0);
        let out = e.record(AUDIT_EOE, "audit(1.0:2): ", t0);
        assert_eq!(out.len(), 1);
        assert!(!out[0].text().contains('\n') && !out[0].path.contains('\n'), "{:?}", out[0]);
    }
}
