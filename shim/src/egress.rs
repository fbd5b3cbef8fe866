//! The egress guard: what a `none`/`proxy` workload may reach when it keeps a network namespace
//! with interfaces (a Kubernetes pod's, or one kept for ingress).
//!
//! A private network namespace needs no guard: it holds only loopback. A kept one holds the
//! engine's interfaces and routes, and the workload shares it with whatever else the engine put
//! there (a pod's sidecars). Landlock's network rules match ports only (the proxy's port would be
//! open on every address) and do not cover UDP; NetworkPolicies act at the cluster level, may not
//! be enforced by the CNI, and apply to the whole pod, sidecar included. So the guard works on
//! the container itself: four `cgroup/sock_addr` BPF programs (IPv4 and IPv6 `connect`, UDP
//! `sendmsg`) attached to the container's own cgroup (v2), which every socket its processes
//! create is charged to — whatever its uid, whatever namespace the engine handed over, and not
//! the pod's other containers. A refused `connect` or `sendto` fails with `EPERM` before any
//! packet exists.
//!
//! The programs allow:
//! * loopback (`127.0.0.0/8`, `::1`, and the unspecified address, which means this host), in
//!   either family, IPv4-mapped included;
//! * with `network.dns: true`, the container's resolvers (its `resolv.conf`) on port 53;
//! * the proxy's address and port when the proxy is not on loopback (`network.proxy.address`,
//!   the gateway Service's ClusterIP in a pod).
//!
//! Everything else (other hosts, other ports, broadcast, multicast) is refused. Sockets other
//! than TCP and UDP cannot be created under `none`/`proxy` (seccomp), so nothing escapes the two
//! hooks. `semble-init` checks from inside that the guard is in force before the workload runs.
//!
//! This module builds the programs (pure, tested without privileges); `crate::sys::bpf` loads
//! and attaches them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the guard lets through besides loopback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    /// Addresses and ports the workload may connect or send to.
    pub allow: Vec<SocketAddr>,
}

impl Guard {
    /// The guard for a policy: its resolvers on port 53 (only with `dns: true`) and its proxy
    /// when that is not on loopback.
    pub fn new(dns: bool, resolvers: &[IpAddr], proxy: Option<SocketAddr>) -> Guard {
        let mut allow: Vec<SocketAddr> = Vec::new();
        if dns {
            allow.extend(resolvers.iter().map(|ip| SocketAddr::new(*ip, 53)));
        }
        allow.extend(proxy.filter(|p| !is_local(p.ip())));
        allow.retain(|a| !is_local(a.ip()));
        allow.sort();
        allow.dedup();
        Guard { allow }
    }

    /// One line for logs and `explain-bundle`.
    pub fn describe(&self) -> String {
        let mut s = "loopback only".to_string();
        if !self.allow.is_empty() {
            let list: Vec<String> = self.allow.iter().map(ToString::to_string).collect();
            s = format!("loopback and {}", list.join(", "));
        }
        format!("{s} (cgroup BPF on connect and UDP sendmsg; everything else EPERM)")
    }
}

/// Loopback or the unspecified address: traffic that never leaves the network namespace.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || v6.to_ipv4_mapped().is_some_and(|v4| is_local(IpAddr::V4(v4)))
        }
    }
}

/// The nameservers of a `resolv.conf`.
pub fn resolvers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        // `fe80::1%eth0`: the zone does not matter to the address the guard compares.
        .filter_map(|a| a.split('%').next().and_then(|a| a.parse().ok()))
        .collect()
}

/// The four programs, by the hook each is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `connect` on an IPv4 socket (TCP, and UDP's connect).
    Connect4,
    /// `connect` on an IPv6 socket (IPv4-mapped addresses included).
    Connect6,
    /// `sendto`/`sendmsg` with an address on an IPv4 UDP socket.
    Sendmsg4,
    /// The same on an IPv6 UDP socket.
    Sendmsg6,
}

impl Hook {
    /// All of them.
    pub const ALL: [Hook; 4] = [Hook::Connect4, Hook::Connect6, Hook::Sendmsg4, Hook::Sendmsg6];

