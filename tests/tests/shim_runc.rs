//! semble-shim driving runc directly: the workspace policy, checked from inside the container.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::process::Command;
use std::time::{Duration, Instant};

use semble_tests::*;

#[test]
fn workspace_policy_is_enforced_under_runc() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["/bin/probe"]);
    let original = std::fs::read(b.join("config.json")).unwrap();
    let proxy_dir = t.path().join("proxy");
    let _proxy = FakeProxy::start(&proxy_dir, "workspace");
    let root = t.path().join("state");
    let id = unique("ws");
    let out = run(
        shim(&root)
            .arg("--proxy-dir")
            .arg(&proxy_dir)
            .arg("--policy")
            .arg(policy_dir().join("workspace.yaml"))
            .args(["run", "--bundle"])
            .arg(&b)
            .arg(&id),
        true,
    );
    let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    probe.assert_workspace();
    assert_eq!(
        probe.get("proxy"),
        PROXIED,
        "the proxy bridge must carry the request"
    );
    // After `run`, nothing is left: no record, no runc state, the bundle as it was.
    assert_eq!(
        std::fs::read_dir(root.join("semble"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    assert!(!root.join("runc").join(&id).exists());
    assert_eq!(std::fs::read(b.join("config.json")).unwrap(), original);
}

#[test]
fn the_annotation_selects_an_installed_policy() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["/bin/probe"]);
    edit_config(&b, |c| {
        c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"})
    });
    let out = run(
        shim(&t.path().join("state"))
            .arg("--proxy-dir")
            .arg(t.path().join("proxy"))
            .args(["run", "-b"])
            .arg(&b)
            .arg(unique("ann")),
        true,
    );
    let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    probe.assert_workspace();
    // No proxy running: the bridge answers 502 rather than hanging up.
    assert!(probe.get("proxy").starts_with("HTTP/1.1_502"), "{probe:?}");
}

#[test]
fn without_annotation_the_builtin_default_applies() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["/bin/probe"]);
    let empty = t.path().join("no-policies");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(
        Command::new(bin("semble-shim"))
            .arg("--root")
            .arg(t.path().join("state"))
            .arg("--policy-dir")
            .arg(&empty)
            .args(["run", "-b"])
            .arg(&b)
            .arg(unique("def")),
        true,
    );
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    // Docker's default set without NET_RAW, MKNOD and SETFCAP: 0xa80425fb minus those bits.
    assert_eq!(p.get("uid"), "0");
    assert_eq!(p.get("NoNewPrivs"), "1");
    assert_eq!(p.get("Seccomp"), "2");
    assert_eq!(p.get("raw_socket"), "EPERM");
    assert_eq!(p.get("unshare_user"), "EPERM");
    assert_eq!(p.get("keyctl"), "EPERM");
    assert_eq!(
        p.get("read_secret"),
        "ok",
        "the built-in default has no Landlock rules"
    );
}

