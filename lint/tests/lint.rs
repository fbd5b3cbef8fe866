//! The lint library: each rule fires on what it describes and not on the fixed version, at the
//! right line and column; suppressions; the seed-like stacks are flagged; rules across files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::PathBuf;

use semble_lint::{lint_all, lint_text, Finding, RULES};

fn ids(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|x| x.rule).collect()
}

const POD_OK: &str = "apiVersion: v1
kind: Pod
metadata: {name: ok}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: c
      image: busybox:1.36
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      resources: {limits: {cpu: '1', memory: 64Mi}}
";

/// (rule, a document that breaks it, the same document fixed)
fn cases() -> Vec<(&'static str, String, String)> {
    let pod = |edit: &str, with: &str| POD_OK.replace(edit, with);
    let np = |egress: &str| {
        format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: n}}\nspec:\n  podSelector: {{}}\n  policyTypes: [Egress]\n  egress:\n{egress}")
    };
    let compose = |svc: &str| format!("services:\n  s:\n    image: nginx:1.27\n{svc}");
    let policy = |net: &str| {
        format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: p}}\nspec:\n  network:\n{net}")
    };
    vec![
        ("SB001", pod("capabilities: {drop: [ALL]}}", "capabilities: {drop: [ALL]}, privileged: true}"), POD_OK.into()),
        ("SB002", pod("spec:\n  securityContext", "spec:\n  hostNetwork: true\n  securityContext"), POD_OK.into()),
        ("SB003", format!("{POD_OK}  volumes: [{{name: h, hostPath: {{path: /var/run}}}}]\n"), format!("{POD_OK}  volumes: [{{name: h, emptyDir: {{}}}}]\n")),
        ("SB004", pod("image: busybox:1.36", "image: busybox:1.36\n      ports: [{containerPort: 80, hostPort: 80}]"), pod("image: busybox:1.36", "image: busybox:1.36\n      ports: [{containerPort: 80}]")),
        ("SB005", pod("drop: [ALL]", "drop: [ALL], add: [SYS_ADMIN]"), pod("drop: [ALL]", "drop: [ALL], add: [NET_BIND_SERVICE]")),
        ("SB006", pod("allowPrivilegeEscalation: false, ", ""), POD_OK.into()),
        ("SB007", pod("runAsNonRoot: true, ", ""), POD_OK.into()),
        ("SB008", pod("type: RuntimeDefault", "type: Unconfined"), POD_OK.into()),
        ("SB009", pod(", seccompProfile: {type: RuntimeDefault}", ""), POD_OK.into()),
        ("SB010", pod("readOnlyRootFilesystem: true, ", ""), POD_OK.into()),
        ("SB011", pod("cpu: '1', ", ""), POD_OK.into()),
        ("SB012", pod("busybox:1.36", "busybox:latest"), pod("busybox:1.36", "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000")),
        ("SB013", pod("image: busybox:1.36", "image: busybox:1.36\n      env: [{name: GF_SECURITY_ADMIN_PASSWORD, value: admin}]"), pod("image: busybox:1.36", "image: busybox:1.36\n      env: [{name: GF_SECURITY_ADMIN_PASSWORD, valueFrom: {secretKeyRef: {name: g, key: p}}}]")),
        ("SB014", pod("metadata: {name: ok}", "metadata: {name: ok, annotations: {semble.dev/policy: workspace}}"), pod("metadata: {name: ok}", "metadata: {name: ok, annotations: {semble.dev/policy: workspace}}").replace("spec:\n  securityContext", "spec:\n  runtimeClassName: semble-gvisor\n  securityContext")),
        ("SB015", pod("drop: [ALL]", "drop: [ALL], add: [SETUID]"), pod("drop: [ALL]", "drop: [ALL], add: [CHOWN]")),
        ("SB016", pod("readOnlyRootFilesystem: true,", "readOnlyRootFilesystem: true, procMount: Unmasked,"), pod("readOnlyRootFilesystem: true,", "readOnlyRootFilesystem: true, procMount: Default,")),
        ("SB017", pod("runAsUser: 1000,", "runAsUser: 1000, sysctls: [{name: kernel.msgmax, value: '65536'}],"), pod("runAsUser: 1000,", "runAsUser: 1000, sysctls: [{name: net.ipv4.tcp_syncookies, value: '1'}],")),
        ("SB018", pod("readOnlyRootFilesystem: true,", "readOnlyRootFilesystem: true, appArmorProfile: {type: Unconfined},"), pod("readOnlyRootFilesystem: true,", "readOnlyRootFilesystem: true, appArmorProfile: {type: RuntimeDefault},")),
        ("SB019", pod("runAsUser: 1000,", "runAsUser: 1000, seLinuxOptions: {type: spc_t},"), pod("runAsUser: 1000,", "runAsUser: 1000, seLinuxOptions: {type: container_t, level: 's0:c1,c2'},")),
        ("SB023", format!("{POD_OK}  volumes: [{{name: n, nfs: {{server: nas, path: /x}}}}]\n"), format!("{POD_OK}  volumes: [{{name: n, persistentVolumeClaim: {{claimName: x}}}}]\n")),
        ("SB025", pod(", capabilities: {drop: [ALL]}", ""), POD_OK.into()),
        ("SB020", np("    - to: [{ipBlock: {cidr: 0.0.0.0/0}}]\n"), np("    - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.0.0/16, 10.0.0.0/8]}}]\n")),
        ("SB021", np("    - ports: [{port: 53, protocol: UDP}]\n"), np("    - ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]\n")),
        ("SB022", POD_OK.replace("  containers:", "  initContainers:\n    - {name: p, image: ghcr.io/semble-dev/semble-proxy:0.1.0, restartPolicy: Always}\n  containers:"), POD_OK.into()),
        ("SB030", compose("    network_mode: host\n"), compose("    networks: [default]\n")),
        ("SB031", compose("    ports: [\"8080:80\"]\n"), compose("    ports: [\"127.0.0.1:8080:80\"]\n")),
        ("SB040", "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": []}".into(), "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"execve\", \"mmap\", \"brk\", \"exit_group\", \"read\"], \"action\": \"SCMP_ACT_ALLOW\"}]}".into()),
        ("SB041", "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\", \"write\"], \"action\": \"SCMP_ACT_ALLOW\"}]}".into(), "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"execve\", \"mmap\", \"brk\", \"exit_group\", \"read\"], \"action\": \"SCMP_ACT_ALLOW\"}]}".into()),
        ("SB050", policy("    mode: proxy\n    egress: [{host: \"*\"}]\n"), policy("    mode: proxy\n    egress: [{host: api.example.com}]\n")),
        ("SB051", format!("{}  runtime: {{backend: gvisor}}\n  filesystem: {{readWrite: [/tmp], execute: [/bin], enforcement: best-effort}}\n", policy("    mode: none\n")), format!("{}  runtime: {{backend: gvisor}}\n  filesystem: {{readWrite: [/tmp], execute: [/bin], enforcement: required}}\n", policy("    mode: none\n"))),
        ("SB052", policy("    mode: proxy\n    egress: [{host: api.example.com, ports: [80], credential: k}]\n"), policy("    mode: proxy\n    egress: [{host: api.example.com, ports: [443], credential: k}]\n")),
        ("SP000", policy("    mode: proxy\n    egress: [{host: api.example.com, prots: [443]}]\n"), policy("    mode: proxy\n    egress: [{host: api.example.com, ports: [443]}]\n")),
        ("SB054", format!("{}  seccomp: {{allow: [unshare]}}\n", policy("    mode: none\n")), format!("{}  seccomp: {{allow: [ioprio_set]}}\n", policy("    mode: none\n"))),
        ("SB053", policy("    mode: proxy\n    egress: [{host: api.example.com}]\n    proxy: {placement: sidecar}\n"), policy("    mode: proxy\n    egress: [{host: api.example.com}]\n")),
        ("SB055", policy("    mode: proxy\n    egress: [{host: \"*.wild.test\"}, {host: api.wild.test, credential: k, methods: [GET]}]\n"), policy("    mode: proxy\n    egress: [{host: \"*.other.test\"}, {host: api.wild.test, credential: k, methods: [GET]}]\n")),
        ("SB056", policy("    mode: proxy\n    egress: [{host: \"*.amazonaws.com\", credential: k}]\n"), policy("    mode: proxy\n    egress: [{host: s3.us-east-1.amazonaws.com, credential: k}]\n")),
        ("SB057", format!("{}  seccomp: {{dangerouslyAllowNotifyListener: true}}\n", policy("    mode: none\n")), format!("{}  seccomp: {{explainDenials: true}}\n", policy("    mode: none\n"))),
        ("SB058", "[Container]\nImage=localhost/agent:1.0\nPodmanArgs=--runtime=semble\n".into(), "[Container]\nImage=localhost/agent:1.0\nGlobalArgs=--runtime=semble\n".into()),
        ("SB035", pod("runAsUser: 1000,", "runAsUser: 1000, allowPrivilegeEscalation: false,"), POD_OK.into()),
        ("SB026", pod("image: busybox:1.36", "image: busybox:1.36\n      livenessProbe: {httpGet: {host: 10.0.0.1, port: 8080, path: /}}"), pod("image: busybox:1.36", "image: busybox:1.36\n      livenessProbe: {httpGet: {port: 8080, path: /}}")),
        ("SB027", pod("runAsUser: 1000,", "runAsUser: 1000, windowsOptions: {hostProcess: true},"), pod("runAsUser: 1000,", "runAsUser: 1000, windowsOptions: {hostProcess: false},")),
        ("SB028", pod("runAsUser: 1000", "runAsUser: 0"), POD_OK.into()),
        ("SB029", "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps, labels: {pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/enforce-version: '1.25'}}\n".into(), "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps, labels: {pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/enforce-version: v1.25}}\n".into()),
        ("SB032", format!("{}---\n{}", POD_OK.replace("metadata: {name: ok}", "metadata: {name: ok, labels: {app: ws}}").replace("  containers:", "  initContainers:\n    - {name: credential-proxy, image: registry.example/credential-proxy:1.0, restartPolicy: Always, ports: [{containerPort: 8080}]}\n  containers:"), np("    - ports: [{port: 443}]\n    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]\n      ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]\n")), format!("{}---\n{}", POD_OK.replace("metadata: {name: ok}", "metadata: {name: ok, labels: {app: ws}}").replace("  containers:", "  initContainers:\n    - {name: credential-proxy, image: registry.example/credential-proxy:1.0, restartPolicy: Always, ports: [{containerPort: 8080}]}\n  containers:"), np("    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: semble-proxy}}}]\n      ports: [{port: 8080}]\n    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]\n      ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]\n"))),
        ("SB033", np("    - to: [{namespaceSelector: {matchLabels: {name: database}}}]\n      ports: [{port: 5432}]\n"), np("    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: database}}}]\n      ports: [{port: 5432}]\n")),
        ("SB034", np("    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: database}}}]\n      ports: [{port: 5432}]\n"), np("    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: database}}}]\n      ports: [{port: 5432}]\n    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]\n      ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]\n")),
    ]
}

