//! The Kubernetes objects of the example policies: they read back as the same values, into
//! their typed `k8s-openapi` structs with nothing left over, and they say what the policy says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::PathBuf;

use semble_k8s::{objects, Options, Output};
use serde_json::Value;

fn example_text(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../examples/{name}.yaml"));
    std::fs::read_to_string(p).unwrap()
}

fn compile(src: &str, opts: &Options) -> Output {
    let policy = semble_policy::parse(src).unwrap().policy;
    objects(&policy, opts).unwrap()
}

/// Every variant the tests look at: each example, by default and with a sidecar proxy.
fn variants() -> Vec<(String, Output)> {
    let mut out = Vec::new();
    for name in ["workspace", "llm-server", "data-processor"] {
        let src = example_text(name);
        out.push((name.to_string(), compile(&src, &Options::default())));
        let sidecar = if src.contains("placement: gateway") {
            src.replace("placement: gateway", "placement: sidecar")
        } else {
            src.replace("    mode: proxy\n", "    mode: proxy\n    proxy: {placement: sidecar}\n")
        };
        if sidecar != src {
            out.push((format!("{name}+sidecar"), compile(&sidecar, &Options::default())));
        }
        let cluster_ip = Options { proxy_cluster_ip: Some("10.96.0.53".into()), ..Options::default() };
        out.push((format!("{name}+cluster-ip"), compile(&src, &cluster_ip)));
    }
    out
}

fn find<'a>(o: &'a Output, kind: &str, name: &str) -> &'a Value {
    o.docs
        .iter()
        .map(|d| &d.value)
        .find(|v| v["kind"] == kind && v["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Deserialize into the typed object and serialize again: a field the type does not know would
/// be dropped, so equality means every field is part of the schema.
fn typed_round_trip(v: &Value) {
    fn rt<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) -> Value {
        let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v:#}"));
        serde_json::to_value(&t).unwrap()
    }
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core, networking::v1 as net, node::v1 as node};
    let back = match v["kind"].as_str().unwrap() {
        "Namespace" => rt::<core::Namespace>(v),
        "ConfigMap" => rt::<core::ConfigMap>(v),
        "ServiceAccount" => rt::<core::ServiceAccount>(v),
        "Service" => rt::<core::Service>(v),
        "Deployment" => rt::<apps::Deployment>(v),
        "NetworkPolicy" => rt::<net::NetworkPolicy>(v),
        "RuntimeClass" => rt::<node::RuntimeClass>(v),
        other => panic!("unexpected kind {other}"),
    };
    assert_eq!(&back, v, "fields outside the {} schema", v["kind"]);
}

#[test]
fn every_document_reads_back_identically_and_fits_its_type() {
    for (name, out) in variants() {
        let text = out.to_yaml();
        let docs = semble_policy::yaml::parse_stream(&text).unwrap();
        assert_eq!(docs.len(), out.docs.len(), "{name}");
        for (d, want) in docs.iter().zip(&out.docs) {
            assert_eq!(&d.root.to_json(), &want.value, "{name}: the YAML reads back differently");
            typed_round_trip(&want.value);
        }
    }
}

#[test]
#[should_panic(expected = "fields outside the")]
fn the_typed_round_trip_catches_an_unknown_field() {
    let o = compile(&example_text("workspace"), &Options::default());
    let mut v = find(&o, "NetworkPolicy", "workspace-egress").clone();
    v["spec"]["egres"] = serde_json::json!([]);
    typed_round_trip(&v);
}

