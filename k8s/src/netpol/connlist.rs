//! The connectivity list in np-guard's `netpol-analyzer list` format.
//!
//! ```text
//! 0.0.0.0-255.255.255.255 => backend/api[Deployment] : All Connections
//! backend/checkout[Deployment] => payments/gateway[Deployment] : TCP 8080
//! sandboxes/workspace[Deployment] => kube-system/coredns[Deployment] : TCP 53,UDP 53
//! {ingress-controller} => frontend/webapp[Deployment] : TCP 8080
//! ```
//!
//! One line per ordered pair of peers with at least one allowed connection, as np-guard decides
//! them (`pkg/netpol/connlist/connlist.go`):
//!
//! * peers are the workloads of the manifests, named `namespace/name[Kind]` by their top owner
//!   (a Pod with a controlling owner reference is that owner's), and the outside address blocks
//!   the policies' ipBlocks cut IPv4 into ([`super::ipset::disjoint`]): sources from the ingress
//!   rules' blocks, destinations from the egress rules' blocks, `0.0.0.0-255.255.255.255` when
//!   there are none. semble's stand-ins (an implicit kube-dns, `internet`, `metadata`) are not
//!   peers here. A pair of address blocks, and a workload with itself, are not listed;
//! * the connection is `All Connections` when every port of TCP, UDP and SCTP is allowed, else
//!   per protocol `TCP 80,8080-8090` (ranges as `first-last`), protocols joined by `,` in string
//!   order;
//! * `{ingress-controller}` reaches the workloads an Ingress or an OpenShift Route sends traffic
//!   to — through a Service with a selector in the same namespace, on the TCP ports the Service
//!   maps to and the pods declare — where the workloads' ingress policies admit a pod of another
//!   namespace that no label selects;
//! * lines sort by source, then destination, byte for byte.
//!
//! Where semble's model differs from np-guard's, semble's is kept and said so: hostNetwork pods
//! are not peers (NetworkPolicies do not apply to them), and IPv6 ipBlocks do not cut blocks
//! (np-guard reads IPv4 only).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::ipset::{self, IpSet};
use super::{Backend, Cluster, Endpoint, Place, Ports, Proto, Service, ServicePort};

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Connection {
    /// Source peer, as np-guard writes it.
    pub src: String,
    /// Destination peer.
    pub dst: String,
    /// The allowed connections.
    #[serde(rename = "conn", serialize_with = "ser_conn")]
    pub ports: Ports,
}

fn ser_conn<S: serde::Serializer>(p: &Ports, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&conn_string(p))
}

impl Connection {
    /// The text line: `src => dst : conn`.
    pub fn line(&self) -> String {
        format!("{} => {} : {}", self.src, self.dst, conn_string(&self.ports))
    }
}

/// np-guard's connection text: `All Connections`, or `TCP 80,443,UDP 53` (`No Connections` for
/// none).
pub fn conn_string(p: &Ports) -> String {
    if p.is_all() {
        return "All Connections".into();
    }
    if p.is_empty() {
        return "No Connections".into();
    }
    let mut parts: Vec<String> =
        p.0.iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(proto, ranges)| {
                let ports: Vec<String> =
                    ranges.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
                format!("{proto} {}", ports.join(","))
            })
            .collect();
    parts.sort();
    parts.join(",")
}

/// The np-guard name of the ingress controller.
pub(super) const INGRESS_CONTROLLER: &str = "{ingress-controller}";
/// The namespace np-guard puts its stand-in ingress controller pod in.
const INGRESS_CONTROLLER_NS: &str = "ingress-controller-ns";

fn int_or_string(v: &Value) -> Option<IntOrString> {
    match v {
        Value::Number(n) => n.as_i64().and_then(|i| i32::try_from(i).ok()).map(IntOrString::Int),
        Value::String(s) => Some(IntOrString::String(s.clone())),
        _ => None,
    }
}

