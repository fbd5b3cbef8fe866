//! Landlock refusals explained through the kernel's audit records (Linux 6.15+; this kernel is
//! 6.18, with audit compiled in and off at boot). A container under the workspace policy reads
//! a path its policy does not list: the workload gets `EACCES`, and `semble-shim denials` names
//! the path, the right, the policy field and the fix; a path it lists still reads, and leaves no
//! line. With audit off and no `--enable-audit`, the refusal is the same and the denials say why
//! it is not explained. One test function: audit is one switch for the whole host.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use semble_tests::scenarios::shim_for;
use semble_tests::*;

const SCRIPT: &str = "cat /secret/file; cat /etc/passwd >/dev/null && echo listed-ok; echo done";

fn bundle_for(t: &Path, name: &str) -> std::path::PathBuf {
    let b = bundle(&t.join(name), &["sh", "-c", SCRIPT]);
    edit_config(&b, |c| c["annotations"] = json!({"semble.dev/policy": "workspace"}));
    b
}

/// The Landlock rows of `semble-shim denials ID --format json`, waiting up to 5 s for `want`.
fn landlock_rows(root: &Path, backend: &str, id: &str, want: usize) -> (Vec<Value>, Value) {
    let t0 = Instant::now();
    loop {
        let out = run(shim_for(root, backend).args(["denials", id, "--format", "json"]), true);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let rows: Vec<Value> =
            v["denials"].as_array().unwrap().iter().filter(|r| r["kind"] == "landlock").cloned().collect();
        if rows.len() >= want || t0.elapsed() > Duration::from_secs(5) {
            return (rows, v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn explained(backend: &'static str, t: &Path) {
    let root = t.join(format!("state-{backend}"));
    let b = bundle_for(t, &format!("b-{backend}"));
    let id = unique("ll");
    let out = run(
        shim_for(&root, backend)
            .args(["--enable-audit", "--proxy-dir"])
            .arg(t.join("proxy"))
            .args(["run", "-b"])
            .arg(&b)
            .arg(&id),
        false,
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("can't open '/secret/file': Permission denied"), "the workload sees EACCES: {text}");
    assert!(text.contains("listed-ok") && text.contains("done"), "a listed path still reads: {text}");
    assert!(audit_enabled(), "--enable-audit turned audit on");
    let (rows, all) = landlock_rows(&root, backend, &id, 1);
    assert_eq!(rows.len(), 1, "one Landlock refusal, the announcement left out: {all:#}");
    let r = &rows[0];
    assert_eq!(r["path"], "/secret/file", "{r:#}");
    assert_eq!(r["access"], "fs.read_file", "{r:#}");
    assert_eq!(r["fix"], "add `/secret/file` to spec.filesystem.readOnly", "{r:#}");
    assert!(r["rule"].as_str().unwrap().contains("no Landlock rule covers `/secret/file`"), "{r:#}");
    assert_eq!(r["programs"], json!(["cat"]), "{r:#}");
    // The text line names it the way the seccomp lines do.
    let table = run(shim_for(&root, backend).args(["denials", &id]), true);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("landlock:fs.read_file") && table.contains("on: /secret/file"), "{table}");
    // The overlay would allow it.
    let patch = run(shim_for(&root, backend).args(["denials", &id, "--patch"]), true);
    let patch = String::from_utf8_lossy(&patch.stdout);
    assert!(patch.contains("filesystem:") && patch.contains("readOnly:\n      - /secret/file"), "{patch}");
}

fn exec_explained(t: &Path) {
    // An `exec` process restricts itself too, and announces its own domain.
    let root = t.join("state-exec");
    let b = bundle(&t.join("b-exec"), &["sleep", "30"]);
    edit_config(&b, |c| c["annotations"] = json!({"semble.dev/policy": "workspace"}));
    let id = unique("llx");
    // Detached, its stdio not ours: a pipe would keep this test waiting for the container.
    let status = shim_for(&root, "runc")
        .args(["--enable-audit", "--proxy-dir"])
        .arg(t.join("proxy"))
        .args(["run", "-d", "-b"])
        .arg(&b)
        .arg(&id)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let out = run(shim_for(&root, "runc").args(["exec", &id, "cat", "/secret/file"]), false);
    assert!(!out.status.success(), "the exec process must be refused too");
    let (rows, all) = landlock_rows(&root, "runc", &id, 1);
    let log = std::fs::read_to_string(root.join("semble").join(&id).join("denials.log")).unwrap_or_default();
    let _ = run(shim_for(&root, "runc").args(["delete", "--force", &id]), false);
    assert_eq!(rows.len(), 1, "{all:#}\n{log}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rows[0]["path"], "/secret/file");
}

fn not_explained_without_audit(t: &Path) {
    set_audit(false);
    let root = t.join("state-off");
    let b = bundle_for(t, "b-off");
    let id = unique("llo");
    // Kept (`--keep`) so that `denials` can still read its supervisor's word.
    let out = run(
        shim_for(&root, "runc").arg("--proxy-dir").arg(t.join("proxy")).args(["run", "--keep", "-b"]).arg(&b).arg(&id),
        false,
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("can't open '/secret/file': Permission denied"), "still refused: {text}");
    assert!(!audit_enabled(), "semble never turns audit on by itself");
    let out = run(shim_for(&root, "runc").args(["denials", &id]), false);
    let _ = run(shim_for(&root, "runc").args(["delete", "--force", &id]), false);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("not explained: audit is off") && note.contains("--enable-audit"), "{note}");
}

#[test]
fn landlock_refusals_are_explained_through_audit() {
    require_root();
    let _restore = AuditState::save();
    let t = tempfile::tempdir().unwrap();
    not_explained_without_audit(t.path());
    explained("runc", t.path());
    explained("embedded", t.path());
    exec_explained(t.path());
}
