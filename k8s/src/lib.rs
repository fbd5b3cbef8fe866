//! # semble-k8s: a sandbox policy as Kubernetes objects
//!
//! `semble-policy compile POLICY --target kubernetes` emits what a cluster needs to run the
//! policy's workload the way a semble node runs it, built from `k8s-openapi` types so every
//! object has the upstream schema's shape by construction:
//!
//! * the sandbox **Namespace**, labelled for Pod Security Admission at the strictest level the
//!   policy allows (`restricted`, else `baseline` with a warning naming the capabilities that
//!   break `restricted`);
//! * **NetworkPolicies**: default-deny both ways for the sandbox pods; egress only to the egress
//!   proxy (and DNS to kube-dns over UDP *and* TCP when `network.dns`); ingress only from the
//!   policy's peers on its ports. A namespace and pods in one ingress entry become *one* peer
//!   (both must match), namespaces are selected by `kubernetes.io/metadata.name`;
//! * **RuntimeClasses** for the policy's backends (the handlers `semble-gvisor`, `semble-runc`,
//!   `semble-embedded` of `deploy/containerd/semble.toml`). RuntimeClasses are cluster-wide, so
//!   a policy with a node selector, tolerations or overhead gets classes of its own
//!   (`semble-gvisor-POLICY`); the shared classes carry none ([`runtime_class_for`]);
//! * the **workload Deployment**: `runtimeClassName`, a Pod `securityContext` meeting the Pod
//!   Security Standards where the policy does (non-root, no privilege escalation, `drop: [ALL]`
//!   plus the policy's adds, seccomp `Localhost` profile `semble/POLICY.json`, read-only root
//!   with `emptyDir` volumes for the writable paths), the `semble.dev/policy` annotation,
//!   resources, no service-account token, and `HTTP_PROXY`/`HTTPS_PROXY`; a bounded local disk
//!   (`ephemeral-storage`, `sizeLimit` on every scratch volume); `hostUsers: false` and an
//!   AppArmor profile where the policy says the cluster supports them; the namespace's Pod
//!   Security level is the one the pod really meets (`noNewPrivileges: false` is not
//!   `restricted`);
//! * **the egress proxy**, by `network.proxy.placement`:
//!   - `gateway` (default): its own Namespace, Deployment, Service, ConfigMap (the rules) and
//!     NetworkPolicies — only the proxy pods may leave the cluster, on the rules' ports, to
//!     public addresses (every range the proxy itself refuses excepted), and to a rule's
//!     `allowAddresses` on that rule's ports only. Its memory limit is the bound of the limits
//!     it is started with (`ProxyLimits::gateway`). The sandbox pods reach only the proxy's
//!     Service; with `network.dns: true` also kube-dns, which resolves any name (DNS can carry
//!     data out: the output says so; the closed form is `dns: false` with `network.proxy.address` (or `--proxy-cluster-ip`),
//!     and with `--cni cilium` a CiliumNetworkPolicy limits the names);
//!   - `sidecar`: a native sidecar (`initContainers` with `restartPolicy: Always`) on
//!     `127.0.0.1`. A NetworkPolicy applies to the whole pod, so the sidecar's egress allowance
//!     (and its DNS) is the workload's too; the output says so, and `lint` flags it. Its admin
//!     API is a Unix socket in a volume only the proxy mounts, and `allowAddresses` ranges are
//!     not opened for the pod.
//!
//! Domain names cannot be expressed in a NetworkPolicy: egress by name is the proxy's job,
//! and the output says so in its comments.

pub mod netpol;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities as K8sCaps, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort,
    EmptyDirVolumeSource, EnvVar, Namespace, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecretVolumeSource, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    TCPSocketAction, Toleration as K8sToleration, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::node::v1::{Overhead, RuntimeClass, Scheduling};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use semble_policy::caps::Capability;
use semble_policy::compile::proxy::ProxyLimits;
use semble_policy::model::{AppArmor, Backend, IngressPeer, NetworkMode, ProxyPlacement};
use semble_policy::quantity::{format_bytes, format_millicores};
use semble_policy::SandboxPolicy;
use serde_json::Value;

pub use yaml::Doc;

/// Choices the policy does not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The workload's image.
    pub image: String,
    /// semble-proxy's image.
    pub proxy_image: String,
    /// The namespace of gateway proxies.
    pub proxy_namespace: String,
    /// A fixed ClusterIP for the gateway Service, so a workload without DNS can reach it.
    pub proxy_cluster_ip: Option<String>,
    /// Also emit a CiliumNetworkPolicy with `toFQDNs` for the proxy's egress.
    pub cilium: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            image: "registry.example/workload:REPLACE-ME".into(),
            proxy_image: format!("ghcr.io/semble-dev/semble-proxy:{}", env!("CARGO_PKG_VERSION")),
            proxy_namespace: "semble-proxy".into(),
            proxy_cluster_ip: None,
            cilium: false,
        }
    }
}

/// The objects of a policy, and what the operator should know about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The documents, in apply order (namespaces first).
    pub docs: Vec<Doc>,
    /// Warnings (also written as comments into the documents they concern).
    pub warnings: Vec<String>,
}

impl Output {
    /// The multi-document YAML stream.
    pub fn to_yaml(&self) -> String {
        yaml::stream(&self.docs)
    }
}

/// Why a policy cannot be expressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `spec.kubernetes.namespace` or `podSelector` is missing.
    #[error("policy `{policy}` has no `spec.kubernetes.{field}`; the Kubernetes target needs the namespace and the pod labels of the sandbox pods (e.g. `kubernetes: {{namespace: sandboxes, podSelector: {{app: {policy}}}}}`)")]
    Missing {
        /// The policy.
        policy: String,
        /// The missing field.
        field: &'static str,
    },
}

