//! The connectivity list in np-guard's `list` format and the diff in np-guard's `diff` format,
//! checked against the examples np-guard documents (`docs/connlist_output.md`,
//! `docs/diff_output.md`): manifests written here to the same design as np-guard's example
//! directories, and the documented output, line for line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use semble_k8s::netpol::{diff, Cluster};
use serde_json::Value;

fn load(text: &str) -> Cluster {
    let docs: Vec<(String, Value)> = semble_policy::yaml::parse_stream(text)
        .unwrap()
        .into_iter()
        .map(|d| (format!("m.yaml#{}", d.index), d.root.to_json()))
        .filter(|(_, v)| !v.is_null())
        .collect();
    Cluster::load(&docs).unwrap()
}

fn lines(c: &Cluster) -> String {
    c.connlist().iter().map(|l| format!("{}\n", l.line())).collect()
}

fn deployment(ns: &str, name: &str, app: &str, port: u16) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: {app}}}}}\n  template:\n    metadata: {{labels: {{app: {app}}}}}\n    spec:\n      containers: [{{name: {name}, image: quay.io/example/{name}:1, ports: [{{containerPort: {port}}}]}}]\n"
    )
}

fn service(ns: &str, name: &str, app: &str, port: u16, target: u16) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{app: {app}}}\n  ports: [{{port: {port}, targetPort: {target}}}]\n"
    )
}

/// np-guard's `demo_app_with_routes_and_ingress`: three namespaces with one Deployment each and
/// no NetworkPolicy; an OpenShift Route to one, Kubernetes Ingresses to the others.
#[test]
fn routes_and_ingresses_list_as_np_guard_documents() {
    let mut m = String::new();
    for (ns, name, port) in [
        ("helloworld", "hello-world", 8000),
        ("ingressworld", "ingress-world", 8090),
        ("routeworld", "route-world", 8060),
    ] {
        m.push_str(&deployment(ns, name, name, port));
        m.push_str(&service(ns, name, name, 80, port));
    }
    m.push_str("---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {name: route-world, namespace: routeworld}\nspec:\n  to: {kind: Service, name: route-world}\n");
    for (ns, name) in [("helloworld", "hello-world"), ("ingressworld", "ingress-world")] {
        m.push_str(&format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  rules:\n    - host: {name}.example.com\n      http:\n        paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: {name}, port: {{number: 80}}}}}}}}]\n"
        ));
    }
    let c = load(&m);
    // The documented output (docs/connlist_output.md, txt).
    let workloads = [
        "helloworld/hello-world[Deployment]",
        "ingressworld/ingress-world[Deployment]",
        "routeworld/route-world[Deployment]",
    ];
    let all = "0.0.0.0-255.255.255.255";
    let mut want: Vec<String> = workloads.iter().map(|w| format!("{all} => {w} : All Connections")).collect();
    for a in workloads {
        want.push(format!("{a} => {all} : All Connections"));
        for b in workloads.iter().filter(|b| **b != a) {
            want.push(format!("{a} => {b} : All Connections"));
        }
    }
    for (w, p) in workloads.iter().zip([8000, 8090, 8060]) {
        want.push(format!("{{ingress-controller}} => {w} : TCP {p}"));
    }
    want.sort();
    assert_eq!(lines(&c), want.iter().map(|l| format!("{l}\n")).collect::<String>());
    // And the JSON form: an array of {src, dst, conn}, two-space indented, as np-guard writes it.
    let json = serde_json::to_string_pretty(&c.connlist()).unwrap();
    assert!(json.starts_with("[\n  {\n    \"src\": \"0.0.0.0-255.255.255.255\",\n    \"dst\": \"helloworld/hello-world[Deployment]\",\n    \"conn\": \"All Connections\"\n  },"), "{json}");
    assert!(json.ends_with("  {\n    \"src\": \"{ingress-controller}\",\n    \"dst\": \"routeworld/route-world[Deployment]\",\n    \"conn\": \"TCP 8060\"\n  }\n]"), "{json}");
}

/// The two directories of np-guard's documented diff example, written to the same design.
fn minimal(dir2: bool) -> String {
    let mut m = deployment("default", "frontend", "frontendservice", 8080)
        + &deployment("default", "backend", "backendservice", 9090);
    m.push_str("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: frontend-netpol, namespace: default}\nspec:\n  podSelector: {matchLabels: {app: frontendservice}}\n  policyTypes: [Ingress, Egress]\n  ingress:\n    - ports: [{port: 8080, protocol: TCP}]\n  egress:\n    - to: [{podSelector: {matchLabels: {app: backendservice}}}]\n      ports: [{port: 9090, protocol: TCP}]\n    - ports: [{port: 53, protocol: UDP}]\n");
    let ingress = if dir2 {
        "    - from: [{podSelector: {matchLabels: {app: frontendservice}}}]\n      ports: [{port: 9090, protocol: TCP}, {port: 53, protocol: UDP}]\n    - from: [{ipBlock: {cidr: 0.0.0.0/0}}]\n      ports: [{port: 9090, protocol: TCP}]\n"
    } else {
        "    - from: [{podSelector: {matchLabels: {app: frontendservice}}}]\n      ports: [{port: 9090, protocol: TCP}]\n"
    };
    m.push_str(&format!("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: backend-netpol, namespace: default}}\nspec:\n  podSelector: {{matchLabels: {{app: backendservice}}}}\n  policyTypes: [Ingress, Egress]\n  ingress:\n{ingress}"));
    m
}

