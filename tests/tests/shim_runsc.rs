//! semble-shim with the gVisor backend (a runsc built from Debian's sources by
//! `dev/build-runsc`): the same scenarios as with runc, checked from inside the sandbox. gVisor
//! runs here only with `--platform=ptrace` (this VM's kvm hangs; this runsc has no systrap),
//! which is runsc's default in this release.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use semble_tests::scenarios::*;
use semble_tests::*;

const BACKEND: &str = "runsc";

#[test]
fn workspace_policy_is_enforced() {
    workspace_enforced(BACKEND);
}

#[test]
fn a_proxy_that_is_down_answers_502() {
    proxy_down_is_a_502(BACKEND);
}

#[test]
fn the_real_proxy_decides_behind_the_bridge() {
    real_proxy_decides(BACKEND);
}

#[test]
fn lifecycle_create_start_state_exec_ps_kill_delete() {
    lifecycle(BACKEND);
}

#[test]
fn a_kept_network_namespace_is_refused_outside_pods() {
    // gVisor cannot cut a kept network's egress on the node (no Landlock): fail closed.
    require_root();
    let t = tempfile::tempdir().unwrap();
    let ns = TestNetns::new(&[]);
    let b = bundle(&t.path().join("bundle"), &["/bin/probe"]);
    edit_config(&b, |c| {
        c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"});
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = serde_json::json!(ns.path());
            }
        }
    });
    let out =
        run(shim_for(&t.path().join("state"), BACKEND).args(["create", "-b"]).arg(&b).arg(unique("netns")), false);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("gVisor cannot cut its egress"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn podman_run() {
    semble_tests::scenarios::podman_run(BACKEND);
}

#[test]
fn podman_exec_kill_rm() {
    semble_tests::scenarios::podman_exec_kill_rm(BACKEND);
}

#[test]
fn ctr_run() {
    semble_tests::scenarios::ctr_run(BACKEND);
}

#[test]
fn ctr_exec_kill_delete() {
    semble_tests::scenarios::ctr_exec_kill_delete(BACKEND);
}