#[test]
fn every_rule_fires_on_its_case_and_not_on_the_fix() {
    let cases = cases();
    for r in RULES.iter().filter(|r| r.id != "SL001" && r.id != "SB024") {
        // SB024 looks across files: namespace_rule_looks_across_files.
        // SL001 has its own test (suppressions_need_a_reason).
        assert!(cases.iter().any(|(id, _, _)| *id == r.id), "rule {} has no test case", r.id);
    }
    for (id, bad, good) in cases {
        let f = lint_text("case.yaml", &bad).unwrap();
        assert!(ids(&f).contains(&id), "{id} did not fire on:\n{bad}\nfound {:?}", ids(&f));
        let f = lint_text("case.yaml", &good).unwrap();
        assert!(!ids(&f).contains(&id), "{id} fired on the fixed document:\n{good}\n{f:#?}");
    }
}

#[test]
fn positions_are_exact_in_multi_document_yaml() {
    let text = format!("{POD_OK}---\n{}", POD_OK.replace("busybox:1.36", "busybox:latest"));
    let f = lint_text("multi.yaml", &text).unwrap();
    let latest = f.iter().find(|x| x.rule == "SB012").unwrap();
    // The second document starts after POD_OK's lines and the separator.
    let line = u32::try_from(POD_OK.lines().count()).unwrap() + 1 + 8;
    assert_eq!((latest.line, latest.column), (line, 14), "{latest:?}");
}

