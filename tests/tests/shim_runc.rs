//! semble-shim with the runc backend: every scenario, checked from inside the container.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::process::Command;

use semble_tests::scenarios::*;
use semble_tests::*;

const BACKEND: &str = "runc";

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
    assert_eq!(p.get("uid"), "0");
    assert_eq!(p.get("NoNewPrivs"), "1");
    assert_eq!(p.get("Seccomp"), "2");
    assert_eq!(p.get("raw_socket"), "EPERM");
    assert_eq!(p.get("unshare_user"), "EPERM");
    assert_eq!(p.get("keyctl"), "EPERM");
    assert_eq!(p.get("read_secret"), "ok", "the built-in default has no Landlock rules");
}

#[test]
fn explain_bundle_says_what_a_bundle_gets() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["true"]);
    edit_config(&b, |c| c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"}));
    let out = run(shim_for(&t.path().join("state"), BACKEND).args(["explain-bundle"]).arg(&b), true);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("policy   workspace (annotation semble.dev/policy"), "{text}");
    assert!(text.contains("landlock"), "{text}");
    assert!(text.contains("* /process/user/uid"), "{text}");
    assert!(text.contains("[clamp]"), "every change names its row's action: {text}");
    let out =
        run(shim_for(&t.path().join("state"), BACKEND).args(["explain-bundle", "--format", "json"]).arg(&b), true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policy"], "workspace");
    assert_eq!(v["backend"], "runc");
    assert!(v["controls"].as_array().unwrap().iter().any(|c| c["control"] == "seccomp"));
    let caps =
        v["changes"].as_array().unwrap().iter().find(|c| c["field"] == "/process/capabilities/bounding").unwrap();
    assert_eq!(caps["action"], "clamp", "{caps}");
    assert_eq!(caps["enforced"], serde_json::json!(["CAP_CHOWN", "CAP_DAC_OVERRIDE"]));
}

#[test]
fn features_report_what_semble_enforces() {
    let out = run(Command::new(bin("semble-shim")).arg("features"), true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["annotations"]["dev.semble.enforces"].as_str().unwrap().contains("landlock"));
    assert!(v["annotations"]["dev.semble.backends"].as_str().unwrap().contains("embedded"));
    assert!(v["ociVersionMax"].is_string());
}

#[test]
fn a_pod_container_gets_its_sandboxs_policy_whatever_its_annotation_says() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("state");
    let sandbox = unique("sb");
    let sb = bundle(&t.path().join("sandbox"), &["sleep", "60"]);
    edit_config(&sb, |c| {
        c["annotations"] = serde_json::json!({
            "io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.cri.sandbox-id": sandbox,
            "semble.dev/policy": "workspace",
        })
    });
    let log = t.path().join("shim.log");
    // `create` leaves the container holding its stdio: give it none, and read the shim's log.
    let create = |bundle: &std::path::Path, id: &str| {
        let status = shim_for(&root, BACKEND)
            .arg("--log")
            .arg(&log)
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "create {id}: {}", std::fs::read_to_string(&log).unwrap_or_default());
    };
    create(&sb, &sandbox);
    // A container of that pod whose own annotation names a laxer policy.
    let ctr = unique("ctr");
    let cb = bundle(&t.path().join("container"), &["/bin/probe"]);
    edit_config(&cb, |c| {
        c["annotations"] = serde_json::json!({
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-id": sandbox,
            "semble.dev/policy": "llm-server",
        })
    });
    create(&cb, &ctr);
    let stored = std::fs::read_to_string(root.join("semble").join(&ctr).join("policy.yaml")).unwrap();
    assert!(stored.contains("name: workspace"), "the container must get the pod's policy:\n{stored}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("`llm-server` ignored"), "the ignored annotation is logged: {logged}");
    // Pod annotations naming a container that is no pod sandbox (anyone can write them, and
    // an image can carry them): not a pod's container, so no other container's policy.
    let plain = unique("plain");
    let pb = bundle(&t.path().join("plain"), &["sleep", "60"]);
    edit_config(&pb, |c| c["annotations"] = serde_json::json!({"semble.dev/policy": "workspace"}));
    create(&pb, &plain);
    let forger = unique("forger");
    let fb = bundle(&t.path().join("forger"), &["/bin/probe"]);
    edit_config(&fb, |c| {
        c["annotations"] = serde_json::json!({
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-id": plain,
            "semble.dev/policy": "llm-server",
        })
    });
    create(&fb, &forger);
    let stored = std::fs::read_to_string(root.join("semble").join(&forger).join("policy.yaml")).unwrap();
    assert!(stored.contains("name: llm-server"), "a forged pod member took another container's policy:\n{stored}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("carries pod annotations"), "{logged}");
    for id in [&forger, &plain, &ctr, &sandbox] {
        run(shim_for(&root, BACKEND).args(["delete", "--force"]).arg(id), true);
    }
}
