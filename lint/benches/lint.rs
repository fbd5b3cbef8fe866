//! `semble-policy lint` over 1,000 generated manifests (Deployments, NetworkPolicies, Compose
//! files, seccomp profiles, policies in rotation), from text to findings.
//!
//! ```sh
//! cargo bench -p semble-lint --bench lint
//! ```
//!
//! Goal (issue 6): under 1 s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark: failing loudly is right

use std::time::Instant;

fn manifest(i: usize) -> String {
    match i % 5 {
        0 => format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{i}, namespace: ns-{}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}, annotations: {{semble.dev/policy: workspace}}}}\n    spec:\n      runtimeClassName: semble-gvisor\n      securityContext: {{runAsNonRoot: true, runAsUser: 1000, seccompProfile: {{type: RuntimeDefault}}}}\n      containers:\n        - name: app\n          image: registry.example/app:{i}\n          env: [{{name: MODE, value: prod}}, {{name: GF_SECURITY_ADMIN_PASSWORD, value: admin}}]\n          ports: [{{containerPort: 8080, name: http}}]\n          securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {{drop: [ALL], add: [SETUID]}}}}\n          resources: {{limits: {{cpu: '1', memory: 1Gi}}}}\n        - name: sidecar\n          image: busybox:latest\n", i % 50),
        1 => format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np-{i}}}\nspec:\n  podSelector: {{matchLabels: {{app: app-{i}}}}}\n  policyTypes: [Ingress, Egress]\n  egress:\n    - to: [{{ipBlock: {{cidr: 0.0.0.0/0}}}}]\n      ports: [{{port: 443}}]\n    - ports: [{{port: 53, protocol: UDP}}]\n  ingress:\n    - from: [{{namespaceSelector: {{matchLabels: {{team: a}}}}, podSelector: {{matchLabels: {{role: api}}}}}}]\n"),
        2 => format!("services:\n  web-{i}:\n    image: nginx\n    ports: [\"8080:80\"]\n    privileged: true\n  db-{i}:\n    image: postgres:16\n    environment: {{POSTGRES_PASSWORD: postgres}}\n    network_mode: host\n"),
        3 => "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": [\"SCMP_ARCH_X86_64\"], \"syscalls\": [{\"names\": [\"read\", \"write\", \"open\", \"close\", \"stat\", \"fstat\"], \"action\": \"SCMP_ACT_ALLOW\"}]}".into(),
        _ => std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/workspace.yaml")).unwrap(),
    }
}

fn main() {
    let files: Vec<(String, String)> = (0..1000).map(|i| (format!("gen/{i}.yaml"), manifest(i))).collect();
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let t = Instant::now();
        count = 0;
        for (name, text) in &files {
            count += semble_lint::lint_text(name, text).unwrap().len();
        }
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "1000 manifests ({} KiB): {count} findings, median {:.1?} (min {:.1?}, max {:.1?}) over 5 runs, file by file",
        bytes / 1024,
        times[2],
        times[0],
        times[4]
    );
    // As `semble-policy lint DIR` does: every file at once, with the rules that look across files.
    let mut all = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        count = semble_lint::lint_all(&files).unwrap().len();
        all.push(t.elapsed());
    }
    all.sort();
    println!(
        "1000 manifests together: {count} findings, median {:.1?} (min {:.1?}, max {:.1?}) over 5 runs",
        all[2], all[0], all[4]
    );
}
