use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;

const DOCKER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A configuration like the ones Podman and containerd write.
fn config() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", "echo hi"],
            "env": ["PATH=/usr/bin:/bin"],
            "cwd": "/",
            "capabilities": {"bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}],
            "noNewPrivileges": false
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "x",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "resources": {"memory": {"limit": 8589934592_i64}, "devices": [{"allow": false, "access": "rwm"}]},
            "maskedPaths": ["/proc/kcore"]
        }
    })
}

/// Set `value` at a JSON pointer, making the objects on the way.
fn set(c: &mut Value, pointer: &str, value: Value) {
    let mut cur = c;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur[*p] = value;
            return;
        }
        if cur.get(*p).is_none() {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
}

fn policy(spec: &str) -> SandboxPolicy {
    let src = format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: p}}\nspec:\n{spec}");
    semble_policy::parse(&src).unwrap_or_else(|e| panic!("{e}")).policy
}

fn workspace() -> SandboxPolicy {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/workspace.yaml")).unwrap();
    semble_policy::parse(&src).unwrap().policy
}

fn facts() -> HostFacts {
    HostFacts {
        landlock_abi: Some(7),
        selinux_enabled: false,
        host_namespaces: BTreeMap::new(),
        hard_limits: BTreeMap::new(),
        no_egress_guard: None,
        undelegated_cgroups: None,
        missing_kernel_paths: Default::default(),
        nvidia_majors: [195, 237].into_iter().collect(),
    }
}

/// The host has exactly the devices the request names (a test host has none of them).
fn devices_as_requested(cfg: &Value) -> HostDevices {
    cfg.pointer("/linux/devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d.get("path")?.as_str()?.to_string(),
                Some((d.get("type")?.as_str()?.to_string(), d.get("major")?.as_i64()?, d.get("minor")?.as_i64()?)),
            ))
        })
        .collect()
}

fn mounts() -> Mounts {
    Mounts {
        box_dir: PathBuf::from("/run/s/semble/c1/box"),
        init_binary: PathBuf::from("/usr/local/lib/semble/semble-init"),
        proxy_dir: PathBuf::from("/run/semble/proxy/p"),
    }
}

fn run(cfg: &Value, p: &SandboxPolicy, f: &HostFacts) -> Result<Applied, Refusal> {
    run_known(cfg, p, f, false)
}

/// [`run`], with the pod sandbox the annotations name known to semble (or not).
fn run_known(cfg: &Value, p: &SandboxPolicy, f: &HostFacts, pod_sandbox_known: bool) -> Result<Applied, Refusal> {
    let sources = crate::mounts::sources_as_written(cfg);
    apply(
        cfg,
        &Inputs {
            id: "c1",
            policy: p,
            facts: f,
            backend: BackendKind::Runc,
            mounts: &mounts(),
            runsc: None,
            record: false,
            resolvers: &[],
            sources: &sources,
            devices: &devices_as_requested(cfg),
            allowed_hooks: &[],
            engine_roots: &[],
            private_dirs: &Default::default(),
            pod_sandbox_known,
        },
    )
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

#[test]
fn capabilities_are_the_intersection_in_every_set() {
    let a = run(&config(), &workspace(), &facts()).unwrap();
    let caps = &a.config["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
        assert_eq!(strs(&caps[set]), ["CAP_CHOWN", "CAP_DAC_OVERRIDE"], "{set}");
    }
    let init = a.init.unwrap();
    assert_eq!(init.expect.capabilities, ["CAP_CHOWN", "CAP_DAC_OVERRIDE"]);
    assert_eq!(init.expect.uid, Some(1000));
}

#[test]
fn a_request_with_fewer_capabilities_keeps_fewer() {
    let mut c = config();
    c["process"]["capabilities"] = json!({"bounding": ["CAP_CHOWN", "CAP_KILL"]});
    let a = run(&c, &workspace(), &facts()).unwrap();
    assert_eq!(strs(&a.config["process"]["capabilities"]["ambient"]), ["CAP_CHOWN"]);
}

#[test]
fn missing_capabilities_mean_the_policy_not_everything() {
    let mut c = config();
    c["process"].as_object_mut().unwrap().remove("capabilities");
    let a = run(&c, &workspace(), &facts()).unwrap();
    assert_eq!(strs(&a.config["process"]["capabilities"]["bounding"]).len(), 2);
}

#[test]
fn process_settings_follow_the_policy() {
    let a = run(&config(), &workspace(), &facts()).unwrap();
    let p = &a.config["process"];
    assert_eq!(p["user"], json!({"uid": 1000, "gid": 1000}));
    assert_eq!(p["noNewPrivileges"], json!(true));
    assert_eq!(a.config["root"]["readonly"], json!(true));
    let args = strs(&p["args"]);
    assert_eq!(args, ["/.semble/init", "--config", "/.semble/init.json", "--", "sh", "-c", "echo hi"]);
    assert!(strs(&p["env"]).contains(&"HTTP_PROXY=http://127.0.0.1:8080".to_string()));
    // rlimits: nofile lowered to the request's 1024, core added.
    let rl = p["rlimits"].as_array().unwrap();
    assert!(rl.contains(&json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024})));
    assert!(rl.contains(&json!({"type": "RLIMIT_CORE", "soft": 0, "hard": 0})));
}

