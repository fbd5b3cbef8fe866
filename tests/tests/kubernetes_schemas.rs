//! The Kubernetes output of every example policy, in every placement, validated against the
//! upstream OpenAPI schemas by `kubernetes-validate --strict` (unknown fields are errors), at the
//! oldest and the newest Kubernetes version semble targets.
//!
//! `kubernetes-validate` comes from PyPI; `dev/install-packages` installs it into
//! `/opt/semble-tools` (CI runs that), so a missing tool is a failure, not a skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::process::Command;

fn example(name: &str) -> String {
    std::fs::read_to_string(semble_tests::workspace().join(format!("examples/{name}.yaml"))).unwrap()
}

#[test]
fn every_emitted_object_passes_strict_schema_validation() {
    let tool = semble_tests::require_py_tool("kubernetes-validate");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["workspace", "llm-server", "data-processor"] {
        let src = example(name);
        let mut variants = vec![("default", src.clone(), semble_k8s::Options::default())];
        let sidecar = if src.contains("placement: gateway") {
            src.replace("placement: gateway", "placement: sidecar")
        } else {
            src.replace("    mode: proxy\n", "    mode: proxy\n    proxy: {placement: sidecar}\n")
        };
        variants.push(("sidecar", sidecar, semble_k8s::Options::default()));
        variants.push((
            "cluster-ip",
            src.clone(),
            semble_k8s::Options { proxy_cluster_ip: Some("10.96.0.53".into()), ..semble_k8s::Options::default() },
        ));
        for (variant, text, opts) in variants {
            let policy = semble_policy::parse(&text).unwrap().policy;
            let out = semble_k8s::objects(&policy, &opts).unwrap();
            let path = dir.path().join(format!("{name}.{variant}.yaml"));
            std::fs::write(&path, out.to_yaml()).unwrap();
            files.push((path, out.docs.len()));
        }
    }
    for version in ["1.33.0", "1.37.0"] {
        for (path, count) in &files {
            let out = Command::new(&tool).args(["--strict", "-k", version]).arg(path).output().unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "{} against {version}:\n{text}", path.display());
            let passed = text.lines().filter(|l| l.contains(" passed for resource ")).count();
            assert_eq!(passed, *count, "{} against {version}: every document must be checked\n{text}", path.display());
        }
    }
}
