//! NetworkPolicy findings that need more than one document: the proxy bypass in each of its
//! shapes (and the configurations that are fine), the Merlai mistakes, and a pod's Localhost
//! seccomp profile linted as the pod's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::PathBuf;

use semble_lint::{lint_all, Finding, Level};

fn seeds() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/seeds")
}

fn lint(files: &[(&str, &str)]) -> Vec<Finding> {
    let inputs: Vec<(String, String)> = files.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    lint_all(&inputs).unwrap()
}

fn of<'a>(f: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    f.iter().filter(|x| x.rule == rule).collect()
}

/// A workspace pod with a proxy as a native sidecar the agent points HTTP(S)_PROXY at.
const SIDECAR_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: ws, namespace: sandboxes, labels: {app: workspace}}
spec:
  initContainers:
    - {name: egress, image: registry.example/envoy:1.31, restartPolicy: Always, ports: [{containerPort: 3128}]}
  containers:
    - name: agent
      image: registry.example/agent:1.0
      env: [{name: HTTPS_PROXY, value: 'http://localhost:3128'}]
";

fn egress_policy(name: &str, selector: &str, egress: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: sandboxes}}\nspec:\n  podSelector: {selector}\n  policyTypes: [Egress]\n  egress:\n{egress}"
    )
}

const DNS_RULE: &str = "    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]\n      ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]\n";

#[test]
fn every_shape_of_egress_everywhere_next_to_a_proxy_sidecar_is_an_error() {
    let shapes = [
        ("no `to`", "    - ports: [{port: 443}]\n"),
        ("empty `to`", "    - to: []\n      ports: [{port: 443}]\n"),
        ("0.0.0.0/0", "    - to: [{ipBlock: {cidr: 0.0.0.0/0}}]\n      ports: [{port: 443}]\n"),
        (
            "0.0.0.0/0 with private ranges excepted (the internet is still everywhere)",
            "    - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16]}}]\n      ports: [{port: 443}]\n",
        ),
        (
            "namespaceSelector {} plus an ipBlock",
            "    - to: [{namespaceSelector: {}}, {ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}]\n      ports: [{port: 443}]\n",
        ),
        ("two halves", "    - to: [{ipBlock: {cidr: 0.0.0.0/1}}, {ipBlock: {cidr: 128.0.0.0/1}}]\n      ports: [{port: 443}]\n"),
        ("::/0", "    - to: [{ipBlock: {cidr: '::/0'}}]\n"),
    ];
    for (what, rule) in shapes {
        let np = egress_policy("open", "{matchLabels: {app: workspace}}", &format!("{rule}{DNS_RULE}"));
        let f = lint(&[("pod.yaml", SIDECAR_POD), ("np.yaml", &np)]);
        let hits = of(&f, "SB032");
        assert_eq!(hits.len(), 1, "{what}: {f:#?}");
        assert_eq!((hits[0].file.as_str(), hits[0].level), ("np.yaml", Level::Error), "{what}");
        assert!(hits[0].message.contains("sandboxes/ws has a proxy sidecar (`egress`"), "{}", hits[0].message);
        assert!(hits[0].fix.contains("gateway"), "{}", hits[0].fix);
    }
}

#[test]
fn egress_only_to_the_gateway_dns_or_a_narrow_range_is_fine() {
    for rule in [
        "    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: semble-proxy}}}]\n      ports: [{port: 8080}]\n",
        "    - to: [{ipBlock: {cidr: 10.96.0.10/32}}]\n      ports: [{port: 8080}]\n",
        "    - to: [{ipBlock: {cidr: 52.94.0.0/16}}]\n      ports: [{port: 443}]\n",
    ] {
        let np = egress_policy("gw", "{matchLabels: {app: workspace}}", &format!("{rule}{DNS_RULE}"));
        let f = lint(&[("pod.yaml", SIDECAR_POD), ("np.yaml", &np)]);
        assert!(of(&f, "SB032").is_empty(), "{rule}: {f:#?}");
    }
    // The open rule does not select the proxied pod.
    let other = egress_policy("other", "{matchLabels: {app: batch}}", "    - ports: [{port: 443}]\n");
    assert!(of(&lint(&[("pod.yaml", SIDECAR_POD), ("np.yaml", &other)]), "SB032").is_empty());
    // An Ingress-only policy's egress section does nothing.
    let ingress_only = egress_policy("x", "{}", "    - ports: [{port: 443}]\n")
        .replace("policyTypes: [Egress]", "policyTypes: [Ingress]");
    assert!(of(&lint(&[("pod.yaml", SIDECAR_POD), ("np.yaml", &ingress_only)]), "SB032").is_empty());
    // A pod with no proxy.
    let plain = SIDECAR_POD.replace("  initContainers:\n    - {name: egress, image: registry.example/envoy:1.31, restartPolicy: Always, ports: [{containerPort: 3128}]}\n", "").replace("      env: [{name: HTTPS_PROXY, value: 'http://localhost:3128'}]\n", "");
    let open = egress_policy("open", "{}", "    - ports: [{port: 443}]\n");
    assert!(of(&lint(&[("pod.yaml", &plain), ("np.yaml", &open)]), "SB032").is_empty());
}

