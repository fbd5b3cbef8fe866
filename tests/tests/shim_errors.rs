//! Bad input: one clear line, a non-zero exit, and nothing left behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::Path;
use std::process::{Command, Output};

use semble_tests::*;

/// Assert a failed create: exit 1, exactly one line on stderr containing `needle`, a runc-style
/// JSON error line in the log, no semble record, no runc container, the bundle untouched.
fn assert_refused(out: &Output, needle: &str, root: &Path, bundle: Option<(&Path, &[u8])>, log: &Path) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let ours: Vec<&str> = stderr.lines().filter(|l| l.starts_with("semble-shim: error:")).collect();
    assert_eq!(ours.len(), 1, "{stderr}");
    assert!(ours[0].contains(needle), "expected `{needle}` in: {}", ours[0]);
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let last = log.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|_| panic!("not a JSON log line: {last}"));
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains(needle));
    assert_eq!(
        std::fs::read_dir(root.join("semble")).map(|d| d.count()).unwrap_or(0),
        0,
        "a semble record was left behind"
    );
    assert_eq!(
        std::fs::read_dir(root.join("runc")).map(|d| d.count()).unwrap_or(0),
        0,
        "a runc container was left behind"
    );
    if let Some((b, original)) = bundle {
        assert_eq!(std::fs::read(b.join("config.json")).unwrap(), original, "the bundle was modified");
        assert!(!b.join("config.semble-original.json").exists());
        assert!(!b.join("rootfs/.semble").exists());
    }
}

fn create(root: &Path, log: &Path, extra: &[&str], bundle: &Path) -> Command {
    let mut c = shim(root);
    c.arg("--log")
        .arg(log)
        .args(["--log-format", "json"])
        .args(extra)
        .args(["create", "--bundle"])
        .arg(bundle)
        .arg(unique("bad"));
    c
}

#[test]
fn missing_bundle() {
    let t = tempfile::tempdir().unwrap();
    let (root, log) = (t.path().join("state"), t.path().join("log.json"));
    let out = run(&mut create(&root, &log, &[], &t.path().join("nope")), false);
    assert_refused(&out, "does not exist; pass --bundle", &root, None, &log);
}

#[test]
fn malformed_config() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["true"]);
    std::fs::write(b.join("config.json"), "{\"ociVersion\": \"1.0.2\",\n  \"process\": {,}\n}").unwrap();
    let original = std::fs::read(b.join("config.json")).unwrap();
    let (root, log) = (t.path().join("state"), t.path().join("log.json"));
    let out = run(&mut create(&root, &log, &[], &b), false);
    assert_refused(
        &out,
        "config.json` at line 2 column 15: key must be a string; fix the JSON",
        &root,
        Some((&b, &original)),
        &log,
    );
}

#[test]
fn unknown_policy_name() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["true"]);
    edit_config(&b, |c| c["annotations"] = serde_json::json!({"semble.dev/policy": "no-such-policy"}));
    let original = std::fs::read(b.join("config.json")).unwrap();
    let (root, log) = (t.path().join("state"), t.path().join("log.json"));
    let out = run(&mut create(&root, &log, &[], &b), false);
    assert_refused(&out, "unknown policy `no-such-policy`", &root, Some((&b, &original)), &log);
}

#[test]
fn landlock_required_where_the_kernel_has_none() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["true"]);
    let original = std::fs::read(b.join("config.json")).unwrap();
    let (root, log) = (t.path().join("state"), t.path().join("log.json"));
    let mut cmd = create(&root, &log, &["--policy", policy_dir().join("workspace.yaml").to_str().unwrap()], &b);
    let out = run(without_landlock(&mut cmd), false);
    assert_refused(
        &out,
        "requires Landlock (filesystem.enforcement: required) and this host has none",
        &root,
        Some((&b, &original)),
        &log,
    );
}

#[test]
fn runc_missing_and_no_fallback() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["true"]);
    let original = std::fs::read(b.join("config.json")).unwrap();
    let (root, log) = (t.path().join("state"), t.path().join("log.json"));
    // llm-server without its fallback (the example falls back to the embedded runtime).
    let policy = t.path().join("llm-server.yaml");
    let text = std::fs::read_to_string(policy_dir().join("llm-server.yaml")).unwrap();
    let text: String =
        text.lines().filter(|l| !l.trim_start().starts_with("fallback:")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&policy, text).unwrap();
    let out = run(
        &mut create(&root, &log, &["--runc", "/nonexistent/runc", "--policy", policy.to_str().unwrap()], &b),
        false,
    );
    assert_refused(
        &out,
        "cannot run policy `llm-server`: runc is not installed (looked for `/nonexistent/runc`)",
        &root,
        Some((&b, &original)),
        &log,
    );
}

#[test]
fn refused_container_request_leaves_nothing() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["true"]);
    edit_config(&b, |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"destination": "/host", "type": "bind", "source": "/", "options": ["rbind"]}));
    });
    let original = std::fs::read(b.join("config.json")).unwrap();
    let (root, log) = (t.path().join("state"), t.path().join("log.json"));
    let out =
        run(&mut create(&root, &log, &["--policy", policy_dir().join("workspace.yaml").to_str().unwrap()], &b), false);
    assert_refused(&out, "bind mount of host `/` into `/host` is refused", &root, Some((&b, &original)), &log);
}

#[test]
fn backend_failure_is_rolled_back() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("b"), &["true"]);
    // runc refuses a hostname without a UTS namespace of the container's own, after semble has
    // prepared everything (semble does not judge the UTS namespace).
    edit_config(&b, |c| {
        c["hostname"] = serde_json::json!("x");
        c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "uts");
    });
    let original = std::fs::read(b.join("config.json")).unwrap();
    let (root, log) = (t.path().join("state"), t.path().join("log.json"));
    let out =
        run(&mut create(&root, &log, &["--policy", policy_dir().join("workspace.yaml").to_str().unwrap()], &b), false);
    assert_refused(&out, "runc could not create container", &root, Some((&b, &original)), &log);
}

#[test]
fn unknown_commands_and_flags_are_usage_errors() {
    let out = run(Command::new(bin("semble-shim")).args(["create", "--no-such-flag", "x"]), false);
    assert_eq!(out.status.code(), Some(2));
    let out = run(Command::new(bin("semble-shim")).args(["checkpoint", "x"]), false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported"));
}
