//! containerd drives semble-shim through its runc shim: `ctr run --runc-binary`, and the
//! `BinaryName` runtime option from a config file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::time::{Duration, Instant};

use semble_tests::*;

struct Env {
    containerd: Containerd,
    image: String,
    _proxy: FakeProxy,
    _dir: tempfile::TempDir,
}

/// A containerd of its own per test, so that it is stopped (and its mounts undone) when the
/// test ends.
fn env() -> Env {
    {
        require_tool("ctr", "containerd");
        let podman = Podman::start();
        let dir = tempfile::tempdir().unwrap();
        let proxy_dir = dir.path().join("proxy");
        let containerd = Containerd::start(&[
            ("SEMBLE_POLICY_DIR", &policy_dir()),
            ("SEMBLE_PROXY_DIR", &proxy_dir),
        ]);
        let archive = containerd.dir().join("image.tar");
        podman.save_oci(&archive);
        run(
            containerd
                .ctr()
                .args(["images", "import", "--base-name", "localhost/semble-probe"])
                .arg(&archive),
            true,
        );
        let out = run(containerd.ctr().args(["images", "list", "-q"]), true);
        let image = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("semble-probe"))
            .unwrap_or("localhost/semble-probe:test")
            .to_string();
        let proxy = FakeProxy::start(&proxy_dir, "workspace");
        // The podman storage is only needed for the archive.
        drop(podman);
        Env {
            containerd,
            image,
            _proxy: proxy,
            _dir: dir,
        }
    }
}

#[test]
fn ctr_run_with_runc_binary() {
    let e = env();
    let id = unique("ctr");
    let out = run(
        e.containerd
            .ctr()
            .args(["run", "--rm", "--runc-binary"])
            .arg(bin("semble-shim"))
            .args([
                "--annotation",
                "semble.dev/policy=workspace",
                &e.image,
                &id,
                "/bin/probe",
            ]),
        true,
    );
    let p = Probe::parse(&String::from_utf8_lossy(&out.stdout));
    p.assert_workspace();
    assert_eq!(p.get("proxy"), PROXIED);
}

#[test]
fn ctr_exec_kill_delete() {
    let e = env();
    let id = unique("ctrlife");
    run(
        e.containerd
            .ctr()
            .args(["run", "-d", "--runc-binary"])
            .arg(bin("semble-shim"))
            .args([
                "--annotation",
                "semble.dev/policy=workspace",
                &e.image,
                &id,
                "sleep",
                "300",
            ]),
        true,
    );
    let out = run(
        e.containerd
            .ctr()
            .args(["task", "exec", "--exec-id", "probe", &id, "/bin/probe"]),
        true,
    );
    Probe::parse(&String::from_utf8_lossy(&out.stdout)).assert_workspace();
    run(
        e.containerd
            .ctr()
            .args(["task", "kill", "--signal", "SIGKILL", &id]),
        true,
    );
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
    let records = std::path::Path::new("/run/containerd/runc/semble-test/semble").join(&id);
    assert!(
        !records.exists(),
        "semble's record outlived the container: {}",
        records.display()
    );
}

#[test]
fn ctr_refusal_reaches_the_user() {
    let e = env();
    let id = unique("ctrbad");
    let out = run(
        e.containerd
            .ctr()
            .args(["run", "--rm", "--runc-binary"])
            .arg(bin("semble-shim"))
            .args([
                "--annotation",
                "semble.dev/policy=nope",
                &e.image,
                &id,
                "true",
            ]),
        false,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown policy `nope`"), "{stderr}");
    let _ = run(
        e.containerd.ctr().args(["containers", "delete", &id]),
        false,
    );
}
