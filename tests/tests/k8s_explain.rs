//! Issue 23, items 8 and 10, through the real binaries: `semble-policy compile --target
//! kubernetes` writes the objects, `semble-policy explain --k8s` answers who can reach whom
//! (with a kube-dns Deployment beside them, as every cluster has one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

const COREDNS: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: coredns, namespace: kube-system}\nspec:\n  selector: {matchLabels: {k8s-app: kube-dns}}\n  template:\n    metadata: {labels: {k8s-app: kube-dns}}\n    spec: {containers: [{name: coredns, image: coredns}]}\n";

fn workspace_policy() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/workspace.yaml")).unwrap()
}

/// Compile `policy` (with extra compile flags) into a fresh directory beside a kube-dns.
fn compiled(policy: &str, flags: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy).unwrap();
    let out = dir.path().join("out");
    let o = Command::new(semble_tests::bin("semble-policy"))
        .args(["compile", file.to_str().unwrap(), "--target", "kubernetes", "--out", out.to_str().unwrap()])
        .args(flags)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(out.join("coredns.yaml"), COREDNS).unwrap();
    dir
}

/// `explain --k8s`: whether `from` may reach `to` on `port`, and the explanation.
fn explain(dir: &tempfile::TempDir, from: &str, to: &str, port: &str) -> (bool, String) {
    let o = Command::new(semble_tests::bin("semble-policy"))
        .args([
            "explain",
            "--k8s",
            dir.path().join("out").to_str().unwrap(),
            "--from",
            from,
            "--to",
            to,
            "--port",
            port,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    match o.status.code() {
        Some(0) => (true, text),
        Some(1) => (false, text),
        c => panic!("explain exited {c:?}: {text}{}", String::from_utf8_lossy(&o.stderr)),
    }
}

#[test]
fn dns_is_open_in_the_open_form_and_closed_in_the_closed_form() {
    let open = compiled(&workspace_policy(), &[]);
    let (allowed, text) = explain(&open, "sandboxes/workspace", "kube-system/coredns", "53/UDP");
    assert!(allowed, "{text}");
    let closed = workspace_policy().replace("    dns: true\n", "    dns: false\n");
    let closed = compiled(&closed, &["--proxy-cluster-ip", "10.96.0.53"]);
    for port in ["53/UDP", "53/TCP"] {
        let (allowed, text) = explain(&closed, "sandboxes/workspace", "kube-system/coredns", port);
        assert!(!allowed, "{port}: {text}");
    }
    let (allowed, text) = explain(&closed, "sandboxes/workspace", "semble-proxy/semble-proxy-workspace", "8080");
    assert!(allowed, "the closed form must still reach the proxy: {text}");
    let (allowed, _) = explain(&closed, "semble-proxy/semble-proxy-workspace", "kube-system/coredns", "53/UDP");
    assert!(allowed, "the gateway itself resolves the rules' names");
}

#[test]
fn the_gateway_reaches_a_rules_range_on_its_port_only_and_no_reserved_address() {
    let policy = workspace_policy().replace(
        "        credential: bedrock  # SigV4-signed by the proxy; the agent never holds AWS keys\n",
        "        credential: bedrock  # SigV4-signed by the proxy; the agent never holds AWS keys\n      - host: db.internal.example\n        ports: [5432]\n        allowAddresses: [10.20.0.0/16]\n",
    );
    assert!(policy.contains("db.internal.example"), "the example changed");
    let dir = compiled(&policy, &[]);
    let gw = "semble-proxy/semble-proxy-workspace";
    assert!(explain(&dir, gw, "10.20.0.5", "5432").0);
    let (allowed, text) = explain(&dir, gw, "10.20.0.5", "443");
    assert!(!allowed, "10.20/16 on 443: {text}");
    assert!(explain(&dir, gw, "52.94.0.1", "443").0);
    for reserved in ["0.1.2.3", "168.63.129.16", "192.0.0.192", "198.18.0.1", "224.0.0.1", "240.0.0.1", "2001::1"] {
        let (allowed, text) = explain(&dir, gw, reserved, "443");
        assert!(!allowed, "{reserved}: {text}");
    }
}
