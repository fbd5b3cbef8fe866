//! What lint knows across the files it reads: namespaces and their labels (Pod Security versions,
//! the labels a namespaceSelector can match), workloads and their pod templates, NetworkPolicies,
//! SandboxPolicies by name, and seccomp profiles by file. Findings that need more than one
//! document — a NetworkPolicy that opens a proxied pod's egress, a pod whose Localhost seccomp
//! profile is one of the linted files — are decided against it.

use std::collections::BTreeMap;

use semble_policy::yaml::{Document, Node};

use crate::context::{get, path, str_of};
use crate::pod_security::PssVersion;

/// One input file, parsed.
pub(crate) struct File<'a> {
    pub(crate) name: &'a str,
    pub(crate) source: &'a str,
    /// The YAML/JSON documents (empty for a Quadlet unit).
    pub(crate) docs: Vec<Document>,
    pub(crate) quadlet: bool,
}

/// A namespace defined in the linted files.
pub(crate) struct Namespace {
    pub(crate) labels: BTreeMap<String, String>,
    /// `pod-security.kubernetes.io/enforce-version`, when it is set and readable.
    pub(crate) pss_version: Option<PssVersion>,
}

/// A workload: a Pod or the pod template of a controller.
pub(crate) struct Workload<'a> {
    pub(crate) ns: String,
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) spec: &'a Node,
    pub(crate) meta: Option<&'a Node>,
}

/// A NetworkPolicy.
pub(crate) struct NetworkPolicy<'a> {
    pub(crate) ns: String,
    pub(crate) name: String,
    pub(crate) root: &'a Node,
}

/// What a SandboxPolicy says about the network (for pods that name it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyNetwork {
    /// `none`, `proxy` or `open`.
    pub(crate) mode: String,
    /// `gateway` or `sidecar`.
    pub(crate) placement: String,
}

/// Everything lint knows across the files.
#[derive(Default)]
pub(crate) struct Cluster<'a> {
    pub(crate) namespaces: BTreeMap<String, Namespace>,
    pub(crate) workloads: Vec<Workload<'a>>,
    pub(crate) netpols: Vec<NetworkPolicy<'a>>,
    pub(crate) policies: BTreeMap<String, PolicyNetwork>,
    /// Seccomp profiles: (file name, profile).
    pub(crate) seccomp: Vec<(&'a str, &'a Node)>,
    /// Indexes into `workloads` and `netpols` by namespace.
    workloads_by_ns: BTreeMap<String, Vec<usize>>,
    netpols_by_ns: BTreeMap<String, Vec<usize>>,
}

/// The labels of a metadata node.
pub(crate) fn labels(meta: Option<&Node>) -> BTreeMap<String, String> {
    meta.and_then(|m| get(m, "labels"))
        .and_then(Node::as_map)
        .map(|m| m.iter().map(|(k, v)| (k.name.clone(), v.scalar_text().unwrap_or_default())).collect())
        .unwrap_or_default()
}

/// The namespace an object is in (`default` when unset).
pub(crate) fn namespace_of(root: &Node) -> String {
    str_of(path(root, &["metadata", "namespace"])).unwrap_or_else(|| "default".into())
}

/// The pod spec and pod metadata of a workload object, if it has a pod template.
pub(crate) fn pod_spec(root: &Node) -> Option<(&Node, Option<&Node>)> {
    let kind = get(root, "kind").and_then(Node::as_str)?;
    match kind {
        "Pod" => Some((get(root, "spec")?, get(root, "metadata"))),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "ReplicationController" => {
            Some((path(root, &["spec", "template", "spec"])?, path(root, &["spec", "template", "metadata"])))
        }
        "CronJob" => Some((
            path(root, &["spec", "jobTemplate", "spec", "template", "spec"])?,
            path(root, &["spec", "jobTemplate", "spec", "template", "metadata"]),
        )),
        _ => None,
    }
}

