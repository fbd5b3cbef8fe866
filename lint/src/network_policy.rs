//! NetworkPolicies: egress open to everything, DNS on UDP only, the proxy bypass, namespace
//! selectors on labels namespaces do not carry, pods isolated for egress without DNS.
//!
//! The semantics are the API's (see `semble_k8s::netpol` for the full model): a policy isolates
//! the pods its `podSelector` selects in its namespace for each direction in `policyTypes`
//! (absent: `Ingress`, plus `Egress` when it has an `egress` section); an isolated pod's allowed
//! traffic is the union of every rule of every policy that selects it; a rule without `to`
//! reaches every destination.
//!
//! The proxy bypass (SB032): a NetworkPolicy applies to a pod, not a container. When a pod's
//! traffic is meant to go through a proxy — a proxy sidecar beside the workload, a semble
//! `network: proxy` policy, or a proxy-only NetworkPolicy — an egress rule that reaches
//! everywhere on some port lets every container reach everywhere on that port, proxy or not.
//! That is the EKS plan's `allow-proxy-443` (`ports: [443]`, no `to`) next to a native sidecar.

use std::collections::BTreeMap;
use std::net::IpAddr;

use semble_policy::diag::Pos;
use semble_policy::yaml::Node;

use crate::cluster::{namespace_of, Cluster, Workload};
use crate::context::{get, path, str_of, Ctx};

pub(crate) fn lint(ctx: &mut Ctx, root: &Node, cluster: &Cluster) {
    let ns = namespace_of(root);
    let rules = path(root, &["spec", "egress"]).and_then(Node::as_seq).unwrap_or(&[]);
    for rule in rules {
        open_ip_blocks(ctx, rule);
        udp_only_dns(ctx, rule);
    }
    namespace_selectors(ctx, root, cluster);
    if isolates_egress(root) {
        proxy_bypass(ctx, root, &ns, cluster);
        missing_dns(ctx, root, &ns, cluster);
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a policy

/// Whether the policy isolates the pods it selects for egress.
pub(crate) fn isolates_egress(root: &Node) -> bool {
    let spec = get(root, "spec");
    match spec.and_then(|s| get(s, "policyTypes")).and_then(Node::as_seq) {
        Some(types) => types.iter().any(|t| t.as_str() == Some("Egress")),
        None => spec.and_then(|s| get(s, "egress")).is_some(),
    }
}

fn egress_rules(root: &Node) -> &[Node] {
    path(root, &["spec", "egress"]).and_then(Node::as_seq).unwrap_or(&[])
}

fn pod_selector(root: &Node) -> Option<&Node> {
    path(root, &["spec", "podSelector"])
}

/// A rule's peers; `None` when it has none (it reaches every destination).
fn peers<'a>(rule: &'a Node, key: &str) -> Option<&'a [Node]> {
    get(rule, key).and_then(Node::as_seq).filter(|p| !p.is_empty())
}

