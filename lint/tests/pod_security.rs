//! Pod Security, check by check and version by version, against fixtures written from the
//! upstream rules (`pod-security-admission`'s `policy/check_*.go` and the pass/fail cases its
//! `test/fixtures_*.go` generate): each case is a pod, a policy version and the exact set of
//! upstream checks that must reject it — empty when the admission controller admits it at
//! `restricted`. Baseline checks must come out as errors, restricted-only ones as warnings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::collections::BTreeSet;

use semble_lint::{lint_all_with, Finding, Level, Options, PssVersion};

/// A pod that passes `restricted` at every version: runAsNonRoot and RuntimeDefault on the pod,
/// every container (an init container too) without privilege escalation and dropping ALL.
const RESTRICTED: &str = "apiVersion: v1
kind: Pod
metadata: {name: p, namespace: apps}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  initContainers:
    - name: init
      image: registry.k8s.io/pause:3.10
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
  containers:
    - name: c
      image: registry.k8s.io/pause:3.10
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
";

fn pss(findings: &[Finding]) -> BTreeSet<&'static str> {
    findings.iter().filter_map(|f| f.pod_security.as_ref().map(|p| p.check)).collect()
}

fn run(yaml: &str, version: &str) -> Vec<Finding> {
    let opts = Options { pss_version: PssVersion::parse(version).unwrap() };
    lint_all_with(&[("pod.yaml".into(), yaml.to_string())], &opts).unwrap()
}

fn checks(yaml: &str, version: &str) -> BTreeSet<&'static str> {
    pss(&run(yaml, version))
}

/// `RESTRICTED` with `from` replaced by `to` (which must be there).
fn tweak(from: &str, to: &str) -> String {
    assert!(RESTRICTED.contains(from), "{from:?} not in the base pod");
    RESTRICTED.replacen(from, to, 1)
}

const C_SC: &str = "    - name: c\n      image: registry.k8s.io/pause:3.10\n      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}";

fn container_sc(extra: &str) -> String {
    tweak(C_SC, &format!("    - name: c\n      image: registry.k8s.io/pause:3.10\n      securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}, {extra}}}"))
}

