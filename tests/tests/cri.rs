//! The Kubernetes node path: pods through containerd's CRI plugin (driven as the kubelet drives
//! it, `semble_tests::cri`) onto the runtime handlers `deploy/node/install.sh` configures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::collections::HashMap;
use std::time::Duration;

use semble_tests::cri::{CriNode, PodManifest, RunningPod, BRIDGE, CGROUP_PARENT};
use semble_tests::Probe;

/// One node at a time: the checks for leftovers read host-wide state (mounts, cgroups, the shim's
/// records under containerd's runc root), which a parallel test would change.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn node() -> (std::sync::MutexGuard<'static, ()>, CriNode) {
    let guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    (guard, CriNode::start())
}

/// The workload runs the probe, then stays up for ExecSync.
fn probe_then_sleep(pod: &mut PodManifest) {
    pod.workload().command = Some(vec!["/bin/sh".into(), "-c".into(), "/bin/probe; exec sleep 3600".into()]);
}

/// A native sidecar (an init container with `restartPolicy: Always`) like the workload,
/// running `command`.
fn sidecar(pod: &mut PodManifest, command: &[&str]) -> k8s_openapi::api::core::v1::Container {
    let mut sidecar = pod.workload().clone();
    sidecar.name = "sidecar".into();
    sidecar.restart_policy = Some("Always".into());
    sidecar.command = Some(command.iter().map(|s| s.to_string()).collect());
    sidecar
}