#[test]
fn unknown_fields_are_refused_and_known_ones_copied() {
    let a = run(&config(), &workspace(), &facts()).unwrap();
    assert_eq!(a.config["hostname"], json!("x"));
    for (pointer, value) in [
        ("/linux/newThing", json!(true)),
        ("/process/capabilities/extra", json!(["CAP_SYS_ADMIN"])),
        ("/root/overlay", json!("x")),
        ("/somethingElse", json!({})),
    ] {
        let mut c = config();
        set(&mut c, pointer, value);
        let e = run(&c, &workspace(), &facts()).unwrap_err();
        assert!(matches!(&e, Refusal::UnknownField(f, ..) if f == pointer), "{pointer}: {e:?}");
    }
}

#[test]
fn what_the_table_refuses_is_refused_by_name() {
    for (pointer, value) in [
        ("/linux/intelRdt", json!({"closID": "x"})),
        ("/vm", json!({"hypervisor": {"path": "/x"}})),
        ("/linux/netDevices", json!({"eth1": {"name": "eth1"}})),
        ("/linux/timeOffsets", json!({"monotonic": {"secs": 1}})),
        ("/linux/resources/memory/disableOOMKiller", json!(true)),
        ("/linux/resources/cpu/realtimeRuntime", json!(950000)),
        ("/process/scheduler", json!({"policy": "SCHED_FIFO", "priority": 99})),
        ("/process/ioPriority", json!({"class": "IOPRIO_CLASS_RT", "priority": 0})),
        ("/process/apparmorProfile", json!("unconfined")),
        ("/process/selinuxLabel", json!("system_u:system_r:spc_t:s0")),
        ("/linux/rootfsPropagation", json!("rshared")),
        ("/linux/uidMappings", json!([{"containerID": 1000, "hostID": 0, "size": 1}])),
        ("/linux/resources/unified", json!({"memory.oom.group": "1", "io.max": "8:0 wbps=1"})),
    ] {
        let mut c = config();
        set(&mut c, pointer, value);
        let e = run(&c, &workspace(), &facts()).unwrap_err();
        assert!(matches!(e, Refusal::Field(..)), "{pointer}: {e:?}");
        assert!(e.to_string().contains("refused by policy `workspace`"), "{e}");
    }
    // The zero value of a refused field asks for nothing.
    let mut c = config();
    c["linux"]["resources"]["memory"]["disableOOMKiller"] = json!(false);
    assert!(run(&c, &workspace(), &facts()).is_ok());
}

#[test]
fn hooks_run_on_the_host_so_only_the_operators_are_kept() {
    let mut c = config();
    c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "touch /host-file"]}]});
    let e = run(&c, &workspace(), &facts()).unwrap_err().to_string();
    assert!(e.contains("`createRuntime` hook `/bin/sh`") && e.contains("--allow-hook"), "{e}");
    let f = facts();
    let m = mounts();
    let sources = crate::mounts::sources_as_written(&c);
    let allowed = [PathBuf::from("/bin/sh")];
    let inputs = Inputs {
        id: "c1",
        policy: &workspace(),
        facts: &f,
        backend: BackendKind::Runc,
        mounts: &m,
        runsc: None,
        record: false,
        resolvers: &[],
        sources: &sources,
        devices: &HostDevices::new(),
        allowed_hooks: &allowed,
        engine_roots: &[],
        private_dirs: &Default::default(),
        pod_sandbox_known: false,
    };
    let a = apply(&c, &inputs).unwrap();
    assert_eq!(a.config["hooks"]["createRuntime"][0]["path"], "/bin/sh");
    assert!(a.controls.iter().any(|x| x.control == "hooks"));
}

