//! Podman drives semble-shim (`podman --runtime`) with the runc backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use semble_tests::*;

#[test]
fn podman_run_under_the_workspace_policy() {
    scenarios::podman_run("runc");
}

#[test]
fn podman_exec_kill_and_rm() {
    scenarios::podman_exec_kill_rm("runc");
}

#[test]
fn podman_refusal_is_one_clear_line() {
    let p = Podman::start(policy_dir());
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
    assert!(stderr.contains("unknown policy `missing-policy`"), "{stderr}");
}