#[test]
fn the_minimal_example_lists_and_diffs_as_np_guard_documents() {
    let (old, new) = (load(&minimal(false)), load(&minimal(true)));
    assert_eq!(
        lines(&old),
        "0.0.0.0-255.255.255.255 => default/frontend[Deployment] : TCP 8080\n\
         default/frontend[Deployment] => 0.0.0.0-255.255.255.255 : UDP 53\n\
         default/frontend[Deployment] => default/backend[Deployment] : TCP 9090\n"
    );
    let d = diff(&old, &new);
    // docs/diff_output.md, txt.
    assert_eq!(
        d.text(),
        "Connectivity diff:\n\
         diff-type: changed, source: default/frontend[Deployment], destination: default/backend[Deployment], dir1:  TCP 9090, dir2: TCP 9090,UDP 53\n\
         diff-type: added, source: 0.0.0.0-255.255.255.255, destination: default/backend[Deployment], dir1:  No Connections, dir2: TCP 9090\n"
    );
    let opened: Vec<String> = d
        .opened()
        .map(|l| format!("{} {} {}", l.src, l.dst, semble_k8s::netpol::conn_string(&l.opened_ports())))
        .collect();
    assert_eq!(
        opened,
        [
            "default/frontend[Deployment] default/backend[Deployment] UDP 53",
            "0.0.0.0-255.255.255.255 default/backend[Deployment] TCP 9090"
        ]
    );
    // Nothing changes against itself; reversed, the same pairs close.
    assert!(diff(&new, &new).is_empty());
    let back = diff(&new, &old);
    assert_eq!(back.opened().count(), 0);
    assert_eq!(
        back.lines.iter().map(|l| l.change).collect::<Vec<_>>(),
        [semble_k8s::netpol::Change::Changed, semble_k8s::netpol::Change::Removed]
    );
}

#[test]
fn one_policy_change_opening_one_connection_is_one_added_line() {
    let base = format!(
        "{}{}{}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny, namespace: shop}}\nspec: {{podSelector: {{}}, policyTypes: [Ingress, Egress]}}\n",
        deployment("shop", "web", "web", 8080),
        deployment("shop", "api", "api", 8081),
        deployment("shop", "db", "db", 5432)
    );
    let opened = format!(
        "{base}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: api-to-db, namespace: shop}}\nspec:\n  podSelector: {{matchLabels: {{app: db}}}}\n  ingress: [{{from: [{{podSelector: {{matchLabels: {{app: api}}}}}}], ports: [{{port: 5432}}]}}]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: api-egress, namespace: shop}}\nspec:\n  podSelector: {{matchLabels: {{app: api}}}}\n  policyTypes: [Egress]\n  egress: [{{to: [{{podSelector: {{matchLabels: {{app: db}}}}}}], ports: [{{port: 5432}}]}}]\n"
    );
    let (old, new) = (load(&base), load(&opened));
    assert_eq!(lines(&old), "", "default deny: nothing");
    let d = diff(&old, &new);
    assert_eq!(
        d.text(),
        "Connectivity diff:\ndiff-type: added, source: shop/api[Deployment], destination: shop/db[Deployment], dir1:  No Connections, dir2: TCP 5432\n"
    );
    // The rules behind it, for the SARIF location.
    let line = &d.lines[0];
    let (src, dst) = (new.peer(&line.src).unwrap(), new.peer(&line.dst).unwrap());
    let (port, proto) = line.opened_ports().first().unwrap();
    let rules: Vec<String> = new
        .allowing_rules(&src, &dst, port, proto)
        .iter()
        .map(|r| format!("{} {}[{}] {}", r.policy, r.direction, r.index, r.origin))
        .collect();
    assert_eq!(rules, ["shop/api-egress egress[0] m.yaml#5", "shop/api-to-db ingress[0] m.yaml#4"]);
}

#[test]
fn address_blocks_follow_the_policies_ipblocks() {
    let m = deployment("apps", "agent", "agent", 8080)
        + "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: egress, namespace: apps}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n    - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 169.254.0.0/16]}}]\n      ports: [{port: 443}, {port: 8000, endPort: 8010}]\n";
    let c = load(&m);
    assert_eq!(
        lines(&c),
        "0.0.0.0-255.255.255.255 => apps/agent[Deployment] : All Connections\n\
         apps/agent[Deployment] => 0.0.0.0-9.255.255.255 : TCP 443,8000-8010\n\
         apps/agent[Deployment] => 11.0.0.0-169.253.255.255 : TCP 443,8000-8010\n\
         apps/agent[Deployment] => 169.255.0.0-255.255.255.255 : TCP 443,8000-8010\n"
    );
}

#[test]
fn pods_take_their_controllers_name_and_semble_stand_ins_are_not_listed() {
    let m = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: details-v1-79f774bdb9-abcde\n  namespace: default\n  labels: {app: details}\n  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: details-v1-79f774bdb9, controller: true, uid: x}]\nspec: {containers: [{name: c, image: x:1}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: lone, namespace: default}\nspec: {containers: [{name: c, image: x:1}]}\n";
    let c = load(m);
    let text = lines(&c);
    assert!(
        text.contains("default/details-v1-79f774bdb9[ReplicaSet] => default/lone[Pod] : All Connections\n"),
        "{text}"
    );
    assert!(!text.contains("kube-dns") && !text.contains("internet") && !text.contains("metadata"), "{text}");
    assert_eq!(text.lines().count(), 6, "{text}");
}
