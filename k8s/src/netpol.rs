//! Who can reach whom under a set of Kubernetes NetworkPolicies (`semble-policy explain --k8s`).
//!
//! The semantics are those of the `networking.k8s.io/v1` API, which every conforming CNI
//! implements:
//!
//! * a pod is *isolated* for a direction only when some NetworkPolicy in its namespace selects it
//!   and lists that direction in `policyTypes` (absent `policyTypes`: `Ingress`, plus `Egress`
//!   when the policy has an `egress` section); a pod no policy isolates is unrestricted in that
//!   direction;
//! * for an isolated pod the allowed traffic is the **union** of the rules of every policy that
//!   selects it; a connection needs the source's egress *and* the destination's ingress to allow
//!   it (one side only where the other end is outside the cluster);
//! * a rule without `from`/`to` matches every peer, without `ports` every port; a peer with both
//!   `namespaceSelector` and `podSelector` selects those pods *in* those namespaces (AND), two
//!   peers are alternatives (OR); `podSelector` alone means the policy's own namespace; namespaces
//!   are matched by their labels, including `kubernetes.io/metadata.name`;
//! * ports may be numbers (with `endPort` for a range) or names, resolved against the
//!   destination pod's container ports; protocol defaults to TCP;
//! * `ipBlock` matches addresses outside the cluster (`except` removes ranges). What `ipBlock`
//!   does to pod IPs is left to the CNI by the API; this model treats pods as never matching an
//!   `ipBlock`, and says so.
//!
//! Endpoints are the pods and pod templates (Deployment, StatefulSet, DaemonSet, ReplicaSet,
//! ReplicationController, Job, CronJob) of the manifests, `kube-system/kube-dns` when the
//! manifests do not define it, and two outside addresses: `internet` (8.8.8.8 stands for any
//! public address; nothing is ever sent) and `metadata` (169.254.169.254).
//!
//! [`Cluster::connlist`] lists every allowed connection the way np-guard's `netpol-analyzer list`
//! (and `roxctl netpol connectivity map`) does, line for line: workloads of the manifests only,
//! outside addresses as the address blocks the policies' ipBlocks cut the space into, the
//! `{ingress-controller}` for Ingress and Route objects ([`connlist`]). [`diff()`] compares two
//! sets of manifests ([`diff`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

mod connlist;
mod diff;
pub mod ipset;

pub use connlist::{conn_string, Connection, RuleRef};
pub use diff::{diff, Change, Diff, DiffLine};

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// SCTP
    Sctp,
}

impl Proto {
    /// `TCP`, `UDP` or `SCTP`, in any case.
    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }
    const ALL: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Sctp];
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
        })
    }
}

/// A set of ports: per protocol, sorted disjoint inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports(BTreeMap<Proto, Vec<(u16, u16)>>);

