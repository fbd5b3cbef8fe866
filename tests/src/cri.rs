//! A kubelet stand-in: runs the Pods that `semble-policy compile --target kubernetes` emits
//! through containerd's CRI plugin, the way the kubelet does, onto the runtime handlers that
//! `deploy/node/install.sh` configures.
//!
//! [`CriNode::start`] builds a node in a scratch directory: it runs the real installer against a
//! host root (`HOST/usr/local/bin`, `HOST/etc/semble/policies`, the seccomp profiles under
//! `HOST/var/lib/kubelet/seccomp`, the handlers in `HOST/etc/containerd/config.toml`), substitutes
//! only the paths in what it wrote, and starts containerd with that file inside a network
//! namespace of its own (`unshare --net`), so the CNI bridge and every pod address live there and
//! nothing a pod does can reach another machine. Pods get their network from Debian's CNI
//! plugins (`bridge` + `host-local`, no gateway, no masquerade, no routes).
//!
//! [`PodManifest`] resolves a Deployment's (or Pod's) `runtimeClassName` through the RuntimeClass
//! in the same manifests to a handler, and [`CriNode::run_pod`] translates the pod as the kubelet
//! does: sandbox security context and namespaces, container security context (user, group,
//! capabilities, no_new_privs, read-only root, `Localhost` seccomp profile resolved under the
//! kubelet's seccomp root, the kubelet's default masked and read-only paths), emptyDir volumes,
//! environment, resources, then init containers in order (native sidecars — `restartPolicy:
//! Always` — started and left running) before the workload.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, SeccompProfile};
use k8s_openapi::api::node::v1::RuntimeClass;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::*;

/// The CNI plugins Debian's `containernetworking-plugins` installs.
const CNI_BIN: &str = "/usr/lib/cni";
/// The pods' subnet, on a bridge inside the node's own network namespace.
const POD_SUBNET: &str = "10.250.0.0/24";
/// The bridge's name (inside that namespace).
pub const BRIDGE: &str = "semble-cri0";
/// Where this harness asks for pod cgroups (under the cgroup root).
pub const CGROUP_PARENT: &str = "semble-cri";

/// The kubelet's default masked paths (`securitycontext.ConvertToRuntimeMaskedPaths`, procMount
/// `Default`).
const DEFAULT_MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// The kubelet's default read-only paths.
const DEFAULT_READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// A pod as the kubelet would receive it, with its RuntimeClass resolved to a handler.
#[derive(Debug, Clone)]
pub struct PodManifest {
    /// `metadata.name` (the Deployment's, for a Deployment).
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The pod's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The pod's labels.
    pub labels: BTreeMap<String, String>,
    /// The pod spec.
    pub spec: PodSpec,
    /// The RuntimeClasses in the same manifests: name → handler.
    pub runtime_classes: BTreeMap<String, String>,
    /// Container-level CRI annotations by container name (the kubelet sets only its own
    /// bookkeeping ones; a test uses this to try to pick a policy per container).
    pub container_annotations: HashMap<String, HashMap<String, String>>,
}

