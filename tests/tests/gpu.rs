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

#[test]
fn doctor_reports_the_cdi_specs_hooks_and_what_the_gpu_policy_grants() {
    use semble_tests::*;
    require_root();
    let g = FakeGpu::new();
    let specs = tempfile::tempdir().unwrap();
    std::fs::write(specs.path().join("nvidia.yaml"), g.cdi_spec(None)).unwrap();
    let doctor = |extra: &[&str]| {
        let out = run(
            std::process::Command::new(bin("semble-shim"))
                .arg("--policy-dir")
                .arg(workspace().join("examples"))
                .args(extra)
                .arg("doctor")
                .arg("--cdi-spec-dir")
                .arg(specs.path())
                .args(["--format", "json"]),
            false,
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["checks"].as_array().unwrap().clone()
    };
    let find = |checks: &[serde_json::Value], name: &str| {
        checks.iter().find(|c| c["name"] == name).cloned().unwrap_or_else(|| panic!("no `{name}` in {checks:#?}"))
    };
    let checks = doctor(&[]);
    let spec = find(&checks, "cdi spec");
    assert_eq!(spec["status"], "warn", "{spec:#}");
    assert!(spec["detail"].as_str().unwrap().contains("nvidia.com/gpu (3 device(s): 0, all, evil)"), "{spec:#}");
    assert!(spec["fix"].as_str().unwrap().contains(&format!("--allow-hook {}", g.hook().display())), "{spec:#}");
    let grant = find(&checks, "gpu policy llm-server");
    assert!(grant["detail"].as_str().unwrap().contains("/proc (CUDA names its threads there)"), "{grant:#}");
    // This machine has no GPU: said, as a warning (a GPU policy is installed), never a failure.
    assert_eq!(find(&checks, "gpu devices")["status"], "warn");
    let gpu_failures: Vec<&serde_json::Value> =
        checks.iter().filter(|c| c["name"].as_str().unwrap().starts_with("gpu") && c["status"] == "fail").collect();
    assert!(gpu_failures.is_empty(), "{gpu_failures:#?}");
    let allowed = doctor(&["--allow-hook", g.hook().to_str().unwrap()]);
    assert_eq!(find(&allowed, "cdi spec")["status"], "ok");
    // Whether Landlock refusals can be explained here (ABI 7 on this kernel).
    let ll = find(&checks, "landlock refusals");
    assert!(ll["detail"].as_str().unwrap().contains("explained"), "{ll:#}");
}