impl Cluster {
    pub(super) fn load_service(&mut self, ns: &str, name: &str, v: &Value) {
        let Some(sel) = v["spec"]["selector"].as_object() else { return };
        let selector: BTreeMap<String, String> =
            sel.iter().filter_map(|(k, x)| Some((k.clone(), x.as_str()?.to_string()))).collect();
        let ports = v["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some(ServicePort {
                    name: p["name"].as_str().map(str::to_string),
                    port: i32::try_from(p["port"].as_i64()?).ok()?,
                    target: int_or_string(&p["targetPort"]),
                })
            })
            .collect();
        self.services.push(Service { ns: ns.to_string(), name: name.to_string(), selector, ports });
    }

    pub(super) fn load_ingress(&mut self, ns: &str, v: &Value) {
        let backend = |b: &Value| -> Option<Backend> {
            let svc = &b["service"];
            let port = match (svc["port"]["name"].as_str(), svc["port"]["number"].as_i64()) {
                (Some(n), _) if !n.is_empty() => Some(IntOrString::String(n.to_string())),
                (_, Some(n)) => i32::try_from(n).ok().map(IntOrString::Int),
                _ => None,
            };
            Some(Backend { ns: ns.to_string(), service: svc["name"].as_str()?.to_string(), port })
        };
        let default = backend(&v["spec"]["defaultBackend"]);
        let paths = v["spec"]["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["http"]["paths"].as_array().into_iter().flatten())
            .filter_map(|p| backend(&p["backend"]));
        self.backends.extend(default.into_iter().chain(paths));
    }

    pub(super) fn load_route(&mut self, ns: &str, v: &Value) {
        let port = int_or_string(&v["spec"]["port"]["targetPort"]);
        let is_service = |t: &Value| t["kind"].as_str().is_none_or(|k| k.is_empty() || k == "Service");
        let to =
            std::iter::once(&v["spec"]["to"]).chain(v["spec"]["alternateBackends"].as_array().into_iter().flatten());
        for t in to.filter(|t| is_service(t)) {
            if let Some(service) = t["name"].as_str() {
                self.backends.push(Backend { ns: ns.to_string(), service: service.to_string(), port: port.clone() });
            }
        }
    }

    /// The TCP ports the Ingress and Route objects send to each workload (by endpoint index).
    fn ingress_targets(&self) -> BTreeMap<usize, Ports> {
        let mut out: BTreeMap<usize, Ports> = BTreeMap::new();
        for b in &self.backends {
            let Some(svc) = self.services.iter().find(|s| s.ns == b.ns && s.name == b.service) else { continue };
            // The pod-side port(s) the backend's port maps to (all of the Service's without one).
            let access: Vec<IntOrString> = match &b.port {
                None => svc.ports.iter().map(service_target).collect(),
                Some(want) => svc
                    .ports
                    .iter()
                    .find(|p| match want {
                        IntOrString::String(n) => {
                            p.name.as_deref() == Some(n.as_str()) || p.target.as_ref() == Some(want)
                        }
                        IntOrString::Int(n) => p.port == *n || p.target.as_ref() == Some(want),
                    })
                    .map(service_target)
                    .into_iter()
                    .collect(),
            };
            for (i, e) in self.endpoints.iter().enumerate() {
                let Place::Pod { ns, labels, .. } = &e.place else { continue };
                if e.workload.is_none() || ns != &svc.ns || !svc.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                {
                    continue;
                }
                let declared = self.container_ports.get(&i).map(Vec::as_slice).unwrap_or(&[]);
                for a in &access {
                    let port = match a {
                        IntOrString::Int(n) => u16::try_from(*n).ok(),
                        IntOrString::String(name) => declared
                            .iter()
                            .find(|(n, _, proto)| n.as_deref() == Some(name.as_str()) && *proto == Proto::Tcp)
                            .map(|(_, p, _)| *p),
                    };
                    // Only ports the pod declares (np-guard reads every declared port as TCP).
                    if let Some(p) = port.filter(|p| declared.iter().any(|(_, d, _)| d == p)) {
                        out.entry(i).or_default().add(Proto::Tcp, p, p);
                    }
                }
            }
        }
        out
    }

    /// The connectivity list, sorted as np-guard sorts it.
    pub fn connlist(&self) -> Vec<Connection> {
        self.connlist_with_blocks(&[], &[])
    }

    /// The connectivity list with the address space also cut on `src_extra` / `dst_extra`
    /// (a diff lists two sets of manifests over the same blocks).
    pub fn connlist_with_blocks(&self, src_extra: &[IpSet], dst_extra: &[IpSet]) -> Vec<Connection> {
        let (src_blocks, dst_blocks) = self.address_blocks(src_extra, dst_extra);
        let block_ep = |b: &IpSet| -> Option<Endpoint> {
            Some(Endpoint { id: b.ranges(), place: Place::External(IpAddr::V4(b.first()?)), workload: None })
        };
        let src_ips: Vec<Endpoint> = src_blocks.iter().filter_map(block_ep).collect();
        let dst_ips: Vec<Endpoint> = dst_blocks.iter().filter_map(block_ep).collect();
        let workloads: Vec<usize> =
            self.endpoints.iter().enumerate().filter(|(_, e)| e.workload.is_some()).map(|(i, _)| i).collect();
        let label = |i: usize| self.endpoints[i].workload.as_ref().map(super::Workload::label).unwrap_or_default();
        let egress_iso: Vec<bool> = self.endpoints.iter().map(|e| !self.isolating(e, false).is_empty()).collect();
        let ingress_iso: Vec<bool> = self.endpoints.iter().map(|e| !self.isolating(e, true).is_empty()).collect();
        // For each workload, the ingress-isolated workloads whose rules name it as a source.
        let mut incoming: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for &d in workloads.iter().filter(|d| ingress_iso[**d]) {
            for s in self.candidates(&self.endpoints[d], true) {
                incoming.entry(s).or_default().insert(d);
            }
        }
        let open_dst: Vec<usize> = workloads.iter().copied().filter(|d| !ingress_iso[*d]).collect();
        let mut lines: BTreeMap<(String, String), Ports> = BTreeMap::new();
        let mut push = |src: String, dst: String, ports: Ports| {
            if ports.is_empty() || src == dst {
                return;
            }
            lines.entry((src, dst)).or_default().union(&ports);
        };
        for &s in &workloads {
            let src = &self.endpoints[s];
            let dsts: BTreeSet<usize> = if egress_iso[s] {
                self.candidates(src, false).into_iter().filter(|d| self.endpoints[*d].workload.is_some()).collect()
            } else {
                open_dst.iter().copied().chain(incoming.get(&s).into_iter().flatten().copied()).collect()
            };
            for d in dsts {
                push(label(s), label(d), self.allowed(src, &self.endpoints[d]));
            }
            for ip in &dst_ips {
                push(label(s), ip.id.clone(), self.allowed(src, ip));
            }
        }
        for ip in &src_ips {
            for &d in &workloads {
                push(ip.id.clone(), label(d), self.allowed(ip, &self.endpoints[d]));
            }
        }
        // The ingress controller: what the Ingress/Route objects send, as far as policies admit
        // a pod from a namespace of its own.
        let controller = Endpoint {
            id: INGRESS_CONTROLLER.into(),
            place: Place::Pod { ns: INGRESS_CONTROLLER_NS.into(), labels: BTreeMap::new(), named: BTreeMap::new() },
            workload: None,
        };
        for (d, wanted) in self.ingress_targets() {
            let ports = self.allowed(&controller, &self.endpoints[d]).intersect(&wanted);
            push(INGRESS_CONTROLLER.into(), label(d), ports);
        }
        lines.into_iter().map(|((src, dst), ports)| Connection { src, dst, ports }).collect()
    }

    /// The IPv4 blocks np-guard lists connections over: sources cut on the ingress rules'
    /// ipBlocks, destinations on the egress rules'.
    pub fn address_blocks(&self, src_extra: &[IpSet], dst_extra: &[IpSet]) -> (Vec<IpSet>, Vec<IpSet>) {
        let src: Vec<IpSet> =
            self.policies.iter().flat_map(|p| p.src_blocks.iter().cloned()).chain(src_extra.iter().cloned()).collect();
        let dst: Vec<IpSet> =
            self.policies.iter().flat_map(|p| p.dst_blocks.iter().cloned()).chain(dst_extra.iter().cloned()).collect();
        (ipset::disjoint(&src), ipset::disjoint(&dst))
    }

    /// The blocks every policy names (for cutting another cluster's space the same way).
    pub fn referenced_blocks(&self) -> (Vec<IpSet>, Vec<IpSet>) {
        (
            self.policies.iter().flat_map(|p| p.src_blocks.iter().cloned()).collect(),
            self.policies.iter().flat_map(|p| p.dst_blocks.iter().cloned()).collect(),
        )
    }

    /// The workloads of the manifests, as np-guard names them.
    pub fn workload_labels(&self) -> BTreeSet<String> {
        self.endpoints.iter().filter_map(|e| e.workload.as_ref().map(super::Workload::label)).collect()
    }
}