impl PodManifest {
    /// The sandbox workload in a multi-document YAML stream — the Pod or Deployment whose pod
    /// carries `semble.dev/policy` (else the first) — with the RuntimeClasses beside it.
    pub fn from_yaml(text: &str) -> Result<PodManifest, String> {
        let docs = semble_policy::yaml::parse_stream(text).map_err(|e| format!("manifests: {e}"))?;
        let mut runtime_classes = BTreeMap::new();
        let mut pods = Vec::new();
        for d in docs {
            let v = d.root.to_json();
            match v.get("kind").and_then(Value::as_str) {
                Some("RuntimeClass") => {
                    let rc: RuntimeClass = serde_json::from_value(v).map_err(|e| format!("RuntimeClass: {e}"))?;
                    runtime_classes.insert(rc.metadata.name.unwrap_or_default(), rc.handler);
                }
                Some("Deployment") => {
                    let d: Deployment = serde_json::from_value(v).map_err(|e| format!("Deployment: {e}"))?;
                    let spec = d.spec.ok_or("Deployment without spec")?;
                    let meta = spec.template.metadata.unwrap_or_default();
                    pods.push(PodManifest {
                        name: d.metadata.name.unwrap_or_default(),
                        namespace: d.metadata.namespace.unwrap_or_else(|| "default".into()),
                        annotations: meta.annotations.unwrap_or_default(),
                        labels: meta.labels.unwrap_or_default(),
                        spec: spec.template.spec.ok_or("Deployment without a pod template spec")?,
                        runtime_classes: BTreeMap::new(),
                        container_annotations: HashMap::new(),
                    });
                }
                Some("Pod") => {
                    let p: Pod = serde_json::from_value(v).map_err(|e| format!("Pod: {e}"))?;
                    pods.push(PodManifest {
                        name: p.metadata.name.unwrap_or_default(),
                        namespace: p.metadata.namespace.unwrap_or_else(|| "default".into()),
                        annotations: p.metadata.annotations.unwrap_or_default(),
                        labels: p.metadata.labels.unwrap_or_default(),
                        spec: p.spec.ok_or("Pod without spec")?,
                        runtime_classes: BTreeMap::new(),
                        container_annotations: HashMap::new(),
                    });
                }
                _ => {}
            }
        }
        let i = pods.iter().position(|p| p.annotations.contains_key("semble.dev/policy")).unwrap_or(0);
        if pods.is_empty() {
            return Err("no Pod or Deployment in the manifests".into());
        }
        let mut pod = pods.swap_remove(i);
        pod.runtime_classes = runtime_classes;
        Ok(pod)
    }

    /// The handler the kubelet asks for: the RuntimeClass's, or "" (containerd's default).
    pub fn handler(&self) -> Result<String, String> {
        match &self.spec.runtime_class_name {
            None => Ok(String::new()),
            Some(rc) => self
                .runtime_classes
                .get(rc)
                .cloned()
                .ok_or_else(|| format!("RuntimeClass \"{rc}\" not found (the kubelet refuses the pod)")),
        }
    }

    /// The workload container (the first of `containers`).
    pub fn workload(&mut self) -> &mut Container {
        &mut self.spec.containers[0]
    }
}

/// A containerd of the test's own with the CRI plugin, configured by the real node installer.
#[derive(Debug)]
pub struct CriNode {
    dir: tempfile::TempDir,
    child: Child,
    /// The installer's host root.
    pub host: PathBuf,
    /// containerd's gRPC socket.
    pub socket: PathBuf,
    rt: tokio::runtime::Runtime,
    runtime: cri::runtime_service_client::RuntimeServiceClient<Channel>,
    /// The probe image (busybox + semble-probe; its CMD runs the probe).
    pub image: String,
}

