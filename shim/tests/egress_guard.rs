//! The egress guard's programs in a real kernel: attached to a cgroup of the test's own, with a
//! child in that cgroup and in a network namespace of its own (loopback only, the "other hosts"
//! as addresses on its loopback), so that nothing could leave the machine even if the guard let
//! it through. The child reports each attempt; the parent checks them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use semble_shim::egress::{self, Guard};

const CHILD_ENV: &str = "SEMBLE_EGRESS_CHILD";

fn errno(r: std::io::Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => match e.raw_os_error() {
            Some(n) => format!("{:?}", nix::errno::Errno::from_raw(n)),
            None => e.to_string(),
        },
    }
}

fn any(v6: bool) -> SocketAddr {
    if v6 {
        "[::]:0".parse().unwrap()
    } else {
        "0.0.0.0:0".parse().unwrap()
    }
}

/// The child: already in the guarded cgroup and its own network namespace.
fn child() {
    // Listeners standing in for the other hosts and the resolver (all on loopback here).
    let _tcp: Vec<TcpListener> = ["10.77.0.2:8080", "[fd00:77::2]:8080", "127.0.0.1:8081"]
        .iter()
        .map(|a| TcpListener::bind(a).unwrap())
        .collect();
    let _udp: Vec<UdpSocket> =
        ["10.77.0.2:53", "10.77.0.3:53", "[fd00:77::3]:53"].iter().map(|a| UdpSocket::bind(a).unwrap()).collect();
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let tcp = |a: &str| {
        let sa: SocketAddr = a.parse().unwrap();
        errno(TcpStream::connect_timeout(&sa, Duration::from_secs(1)).map(drop))
    };
    let udp_to = |a: &str| {
        let sa: SocketAddr = a.parse().unwrap();
        errno(UdpSocket::bind(any(sa.is_ipv6())).and_then(|u| u.send_to(b"x", sa)).map(drop))
    };
    let udp_connect = |a: &str| {
        let sa: SocketAddr = a.parse().unwrap();
        errno(UdpSocket::bind(any(sa.is_ipv6())).and_then(|u| u.connect(sa)))
    };
    for a in ["10.77.0.2:8080", "[fd00:77::2]:8080", "[::ffff:10.77.0.2]:8080", "127.0.0.1:8081", "[::1]:9"] {
        out.insert(format!("tcp {a}"), tcp(a));
    }
    for a in ["10.77.0.2:53", "10.77.0.3:53", "[fd00:77::3]:53", "[::ffff:10.77.0.3]:53", "10.77.0.3:54"] {
        out.insert(format!("udp {a}"), udp_to(a));
        out.insert(format!("udpc {a}"), udp_connect(a));
    }
    let mut stdout = std::io::stdout();
    for (k, v) in out {
        writeln!(stdout, "RESULT {k}={v}").unwrap();
    }
}

/// Re-executed by itself (`--exact`, with `SEMBLE_EGRESS_CHILD` set) it is the child in the
/// guarded cgroup and namespace; otherwise the parent that sets them up and checks the results.
#[test]
fn the_guard_refuses_every_destination_but_loopback_the_resolver_and_the_proxy() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    assert!(nix::unistd::geteuid().is_root(), "needs root: cgroups, BPF and network namespaces");
    let cgroup = egress::unified_mount().unwrap().join(format!("semble-guard-test-{}", std::process::id()));
    std::fs::create_dir_all(&cgroup).unwrap();
    let guard = Guard::new(
        true,
        &["10.77.0.3".parse().unwrap(), "fd00:77::3".parse().unwrap()],
        Some("127.0.0.1:8080".parse().unwrap()),
    );
    egress::install(&guard, &cgroup).unwrap();
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "echo $$ > {procs} && ip link set lo up && ip addr add 10.77.0.2/32 dev lo && ip addr add 10.77.0.3/32 dev lo \
         && ip addr add fd00:77::2/128 dev lo nodad && ip addr add fd00:77::3/128 dev lo nodad \
         && exec {exe} --exact the_guard_refuses_every_destination_but_loopback_the_resolver_and_the_proxy --nocapture --test-threads=1",
        procs = cgroup.join("cgroup.procs").display(),
        exe = exe.display()
    );
    let out = Command::new("unshare").args(["--net", "sh", "-c", &script]).env(CHILD_ENV, "1").output().unwrap();
    let _ = std::fs::remove_dir(&cgroup);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let r: BTreeMap<&str, &str> = stdout
        .lines()
        .filter_map(|l| l.find("RESULT ").map(|i| &l[i + 7..]))
        .filter_map(|l| l.split_once('='))
        .collect();
    let expect = [
        // Another host, the proxy's port: refused in both families and through a mapped address.
        ("tcp 10.77.0.2:8080", "EPERM"),
        ("tcp [fd00:77::2]:8080", "EPERM"),
        ("tcp [::ffff:10.77.0.2]:8080", "EPERM"),
        // Loopback stays open (the bridge, the workload's own servers).
        ("tcp 127.0.0.1:8081", "ok"),
        ("tcp [::1]:9", "ECONNREFUSED"),
        // UDP 53 to a host that is not a resolver: refused, sent or connected.
        ("udp 10.77.0.2:53", "EPERM"),
        ("udpc 10.77.0.2:53", "EPERM"),
        // The resolvers, on 53 only.
        ("udp 10.77.0.3:53", "ok"),
        ("udpc 10.77.0.3:53", "ok"),
        ("udp [fd00:77::3]:53", "ok"),
        ("udp [::ffff:10.77.0.3]:53", "ok"),
        ("udp 10.77.0.3:54", "EPERM"),
        ("udpc 10.77.0.3:54", "EPERM"),
    ];
    for (k, v) in expect {
        assert_eq!(r.get(k).copied(), Some(v), "{k}: {r:?}");
    }
}
