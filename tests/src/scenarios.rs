//! The end-to-end scenarios, each run against every backend (`runc`, `embedded`, `runsc`) by
//! the test files in `tests/tests/`. A scenario starts real containers and checks, from inside
//! them, what the kernel enforced.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::*;

/// The example policies with `spec.runtime` replaced by `backend: BACKEND`, written under
/// `target/test-policies/BACKEND/` (the same content every time, each file replaced atomically).
pub fn policy_dir_for(backend: &str) -> PathBuf {
    let dir = workspace().join("target/test-policies").join(backend);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(policy_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        let mut skipping = false;
        for line in src.lines() {
            if line == "  runtime:" {
                skipping = true;
                continue;
            }
            if skipping && line.starts_with("    ") {
                continue;
            }
            skipping = false;
            out.push_str(line);
            out.push('\n');
            if line == "spec:" {
                out.push_str(&format!("  runtime:\n    backend: {backend}\n"));
            }
        }
        let target = dir.join(path.file_name().unwrap());
        // Unique per call: tests in one binary run on threads of one process, in parallel.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{}.{}.{seq}", path.file_name().unwrap().to_string_lossy(), std::process::id()));
        std::fs::write(&tmp, out).unwrap();
        std::fs::rename(&tmp, &target).unwrap();
    }
    dir
}

/// The policy backends name themselves in (`gvisor` for runsc).
fn policy_backend(backend: &str) -> &str {
    if backend == "runsc" {
        "gvisor"
    } else {
        backend
    }
}

/// `semble-shim` with a private root and the policies for `backend`.
pub fn shim_for(root: &Path, backend: &str) -> Command {
    let mut c = Command::new(bin("semble-shim"));
    c.arg("--root").arg(root).arg("--policy-dir").arg(policy_dir_for(policy_backend(backend)));
    if backend == "runsc" {
        c.arg("--runsc").arg(runsc());
    }
    c.stdin(std::process::Stdio::null());
    c
}

/// Nothing of a container is left: no semble record, no backend state, the bundle as it was.
pub fn assert_gone(root: &Path, backend: &str, id: &str, bundle: &Path, original: &[u8]) {
    assert!(!root.join("semble").join(id).exists(), "semble's record of {id} is still there");
    assert!(!root.join(backend).join(id).exists(), "{backend} still knows {id}");
    assert_eq!(std::fs::read(bundle.join("config.json")).unwrap(), original, "the bundle was not restored");
}

/// `semble-shim run` of the probe under the workspace policy.
pub fn workspace_enforced(backend: &str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["/bin/probe"]);
    edit_config(&b, |c| c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"}));
    let original = std::fs::read(b.join("config.json")).unwrap();
    let proxy_dir = t.path().join("proxy");
    let _proxy = FakeProxy::start(&proxy_dir, "workspace");
    let root = t.path().join("state");
    let id = unique("ws");
    let out = run(
        shim_for(&root, backend).arg("--proxy-dir").arg(&proxy_dir).args(["run", "--bundle"]).arg(&b).arg(&id),
        true,
    );
    let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    probe.assert_workspace_for(backend);
    assert_eq!(probe.get("proxy"), PROXIED, "the proxy bridge must carry the request");
    assert_gone(&root, backend, &id, &b, &original);
}

/// Without a proxy running, the bridge answers 502 rather than hanging up.
pub fn proxy_down_is_a_502(backend: &str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["/bin/probe"]);
    edit_config(&b, |c| c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"}));
    let out = run(
        shim_for(&t.path().join("state"), backend)
            .arg("--proxy-dir")
            .arg(t.path().join("proxy"))
            .args(["run", "-b"])
            .arg(&b)
            .arg(unique("down")),
        true,
    );
    let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    probe.assert_workspace_for(backend);
    assert!(probe.get("proxy").starts_with("HTTP/1.1_502"), "{probe:?}");
}