    /// The kernel's `enum bpf_attach_type` value.
    pub fn attach_type(self) -> u32 {
        match self {
            Hook::Connect4 => 10, // BPF_CGROUP_INET4_CONNECT
            Hook::Connect6 => 11, // BPF_CGROUP_INET6_CONNECT
            Hook::Sendmsg4 => 14, // BPF_CGROUP_UDP4_SENDMSG
            Hook::Sendmsg6 => 15, // BPF_CGROUP_UDP6_SENDMSG
        }
    }

    /// The program's name (as `bpftool prog` shows it; at most 15 bytes).
    pub fn name(self) -> &'static str {
        match self {
            Hook::Connect4 => "semble_conn4",
            Hook::Connect6 => "semble_conn6",
            Hook::Sendmsg4 => "semble_send4",
            Hook::Sendmsg6 => "semble_send6",
        }
    }

    fn v6(self) -> bool {
        matches!(self, Hook::Connect6 | Hook::Sendmsg6)
    }
}

// --- a small assembler for the few eBPF instructions the programs use ------------------------

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    /// The 8 bytes the kernel reads.
    pub fn bytes(&self) -> [u8; 8] {
        let o = self.off.to_le_bytes();
        let i = self.imm.to_le_bytes();
        [self.code, (self.dst & 0x0f) | (self.src << 4), o[0], o[1], i[0], i[1], i[2], i[3]]
    }
}

const BPF_LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const BPF_MOV64_REG: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const BPF_MOV64_IMM: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const BPF_AND64_IMM: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const BPF_JMP32_JEQ_IMM: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
const BPF_JMP32_JNE_IMM: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
const BPF_JA: u8 = 0x05; // BPF_JMP | BPF_JA
const BPF_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// Offsets in `struct bpf_sock_addr`.
const USER_IP4: i16 = 4;
const USER_IP6: i16 = 8;
const USER_PORT: i16 = 24;

/// Registers.
const R0: u8 = 0;
const R1: u8 = 1;
const R6: u8 = 6;
const IP: u8 = 2; // IPv4 address, or the last word of an IPv6 one
const PORT: u8 = 3;
const W0: u8 = 4;
const W1: u8 = 5;
const W2: u8 = 7;
const TMP: u8 = 8;

/// A jump target, resolved when the program is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Allow,
    Deny,
    Here(usize),
}

#[derive(Debug, Default)]
struct Asm {
    insns: Vec<Insn>,
    jumps: Vec<(usize, Label)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn { code, dst, src, off, imm });
    }
    fn load(&mut self, dst: u8, off: i16) {
        self.op(BPF_LDX_MEM_W, dst, R6, off, 0);
    }
    /// A 32-bit comparison with an immediate (JMP32: no sign extension of the immediate).
    fn jump(&mut self, code: u8, reg: u8, value: u32, to: Label) {
        self.jumps.push((self.insns.len(), to));
        self.op(code, reg, 0, 0, i32::from_ne_bytes(value.to_ne_bytes()));
    }
    fn goto(&mut self, to: Label) {
        self.jumps.push((self.insns.len(), to));
        self.op(BPF_JA, 0, 0, 0, 0);
    }
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label::Here(self.labels.len() - 1)
    }
    fn place(&mut self, l: Label) {
        if let Label::Here(i) = l {
            if let Some(slot) = self.labels.get_mut(i) {
                *slot = Some(self.insns.len());
            }
        }
    }
    fn finish(mut self) -> Vec<Insn> {
        let deny = self.insns.len();
        self.op(BPF_MOV64_IMM, R0, 0, 0, 0);
        self.op(BPF_EXIT, 0, 0, 0, 0);
        let allow = self.insns.len();
        self.op(BPF_MOV64_IMM, R0, 0, 0, 1);
        self.op(BPF_EXIT, 0, 0, 0, 0);
        for (at, to) in std::mem::take(&mut self.jumps) {
            let target = match to {
                Label::Allow => allow,
                Label::Deny => deny,
                Label::Here(i) => self.labels.get(i).copied().flatten().unwrap_or(deny),
            };
            let rel = i64::try_from(target).unwrap_or(0) - i64::try_from(at).unwrap_or(0) - 1;
            if let Some(insn) = self.insns.get_mut(at) {
                insn.off = i16::try_from(rel).unwrap_or(0);
            }
        }
        self.insns
    }
}

/// A 32-bit word of an address as `bpf_sock_addr` holds it (network byte order in memory),
/// read by a little- or big-endian load: what the program compares with.
fn word(bytes: [u8; 4]) -> u32 {
    u32::from_ne_bytes(bytes)
}