#[test]
fn limits_the_policy_does_not_name_stay_under_the_host_and_priorities_are_not_raised() {
    let mut c = config();
    c["process"]["rlimits"] = json!([
        {"type": "RLIMIT_RTPRIO", "soft": 99, "hard": 99},
        {"type": "RLIMIT_NICE", "soft": 40, "hard": 40},
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}
    ]);
    c["process"]["oomScoreAdj"] = json!(-1000);
    let a = run(&c, &workspace(), &facts()).unwrap();
    let rl = a.config["process"]["rlimits"].as_array().unwrap();
    assert!(rl.contains(&json!({"type": "RLIMIT_RTPRIO", "soft": 0, "hard": 0})), "{rl:?}");
    assert!(rl.contains(&json!({"type": "RLIMIT_NICE", "soft": 0, "hard": 0})), "{rl:?}");
    assert_eq!(a.config["process"]["oomScoreAdj"], 0);
    // In a pod the kubelet's Guaranteed value stays.
    c["annotations"] = json!({"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "sb"});
    c["process"]["oomScoreAdj"] = json!(-997);
    let a = run_known(&c, &policy("  network: {mode: open}\n"), &facts(), true).unwrap();
    assert!(a.in_pod);
    assert_eq!(a.config["process"]["oomScoreAdj"], -997);
    // The same annotations naming a sandbox semble never made: not a pod's container.
    let a = run(&c, &policy("  network: {mode: open}\n"), &facts()).unwrap();
    assert!(!a.in_pod && a.notes.iter().any(|n| n.contains("carries pod annotations")), "{:?}", a.notes);
    assert_eq!(a.config["process"]["oomScoreAdj"], 0);
}

#[test]
fn cgroup_v2_files_are_held_to_the_policy() {
    let mut c = config();
    c["linux"]["resources"]["unified"] = json!({"memory.max": "max", "memory.swap.max": "max", "pids.max": "max", "cpu.max": "max 100000", "memory.oom.group": "1"});
    let a = run(&c, &workspace(), &facts()).unwrap();
    let u = &a.config["linux"]["resources"]["unified"];
    assert_eq!(u["memory.max"], "2147483648");
    assert_eq!(u["memory.swap.max"], "0");
    assert_eq!(u["pids.max"], "512");
    assert_eq!(u["cpu.max"], "200000 100000");
    assert_eq!(u["memory.oom.group"], "1");
    let mut m = serde_json::Map::new();
    m.insert("cpu".into(), json!({"period": 10, "quota": 5_000_000}));
    m.insert("memory".into(), json!({"swap": -1}));
    clamp_limits(&mut m, &workspace(), false).unwrap();
    assert_eq!(m["cpu"]["period"], 1000, "the period is held to the kernel's range");
    assert_eq!(m["cpu"]["quota"], 2000, "the quota follows the period: 2 CPUs");
    assert_eq!(m["memory"]["swap"], 2147483648_i64, "memory+swap no higher than the policy's memory");
    assert!(m["memory"].get("limit").is_none(), "update changes only what it names");
}

#[test]
fn limits_are_the_lower_of_both() {
    let a = run(&config(), &workspace(), &facts()).unwrap();
    let r = &a.config["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], json!(2_i64 << 30));
    assert_eq!(r["memory"]["swap"], json!(2_i64 << 30));
    assert_eq!(r["pids"]["limit"], json!(512));
    assert_eq!(r["cpu"], json!({"period": 100000, "quota": 200000}));
    let mut c = config();
    c["linux"]["resources"]["memory"]["limit"] = json!(1 << 20);
    let a = run(&c, &workspace(), &facts()).unwrap();
    assert_eq!(a.config["linux"]["resources"]["memory"]["limit"], json!(1 << 20));
}

#[test]
fn masked_paths_are_a_union() {
    let a = run(&config(), &workspace(), &facts()).unwrap();
    let m = strs(&a.config["linux"]["maskedPaths"]);
    assert_eq!(m.iter().filter(|p| *p == "/proc/kcore").count(), 1);
    assert!(m.contains(&"/sys/firmware".to_string()));
}

#[test]
fn semble_files_are_mounted_read_only_and_scratch_paths_get_tmpfs() {
    let a = run(&config(), &workspace(), &facts()).unwrap();
    let mounts = a.config["mounts"].as_array().unwrap();
    let find = |d: &str| {
        mounts.iter().find(|m| m["destination"] == json!(d)).cloned().unwrap_or_else(|| panic!("no mount at {d}"))
    };
    assert!(strs(&find("/.semble")["options"]).contains(&"ro".to_string()));
    assert_eq!(find("/.semble/init")["source"], json!("/usr/local/lib/semble/semble-init"));
    assert_eq!(find("/.semble/proxy")["source"], json!("/run/semble/proxy/p"));
    let tmp = find("/tmp");
    assert_eq!(tmp["type"], json!("tmpfs"));
    assert!(strs(&tmp["options"]).contains(&"noexec".to_string()));
    let ws = find("/workspace");
    assert!(strs(&ws["options"]).contains(&"uid=1000".to_string()));
}

#[test]
fn explanations_off_keep_the_errno_filter_and_recording_replaces_it() {
    let mut p = workspace();
    p.seccomp.explain_denials = false;
    let a = run(&config(), &p, &facts()).unwrap();
    assert_eq!(a.policy_seccomp.as_ref().unwrap().default_action, "SCMP_ACT_ERRNO");
    assert_eq!(a.notify, None);
    assert!(a.init.as_ref().unwrap().notify.is_none());
    let f = facts();
    let m = mounts();
    let inputs = Inputs {
        id: "c1",
        policy: &workspace(),
        facts: &f,
        backend: BackendKind::Runc,
        mounts: &m,
        runsc: None,
        record: true,
        resolvers: &[],
        sources: &crate::mounts::Sources::new(),
        devices: &HostDevices::new(),
        allowed_hooks: &[],
        engine_roots: &[],
        private_dirs: &Default::default(),
        pod_sandbox_known: false,
    };
    let a = apply(&config(), &inputs).unwrap();
    assert_eq!(a.notify, Some(NotifyMode::Record));
    let prof = a.policy_seccomp.as_ref().unwrap();
    assert_eq!(prof.default_action, "SCMP_ACT_NOTIFY");
    assert!(
        prof.syscalls.iter().filter(|r| r.action == "SCMP_ACT_ALLOW").all(|r| r.names == ["sendmsg"]),
        "recording allows only the handover"
    );
    assert!(
        prof.syscalls.iter().any(|r| r.names == ["seccomp"] && r.action == "SCMP_ACT_ERRNO"),
        "even a recording refuses a notify listener to the workload"
    );
    assert!(a.notes.iter().any(|n| n.contains("NOT enforced")), "{:?}", a.notes);
}

#[test]
fn seccomp_is_the_policy_and_a_requested_profile_is_stacked() {
    let a = run(&config(), &workspace(), &facts()).unwrap();
    // With no_new_privs, semble-init loads the precompiled policy filter; the runtime gets none.
    assert!(a.config["linux"].get("seccomp").is_none());
    // Denials are explained (the default): refusals notify semble's supervisor, which semble-init
    // reaches at /.semble/notify.sock.
    assert_eq!(a.policy_seccomp.as_ref().unwrap().default_action, "SCMP_ACT_NOTIFY");
    assert_eq!(a.notify, Some(NotifyMode::Explain));
    assert_eq!(a.init.as_ref().unwrap().notify.as_deref(), Some("/.semble/notify.sock"));
    assert_eq!(a.policy_seccomp.as_ref().unwrap().architectures, ["SCMP_ARCH_X86_64"]);
    assert_eq!(a.init.as_ref().unwrap().seccomp.as_deref(), Some(POLICY_SECCOMP_PATH));
    assert!(a.extra_seccomp.is_none());
    let mut c = config();
    c["linux"]["seccomp"] =
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]});
    let a = run(&c, &workspace(), &facts()).unwrap();
    assert_eq!(a.extra_seccomp.unwrap().syscalls[0].names, ["chmod"]);
    assert_eq!(a.init.unwrap().extra_seccomp.as_deref(), Some(EXTRA_SECCOMP_PATH));
    c["linux"]["seccomp"]["listenerPath"] = json!("/run/x.sock");
    assert!(matches!(run(&c, &workspace(), &facts()), Err(Refusal::Seccomp(_))));
}