fn set(ids: &[&'static str]) -> BTreeSet<&'static str> {
    ids.iter().copied().collect()
}

#[test]
fn the_restricted_pod_passes_at_every_version() {
    for v in ["v1.0", "v1.8", "v1.19", "v1.22", "v1.25", "v1.31", "v1.34", "latest"] {
        assert!(checks(RESTRICTED, v).is_empty(), "{v}: {:#?}", run(RESTRICTED, v));
    }
}

#[test]
fn capabilities_compare_names_exactly_as_written() {
    let add = |caps: &str| {
        tweak(
            "capabilities: {drop: [ALL]}}\n  containers",
            &format!("capabilities: {{drop: [ALL], add: [{caps}]}}}}\n  containers"),
        )
    };
    // Lower case and the CAP_ prefix are not the baseline names.
    assert_eq!(checks(&add("chown"), "latest"), set(&["capabilities_baseline"]));
    assert_eq!(checks(&add("CAP_CHOWN"), "latest"), set(&["capabilities_baseline"]));
    assert_eq!(checks(&add("SYS_ADMIN"), "v1.0"), set(&["capabilities_baseline"]));
    // In the baseline set, but restricted allows only NET_BIND_SERVICE (from 1.22).
    assert_eq!(checks(&add("CHOWN"), "latest"), set(&["capabilities_restricted"]));
    assert!(checks(&add("CHOWN"), "v1.21").is_empty(), "no restricted capabilities check before 1.22");
    assert!(checks(&add("NET_BIND_SERVICE"), "latest").is_empty());
    // drop: [ALL] is required from 1.22, spelled exactly.
    let lower = tweak(C_SC, &C_SC.replace("drop: [ALL]", "drop: [all]"));
    assert_eq!(checks(&lower, "v1.22"), set(&["capabilities_restricted"]));
    assert!(checks(&lower, "v1.21").is_empty());
    // Levels: the baseline failure is an error, the restricted one a warning.
    let f = run(&add("chown, CHOWN"), "latest");
    let lv = |check: &str| f.iter().find(|x| x.pod_security.as_ref().is_some_and(|p| p.check == check)).unwrap().level;
    assert_eq!((lv("capabilities_baseline"), lv("capabilities_restricted")), (Level::Error, Level::Warning));
}

#[test]
fn probe_and_lifecycle_hosts_are_forbidden_from_1_34() {
    let probe = |handler: &str| tweak(C_SC, &format!("{C_SC}\n      {handler}"));
    for h in [
        "livenessProbe: {httpGet: {host: 127.0.0.1, port: 8080}}",
        "readinessProbe: {tcpSocket: {host: '::1', port: 8080}}",
        "startupProbe: {httpGet: {host: localhost, port: 8080}}",
        "lifecycle: {postStart: {httpGet: {host: bad.host, port: 80}}}",
        "lifecycle: {preStop: {tcpSocket: {host: 8.8.8.8, port: 80}}}",
    ] {
        assert_eq!(checks(&probe(h), "v1.34"), set(&["hostProbesAndHostLifecycle"]), "{h}");
        assert!(checks(&probe(h), "v1.33").is_empty(), "{h} before 1.34");
    }
    assert!(checks(&probe("livenessProbe: {httpGet: {host: '', port: 8080}}"), "latest").is_empty());
    assert!(checks(&probe("livenessProbe: {httpGet: {port: 8080}}"), "latest").is_empty());
    // Init containers too.
    let init = tweak(
        "      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n  containers",
        "      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n      readinessProbe: {tcpSocket: {host: 8.8.8.8, port: 53}}\n  containers",
    );
    assert_eq!(checks(&init, "latest"), set(&["hostProbesAndHostLifecycle"]));
}

#[test]
fn run_as_user_zero_is_restricted_from_1_23_and_user_namespaces_relax_it_from_1_35() {
    let pod_root = tweak("runAsNonRoot: true,", "runAsNonRoot: true, runAsUser: 0,");
    assert_eq!(checks(&pod_root, "v1.23"), set(&["runAsUser"]));
    assert!(checks(&pod_root, "v1.22").is_empty());
    let container_root = container_sc("runAsUser: 0");
    assert_eq!(checks(&container_root, "latest"), set(&["runAsUser"]));
    assert!(checks(&container_sc("runAsUser: 1000"), "latest").is_empty());
    let userns = container_root.replace("spec:\n", "spec:\n  hostUsers: false\n");
    assert!(checks(&userns, "v1.35").is_empty());
    assert_eq!(checks(&userns, "v1.34").len(), 1, "the 1.34 policy has no relaxation");
}

#[test]
fn run_as_non_root_follows_pod_and_container_settings() {
    // Pod false, containers true: the pod itself is a bad setter.
    let pod_false = tweak("runAsNonRoot: true,", "runAsNonRoot: false,")
        .replace("capabilities: {drop: [ALL]}}", "capabilities: {drop: [ALL]}, runAsNonRoot: true}");
    assert_eq!(checks(&pod_false, "latest"), set(&["runAsNonRoot"]));
    // Pod unset, every container true: admitted.
    let containers_true = tweak("runAsNonRoot: true, ", "")
        .replace("capabilities: {drop: [ALL]}}", "capabilities: {drop: [ALL]}, runAsNonRoot: true}");
    assert!(checks(&containers_true, "latest").is_empty(), "{:#?}", run(&containers_true, "latest"));
    // Pod true, one container false.
    assert_eq!(checks(&container_sc("runAsNonRoot: false"), "latest"), set(&["runAsNonRoot"]));
    // Pod unset and one container unset.
    let one_unset = tweak("runAsNonRoot: true, ", "").replacen(
        "capabilities: {drop: [ALL]}}\n  containers",
        "capabilities: {drop: [ALL]}, runAsNonRoot: true}\n  containers",
        1,
    );
    assert_eq!(checks(&one_unset, "latest"), set(&["runAsNonRoot"]));
    // User namespaces (1.35+).
    let userns = tweak("runAsNonRoot: true, ", "hostUsers_placeholder").replace("hostUsers_placeholder", "");
    let userns = userns.replace("spec:\n", "spec:\n  hostUsers: false\n");
    assert!(checks(&userns, "v1.35").is_empty());
    assert_eq!(checks(&userns, "v1.34"), set(&["runAsNonRoot"]));
}

#[test]
fn safe_sysctls_follow_the_release_that_made_each_safe() {
    let sysctl = |name: &str| {
        tweak("runAsNonRoot: true,", &format!("runAsNonRoot: true, sysctls: [{{name: {name}, value: '1'}}],"))
    };
    for (name, since) in [
        ("net.ipv4.tcp_rmem", 32),
        ("net.ipv4.tcp_wmem", 32),
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_keepalive_time", 29),
        ("net.ipv4.tcp_slow_start_after_idle", 37),
    ] {
        let pod = sysctl(name);
        assert_eq!(checks(&pod, &format!("v1.{}", since - 1)), set(&["sysctls"]), "{name} before 1.{since}");
        assert!(checks(&pod, &format!("v1.{since}")).is_empty(), "{name} at 1.{since}");
    }
    assert!(checks(&sysctl("kernel.shm_rmid_forced"), "v1.0").is_empty());
    assert_eq!(checks(&sysctl("kernel.msgmax"), "latest"), set(&["sysctls"]));
    // The false error the issue found: tcp_rmem at the newest version.
    assert!(checks(&sysctl("net.ipv4.tcp_rmem"), "latest").is_empty());
}

#[test]
fn selinux_types_by_version_and_no_user_or_role() {
    let se = |opts: &str| tweak("runAsNonRoot: true,", &format!("runAsNonRoot: true, seLinuxOptions: {{{opts}}},"));
    assert!(checks(&se("type: container_t, level: 's0:c1,c2'"), "v1.0").is_empty());
    assert_eq!(checks(&se("type: container_engine_t"), "v1.30"), set(&["seLinuxOptions"]));
    assert!(checks(&se("type: container_engine_t"), "v1.31").is_empty());
    assert_eq!(checks(&se("type: spc_t"), "latest"), set(&["seLinuxOptions"]));
    assert_eq!(checks(&se("user: system_u"), "latest"), set(&["seLinuxOptions"]));
    assert_eq!(checks(&container_sc("seLinuxOptions: {role: sysadm_r}"), "latest"), set(&["seLinuxOptions"]));
}

#[test]
fn proc_mount_baseline_relaxes_for_user_namespaces_from_1_35_and_restricted_does_not() {
    let unmasked = container_sc("procMount: Unmasked");
    assert_eq!(checks(&unmasked, "latest"), set(&["procMount"]));
    assert!(checks(&container_sc("procMount: Default"), "latest").is_empty());
    let userns = unmasked.replace("spec:\n", "spec:\n  hostUsers: false\n");
    let f = run(&userns, "v1.35");
    assert_eq!(pss(&f), set(&["procMount_restricted"]));
    assert!(f.iter().filter(|x| x.pod_security.is_some()).all(|x| x.level == Level::Warning), "baseline admits it");
    assert_eq!(checks(&userns, "v1.34"), set(&["procMount"]));
}

#[test]
fn seccomp_annotations_before_1_19_fields_from_1_19_and_restricted_needs_a_profile() {
    let unconfined = tweak("seccompProfile: {type: RuntimeDefault}", "seccompProfile: {type: Unconfined}");
    // Baseline rejects the pod's Unconfined; restricted also finds the containers without a
    // profile of their own (an invalid pod-level profile is nothing to inherit).
    assert_eq!(checks(&unconfined, "v1.19"), set(&["seccompProfile_baseline", "seccompProfile_restricted"]));
    // Before 1.19 the field is not read (and no restricted seccomp check exists).
    assert!(checks(&unconfined, "v1.18").is_empty());
    let annotated = tweak(
        "metadata: {name: p, namespace: apps}",
        "metadata: {name: p, namespace: apps, annotations: {seccomp.security.alpha.kubernetes.io/pod: unconfined}}",
    );
    assert_eq!(checks(&annotated, "v1.18"), set(&["seccompProfile_baseline"]));
    assert!(checks(&annotated, "v1.19").is_empty(), "annotations are not read from 1.19");
    let container_annotation = tweak(
        "metadata: {name: p, namespace: apps}",
        "metadata: {name: p, namespace: apps, annotations: {container.seccomp.security.alpha.kubernetes.io/c: unconfined, container.seccomp.security.alpha.kubernetes.io/gone: unconfined}}",
    );
    assert_eq!(checks(&container_annotation, "v1.18"), set(&["seccompProfile_baseline"]));
    // Restricted: no pod profile and a container without one.
    let none = tweak(", seccompProfile: {type: RuntimeDefault}", "");
    assert_eq!(checks(&none, "latest"), set(&["seccompProfile_restricted"]));
    // Every container setting its own profile is enough.
    let per_container = none.replace(
        "capabilities: {drop: [ALL]}}",
        "capabilities: {drop: [ALL]}, seccompProfile: {type: Localhost, localhostProfile: p.json}}",
    );
    assert!(checks(&per_container, "latest").is_empty());
}

#[test]
fn windows_pods_are_exempt_from_three_restricted_checks_from_1_25() {
    let windows = "apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec:\n  os: {name: windows}\n  securityContext: {runAsNonRoot: true}\n  containers: [{name: c, image: mcr.microsoft.com/windows/nanoserver:ltsc2022}]\n";
    assert!(checks(windows, "v1.25").is_empty(), "{:#?}", run(windows, "v1.25"));
    assert_eq!(
        checks(windows, "v1.24"),
        set(&["allowPrivilegeEscalation", "capabilities_restricted", "seccompProfile_restricted"])
    );
    let linux = windows.replace("  os: {name: windows}\n", "");
    assert_eq!(
        checks(&linux, "latest"),
        set(&["allowPrivilegeEscalation", "capabilities_restricted", "seccompProfile_restricted"])
    );
}

#[test]
fn allow_privilege_escalation_is_checked_from_1_8() {
    let unset = tweak(
        C_SC,
        "    - name: c\n      image: registry.k8s.io/pause:3.10\n      securityContext: {capabilities: {drop: [ALL]}}",
    );
    assert_eq!(checks(&unset, "v1.8"), set(&["allowPrivilegeEscalation"]));
    assert!(checks(&unset, "v1.7").is_empty());
    let escalates = tweak(C_SC, &C_SC.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"));
    assert_eq!(checks(&escalates, "latest"), set(&["allowPrivilegeEscalation"]));
}

#[test]
fn host_ports_zero_is_allowed() {
    let port = |p: &str| tweak(C_SC, &format!("{C_SC}\n      ports: [{{containerPort: 80, hostPort: {p}}}]"));
    assert!(checks(&port("0"), "latest").is_empty());
    assert_eq!(checks(&port("8080"), "latest"), set(&["hostPorts"]));
}

#[test]
fn app_armor_fields_and_annotations() {
    let ann = |v: &str| {
        tweak("metadata: {name: p, namespace: apps}", &format!("metadata: {{name: p, namespace: apps, annotations: {{container.apparmor.security.beta.kubernetes.io/c: '{v}'}}}}"))
    };
    assert_eq!(checks(&ann("unconfined"), "latest"), set(&["appArmorProfile"]));
    assert_eq!(checks(&ann("docker-default"), "latest"), set(&["appArmorProfile"]));
    for ok in ["runtime/default", "localhost/custom", ""] {
        assert!(checks(&ann(ok), "latest").is_empty(), "{ok}");
    }
    assert_eq!(checks(&container_sc("appArmorProfile: {type: Unconfined}"), "v1.0"), set(&["appArmorProfile"]));
    assert!(checks(&container_sc("appArmorProfile: {type: Localhost, localhostProfile: x}"), "latest").is_empty());
}

#[test]
fn volumes_host_path_is_baseline_and_the_rest_restricted() {
    let vol = |v: &str| format!("{RESTRICTED}  volumes: [{v}]\n");
    assert_eq!(checks(&vol("{name: h, hostPath: {path: /}}"), "latest"), set(&["hostPathVolumes"]));
    assert_eq!(checks(&vol("{name: n, nfs: {server: nas, path: /x}}"), "latest"), set(&["restrictedVolumes"]));
    for ok in [
        "{name: e}",
        "{name: i, image: {reference: registry.example/models:1}}",
        "{name: p, persistentVolumeClaim: {claimName: x}}",
        "{name: e, ephemeral: {volumeClaimTemplate: {spec: {}}}}",
    ] {
        assert!(checks(&vol(ok), "v1.0").is_empty(), "{ok}");
    }
}

#[test]
fn privileged_host_namespaces_host_process_and_ephemeral_containers() {
    assert_eq!(checks(&container_sc("privileged: true"), "latest"), set(&["privileged"]));
    assert!(checks(&container_sc("privileged: false"), "latest").is_empty());
    assert_eq!(checks(&tweak("spec:\n", "spec:\n  hostNetwork: true\n"), "latest"), set(&["hostNamespaces"]));
    assert_eq!(checks(&tweak("spec:\n", "spec:\n  hostIPC: true\n"), "latest"), set(&["hostNamespaces"]));
    assert_eq!(checks(&container_sc("windowsOptions: {hostProcess: true}"), "latest"), set(&["windowsHostProcess"]));
    let ephemeral = format!(
        "{RESTRICTED}  ephemeralContainers:\n    - name: debug\n      image: busybox:1.36\n      securityContext: {{privileged: true, allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}\n"
    );
    assert_eq!(checks(&ephemeral, "latest"), set(&["privileged"]));
}

#[test]
fn the_namespace_label_picks_the_version() {
    let ns = |v: &str| {
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: apps, labels: {{pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/enforce-version: '{v}'}}}}\n---\n")
    };
    let pod = tweak(
        "runAsNonRoot: true,",
        "runAsNonRoot: true, sysctls: [{name: net.ipv4.tcp_rmem, value: '4096 87380 6291456'}],",
    );
    let opts = Options::default();
    let lint = |text: String| lint_all_with(&[("a.yaml".into(), text)], &opts).unwrap();
    assert_eq!(pss(&lint(format!("{}{pod}", ns("v1.31")))), set(&["sysctls"]));
    assert!(pss(&lint(format!("{}{pod}", ns("v1.32")))).is_empty());
    assert!(pss(&lint(format!("{}{pod}", ns("latest")))).is_empty());
    // Across files, and a namespace without the label keeps --pss-version.
    let old = Options { pss_version: PssVersion::parse("v1.31").unwrap() };
    let two = |n: String| lint_all_with(&[("ns.yaml".into(), n), ("pod.yaml".into(), pod.clone())], &old).unwrap();
    assert!(pss(&two(ns("v1.32"))).is_empty());
    assert_eq!(pss(&two("apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n".into())), set(&["sysctls"]));
    // An unreadable label is reported, and the default applies.
    let f = two(ns("1.32"));
    assert!(f.iter().any(|x| x.rule == "SB029"), "{f:#?}");
    assert_eq!(pss(&f), set(&["sysctls"]));
}

#[test]
fn workload_templates_are_checked_with_the_template_metadata() {
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: apps, annotations: {container.apparmor.security.beta.kubernetes.io/c: unconfined}}\nspec:\n  template:\n    metadata: {annotations: {container.apparmor.security.beta.kubernetes.io/c: unconfined}}\n    spec:\n      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n      containers:\n        - name: c\n          image: registry.k8s.io/pause:3.10\n          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n";
    let f = run(deploy, "latest");
    // Only the template's annotation counts (once), as the admission controller reads the template.
    assert_eq!(
        f.iter().filter(|x| x.pod_security.as_ref().is_some_and(|p| p.check == "appArmorProfile")).count(),
        1,
        "{f:#?}"
    );
    assert_eq!(f.iter().find(|x| x.rule == "SB018").unwrap().line, 6);
}