impl CriNode {
    /// Install semble onto a scratch host root and start containerd on it.
    pub fn start() -> CriNode {
        require_root();
        let containerd = require_tool("containerd", "containerd");
        require_tool("ctr", "containerd");
        require_tool("runc", "runc");
        require_tool("unshare", "util-linux");
        require_tool("ip", "iproute2");
        for plugin in ["bridge", "host-local", "loopback"] {
            assert!(
                Path::new(CNI_BIN).join(plugin).is_file(),
                "the CNI plugin {CNI_BIN}/{plugin} is missing: `apt-get install containernetworking-plugins` (.ci/run installs it)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let host = d.join("host");
        let socket = d.join("containerd.sock");

        // Images first: their names go into the configuration (sandbox_image).
        let (probe_archive, pause_archive) = build_images(&d);
        let pause = "localhost/semble-pause:test";

        // The node's own containerd configuration, CRI settings included, before semble.
        std::fs::create_dir_all(host.join("etc/containerd")).unwrap();
        let cni_conf = d.join("cni");
        std::fs::create_dir_all(&cni_conf).unwrap();
        let cfg = host.join("etc/containerd/config.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # no CAP_SYS_RESOURCE here, and CRI gives sandboxes oom_score_adj -998
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
"#,
                root = d.join("root").display(),
                state = d.join("state").display(),
                sock = socket.display(),
                cni = cni_conf.display(),
            ),
        )
        .unwrap();
        std::fs::write(
            cni_conf.join("10-semble-test.conflist"),
            serde_json::to_string_pretty(&json!({
                "cniVersion": "0.4.0",
                "name": "semble-test",
                "plugins": [{
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": false,
                    "ipMasq": false,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]], "dataDir": d.join("ipam")}
                }]
            }))
            .unwrap(),
        )
        .unwrap();

        // The real installer, as the semble-node DaemonSet runs it (no containerd restart).
        let src = node_image_tree(&d);
        std::os::unix::fs::symlink(runsc(), src.join("bin/runsc")).unwrap();
        let out = run(
            Command::new(workspace().join("deploy/node/install.sh"))
                .env("HOST", &host)
                .env("SRC", &src)
                .env("SEMBLE_NO_RESTART", "1"),
            true,
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("ready (changed: 1)"));
        // Only the paths change: the node's /usr/local/bin is HOST/usr/local/bin here.
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(&cfg, text.replace("\"/usr/local/bin/", &format!("\"{}/usr/local/bin/", host.display())))
            .unwrap();

        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let path = format!("{}:{}", host.join("usr/local/bin").display(), std::env::var("PATH").unwrap_or_default());
        let child = Command::new("unshare")
            .args(["--net", "--", "sh", "-c", "ip link set lo up && exec \"$0\" --config \"$1\""])
            .arg(&containerd)
            .arg(&cfg)
            .env("PATH", path)
            .env("SEMBLE_POLICY_DIR", host.join("etc/semble/policies"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "containerd did not start:\n{}", read(&d.join("containerd.log")));
            std::thread::sleep(Duration::from_millis(50));
        }
        let sock = socket.clone();
        let channel = rt
            .block_on(async move {
                Endpoint::try_from("http://[::]:50051")?
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let sock = sock.clone();
                        async move {
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                                tokio::net::UnixStream::connect(sock).await?,
                            ))
                        }
                    }))
                    .await
            })
            .unwrap();
        let runtime = cri::runtime_service_client::RuntimeServiceClient::new(channel);
        let mut node = CriNode { dir, child, host, socket, rt, runtime, image: String::new() };
        // The CRI plugin answers once it is initialised.
        loop {
            let mut rs = node.runtime.clone();
            if node.rt.block_on(rs.version(cri::VersionRequest::default())).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "containerd's CRI did not answer:\n{}", node.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        node.image = node.import(&probe_archive, "localhost/semble-probe:test");
        node.import(&pause_archive, pause);
        node
    }

    /// `ctr -n k8s.io image import`, named `want`.
    fn import(&self, archive: &Path, want: &str) -> String {
        let base = want.rsplit_once(':').map_or(want, |(b, _)| b);
        run(self.ctr().args(["images", "import", "--base-name", base]).arg(archive), true);
        let out = run(self.ctr().args(["images", "list", "-q"]), true);
        let listed = String::from_utf8_lossy(&out.stdout).to_string();
        let got = listed.lines().find(|l| l.contains(base)).unwrap_or_else(|| panic!("{want} not imported: {listed}"));
        if got != want {
            run(self.ctr().args(["images", "tag", got, want]), true);
        }
        want.to_string()
    }

    /// `ctr --namespace k8s.io` against this containerd.
    pub fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address").arg(&self.socket).args(["--namespace", "k8s.io"]).stdin(Stdio::null());
        c
    }

    /// containerd's log.
    pub fn log(&self) -> String {
        read(&self.dir.path().join("containerd.log"))
    }

    /// Where the kubelet keeps `Localhost` seccomp profiles on this node.
    pub fn seccomp_root(&self) -> PathBuf {
        self.host.join("var/lib/kubelet/seccomp")
    }

    /// The manifests `semble-policy compile --target kubernetes` emits for `policy` (an
    /// installed policy's name), with this node's probe image.
    pub fn manifests(&self, policy: &str) -> PodManifest {
        let file = self.host.join(format!("etc/semble/policies/{policy}.yaml"));
        let out = run(
            Command::new(bin("semble-policy"))
                .args(["compile", "--target", "kubernetes", "--image", &self.image])
                .arg(&file),
            true,
        );
        PodManifest::from_yaml(&String::from_utf8_lossy(&out.stdout)).unwrap()
    }

    fn call<T>(
        &self,
        f: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, String> {
        // The kubelet gives each call a deadline too (--runtime-request-timeout, 2 minutes): a
        // call that never returns is a failure, not a hung test.
        match self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(120), f).await }) {
            Ok(r) => r.map(tonic::Response::into_inner).map_err(|s| s.message().to_string()),
            Err(_) => Err("the CRI call did not return within 120 s".to_string()),
        }
    }

    /// Run a pod the way the kubelet does; a CRI error comes back as its message (after the
    /// harness removed whatever the pod got, as the kubelet's cleanup would).
    pub fn run_pod(&self, pod: &PodManifest) -> Result<RunningPod<'_>, String> {
        let handler = pod.handler()?;
        let uid = unique("uid");
        let pod_dir = self.dir.path().join("pods").join(&uid);
        std::fs::create_dir_all(&pod_dir).unwrap();
        let spec = &pod.spec;
        let host_network = spec.host_network == Some(true);
        let namespaces = cri::NamespaceOption {
            network: if host_network { cri::NamespaceMode::Node } else { cri::NamespaceMode::Pod } as i32,
            pid: if spec.host_pid == Some(true) {
                cri::NamespaceMode::Node
            } else if spec.share_process_namespace == Some(true) {
                cri::NamespaceMode::Pod
            } else {
                cri::NamespaceMode::Container
            } as i32,
            ipc: if spec.host_ipc == Some(true) { cri::NamespaceMode::Node } else { cri::NamespaceMode::Pod } as i32,
            ..Default::default()
        };
        let psc = spec.security_context.clone().unwrap_or_default();
        let mut labels: HashMap<String, String> = pod.labels.clone().into_iter().collect();
        labels.insert("io.kubernetes.pod.name".into(), pod.name.clone());
        labels.insert("io.kubernetes.pod.namespace".into(), pod.namespace.clone());
        labels.insert("io.kubernetes.pod.uid".into(), uid.clone());
        let privileged = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true));
        let sandbox = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: pod.name.clone(),
                uid: uid.clone(),
                namespace: pod.namespace.clone(),
                attempt: 0,
            }),
            // The kubelet leaves the hostname empty for host-network pods.
            hostname: if host_network { String::new() } else { pod.name.clone() },
            log_directory: pod_dir.join("logs").display().to_string(),
            labels: labels.clone(),
            annotations: pod.annotations.clone().into_iter().collect(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("/{CGROUP_PARENT}/pod{uid}"),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces.clone()),
                    run_as_user: psc.run_as_user.map(|value| cri::Int64Value { value }),
                    run_as_group: psc.run_as_group.map(|value| cri::Int64Value { value }),
                    supplemental_groups: psc.supplemental_groups.clone().unwrap_or_default(),
                    privileged,
                    seccomp: self.seccomp(psc.seccomp_profile.as_ref()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut rs = self.runtime.clone();
        let id = self
            .call(rs.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(sandbox.clone()),
                runtime_handler: handler.clone(),
            }))?
            .pod_sandbox_id;
        let mut running = RunningPod { node: self, id, uid, sandbox, handler, containers: Vec::new(), dir: pod_dir };
        let result = (|| {
            for c in spec.init_containers.iter().flatten() {
                let cid = running.create(pod, c, &namespaces)?;
                running.start(&c.name, &cid)?;
                if c.restart_policy.as_deref() != Some("Always") {
                    // A plain init container runs to completion before the next one starts.
                    let code = running.wait_exit(&c.name, Duration::from_secs(60))?;
                    if code != 0 {
                        return Err(format!("init container {} exited with {code}", c.name));
                    }
                }
            }
            for c in &spec.containers {
                let cid = running.create(pod, c, &namespaces)?;
                running.start(&c.name, &cid)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(running),
            Err(e) => {
                running.remove();
                Err(e)
            }
        }
    }

    /// The kubelet's translation of a seccompProfile.
    fn seccomp(&self, p: Option<&SeccompProfile>) -> Option<cri::SecurityProfile> {
        use cri::security_profile::ProfileType;
        let p = p?;
        Some(match p.type_.as_str() {
            "Localhost" => cri::SecurityProfile {
                profile_type: ProfileType::Localhost as i32,
                localhost_ref: self
                    .seccomp_root()
                    .join(p.localhost_profile.clone().unwrap_or_default())
                    .display()
                    .to_string(),
            },
            "Unconfined" => cri::SecurityProfile { profile_type: ProfileType::Unconfined as i32, ..Default::default() },
            _ => cri::SecurityProfile { profile_type: ProfileType::RuntimeDefault as i32, ..Default::default() },
        })
    }

    /// Pod sandboxes containerd knows.
    pub fn sandboxes(&self) -> Vec<cri::PodSandbox> {
        let mut rs = self.runtime.clone();
        self.call(rs.list_pod_sandbox(cri::ListPodSandboxRequest::default())).map(|r| r.items).unwrap_or_default()
    }

    /// Containers containerd knows.
    pub fn containers(&self) -> Vec<cri::Container> {
        let mut rs = self.runtime.clone();
        self.call(rs.list_containers(cri::ListContainersRequest::default())).map(|r| r.containers).unwrap_or_default()
    }

    /// The directory semble-shim keeps its records in for this containerd's pods.
    pub fn shim_records(&self) -> PathBuf {
        PathBuf::from("/run/containerd/runc/k8s.io/semble")
    }
}