#[test]
fn privileged_requests_are_refused() {
    let mut c = config();
    c["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    assert!(matches!(run(&c, &workspace(), &facts()), Err(Refusal::Privileged(..))));
    let mut c = config();
    let all: Vec<String> = semble_policy::Capability::ALL.iter().map(|c| c.oci_name()).collect();
    c["process"]["capabilities"]["bounding"] = json!(all);
    let e = run(&c, &workspace(), &facts()).unwrap_err();
    assert_eq!(e.to_string(), "the container asks for privileged mode (every capability is requested), which policy `workspace` forbids; run it without --privileged");
}

#[test]
fn host_pid_and_ipc_are_refused() {
    for kind in ["pid", "ipc"] {
        let mut c = config();
        c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != json!(kind));
        let e = run(&c, &workspace(), &facts()).unwrap_err();
        assert_eq!(e, Refusal::HostNamespace(kind.into(), "workspace".into()));
    }
}

#[test]
fn a_host_namespace_path_is_recognised() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut f = facts();
    f.host_namespaces.insert("pid".into(), crate::host::ns_id(file.path()).unwrap());
    let mut c = config();
    c["linux"]["namespaces"][0] = json!({"type": "pid", "path": file.path()});
    assert!(matches!(run(&c, &workspace(), &f), Err(Refusal::HostNamespace(..))));
}

#[test]
fn network_none_or_proxy_never_keeps_the_host_network() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut f = facts();
    f.host_namespaces.insert("network".into(), crate::host::ns_id(file.path()).unwrap());
    let mut c = config();
    c["linux"]["namespaces"][1] = json!({"type": "network", "path": file.path()});
    let a = run(&c, &workspace(), &f).unwrap();
    assert_eq!(a.config["linux"]["namespaces"][1], json!({"type": "network"}));
    assert!(a.notes[0].contains("host's network namespace was replaced"));
    // An open network never means the host's.
    let open = policy("  network: {mode: open}\n");
    assert!(matches!(run(&c, &open, &f), Err(Refusal::HostNetwork(_))));
}

