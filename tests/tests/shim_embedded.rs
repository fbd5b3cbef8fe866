//! semble-shim with the embedded backend (youki's libcontainer, in-process): the same scenarios
//! as with runc, checked from inside the container.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use semble_tests::scenarios::*;

const BACKEND: &str = "embedded";

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
fn a_kept_network_namespace_is_cut_by_landlock() {
    kept_netns_is_cut(BACKEND);
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