/// The port as `user_port` holds it (network byte order in the low 16 bits).
fn port_word(port: u16) -> u32 {
    let b = port.to_be_bytes();
    word([b[0], b[1], 0, 0])
}

/// IPv4 checks on the address in `IP` and the port in `PORT`: loopback, `0.0.0.0`, then the
/// allowed IPv4 destinations. Falls through (to deny) when none matches.
fn v4_checks(a: &mut Asm, allow: &[(Ipv4Addr, u16)]) {
    a.op(BPF_MOV64_REG, TMP, IP, 0, 0);
    a.op(BPF_AND64_IMM, TMP, 0, 0, i32::from_ne_bytes(word([0xff, 0, 0, 0]).to_ne_bytes()));
    a.jump(BPF_JMP32_JEQ_IMM, TMP, word([127, 0, 0, 0]), Label::Allow);
    a.jump(BPF_JMP32_JEQ_IMM, IP, 0, Label::Allow);
    for (ip, port) in allow {
        let next = a.label();
        a.jump(BPF_JMP32_JNE_IMM, IP, word(ip.octets()), next);
        a.jump(BPF_JMP32_JEQ_IMM, PORT, port_word(*port), Label::Allow);
        a.place(next);
    }
}

/// The program for `hook`.
pub fn program(guard: &Guard, hook: Hook) -> Vec<Insn> {
    let v4: Vec<(Ipv4Addr, u16)> = guard
        .allow
        .iter()
        .filter_map(|s| match s.ip() {
            IpAddr::V4(ip) => Some((ip, s.port())),
            IpAddr::V6(ip) => ip.to_ipv4_mapped().map(|m| (m, s.port())),
        })
        .collect();
    let v6: Vec<(Ipv6Addr, u16)> = guard
        .allow
        .iter()
        .filter_map(|s| match s.ip() {
            IpAddr::V6(ip) if ip.to_ipv4_mapped().is_none() => Some((ip, s.port())),
            _ => None,
        })
        .collect();
    let mut a = Asm::default();
    a.op(BPF_MOV64_REG, R6, R1, 0, 0);
    a.load(PORT, USER_PORT);
    if !hook.v6() {
        a.load(IP, USER_IP4);
        v4_checks(&mut a, &v4);
        a.goto(Label::Deny);
        return a.finish();
    }
    a.load(W0, USER_IP6);
    a.load(W1, USER_IP6 + 4);
    a.load(W2, USER_IP6 + 8);
    a.load(IP, USER_IP6 + 12);
    // ::ffff:a.b.c.d — an IPv4 destination through an IPv6 socket: the IPv4 checks.
    let native = a.label();
    a.jump(BPF_JMP32_JNE_IMM, W0, 0, native);
    a.jump(BPF_JMP32_JNE_IMM, W1, 0, native);
    let not_mapped = a.label();
    a.jump(BPF_JMP32_JNE_IMM, W2, word([0, 0, 0xff, 0xff]), not_mapped);
    v4_checks(&mut a, &v4);
    a.goto(Label::Deny);
    // ::1 and :: (W0 and W1 are zero here).
    a.place(not_mapped);
    a.jump(BPF_JMP32_JNE_IMM, W2, 0, native);
    a.jump(BPF_JMP32_JEQ_IMM, IP, word([0, 0, 0, 1]), Label::Allow);
    a.jump(BPF_JMP32_JEQ_IMM, IP, 0, Label::Allow);
    a.place(native);
    for (ip, port) in &v6 {
        let o = ip.octets();
        let next = a.label();
        for (reg, i) in [(W0, 0), (W1, 4), (W2, 8), (IP, 12)] {
            a.jump(BPF_JMP32_JNE_IMM, reg, word([o[i], o[i + 1], o[i + 2], o[i + 3]]), next);
        }
        a.jump(BPF_JMP32_JEQ_IMM, PORT, port_word(*port), Label::Allow);
        a.place(next);
    }
    a.goto(Label::Deny);
    a.finish()
}

/// The program as the bytes `BPF_PROG_LOAD` takes.
pub fn bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(Insn::bytes).collect()
}