impl Drop for CriNode {
    fn drop(&mut self) {
        for s in self.sandboxes() {
            let mut rs = self.runtime.clone();
            let _ = self.call(rs.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: s.id.clone() }));
            let _ = self.call(rs.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: s.id }));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Shims of pods that failed half-way outlive containerd: find them by our socket and
        // stop them with their children (runc's or runsc's processes).
        let sock = self.socket.display().to_string();
        let procs: Vec<(i32, i32, String)> = std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                    .filter_map(|pid| {
                        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                        let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
                        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                        Some((pid, ppid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (shim, _, _) in procs.iter().filter(|(_, _, c)| c.contains("containerd-shim") && c.contains(&sock)) {
            for (child, _, _) in procs.iter().filter(|(_, ppid, _)| ppid == shim) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*child), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*shim), nix::sys::signal::Signal::SIGKILL);
        }
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let root = self.dir.path().to_string_lossy().into_owned();
            for m in mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|m| m.starts_with(&root)) {
                let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// A pod that RunPodSandbox accepted.
#[derive(Debug)]
pub struct RunningPod<'a> {
    node: &'a CriNode,
    /// The sandbox id.
    pub id: String,
    /// The pod's uid.
    pub uid: String,
    sandbox: cri::PodSandboxConfig,
    /// The handler it runs under.
    pub handler: String,
    /// (name, container id), in start order.
    pub containers: Vec<(String, String)>,
    dir: PathBuf,
}