fn wait_status(root: &std::path::Path, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = run(shim(root).args(["state", id]), false);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["status"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} never reached {want}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn lifecycle_create_start_state_exec_kill_delete() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["sleep", "300"]);
    let original = std::fs::read(b.join("config.json")).unwrap();
    let root = t.path().join("state");
    let proxy_dir = t.path().join("proxy");
    let _proxy = FakeProxy::start(&proxy_dir, "workspace");
    let id = unique("life");
    let policy = policy_dir().join("workspace.yaml");
    let pidfile = t.path().join("pid");
    // The container inherits create's stdio: give it files, not the pipes `output()` waits on.
    let stdio = std::fs::File::create(t.path().join("container.out")).unwrap();
    let status = shim(&root)
        .arg("--proxy-dir")
        .arg(&proxy_dir)
        .arg("--policy")
        .arg(&policy)
        .args(["create", "--bundle"])
        .arg(&b)
        .arg("--pid-file")
        .arg(&pidfile)
        .arg(&id)
        .stdout(stdio.try_clone().unwrap())
        .stderr(stdio)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(t.path().join("container.out")).unwrap()
    );
    wait_status(&root, &id, "created");
    assert!(std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse::<u32>()
        .is_ok());
    run(shim(&root).args(["start", &id]), true);
    wait_status(&root, &id, "running");
    // exec gets the same policy, without being told.
    let out = run(shim(&root).args(["exec", &id, "/bin/probe"]), true);
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    p.assert_workspace();
    assert_eq!(p.get("proxy"), PROXIED);
    // ... even when it asks to be root with every capability.
    let out = run(
        shim(&root).args([
            "exec",
            "--user",
            "0:0",
            "--cap",
            "CAP_SYS_ADMIN",
            &id,
            "/bin/probe",
        ]),
        true,
    );
    Probe::parse(&String::from_utf8_lossy(&out.stdout)).assert_workspace();
    // ps and list see it.
    let out = run(shim(&root).args(["ps", "--format", "json", &id]), true);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with('['));
    let out = run(shim(&root).args(["list", "--format", "json"]), true);
    let l: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(l[0]["policy"], "workspace");
    assert_eq!(l[0]["status"], "running");
    run(shim(&root).args(["kill", &id, "KILL"]), true);
    wait_status(&root, &id, "stopped");
    run(shim(&root).args(["delete", &id]), true);
    assert!(!root.join("semble").join(&id).exists());
    assert!(!root.join("runc").join(&id).exists());
    assert_eq!(std::fs::read(b.join("config.json")).unwrap(), original);
    let out = run(shim(&root).args(["state", &id]), false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn explain_bundle_says_what_a_bundle_gets() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["true"]);
    edit_config(&b, |c| {
        c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"})
    });
    let out = run(
        shim(&t.path().join("state"))
            .args(["explain-bundle"])
            .arg(&b),
        true,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("policy   workspace (annotation semble.dev/policy"),
        "{text}"
    );
    assert!(text.contains("landlock"), "{text}");
    assert!(text.contains("* user"), "{text}");
    let out = run(
        shim(&t.path().join("state"))
            .args(["explain-bundle", "--format", "json"])
            .arg(&b),
        true,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policy"], "workspace");
    assert!(v["controls"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["control"] == "seccomp"));
}

#[test]
fn features_report_what_semble_enforces() {
    let out = run(Command::new(bin("semble-shim")).arg("features"), true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["annotations"]["dev.semble.enforces"]
        .as_str()
        .unwrap()
        .contains("landlock"));
    assert!(v["ociVersionMax"].is_string());
}

#[test]
fn a_kept_network_namespace_is_cut_by_landlock() {
    // The workspace policy accepts ingress, so a network namespace the runtime made is kept;
    // its TCP must then be cut by Landlock. The namespace here is the test's own, with the
    // metadata address as a decoy on loopback and a recorder behind it.
    require_root();
    let t = tempfile::tempdir().unwrap();
    let ns = TestNetns::new(&["169.254.169.254/32"]);
    let hits = ns.recorder("169.254.169.254:80".parse().unwrap());
    let b = bundle(&t.path().join("bundle"), &["/bin/probe"]);
    edit_config(&b, |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = serde_json::json!(ns.path());
            }
        }
    });
    let proxy_dir = t.path().join("proxy");
    let _proxy = FakeProxy::start(&proxy_dir, "workspace");
    let out = run(
        shim(&t.path().join("state"))
            .arg("--proxy-dir")
            .arg(&proxy_dir)
            .arg("--policy")
            .arg(policy_dir().join("workspace.yaml"))
            .args(["run", "-b"])
            .arg(&b)
            .arg(unique("netns")),
        true,
    );
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    p.assert_workspace();
    assert_eq!(
        p.get("connect_metadata"),
        "EACCES",
        "Landlock must refuse the connect before any packet"
    );
    assert_eq!(p.get("proxy"), PROXIED, "the proxy port stays reachable");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the decoy metadata address was reached"
    );
    // The recorder does record: a connection from outside the sandbox counts.
    ns.connect("169.254.169.254:80".parse().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while hits.load(std::sync::atomic::Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}