impl<'a> Cluster<'a> {
    /// Index the parsed files.
    pub(crate) fn build(files: &'a [File<'a>]) -> Cluster<'a> {
        let mut c = Cluster::default();
        for f in files {
            for d in &f.docs {
                let root = &d.root;
                match crate::classify(root) {
                    Some(crate::Kind::Kubernetes) => c.add_object(root),
                    Some(crate::Kind::Seccomp) => c.seccomp.push((f.name, root)),
                    Some(crate::Kind::Policy) => {
                        if let Some(name) = str_of(path(root, &["metadata", "name"])) {
                            let net = |k: &[&str], dflt: &str| {
                                str_of(path(root, &[&["spec", "network"], k].concat())).unwrap_or_else(|| dflt.into())
                            };
                            let network = PolicyNetwork {
                                mode: net(&["mode"], "none"),
                                placement: net(&["proxy", "placement"], "gateway"),
                            };
                            c.policies.insert(name, network);
                        }
                    }
                    _ => {}
                }
            }
        }
        for (i, w) in c.workloads.iter().enumerate() {
            c.workloads_by_ns.entry(w.ns.clone()).or_default().push(i);
        }
        for (i, p) in c.netpols.iter().enumerate() {
            c.netpols_by_ns.entry(p.ns.clone()).or_default().push(i);
        }
        c
    }

    /// The workloads in namespace `ns`.
    pub(crate) fn workloads_in<'s>(&'s self, ns: &str) -> impl Iterator<Item = &'s Workload<'a>> + 's {
        self.workloads_by_ns.get(ns).into_iter().flatten().map(move |i| &self.workloads[*i])
    }

    /// The NetworkPolicies in namespace `ns`.
    pub(crate) fn netpols_in<'s>(&'s self, ns: &str) -> impl Iterator<Item = &'s NetworkPolicy<'a>> + 's {
        self.netpols_by_ns.get(ns).into_iter().flatten().map(move |i| &self.netpols[*i])
    }

    fn add_object(&mut self, root: &'a Node) {
        let kind = get(root, "kind").and_then(Node::as_str).unwrap_or_default();
        let name = str_of(path(root, &["metadata", "name"])).unwrap_or_default();
        match kind {
            "Namespace" => {
                let mut l = labels(get(root, "metadata"));
                let pss_version =
                    l.get("pod-security.kubernetes.io/enforce-version").and_then(|v| PssVersion::parse_label(v));
                l.insert("kubernetes.io/metadata.name".into(), name.clone());
                self.namespaces.insert(name, Namespace { labels: l, pss_version });
            }
            "NetworkPolicy" => self.netpols.push(NetworkPolicy { ns: namespace_of(root), name, root }),
            _ => {
                if let Some((spec, meta)) = pod_spec(root) {
                    self.workloads.push(Workload { ns: namespace_of(root), name, labels: labels(meta), spec, meta });
                }
            }
        }
    }

    /// The Pod Security version pods in `ns` are held to: the namespace's `enforce-version`
    /// label when it is in the linted files and readable, else `default`.
    pub(crate) fn pss_version(&self, ns: &str, default: PssVersion) -> PssVersion {
        self.namespaces.get(ns).and_then(|n| n.pss_version).unwrap_or(default)
    }

    /// The labels of namespace `ns`: its own when it is defined here, else the one label every
    /// namespace carries.
    pub(crate) fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        match self.namespaces.get(ns) {
            Some(n) => n.labels.clone(),
            None => [("kubernetes.io/metadata.name".to_string(), ns.to_string())].into(),
        }
    }

    /// The linted seccomp profile a `localhostProfile` (a path under the kubelet's seccomp
    /// directory) names: a linted file whose path ends with it, component by component.
    pub(crate) fn seccomp_profile(&self, localhost: &str) -> Option<(&'a str, &'a Node)> {
        let want: Vec<&str> = localhost.trim_start_matches("localhost/").split('/').filter(|c| !c.is_empty()).collect();
        if want.is_empty() {
            return None;
        }
        self.seccomp.iter().copied().find(|(file, _)| {
            let have: Vec<&str> = file.split(['/', '\\']).filter(|c| !c.is_empty()).collect();
            have.len() >= want.len() && have[have.len() - want.len()..] == want[..]
        })
    }
}