impl RunningPod<'_> {
    fn create(&mut self, pod: &PodManifest, c: &Container, ns: &cri::NamespaceOption) -> Result<String, String> {
        let psc = pod.spec.security_context.clone().unwrap_or_default();
        let sc = c.security_context.clone().unwrap_or_default();
        let privileged = sc.privileged == Some(true);
        let mut mounts = Vec::new();
        for vm in c.volume_mounts.iter().flatten() {
            let vol = pod
                .spec
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == vm.name)
                .ok_or_else(|| format!("volume {} of container {} is not defined", vm.name, c.name))?;
            if vol.empty_dir.is_none() {
                return Err(format!("volume {}: only emptyDir volumes are supported by this harness", vm.name));
            }
            let host_path = self.dir.join("volumes").join(&vm.name);
            if !host_path.exists() {
                std::fs::create_dir_all(&host_path).unwrap();
                // The kubelet creates emptyDir directories world-writable.
                std::fs::set_permissions(&host_path, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
            }
            mounts.push(cri::Mount {
                container_path: vm.mount_path.clone(),
                host_path: host_path.display().to_string(),
                readonly: vm.read_only == Some(true),
                ..Default::default()
            });
        }
        let limits = c.resources.as_ref().and_then(|r| r.limits.clone()).unwrap_or_default();
        let requests = c.resources.as_ref().and_then(|r| r.requests.clone()).unwrap_or_default();
        let millis = |m: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
            m.get("cpu").and_then(|q| semble_policy::quantity::parse_millicores(&q.0))
        };
        let resources = cri::LinuxContainerResources {
            cpu_period: if millis(&limits).is_some() { 100_000 } else { 0 },
            cpu_quota: millis(&limits).map_or(0, |m| i64::try_from(m * 100).unwrap_or(i64::MAX)),
            cpu_shares: i64::try_from(millis(&requests).or(millis(&limits)).map_or(2, |m| (m * 1024 / 1000).max(2)))
                .unwrap_or(2),
            memory_limit_in_bytes: limits
                .get("memory")
                .and_then(|q| semble_policy::quantity::parse_bytes(&q.0))
                .map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            ..Default::default()
        };
        let caps = sc.capabilities.clone().unwrap_or_default();
        let security = cri::LinuxContainerSecurityContext {
            capabilities: Some(cri::Capability {
                add_capabilities: caps.add.unwrap_or_default(),
                drop_capabilities: caps.drop.unwrap_or_default(),
                ..Default::default()
            }),
            privileged,
            namespace_options: Some(ns.clone()),
            run_as_user: sc.run_as_user.or(psc.run_as_user).map(|value| cri::Int64Value { value }),
            run_as_group: sc.run_as_group.or(psc.run_as_group).map(|value| cri::Int64Value { value }),
            readonly_rootfs: sc.read_only_root_filesystem == Some(true),
            supplemental_groups: psc.supplemental_groups.clone().unwrap_or_default(),
            no_new_privs: sc.allow_privilege_escalation == Some(false),
            masked_paths: if privileged { Vec::new() } else { DEFAULT_MASKED.iter().map(|s| s.to_string()).collect() },
            readonly_paths: if privileged {
                Vec::new()
            } else {
                DEFAULT_READONLY.iter().map(|s| s.to_string()).collect()
            },
            seccomp: self.node.seccomp(sc.seccomp_profile.as_ref().or(psc.seccomp_profile.as_ref())),
            ..Default::default()
        };
        let envs = c
            .env
            .iter()
            .flatten()
            .map(|e| cri::KeyValue { key: e.name.clone(), value: e.value.clone().unwrap_or_default() })
            .collect();
        let mut labels = HashMap::new();
        labels.insert("io.kubernetes.container.name".to_string(), c.name.clone());
        labels.insert("io.kubernetes.pod.name".to_string(), pod.name.clone());
        labels.insert("io.kubernetes.pod.namespace".to_string(), pod.namespace.clone());
        labels.insert("io.kubernetes.pod.uid".to_string(), self.uid.clone());
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata { name: c.name.clone(), attempt: 0 }),
            image: Some(cri::ImageSpec { image: c.image.clone().unwrap_or_default(), ..Default::default() }),
            command: c.command.clone().unwrap_or_default(),
            args: c.args.clone().unwrap_or_default(),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            envs,
            mounts,
            labels,
            annotations: pod.container_annotations.get(&c.name).cloned().unwrap_or_default(),
            log_path: format!("{}/0.log", c.name),
            linux: Some(cri::LinuxContainerConfig { resources: Some(resources), security_context: Some(security) }),
            ..Default::default()
        };
        let mut rs = self.node.runtime.clone();
        let id = self
            .node
            .call(rs.create_container(cri::CreateContainerRequest {
                pod_sandbox_id: self.id.clone(),
                config: Some(config),
                sandbox_config: Some(self.sandbox.clone()),
            }))?
            .container_id;
        self.containers.push((c.name.clone(), id.clone()));
        Ok(id)
    }

    fn start(&self, name: &str, id: &str) -> Result<(), String> {
        let mut rs = self.node.runtime.clone();
        self.node
            .call(rs.start_container(cri::StartContainerRequest { container_id: id.to_string() }))
            .map(|_| ())
            .map_err(|e| format!("container {name}: {e}"))
    }

    /// The id of container `name`.
    pub fn container(&self, name: &str) -> String {
        self.containers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.clone())
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    /// Wait until container `name` exits; its exit code.
    pub fn wait_exit(&self, name: &str, timeout: Duration) -> Result<i32, String> {
        let id = self.container(name);
        let deadline = Instant::now() + timeout;
        loop {
            let mut rs = self.node.runtime.clone();
            let status = self
                .node
                .call(rs.container_status(cri::ContainerStatusRequest { container_id: id.clone(), verbose: false }))?
                .status
                .ok_or("no container status")?;
            if status.state == cri::ContainerState::ContainerExited as i32 {
                return Ok(status.exit_code);
            }
            if Instant::now() > deadline {
                return Err(format!("container {name} still running after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// ExecSync in container `name`: (exit code, stdout, stderr).
    pub fn exec(&self, name: &str, cmd: &[&str]) -> (i32, String, String) {
        let mut rs = self.node.runtime.clone();
        let r = self
            .node
            .call(rs.exec_sync(cri::ExecSyncRequest {
                container_id: self.container(name),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 60,
            }))
            .unwrap_or_else(|e| panic!("ExecSync {cmd:?} in {name}: {e}"));
        (r.exit_code, String::from_utf8_lossy(&r.stdout).into_owned(), String::from_utf8_lossy(&r.stderr).into_owned())
    }

    /// What container `name` wrote, from its CRI log (`TIME STREAM TAG TEXT` lines).
    pub fn logs(&self, name: &str) -> String {
        let text = read(&self.dir.join("logs").join(name).join("0.log"));
        text.lines().filter_map(|l| l.splitn(4, ' ').nth(3)).map(|l| format!("{l}\n")).collect()
    }

    /// StopContainer of container `name` with `grace` seconds before SIGKILL, as the kubelet does.
    pub fn stop(&self, name: &str, grace: i64) -> Result<(), String> {
        let mut rs = self.node.runtime.clone();
        let req = cri::StopContainerRequest { container_id: self.container(name), timeout: grace };
        self.node.call(rs.stop_container(req)).map(|_| ())
    }

    /// StopPodSandbox and RemovePodSandbox, as the kubelet does when the pod is deleted; both
    /// must succeed.
    pub fn remove(&self) {
        let mut rs = self.node.runtime.clone();
        let stopped =
            self.node.call(rs.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: self.id.clone() }));
        let removed =
            self.node.call(rs.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: self.id.clone() }));
        if let Err(e) = stopped.and(removed) {
            panic!("pod {} could not be stopped and removed: {e}\ncontainerd:\n{}", self.id, self.node.log());
        }
    }
}

