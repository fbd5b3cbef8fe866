//! `deploy/`: the node installer script run against a scratch host root (twice: the second run
//! must change nothing), and every Kubernetes object there — the base and each overlay as
//! `kubectl kustomize` builds it — validated with `kubernetes-validate --strict`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;

use semble_tests::{node_image_tree, workspace};

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn the_node_installer_installs_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = node_image_tree(dir.path());
    let host = dir.path().join("host");
    // A node whose containerd 1.x config has CRI settings of its own, and the drop-in an earlier
    // semble-node wrote (which, imported, reset those settings).
    std::fs::create_dir_all(host.join("etc/containerd/conf.d")).unwrap();
    std::fs::write(
        host.join("etc/containerd/config.toml"),
        "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n  restrict_oom_score_adj = true\n",
    )
    .unwrap();
    std::fs::write(host.join("etc/containerd/conf.d/semble.toml"), "version = 2\n").unwrap();
    let run = || {
        sh(Command::new(workspace().join("deploy/node/install.sh"))
            .env("HOST", &host)
            .env("SRC", &src)
            .env("SEMBLE_NO_RESTART", "1"))
    };
    let first = run();
    assert!(first.contains("ready (changed: 1)"), "{first}");
    for b in ["semble-shim", "semble-init"] {
        assert!(host.join("usr/local/bin").join(b).is_file(), "{b}");
    }
    for backend in ["runc", "runsc", "embedded"] {
        let link = std::fs::read_link(host.join(format!("usr/local/bin/semble-shim-{backend}"))).unwrap();
        assert_eq!(link, Path::new("semble-shim"));
    }
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(host.join("var/lib/kubelet/seccomp/semble/workspace.json")).unwrap())
            .unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(host.join("etc/semble/policies/llm-server.yaml").is_file());
    let cfg = std::fs::read_to_string(host.join("etc/containerd/config.toml")).unwrap();
    assert!(cfg.contains("# BEGIN semble runtime handlers"), "{cfg}");
    assert!(!host.join("etc/containerd/conf.d/semble.toml").exists(), "the old drop-in is removed");
    // What containerd itself makes of it: the handlers, and the node's own CRI settings kept.
    let dump = containerd_dump(&host.join("etc/containerd/config.toml"));
    assert!(dump.contains("sandbox_image = \"pause:3.9\""), "{dump}");
    assert!(dump.contains("restrict_oom_score_adj = true"), "{dump}");
    for (handler, link) in [("semble-runc", "runc"), ("semble-gvisor", "runsc"), ("semble-embedded", "embedded")] {
        assert!(dump.contains(&format!("runtimes.{handler}.options]")), "{handler}: {dump}");
        assert!(dump.contains(&format!("BinaryName = \"/usr/local/bin/semble-shim-{link}\"")), "{link}: {dump}");
    }
    let second = run();
    assert!(second.contains("ready (changed: 0)"), "a second run must change nothing:\n{second}");
    // The DaemonSet's readiness check runs `semble-shim doctor` as installed, chrooted into the
    // host root the installer writes to.
    let ds = std::fs::read_to_string(workspace().join("deploy/kubernetes/base/daemonset.yaml")).unwrap();
    let ds = semble_policy::yaml::parse(&ds).unwrap().to_json();
    let c = &ds["spec"]["template"]["spec"]["containers"][0];
    let probe: Vec<&str> =
        c["readinessProbe"]["exec"]["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let host_env =
        c["env"].as_array().unwrap().iter().find(|e| e["name"] == "HOST").unwrap()["value"].as_str().unwrap();
    assert_eq!(probe[..2], ["chroot", host_env], "{probe:?}");
    assert_eq!(probe[3..], ["doctor"], "{probe:?}");
    assert!(
        host.join(probe[2].trim_start_matches('/')).is_file(),
        "the probe runs {} , which install.sh does not install",
        probe[2]
    );
    // A broken policy is refused with the file named, before anything of it is installed.
    std::fs::write(
        src.join("policies/broken.yaml"),
        "kind: SandboxPolicy\nmetadata: {name: broken}\nspec: {sekcomp: {}}\n",
    )
    .unwrap();
    let out = Command::new(workspace().join("deploy/node/install.sh"))
        .env("HOST", &host)
        .env("SRC", &src)
        .env("SEMBLE_NO_RESTART", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("policy")
            && String::from_utf8_lossy(&out.stderr).contains("broken.yaml")
    );
    assert!(!host.join("var/lib/kubelet/seccomp/semble/broken.json").exists());
}

/// `containerd --config FILE config dump`: the configuration containerd would run with.
fn containerd_dump(config: &Path) -> String {
    let containerd = semble_tests::require_tool("containerd", "containerd");
    sh(Command::new(containerd).arg("--config").arg(config).args(["config", "dump"]))
}

