//! `deploy/`: the node installer script run against a scratch host root (twice: the second run
//! must change nothing), and every Kubernetes object there — the base and each overlay as
//! `kubectl kustomize` builds it — validated with `kubernetes-validate --strict`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;

use semble_tests::{bin, workspace};

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// The image's /opt/semble, assembled from the build (as Containerfile.node does).
fn image_tree(dir: &Path) -> PathBuf {
    let src = dir.join("opt-semble");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::create_dir_all(src.join("policies")).unwrap();
    std::fs::create_dir_all(src.join("containerd")).unwrap();
    for b in ["semble-shim", "semble-init", "semble-policy"] {
        std::fs::copy(bin(b), src.join("bin").join(b)).unwrap();
    }
    for p in ["workspace", "llm-server", "data-processor"] {
        std::fs::copy(workspace().join(format!("examples/{p}.yaml")), src.join(format!("policies/{p}.yaml"))).unwrap();
    }
    std::fs::copy(workspace().join("deploy/containerd/semble.toml"), src.join("containerd/semble.toml")).unwrap();
    src
}

#[test]
fn the_node_installer_installs_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = image_tree(dir.path());
    let host = dir.path().join("host");
    // A node whose containerd config exists and has no imports line.
    std::fs::create_dir_all(host.join("etc/containerd")).unwrap();
    std::fs::write(
        host.join("etc/containerd/config.toml"),
        "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n",
    )
    .unwrap();
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
    let imports = cfg.find("imports = [\"/etc/containerd/conf.d/*.toml\"]").expect("imports line added");
    assert!(imports < cfg.find("[plugins").unwrap(), "imports must come before the first table:\n{cfg}");
    assert!(cfg.contains("sandbox_image = \"pause:3.9\""), "the rest of the config is kept");
    assert_eq!(
        std::fs::read(host.join("etc/containerd/conf.d/semble.toml")).unwrap(),
        std::fs::read(workspace().join("deploy/containerd/semble.toml")).unwrap()
    );
    let second = run();
    assert!(second.contains("ready (changed: 0)"), "a second run must change nothing:\n{second}");
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
