//! GPUs through the Container Device Interface, on a host without one (fake NVIDIA nodes made
//! with `mknod`, a fake driver library and `nvidia-ctk` hook): see `tests/src/gpu.rs`. The
//! check on a real GPU is `tests/gpu/run.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use semble_tests::gpu::*;

#[test]
fn runc_cdi_devices_arrive_under_the_gpu_policy_and_the_rest_is_refused() {
    cdi_through_the_shim("runc");
}

#[test]
fn embedded_cdi_devices_arrive_under_the_gpu_policy_and_the_rest_is_refused() {
    cdi_through_the_shim("embedded");
}

#[test]
fn podman_applies_a_cdi_spec_and_the_shim_judges_it() {
    cdi_through_podman();
}