/// The real semble-proxy behind the bridge: it runs in a network namespace of the test's (with
/// the metadata decoys), listens on the policy's socket, and decides the probe's request with the
/// workspace policy's own rules (only Bedrock is allowed, so `probe.test` gets `403 no_rule`).
pub fn real_proxy_decides(backend: &str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let ns = TestNetns::new(crate::proxylab::DECOYS);
    let policy = policy_dir_for(policy_backend(backend)).join("workspace.yaml");
    let proxy_dir = t.path().join("proxy");
    std::fs::create_dir_all(proxy_dir.join("workspace")).unwrap();
    let socket = proxy_dir.join("workspace/proxy.sock");
    let creds = t.path().join("creds.yaml");
    std::fs::write(
        &creds,
        "kind: ProxyCredentials\ncredentials:\n  bedrock:\n    awsSigV4: {service: bedrock, from: environment}\n",
    )
    .unwrap();
    let log = t.path().join("proxy.log");
    let mut proxy = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(bin("semble-proxy"))
        .arg("--policy")
        .arg(&policy)
        .arg("--credentials")
        .arg(&creds)
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .args(["--nameserver", "127.0.0.1:1"])
        .env("AWS_ACCESS_KEY_ID", crate::proxylab::AKID)
        .env("AWS_SECRET_ACCESS_KEY", crate::proxylab::SECRET)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "semble-proxy did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = bundle(&t.path().join("bundle"), &["/bin/probe"]);
    edit_config(&b, |c| c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"}));
    let out = run(
        shim_for(&t.path().join("state"), backend)
            .arg("--proxy-dir")
            .arg(&proxy_dir)
            .args(["run", "-b"])
            .arg(&b)
            .arg(unique("realproxy")),
        false,
    );
    let _ = proxy.kill();
    let _ = proxy.wait();
    let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    let answer = probe.get("proxy");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        answer.starts_with("HTTP/1.1_403") && answer.contains("no_egress_rule_allows_`probe.test`"),
        "{probe:?}\n{text}"
    );
    let line = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["target"] == "probe.test:80")
        .unwrap_or_else(|| panic!("no decision logged:\n{text}"));
    assert_eq!((line["client"].as_str(), line["reason"].as_str()), (Some("unix"), Some("no_rule")), "{line}");
    assert!(!text.contains(crate::proxylab::SECRET));
}