#[test]
fn workspace_sandbox_reaches_only_the_proxy_and_dns() {
    let o = compile(&example_text("workspace"), &Options::default());
    let deny = find(&o, "NetworkPolicy", "workspace-default-deny");
    assert_eq!(deny["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    assert!(deny["spec"].get("egress").is_none() && deny["spec"].get("ingress").is_none());
    let egress = &find(&o, "NetworkPolicy", "workspace-egress")["spec"]["egress"];
    let rules = egress.as_array().unwrap();
    assert_eq!(rules.len(), 2);
    // To the gateway: one peer with both selectors (AND), port 8080.
    let peer = &rules[0]["to"][0];
    assert_eq!(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "semble-proxy");
    assert_eq!(peer["podSelector"]["matchLabels"]["semble.dev/policy"], "workspace");
    assert_eq!(rules[0]["ports"], serde_json::json!([{"port": 8080, "protocol": "TCP"}]));
    // DNS: kube-dns in kube-system, UDP and TCP.
    assert_eq!(rules[1]["to"][0]["podSelector"]["matchLabels"]["k8s-app"], "kube-dns");
    assert_eq!(
        rules[1]["ports"],
        serde_json::json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}])
    );
    // Nothing else: no ipBlock anywhere in the sandbox's egress.
    assert!(!egress.to_string().contains("ipBlock"));
    // Ingress: the backend namespace on 8081 only.
    let ingress = &find(&o, "NetworkPolicy", "workspace-ingress")["spec"]["ingress"];
    assert_eq!(
        ingress,
        &serde_json::json!([{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "backend"}}}],
                             "ports": [{"port": 8081, "protocol": "TCP"}]}])
    );
    // The gateway: in from the workspace pods only; out to public addresses on 443 and DNS.
    let gw = &find(&o, "NetworkPolicy", "semble-proxy-workspace")["spec"];
    assert_eq!(
        gw["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "sandboxes"
    );
    assert_eq!(gw["egress"][0]["ports"], serde_json::json!([{"port": 443, "protocol": "TCP"}]));
    let except = gw["egress"][0]["to"][0]["ipBlock"]["except"].as_array().unwrap();
    for r in ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8"] {
        assert!(except.iter().any(|e| e == r), "{r} must be excepted");
    }
    let except6 = gw["egress"][0]["to"][1]["ipBlock"]["except"].to_string();
    assert!(except6.contains("fc00::/7") && except6.contains("64:ff9b::a9fe:0/112"), "{except6}");
}

#[test]
fn workspace_pod_is_hardened_and_points_at_its_proxy() {
    let o = compile(&example_text("workspace"), &Options::default());
    let pod = &find(&o, "Deployment", "workspace")["spec"]["template"];
    assert_eq!(pod["metadata"]["annotations"]["semble.dev/policy"], "workspace");
    let spec = &pod["spec"];
    assert_eq!(spec["runtimeClassName"], "semble-gvisor");
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["securityContext"]["runAsUser"], 1000);
    assert_eq!(spec["securityContext"]["seccompProfile"]["type"], "Localhost");
    assert_eq!(spec["securityContext"]["seccompProfile"]["localhostProfile"], "semble/workspace.json");
    let c = &spec["containers"][0];
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(c["securityContext"]["capabilities"]["add"], serde_json::json!(["CHOWN", "DAC_OVERRIDE"]));
    let mounts: Vec<&str> =
        c["volumeMounts"].as_array().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
    assert_eq!(mounts, ["/workspace", "/tmp"]);
    assert!(
        c["env"].to_string().contains("http://10.96.0.80:8080"),
        "the policy names the gateway by its address: {}",
        c["env"]
    );
    assert_eq!(c["resources"]["limits"]["memory"], "2Gi");
    // CHOWN and DAC_OVERRIDE break `restricted`: the namespace says so and enforces baseline.
    let ns = find(&o, "Namespace", "sandboxes");
    assert_eq!(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "baseline");
    assert_eq!(ns["metadata"]["labels"]["pod-security.kubernetes.io/warn"], "restricted");
    assert!(o.warnings.iter().any(|w| w.contains("DAC_OVERRIDE") && w.contains("restricted")), "{:?}", o.warnings);
    // The credential reaches the proxy only.
    let proxy = &find(&o, "Deployment", "semble-proxy-workspace")["spec"]["template"]["spec"];
    assert!(proxy["volumes"].to_string().contains("semble-proxy-workspace-credentials"));
    assert!(!spec.to_string().contains("credentials"));
    // RuntimeClasses for the backend and its fallbacks.
    for rc in ["semble-gvisor", "semble-runc", "semble-embedded"] {
        assert_eq!(find(&o, "RuntimeClass", rc)["handler"], rc);
    }
}