impl Ports {
    /// Every port of every protocol.
    pub fn all() -> Ports {
        Ports(Proto::ALL.iter().map(|p| (*p, vec![(1, 65535)])).collect())
    }
    fn is_all(&self) -> bool {
        *self == Ports::all()
    }
    /// Whether nothing is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }
    fn add(&mut self, proto: Proto, lo: u16, hi: u16) {
        let v = self.0.entry(proto).or_default();
        v.push((lo, hi));
        v.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::new();
        for (a, b) in v.drain(..) {
            match merged.last_mut() {
                Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *v = merged;
    }
    fn union(&mut self, other: &Ports) {
        for (p, ranges) in &other.0 {
            for (a, b) in ranges {
                self.add(*p, *a, *b);
            }
        }
    }
    fn intersect(&self, other: &Ports) -> Ports {
        let mut out = Ports::default();
        for (p, ra) in &self.0 {
            let Some(rb) = other.0.get(p) else { continue };
            for (a1, b1) in ra {
                for (a2, b2) in rb {
                    let (lo, hi) = ((*a1).max(*a2), (*b1).min(*b2));
                    if lo <= hi {
                        out.add(*p, lo, hi);
                    }
                }
            }
        }
        out
    }
    /// The lowest port of the first protocol (TCP, UDP, SCTP order) in the set.
    pub fn first(&self) -> Option<(u16, Proto)> {
        self.0.iter().find_map(|(p, r)| r.first().map(|(a, _)| (*a, *p)))
    }

    /// What `self` has that `other` does not.
    fn subtract(&self, other: &Ports) -> Ports {
        let mut out = Ports::default();
        for (p, ranges) in &self.0 {
            let cut = other.0.get(p).map(Vec::as_slice).unwrap_or(&[]);
            for (a, b) in ipset::subtract_ranges(ranges.clone(), cut, |x| x - 1, |x| x + 1) {
                out.add(*p, a, b);
            }
        }
        out
    }

    /// Whether `port`/`proto` is in the set.
    pub fn contains(&self, port: u16, proto: Proto) -> bool {
        self.0.get(&proto).is_some_and(|r| r.iter().any(|(a, b)| *a <= port && port <= *b))
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("all ports");
        }
        let mut parts = Vec::new();
        for (p, ranges) in &self.0 {
            for (a, b) in ranges {
                if (*a, *b) == (1, 65535) {
                    parts.push(format!("all/{p}"));
                } else if a == b {
                    parts.push(format!("{a}/{p}"));
                } else {
                    parts.push(format!("{a}-{b}/{p}"));
                }
            }
        }
        f.write_str(&parts.join(", "))
    }
}

/// Something that sends or receives.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `namespace/name` for pods, `internet`, `metadata`, or an address.
    pub id: String,
    /// Where it is.
    pub place: Place,
    /// The workload of the manifests it stands for (`None` for what semble adds: kube-dns,
    /// `internet`, `metadata`, addresses).
    pub workload: Option<Workload>,
}

/// A workload as np-guard names it: the pods' top owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Namespace.
    pub ns: String,
    /// The owner's name (the pod's own for a bare Pod).
    pub name: String,
    /// `Deployment`, `StatefulSet`, …, `Pod`.
    pub kind: String,
    /// The manifest document it comes from (`file#index`).
    pub origin: String,
}

impl Workload {
    /// `namespace/name[Kind]`.
    pub fn label(&self) -> String {
        format!("{}/{}[{}]", self.ns, self.name, self.kind)
    }
}

/// Inside the cluster (a pod) or outside (an address).
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// A pod (or the pods of a template).
    Pod {
        /// Namespace.
        ns: String,
        /// Pod labels.
        labels: BTreeMap<String, String>,
        /// Named container ports: name → (port, protocol).
        named: BTreeMap<String, (u16, Proto)>,
    },
    /// An address outside the cluster.
    External(IpAddr),
}

#[derive(Debug, Clone)]
struct Rule {
    /// `None`: every peer.
    peers: Option<Vec<Peer>>,
    /// `None`: every port.
    ports: Option<Vec<PortSpec>>,
}

#[derive(Debug, Clone)]
enum Peer {
    /// `in_ns`: the namespaces (holding pods) `ns` selects, resolved once after loading.
    Pods {
        ns: Option<LabelSelector>,
        pods: Option<LabelSelector>,
        in_ns: Vec<String>,
    },
    Block {
        cidr: ipnet::IpNet,
        except: Vec<ipnet::IpNet>,
    },
}

#[derive(Debug, Clone)]
struct PortSpec {
    port: Option<IntOrString>,
    end: Option<u16>,
    proto: Proto,
}

#[derive(Debug, Clone)]
struct Policy {
    ns: String,
    name: String,
    /// The manifest document it comes from (`file#index`).
    origin: String,
    selector: LabelSelector,
    ingress: Option<Vec<Rule>>,
    egress: Option<Vec<Rule>>,
    /// The IPv4 blocks its ingress (`from`) and egress (`to`) ipBlocks name, one per range,
    /// whatever `policyTypes` says (np-guard partitions the address space on them).
    src_blocks: Vec<ipset::IpSet>,
    dst_blocks: Vec<ipset::IpSet>,
}

/// A Service with a selector (for the Ingress and Route objects that name it).
#[derive(Debug, Clone)]
struct Service {
    ns: String,
    name: String,
    selector: BTreeMap<String, String>,
    ports: Vec<ServicePort>,
}

