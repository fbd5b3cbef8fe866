//! The sandbox bypasses of the adversarial review, mounted for real under each backend where
//! the attack applies (see `tests/src/attacks.rs` for each attack and what must keep working).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use semble_tests::attacks::*;

#[test]
fn runc_a_workload_cannot_hijack_seccomp_refusals_after_the_supervisor_dies() {
    listener_hijack("runc");
}

#[test]
fn embedded_a_workload_cannot_hijack_seccomp_refusals_after_the_supervisor_dies() {
    listener_hijack("embedded");
}

#[test]
fn runsc_a_workload_cannot_create_a_seccomp_listener() {
    listener_hijack("runsc");
}

#[test]
fn runc_the_supervisor_serves_under_a_state_root_it_cannot_traverse() {
    supervisor_behind_an_untraversable_root("runc");
}

#[test]
fn embedded_the_supervisor_serves_under_a_state_root_it_cannot_traverse() {
    supervisor_behind_an_untraversable_root("embedded");
}

#[test]
fn runc_nothing_leaves_a_kept_network_namespace_but_the_resolver_proxy_and_ingress_replies() {
    egress_from_a_kept_namespace("runc");
}

#[test]
fn embedded_nothing_leaves_a_kept_network_namespace_but_the_resolver_proxy_and_ingress_replies() {
    egress_from_a_kept_namespace("embedded");
}

#[test]
fn runc_run_as_non_root_holds_with_setuid_granted() {
    identity_pinned("runc");
}

#[test]
fn embedded_run_as_non_root_holds_with_setuid_granted() {
    identity_pinned("embedded");
}

#[test]
fn runsc_run_as_non_root_holds_with_setuid_granted() {
    identity_pinned("runsc");
}

#[test]
fn runc_device_nodes_need_mknod() {
    device_nodes("runc");
}

#[test]
fn runsc_device_nodes_need_mknod_under_gvisor_too() {
    device_nodes("runsc");
}

#[test]
fn runc_host_mounts_are_judged_by_what_they_resolve_to() {
    host_mounts("runc");
}

#[test]
fn embedded_host_mounts_are_judged_by_what_they_resolve_to() {
    host_mounts("embedded");
}

#[test]
fn runsc_host_mounts_are_judged_by_what_they_resolve_to() {
    host_mounts("runsc");
}

#[test]
fn runc_gpu_devices_are_judged_by_number() {
    gpu_devices_by_number("runc");
}

#[test]
fn embedded_gpu_devices_are_judged_by_number() {
    gpu_devices_by_number("embedded");
}

#[test]
fn runc_hooks_in_the_request_do_not_run_on_the_host() {
    hooks("runc");
}

#[test]
fn runsc_hooks_in_the_request_do_not_run_on_the_host() {
    hooks("runsc");
}

#[test]
fn runc_the_request_cannot_raise_what_the_policy_holds() {
    request_limits("runc");
}

#[test]
fn embedded_the_request_cannot_raise_what_the_policy_holds() {
    request_limits("embedded");
}

#[test]
fn runc_cgroup_v2_files_cannot_lift_the_policys_limits() {
    unified_clamped("runc");
}

#[test]
fn runc_update_holds_to_the_policy() {
    update_clamped("runc");
}

#[test]
fn runc_a_forged_sandbox_annotation_gets_the_whole_policy() {
    forged_sandbox("runc");
}

#[test]
fn embedded_a_forged_sandbox_annotation_gets_the_whole_policy() {
    forged_sandbox("embedded");
}

#[test]
fn runc_workload_strings_cannot_write_lines_of_their_own() {
    workload_strings("runc");
}

#[test]
fn runc_other_local_users_reach_no_socket_of_a_container() {
    local_users("runc");
}

#[test]
fn runc_a_forged_pod_member_keeps_no_open_network() {
    forged_pod_member("runc");
}

#[test]
fn runsc_a_forged_pod_member_keeps_no_open_network() {
    forged_pod_member("runsc");
}