/// The label every object semble emits carries.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "semble");
/// The annotation that names the policy (read by semble-shim through CRI `pod_annotations`).
pub const POLICY_ANNOTATION: &str = "semble.dev/policy";
/// Where the node installer puts seccomp profiles, relative to the kubelet's seccomp root.
pub fn seccomp_localhost_profile(policy: &str) -> String {
    format!("semble/{policy}.json")
}

/// Capabilities Pod Security `restricted` allows adding.
const RESTRICTED_ADDS: &[Capability] = &[Capability::NetBindService];
/// Capabilities Pod Security `baseline` allows adding.
const BASELINE_ADDS: &[Capability] = &[
    Capability::AuditWrite,
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Mknod,
    Capability::NetBindService,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
];

/// Address ranges a proxy must never be allowed to reach by a NetworkPolicy: private, loopback,
/// link-local (the metadata address), CGNAT, "this network", IETF protocol assignments (Oracle's
/// metadata at 192.0.0.192), documentation, benchmarking, 6to4 relays, multicast, reserved
/// (with broadcast), Azure's platform endpoint — semble-proxy's own reserved set.
const NOT_PUBLIC_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "168.63.129.16/32",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
];
/// IPv6 ranges: loopback, discard, Teredo, documentation, 6to4, ULA (which holds
/// fd00:ec2::254), link-local, site-local, multicast, local-use NAT64. NAT64 (`64:ff9b::/96`) is
/// not excepted as a whole (IPv6-only clusters reach the IPv4 internet through it); the NAT64
/// forms of the IPv4 ranges above are (see [`public_ip_blocks`]).
const NOT_PUBLIC_V6: &[&str] = &[
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/32",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// A scratch volume's size when the policy gives no `resources.ephemeralStorage`.
const DEFAULT_SCRATCH: u64 = 1 << 30;

/// Where a sidecar proxy's admin socket lives (a volume only the proxy container mounts).
pub const SIDECAR_ADMIN_DIR: &str = "/run/semble-proxy";

/// The proxy container's memory limit: the bound its limits imply, rounded up to MiB.
pub fn proxy_memory_limit() -> u64 {
    ProxyLimits::gateway().memory_bound().div_ceil(1 << 20) << 20
}

/// The RuntimeClass (and containerd handler) name of a backend.
pub fn runtime_class(b: Backend) -> &'static str {
    match b {
        Backend::Gvisor => "semble-gvisor",
        Backend::Runc => "semble-runc",
        Backend::Embedded => "semble-embedded",
    }
}

/// The RuntimeClass a policy's pods use for `b`. RuntimeClasses are cluster-wide: a policy that
/// sets scheduling (`nodeSelector`, `tolerations`) or `overhead` gets classes of its own
/// (`semble-gvisor-POLICY`, same handler), so two policies never overwrite each other's; one
/// that sets none shares the plain class, which then carries nothing any policy could change.
pub fn runtime_class_for(policy: &SandboxPolicy, b: Backend) -> String {
    let k = &policy.kubernetes;
    let own = !k.node_selector.is_empty()
        || !k.tolerations.is_empty()
        || k.overhead_memory.is_some()
        || k.overhead_cpu.is_some();
    if own {
        format!("{}-{}", runtime_class(b), policy.name)
    } else {
        runtime_class(b).to_string()
    }
}

/// Build every object of `policy`.
pub fn objects(policy: &SandboxPolicy, opts: &Options) -> Result<Output, Error> {
    let k = &policy.kubernetes;
    let name = policy.name.as_str();
    let ns = k.namespace.clone().ok_or(Error::Missing { policy: name.into(), field: "namespace" })?;
    if k.pod_selector.is_empty() {
        return Err(Error::Missing { policy: name.into(), field: "podSelector" });
    }
    let mut b = Builder { policy, opts, ns, docs: Vec::new(), warnings: Vec::new() };
    b.namespace();
    if policy.network.mode == NetworkMode::Proxy && policy.network.proxy.placement == ProxyPlacement::Gateway {
        b.gateway();
    }
    b.runtime_classes();
    b.sandbox_network_policies();
    b.workload();
    Ok(Output { docs: b.docs, warnings: b.warnings })
}

struct Builder<'a> {
    policy: &'a SandboxPolicy,
    opts: &'a Options,
    ns: String,
    docs: Vec<Doc>,
    warnings: Vec<String>,
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn meta(name: &str, ns: Option<&str>, extra: &[(&str, &str)]) -> ObjectMeta {
    let mut l = labels(extra);
    l.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    ObjectMeta { name: Some(name.into()), namespace: ns.map(str::to_string), labels: Some(l), ..Default::default() }
}

fn selector(l: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector { match_labels: Some(l.clone()), ..Default::default() }
}

fn ns_selector(ns: &str) -> LabelSelector {
    selector(&labels(&[("kubernetes.io/metadata.name", ns)]))
}

fn tcp(port: u16) -> NetworkPolicyPort {
    NetworkPolicyPort { port: Some(IntOrString::Int(port.into())), protocol: Some("TCP".into()), end_port: None }
}

fn dns_rule() -> NetworkPolicyEgressRule {
    let port =
        |p: &str| NetworkPolicyPort { port: Some(IntOrString::Int(53)), protocol: Some(p.into()), end_port: None };
    NetworkPolicyEgressRule {
        // One peer: pods labelled kube-dns *in* kube-system (both selectors must match).
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(ns_selector("kube-system")),
            pod_selector: Some(selector(&labels(&[("k8s-app", "kube-dns")]))),
            ip_block: None,
        }]),
        ports: Some(vec![port("UDP"), port("TCP")]),
    }
}