/// The probe's report from the workload's log, once it is complete.
fn logged_probe(pod: &RunningPod<'_>) -> Probe {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let logs = pod.logs("workload");
        if logs.contains("PROBE DONE") {
            return Probe::parse(&logs);
        }
        assert!(std::time::Instant::now() < deadline, "the probe did not finish:\n{logs}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The same pod, run under `runtime_class`, is held to the workspace policy (its main process
/// and ExecSync processes).
fn workspace_pod_under(node: &CriNode, runtime_class: &str, backend: &str) {
    let mut pod = node.manifests("workspace");
    pod.spec.runtime_class_name = Some(runtime_class.into());
    probe_then_sleep(&mut pod);
    let running = node.run_pod(&pod).unwrap_or_else(|e| panic!("{e}\ncontainerd:\n{}", node.log()));
    logged_probe(&running).assert_workspace_enforced(backend);
    let (code, out, err) = running.exec("workload", &["/bin/probe"]);
    assert_eq!(code, 0, "{out}{err}");
    Probe::parse(&out).assert_workspace_enforced(backend);
    running.remove();
}

#[test]
fn the_emitted_workspace_pod_runs_under_semble_runc() {
    let (_serial, node) = node();
    workspace_pod_under(&node, "semble-runc", "runc");
}

/// gVisor through containerd's runc shim type: the workload is a sub-container of the pod's
/// sandbox, started by semble's holder (its log, ExecSync and exit status are the container's).
#[test]
fn the_emitted_workspace_pod_runs_under_semble_gvisor() {
    let (_serial, node) = node();
    workspace_pod_under(&node, "semble-gvisor", "runsc");
}

/// What the kubelet learns about a gVisor pod's containers is theirs, not the sandbox's: each
/// one's output lands in its own log, its exit status is its own and comes when it exits (not
/// when the pod does), StopContainer stops one container, and nothing is left once the pod is
/// removed.
#[test]
fn a_gvisor_pods_containers_report_their_own_output_and_exit() {
    let (_serial, node) = node();
    let mut pod = node.manifests("workspace");
    pod.spec.runtime_class_name = Some("semble-gvisor".into());
    let sidecar = sidecar(&mut pod, &["/bin/sleep", "3600"]);
    pod.spec.init_containers = Some(vec![sidecar]);
    pod.workload().command =
        Some(vec!["/bin/sh".into(), "-c".into(), "echo to-stdout; echo to-stderr >&2; exit 3".into()]);
    let running = node.run_pod(&pod).unwrap_or_else(|e| panic!("{e}\ncontainerd:\n{}", node.log()));
    assert_eq!(running.wait_exit("workload", Duration::from_secs(30)), Ok(3), "{}", node.log());
    let logs = running.logs("workload");
    assert!(logs.contains("to-stdout") && logs.contains("to-stderr"), "workload log: {logs:?}");
    // The sidecar is still up in the same sandbox; ExecSync reports its command's own status.
    let (code, _, _) = running.exec("sidecar", &["/bin/sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
    running.stop("sidecar", 10).unwrap_or_else(|e| panic!("{e}\ncontainerd:\n{}", node.log()));
    // busybox sleep dies of the SIGTERM: 128 + 15.
    assert_eq!(running.wait_exit("sidecar", Duration::from_secs(5)), Ok(143));
    let ids: Vec<String> = running.containers.iter().map(|(_, id)| id.clone()).collect();
    running.remove();
    assert!(node.containers().is_empty(), "a container is left: {:?}", node.containers());
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| ids.iter().any(|id| c.contains(id.as_str())))
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

#[test]
fn a_pod_naming_an_unknown_policy_fails_clearly_and_leaves_nothing() {
    let (_serial, node) = node();
    unknown_policy_leaves_nothing(&node, "semble-runc");
}

#[test]
fn a_gvisor_pod_naming_an_unknown_policy_fails_clearly_and_leaves_nothing() {
    let (_serial, node) = node();
    unknown_policy_leaves_nothing(&node, "semble-gvisor");
}

/// A workload whose program does not exist, under gVisor: semble-init is the container's first
/// process, so the container starts, then exits 127 with the reason in its log; the pod is
/// removed cleanly.
#[test]
fn a_gvisor_workload_without_its_program_exits_with_the_reason_in_its_log() {
    let (_serial, node) = node();
    let mut pod = node.manifests("workspace");
    pod.spec.runtime_class_name = Some("semble-gvisor".into());
    pod.workload().command = Some(vec!["/bin/no-such-program".into()]);
    let running = node.run_pod(&pod).unwrap_or_else(|e| panic!("{e}\ncontainerd:\n{}", node.log()));
    let code = running.wait_exit("workload", Duration::from_secs(30));
    let logs = running.logs("workload");
    assert_eq!(code, Ok(127), "{logs}");
    assert!(logs.contains("/bin/no-such-program"), "the log must name the program: {logs:?}");
    running.remove();
    assert!(node.sandboxes().is_empty(), "a sandbox is left: {:?}", node.sandboxes());
}

fn unknown_policy_leaves_nothing(node: &CriNode, runtime_class: &str) {
    let mut pod = node.manifests("workspace");
    pod.spec.runtime_class_name = Some(runtime_class.into());
    pod.annotations.insert("semble.dev/policy".into(), "nope".into());
    let before = mounts();
    let records_before = entries(&node.shim_records());
    let err = node.run_pod(&pod).map(|p| p.id.clone()).expect_err("a pod with an unknown policy must not start");
    assert!(err.contains("unknown policy `nope`"), "the CRI error must name the problem: {err}");
    assert!(node.sandboxes().is_empty(), "a sandbox is left: {:?}", node.sandboxes());
    assert!(node.containers().is_empty(), "a container is left: {:?}", node.containers());
    let after = mounts();
    let new: Vec<_> = after.iter().filter(|m| !before.contains(m)).collect();
    assert!(new.is_empty(), "mounts left behind: {new:?}");
    let left: Vec<_> = entries(&node.shim_records()).into_iter().filter(|e| !records_before.contains(e)).collect();
    assert!(left.is_empty(), "semble-shim records left: {left:?}");
    let cgroups = std::path::Path::new("/sys/fs/cgroup").join(CGROUP_PARENT);
    let leaves: Vec<_> =
        walk(&cgroups).into_iter().filter(|p| p.join("cgroup.procs").is_file() && p != &cgroups).collect();
    // The pod-level directories are the kubelet's to remove; no container's cgroup may remain.
    assert!(leaves.iter().all(|p| p.parent() == Some(&cgroups)), "container cgroups left: {leaves:?}");
}

#[test]
fn the_pod_annotation_chooses_and_a_container_cannot_choose_another() {
    let (_serial, node) = node();
    let mut pod = node.manifests("workspace");
    pod.spec.runtime_class_name = Some("semble-runc".into());
    probe_then_sleep(&mut pod);
    // A container-level annotation naming a laxer policy (the image's label names one too).
    pod.container_annotations
        .insert("workload".into(), HashMap::from([("semble.dev/policy".to_string(), "llm-server".to_string())]));
    let running = node.run_pod(&pod).unwrap_or_else(|e| panic!("{e}\ncontainerd:\n{}", node.log()));
    logged_probe(&running).assert_workspace_enforced("runc");
    let (_, out, _) = running.exec("workload", &["/bin/probe"]);
    Probe::parse(&out).assert_workspace_enforced("runc");
    running.remove();
}

#[test]
fn a_host_network_pod_gets_a_private_network_namespace_under_a_closed_policy() {
    let (_serial, node) = node();
    // A pod on the pod network first: from then on the node's namespace has the CNI bridge.
    let bystander =
        node.run_pod(&plain_pod(&node, false)).unwrap_or_else(|e| panic!("{e}\ncontainerd:\n{}", node.log()));
    let mut pod = node.manifests("workspace");
    pod.spec.runtime_class_name = Some("semble-runc".into());
    pod.spec.host_network = Some(true);
    pod.workload().command = Some(vec!["/bin/sleep".into(), "3600".into()]);
    let running = node.run_pod(&pod).unwrap_or_else(|e| panic!("{e}\ncontainerd:\n{}", node.log()));
    // The node's namespace has the CNI bridge; the pod's has loopback only.
    let (code, out, err) = running.exec("workload", &["/bin/cat", "/proc/net/dev"]);
    assert_eq!(code, 0, "{err}");
    let interfaces: Vec<&str> = out.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(interfaces, ["lo"], "a host-network pod must not see the node's interfaces ({BRIDGE}): {out}");
    running.remove();
    // The plain runc handler does give it the node's namespace (the difference is semble's).
    let running = node.run_pod(&plain_pod(&node, true)).unwrap_or_else(|e| panic!("{e}\ncontainerd:\n{}", node.log()));
    let (_, out, _) = running.exec("workload", &["/bin/cat", "/proc/net/dev"]);
    assert!(out.contains(BRIDGE), "{out}");
    running.remove();
    bystander.remove();
}

/// The workspace pod without semble: containerd's default handler (runc), no security context,
/// no policy annotation, sleeping.
fn plain_pod(node: &CriNode, host_network: bool) -> PodManifest {
    let mut plain = node.manifests("workspace");
    plain.spec.runtime_class_name = None;
    plain.spec.host_network = Some(host_network);
    plain.spec.security_context = None;
    plain.annotations.clear();
    plain.workload().security_context = None;
    plain.workload().command = Some(vec!["/bin/sleep".into(), "3600".into()]);
    plain
}

#[test]
fn native_sidecars_start_before_the_workload() {
    let (_serial, node) = node();
    let mut pod = node.manifests("workspace");
    pod.spec.runtime_class_name = Some("semble-runc".into());
    let sidecar = sidecar(&mut pod, &["/bin/sh", "-c", "echo up > /workspace/sidecar; exec sleep 3600"]);
    let mut init = pod.workload().clone();
    init.name = "init".into();
    init.command = Some(vec!["/bin/sh".into(), "-c".into(), "echo done > /workspace/init".into()]);
    pod.spec.init_containers = Some(vec![init, sidecar]);
    // The workload sees what both left in the shared emptyDir.
    pod.workload().command = Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        "while [ ! -e /workspace/sidecar ]; do sleep 0.05; done; cat /workspace/init; exec sleep 3600".into(),
    ]);
    let running = node.run_pod(&pod).unwrap_or_else(|e| panic!("{e}\ncontainerd:\n{}", node.log()));
    let names: Vec<&str> = running.containers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["init", "sidecar", "workload"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !running.logs("workload").contains("done") {
        assert!(std::time::Instant::now() < deadline, "workload log: {}", running.logs("workload"));
        std::thread::sleep(Duration::from_millis(50));
    }
    // The sidecar is held to the same policy.
    let (_, out, _) = running.exec("sidecar", &["/bin/probe"]);
    Probe::parse(&out).assert_workspace_enforced("runc");
    running.remove();
}

fn mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walk(&e.path()));
            }
        }
    }
    out
}