#[derive(Debug, Clone)]
struct ServicePort {
    name: Option<String>,
    port: i32,
    target: Option<IntOrString>,
}

/// An Ingress or Route backend: a Service in the object's namespace, and the port it names
/// (`None`: every port of the Service).
#[derive(Debug, Clone)]
struct Backend {
    ns: String,
    service: String,
    port: Option<IntOrString>,
}

/// The manifests, read.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Every endpoint (pods first, then outside addresses).
    pub endpoints: Vec<Endpoint>,
    policies: Vec<Policy>,
    /// Policy indexes by namespace.
    by_ns: BTreeMap<String, Vec<usize>>,
    /// Endpoint indexes of pods by namespace.
    pods_by_ns: BTreeMap<String, Vec<usize>>,
    /// Things worth knowing about the input (unsupported fields, ignored objects).
    pub notes: Vec<String>,
    services: Vec<Service>,
    backends: Vec<Backend>,
    /// Named container ports of the workloads' regular containers (np-guard reads only these
    /// for Services), by endpoint index.
    container_ports: BTreeMap<usize, Vec<(Option<String>, u16, Proto)>>,
}

/// A problem with one manifest document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct LoadError {
    /// Which document (`file#index kind/name`).
    pub what: String,
    /// What is wrong.
    pub message: String,
}

/// Why [`Cluster::find`] found no endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    /// No workload has that name.
    #[error("no workload `{what}` in the manifests; name one as NAMESPACE/NAME ({}), or use `internet`, `metadata` or an IP address", known.join(", "))]
    Unknown {
        /// What was asked for.
        what: String,
        /// Some workloads there are.
        known: Vec<String>,
    },
    /// Several workloads in different namespaces have that name.
    #[error("`{what}` is ambiguous: {}; write NAMESPACE/NAME", candidates.join(", "))]
    Ambiguous {
        /// What was asked for.
        what: String,
        /// The workloads it could mean.
        candidates: Vec<String>,
    },
}