/// Load the four programs and attach them to `cgroup` (a directory of the unified hierarchy).
pub fn install(guard: &Guard, cgroup: &Path) -> Result<(), String> {
    let dir = std::fs::File::open(cgroup).map_err(|e| format!("cannot open cgroup `{}`: {e}", cgroup.display()))?;
    for hook in Hook::ALL {
        let prog = crate::sys::bpf_load_sock_addr(&bytes(&program(guard, hook)), hook.attach_type(), hook.name())
            .map_err(|e| format!("cannot load the egress guard's {} program: {e}", hook.name()))?;
        crate::sys::bpf_attach(&dir, &prog, hook.attach_type())
            .map_err(|e| format!("cannot attach the egress guard to cgroup `{}`: {e}", cgroup.display()))?;
    }
    Ok(())
}

/// The cgroup (v2) a process belongs to: the directory under the unified hierarchy's mount.
pub fn cgroup_of(pid: u32) -> std::io::Result<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::")).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("process {pid} is in no cgroup v2 (unified) hierarchy"),
        )
    })?;
    let mount = unified_mount()?;
    Ok(mount.join(rel.trim_start_matches('/')))
}

/// Where the cgroup v2 (unified) hierarchy is mounted: `/sys/fs/cgroup` on v2 hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones.
pub fn unified_mount() -> std::io::Result<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next() == Some("cgroup2")).then(|| left.split_whitespace().nth(4))?
        })
        .map(PathBuf::from)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no cgroup v2 (unified) hierarchy is mounted"))
}

/// The processes in a cgroup directory.
pub fn procs(cgroup: &Path) -> std::io::Result<Vec<u32>> {
    Ok(std::fs::read_to_string(cgroup.join("cgroup.procs"))?.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn resolvers_come_from_nameserver_lines() {
        let conf = "# generated\nsearch svc.cluster.local\nnameserver 10.96.0.10\nnameserver fe80::1%eth0\nnameserver bad\noptions ndots:5\n";
        assert_eq!(resolvers(conf), vec!["10.96.0.10".parse::<IpAddr>().unwrap(), "fe80::1".parse().unwrap()]);
    }

    #[test]
    fn the_guard_keeps_what_leaves_the_namespace() {
        let g = Guard::new(
            true,
            &["10.96.0.10".parse().unwrap(), "127.0.0.53".parse().unwrap()],
            Some("127.0.0.1:8080".parse().unwrap()),
        );
        assert_eq!(g.allow, vec!["10.96.0.10:53".parse::<SocketAddr>().unwrap()]);
        assert!(Guard::new(false, &["10.96.0.10".parse().unwrap()], None).allow.is_empty());
        let gw = Guard::new(false, &[], Some("10.96.0.80:8080".parse().unwrap()));
        assert_eq!(gw.allow, vec!["10.96.0.80:8080".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn the_kernel_verifier_accepts_every_program() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: loading BPF programs needs root (the end-to-end tests run as root)");
            return;
        }
        let guards = [
            Guard::default(),
            Guard::new(true, &["10.96.0.10".parse().unwrap(), "fd00::53".parse().unwrap()], None),
            Guard::new(true, &["192.168.200.201".parse().unwrap()], Some("[fd00::80]:3128".parse().unwrap())),
        ];
        for g in &guards {
            for hook in Hook::ALL {
                crate::sys::bpf_load_sock_addr(&bytes(&program(g, hook)), hook.attach_type(), hook.name())
                    .unwrap_or_else(|e| panic!("{hook:?} {g:?}: {e}"));
            }
        }
    }

    #[test]
    fn programs_end_in_allow_and_deny_and_every_jump_lands_inside() {
        let g = Guard::new(true, &["10.96.0.10".parse().unwrap(), "fd00::53".parse().unwrap()], None);
        for hook in Hook::ALL {
            let p = program(&g, hook);
            let n = p.len();
            assert_eq!(p[n - 1].code, BPF_EXIT);
            assert_eq!((p[n - 2].code, p[n - 2].imm), (BPF_MOV64_IMM, 1));
            assert_eq!((p[n - 4].code, p[n - 4].imm), (BPF_MOV64_IMM, 0));
            for (i, insn) in p.iter().enumerate() {
                if matches!(insn.code, BPF_JMP32_JEQ_IMM | BPF_JMP32_JNE_IMM | BPF_JA) {
                    let to = i as i64 + 1 + i64::from(insn.off);
                    assert!(to > i as i64 && to < n as i64, "{hook:?}: jump at {i} to {to} of {n}");
                }
            }
        }
    }
}