fn wait_status(root: &Path, backend: &str, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = run(shim_for(root, backend).args(["state", id]), false);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["status"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} never reached {want}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// create, start, state, exec (twice: plain, and asking for root and SYS_ADMIN), ps, list, kill,
/// delete — and nothing left afterwards.
pub fn lifecycle(backend: &str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["sleep", "300"]);
    edit_config(&b, |c| c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"}));
    let original = std::fs::read(b.join("config.json")).unwrap();
    let root = t.path().join("state");
    let proxy_dir = t.path().join("proxy");
    let _proxy = FakeProxy::start(&proxy_dir, "workspace");
    let id = unique("life");
    let pidfile = t.path().join("pid");
    // The container inherits create's stdio: give it files, not the pipes `output()` waits on.
    let stdio = std::fs::File::create(t.path().join("container.out")).unwrap();
    let status = shim_for(&root, backend)
        .arg("--proxy-dir")
        .arg(&proxy_dir)
        .args(["create", "--bundle"])
        .arg(&b)
        .arg("--pid-file")
        .arg(&pidfile)
        .arg(&id)
        .stdout(stdio.try_clone().unwrap())
        .stderr(stdio)
        .status()
        .unwrap();
    assert!(status.success(), "{}", std::fs::read_to_string(t.path().join("container.out")).unwrap());
    wait_status(&root, backend, &id, "created");
    assert!(std::fs::read_to_string(&pidfile).unwrap().trim().parse::<u32>().is_ok());
    run(shim_for(&root, backend).args(["start", &id]), true);
    wait_status(&root, backend, &id, "running");
    // exec gets the same policy, without being told.
    let out = run(shim_for(&root, backend).args(["exec", &id, "/bin/probe"]), true);
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    p.assert_workspace_for(backend);
    assert_eq!(p.get("proxy"), PROXIED);
    // ... even when it asks to be root with SYS_ADMIN.
    let out = run(
        shim_for(&root, backend).args(["exec", "--user", "0:0", "--cap", "CAP_SYS_ADMIN", &id, "/bin/probe"]),
        true,
    );
    Probe::parse(&String::from_utf8_lossy(&out.stdout)).assert_workspace_for(backend);
    let out = run(shim_for(&root, backend).args(["ps", "--format", "json", &id]), true);
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(!pids.is_empty(), "ps found no process: {}", String::from_utf8_lossy(&out.stdout));
    let out = run(shim_for(&root, backend).args(["list", "--format", "json"]), true);
    let l: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(l[0]["policy"], "workspace");
    assert_eq!(l[0]["backend"], backend);
    assert_eq!(l[0]["status"], "running");
    run(shim_for(&root, backend).args(["kill", &id, "KILL"]), true);
    wait_status(&root, backend, &id, "stopped");
    run(shim_for(&root, backend).args(["delete", &id]), true);
    assert_gone(&root, backend, &id, &b, &original);
    let out = run(shim_for(&root, backend).args(["state", &id]), false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

/// A network namespace the engine prepared is kept for ingress and TCP is cut by Landlock; the
/// namespace is the test's own, with the metadata address as a decoy and a recorder behind it.
pub fn kept_netns_is_cut(backend: &str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let ns = TestNetns::new(&["169.254.169.254/32"]);
    let hits = ns.recorder("169.254.169.254:80".parse().unwrap());
    let b = bundle(&t.path().join("bundle"), &["/bin/probe"]);
    edit_config(&b, |c| {
        c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"});
        join_netns(c, &ns.path());
    });
    let out = run_with_workspace_proxy(t.path(), backend, &b, "netns", true);
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    p.assert_workspace_for(backend);
    assert_eq!(p.get("connect_metadata"), "EACCES", "Landlock must refuse the connect before any packet");
    assert_eq!(p.get("proxy"), PROXIED, "the proxy port stays reachable");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the decoy metadata address was reached");
    // The recorder does record: a connection from outside the sandbox counts.
    ns.connect("169.254.169.254:80".parse().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while hits.load(std::sync::atomic::Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Podman with semble-shim as its runtime: `run` under the workspace policy.
pub fn podman_run(backend: &str) {
    let p = Podman::start(policy_dir_for(policy_backend(backend)));
    let p = if backend == "runsc" { p.with_runtime_flag(&format!("runsc={}", runsc().display())) } else { p };
    let _proxy = FakeProxy::start(&p.proxy_dir(), "workspace");
    let out = run(
        p.cmd()
            .args(["run", "--rm"])
            .args(Podman::RUN)
            .args(["--annotation", "semble.dev/policy=workspace"])
            .arg(&p.image),
        true,
    );
    let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    probe.assert_workspace_for(backend);
    assert_eq!(probe.get("proxy"), PROXIED);
}

/// Podman: `exec` (also `--user 0`), `kill`, `rm`, and semble's record goes with the container.
pub fn podman_exec_kill_rm(backend: &str) {
    let p = Podman::start(policy_dir_for(policy_backend(backend)));
    let p = if backend == "runsc" { p.with_runtime_flag(&format!("runsc={}", runsc().display())) } else { p };
    let name = unique("podman");
    run(
        p.cmd()
            .args(["run", "-d", "--name", &name])
            .args(Podman::RUN)
            .args(["--annotation", "semble.dev/policy=workspace"])
            .arg(&p.image)
            .args(["sleep", "300"]),
        true,
    );
    let out = run(p.cmd().args(["exec", &name, "/bin/probe"]), true);
    Probe::parse(&String::from_utf8_lossy(&out.stdout)).assert_workspace_for(backend);
    let out = run(p.cmd().args(["exec", "--user", "0", &name, "/bin/probe"]), true);
    Probe::parse(&String::from_utf8_lossy(&out.stdout)).assert_workspace_for(backend);
    run(p.cmd().args(["kill", &name]), true);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run(p.cmd().args(["inspect", "--format", "{{.State.Status}}", &name]), true);
        if String::from_utf8_lossy(&out.stdout).trim() == "exited" {
            break;
        }
        assert!(Instant::now() < deadline, "container did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    let id = String::from_utf8_lossy(&run(p.cmd().args(["inspect", "--format", "{{.Id}}", &name]), true).stdout)
        .trim()
        .to_string();
    run(p.cmd().args(["rm", &name]), true);
    assert!(!Path::new("/run/semble-shim/semble").join(&id).exists(), "semble's record outlived the container");
}

/// containerd with its runc shim calling semble-shim (`ctr run --runc-binary`).
#[derive(Debug)]
pub struct CtrEnv {
    /// The daemon.
    pub containerd: Containerd,
    /// The imported test image.
    pub image: String,
    _proxy: FakeProxy,
    _dir: tempfile::TempDir,
}

impl CtrEnv {
    /// A containerd of its own with the test image, policies for `backend`, and a fake proxy.
    pub fn start(backend: &str) -> CtrEnv {
        require_tool("ctr", "containerd");
        let podman = Podman::start(policy_dir());
        let dir = tempfile::tempdir().unwrap();
        let proxy_dir = dir.path().join("proxy");
        let policies = policy_dir_for(policy_backend(backend));
        let runsc = runsc();
        let mut env: Vec<(&str, &Path)> = vec![("SEMBLE_POLICY_DIR", &policies), ("SEMBLE_PROXY_DIR", &proxy_dir)];
        if backend == "runsc" {
            env.push(("SEMBLE_RUNSC", &runsc));
        }
        let containerd = Containerd::start(&env);
        let archive = containerd.dir().join("image.tar");
        podman.save_oci(&archive);
        run(containerd.ctr().args(["images", "import", "--base-name", "localhost/semble-probe"]).arg(&archive), true);
        let out = run(containerd.ctr().args(["images", "list", "-q"]), true);
        let image = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("semble-probe"))
            .unwrap_or("localhost/semble-probe:test")
            .to_string();
        let proxy = FakeProxy::start(&proxy_dir, "workspace");
        drop(podman);
        CtrEnv { containerd, image, _proxy: proxy, _dir: dir }
    }
}

/// `ctr run --runc-binary semble-shim` under the workspace policy.
pub fn ctr_run(backend: &str) {
    let e = CtrEnv::start(backend);
    let id = unique("ctr");
    let out = run(
        e.containerd.ctr().args(["run", "--rm", "--runc-binary"]).arg(bin("semble-shim")).args([
            "--annotation",
            "semble.dev/policy=workspace",
            &e.image,
            &id,
            "/bin/probe",
        ]),
        true,
    );
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    p.assert_workspace_for(backend);
    assert_eq!(p.get("proxy"), PROXIED);
}

/// `ctr task exec`, `kill`, `delete`, and semble's record goes with the container.
pub fn ctr_exec_kill_delete(backend: &str) {
    let e = CtrEnv::start(backend);
    let id = unique("ctrlife");
    run(
        e.containerd.ctr().args(["run", "-d", "--runc-binary"]).arg(bin("semble-shim")).args([
            "--annotation",
            "semble.dev/policy=workspace",
            &e.image,
            &id,
            "sleep",
            "300",
        ]),
        true,
    );
    let out = run(e.containerd.ctr().args(["task", "exec", "--exec-id", "probe", &id, "/bin/probe"]), true);
    Probe::parse(&String::from_utf8_lossy(&out.stdout)).assert_workspace_for(backend);
    run(e.containerd.ctr().args(["task", "kill", "--signal", "SIGKILL", &id]), true);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run(e.containerd.ctr().args(["task", "list"]), true);
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with(&id))
            .map(str::to_string)
            .unwrap_or_default();
        if line.contains("STOPPED") {
            break;
        }
        assert!(Instant::now() < deadline, "task did not stop: {line}");
        std::thread::sleep(Duration::from_millis(100));
    }
    run(e.containerd.ctr().args(["task", "delete", &id]), true);
    run(e.containerd.ctr().args(["containers", "delete", &id]), true);
    let records = Path::new("/run/containerd/runc/semble-test/semble").join(&id);
    assert!(!records.exists(), "semble's record outlived the container: {}", records.display());
}

/// `semble-shim run` of bundle `b` under `backend`, state in `dir`, with a stand-in proxy on the
/// workspace policy's socket; `check`: fail unless it exits 0.
pub fn run_with_workspace_proxy(
    dir: &Path,
    backend: &str,
    b: &Path,
    prefix: &str,
    check: bool,
) -> std::process::Output {
    let proxy_dir = dir.join("proxy");
    let _proxy = FakeProxy::start(&proxy_dir, "workspace");
    run(
        shim_for(&dir.join("state"), backend)
            .arg("--proxy-dir")
            .arg(&proxy_dir)
            .args(["run", "-b"])
            .arg(b)
            .arg(unique(prefix)),
        check,
    )
}

/// Point a bundle's network namespace at `path` (a namespace the test made).
pub fn join_netns(c: &mut serde_json::Value, path: &Path) {
    for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = serde_json::json!(path);
        }
    }
}