#[test]
fn container_fields_at_pod_level_count_for_nothing_and_are_reported() {
    // The common mistake: allowPrivilegeEscalation and capabilities on the pod. Kubernetes drops
    // them; the admission controller reads the containers, so restricted still rejects the pod.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n  containers: [{name: c, image: registry.k8s.io/pause:3.10}]\n";
    let f = run(pod, "latest");
    assert_eq!(pss(&f), set(&["allowPrivilegeEscalation", "capabilities_restricted"]), "{f:#?}");
    assert_eq!(f.iter().filter(|x| x.rule == "SB035").count(), 2, "{f:#?}");
}

#[test]
fn an_explicit_null_is_an_unset_field() {
    for (from, to) in [
        (", seccompProfile: {type: RuntimeDefault}", ", seccompProfile: {type: RuntimeDefault}, appArmorProfile: null"),
        (
            "capabilities: {drop: [ALL]}}\n  containers",
            "capabilities: {drop: [ALL]}, procMount: null, seccompProfile: null}\n  containers",
        ),
    ] {
        let pod = tweak(from, to);
        assert!(checks(&pod, "latest").is_empty(), "{to}: {:#?}", run(&pod, "latest"));
    }
    let port = tweak(C_SC, &format!("{C_SC}\n      ports: [{{containerPort: 80, hostPort: null}}]"));
    assert!(checks(&port, "latest").is_empty());
    // A null runAsNonRoot on a container leaves the pod's true in force.
    assert!(checks(&container_sc("runAsNonRoot: null"), "latest").is_empty());
}