fn sel_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(m) = &sel.match_labels {
        if !m.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        let ok = match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn named_ports(spec: &PodSpec) -> BTreeMap<String, (u16, Proto)> {
    let mut out = BTreeMap::new();
    let all: Vec<&Container> = spec.containers.iter().chain(spec.init_containers.iter().flatten()).collect();
    for c in all {
        for p in c.ports.iter().flatten() {
            if let (Some(name), Ok(port)) = (&p.name, u16::try_from(p.container_port)) {
                let proto = p.protocol.as_deref().and_then(Proto::parse).unwrap_or(Proto::Tcp);
                out.insert(name.clone(), (port, proto));
            }
        }
    }
    out
}

impl Cluster {
    /// Read documents (JSON values of parsed YAML); `source` names them in errors.
    pub fn load(docs: &[(String, Value)]) -> Result<Cluster, LoadError> {
        let mut c = Cluster::default();
        for (what, v) in docs {
            let kind = v["kind"].as_str().unwrap_or("");
            let name = v["metadata"]["name"].as_str().unwrap_or("");
            let ns = v["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
            let err =
                |e: serde_json::Error| LoadError { what: format!("{what} {kind}/{name}"), message: e.to_string() };
            let template = |path: &[&str]| -> Option<Value> {
                let mut cur = v;
                for p in path {
                    cur = cur.get(*p)?;
                }
                Some(cur.clone())
            };
            // A workload: its place, its identity as np-guard names it, its containers' ports.
            type Pod = (Place, Workload, Vec<(Option<String>, u16, Proto)>);
            let pod = |labels: Option<&Value>,
                       spec: Option<Value>,
                       owner: (String, String)|
             -> Result<Option<Pod>, LoadError> {
                let labels: BTreeMap<String, String> = match labels {
                    Some(l) if !l.is_null() => serde_json::from_value(l.clone()).map_err(err)?,
                    _ => BTreeMap::new(),
                };
                let spec: PodSpec = match spec {
                    Some(s) => serde_json::from_value(s).map_err(err)?,
                    None => return Ok(None),
                };
                if spec.host_network == Some(true) {
                    return Ok(None);
                }
                let ports = spec
                    .containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .filter_map(|p| {
                        let proto = p.protocol.as_deref().and_then(Proto::parse).unwrap_or(Proto::Tcp);
                        Some((p.name.clone(), u16::try_from(p.container_port).ok()?, proto))
                    })
                    .collect();
                let (kind, name) = owner;
                let workload = Workload { ns: ns.clone(), name, kind, origin: what.clone() };
                Ok(Some((Place::Pod { ns: ns.clone(), labels, named: named_ports(&spec) }, workload, ports)))
            };
            let own = (kind.to_string(), name.to_string());
            let place = match kind {
                "Namespace" => {
                    let mut labels: BTreeMap<String, String> = match v["metadata"].get("labels") {
                        Some(l) if !l.is_null() => serde_json::from_value(l.clone()).map_err(err)?,
                        _ => BTreeMap::new(),
                    };
                    labels.insert("kubernetes.io/metadata.name".into(), name.to_string());
                    c.namespaces.insert(name.to_string(), labels);
                    None
                }
                "Pod" => {
                    // A pod a controller owns is that controller's (np-guard names it so).
                    let owner = v["metadata"]["ownerReferences"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|r| r["controller"] == true)
                        .filter(|r| r["kind"] != "Node")
                        .and_then(|r| Some((r["kind"].as_str()?.to_string(), r["name"].as_str()?.to_string())))
                        .unwrap_or(own);
                    pod(v["metadata"].get("labels"), template(&["spec"]), owner)?
                }
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
                    pod(v["spec"]["template"]["metadata"].get("labels"), template(&["spec", "template", "spec"]), own)?
                }
                "CronJob" => pod(
                    v["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels"),
                    template(&["spec", "jobTemplate", "spec", "template", "spec"]),
                    own,
                )?,
                "NetworkPolicy" => {
                    let np: NetworkPolicy = serde_json::from_value(v.clone()).map_err(err)?;
                    c.policies.push(
                        Policy::from_api(&ns, what, np)
                            .map_err(|m| LoadError { what: format!("{what} {kind}/{name}"), message: m })?,
                    );
                    None
                }
                "Service" => {
                    c.load_service(&ns, name, v);
                    None
                }
                "Ingress" => {
                    c.load_ingress(&ns, v);
                    None
                }
                "Route" => {
                    c.load_route(&ns, v);
                    None
                }
                _ => None,
            };
            if let Some((place, workload, ports)) = place {
                c.container_ports.insert(c.endpoints.len(), ports);
                c.endpoints.push(Endpoint { id: format!("{ns}/{name}"), place, workload: Some(workload) });
            }
            if kind != "Namespace" && !ns.is_empty() {
                c.namespaces
                    .entry(ns.clone())
                    .or_insert_with(|| [("kubernetes.io/metadata.name".to_string(), ns.clone())].into());
            }
        }
        let has_dns = c.endpoints.iter().any(|e| {
            matches!(&e.place, Place::Pod { ns, labels, .. } if ns == "kube-system" && labels.get("k8s-app").map(String::as_str) == Some("kube-dns"))
        });
        if !has_dns {
            c.namespaces
                .entry("kube-system".into())
                .or_insert_with(|| [("kubernetes.io/metadata.name".to_string(), "kube-system".to_string())].into());
            c.endpoints.push(Endpoint {
                id: "kube-system/kube-dns".into(),
                place: Place::Pod {
                    ns: "kube-system".into(),
                    labels: [("k8s-app".to_string(), "kube-dns".to_string())].into(),
                    named: [("dns".to_string(), (53, Proto::Udp)), ("dns-tcp".to_string(), (53, Proto::Tcp))].into(),
                },
                workload: None,
            });
        }
        for (id, ip) in [("internet", "8.8.8.8"), ("metadata", "169.254.169.254")] {
            if let Ok(ip) = ip.parse() {
                c.endpoints.push(Endpoint { id: id.into(), place: Place::External(ip), workload: None });
            }
        }
        for (i, p) in c.policies.iter().enumerate() {
            c.by_ns.entry(p.ns.clone()).or_default().push(i);
        }
        for (i, e) in c.endpoints.iter().enumerate() {
            if let Place::Pod { ns, .. } = &e.place {
                c.pods_by_ns.entry(ns.clone()).or_default().push(i);
            }
        }
        // Resolve each peer's namespace selector once.
        let mut policies = std::mem::take(&mut c.policies);
        for p in &mut policies {
            let own = p.ns.clone();
            for r in p.ingress.iter_mut().flatten().chain(p.egress.iter_mut().flatten()) {
                for peer in r.peers.iter_mut().flatten() {
                    if let Peer::Pods { ns, in_ns, .. } = peer {
                        *in_ns = match ns {
                            Some(sel) => c.pods_by_ns.keys().filter(|n| c.ns_matches(sel, n)).cloned().collect(),
                            None => vec![own.clone()],
                        };
                    }
                }
            }
        }
        c.policies = policies;
        if c.policies
            .iter()
            .any(|p| p.all_rules().any(|r| r.peers.iter().flatten().any(|x| matches!(x, Peer::Block { .. }))))
        {
            c.notes.push("ipBlock peers are taken to match only addresses outside the cluster (the API leaves pod IPs in an ipBlock to the CNI)".into());
        }
        Ok(c)
    }

    /// An endpoint by `namespace/name`, a unique `name`, `internet`, `metadata`, or an address.
    pub fn find(&self, what: &str) -> Result<Endpoint, FindError> {
        if let Some(e) = self.endpoints.iter().find(|e| e.id == what) {
            return Ok(e.clone());
        }
        if let Ok(ip) = what.parse::<IpAddr>() {
            return Ok(Endpoint { id: what.to_string(), place: Place::External(ip), workload: None });
        }
        let by_name: Vec<&Endpoint> = self.endpoints.iter().filter(|e| e.id.rsplit('/').next() == Some(what)).collect();
        match by_name.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(FindError::Unknown {
                what: what.to_string(),
                known: self.endpoints.iter().take(6).map(|e| e.id.clone()).collect(),
            }),
            many => Err(FindError::Ambiguous {
                what: what.to_string(),
                candidates: many.iter().map(|e| e.id.clone()).collect(),
            }),
        }
    }

    fn ns_matches(&self, sel: &LabelSelector, ns: &str) -> bool {
        match self.namespaces.get(ns) {
            Some(labels) => sel_matches(sel, labels),
            None => sel_matches(sel, &[("kubernetes.io/metadata.name".to_string(), ns.to_string())].into()),
        }
    }

    fn peer_matches(&self, policy_ns: &str, peer: &Peer, e: &Endpoint) -> bool {
        match (peer, &e.place) {
            (Peer::Pods { ns, pods, .. }, Place::Pod { ns: pns, labels, .. }) => {
                let ns_ok = match ns {
                    Some(sel) => self.ns_matches(sel, pns),
                    None => pns == policy_ns,
                };
                ns_ok && pods.as_ref().is_none_or(|s| sel_matches(s, labels))
            }
            (Peer::Block { cidr, except }, Place::External(ip)) => {
                cidr.contains(ip) && !except.iter().any(|x| x.contains(ip))
            }
            _ => false,
        }
    }

    /// The policies isolating `e` for ingress (`ingress == true`) or egress.
    fn isolating(&self, e: &Endpoint, ingress: bool) -> Vec<&Policy> {
        let Place::Pod { ns, labels, .. } = &e.place else { return Vec::new() };
        self.by_ns
            .get(ns)
            .into_iter()
            .flatten()
            .filter_map(|i| self.policies.get(*i))
            .filter(|p| sel_matches(&p.selector, labels))
            .filter(|p| if ingress { p.ingress.is_some() } else { p.egress.is_some() })
            .collect()
    }

    /// The ports `rule` allows towards `dst`.
    fn rule_ports(rule: &Rule, dst: &Endpoint) -> Ports {
        let Some(specs) = &rule.ports else { return Ports::all() };
        let mut out = Ports::default();
        for s in specs {
            match &s.port {
                None => out.add(s.proto, 1, 65535),
                Some(IntOrString::Int(n)) => {
                    if let Ok(lo) = u16::try_from(*n) {
                        out.add(s.proto, lo, s.end.unwrap_or(lo).max(lo));
                    }
                }
                Some(IntOrString::String(name)) => {
                    if let Place::Pod { named, .. } = &dst.place {
                        if let Some((port, proto)) = named.get(name) {
                            if *proto == s.proto {
                                out.add(*proto, *port, *port);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// One side of a connection: what `ours` (selected by the policies) allows with `peer`.
    /// `dst` resolves named ports. Returns the ports and, per port set, the rules that allow.
    fn side(&self, ours: &Endpoint, peer: &Endpoint, dst: &Endpoint, ingress: bool, explain: bool) -> SideResult {
        if matches!(ours.place, Place::External(_)) {
            return SideResult { isolated_by: Vec::new(), ports: Ports::all(), rules: Vec::new() };
        }
        let pols = self.isolating(ours, ingress);
        if pols.is_empty() {
            return SideResult { isolated_by: Vec::new(), ports: Ports::all(), rules: Vec::new() };
        }
        let mut ports = Ports::default();
        let mut rules = Vec::new();
        for p in &pols {
            let list = if ingress { p.ingress.as_ref() } else { p.egress.as_ref() };
            for (i, r) in list.into_iter().flatten().enumerate() {
                let matches = r.peers.as_ref().is_none_or(|ps| ps.iter().any(|x| self.peer_matches(&p.ns, x, peer)));
                if matches {
                    let rp = Cluster::rule_ports(r, dst);
                    if !rp.is_empty() {
                        if explain {
                            let dir = if ingress { "ingress" } else { "egress" };
                            rules.push((format!("{}/{} {dir}[{i}]", p.ns, p.name), rp.clone()));
                        }
                        ports.union(&rp);
                    }
                }
            }
        }
        let isolated_by =
            if explain { pols.iter().map(|p| format!("{}/{}", p.ns, p.name)).collect() } else { vec![String::new()] };
        SideResult { isolated_by, ports, rules }
    }

    /// The ports on which `src` may connect to `dst`.
    pub fn allowed(&self, src: &Endpoint, dst: &Endpoint) -> Ports {
        if matches!((&src.place, &dst.place), (Place::External(_), Place::External(_))) {
            return Ports::default();
        }
        let eg = self.side(src, dst, dst, false, false);
        if eg.ports.is_empty() {
            return eg.ports;
        }
        let ing = self.side(dst, src, dst, true, false);
        eg.ports.intersect(&ing.ports)
    }

    /// Answer one question, with the rules that decide it.
    pub fn query(&self, src: &Endpoint, dst: &Endpoint, port: u16, proto: Proto) -> Answer {
        let mut lines = Vec::new();
        let mut allowed = true;
        if matches!((&src.place, &dst.place), (Place::External(_), Place::External(_))) {
            return Answer {
                allowed: false,
                lines: vec!["both ends are outside the cluster: NetworkPolicies say nothing about that".into()],
            };
        }
        for (ingress, ours, peer) in [(false, src, dst), (true, dst, src)] {
            let dir = if ingress { "ingress" } else { "egress" };
            if matches!(ours.place, Place::External(_)) {
                lines.push(format!("{dir}: {} is outside the cluster (no policy applies)", ours.id));
                continue;
            }
            let s = self.side(ours, peer, dst, ingress, true);
            if s.isolated_by.is_empty() {
                lines.push(format!("{dir}: allowed — no NetworkPolicy selects {} for {dir}", ours.id));
                continue;
            }
            match s.rules.iter().find(|(_, p)| p.contains(port, proto)) {
                Some((rule, _)) => lines.push(format!("{dir}: allowed by {rule}")),
                None => {
                    allowed = false;
                    let near = if s.rules.is_empty() {
                        format!("no rule of theirs matches {}", peer.id)
                    } else {
                        format!(
                            "their rules for {} allow only {}",
                            peer.id,
                            s.rules.iter().map(|(r, p)| format!("{p} ({r})")).collect::<Vec<_>>().join("; ")
                        )
                    };
                    lines.push(format!(
                        "{dir}: denied — {} is isolated for {dir} by {} and {near}",
                        ours.id,
                        s.isolated_by.join(", ")
                    ));
                }
            }
        }
        Answer { allowed, lines }
    }

    /// Every allowed connection, as rows. Pairs where neither end is isolated in the direction
    /// that matters (the source for egress, the destination for ingress) are unrestricted and
    /// summarised in one row instead of listed pair by pair.
    pub fn table(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        let egress_isolated: Vec<bool> = self.endpoints.iter().map(|e| !self.isolating(e, false).is_empty()).collect();
        let ingress_isolated: Vec<bool> = self.endpoints.iter().map(|e| !self.isolating(e, true).is_empty()).collect();
        let push = |i: usize, j: usize, rows: &mut Vec<Row>| {
            if let (Some(src), Some(dst)) = (self.endpoints.get(i), self.endpoints.get(j)) {
                let ports = self.allowed(src, dst);
                if !ports.is_empty() {
                    rows.push(Row { from: src.id.clone(), to: dst.id.clone(), ports: ports.to_string() });
                }
            }
        };
        // Sources isolated for egress: the destinations their rules name (then both sides are
        // checked). Then destinations isolated for ingress: the sources their rules name, among
        // sources not isolated for egress (the others were covered). Unrestricted pairs are
        // summarised below.
        for (i, src) in self.endpoints.iter().enumerate() {
            if !egress_isolated[i] {
                continue;
            }
            for j in self.candidates(src, false) {
                if j != i {
                    push(i, j, &mut rows);
                }
            }
        }
        for (j, dst) in self.endpoints.iter().enumerate() {
            if !ingress_isolated[j] {
                continue;
            }
            for i in self.candidates(dst, true) {
                if i != j && !egress_isolated[i] {
                    push(i, j, &mut rows);
                }
            }
        }
        rows.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
        let pods = |iso: &[bool]| {
            self.endpoints.iter().zip(iso).filter(|(e, i)| !**i && matches!(e.place, Place::Pod { .. })).count()
        };
        let (free_src, free_dst) = (pods(&egress_isolated), pods(&ingress_isolated));
        if free_src > 0 {
            rows.push(Row {
                from: format!("({free_src} pods without an egress policy)"),
                to: format!("({free_dst} pods without an ingress policy, any outside address)"),
                ports: "all ports".into(),
            });
        }
        if free_dst > 0 {
            rows.push(Row {
                from: "(any outside address)".into(),
                to: format!("({free_dst} pods without an ingress policy)"),
                ports: "all ports".into(),
            });
        }
        rows
    }
}

impl Cluster {
    /// The endpoints the rules of the policies isolating `e` name as peers.
    fn candidates(&self, e: &Endpoint, ingress: bool) -> Vec<usize> {
        let mut out = BTreeSet::new();
        for p in self.isolating(e, ingress) {
            let rules = if ingress { p.ingress.as_ref() } else { p.egress.as_ref() };
            for r in rules.into_iter().flatten() {
                let Some(peers) = &r.peers else { return (0..self.endpoints.len()).collect() };
                for peer in peers {
                    match peer {
                        Peer::Pods { pods, in_ns, .. } => {
                            for n in in_ns {
                                for &i in self.pods_by_ns.get(n).into_iter().flatten() {
                                    let hit = match (&self.endpoints[i].place, pods) {
                                        (_, None) => true,
                                        (Place::Pod { labels, .. }, Some(sel)) => sel_matches(sel, labels),
                                        _ => false,
                                    };
                                    if hit {
                                        out.insert(i);
                                    }
                                }
                            }
                        }
                        Peer::Block { .. } => {
                            for (i, x) in self.endpoints.iter().enumerate() {
                                if matches!(x.place, Place::External(_)) && self.peer_matches(&p.ns, peer, x) {
                                    out.insert(i);
                                }
                            }
                        }
                    }
                }
            }
        }
        out.into_iter().collect()
    }
}

struct SideResult {
    isolated_by: Vec<String>,
    ports: Ports,
    rules: Vec<(String, Ports)>,
}

/// The answer to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Allowed or not.
    pub allowed: bool,
    /// Why, one line per direction.
    pub lines: Vec<String>,
}

/// One allowed connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// Source.
    pub from: String,
    /// Destination.
    pub to: String,
    /// Allowed ports.
    pub ports: String,
}

impl Policy {
    fn all_rules(&self) -> impl Iterator<Item = &Rule> {
        self.ingress.iter().flatten().chain(self.egress.iter().flatten())
    }

    fn from_api(ns: &str, origin: &str, np: NetworkPolicy) -> Result<Policy, String> {
        let name = np.metadata.name.clone().unwrap_or_default();
        let spec = np.spec.unwrap_or_default();
        // The blocks np-guard partitions on: every ipBlock of every rule, policyTypes or not.
        let blocks = |peers: Vec<Option<&Vec<NetworkPolicyPeer>>>| -> Vec<ipset::IpSet> {
            let mut out = Vec::new();
            for b in peers.into_iter().flatten().flatten().filter_map(|p| p.ip_block.as_ref()) {
                let Some(mut set) = b.cidr.parse().ok().as_ref().and_then(ipset::IpSet::from_net) else { continue };
                for x in b.except.iter().flatten() {
                    if let Some(hole) = x.parse().ok().as_ref().and_then(ipset::IpSet::from_net) {
                        set = set.subtract(&hole);
                    }
                }
                out.extend(set.split());
            }
            out
        };
        let src_blocks = blocks(spec.ingress.iter().flatten().map(|r| r.from.as_ref()).collect());
        let dst_blocks = blocks(spec.egress.iter().flatten().map(|r| r.to.as_ref()).collect());
        let types: Option<BTreeSet<String>> = spec.policy_types.clone().map(|t| t.into_iter().collect());
        let has_ingress = types.as_ref().is_none_or(|t| t.contains("Ingress"));
        let has_egress = types.as_ref().map_or(spec.egress.is_some(), |t| t.contains("Egress"));
        let conv_peers = |peers: Option<Vec<NetworkPolicyPeer>>| -> Result<Option<Vec<Peer>>, String> {
            match peers {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(None),
                Some(v) => v
                    .into_iter()
                    .map(|p| match p.ip_block {
                        Some(b) => Ok(Peer::Block {
                            cidr: b.cidr.parse().map_err(|_| format!("ipBlock.cidr `{}` is not a CIDR", b.cidr))?,
                            except: b
                                .except
                                .unwrap_or_default()
                                .iter()
                                .map(|x| x.parse().map_err(|_| format!("ipBlock.except `{x}` is not a CIDR")))
                                .collect::<Result<_, _>>()?,
                        }),
                        None => Ok(Peer::Pods { ns: p.namespace_selector, pods: p.pod_selector, in_ns: Vec::new() }),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
            }
        };
        let conv_ports = |ports: Option<Vec<NetworkPolicyPort>>| -> Result<Option<Vec<PortSpec>>, String> {
            match ports {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(None),
                Some(v) => v
                    .into_iter()
                    .map(|p| {
                        let proto = match p.protocol.as_deref() {
                            None => Proto::Tcp,
                            Some(s) => {
                                Proto::parse(s).ok_or_else(|| format!("protocol `{s}` is not TCP, UDP or SCTP"))?
                            }
                        };
                        let end = match p.end_port {
                            None => None,
                            Some(e) => Some(u16::try_from(e).map_err(|_| format!("endPort {e} is not a port"))?),
                        };
                        Ok(PortSpec { port: p.port, end, proto })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
            }
        };
        let ingress = if has_ingress {
            Some(
                spec.ingress
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| Ok(Rule { peers: conv_peers(r.from)?, ports: conv_ports(r.ports)? }))
                    .collect::<Result<Vec<_>, String>>()?,
            )
        } else {
            None
        };
        let egress = if has_egress {
            Some(
                spec.egress
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| Ok(Rule { peers: conv_peers(r.to)?, ports: conv_ports(r.ports)? }))
                    .collect::<Result<Vec<_>, String>>()?,
            )
        } else {
            None
        };
        Ok(Policy {
            ns: ns.to_string(),
            name,
            origin: origin.to_string(),
            selector: spec.pod_selector.unwrap_or_default(),
            ingress,
            egress,
            src_blocks,
            dst_blocks,
        })
    }
}