#[test]
fn a_runtime_network_is_kept_for_ingress_with_tcp_cut_by_landlock() {
    let other = tempfile::NamedTempFile::new().unwrap();
    let mut c = config();
    c["linux"]["namespaces"][1] = json!({"type": "network", "path": other.path()});
    let a = run(&c, &workspace(), &facts()).unwrap();
    assert_eq!(a.config["linux"]["namespaces"][1]["path"], json!(other.path()));
    let net = a.init.unwrap().landlock.unwrap().net.unwrap();
    assert_eq!(net.bind_tcp, [8081]);
    assert_eq!(net.connect_tcp, [8080, 8081]);
    // Without ingress, the runtime's network is replaced.
    let no_ingress = policy("  network: {mode: none}\n");
    let a = run(&c, &no_ingress, &facts()).unwrap();
    assert_eq!(a.config["linux"]["namespaces"][1], json!({"type": "network"}));
    // Too old a Landlock to cut TCP: refused.
    let mut old = facts();
    old.landlock_abi = Some(3);
    assert!(matches!(run(&c, &workspace(), &old), Err(Refusal::NoLandlockNet(..))));
}

#[test]
fn landlock_required_without_landlock_is_refused_best_effort_is_noted() {
    let mut f = facts();
    f.landlock_abi = None;
    assert_eq!(run(&config(), &workspace(), &f).unwrap_err(), Refusal::NoLandlock("workspace".into()));
    let be = policy(
        "  filesystem: {readOnly: [/usr], execute: [/bin], enforcement: best-effort}\n  network: {mode: none}\n",
    );
    let a = run(&config(), &be, &f).unwrap();
    assert!(a.notes.iter().any(|n| n.contains("NOT enforced")));
}

#[test]
fn selinux_required_on_a_host_without_it_is_refused() {
    let p = policy("  selinux: {type: semble_x_t}\n  network: {mode: none}\n");
    assert_eq!(run(&config(), &p, &facts()).unwrap_err(), Refusal::NoSelinux("p".into()));
    let mut f = facts();
    f.selinux_enabled = true;
    let p = policy("  selinux: {type: semble_x_t, level: auto}\n  network: {mode: none}\n");
    let a = run(&config(), &p, &f).unwrap();
    let label = a.config["process"]["selinuxLabel"].as_str().unwrap();
    assert!(label.starts_with("system_u:system_r:semble_x_t:s0:c"), "{label}");
}

