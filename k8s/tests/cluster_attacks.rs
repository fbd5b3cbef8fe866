//! Issue 23, items 8–11: the cluster objects under attack. Each test compiles a policy, checks
//! the objects, and asks the NetworkPolicy analysis behind `semble-policy explain --k8s`
//! ([`semble_k8s::netpol`]) who can reach whom — the attack path refused, the legitimate one open.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::PathBuf;

use semble_k8s::netpol::{Cluster, Proto};
use semble_k8s::{objects, Options, Output};
use serde_json::Value;

fn example(name: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../examples/{name}.yaml"))).unwrap()
}

fn compile(src: &str, opts: &Options) -> Output {
    objects(&semble_policy::parse(src).unwrap().policy, opts).unwrap()
}

fn find<'a>(o: &'a Output, kind: &str, name: &str) -> &'a Value {
    o.docs
        .iter()
        .map(|d| &d.value)
        .find(|v| v["kind"] == kind && v["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The compiled objects plus what every cluster has (kube-dns), loaded as `explain --k8s` does.
fn cluster(o: &Output) -> Cluster {
    let dns = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: coredns, namespace: kube-system}\nspec:\n  selector: {matchLabels: {k8s-app: kube-dns}}\n  template:\n    metadata: {labels: {k8s-app: kube-dns}}\n    spec: {containers: [{name: coredns, image: coredns}]}\n";
    let text = format!("{}---\n{dns}", o.to_yaml());
    let docs: Vec<(String, Value)> = semble_policy::yaml::parse_stream(&text)
        .unwrap()
        .into_iter()
        .map(|d| (format!("objects#{}", d.index), d.root.to_json()))
        .filter(|(_, v)| !v.is_null() && v["kind"] != "CiliumNetworkPolicy")
        .collect();
    Cluster::load(&docs).unwrap()
}

fn can(c: &Cluster, from: &str, to: &str, port: u16, proto: Proto) -> bool {
    let (s, d) = (c.find(from).unwrap(), c.find(to).unwrap());
    c.query(&s, &d, port, proto).allowed
}

/// Item 8: DNS exfiltration. With `dns: true` the workspace may query kube-dns, which resolves
/// any name: stated as a warning. The closed form (`dns: false`, the proxy by ClusterIP) opens
/// no DNS at all and still reaches the proxy; with `--cni cilium` DNS is opened only for the
/// names the workload needs.
#[test]
fn dns_exfiltration_is_stated_and_the_closed_form_has_no_dns() {
    let src = example("workspace");
    let o = compile(&src, &Options::default());
    assert!(o.warnings.iter().any(|w| w.contains("DNS queries") && w.contains("closed form")), "{:?}", o.warnings);
    let c = cluster(&o);
    assert!(can(&c, "sandboxes/workspace", "kube-system/coredns", 53, Proto::Udp), "the open form leaks DNS");

    // The closed form.
    let closed = src.replace("    dns: true\n", "    dns: false\n");
    let o = compile(&closed, &Options { proxy_cluster_ip: Some("10.96.0.53".into()), ..Options::default() });
    assert!(!o.warnings.iter().any(|w| w.contains("DNS")), "{:?}", o.warnings);
    let c = cluster(&o);
    assert!(!can(&c, "sandboxes/workspace", "kube-system/coredns", 53, Proto::Udp));
    assert!(!can(&c, "sandboxes/workspace", "kube-system/coredns", 53, Proto::Tcp));
    assert!(can(&c, "sandboxes/workspace", "semble-proxy/semble-proxy-workspace", 8080, Proto::Tcp));
    assert!(!can(&c, "sandboxes/workspace", "8.8.8.8", 53, Proto::Udp));
    // The gateway itself still resolves the rules' names.
    assert!(can(&c, "semble-proxy/semble-proxy-workspace", "kube-system/coredns", 53, Proto::Udp));

    // Cilium: DNS only for the proxy's Service name, from a CiliumNetworkPolicy; the
    // NetworkPolicy opens none (policies add up).
    let o = compile(&src, &Options { cilium: true, ..Options::default() });
    assert!(
        !cluster(&o)
            .query(
                &cluster(&o).find("sandboxes/workspace").unwrap(),
                &cluster(&o).find("kube-system/coredns").unwrap(),
                53,
                Proto::Udp
            )
            .allowed
    );
    let cnp = find(&o, "CiliumNetworkPolicy", "workspace-dns");
    assert_eq!(
        cnp["spec"]["egress"][0]["toPorts"][0]["rules"]["dns"],
        serde_json::json!([{"matchName": "semble-proxy-workspace.semble-proxy.svc.cluster.local"}])
    );

    // A sidecar resolves from the pod: DNS is open even with `dns: false`, and said so; with
    // Cilium only the rules' names.
    let sidecar = closed.replace("placement: gateway", "placement: sidecar");
    let o = compile(&sidecar, &Options::default());
    assert!(o.warnings.iter().any(|w| w.contains("sidecar") && w.contains("DNS queries")), "{:?}", o.warnings);
    assert!(can(&cluster(&o), "sandboxes/workspace", "kube-system/coredns", 53, Proto::Udp));
    let o = compile(&sidecar, &Options { cilium: true, ..Options::default() });
    assert!(!can(&cluster(&o), "sandboxes/workspace", "kube-system/coredns", 53, Proto::Udp));
    let cnp = find(&o, "CiliumNetworkPolicy", "workspace-dns");
    assert_eq!(
        cnp["spec"]["egress"][0]["toPorts"][0]["rules"]["dns"],
        serde_json::json!([{"matchName": "bedrock-runtime.us-east-1.amazonaws.com"}])
    );
}

/// Item 9: RuntimeClasses are cluster-wide. Two policies with their own scheduling and overhead
/// get classes of their own (same handler), each workload names its own; a policy without any
/// shares the plain class, which carries nothing a policy could overwrite.
#[test]
fn runtime_classes_of_two_policies_never_collide() {
    let base = example("workspace");
    let with = |name: &str, zone: &str, mem: &str| {
        base.replace("  name: workspace\n", &format!("  name: {name}\n")).replace(
            "    podSelector: {app: workspace}\n",
            &format!("    podSelector: {{app: {name}}}\n    nodeSelector: {{zone: {zone}}}\n    overhead: {{memory: {mem}}}\n"),
        )
    };
    let a = compile(&with("team-a", "a", "64Mi"), &Options::default());
    let b = compile(&with("team-b", "b", "256Mi"), &Options::default());
    let rc_a = find(&a, "RuntimeClass", "semble-gvisor-team-a");
    let rc_b = find(&b, "RuntimeClass", "semble-gvisor-team-b");
    assert_eq!((rc_a["handler"].clone(), rc_b["handler"].clone()), ("semble-gvisor".into(), "semble-gvisor".into()));
    assert_eq!(rc_a["scheduling"]["nodeSelector"]["zone"], "a");
    assert_eq!(rc_b["overhead"]["podFixed"]["memory"], "256Mi");
    let names = |o: &Output| -> Vec<String> {
        o.docs
            .iter()
            .filter(|d| d.value["kind"] == "RuntimeClass")
            .map(|d| d.value["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(names(&a).iter().all(|n| !names(&b).contains(n)), "{:?} vs {:?}", names(&a), names(&b));
    assert_eq!(
        find(&a, "Deployment", "team-a")["spec"]["template"]["spec"]["runtimeClassName"],
        "semble-gvisor-team-a"
    );
    // Without scheduling or overhead: the shared class, with nothing in it to overwrite.
    let plain = compile(&base, &Options::default());
    let rc = find(&plain, "RuntimeClass", "semble-gvisor");
    assert!(rc.get("scheduling").is_none() && rc.get("overhead").is_none(), "{rc}");
    assert_eq!(
        find(&plain, "Deployment", "workspace")["spec"]["template"]["spec"]["runtimeClassName"],
        "semble-gvisor"
    );
}

/// Item 10: the gateway's NetworkPolicy. A rule's `allowAddresses` opens its range on that
/// rule's ports only (not every rule's port), and every reserved range the proxy refuses is
/// excepted from "the internet".
#[test]
fn the_gateway_reaches_each_range_only_on_its_rules_ports_and_no_reserved_range() {
    let src = example("workspace").replace(
        "        credential: bedrock  # SigV4-signed by the proxy; the agent never holds AWS keys\n",
        "        credential: bedrock  # SigV4-signed by the proxy; the agent never holds AWS keys\n      - host: db.internal.example\n        ports: [5432]\n        allowAddresses: [10.20.0.0/16]\n",
    );
    let o = compile(&src, &Options::default());
    let c = cluster(&o);
    let gw = "semble-proxy/semble-proxy-workspace";
    assert!(can(&c, gw, "10.20.0.5", 5432, Proto::Tcp), "the rule's own range and port");
    assert!(!can(&c, gw, "10.20.0.5", 443, Proto::Tcp), "10.20/16 opened on 443 too");
    assert!(can(&c, gw, "52.94.0.1", 443, Proto::Tcp), "the internet on 443");
    for reserved in [
        "0.1.2.3",
        "10.0.0.1",
        "127.0.0.1",
        "168.63.129.16",
        "169.254.169.254",
        "192.0.0.192",
        "198.18.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
        "2001::1",
        "ff02::1",
        "fd00:ec2::254",
    ] {
        assert!(!can(&c, gw, reserved, 443, Proto::Tcp), "{reserved} is reachable from the gateway");
    }
    // The sandbox reaches none of it directly.
    assert!(!can(&c, "sandboxes/workspace", "10.20.0.5", 5432, Proto::Tcp));
}

/// Item 10, sidecar placement: the workload shares the proxy's network namespace, so the admin
/// API (metrics, /rules) is on a Unix socket in a volume only the proxy mounts, and a rule's
/// `allowAddresses` are not opened for the pod (the workload would reach them past the proxy).
#[test]
fn a_sidecars_admin_api_and_reserved_ranges_are_out_of_the_workloads_reach() {
    let src = example("workspace")
        .replace("placement: gateway", "placement: sidecar")
        .replace(
            "        credential: bedrock  # SigV4-signed by the proxy; the agent never holds AWS keys\n",
            "        credential: bedrock  # SigV4-signed by the proxy; the agent never holds AWS keys\n      - host: db.internal.example\n        ports: [5432]\n        allowAddresses: [10.20.0.0/16]\n",
        );
    let o = compile(&src, &Options::default());
    let spec = &find(&o, "Deployment", "workspace")["spec"]["template"]["spec"];
    let proxy = &spec["initContainers"][0];
    let args = proxy["args"].to_string();
    assert!(args.contains("unix:/run/semble-proxy/admin.sock") && !args.contains("9901"), "{args}");
    assert!(proxy["volumeMounts"].to_string().contains("proxy-admin"));
    assert!(!spec["containers"][0].to_string().contains("proxy-admin"), "the workload mounts the admin socket");
    assert!(o.warnings.iter().any(|w| w.contains("10.20.0.0/16") && w.contains("gateway")), "{:?}", o.warnings);
    let c = cluster(&o);
    assert!(!can(&c, "sandboxes/workspace", "10.20.0.5", 5432, Proto::Tcp), "the range is open to the pod");
    assert!(can(&c, "sandboxes/workspace", "52.94.0.1", 443, Proto::Tcp), "the sidecar's own egress");
    assert!(!can(&c, "sandboxes/workspace", "169.254.169.254", 80, Proto::Tcp));
}

/// Item 11: pod hardening.
#[test]
fn pods_are_hardened_and_the_namespace_level_matches_the_pod() {
    let src = example("workspace")
        .replace(
            "    podSelector: {app: workspace}\n",
            "    podSelector: {app: workspace}\n    userNamespaces: true\n    appArmor: RuntimeDefault\n",
        )
        .replace("    pids: 512\n", "    pids: 512\n    ephemeralStorage: 4Gi\n");
    let o = compile(&src, &Options::default());
    let pod = &find(&o, "Deployment", "workspace")["spec"]["template"]["spec"];
    assert_eq!(pod["hostUsers"], false);
    assert_eq!(pod["containers"][0]["securityContext"]["appArmorProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["containers"][0]["resources"]["limits"]["ephemeral-storage"], "4Gi");
    for v in pod["volumes"].as_array().unwrap() {
        assert_eq!(v["emptyDir"]["sizeLimit"], "4Gi", "{v}");
    }
    // Without the fields: no user namespace or AppArmor (each said in the output), and disk
    // still bounded: 1Gi per scratch volume, their sum plus 1Gi for the pod.
    let o = compile(&example("workspace"), &Options::default());
    let pod = &find(&o, "Deployment", "workspace")["spec"]["template"]["spec"];
    assert!(pod.get("hostUsers").is_none());
    assert_eq!(pod["containers"][0]["resources"]["limits"]["ephemeral-storage"], "3Gi");
    assert!(pod["volumes"].as_array().unwrap().iter().all(|v| v["emptyDir"]["sizeLimit"] == "1Gi"));
    let doc =
        o.docs.iter().find(|d| d.value["kind"] == "Deployment" && d.value["metadata"]["name"] == "workspace").unwrap();
    assert!(
        doc.comments.iter().any(|c| c.contains("userNamespaces"))
            && doc.comments.iter().any(|c| c.contains("appArmor"))
    );

    // `noNewPrivileges: false` cannot meet `restricted`: the namespace must not say it does.
    let restricted = compile(&example("data-processor"), &Options::default());
    let level =
        |o: &Output| find(o, "Namespace", "batch")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"].clone();
    assert_eq!(level(&restricted), "restricted", "the example meets restricted");
    // (runAsNonRoot with noNewPrivileges off is refused by the policy itself: drop it here.)
    let nnp = example("data-processor")
        .replace("    runAsNonRoot: true\n", "")
        .replace("  process:\n", "  process:\n    noNewPrivileges: false\n");
    assert!(nnp.contains("noNewPrivileges: false"), "the example changed");
    let o = compile(&nnp, &Options::default());
    let ns = find(&o, "Namespace", "batch");
    assert_eq!(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "baseline");
    assert!(o.warnings.iter().any(|w| w.contains("noNewPrivileges")), "{:?}", o.warnings);
    let c = &find(&o, "Deployment", "data-processor")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], true);
}

/// Item 5 on the cluster: the gateway gets the flags its memory limit is computed from.
#[test]
fn the_gateways_memory_limit_follows_its_flags() {
    let o = compile(&example("workspace"), &Options::default());
    let c = &find(&o, "Deployment", "semble-proxy-workspace")["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let limits = semble_policy::compile::proxy::ProxyLimits::gateway();
    for pair in limits.args().chunks(2) {
        let at = args.iter().position(|a| *a == pair[0]).unwrap_or_else(|| panic!("{} missing: {args:?}", pair[0]));
        assert_eq!(args[at + 1], pair[1]);
    }
    let limit = semble_policy::quantity::parse_bytes(c["resources"]["limits"]["memory"].as_str().unwrap()).unwrap();
    assert!(limit >= limits.memory_bound(), "limit {limit} below the bound {}", limits.memory_bound());
    assert!(limit < limits.memory_bound() + (1 << 20));
}
