//! `semble-policy lint --format sarif` validates against the SARIF 2.1.0 JSON schema (the OASIS
//! schema, rtm.5, installed by `dev/install-packages`), checked with the `jsonschema` Python
//! package from the same tools venv.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::process::Command;

use semble_tests::{bin, workspace};

#[test]
fn sarif_output_validates_against_the_sarif_2_1_0_schema() {
    let schema = std::path::Path::new(semble_tests::TOOLS).join("share/sarif-2.1.0-rtm.5.json");
    assert!(schema.is_file(), "{} is missing: run `dev/install-packages`", schema.display());
    let python = semble_tests::require_py_tool("python");
    let dir = tempfile::tempdir().unwrap();
    // Findings of several kinds: Compose, seccomp, Kubernetes.
    let out = Command::new(bin("semble-policy"))
        .args(["lint", "--format", "sarif", "lint/tests/fixtures"])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let sarif = dir.path().join("out.sarif");
    std::fs::write(&sarif, &out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["runs"][0]["results"].as_array().unwrap().len() >= 10);
    let check = "import json, sys, jsonschema\n\
                 schema = json.load(open(sys.argv[1]))\n\
                 doc = json.load(open(sys.argv[2]))\n\
                 jsonschema.validators.validator_for(schema)(schema).validate(doc)\n\
                 print('valid')\n";
    let out = Command::new(&python).arg("-c").arg(check).arg(schema.as_path()).arg(&sarif).output().unwrap();
    assert!(
        out.status.success(),
        "SARIF does not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And a broken document does not (the check can fail).
    let mut bad = v.clone();
    bad["runs"][0]["results"][0]["level"] = serde_json::json!("fatal");
    std::fs::write(&sarif, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = Command::new(&python).arg("-c").arg(check).arg(schema.as_path()).arg(&sarif).output().unwrap();
    assert!(!out.status.success(), "an invalid level must be rejected");
}