/// A rule of a NetworkPolicy, and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// `namespace/name` of the policy.
    pub policy: String,
    /// The manifest document it is in (`file#index`).
    pub origin: String,
    /// `ingress` or `egress`.
    pub direction: &'static str,
    /// The rule's index in that list.
    pub index: usize,
}

impl Cluster {
    /// The endpoint a connectivity-list peer stands for: a workload label, an address block
    /// (`first-last, …`: its first address), or the ingress controller.
    pub fn peer(&self, label: &str) -> Option<Endpoint> {
        if label == INGRESS_CONTROLLER {
            return Some(Endpoint {
                id: INGRESS_CONTROLLER.into(),
                place: Place::Pod { ns: INGRESS_CONTROLLER_NS.into(), labels: BTreeMap::new(), named: BTreeMap::new() },
                workload: None,
            });
        }
        if let Some(e) = self.endpoints.iter().find(|e| e.workload.as_ref().is_some_and(|w| w.label() == label)) {
            return Some(e.clone());
        }
        let first: IpAddr = label.split(['-', ',']).next()?.trim().parse().ok()?;
        Some(Endpoint { id: label.to_string(), place: Place::External(first), workload: None })
    }

    /// The rules that let `src` reach `dst` on `port`/`proto`: the source's egress rules and the
    /// destination's ingress rules that allow it (a side no policy isolates has none).
    pub fn allowing_rules(&self, src: &Endpoint, dst: &Endpoint, port: u16, proto: Proto) -> Vec<RuleRef> {
        let mut out = Vec::new();
        for (ingress, ours, peer) in [(false, src, dst), (true, dst, src)] {
            for p in self.isolating(ours, ingress) {
                let (list, direction) =
                    if ingress { (p.ingress.as_ref(), "ingress") } else { (p.egress.as_ref(), "egress") };
                for (index, r) in list.into_iter().flatten().enumerate() {
                    let matches =
                        r.peers.as_ref().is_none_or(|ps| ps.iter().any(|x| self.peer_matches(&p.ns, x, peer)));
                    if matches && Cluster::rule_ports(r, dst).contains(port, proto) {
                        out.push(RuleRef {
                            policy: format!("{}/{}", p.ns, p.name),
                            origin: p.origin.clone(),
                            direction,
                            index,
                        });
                    }
                }
            }
        }
        out
    }
}

fn service_target(p: &ServicePort) -> IntOrString {
    match &p.target {
        Some(IntOrString::Int(0)) | None => IntOrString::Int(p.port),
        Some(IntOrString::String(s)) if s.is_empty() => IntOrString::Int(p.port),
        Some(t) => t.clone(),
    }
}