#[test]
fn a_sidecar_proxy_is_native_and_its_egress_weakness_is_stated() {
    let src = example_text("workspace").replace("placement: gateway", "placement: sidecar");
    let o = compile(&src, &Options::default());
    assert!(!o
        .docs
        .iter()
        .any(|d| d.value["metadata"]["name"] == "semble-proxy-workspace" && d.value["kind"] == "Deployment"));
    let spec = &find(&o, "Deployment", "workspace")["spec"]["template"]["spec"];
    let init = &spec["initContainers"][0];
    assert_eq!(init["name"], "semble-proxy");
    assert_eq!(init["restartPolicy"], "Always");
    assert!(init["args"].to_string().contains("127.0.0.1:8080"));
    assert!(spec["containers"][0]["env"].to_string().contains("http://127.0.0.1:8080"));
    let egress = &find(&o, "NetworkPolicy", "workspace-egress")["spec"]["egress"];
    assert!(egress.to_string().contains("0.0.0.0/0"));
    assert!(o.warnings.iter().any(|w| w.contains("sidecar") && w.contains("whole pod")), "{:?}", o.warnings);
    let doc = o.docs.iter().find(|d| d.value["metadata"]["name"] == "workspace-egress").unwrap();
    assert!(doc.comments.iter().any(|c| c.starts_with("WARNING") && c.contains("sidecar")));
}

#[test]
fn a_network_less_policy_gets_no_egress_and_anded_ingress_peers() {
    let o = compile(&example_text("llm-server"), &Options::default());
    assert!(!o.docs.iter().any(|d| d.value["metadata"]["name"] == "llm-server-egress"));
    assert!(!o.docs.iter().any(|d| d.value["kind"] == "ConfigMap"));
    let ingress = find(&o, "NetworkPolicy", "llm-server-ingress")["spec"]["ingress"].as_array().unwrap().clone();
    assert_eq!(ingress.len(), 2);
    // `fromNamespace: monitoring` + `fromPods: {app: prometheus}`: ONE peer holding both
    // selectors (prometheus pods in monitoring), not two peers (anything in monitoring OR any
    // prometheus pod in models).
    let peers = ingress[1]["from"].as_array().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "monitoring");
    assert_eq!(peers[0]["podSelector"]["matchLabels"]["app"], "prometheus");
    let c = &find(&o, "Deployment", "llm-server")["spec"]["template"]["spec"]["containers"][0];
    assert!(c.get("env").is_none(), "no proxy variables without a proxy");
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "1");
}

#[test]
fn a_policy_without_dns_is_warned_or_given_a_fixed_proxy_address() {
    let src = example_text("data-processor");
    let o = compile(&src, &Options::default());
    assert!(
        o.warnings.iter().any(|w| w.contains("dns: false") && w.contains("--proxy-cluster-ip")),
        "{:?}",
        o.warnings
    );
    assert!(!find(&o, "NetworkPolicy", "data-processor-egress").to_string().contains("kube-dns"));
    let opts = Options { proxy_cluster_ip: Some("10.96.200.10".into()), ..Options::default() };
    let o = compile(&src, &opts);
    assert!(!o.warnings.iter().any(|w| w.contains("dns: false")));
    assert_eq!(find(&o, "Service", "semble-proxy-data-processor")["spec"]["clusterIP"], "10.96.200.10");
    let env = find(&o, "Deployment", "data-processor")["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(env.contains("http://10.96.200.10:8080"), "{env}");
}

#[test]
fn a_policy_without_kubernetes_placement_is_one_clear_error() {
    let src = example_text("workspace").replace("    namespace: sandboxes\n", "");
    let policy = semble_policy::parse(&src).unwrap().policy;
    let e = objects(&policy, &Options::default()).unwrap_err().to_string();
    assert!(e.contains("spec.kubernetes.namespace") && e.contains("podSelector"), "{e}");
}

#[test]
fn cilium_adds_an_fqdn_policy_for_the_gateway() {
    let o = compile(&example_text("workspace"), &Options { cilium: true, ..Options::default() });
    let c = find(&o, "CiliumNetworkPolicy", "semble-proxy-workspace-fqdn");
    assert_eq!(c["spec"]["egress"][1]["toFQDNs"][0]["matchName"], "bedrock-runtime.us-east-1.amazonaws.com");
}
