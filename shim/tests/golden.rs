//! Golden files: the rewritten `config.json` and the backend's global flags for each example
//! policy under each backend, from a fixed engine configuration and fixed host facts.
//! `SEMBLE_UPDATE_GOLDEN=1 cargo test -p semble-shim --test golden` rewrites them (review the diff).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use semble_shim::bundle::{apply, BackendKind, Inputs, Mounts, RunscInputs};
use semble_shim::host::HostFacts;

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    semble_files::golden::check(&path, actual.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
}

/// What Podman writes for `podman run --network none IMAGE sh -c 'echo hi'`, trimmed.
const ENGINE_CONFIG: &str = r#"{
  "ociVersion": "1.0.2-dev",
  "process": {
    "user": {"uid": 0, "gid": 0},
    "args": ["sh", "-c", "echo hi"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"],
      "effective": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"],
      "permitted": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}],
    "oomScoreAdj": 0
  },
  "root": {"path": "/var/lib/containers/storage/overlay/abc/merged"},
  "hostname": "c1",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/etc/hosts", "type": "bind", "source": "/run/containers/storage/overlay-containers/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08/userdata/hosts", "options": ["bind", "rprivate"]}
  ],
  "annotations": {"io.container.manager": "libpod", "semble.dev/policy": "POLICY"},
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 2048}},
    "cgroupsPath": "machine.slice:libpod:c1",
    "sysctl": {"net.ipv4.ping_group_range": "0 0"},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [{"names": ["read", "write", "execve"], "action": "SCMP_ACT_ALLOW"}]},
    "maskedPaths": ["/proc/acpi", "/proc/kcore"],
    "readonlyPaths": ["/proc/bus", "/proc/sys"]
  }
}"#;

#[test]
fn rewritten_configs_and_backend_flags_match_their_golden_files() {
    let facts = HostFacts {
        landlock_abi: Some(7),
        selinux_enabled: false,
        host_namespaces: BTreeMap::new(),
        hard_limits: [(semble_policy::model::Rlimit::Nofile, 1_048_576u64)].into_iter().collect(),
        no_egress_guard: None,
        undelegated_cgroups: None,
        missing_kernel_paths: Default::default(),
        nvidia_majors: [195].into_iter().collect(),
    };
    let mounts = Mounts {
        box_dir: "/run/semble-shim/semble/c1/box".into(),
        init_binary: "/usr/local/bin/semble-init".into(),
        proxy_dir: "/run/semble/proxy/POLICY".into(),
    };
    let runsc = RunscInputs {
        host: semble_gvisor::Runsc {
            flags: ["oci-seccomp", "overlay2", "host-uds", "platform", "network"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            platforms: ["ptrace", "kvm"].iter().map(|s| s.to_string()).collect(),
            kvm_usable: false,
        },
        platform: Some("ptrace".into()),
        rootfs: "/var/lib/containers/storage/overlay/abc/merged".into(),
        root_entries: [
            "bin",
            "etc",
            "home",
            "lib",
            "models",
            "opt",
            "proc",
            "root",
            "sys",
            "tmp",
            "usr",
            "var",
            "workspace",
            "data",
        ]
        .iter()
        .map(|n| semble_gvisor::RootEntry { name: n.to_string(), dir: true })
        .collect(),
        present: [
            "/etc",
            "/usr",
            "/bin",
            "/usr/bin",
            "/usr/lib",
            "/lib",
            "/models",
            "/data/in",
            "/data/out",
            "/tmp",
            "/workspace",
            "/proc",
            "/sys",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<BTreeSet<String>>(),
    };
    for name in ["workspace", "llm-server", "data-processor"] {
        let src = std::fs::read_to_string(format!("{}/../examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let policy = semble_policy::parse(&src).unwrap().policy;
        let config: serde_json::Value = serde_json::from_str(&ENGINE_CONFIG.replace("POLICY", name)).unwrap();
        let m =
            Mounts { proxy_dir: mounts.proxy_dir.to_string_lossy().replace("POLICY", name).into(), ..mounts.clone() };
        for backend in [BackendKind::Runc, BackendKind::Runsc, BackendKind::Embedded] {
            let sources = semble_shim::mounts::sources_as_written(&config);
            let inputs = Inputs {
                id: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                policy: &policy,
                facts: &facts,
                backend,
                mounts: &m,
                runsc: (backend == BackendKind::Runsc).then_some(&runsc),
                record: false,
                resolvers: &[],
                sources: &sources,
                devices: &semble_shim::bundle::HostDevices::new(),
                allowed_hooks: &[],
                engine_roots: &[],
                private_dirs: &Default::default(),
                pod_sandbox_known: false,
            };
            let out = match apply(&config, &inputs) {
                Ok(a) => {
                    let init = a.init.as_ref().map(|i| serde_json::to_value(i).unwrap());
                    let doc = serde_json::json!({"backendFlags": a.backend_flags, "config": a.config, "init": init, "controls": a.controls, "notes": a.notes});
                    serde_json::to_string_pretty(&doc).unwrap() + "\n"
                }
                Err(e) => format!("refused: {e}\n"),
            };
            check(&format!("{name}.{}.json", backend.as_str()), &out);
        }
    }
}
