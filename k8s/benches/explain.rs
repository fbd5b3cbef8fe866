//! `explain --k8s` over a generated cluster: 500 namespaces × 20 pods × 5 NetworkPolicies
//! (plus a monitoring namespace), from YAML text to the full connectivity table, and to the
//! np-guard connectivity list (`--format connlist`).
//!
//! ```sh
//! cargo bench -p semble-k8s --bench explain
//! ```
//!
//! Goal (issue 5): under 2 s on this machine for the whole run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark: failing loudly is right

use std::fmt::Write as _;
use std::time::Instant;

use semble_k8s::netpol::Cluster;

fn generate(namespaces: usize, pods: usize) -> String {
    let mut y = String::new();
    y.push_str("apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring, labels: {purpose: monitoring}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: prometheus, namespace: monitoring, labels: {app: prometheus}}\nspec: {containers: [{name: c, image: x}]}\n");
    let tiers = ["web", "api", "db"];
    for n in 0..namespaces {
        let ns = format!("team-{n}");
        writeln!(y, "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{team: t{}}}}}", n % 10)
            .unwrap();
        for p in 0..pods {
            let tier = tiers[p % 3];
            writeln!(
                y,
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{p}, namespace: {ns}, labels: {{app: app-{}, tier: {tier}}}}}\nspec: {{containers: [{{name: c, image: x, ports: [{{name: http, containerPort: 8080}}, {{name: metrics, containerPort: 9090}}]}}]}}",
                p % 5
            )
            .unwrap();
        }
        writeln!(y, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: default-deny, namespace: {ns}}}\nspec: {{podSelector: {{}}, policyTypes: [Ingress, Egress]}}").unwrap();
        writeln!(y, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: egress, namespace: {ns}}}\nspec:\n  podSelector: {{}}\n  policyTypes: [Egress]\n  egress:\n    - to: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}, podSelector: {{matchLabels: {{k8s-app: kube-dns}}}}}}]\n      ports: [{{port: 53, protocol: UDP}}, {{port: 53, protocol: TCP}}]\n    - to: [{{podSelector: {{}}}}]\n      ports: [{{port: 8080}}, {{port: 5432}}]").unwrap();
        writeln!(y, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: api-from-web, namespace: {ns}}}\nspec:\n  podSelector: {{matchLabels: {{tier: api}}}}\n  ingress: [{{from: [{{podSelector: {{matchLabels: {{tier: web}}}}}}], ports: [{{port: http}}]}}]").unwrap();
        writeln!(y, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: db-from-api, namespace: {ns}}}\nspec:\n  podSelector: {{matchLabels: {{tier: db}}}}\n  ingress: [{{from: [{{podSelector: {{matchExpressions: [{{key: tier, operator: In, values: [api]}}]}}}}], ports: [{{port: 5432}}]}}]").unwrap();
        writeln!(y, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: metrics, namespace: {ns}}}\nspec:\n  podSelector: {{}}\n  ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{purpose: monitoring}}}}, podSelector: {{matchLabels: {{app: prometheus}}}}}}], ports: [{{port: metrics}}]}}]").unwrap();
    }
    y
}

fn main() {
    let (namespaces, pods) = (500, 20);
    let text = generate(namespaces, pods);
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let docs: Vec<(String, serde_json::Value)> = semble_policy::yaml::parse_stream(&text)
            .unwrap()
            .into_iter()
            .map(|d| (format!("gen#{}", d.index), d.root.to_json()))
            .collect();
        let t1 = Instant::now();
        let c = Cluster::load(&docs).unwrap();
        let t2 = Instant::now();
        let rows = c.table();
        let t3 = Instant::now();
        let list = c.connlist();
        let t4 = Instant::now();
        runs.push((t1 - t0, t2 - t1, t3 - t2, t3 - t0, rows.len(), docs.len(), t4 - t3, list.len()));
    }
    runs.sort_by_key(|r| r.3);
    let (parse, load, table, total, rows, docs, connlist, lines) = runs[1];
    println!(
        "{namespaces} namespaces x {pods} pods x 5 policies ({docs} documents, {} KiB of YAML): parse {parse:.2?}, load {load:.2?}, table {table:.2?} ({rows} rows), total {total:.2?}; connlist {connlist:.2?} ({lines} lines), parse+load+connlist {:.2?} (median of 3)",
        text.len() / 1024,
        parse + load + connlist
    );
}