#[test]
fn devices_mounts_and_sysctls_outside_the_policy_are_refused() {
    let mut c = config();
    c["linux"]["devices"] = json!([{"path": "/dev/kvm", "type": "c", "major": 10, "minor": 232}]);
    assert_eq!(run(&c, &workspace(), &facts()).unwrap_err().to_string(), "device `/dev/kvm` is not allowed by policy `workspace`; add it to `spec.devices.allow` or remove it from the container");
    let gpu = policy("  devices: {gpu: nvidia}\n  network: {mode: none}\n");
    let mut c = config();
    c["linux"]["devices"] = json!([{"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0}]);
    let a = run(&c, &gpu, &facts()).unwrap();
    assert!(a.config["linux"]["resources"]["devices"]
        .as_array()
        .unwrap()
        .contains(&json!({"allow": true, "type": "c", "major": 195, "access": "rwm"})));

    for (src, dst) in [
        ("/var/run/docker.sock", "/var/run/docker.sock"),
        ("/", "/host"),
        ("/proc", "/hostproc"),
        ("/run/containerd/containerd.sock", "/c.sock"),
    ] {
        let mut c = config();
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind"]}));
        assert!(matches!(run(&c, &workspace(), &facts()), Err(Refusal::Mount(..))), "{src}");
    }
    let mut c = config();
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/.semble/init", "type": "bind", "source": "/tmp/evil"}));
    assert!(matches!(run(&c, &workspace(), &facts()), Err(Refusal::Reserved(_))));
    let mut c = config();
    c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": "/var/lib/containers/storage/volumes/x/_data", "options": ["rbind"]}));
    assert!(run(&c, &workspace(), &facts()).is_ok());

    let mut c = config();
    c["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/evil"});
    assert!(matches!(run(&c, &workspace(), &facts()), Err(Refusal::Sysctl(..))));
    c["linux"]["sysctl"] = json!({"net.ipv4.ip_unprivileged_port_start": "0"});
    assert!(run(&c, &workspace(), &facts()).is_ok());
}

#[test]
fn run_as_non_root_refuses_uid_zero() {
    let p = policy("  process: {runAsNonRoot: true}\n  network: {mode: none}\n");
    assert_eq!(run(&config(), &p, &facts()).unwrap_err(), Refusal::Root("p".into()));
}

#[test]
fn a_pod_sandbox_gets_the_policy_but_no_init() {
    // The engine's sandbox: its sandbox ID is the container's own (the tests' container is `c1`).
    let mut c = config();
    c["annotations"] = json!({CRI_CONTAINER_TYPE: "sandbox", CRI_SANDBOX_ID: "c1"});
    let a = run(&c, &workspace(), &facts()).unwrap();
    assert!(a.init.is_none());
    assert_eq!(strs(&a.config["process"]["args"]), ["sh", "-c", "echo hi"]);
    assert_eq!(a.config["process"]["noNewPrivileges"], json!(true));
}

#[test]
fn a_forged_sandbox_annotation_weakens_nothing() {
    // What an image or a Podman user can write: the type, with no sandbox ID or another's.
    for ann in [
        json!({CRI_CONTAINER_TYPE: "sandbox"}),
        json!({CRI_CONTAINER_TYPE: "sandbox", CRI_SANDBOX_ID: "someone-else"}),
        json!({"io.kubernetes.cri-o.ContainerType": "sandbox"}),
    ] {
        let mut c = config();
        c["annotations"] = ann.clone();
        let a = run(&c, &workspace(), &facts()).unwrap();
        let init = a.init.as_ref().unwrap_or_else(|| panic!("{ann}: no semble-init"));
        assert!(init.landlock.is_some(), "{ann}: no Landlock");
        assert_eq!(strs(&a.config["process"]["args"])[0], "/.semble/init", "{ann}");
    }
}

#[test]
fn annotations_record_policy_and_backend() {
    let a = run(&config(), &workspace(), &facts()).unwrap();
    assert_eq!(a.config["annotations"][POLICY_ANNOTATION], json!("workspace"));
    assert_eq!(a.config["annotations"][BACKEND_ANNOTATION], json!("runc"));
}

#[test]
fn applying_twice_from_the_original_is_deterministic() {
    let a = run(&config(), &workspace(), &facts()).unwrap();
    let b = run(&config(), &workspace(), &facts()).unwrap();
    assert_eq!(a.config, b.config);
}

#[test]
fn exec_processes_get_the_same_ceiling() {
    let mut process = json!({"user": {"uid": 0, "gid": 0}, "args": ["id"], "capabilities": {"bounding": DOCKER_CAPS}, "noNewPrivileges": false});
    let allowed: BTreeSet<String> = ["CAP_CHOWN".to_string()].into_iter().collect();
    apply_process(&mut process, &workspace(), &facts(), &allowed, false).unwrap();
    assert_eq!(process["user"], json!({"uid": 1000, "gid": 1000}));
    assert_eq!(strs(&process["capabilities"]["effective"]), ["CAP_CHOWN"]);
    assert_eq!(process["noNewPrivileges"], json!(true));
}

#[test]
fn without_no_new_privs_the_runtime_applies_seccomp_and_nothing_can_be_stacked() {
    let p = policy("  process: {noNewPrivileges: false}\n  network: {mode: none}\n");
    let a = run(&config(), &p, &facts()).unwrap();
    assert_eq!(a.config["linux"]["seccomp"]["defaultAction"], json!("SCMP_ACT_ERRNO"));
    assert!(a.policy_seccomp.is_none());
    assert!(a.init.unwrap().seccomp.is_none());
    let mut c = config();
    c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW"});
    assert!(matches!(run(&c, &p, &facts()), Err(Refusal::Seccomp(_))));
}

#[test]
fn under_gvisor_the_engines_writable_mounts_lose_exec_unless_the_policy_runs_code_there() {
    let p = workspace();
    let fs = p.filesystem.as_ref().unwrap();
    assert!(fs.read_write.iter().any(|x| x == "/tmp") && !fs.execute.iter().any(|x| x == "/tmp"));
    let mut mounts = vec![
        // A pod's emptyDir on /tmp, as containerd writes it.
        json!({"destination": "/tmp/", "type": "bind", "source": "/var/lib/kubelet/x", "options": ["rbind", "rw", "exec"]}),
        json!({"destination": "/etc/hosts", "type": "bind", "source": "/x/hosts", "options": ["rbind", "rw"]}),
        json!({"destination": "/usr/lib/tool", "type": "bind", "source": "/x/tool", "options": ["rbind", "rw"]}),
    ];
    let changed = noexec_writable_mounts(&mut mounts, &p).unwrap();
    assert_eq!(changed, ["/tmp"]);
    assert_eq!(strs(&mounts[0]["options"]), ["rbind", "rw", "noexec", "nosuid", "nodev"]);
    // Outside the writable paths, or where code runs: left as the engine wrote them.
    assert_eq!(strs(&mounts[1]["options"]), ["rbind", "rw"]);
    assert_eq!(strs(&mounts[2]["options"]), ["rbind", "rw"]);
    let mut open = p.clone();
    open.filesystem.as_mut().unwrap().execute.push("/tmp/bin".into());
    let mut again = vec![json!({"destination": "/tmp", "type": "bind", "source": "/x", "options": ["rbind"]})];
    assert!(noexec_writable_mounts(&mut again, &open).unwrap().is_empty());
}

#[test]
fn devices_are_judged_by_type_and_number_not_by_name() {
    let gpu = policy("  devices: {gpu: nvidia}\n  network: {mode: none}\n");
    // The host's disk under an NVIDIA name: block 254:0.
    for (kind, major) in [("b", 254), ("c", 254), ("b", 195)] {
        let mut c = config();
        c["linux"]["devices"] = json!([{"path": "/dev/nvidia0", "type": kind, "major": major, "minor": 0}]);
        let e = run(&c, &gpu, &facts()).unwrap_err().to_string();
        assert!(e.contains("/dev/nvidia0") && e.contains("not an NVIDIA device"), "{e}");
    }
    // A made-up name under /dev/nvidia is no NVIDIA device node.
    let mut c = config();
    c["linux"]["devices"] = json!([{"path": "/dev/nvidia-disk", "type": "c", "major": 195, "minor": 0}]);
    assert!(matches!(run(&c, &gpu, &facts()), Err(Refusal::Device(..))));
    // The real ones: 195 and the uvm major the host lists.
    let mut c = config();
    c["linux"]["devices"] = json!([
        {"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0},
        {"path": "/dev/nvidiactl", "type": "c", "major": 195, "minor": 255},
        {"path": "/dev/nvidia-uvm", "type": "c", "major": 237, "minor": 0}
    ]);
    c["linux"]["resources"]["devices"] = json!([
        {"allow": true, "type": "b", "major": 254, "minor": 0, "access": "rwm"},
        {"allow": true, "type": "c", "major": 237, "minor": 0, "access": "rwm"}
    ]);
    let a = run(&c, &gpu, &facts()).unwrap();
    let rules = a.config["linux"]["resources"]["devices"].as_array().unwrap();
    assert!(!rules.iter().any(|r| r["type"] == "b"), "the disk's cgroup rule must go: {rules:?}");
    assert!(rules.contains(&json!({"allow": true, "type": "c", "major": 237, "access": "rwm"})), "{rules:?}");

    // An allow-listed path must carry the host's numbers for that path.
    let fuse = policy("  devices: {allow: [{path: /dev/fuse}]}\n  network: {mode: none}\n");
    let mut c = config();
    c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "b", "major": 254, "minor": 0}]);
    let sources = crate::mounts::sources_as_written(&c);
    let host: HostDevices = [("/dev/fuse".to_string(), Some(("c".to_string(), 10, 229)))].into_iter().collect();
    let f = facts();
    let m = mounts();
    let inputs = Inputs {
        id: "c1",
        policy: &fuse,
        facts: &f,
        backend: BackendKind::Runc,
        mounts: &m,
        runsc: None,
        record: false,
        resolvers: &[],
        sources: &sources,
        devices: &host,
        allowed_hooks: &[],
        engine_roots: &[],
        private_dirs: &Default::default(),
        pod_sandbox_known: false,
    };
    let e = apply(&c, &inputs).unwrap_err().to_string();
    assert!(e.contains("the host's `/dev/fuse` is `c 10:229`"), "{e}");
    c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
    assert!(apply(&c, &inputs).is_ok());
}