fn public_ip_blocks() -> Vec<NetworkPolicyPeer> {
    let block = |cidr: &str, except: &[&str]| NetworkPolicyPeer {
        ip_block: Some(IPBlock { cidr: cidr.into(), except: Some(except.iter().map(|s| s.to_string()).collect()) }),
        ..Default::default()
    };
    let mut v6: Vec<String> = NOT_PUBLIC_V6.iter().map(|s| s.to_string()).collect();
    v6.extend(NOT_PUBLIC_V4.iter().filter_map(|c| nat64(c)));
    let v6: Vec<&str> = v6.iter().map(String::as_str).collect();
    vec![block("0.0.0.0/0", NOT_PUBLIC_V4), block("::/0", &v6)]
}

/// The NAT64 (`64:ff9b::/96`) form of an IPv4 range: `169.254.0.0/16` → `64:ff9b::a9fe:0/112`.
fn nat64(v4: &str) -> Option<String> {
    let net: ipnet::Ipv4Net = v4.parse().ok()?;
    let o = net.network().octets();
    let addr = std::net::Ipv6Addr::new(
        0x64,
        0xff9b,
        0,
        0,
        0,
        0,
        u16::from_be_bytes([o[0], o[1]]),
        u16::from_be_bytes([o[2], o[3]]),
    );
    Some(format!("{addr}/{}", 96 + net.prefix_len()))
}

fn to_value<T: serde::Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