#[test]
fn a_policy_added_to_a_proxy_only_policy_is_an_error() {
    // semble's compiled workspace policy: egress only to the gateway and DNS.
    let proxy_only = egress_policy(
        "workspace-egress",
        "{matchLabels: {app: workspace}}",
        &format!("    - to: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: semble-proxy}}}}, podSelector: {{matchLabels: {{app: semble-proxy}}}}}}]\n      ports: [{{port: 8080}}]\n{DNS_RULE}"),
    );
    let added = egress_policy(
        "allow-https",
        "{}",
        "    - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.0.0/16]}}]\n      ports: [{port: 443}]\n",
    );
    let f = lint(&[("a.yaml", &proxy_only), ("b.yaml", &added)]);
    let hits = of(&f, "SB032");
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert_eq!(hits[0].file, "b.yaml");
    assert!(
        hits[0].message.contains("sandboxes/workspace-egress lets these pods reach only their proxy"),
        "{}",
        hits[0].message
    );
    // Alone, the proxy-only policy is fine.
    assert!(of(&lint(&[("a.yaml", &proxy_only)]), "SB032").is_empty());
}

#[test]
fn a_pod_under_a_semble_proxy_policy_is_proxied() {
    let policy = "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: agent}\nspec:\n  network:\n    mode: proxy\n    egress: [{host: api.example.com}]\n";
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: agent, namespace: sandboxes}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}, annotations: {semble.dev/policy: agent}}\n    spec:\n      runtimeClassName: semble-gvisor\n      containers: [{name: a, image: registry.example/agent:1.0}]\n";
    let open = egress_policy("open", "{matchLabels: {app: agent}}", "    - ports: [{port: 443}]\n");
    let f = lint(&[("p.yaml", policy), ("d.yaml", deploy), ("np.yaml", &open)]);
    let hits = of(&f, "SB032");
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert!(hits[0].message.contains("runs under semble policy `agent`"), "{}", hits[0].message);
    // With `network: open`, nothing to bypass.
    let open_policy = policy.replace("mode: proxy\n    egress: [{host: api.example.com}]", "mode: open");
    assert!(of(&lint(&[("p.yaml", &open_policy), ("d.yaml", deploy), ("np.yaml", &open)]), "SB032").is_empty());
}

#[test]
fn the_eks_plan_as_written_is_flagged_on_the_policy_line() {
    let text = std::fs::read_to_string(seeds().join("eks-native-sidecar.yaml")).unwrap();
    let f = lint(&[("eks.yaml", &text)]);
    let hits = of(&f, "SB032");
    assert_eq!(hits.len(), 1, "{f:#?}");
    let line = text.lines().position(|l| l.contains("ports: [{port: 443, protocol: TCP}]")).unwrap() + 1;
    assert_eq!(hits[0].line, u32::try_from(line).unwrap());
    assert!(
        hits[0].message.contains("`credential-proxy` is where the other containers' HTTP(S)_PROXY points"),
        "{}",
        hits[0].message
    );
    // DNS comes from allow-dns (podSelector {}): no SB034 for the default deny.
    assert!(of(&f, "SB034").is_empty(), "{f:#?}");
    // The agent's CHOWN/SETUID/SETGID/DAC_OVERRIDE pass baseline and fail restricted.
    assert!(
        f.iter().any(|x| x.rule == "SB025" && x.level == Level::Warning && x.message.contains("`SETUID`")),
        "{f:#?}"
    );
}