#[test]
fn a_drop_in_import_would_reset_the_nodes_cri_settings_on_containerd_1x() {
    // Why install.sh does not use `imports` on containerd 1.x: checked against the real binary.
    let dir = tempfile::tempdir().unwrap();
    let dropin = dir.path().join("semble.toml");
    std::fs::copy(workspace().join("deploy/containerd/semble.toml"), &dropin).unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 2\nimports = [\"{}\"]\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n",
            dropin.display()
        ),
    )
    .unwrap();
    let dump = containerd_dump(&cfg);
    assert!(dump.contains("runtimes.semble-runc]"), "{dump}");
    assert!(
        !dump.contains("pause:3.9"),
        "containerd now merges imports key by key; install.sh can use a drop-in:\n{dump}"
    );
}

#[test]
fn the_node_installer_handles_each_containerd_config_version() {
    let dir = tempfile::tempdir().unwrap();
    let src = node_image_tree(dir.path());
    let install = |host: &Path| {
        Command::new(workspace().join("deploy/node/install.sh"))
            .env("HOST", host)
            .env("SRC", &src)
            .env("SEMBLE_NO_RESTART", "1")
            .output()
            .unwrap()
    };
    // containerd 2.x: a drop-in and the imports line.
    let v3 = dir.path().join("v3");
    std::fs::create_dir_all(v3.join("etc/containerd")).unwrap();
    std::fs::write(v3.join("etc/containerd/config.toml"), "version = 3\n[plugins.\"io.containerd.cri.v1.images\"]\n")
        .unwrap();
    assert!(install(&v3).status.success());
    let cfg = std::fs::read_to_string(v3.join("etc/containerd/config.toml")).unwrap();
    let imports = cfg.find("imports = [\"/etc/containerd/conf.d/*.toml\"]").expect("imports line added");
    assert!(imports < cfg.find("[plugins").unwrap(), "imports must come before the first table:\n{cfg}");
    assert_eq!(
        std::fs::read(v3.join("etc/containerd/conf.d/semble.toml")).unwrap(),
        std::fs::read(workspace().join("deploy/containerd/semble-v3.toml")).unwrap()
    );
    // No config at all: a version 2 file with the handlers, which containerd reads.
    let none = dir.path().join("none");
    std::fs::create_dir_all(&none).unwrap();
    assert!(install(&none).status.success());
    assert!(containerd_dump(&none.join("etc/containerd/config.toml")).contains("runtimes.semble-gvisor]"));
    // A version 1 file is refused with what to do, and left as it was.
    let v1 = dir.path().join("v1");
    std::fs::create_dir_all(v1.join("etc/containerd")).unwrap();
    let old = "[plugins.cri]\n  sandbox_image = \"pause:3.9\"\n";
    std::fs::write(v1.join("etc/containerd/config.toml"), old).unwrap();
    let out = install(&v1);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("version 1") && err.contains("version = 2"), "{err}");
    assert_eq!(std::fs::read_to_string(v1.join("etc/containerd/config.toml")).unwrap(), old);
}

#[test]
fn deploy_objects_and_overlays_pass_strict_schema_validation() {
    let validate = semble_tests::require_py_tool("kubernetes-validate");
    let kubectl = semble_tests::require_tool("kubectl", "kubernetes-client");
    let root = workspace().join("deploy/kubernetes");
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = ["namespace.yaml", "networkpolicy.yaml", "daemonset.yaml", "runtimeclasses.yaml"]
        .iter()
        .map(|f| root.join("base").join(f))
        .collect();
    for overlay in ["local", "staging", "prod"] {
        let built = sh(Command::new(&kubectl).arg("kustomize").arg(root.join("overlays").join(overlay)));
        let yaml: String = built.lines().filter(|l| !l.starts_with("# Warning:")).map(|l| format!("{l}\n")).collect();
        assert!(yaml.contains("kind: DaemonSet"), "{overlay}: {yaml}");
        let f = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&f, yaml).unwrap();
        files.push(f);
    }
    for f in &files {
        for version in ["1.33.0", "1.37.0"] {
            sh(Command::new(&validate).args(["--strict", "-k", version]).arg(f));
        }
    }
    let local = std::fs::read_to_string(dir.path().join("local.yaml")).unwrap();
    assert!(local.contains("image: localhost/semble-node:dev") && local.contains("imagePullPolicy: Never"));
    let prod = std::fs::read_to_string(dir.path().join("prod.yaml")).unwrap();
    assert!(prod.contains("semble.dev/sandbox: \"true\"") && prod.contains("podFixed"));
}
