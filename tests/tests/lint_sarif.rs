//! `semble-policy lint --format sarif` and `semble-policy explain --k8s --diff --format sarif`
//! validate against the SARIF 2.1.0 JSON schema (the OASIS schema, rtm.5, installed by
//! `dev/install-packages`), checked with the `jsonschema` Python package from the same tools venv.

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

#[test]
fn diff_sarif_validates_against_the_sarif_2_1_0_schema() {
    let schema = std::path::Path::new(semble_tests::TOOLS).join("share/sarif-2.1.0-rtm.5.json");
    assert!(schema.is_file(), "{} is missing: run `dev/install-packages`", schema.display());
    let python = semble_tests::require_py_tool("python");
    let dir = tempfile::tempdir().unwrap();
    let deploy = |name: &str| {
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: c, image: x:1}}]}}\n")
    };
    let deny = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n";
    let open = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open, namespace: shop}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n  ingress: [{from: [{podSelector: {}}]}]\n  egress: [{to: [{podSelector: {}}], ports: [{port: 5432}]}]\n";
    for (sub, extra) in [("old", ""), ("new", open)] {
        let d = dir.path().join(sub);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("apps.yaml"), format!("{}---\n{}", deploy("api"), deploy("db"))).unwrap();
        std::fs::write(d.join("np.yaml"), format!("{deny}{extra}")).unwrap();
    }
    let out = Command::new(bin("semble-policy"))
        .args(["explain", "--k8s", "--diff"])
        .arg(dir.path().join("old"))
        .arg(dir.path().join("new"))
        .args(["--format", "sarif"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"][0]["results"].as_array().unwrap().len(), 2, "api => db and db => api: {v}");
    let sarif = dir.path().join("diff.sarif");
    std::fs::write(&sarif, &out.stdout).unwrap();
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
}