impl Builder<'_> {
    /// The gateway Service's ClusterIP: `--proxy-cluster-ip`, else the policy's
    /// `network.proxy.address` (which the node's egress guard also allows).
    fn proxy_cluster_ip(&self) -> Option<String> {
        self.opts.proxy_cluster_ip.clone().or_else(|| self.policy.network.proxy.address.map(|ip| ip.to_string()))
    }

    fn name(&self) -> &str {
        &self.policy.name
    }

    fn push<T: serde::Serialize>(&mut self, comments: &[String], obj: &T) {
        self.docs.push(Doc { comments: comments.to_vec(), value: to_value(obj) });
    }

    fn warn(&mut self, w: String) -> String {
        self.warnings.push(w.clone());
        format!("WARNING: {w}")
    }

    fn gateway_name(&self) -> String {
        format!("semble-proxy-{}", self.name())
    }

    fn proxy_labels(&self) -> BTreeMap<String, String> {
        labels(&[("app.kubernetes.io/name", "semble-proxy"), (POLICY_ANNOTATION, self.name())])
    }

    /// The port set the proxy needs to reach upstreams on, and reserved ranges rules allow.
    fn egress_ports(&self) -> BTreeSet<u16> {
        self.policy.network.egress.iter().flat_map(|r| r.ports.iter().copied()).collect()
    }

    /// The proxy's egress: public addresses on the rules' ports, and each rule's
    /// `allowAddresses` on *that rule's* ports only (never every rule's port to every range).
    fn proxy_egress(&self) -> Vec<NetworkPolicyEgressRule> {
        let mut out = vec![NetworkPolicyEgressRule {
            to: Some(public_ip_blocks()),
            ports: Some(self.egress_ports().iter().map(|p| tcp(*p)).collect()),
        }];
        // Rules with the same ports share one entry.
        let mut by_ports: BTreeMap<Vec<u16>, BTreeSet<String>> = BTreeMap::new();
        for r in &self.policy.network.egress {
            if !r.allow_addresses.is_empty() {
                let mut ports = r.ports.clone();
                ports.sort_unstable();
                by_ports.entry(ports).or_default().extend(r.allow_addresses.iter().map(|n| n.to_string()));
            }
        }
        for (ports, cidrs) in by_ports {
            out.push(NetworkPolicyEgressRule {
                to: Some(
                    cidrs
                        .into_iter()
                        .map(|cidr| NetworkPolicyPeer {
                            ip_block: Some(IPBlock { cidr, except: None }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ports: Some(ports.iter().map(|p| tcp(*p)).collect()),
            });
        }
        out
    }

    fn allow_addresses(&self) -> BTreeSet<String> {
        self.policy.network.egress.iter().flat_map(|r| r.allow_addresses.iter().map(|n| n.to_string())).collect()
    }

    /// The Pod Security level the workload can meet, and why not a stricter one.
    fn pss_level(&self) -> (&'static str, Vec<String>) {
        let adds: Vec<Capability> = self.policy.capabilities.granted().into_iter().collect();
        let beyond = |allowed: &[Capability]| -> Vec<String> {
            adds.iter().filter(|c| !allowed.contains(c)).map(|c| c.to_string()).collect()
        };
        let not_restricted = beyond(RESTRICTED_ADDS);
        let not_baseline = beyond(BASELINE_ADDS);
        let mut why = Vec::new();
        let runs_as_root = self.policy.process.user == Some(0) || self.policy.process.user.is_none();
        if !not_baseline.is_empty() {
            why.push(format!("capabilities {} are beyond Pod Security `baseline`", not_baseline.join(", ")));
            return ("privileged", why);
        }
        if !not_restricted.is_empty() {
            why.push(format!("capabilities {} are beyond Pod Security `restricted`", not_restricted.join(", ")));
        }
        if runs_as_root && !self.policy.process.run_as_non_root {
            why.push("the workload may run as root (set `process.user` to a non-zero uid)".into());
        }
        if !self.policy.process.no_new_privileges {
            why.push(
                "`process.noNewPrivileges: false` lets the workload gain privileges (`restricted` requires `allowPrivilegeEscalation: false`)"
                    .into(),
            );
        }
        if why.is_empty() {
            ("restricted", why)
        } else {
            ("baseline", why)
        }
    }

    fn namespace(&mut self) {
        let (level, why) = self.pss_level();
        let mut comments = vec![format!("Sandbox namespace of policy `{}`.", self.name())];
        if level != "restricted" {
            let w = self.warn(format!(
                "policy `{}` cannot meet Pod Security `restricted` ({}); namespace `{}` enforces `{level}` and warns/audits against `restricted`",
                self.name(),
                why.join("; "),
                self.ns
            ));
            comments.push(w);
        }
        let ns = Namespace {
            metadata: meta(
                &self.ns.clone(),
                None,
                &[
                    ("pod-security.kubernetes.io/enforce", level),
                    ("pod-security.kubernetes.io/enforce-version", "latest"),
                    ("pod-security.kubernetes.io/warn", "restricted"),
                    ("pod-security.kubernetes.io/audit", "restricted"),
                ],
            ),
            ..Default::default()
        };
        self.push(&comments, &ns);
    }

    fn runtime_classes(&mut self) {
        let rt = &self.policy.runtime;
        let mut backends: Vec<Backend> = rt.backend.into_iter().collect();
        backends.extend(rt.fallback.iter().copied());
        if backends.is_empty() {
            backends.push(Backend::Runc);
        }
        backends.dedup();
        let k = &self.policy.kubernetes;
        for b in backends {
            let mut pod_fixed = BTreeMap::new();
            if let Some(m) = k.overhead_memory {
                pod_fixed.insert("memory".to_string(), Quantity(format_bytes(m)));
            }
            if let Some(c) = k.overhead_cpu {
                pod_fixed.insert("cpu".to_string(), Quantity(format_millicores(c)));
            }
            let scheduling = (!k.node_selector.is_empty() || !k.tolerations.is_empty()).then(|| Scheduling {
                node_selector: (!k.node_selector.is_empty()).then(|| k.node_selector.clone()),
                tolerations: (!k.tolerations.is_empty()).then(|| {
                    k.tolerations
                        .iter()
                        .map(|t| K8sToleration {
                            key: Some(t.key.clone()),
                            operator: Some(t.operator.clone()),
                            value: t.value.clone(),
                            effect: t.effect.clone(),
                            toleration_seconds: None,
                        })
                        .collect()
                }),
            });
            let class = runtime_class_for(self.policy, b);
            let rc = RuntimeClass {
                metadata: meta(&class, None, &[]),
                handler: runtime_class(b).to_string(),
                overhead: (!pod_fixed.is_empty()).then_some(Overhead { pod_fixed: Some(pod_fixed) }),
                scheduling,
            };
            let mut comment = format!(
                "Runs pods with semble-shim's {} backend: the containerd handler `{}` of deploy/containerd/semble.toml.",
                b.as_str(),
                runtime_class(b)
            );
            if class != runtime_class(b) {
                comment.push_str(&format!(
                    " Policy `{}` sets scheduling or overhead, so the class is its own: RuntimeClasses are cluster-wide, and a shared one would be overwritten by the next policy applied.",
                    self.name()
                ));
            }
            self.push(&[comment], &rc);
        }
    }

    fn sandbox_network_policies(&mut self) {
        let name = self.name().to_string();
        let ns = self.ns.clone();
        let pods = self.policy.kubernetes.pod_selector.clone();
        let net = &self.policy.network;
        let mode = net.mode;
        let mut types = vec!["Ingress".to_string()];
        if mode != NetworkMode::Open {
            types.push("Egress".into());
        }
        let deny = NetworkPolicy {
            metadata: meta(&format!("{name}-default-deny"), Some(&ns), &[]),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(selector(&pods)),
                policy_types: Some(types),
                ingress: None,
                egress: None,
            }),
        };
        let mut comments = vec![format!(
            "Nothing reaches the `{name}` pods and nothing leaves them except what the policies below allow."
        )];
        if mode == NetworkMode::Open {
            comments.push("network.mode is `open`: egress is not restricted by semble.".into());
        }
        self.push(&comments, &deny);

        // Egress.
        if mode != NetworkMode::Open {
            let mut rules = Vec::new();
            let mut comments = Vec::new();
            if mode == NetworkMode::Proxy {
                comments.push("Domain names cannot be expressed in a NetworkPolicy: egress by name goes through semble-proxy, which decides every request against the policy's rules.".into());
                match net.proxy.placement {
                    ProxyPlacement::Gateway => {
                        rules.push(NetworkPolicyEgressRule {
                            to: Some(vec![NetworkPolicyPeer {
                                namespace_selector: Some(ns_selector(&self.opts.proxy_namespace)),
                                pod_selector: Some(selector(&self.proxy_labels())),
                                ip_block: None,
                            }]),
                            ports: Some(vec![tcp(net.proxy.port)]),
                        });
                        if !net.dns && self.proxy_cluster_ip().is_none() {
                            let w = self.warn(format!(
                                "policy `{name}` has `network.dns: false`, but the workload reaches the gateway proxy by its Service name; set `dns: true`, choose `proxy.placement: sidecar`, or pass --proxy-cluster-ip IP (a free address of the Service range)"
                            ));
                            comments.push(w);
                        }
                    }
                    ProxyPlacement::Sidecar => {
                        let ports = self.egress_ports();
                        let w = self.warn(format!(
                            "policy `{name}` runs the proxy as a sidecar: a NetworkPolicy applies to the whole pod, so the workload itself may reach any public address on port(s) {} — only the proxy's allow-list stands between it and the internet; prefer `placement: gateway`",
                            ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                        ));
                        comments.push(w);
                        rules.push(NetworkPolicyEgressRule {
                            to: Some(public_ip_blocks()),
                            ports: Some(ports.iter().map(|p| tcp(*p)).collect()),
                        });
                        let reserved = self.allow_addresses();
                        if !reserved.is_empty() {
                            let w = self.warn(format!(
                                "policy `{name}` runs the proxy as a sidecar, so the ranges its rules allow ({}) are not opened: the workload would reach them directly, past the proxy; use `placement: gateway` for those rules",
                                reserved.iter().cloned().collect::<Vec<_>>().join(", ")
                            ));
                            comments.push(w);
                        }
                    }
                }
            }
            let sidecar = mode == NetworkMode::Proxy && net.proxy.placement == ProxyPlacement::Sidecar;
            if net.dns || sidecar {
                let w = if sidecar {
                    format!(
                        "policy `{name}` runs the proxy as a sidecar, which resolves names from the pod's network: the workload can query kube-dns too, and kube-dns resolves any name, so data can leave as DNS queries; the closed form is `placement: gateway` with `dns: false` and the proxy by address (`network.proxy.address` or --proxy-cluster-ip){}",
                        if self.opts.cilium { " (with --cni cilium the queries are limited to the rules' names)" } else { ", or --cni cilium to limit the names" }
                    )
                } else {
                    format!(
                        "policy `{name}` lets the workload query kube-dns (`network.dns: true`), which resolves any name, so data can leave as DNS queries; the closed form is `dns: false` with the proxy reached by its address (`network.proxy.address` or --proxy-cluster-ip){}",
                        if self.opts.cilium { " (with --cni cilium the queries are limited to the proxy's Service name)" } else { ", or --cni cilium to limit the names" }
                    )
                };
                let w = self.warn(w);
                comments.push(w);
                if self.opts.cilium {
                    comments.push(format!(
                        "DNS is not opened here: the CiliumNetworkPolicy `{name}-dns` opens it, for the names the workload needs only."
                    ));
                } else {
                    rules.push(dns_rule());
                }
            }
            if !rules.is_empty() {
                let np = NetworkPolicy {
                    metadata: meta(&format!("{name}-egress"), Some(&ns), &[]),
                    spec: Some(NetworkPolicySpec {
                        pod_selector: Some(selector(&pods)),
                        policy_types: Some(vec!["Egress".into()]),
                        egress: Some(rules),
                        ingress: None,
                    }),
                };
                self.push(&comments, &np);
            }
            if self.opts.cilium && (net.dns || sidecar) {
                self.sandbox_dns_policy(sidecar);
            }
        }

        // Ingress.
        if !net.ingress.is_empty() {
            let rules = net
                .ingress
                .iter()
                .map(|r| NetworkPolicyIngressRule {
                    from: Some(vec![peer(&r.from)]),
                    ports: Some(
                        r.ports
                            .iter()
                            .map(|p| NetworkPolicyPort {
                                port: Some(IntOrString::Int(p.port.into())),
                                end_port: p.end_port.map(i32::from),
                                protocol: Some(p.protocol.as_str().into()),
                            })
                            .collect(),
                    ),
                })
                .collect();
            let np = NetworkPolicy {
                metadata: meta(&format!("{name}-ingress"), Some(&ns), &[]),
                spec: Some(NetworkPolicySpec {
                    pod_selector: Some(selector(&pods)),
                    policy_types: Some(vec!["Ingress".into()]),
                    ingress: Some(rules),
                    egress: None,
                }),
            };
            let c = "Who may connect to the workload (network.ingress). A namespace and pods in one entry are one peer: both must match.".to_string();
            self.push(&[c], &np);
        }
    }

    fn rules_json(&self) -> String {
        semble_policy::compile::to_json(&semble_policy::compile::proxy::rules(self.policy))
    }

    fn has_credentials(&self) -> bool {
        self.policy.network.egress.iter().any(|r| r.credential.is_some())
    }

    /// The semble-proxy container (gateway or sidecar).
    fn proxy_container(&self, listen: &str, sidecar: bool) -> Container {
        // A sidecar shares the workload's network namespace: its admin API (metrics, /rules)
        // goes on a Unix socket in a volume only the proxy mounts, not on loopback.
        let admin = if sidecar { format!("unix:{SIDECAR_ADMIN_DIR}/admin.sock") } else { "127.0.0.1:9901".into() };
        let mut args = vec![
            "--rules".to_string(),
            "/etc/semble-proxy/rules.json".into(),
            "--listen".into(),
            listen.into(),
            "--admin".into(),
            admin,
        ];
        args.extend(ProxyLimits::gateway().args());
        let mut mounts = vec![VolumeMount {
            name: "rules".into(),
            mount_path: "/etc/semble-proxy".into(),
            read_only: Some(true),
            ..Default::default()
        }];
        if sidecar {
            mounts.push(VolumeMount {
                name: "proxy-admin".into(),
                mount_path: SIDECAR_ADMIN_DIR.into(),
                ..Default::default()
            });
        }
        if self.has_credentials() {
            args.extend(["--credentials".into(), "/etc/semble-proxy-credentials/credentials.yaml".into()]);
            mounts.push(VolumeMount {
                name: "credentials".into(),
                mount_path: "/etc/semble-proxy-credentials".into(),
                read_only: Some(true),
                ..Default::default()
            });
        }
        let port: i32 = self.policy.network.proxy.port.into();
        Container {
            name: "semble-proxy".into(),
            image: Some(self.opts.proxy_image.clone()),
            args: Some(args),
            ports: Some(vec![ContainerPort {
                name: Some("proxy".into()),
                container_port: port,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            readiness_probe: (!sidecar).then(|| Probe {
                tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(port), host: None }),
                period_seconds: Some(5),
                ..Default::default()
            }),
            restart_policy: sidecar.then(|| "Always".to_string()),
            resources: Some(ResourceRequirements {
                requests: Some(
                    [("cpu".to_string(), Quantity("50m".into())), ("memory".to_string(), Quantity("32Mi".into()))]
                        .into(),
                ),
                // The most its limits let it hold (ProxyLimits::memory_bound), so the kernel never
                // kills it for memory a client made it take.
                limits: Some(
                    [
                        ("cpu".to_string(), Quantity("1".into())),
                        ("memory".to_string(), Quantity(format_bytes(proxy_memory_limit()))),
                    ]
                    .into(),
                ),
                ..Default::default()
            }),
            security_context: Some(SecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(65532),
                run_as_group: Some(65532),
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(K8sCaps { drop: Some(vec!["ALL".into()]), add: None }),
                seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
                ..Default::default()
            }),
            volume_mounts: Some(mounts),
            ..Default::default()
        }
    }

    fn proxy_volumes(&self, config_map: &str, sidecar: bool) -> Vec<Volume> {
        let mut v = vec![Volume {
            name: "rules".into(),
            config_map: Some(ConfigMapVolumeSource { name: config_map.into(), ..Default::default() }),
            ..Default::default()
        }];
        if sidecar {
            v.push(Volume {
                name: "proxy-admin".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    size_limit: Some(Quantity("1Mi".into())),
                }),
                ..Default::default()
            });
        }
        if self.has_credentials() {
            v.push(Volume {
                name: "credentials".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(format!("{config_map}-credentials")),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        v
    }

    fn rules_config_map(&self, name: &str, ns: &str) -> (Vec<String>, ConfigMap) {
        let mut comments = vec![format!("semble-proxy's allow-list for policy `{}` (network.egress).", self.name())];
        if self.has_credentials() {
            comments.push(format!(
                "Credentials come from the Secret `{name}-credentials` (key credentials.yaml, kind: ProxyCredentials), which you create; it is mounted into the proxy only, never into the sandbox."
            ));
        }
        let cm = ConfigMap {
            metadata: meta(name, Some(ns), &[]),
            data: Some([("rules.json".to_string(), self.rules_json())].into()),
            ..Default::default()
        };
        (comments, cm)
    }

    fn gateway(&mut self) {
        let gw = self.gateway_name();
        let pns = self.opts.proxy_namespace.clone();
        let port = self.policy.network.proxy.port;
        let pl = self.proxy_labels();
        let ns = Namespace {
            metadata: meta(
                &pns,
                None,
                &[
                    ("pod-security.kubernetes.io/enforce", "restricted"),
                    ("pod-security.kubernetes.io/enforce-version", "latest"),
                ],
            ),
            ..Default::default()
        };
        self.push(&["Egress gateways: semble-proxy, one Deployment per policy.".into()], &ns);
        let (comments, cm) = self.rules_config_map(&gw, &pns);
        self.push(&comments, &cm);
        let sa = ServiceAccount {
            metadata: meta(&gw, Some(&pns), &[]),
            automount_service_account_token: Some(false),
            ..Default::default()
        };
        self.push(&["The proxy's identity: associate cloud credentials (e.g. EKS Pod Identity) with it, not with the sandbox.".into()], &sa);
        let dep = Deployment {
            metadata: meta(&gw, Some(&pns), &[("app.kubernetes.io/name", "semble-proxy")]),
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                selector: selector(&pl),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(pl.clone()), ..Default::default() }),
                    spec: Some(PodSpec {
                        service_account_name: Some(gw.clone()),
                        enable_service_links: Some(false),
                        containers: vec![self.proxy_container(&format!("0.0.0.0:{port}"), false)],
                        volumes: Some(self.proxy_volumes(&gw, false)),
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(true),
                            seccomp_profile: Some(SeccompProfile {
                                type_: "RuntimeDefault".into(),
                                localhost_profile: None,
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(
            &[format!("semble-proxy for policy `{}`: the only pods allowed to leave the cluster for it.", self.name())],
            &dep,
        );
        let svc = Service {
            metadata: meta(&gw, Some(&pns), &[]),
            spec: Some(ServiceSpec {
                selector: Some(pl.clone()),
                cluster_ip: self.proxy_cluster_ip(),
                ports: Some(vec![ServicePort {
                    name: Some("proxy".into()),
                    port: port.into(),
                    target_port: Some(IntOrString::String("proxy".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(&[], &svc);
        // The gateway's own NetworkPolicy: in from the sandbox pods only; out to public
        // addresses on the rules' ports, each rule's allowAddresses on its own ports, and DNS.
        let ports = self.egress_ports();
        let extra = self.allow_addresses();
        let mut egress = self.proxy_egress();
        egress.push(dns_rule());
        let np = NetworkPolicy {
            metadata: meta(&gw, Some(&pns), &[]),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(selector(&pl)),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(ns_selector(&self.ns)),
                        pod_selector: Some(selector(&self.policy.kubernetes.pod_selector)),
                        ip_block: None,
                    }]),
                    ports: Some(vec![tcp(port)]),
                }]),
                egress: Some(egress),
            }),
        };
        let mut comments = vec![
            format!("Only the `{}` sandbox pods reach this proxy; it reaches public addresses on the rules' ports (private ranges and the metadata address excepted) and kube-dns.", self.name()),
        ];
        if !extra.is_empty() {
            comments.push(format!(
                "Reserved ranges some rules allow (allowAddresses), each on its own rule's ports only: {}.",
                extra.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        self.push(&comments, &np);
        if self.opts.cilium {
            self.cilium_policy(&gw, &pns, &pl, &ports);
        }
    }

    /// A CiliumNetworkPolicy that lets the sandbox pods query kube-dns for the names they need
    /// only (Cilium answers others with REFUSED): the gateway's Service name, or for a sidecar the
    /// rules' names. The Kubernetes NetworkPolicy above then opens no DNS at all (policies add up:
    /// an open port 53 there would let any name through).
    fn sandbox_dns_policy(&mut self, sidecar: bool) {
        let names: Vec<Value> = if sidecar {
            self.policy.network.egress.iter().map(|r| fqdn_selector(&r.host)).collect()
        } else {
            vec![
                serde_json::json!({"matchName": format!("{}.{}.svc.cluster.local", self.gateway_name(), self.opts.proxy_namespace)}),
            ]
        };
        let v = serde_json::json!({
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": format!("{}-dns", self.name()), "namespace": self.ns, "labels": {MANAGED_BY.0: MANAGED_BY.1}},
            "spec": {
                "endpointSelector": {"matchLabels": self.policy.kubernetes.pod_selector},
                "egress": [{
                    "toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}],
                    "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": names}}]
                }]
            }
        });
        self.docs.push(Doc {
            comments: vec![format!(
                "Cilium only (--cni cilium): the `{}` pods may ask kube-dns only for these names, so DNS cannot carry data out.",
                self.name()
            )],
            value: v,
        });
    }

    /// A CiliumNetworkPolicy narrowing the gateway's egress to the rules' names (`toFQDNs`),
    /// with the DNS visibility rule Cilium needs to learn them.
    fn cilium_policy(&mut self, gw: &str, pns: &str, pl: &BTreeMap<String, String>, ports: &BTreeSet<u16>) {
        let fqdns: Vec<Value> = self.policy.network.egress.iter().map(|r| fqdn_selector(&r.host)).collect();
        let port_list: Vec<Value> =
            ports.iter().map(|p| serde_json::json!({"port": p.to_string(), "protocol": "TCP"})).collect();
        let v = serde_json::json!({
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": format!("{gw}-fqdn"), "namespace": pns, "labels": {MANAGED_BY.0: MANAGED_BY.1}},
            "spec": {
                "endpointSelector": {"matchLabels": pl},
                "egress": [
                    {
                        "toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}],
                        "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}]
                    },
                    {"toFQDNs": fqdns, "toPorts": [{"ports": port_list}]}
                ]
            }
        });
        self.docs.push(Doc {
            comments: vec![
                "Cilium only (--cni cilium): the gateway may reach only the rules' names, as resolved.".into()
            ],
            value: v,
        });
    }

    fn workload(&mut self) {
        let p = self.policy;
        let name = self.name().to_string();
        let ns = self.ns.clone();
        let pods = p.kubernetes.pod_selector.clone();
        let net = &p.network;
        let mut comments = vec![
            format!("The `{name}` workload: replace the image (--image) or copy the pod template into your own Deployment."),
            format!("The seccomp profile is semble's for this policy, installed on each node as <kubelet seccomp root>/{} (`semble-policy compile {name}.yaml --target seccomp`).", seccomp_localhost_profile(&name)),
        ];
        let mut env = Vec::new();
        let mut init = Vec::new();
        let mut volumes = Vec::new();
        if net.mode == NetworkMode::Proxy {
            let url = match net.proxy.placement {
                ProxyPlacement::Gateway => match &self.proxy_cluster_ip() {
                    Some(ip) => format!("http://{ip}:{}", net.proxy.port),
                    None => format!(
                        "http://{}.{}.svc.cluster.local:{}",
                        self.gateway_name(),
                        self.opts.proxy_namespace,
                        net.proxy.port
                    ),
                },
                ProxyPlacement::Sidecar => format!("http://127.0.0.1:{}", net.proxy.port),
            };
            for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
                env.push(EnvVar { name: k.into(), value: Some(url.clone()), value_from: None });
            }
            env.push(EnvVar {
                name: "NO_PROXY".into(),
                value: Some("localhost,127.0.0.1,::1".into()),
                value_from: None,
            });
            if net.proxy.placement == ProxyPlacement::Sidecar {
                let cm_name = format!("semble-proxy-{name}");
                let (c, cm) = self.rules_config_map(&cm_name, &ns);
                self.push(&c, &cm);
                init.push(self.proxy_container(&format!("127.0.0.1:{}", net.proxy.port), true));
                volumes.extend(self.proxy_volumes(&cm_name, true));
                comments.push(
                    "semble-proxy runs as a native sidecar (an init container with restartPolicy: Always).".into(),
                );
            }
        }
        let mut mounts = Vec::new();
        // Local disk: each scratch volume and the pod as a whole are bounded, so the workload
        // cannot fill the node's disk (the kubelet evicts a pod past them).
        let scratch = p.resources.ephemeral_storage.unwrap_or(DEFAULT_SCRATCH);
        let mut scratch_volumes = 0u64;
        if p.process.read_only_root_filesystem {
            if let Some(fs) = &p.filesystem {
                for path in &fs.read_write {
                    let vol = volume_name(path);
                    volumes.push(Volume {
                        name: vol.clone(),
                        empty_dir: Some(EmptyDirVolumeSource {
                            medium: None,
                            size_limit: Some(Quantity(format_bytes(scratch))),
                        }),
                        ..Default::default()
                    });
                    mounts.push(VolumeMount { name: vol, mount_path: path.clone(), ..Default::default() });
                    scratch_volumes += 1;
                }
            }
        }
        let disk = p.resources.ephemeral_storage.unwrap_or(scratch_volumes * DEFAULT_SCRATCH + DEFAULT_SCRATCH);
        let mut limits = BTreeMap::new();
        if let Some(m) = p.resources.memory {
            limits.insert("memory".to_string(), Quantity(format_bytes(m)));
        }
        if let Some(c) = p.resources.cpu {
            limits.insert("cpu".to_string(), Quantity(format_millicores(c)));
        }
        if p.devices.gpu.is_some() {
            limits.insert("nvidia.com/gpu".to_string(), Quantity("1".into()));
        }
        limits.insert("ephemeral-storage".to_string(), Quantity(format_bytes(disk)));
        let (level, _) = self.pss_level();
        let granted = p.capabilities.granted();
        let adds: Vec<String> = granted.iter().map(|c| c.to_string()).collect();
        let non_root = p.process.run_as_non_root || p.process.user.is_some_and(|u| u != 0);
        let container = Container {
            name: "workload".into(),
            image: Some(self.opts.image.clone()),
            env: (!env.is_empty()).then_some(env),
            resources: (!limits.is_empty()).then(|| ResourceRequirements {
                // Requests equal limits: the Guaranteed QoS class, and the scheduler reserves
                // what the sandbox may use.
                requests: Some(limits.clone()),
                limits: Some(limits),
                ..Default::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(!p.process.no_new_privileges),
                privileged: Some(false),
                read_only_root_filesystem: Some(p.process.read_only_root_filesystem),
                run_as_non_root: non_root.then_some(true),
                capabilities: Some(K8sCaps { drop: Some(vec!["ALL".into()]), add: (!adds.is_empty()).then_some(adds) }),
                app_armor_profile: p.kubernetes.app_armor.as_ref().map(|a| match a {
                    AppArmor::RuntimeDefault => {
                        AppArmorProfile { type_: "RuntimeDefault".into(), localhost_profile: None }
                    }
                    AppArmor::Localhost(name) => {
                        AppArmorProfile { type_: "Localhost".into(), localhost_profile: Some(name.clone()) }
                    }
                }),
                ..Default::default()
            }),
            volume_mounts: (!mounts.is_empty()).then_some(mounts),
            ..Default::default()
        };
        let runtime_class = runtime_class_for(p, p.runtime.backend.unwrap_or(Backend::Runc));
        let mut annotations = BTreeMap::new();
        annotations.insert(POLICY_ANNOTATION.to_string(), name.clone());
        let dep = Deployment {
            metadata: meta(&name, Some(&ns), &[]),
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                selector: selector(&pods),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pods.clone()),
                        annotations: Some(annotations),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        runtime_class_name: Some(runtime_class),
                        host_users: p.kubernetes.user_namespaces.then_some(false),
                        automount_service_account_token: Some(false),
                        enable_service_links: Some(false),
                        host_network: Some(false),
                        host_pid: Some(false),
                        host_ipc: Some(false),
                        init_containers: (!init.is_empty()).then_some(init),
                        containers: vec![container],
                        volumes: (!volumes.is_empty()).then_some(volumes),
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: non_root.then_some(true),
                            run_as_user: p.process.user.map(i64::from),
                            run_as_group: p.process.group.or(p.process.user).map(i64::from),
                            supplemental_groups: (!p.process.supplementary_groups.is_empty())
                                .then(|| p.process.supplementary_groups.iter().map(|g| i64::from(*g)).collect()),
                            seccomp_profile: Some(SeccompProfile {
                                type_: "Localhost".into(),
                                localhost_profile: Some(seccomp_localhost_profile(&name)),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        if level != "restricted" {
            comments.push(format!(
                "Pod Security: this pod meets `{level}`, not `restricted` (see the namespace's warning)."
            ));
        }
        if !p.kubernetes.user_namespaces {
            comments.push("No user namespace: the workload's user IDs are the node's. Where the cluster supports it (Kubernetes 1.33+, a runtime and kernel with idmapped mounts), set `kubernetes.userNamespaces: true` for `hostUsers: false`.".into());
        }
        if p.kubernetes.app_armor.is_none() {
            comments.push("No AppArmor profile: where the nodes run AppArmor, set `kubernetes.appArmor: RuntimeDefault` (the kubelet refuses such a pod on nodes without AppArmor).".into());
        }
        comments.push(format!(
            "Local disk: each scratch volume is limited to {}, the pod to {} (`resources.ephemeralStorage`).",
            format_bytes(scratch),
            format_bytes(disk)
        ));
        self.push(&comments, &dep);
    }
}

/// A Cilium FQDN selector for a rule's host.
fn fqdn_selector(host: &semble_policy::model::HostPattern) -> Value {
    match host {
        semble_policy::model::HostPattern::Exact(h) => serde_json::json!({"matchName": h}),
        semble_policy::model::HostPattern::Suffix(s) => serde_json::json!({"matchPattern": format!("*.{s}")}),
        semble_policy::model::HostPattern::Any => serde_json::json!({"matchPattern": "*"}),
    }
}

/// `fromNamespace`/`fromPods` in one entry are one peer (AND); `fromCidr` an ipBlock.
fn peer(from: &IngressPeer) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: from.namespace.as_deref().map(ns_selector),
        pod_selector: from.pods.as_ref().map(selector),
        ip_block: from.cidr.map(|c| IPBlock { cidr: c.to_string(), except: None }),
    }
}

/// A volume name (a DNS label) for a writable path: `/home/ollama` → `rw-home-ollama`.
fn volume_name(path: &str) -> String {
    let mut s: String = path
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    s.truncate(50);
    let s = s.trim_matches('-');
    if s.is_empty() {
        "rw-root".into()
    } else {
        format!("rw-{s}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn nat64_forms_of_reserved_ranges() {
        assert_eq!(nat64("169.254.0.0/16").as_deref(), Some("64:ff9b::a9fe:0/112"));
        assert_eq!(nat64("10.0.0.0/8").as_deref(), Some("64:ff9b::a00:0/104"));
    }

    #[test]
    fn volume_names_are_dns_labels() {
        assert_eq!(volume_name("/workspace"), "rw-workspace");
        assert_eq!(volume_name("/home/Ollama_x/"), "rw-home-ollama-x");
        assert_eq!(volume_name("/"), "rw-root");
    }
}
