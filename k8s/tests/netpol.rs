//! NetworkPolicy semantics, checked against hand-computed expectations.
//!
//! Each directory under `tests/netpol/` holds `manifests.yaml` and `expected.txt`: lines
//! `allow|deny FROM TO PORT[/PROTO]` worked out by hand from the API's rules (the pitfall each
//! scenario covers is described at the top of its manifests); `table.txt`, where present, is the
//! whole connectivity table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::{Path, PathBuf};

use semble_k8s::netpol::{Cluster, Proto};
use serde_json::Value;

fn load(text: &str, name: &str) -> Cluster {
    let docs: Vec<(String, Value)> = semble_policy::yaml::parse_stream(text)
        .unwrap()
        .into_iter()
        .map(|d| (format!("{name}#{}", d.index), d.root.to_json()))
        .filter(|(_, v)| !v.is_null())
        .collect();
    Cluster::load(&docs).unwrap()
}

fn port(s: &str) -> (u16, Proto) {
    match s.split_once('/') {
        Some((n, p)) => (n.parse().unwrap(), Proto::parse(p).unwrap()),
        None => (s.parse().unwrap(), Proto::Tcp),
    }
}

fn check_expectations(c: &Cluster, expected: &str, scenario: &str) -> usize {
    let mut n = 0;
    for line in expected.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [verdict, from, to, p] = f[..] else { panic!("{scenario}: bad line {line:?}") };
        let (port, proto) = port(p);
        let src = c.find(from).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        let dst = c.find(to).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        let a = c.query(&src, &dst, port, proto);
        assert_eq!(a.allowed, verdict == "allow", "{scenario}: {line}\n  {}", a.lines.join("\n  "));
        // The table agrees with the single answers.
        assert_eq!(c.allowed(&src, &dst).contains(port, proto), a.allowed, "{scenario}: table vs query on {line}");
        n += 1;
    }
    n
}

fn table_text(c: &Cluster) -> String {
    c.table().iter().map(|r| format!("{} -> {}: {}\n", r.from, r.to, r.ports)).collect()
}

#[test]
fn scenarios_match_their_hand_computed_connectivity() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/netpol");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    assert!(dirs.len() >= 15, "at least 15 scenarios");
    let mut checked = 0;
    for d in &dirs {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        let c = load(&std::fs::read_to_string(d.join("manifests.yaml")).unwrap(), &name);
        checked += check_expectations(&c, &std::fs::read_to_string(d.join("expected.txt")).unwrap(), &name);
        let table = d.join("table.txt");
        if Path::new(&table).is_file() {
            assert_eq!(table_text(&c), std::fs::read_to_string(table).unwrap(), "{name}: table");
        }
    }
    assert!(checked >= 60, "{checked} expectations");
}

/// The compiled workspace policy plus the backend that calls it: exactly the connections the
/// policy means, and nothing else to or from the workspace.
#[test]
fn the_compiled_workspace_policy_explains_to_exactly_its_intent() {
    let src =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/workspace.yaml")).unwrap();
    let policy = semble_policy::parse(&src).unwrap().policy;
    let mut text = semble_k8s::objects(&policy, &semble_k8s::Options::default()).unwrap().to_yaml();
    text.push_str(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: backend}\nspec:\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: c, image: x}]}\n",
    );
    let c = load(&text, "workspace");
    let expected = "\
backend/api -> sandboxes/workspace: 8081/TCP
sandboxes/workspace -> kube-system/kube-dns: 53/TCP, 53/UDP
sandboxes/workspace -> semble-proxy/semble-proxy-workspace: 8080/TCP
semble-proxy/semble-proxy-workspace -> internet: 443/TCP
semble-proxy/semble-proxy-workspace -> kube-system/kube-dns: 53/TCP, 53/UDP
(2 pods without an egress policy) -> (2 pods without an ingress policy, any outside address): all ports
(any outside address) -> (2 pods without an ingress policy): all ports
";
    assert_eq!(table_text(&c), expected);
    let n = check_expectations(
        &c,
        "allow backend/api sandboxes/workspace 8081
         deny backend/api sandboxes/workspace 22
         deny backend/api semble-proxy/semble-proxy-workspace 8080
         allow sandboxes/workspace semble-proxy/semble-proxy-workspace 8080
         allow sandboxes/workspace kube-system/kube-dns 53/UDP
         allow sandboxes/workspace kube-system/kube-dns 53/TCP
         allow semble-proxy/semble-proxy-workspace internet 443
         deny sandboxes/workspace internet 443
         deny sandboxes/workspace metadata 80
         deny sandboxes/workspace metadata 443
         deny sandboxes/workspace backend/api 8081
         deny sandboxes/workspace 10.0.0.1 443
         deny semble-proxy/semble-proxy-workspace metadata 80
         deny semble-proxy/semble-proxy-workspace 10.0.0.1 443
         deny internet sandboxes/workspace 8081
         deny kube-system/kube-dns sandboxes/workspace 8081",
        "workspace",
    );
    assert_eq!(n, 16);
}
