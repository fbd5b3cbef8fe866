//! The `semble-policy` binary: exit codes, one-line errors, atomic output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_semble-policy"));
    c.current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    // Errors must stay one line even when backtraces are on.
    c.env("RUST_BACKTRACE", "1");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn validate_examples_succeeds() {
    let out = run(&["validate", "examples/workspace.yaml", "examples/llm-server.yaml", "examples/data-processor.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().filter(|l| l.ends_with("`") && l.contains(": ok: policy")).count(), 3);
}

#[test]
fn invalid_policy_exits_1_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(&f, "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: bad}\nspec:\n  process:\n    readOnlyRootFilesytem: true\n").unwrap();
    let out = run(&["validate", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("{}:6:5: error: unknown field `readOnlyRootFilesytem`", f.display())), "{stdout}");
}

#[test]
fn validate_json_format() {
    let out = run(&["validate", "--format", "json", "examples/workspace.yaml"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["valid"], true);
    assert_eq!(v[0]["policy"], "workspace");
}

#[test]
fn unreadable_input_is_one_line_and_exit_2() {
    let out = run(&["compile", "does/not/exist.yaml", "--target", "oci"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("semble-policy: error: cannot read `does/not/exist.yaml`"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["compile", "examples/workspace.yaml", "--target", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["compile", "examples/workspace.yaml", "--target", "all"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("add `--out DIR`"));
}

#[test]
fn compile_all_writes_every_artifact_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["compile", "examples/workspace.yaml", "--target", "all", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "semble_workspace.fc",
            "semble_workspace.if",
            "semble_workspace.te",
            "workspace.cil",
            "workspace.k8s.yaml",
            "workspace.landlock.json",
            "workspace.oci.json",
            "workspace.proxy-rules.json",
            "workspace.seccomp.bpf",
            "workspace.seccomp.json"
        ]
    );
}

#[test]
fn kubernetes_warnings_go_to_stderr_and_objects_to_stdout() {
    let out =
        run(&["compile", "examples/workspace.yaml", "--target", "kubernetes", "--image", "ghcr.io/acme/agent:1.4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "semble-policy: warning: examples/workspace.yaml: policy `workspace` cannot meet Pod Security `restricted`"
        ),
        "{err}"
    );
    let yaml = text(&out.stdout);
    assert!(yaml.starts_with("---\n") && yaml.contains("image: \"ghcr.io/acme/agent:1.4\""), "{yaml}");
    let out = run(&["compile", "examples/workspace.yaml", "--target", "kubernetes", "--proxy-cluster-ip", "not-an-ip"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn invalid_policy_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(&f, "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: bad}\nspec:\n  seccomp: {deny: [nosuch]}\n").unwrap();
    let outdir = dir.path().join("out");
    let out = run(&["compile", f.to_str().unwrap(), "--target", "all", "--out", outdir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!outdir.exists());
}

#[test]
fn stdin_is_accepted() {
    let mut child = bin()
        .args(["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let src = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/llm-server.yaml")).unwrap();
    child.stdin.take().unwrap().write_all(&src).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
}

#[test]
fn help_shows_examples() {
    let out = run(&["--help"]);
    assert!(text(&out.stdout).contains("semble-policy compile examples/workspace.yaml --target all --out out/"));
}

#[test]
fn explain_k8s_answers_from_compiled_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["compile", "examples/workspace.yaml", "--target", "kubernetes", "--out", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::create_dir(dir.path().join("apps")).unwrap();
    std::fs::write(
        dir.path().join("apps/backend.yml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: backend}\nspec: {containers: [{name: c, image: x}]}\n",
    )
    .unwrap();
    let out = run(&["explain", "--k8s", d, "--from", "backend/api", "--to", "workspace", "--port", "8081"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).starts_with("backend/api -> sandboxes/workspace 8081/TCP: ALLOWED\n"));
    let out = run(&["explain", "--k8s", d, "--from", "workspace", "--to", "metadata", "--port", "80"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("egress: denied — sandboxes/workspace is isolated for egress"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["explain", "--k8s", d, "--format", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["rows"].as_array().unwrap().iter().any(|r| r["from"] == "sandboxes/workspace"
        && r["to"] == "semble-proxy/semble-proxy-workspace"
        && r["ports"] == "8080/TCP"));
    let out = run(&["explain", "--k8s", d, "--format", "dot"]);
    assert!(text(&out.stdout).starts_with("digraph connectivity {"));
    // Bad input: one line naming what and how to fix.
    let out = run(&["explain", "--k8s", d, "--from", "nope", "--to", "workspace"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--from: no workload `nope`"), "{err}");
    let out = run(&["explain", "--k8s", d, "--from", "backend/api", "--to", "workspace", "--port", "http"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a port"));
}
