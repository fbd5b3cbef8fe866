//! `semble-shim doctor` on this machine: every check passes with the tools installed (and a real
//! container starts under runc, runsc and the embedded runtime), and each failure an operator
//! meets is reported with a fix and a non-zero exit: runsc missing behind a gVisor handler, a
//! broken policy, containerd without a semble handler, a handler whose binary is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use semble_tests::{bin, require_root, require_tool, runsc, workspace};

/// A node layout in `dir`: handler links to the built semble-shim, and containerd's config with
/// deploy/containerd/semble.toml's tables in it (as install.sh writes them), only the paths
/// substituted.
fn node(dir: &Path) -> PathBuf {
    let bindir = dir.join("bin");
    std::fs::create_dir_all(&bindir).unwrap();
    for b in ["runc", "runsc", "embedded"] {
        std::os::unix::fs::symlink(bin("semble-shim"), bindir.join(format!("semble-shim-{b}"))).unwrap();
    }
    let dropin = std::fs::read_to_string(workspace().join("deploy/containerd/semble.toml"))
        .unwrap()
        .replace("/usr/local/bin/", &format!("{}/", bindir.display()));
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, dropin).unwrap();
    cfg
}

fn doctor(args: &[&str], runsc_path: &Path, cfg: &Path, policies: &Path) -> (Output, String) {
    let out = Command::new(bin("semble-shim"))
        .arg("--runsc")
        .arg(runsc_path)
        .args(["--runsc-platform", "ptrace", "--policy-dir"])
        .arg(policies)
        .arg("doctor")
        .arg("--containerd-config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

#[test]
fn doctor_passes_on_this_machine_and_starts_a_container_under_each_backend() {
    require_root();
    require_tool("runc", "runc");
    let busybox = require_tool("busybox", "busybox-static");
    let dir = tempfile::tempdir().unwrap();
    let cfg = node(dir.path());
    let (out, text) =
        doctor(&["--run", "--busybox", busybox.to_str().unwrap()], &runsc(), &cfg, &workspace().join("examples"));
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains('✗'), "{text}");
    for b in ["runc", "runsc", "embedded"] {
        assert!(text.contains(&format!("✓ run under {b}: a container ran and exited 0")), "{b}:\n{text}");
    }
    for h in ["semble-runc", "semble-gvisor", "semble-embedded"] {
        assert!(text.contains(&format!("✓ containerd handler {h}:")), "{h}:\n{text}");
    }
    assert!(text.contains("✓ policies: 3 valid"), "{text}");
    assert!(text.contains("✓ landlock: ABI"), "{text}");
    let (out, json) = doctor(&["--format", "json"], &runsc(), &cfg, &workspace().join("examples"));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["checks"].as_array().unwrap().iter().all(|c| c["status"] != "fail"));
}

#[test]
fn doctor_fails_with_a_fix_for_each_broken_thing() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let cfg = node(dir.path());
    let examples = workspace().join("examples");

    // runsc missing: the gVisor handler would fail.
    let (out, text) = doctor(&[], Path::new("/nonexistent/runsc"), &cfg, &examples);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ containerd handler semble-gvisor:") && text.contains("selects the runsc backend"),
        "{text}"
    );
    assert!(text.contains("fix: install runsc on this node"), "{text}");

    // A broken policy: named, with its first error and the command to see them all.
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::copy(examples.join("workspace.yaml"), policies.join("workspace.yaml")).unwrap();
    std::fs::write(policies.join("broken.yaml"), "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: broken}\nspec:\n  network: {mode: proxy}\n  sekcomp: {}\n").unwrap();
    let (out, text) = doctor(&[], &runsc(), &cfg, &policies);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ policy ") && text.contains("broken.yaml") && text.contains("semble-policy validate"),
        "{text}"
    );
    assert!(text.contains("✓ policies: 1 valid"), "{text}");

    // containerd configured, but no semble handler.
    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "version = 2\n").unwrap();
    let (out, text) = doctor(&[], &runsc(), &bare, &examples);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("✗ containerd: no runtime handler") && text.contains("deploy/node/install.sh"), "{text}");

    // The handlers as an imported drop-in: containerd 1.6 (this machine's) would drop the main
    // file's CRI section for it.
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::copy(&cfg, conf_d.join("semble.toml")).unwrap();
    let importing = dir.path().join("importing.toml");
    std::fs::write(
        &importing,
        format!(
            "version = 2\nimports = [\"{}/*.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n",
            conf_d.display()
        ),
    )
    .unwrap();
    let (_, text) = doctor(&[], &runsc(), &importing, &examples);
    assert!(text.contains("! containerd ") && text.contains("replaces the whole CRI section"), "{text}");
    assert!(text.contains("move its tables into config.toml"), "{text}");

    // A handler whose binary is gone.
    std::fs::remove_file(dir.path().join("bin/semble-shim-embedded")).unwrap();
    let (out, text) = doctor(&[], &runsc(), &cfg, &examples);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ containerd handler semble-embedded: BinaryName") && text.contains("does not exist"),
        "{text}"
    );
}