#[test]
fn suppressions_need_a_reason() {
    let bad = POD_OK.replace("busybox:1.36", "busybox:latest");
    let with_reason = bad.replace(
        "      image: busybox:latest",
        "      # semble-lint: ignore=SB012 reason=\"pinned by the mirror\"\n      image: busybox:latest",
    );
    assert!(!ids(&lint_text("s.yaml", &with_reason).unwrap()).contains(&"SB012"));
    let no_reason =
        bad.replace("      image: busybox:latest", "      image: busybox:latest  # semble-lint: ignore=SB012");
    let f = lint_text("s.yaml", &no_reason).unwrap();
    assert_eq!(ids(&f), ["SL001"], "{f:#?}");
    let ann =
        bad.replace("metadata: {name: ok}", "metadata: {name: ok, annotations: {ignore-check.semble.dev/SB012: \"\"}}");
    assert_eq!(ids(&lint_text("s.yaml", &ann).unwrap()), ["SL001"]);
}

#[test]
fn seed_like_stacks_are_flagged() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let compose = lint_text("compose-ai-stack.yaml", &read("compose-ai-stack.yaml")).unwrap();
    let got: Vec<(&str, u32)> = compose.iter().map(|f| (f.rule, f.line)).collect();
    for want in [("SB012", 4), ("SB031", 5), ("SB031", 12), ("SB013", 14), ("SB012", 16), ("SB001", 17), ("SB030", 18)]
    {
        assert!(got.contains(&want), "{want:?} missing from {got:?}");
    }
    assert!(!got.iter().any(|(r, l)| *r == "SB031" && *l == 9), "127.0.0.1 is not every address");
    let seccomp = lint_text("podman-pod-seccomp.json", &read("podman-pod-seccomp.json")).unwrap();
    assert_eq!(ids(&seccomp), ["SB041"]);
    assert!(seccomp[0].message.starts_with("6 syscalls allowed"), "{}", seccomp[0].message);
    let eks = lint_text("eks-workspace-sidecar.yaml", &read("eks-workspace-sidecar.yaml")).unwrap();
    let e = ids(&eks);
    assert!(e.contains(&"SB022") && e.contains(&"SB020") && e.contains(&"SB021"), "{e:?}");
}

