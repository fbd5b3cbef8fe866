//! Podman drives semble-shim (`podman --runtime`): run, exec, kill, rm, and the annotation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::time::{Duration, Instant};

use semble_tests::*;

/// Private Podman storage per test, removed when the test ends.
fn podman() -> Podman {
    Podman::start()
}

#[test]
fn podman_run_under_the_workspace_policy() {
    let p = podman();
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
    probe.assert_workspace();
    assert_eq!(probe.get("proxy"), PROXIED);
}

#[test]
fn podman_exec_kill_and_rm() {
    let p = podman();
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
    Probe::parse(&String::from_utf8_lossy(&out.stdout)).assert_workspace();
    // `podman exec --user root` cannot escape the policy's user.
    let out = run(
        p.cmd().args(["exec", "--user", "0", &name, "/bin/probe"]),
        true,
    );
    Probe::parse(&String::from_utf8_lossy(&out.stdout)).assert_workspace();
    run(p.cmd().args(["kill", &name]), true);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run(
            p.cmd()
                .args(["inspect", "--format", "{{.State.Status}}", &name]),
            true,
        );
        if String::from_utf8_lossy(&out.stdout).trim() == "exited" {
            break;
        }
        assert!(Instant::now() < deadline, "container did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    let id = String::from_utf8_lossy(
        &run(
            p.cmd().args(["inspect", "--format", "{{.Id}}", &name]),
            true,
        )
        .stdout,
    )
    .trim()
    .to_string();
    run(p.cmd().args(["rm", &name]), true);
    assert!(
        !std::path::Path::new("/run/semble-shim/semble")
            .join(&id)
            .exists(),
        "semble's record outlived the container"
    );
}

#[test]
fn podman_refusal_is_one_clear_line() {
    let p = podman();
    let out = run(
        p.cmd()
            .args(["run", "--rm"])
            .args(Podman::RUN)
            .args(["--annotation", "semble.dev/policy=missing-policy"])
            .arg(&p.image)
            .arg("true"),
        false,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown policy `missing-policy`"),
        "{stderr}"
    );
}