/// Whether a label selector (absent: everything) selects `labels`.
pub(crate) fn selects(sel: Option<&Node>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = sel else { return true };
    if sel.is_null() {
        return true;
    }
    if let Some(m) = get(sel, "matchLabels").and_then(Node::as_map) {
        if !m.iter().all(|(k, v)| v.scalar_text().is_some_and(|v| labels.get(&k.name) == Some(&v))) {
            return false;
        }
    }
    for e in get(sel, "matchExpressions").and_then(Node::as_seq).unwrap_or(&[]) {
        let key = str_of(get(e, "key")).unwrap_or_default();
        let values: Vec<String> =
            get(e, "values").and_then(Node::as_seq).unwrap_or(&[]).iter().filter_map(Node::scalar_text).collect();
        let ok = match str_of(get(e, "operator")).as_deref() {
            Some("In") => labels.get(&key).is_some_and(|v| values.contains(v)),
            Some("NotIn") => labels.get(&key).is_none_or(|v| !values.contains(v)),
            Some("Exists") => labels.contains_key(&key),
            Some("DoesNotExist") => !labels.contains_key(&key),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a selector selects everything (absent, `{}`, or empty lists).
fn selects_all(sel: Option<&Node>) -> bool {
    let Some(sel) = sel else { return true };
    let empty = |k: &str| {
        get(sel, k).is_none_or(|n| {
            n.is_null() || n.as_map().is_some_and(|m| m.is_empty()) || n.as_seq().is_some_and(<[Node]>::is_empty)
        })
    };
    sel.is_null() || (empty("matchLabels") && empty("matchExpressions"))
}

/// The ports a rule allows, as `443/TCP, 53/UDP`, or `every port`.
fn ports_text(rule: &Node) -> String {
    let Some(ports) = get(rule, "ports").and_then(Node::as_seq).filter(|p| !p.is_empty()) else {
        return "every port".into();
    };
    ports
        .iter()
        .map(|p| {
            let proto = str_of(get(p, "protocol")).unwrap_or_else(|| "TCP".into());
            match (get(p, "port").and_then(Node::scalar_text), get(p, "endPort").and_then(Node::as_i64)) {
                (Some(port), Some(end)) => format!("{port}-{end}/{proto}"),
                (Some(port), None) => format!("{port}/{proto}"),
                (None, _) => format!("every {proto} port"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a rule allows port 53 (a number, a range holding it, or the usual DNS port names);
/// `None` ports allow everything.
fn allows_port_53(rule: &Node) -> bool {
    let Some(ports) = get(rule, "ports").and_then(Node::as_seq).filter(|p| !p.is_empty()) else { return true };
    ports.iter().any(|p| match get(p, "port") {
        None => true,
        Some(n) => match n.as_i64() {
            Some(lo) => lo == 53 || (lo < 53 && get(p, "endPort").and_then(Node::as_i64).is_some_and(|hi| hi >= 53)),
            None => matches!(n.as_str(), Some("dns" | "dns-tcp" | "domain")),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Address arithmetic (ipBlocks)

/// Inclusive address ranges of one family, as numbers.
fn range_of(net: &ipnet::IpNet) -> (bool, u128, u128) {
    match net {
        ipnet::IpNet::V4(n) => (true, u128::from(u32::from(n.network())), u128::from(u32::from(n.broadcast()))),
        ipnet::IpNet::V6(n) => (false, u128::from(n.network()), u128::from(n.broadcast())),
    }
}

fn subtract(ranges: Vec<(u128, u128)>, (lo, hi): (u128, u128)) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    for (a, b) in ranges {
        if hi < a || lo > b {
            out.push((a, b));
            continue;
        }
        if lo > a {
            out.push((a, lo - 1));
        }
        if hi < b {
            out.push((hi + 1, b));
        }
    }
    out
}

/// How much of each address family a rule's ipBlocks cover, as a fraction in `[0, 1]`
/// (`(IPv4, IPv6)`).
fn ip_coverage(peers: &[Node]) -> (f64, f64) {
    let mut v4: Vec<(u128, u128)> = Vec::new();
    let mut v6: Vec<(u128, u128)> = Vec::new();
    for peer in peers {
        let Some(b) = get(peer, "ipBlock") else { continue };
        let Some(net) = str_of(get(b, "cidr")).and_then(|c| c.parse::<ipnet::IpNet>().ok()) else { continue };
        let (is_v4, lo, hi) = range_of(&net);
        let mut ranges = vec![(lo, hi)];
        for x in get(b, "except").and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(ex) = x.scalar_text().and_then(|c| c.parse::<ipnet::IpNet>().ok()) {
                let (v, a, z) = range_of(&ex);
                if v == is_v4 {
                    ranges = subtract(ranges, (a, z));
                }
            }
        }
        if is_v4 {
            v4.extend(ranges);
        } else {
            v6.extend(ranges);
        }
    }
    let total = |mut r: Vec<(u128, u128)>, bits: i32| -> f64 {
        r.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::new();
        for (a, b) in r {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        // f64 keeps the magnitude; exactness does not matter for "most of the space".
        merged.iter().map(|(a, b)| (*b - *a) as f64 + 1.0).sum::<f64>() / 2f64.powi(bits)
    };
    (total(v4, 32), total(v6, 128))
}

/// Whether a rule reaches everywhere (on its ports): no `to`, or ipBlocks covering at least half
/// of an address family (0.0.0.0/0 with or without excepts, two /1s…). Returns how it does.
fn everywhere(rule: &Node) -> Option<String> {
    let Some(ps) = peers(rule, "to") else {
        return Some("has no `to`, so it reaches every pod and every address".into());
    };
    let (v4, v6) = ip_coverage(ps);
    if v4 < 0.5 && v6 < 0.5 {
        return None;
    }
    let blocks: Vec<String> = ps
        .iter()
        .filter_map(|p| get(p, "ipBlock").and_then(|b| str_of(get(b, "cidr"))))
        .map(|c| format!("`{c}`"))
        .collect();
    let cluster = ps
        .iter()
        .any(|p| get(p, "ipBlock").is_none() && get(p, "namespaceSelector").is_some_and(|s| selects_all(Some(s))));
    Some(format!(
        "reaches {}every outside address through ipBlock {}",
        if cluster { "every pod (`namespaceSelector: {}`) and " } else { "" },
        blocks.join(", ")
    ))
}

// ---------------------------------------------------------------------------------------------
// SB020, SB021

fn open_ip_blocks(ctx: &mut Ctx, rule: &Node) {
    for peer in get(rule, "to").and_then(Node::as_seq).unwrap_or(&[]) {
        let Some(b) = get(peer, "ipBlock") else { continue };
        let cidr = str_of(get(b, "cidr")).unwrap_or_default();
        let except: Vec<String> =
            get(b, "except").and_then(Node::as_seq).unwrap_or(&[]).iter().filter_map(Node::scalar_text).collect();
        let open = cidr == "0.0.0.0/0" || cidr == "::/0";
        let guards_metadata = except.iter().any(|e| {
            e == "169.254.0.0/16"
                || e == "169.254.169.254/32"
                || e.starts_with("fe80::")
                || e.starts_with("fc00::")
                || e.starts_with("fd00:")
        });
        if open && !guards_metadata {
            ctx.add("SB020", b.pos, format!("egress to {cidr} reaches private ranges and the metadata address"));
        }
    }
}

fn udp_only_dns(ctx: &mut Ctx, rule: &Node) {
    let ports: Vec<(i64, String)> = get(rule, "ports")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|p| Some((get(p, "port")?.as_i64()?, str_of(get(p, "protocol")).unwrap_or_else(|| "TCP".into()))))
        .collect();
    if ports.iter().any(|(p, pr)| *p == 53 && pr == "UDP") && !ports.iter().any(|(p, pr)| *p == 53 && pr == "TCP") {
        let pos = get(rule, "ports").map_or(rule.pos, |n| n.pos);
        ctx.add("SB021", pos, "DNS is allowed on UDP 53 only".into());
    }
}

// ---------------------------------------------------------------------------------------------
// SB033: namespace selectors on labels namespaces do not carry

/// Label keys people write believing every namespace has them.
const NAME_LIKE: &[&str] = &["name", "namespace", "ns", "kubernetes.io/namespace", "metadata.name"];

fn namespace_selectors(ctx: &mut Ctx, root: &Node, cluster: &Cluster) {
    let mut selectors: Vec<&Node> = Vec::new();
    for (dir, key) in [("ingress", "from"), ("egress", "to")] {
        for rule in path(root, &["spec", dir]).and_then(Node::as_seq).unwrap_or(&[]) {
            for peer in get(rule, key).and_then(Node::as_seq).unwrap_or(&[]) {
                if let Some(s) = get(peer, "namespaceSelector") {
                    selectors.push(s);
                }
            }
        }
    }
    for sel in selectors {
        let mut wanted: Vec<(String, String, Pos)> = Vec::new();
        for (k, v) in
            get(sel, "matchLabels").and_then(Node::as_map).map(|m| m.iter().collect::<Vec<_>>()).unwrap_or_default()
        {
            if let Some(v) = v.scalar_text() {
                wanted.push((k.name.clone(), v, k.pos));
            }
        }
        for e in get(sel, "matchExpressions").and_then(Node::as_seq).unwrap_or(&[]) {
            if str_of(get(e, "operator")).as_deref() == Some("In") {
                let key = str_of(get(e, "key")).unwrap_or_default();
                for v in get(e, "values").and_then(Node::as_seq).unwrap_or(&[]) {
                    if let Some(t) = v.scalar_text() {
                        wanted.push((key.clone(), t, v.pos));
                    }
                }
            }
        }
        for (key, value, pos) in wanted {
            if key == "kubernetes.io/metadata.name" {
                continue;
            }
            let carried = cluster.namespaces.values().any(|n| n.labels.get(&key) == Some(&value));
            if carried {
                continue;
            }
            let named = cluster.namespaces.contains_key(&value);
            if NAME_LIKE.contains(&key.as_str()) || named {
                let why = if named {
                    format!("namespace `{value}` is defined here without it")
                } else {
                    "no namespace in the linted files carries it, and Kubernetes adds no such label".into()
                };
                ctx.add(
                    "SB033",
                    pos,
                    format!(
                        "namespaceSelector `{key}: {value}` matches only namespaces labelled so ({why}); every namespace carries `kubernetes.io/metadata.name: {value}`"
                    ),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SB032: the proxy bypass

/// A container in the pod that the workload's traffic is meant to go through.
pub(crate) struct ProxySidecar {
    pub(crate) name: String,
    /// How it was recognised.
    pub(crate) why: &'static str,
}

/// semble-proxy as a native sidecar (an init container with `restartPolicy: Always`).
pub(crate) fn semble_proxy_sidecar(spec: &Node) -> Option<&Node> {
    get(spec, "initContainers").and_then(Node::as_seq).unwrap_or(&[]).iter().find(|c| {
        str_of(get(c, "image")).is_some_and(|i| i.contains("semble-proxy"))
            && str_of(get(c, "restartPolicy")).as_deref() == Some("Always")
    })
}

/// The port an `HTTP_PROXY`-style value points at on the pod's loopback, if it does.
fn loopback_proxy_port(value: &str) -> Option<Option<u16>> {
    let rest = value.trim().split("://").last().unwrap_or("");
    let hostport = rest.split('/').next().unwrap_or("");
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6.split_once(']')?;
            (h, p.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    loopback.then(|| port.and_then(|p| p.parse().ok()))
}

/// The pod's proxy sidecar, if it has one: a native sidecar (or, beside other containers, a
/// regular container) that is semble-proxy, that the other containers' `HTTP(S)_PROXY` points at
/// over loopback, or a native sidecar named or built as a proxy.
pub(crate) fn proxy_sidecar(spec: &Node) -> Option<ProxySidecar> {
    let init: Vec<&Node> = get(spec, "initContainers")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter(|c| str_of(get(c, "restartPolicy")).as_deref() == Some("Always"))
        .collect();
    let main: Vec<&Node> = get(spec, "containers").and_then(Node::as_seq).unwrap_or(&[]).iter().collect();
    let all: Vec<&Node> = init.iter().chain(main.iter()).copied().collect();
    // Ports the containers' proxy settings point at over loopback (`None`: no port written).
    let mut pointed: Vec<(&Node, Option<u16>)> = Vec::new();
    for c in &all {
        for e in get(c, "env").and_then(Node::as_seq).unwrap_or(&[]) {
            let name = str_of(get(e, "name")).unwrap_or_default().to_ascii_uppercase();
            if matches!(name.as_str(), "HTTP_PROXY" | "HTTPS_PROXY" | "ALL_PROXY") {
                if let Some(p) = str_of(get(e, "value")).as_deref().and_then(loopback_proxy_port) {
                    pointed.push((c, p));
                }
            }
        }
    }
    let candidates: Vec<(&Node, bool)> =
        init.iter().map(|c| (*c, true)).chain(main.iter().filter(|_| all.len() > 1).map(|c| (*c, false))).collect();
    for (c, native) in candidates {
        let name = str_of(get(c, "name")).unwrap_or_default();
        let image = str_of(get(c, "image")).unwrap_or_default();
        let ports: Vec<u16> = get(c, "ports")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|p| get(p, "containerPort").and_then(Node::as_i64).and_then(|n| u16::try_from(n).ok()))
            .collect();
        let targeted = pointed.iter().any(|(from, port)| {
            !std::ptr::eq(*from, c)
                && match port {
                    Some(p) => ports.contains(p),
                    None => ports.is_empty(),
                }
        });
        let why = if image.contains("semble-proxy") {
            Some("runs semble-proxy")
        } else if targeted {
            Some("is where the other containers' HTTP(S)_PROXY points")
        } else if native && (name.contains("proxy") || image.contains("proxy")) {
            Some("is a native sidecar proxy")
        } else {
            None
        };
        if let Some(why) = why {
            return Some(ProxySidecar { name, why });
        }
    }
    None
}

/// Why a workload's egress must go through a proxy, if it must.
fn proxied(w: &Workload, cluster: &Cluster) -> Option<String> {
    if let Some(p) = proxy_sidecar(w.spec) {
        return Some(format!(
            "{}/{} has a proxy sidecar (`{}` {}), and a NetworkPolicy applies to every container of the pod",
            w.ns, w.name, p.name, p.why
        ));
    }
    let policy = w
        .meta
        .and_then(|m| get(m, "annotations"))
        .and_then(|a| get(a, semble_policy::facts::POLICY_ANNOTATION))
        .and_then(Node::scalar_text)?;
    let net = cluster.policies.get(&policy)?;
    (net.mode == "proxy").then(|| {
        format!(
            "{}/{} runs under semble policy `{policy}`, whose traffic may leave only through semble-proxy",
            w.ns, w.name
        )
    })
}

/// Whether a peer looks like the proxy: a selector naming a proxy by label value or namespace.
fn proxy_peer(peer: &Node) -> bool {
    ["podSelector", "namespaceSelector"].iter().any(|k| {
        get(peer, k)
            .and_then(|s| get(s, "matchLabels"))
            .and_then(Node::as_map)
            .is_some_and(|m| m.iter().any(|(_, v)| v.scalar_text().is_some_and(|t| t.contains("proxy"))))
    })
}

/// A proxy-only NetworkPolicy: it isolates egress, and every egress rule goes to the proxy, or
/// is DNS (port 53 only), with at least one to the proxy.
fn proxy_only(root: &Node) -> bool {
    if !isolates_egress(root) {
        return false;
    }
    let rules = egress_rules(root);
    let mut to_proxy = false;
    for r in rules {
        let Some(ps) = peers(r, "to") else { return false };
        if ps.iter().any(|p| get(p, "ipBlock").is_some()) {
            return false;
        }
        if ps.iter().all(proxy_peer) {
            to_proxy = true;
            continue;
        }
        let dns_only = get(r, "ports").and_then(Node::as_seq).filter(|p| !p.is_empty()).is_some_and(|ports| {
            ports.iter().all(|p| get(p, "port").and_then(Node::as_i64) == Some(53) && get(p, "endPort").is_none())
        });
        if !dns_only {
            return false;
        }
    }
    to_proxy
}

/// The workloads in `ns` a policy selects.
fn selected<'c, 'a>(root: &Node, ns: &str, cluster: &'c Cluster<'a>) -> Vec<&'c Workload<'a>> {
    cluster.workloads_in(ns).filter(|w| selects(pod_selector(root), &w.labels)).collect()
}

/// Whether two policies of a namespace select some pod in common (by the linted workloads, or,
/// with none there, when the first selects everything or both select alike).
fn overlap(p: &Node, q: &Node, ns: &str, cluster: &Cluster) -> bool {
    let in_ns: Vec<&Workload> = cluster.workloads_in(ns).collect();
    if in_ns.is_empty() {
        return selects_all(pod_selector(p))
            || pod_selector(p).map(Node::to_json) == pod_selector(q).map(Node::to_json);
    }
    in_ns.iter().any(|w| selects(pod_selector(p), &w.labels) && selects(pod_selector(q), &w.labels))
}

fn proxy_bypass(ctx: &mut Ctx, root: &Node, ns: &str, cluster: &Cluster) {
    let me = str_of(path(root, &["metadata", "name"])).unwrap_or_default();
    let mut reasons: Vec<String> = selected(root, ns, cluster).iter().filter_map(|w| proxied(w, cluster)).collect();
    for q in cluster.netpols_in(ns).filter(|q| q.name != me) {
        if proxy_only(q.root) && overlap(root, q.root, ns, cluster) {
            reasons.push(format!(
                "NetworkPolicy {ns}/{} lets these pods reach only their proxy, and policies add up",
                q.name
            ));
        }
    }
    let Some(reason) = reasons.first() else { return };
    for rule in egress_rules(root) {
        if let Some(how) = everywhere(rule) {
            let pos = get(rule, "to").or_else(|| get(rule, "ports")).map_or(rule.pos, |n| n.pos);
            ctx.add(
                "SB032",
                pos,
                format!(
                    "this egress rule {how}, on {ports}; {reason}, so the workload reaches those destinations on {ports} directly, bypassing its proxy",
                    ports = ports_text(rule)
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SB034: isolated for egress without DNS

/// Whether an egress rule of a policy in `ns` lets pods ask a DNS server.
fn allows_dns(rule: &Node, ns: &str, cluster: &Cluster) -> bool {
    if !allows_port_53(rule) {
        return false;
    }
    let explicit_53 = get(rule, "ports").and_then(Node::as_seq).is_some_and(|p| !p.is_empty());
    let Some(ps) = peers(rule, "to") else { return true };
    if explicit_53 {
        // Port 53 written: DNS is meant, wherever the server is.
        return true;
    }
    let dns_labels: BTreeMap<String, String> = [("k8s-app".to_string(), "kube-dns".to_string())].into();
    ps.iter().any(|p| {
        if get(p, "ipBlock").is_some() {
            return true;
        }
        let pods_ok = get(p, "podSelector").is_none_or(|s| selects(Some(s), &dns_labels));
        match get(p, "namespaceSelector") {
            Some(s) => pods_ok && selects(Some(s), &cluster.namespace_labels("kube-system")),
            None => ns == "kube-system" && pods_ok,
        }
    })
}

fn missing_dns(ctx: &mut Ctx, root: &Node, ns: &str, cluster: &Cluster) {
    let dns_in = |q: &Node| egress_rules(q).iter().any(|r| allows_dns(r, ns, cluster));
    if dns_in(root) {
        return;
    }
    let me = str_of(path(root, &["metadata", "name"])).unwrap_or_default();
    let others: Vec<&Node> =
        cluster.netpols_in(ns).filter(|q| q.name != me && isolates_egress(q.root)).map(|q| q.root).collect();
    let pods = selected(root, ns, cluster);
    let without: Vec<String> = if pods.is_empty() {
        // No workloads here: another policy must select at least what this one does.
        let covered = others.iter().any(|q| {
            dns_in(q)
                && (selects_all(pod_selector(q))
                    || pod_selector(q).map(Node::to_json) == pod_selector(root).map(Node::to_json))
        });
        if covered {
            return;
        }
        vec!["the pods it selects".into()]
    } else {
        pods.iter()
            .filter(|w| !others.iter().any(|q| selects(pod_selector(q), &w.labels) && dns_in(q)))
            .map(|w| format!("{}/{}", w.ns, w.name))
            .collect()
    };
    if without.is_empty() {
        return;
    }
    let pos = path(root, &["spec", "egress"])
        .or_else(|| path(root, &["spec", "policyTypes"]))
        .or_else(|| get(root, "spec"))
        .map_or(root.pos, |n| n.pos);
    ctx.add(
        "SB034",
        pos,
        format!(
            "{ns}/{me} isolates {} for egress and no policy lets them reach DNS on port 53: their names stop resolving",
            without.join(", ")
        ),
    );
}