#[test]
fn namespace_rule_looks_across_files() {
    let deploy = POD_OK.replace("metadata: {name: ok}", "metadata: {name: ok, namespace: apps}");
    let np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: d, namespace: apps}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n";
    let alone = lint_all(&[("a.yaml".into(), deploy.clone())]).unwrap();
    let f = alone.iter().find(|f| f.rule == "SB024").expect("SB024");
    assert_eq!((f.file.as_str(), f.line), ("a.yaml", 2));
    let with = lint_all(&[("a.yaml".into(), deploy), ("np.yaml".into(), np.into())]).unwrap();
    assert!(!ids(&with).contains(&"SB024"));
}

#[test]
fn quadlet_units_are_linted_with_positions() {
    let unit = "[Unit]\nDescription=grafana\n\n[Container]\nImage=docker.io/grafana/grafana:latest\nNetwork=host\nPublishPort=3000:3000\nPublishPort=127.0.0.1:9090:9090\nEnvironment=GF_SECURITY_ADMIN_PASSWORD=admin TZ=UTC\nAddCapability=SYS_ADMIN CHOWN\nSeccompProfile=unconfined\nPodmanArgs=--privileged\n\n[Install]\nWantedBy=default.target\n";
    let f = lint_text("grafana.container", unit).unwrap();
    let got: Vec<(&str, u32, u32)> = f.iter().map(|x| (x.rule, x.line, x.column)).collect();
    assert_eq!(
        got,
        [
            ("SB012", 5, 7),
            ("SB030", 6, 9),
            ("SB031", 7, 13),
            ("SB013", 9, 13),
            ("SB005", 10, 15),
            ("SB008", 11, 16),
            ("SB001", 12, 12)
        ],
        "{f:#?}"
    );
    let fixed = "[Container]\nImage=docker.io/grafana/grafana:11.1.0\nPublishPort=127.0.0.1:3000:3000\n";
    assert!(lint_text("grafana.container", fixed).unwrap().is_empty());
}

#[test]
fn quadlet_runtime_in_podman_args_is_refused_by_podman_run_and_flagged() {
    for args in ["PodmanArgs=--runtime semble", "PodmanArgs=--log-level=info --runtime=/usr/local/bin/semble-shim"] {
        let unit = format!("[Container]\nImage=localhost/agent:1.0\n{args}\n");
        let f = lint_text("agent.container", &unit).unwrap();
        assert_eq!(f.iter().map(|x| (x.rule, x.line)).collect::<Vec<_>>(), [("SB058", 3)], "{f:#?}");
        assert!(f[0].fix.contains("GlobalArgs=--runtime=semble") && f[0].fix.contains("containers.conf"), "{f:#?}");
    }
    // GlobalArgs is where it belongs; --runtime-flag in PodmanArgs is another flag.
    let ok = "[Container]\nImage=localhost/agent:1.0\nGlobalArgs=--runtime=semble\nPodmanArgs=--log-level=info\n";
    assert!(lint_text("agent.container", ok).unwrap().is_empty());
}