fn rootless_v1() -> HostFacts {
    HostFacts { undelegated_cgroups: crate::host::undelegated(1001, None), ..facts() }
}

#[test]
fn limits_a_rootless_host_cannot_set_follow_the_policys_enforcement() {
    let required = policy("  resources: {memory: 1Gi, pids: 64}\n");
    let e = run(&config(), &required, &rootless_v1()).unwrap_err().to_string();
    assert!(e.contains("`memory.limit`") && e.contains("`pids.limit`"), "{e}");
    assert!(e.contains("cgroup v1") && e.contains("best-effort"), "{e}");

    let best = policy("  resources: {memory: 1Gi, pids: 64, enforcement: best-effort}\n");
    let mut c = config();
    c["linux"]["resources"]["unified"] = json!({"memory.max": "max", "cpu.weight": "100"});
    let a = run(&c, &best, &rootless_v1()).unwrap();
    let r = &a.config["linux"]["resources"];
    assert!(r.get("memory").is_none() && r.get("pids").is_none(), "{r}");
    assert_eq!(r["unified"], json!({}), "{r}");
    assert_eq!(r["devices"][0], json!({"allow": false, "access": "rwm"}), "the device rules stay");
    assert!(a.notes.iter().any(|n| n.contains("NOT applied") && n.contains("memory.limit")), "{:?}", a.notes);

    // As root (no undelegated controllers) the same policy's limits hold.
    let a = run(&config(), &best, &facts()).unwrap();
    assert_eq!(a.config["linux"]["resources"]["pids"]["limit"], 64);
}