/// The probe image (its CMD runs the probe; it carries a label naming another policy, which
/// nothing may honour) and the sandbox ("pause") image, as OCI archives.
fn build_images(dir: &Path) -> (PathBuf, PathBuf) {
    require_tool("podman", "podman");
    let root = dir.join("rootfs");
    rootfs(&root);
    let tar = dir.join("rootfs.tar");
    run(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg("."), true);
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root").arg(dir.join("podman/storage")).arg("--runroot").arg(dir.join("podman/run"));
        c.args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]).args(args).stdin(Stdio::null());
        run(&mut c, true);
    };
    let tar_s = tar.display().to_string();
    podman(&[
        "import",
        "-q",
        "--change",
        "CMD [\"/bin/probe\"]",
        "--change",
        "LABEL semble.dev/policy=llm-server",
        &tar_s,
        "localhost/semble-probe:test",
    ]);
    podman(&[
        "import",
        "-q",
        "--change",
        "CMD [\"/bin/sleep\", \"2147483647\"]",
        &tar_s,
        "localhost/semble-pause:test",
    ]);
    let probe = dir.join("probe.oci.tar");
    let pause = dir.join("pause.oci.tar");
    podman(&["save", "--format", "oci-archive", "-o", &probe.display().to_string(), "localhost/semble-probe:test"]);
    podman(&["save", "--format", "oci-archive", "-o", &pause.display().to_string(), "localhost/semble-pause:test"]);
    (probe, pause)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}