#[test]
fn merlai_namespace_labels_and_missing_dns_are_warnings() {
    let text = std::fs::read_to_string(seeds().join("merlai-network-policy.yaml")).unwrap();
    let f = lint(&[("merlai.yaml", &text)]);
    let ns: Vec<(u32, &str)> = of(&f, "SB033").iter().map(|x| (x.line, x.message.as_str())).collect();
    assert_eq!(ns.len(), 2, "{f:#?}");
    assert!(
        ns[0].1.contains("`name: ingress-nginx`") && ns[0].1.contains("kubernetes.io/metadata.name: ingress-nginx"),
        "{ns:?}"
    );
    assert!(ns[1].1.contains("`name: database`"), "{ns:?}");
    assert!(of(&f, "SB033").iter().all(|x| x.level == Level::Warning));
    let dns = of(&f, "SB034");
    assert_eq!(dns.len(), 1, "{f:#?}");
    assert!(dns[0].message.contains("merlai/merlai-network-policy isolates"), "{}", dns[0].message);
    // A namespace that does carry the label silences SB033; one named so without it makes it certain.
    let labelled = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ingress-nginx, labels: {name: ingress-nginx}}\n";
    let with = lint(&[("merlai.yaml", &text), ("ns.yaml", labelled)]);
    assert_eq!(of(&with, "SB033").len(), 1);
    let unlabelled = "apiVersion: v1\nkind: Namespace\nmetadata: {name: database}\n";
    let with = lint(&[("merlai.yaml", &text), ("ns.yaml", unlabelled)]);
    assert!(
        of(&with, "SB033").iter().any(|x| x.message.contains("namespace `database` is defined here without it")),
        "{with:#?}"
    );
    // Fixed: the automatic label, and DNS allowed.
    let fixed = text.replace("name: ingress-nginx", "kubernetes.io/metadata.name: ingress-nginx").replace("name: database", "kubernetes.io/metadata.name: database")
        + "  - to:\n    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}\n    ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]\n";
    let f = lint(&[("merlai.yaml", &fixed)]);
    assert!(of(&f, "SB033").is_empty() && of(&f, "SB034").is_empty(), "{f:#?}");
}

#[test]
fn dns_from_another_policy_counts_only_for_the_pods_it_selects() {
    let pod = |name: &str, app: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: sandboxes, labels: {{app: {app}}}}}\nspec: {{containers: [{{name: c, image: x:1}}]}}\n")
    };
    let deny = egress_policy("deny", "{}", "    []\n").replace("  egress:\n    []\n", "");
    let dns_for_ws = egress_policy("dns", "{matchLabels: {app: ws}}", DNS_RULE);
    let f = lint(&[
        ("a.yaml", &pod("a", "ws")),
        ("b.yaml", &pod("b", "batch")),
        ("deny.yaml", &deny),
        ("dns.yaml", &dns_for_ws),
    ]);
    let hits = of(&f, "SB034");
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert!(hits[0].message.contains("sandboxes/b") && !hits[0].message.contains("sandboxes/a"), "{}", hits[0].message);
}

#[test]
fn a_localhost_seccomp_profile_among_the_files_is_linted_on_the_pods_line() {
    let dir = seeds().join("ai-semble");
    let pod = std::fs::read_to_string(dir.join("pod.yaml")).unwrap();
    let profile = std::fs::read_to_string(dir.join("security/seccomp/ai-semble.json")).unwrap();
    let f = lint(&[("ai-semble/pod.yaml", &pod), ("ai-semble/security/seccomp/ai-semble.json", &profile)]);
    let on_pod: Vec<&Finding> = of(&f, "SB041").into_iter().filter(|x| x.file.ends_with("pod.yaml")).collect();
    assert_eq!(on_pod.len(), 2, "the annotation and the field: {f:#?}");
    let ann_line = pod.lines().position(|l| l.contains("localhost/ai-semble.json")).unwrap() + 1;
    assert_eq!(on_pod[0].line, u32::try_from(ann_line).unwrap());
    assert!(
        on_pod[0].message.contains("6 syscalls allowed, without execve, mmap, exit_group, brk: no program can start"),
        "{}",
        on_pod[0].message
    );
    // The profile itself is still reported in its own file.
    assert!(f.iter().any(|x| x.rule == "SB041" && x.file.ends_with(".json")));
    // A profile that is not among the files says nothing about the pod.
    let alone = lint(&[("ai-semble/pod.yaml", &pod)]);
    assert!(of(&alone, "SB041").is_empty());
}