#[test]
fn on_cgroup_v2_only_the_undelegated_controllers_are_missing() {
    let u = crate::host::undelegated(1001, Some("memory pids\n")).unwrap();
    assert!(u.controllers.contains("cpu") && !u.controllers.contains("memory"), "{u:?}");
    assert!(u.why.contains("Delegate="), "{}", u.why);
    assert_eq!(crate::host::undelegated(1001, Some("cpuset cpu io memory hugetlb pids rdma")), None);
    let f = HostFacts { undelegated_cgroups: Some(u), ..facts() };
    // The workspace: memory and pids hold, the CPU quota cannot, and best-effort says so.
    let a = run(&config(), &workspace(), &f).unwrap();
    let r = &a.config["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], json!(2_i64 << 30));
    assert_eq!(r["pids"]["limit"], 512);
    assert!(r["cpu"].get("quota").is_none(), "{r}");
    assert!(a.notes.iter().any(|n| n.contains("`cpu.quota`")), "{:?}", a.notes);
    assert!(!a.notes.iter().any(|n| n.contains("memory.limit")), "{:?}", a.notes);
}

#[test]
fn runsc_rootless_ignores_cgroups_and_so_holds_no_limit() {
    let best = policy("  resources: {memory: 1Gi, pids: 64, enforcement: best-effort}\n  network: {mode: none}\n");
    let mut host = semble_gvisor::Runsc::default();
    host.flags.insert("ignore-cgroups".into());
    let runsc = RunscInputs { host, ..RunscInputs::default() };
    let with = |f: &HostFacts, runsc: &RunscInputs| {
        let cfg = config();
        let sources = crate::mounts::sources_as_written(&cfg);
        apply(
            &cfg,
            &Inputs {
                id: "c1",
                policy: &best,
                facts: f,
                backend: BackendKind::Runsc,
                mounts: &mounts(),
                runsc: Some(runsc),
                record: false,
                resolvers: &[],
                sources: &sources,
                devices: &devices_as_requested(&cfg),
                allowed_hooks: &[],
                engine_roots: &[],
                private_dirs: &Default::default(),
                pod_sandbox_known: false,
            },
        )
    };
    // cgroup v2 delegating everything but cpu: runc would keep memory and pids; runsc rootless
    // creates no cgroup at all, so none of them holds, and the log says so.
    let v2 = HostFacts { undelegated_cgroups: crate::host::undelegated(1001, Some("memory pids")), ..facts() };
    let a = with(&v2, &runsc).unwrap();
    assert!(a.backend_flags.contains(&"--ignore-cgroups".to_string()), "{:?}", a.backend_flags);
    assert!(a.config["linux"]["resources"].get("memory").is_none(), "{}", a.config["linux"]["resources"]);
    assert!(a.notes.iter().any(|n| n.contains("memory.limit") && n.contains("--ignore-cgroups")), "{:?}", a.notes);
    // As root: runsc manages the cgroups and the limits hold.
    let a = with(&facts(), &runsc).unwrap();
    assert!(!a.backend_flags.contains(&"--ignore-cgroups".to_string()));
    assert_eq!(a.config["linux"]["resources"]["pids"]["limit"], 64);
    // A runsc without the flag cannot run rootless here: refused, not half-run.
    let e = with(&v2, &RunscInputs::default()).unwrap_err().to_string();
    assert!(e.contains("--ignore-cgroups"), "{e}");
}

#[test]
fn under_cri_o_only_cri_os_own_keys_are_the_engines() {
    use std::collections::BTreeMap;
    let m: BTreeMap<&str, &str> = [
        ("io.container.manager", "cri-o"),
        ("io.kubernetes.cri.sandbox-namespace", "kube-system"),
        ("io.kubernetes.pod.namespace", "sandboxes"),
    ]
    .into_iter()
    .collect();
    let get = |k: &str| m.get(k).copied();
    assert_eq!(
        engine_key(get, "io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"),
        Some("sandboxes")
    );
    let c =
        json!({"annotations": {"io.container.manager": "cri-o", "io.kubernetes.cri.sandbox-namespace": "kube-system"}});
    assert_eq!(pod_namespace(&c), None, "a pod author's containerd key means nothing under CRI-O");
    let c = json!({"annotations": {"io.kubernetes.cri.sandbox-namespace": "sandboxes", "io.kubernetes.pod.namespace": "x"}});
    assert_eq!(pod_namespace(&c), Some("sandboxes"));
}
