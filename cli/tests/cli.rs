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

/// Two directories: a default-deny shop, and the same with one NetworkPolicy that lets the API
/// reach the database (the one connection the change opens).
fn shop(dir: &std::path::Path, open_db: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let deploy = |name: &str, port: u16| {
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: c, image: x:1, ports: [{{containerPort: {port}}}]}}]}}\n")
    };
    std::fs::write(dir.join("apps.yaml"), format!("{}---\n{}", deploy("api", 8081), deploy("db", 5432))).unwrap();
    let mut np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n".to_string();
    if open_db {
        np.push_str("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db-from-api, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: db}}\n  policyTypes: [Ingress]\n  ingress:\n    - from: [{podSelector: {matchLabels: {app: api}}}]\n      ports: [{port: 5432}]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: api-to-db, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: api}}\n  policyTypes: [Egress]\n  egress:\n    - to: [{podSelector: {matchLabels: {app: db}}}]\n      ports: [{port: 5432}]\n");
    }
    std::fs::write(dir.join("netpol.yaml"), np).unwrap();
}

#[test]
fn explain_k8s_lists_connections_in_np_guard_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    shop(dir.path(), true);
    let out = run(&["explain", "--k8s", d, "--format", "connlist"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "shop/api[Deployment] => shop/db[Deployment] : TCP 5432\n");
    let out = run(&["explain", "--k8s", d, "--format", "connlist-json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"src": "shop/api[Deployment]", "dst": "shop/db[Deployment]", "conn": "TCP 5432"}])
    );
    // No implicit kube-dns, no aggregated rows: only the workloads of the input.
    assert!(!text(&out.stdout).contains("kube-dns") && !text(&out.stdout).contains("pods without"));
}

#[test]
fn explain_k8s_diff_reports_what_a_change_opens_as_text_json_and_sarif() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("main"), dir.path().join("pr"));
    shop(&old, false);
    shop(&new, true);
    let (o, n) = (old.to_str().unwrap(), new.to_str().unwrap());
    let out = run(&["explain", "--k8s", "--diff", o, n]);
    assert_eq!(out.status.code(), Some(1), "a change that opens a connection exits 1: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Connectivity diff:\ndiff-type: added, source: shop/api[Deployment], destination: shop/db[Deployment], dir1:  No Connections, dir2: TCP 5432\n"
    );
    let out = run(&["explain", "--k8s", "--diff", o, n, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["added"].as_u64(), v["opened"].as_u64(), v["removed"].as_u64()), (Some(1), Some(1), Some(0)), "{v}");
    assert_eq!(v["diff"][0]["opened"], "TCP 5432");
    let out = run(&["explain", "--k8s", "--diff", o, n, "--format", "sarif"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{v}");
    let r = &results[0];
    assert_eq!(r["ruleId"], "SD001");
    assert!(r["message"]["text"].as_str().unwrap().starts_with("shop/api[Deployment] => shop/db[Deployment] now allows TCP 5432 (added by shop/api-to-db egress[0], shop/db-from-api ingress[0])"), "{r}");
    // Located at the egress rule that opens it: netpol.yaml, the `- to:` line of api-to-db.
    let loc = &r["locations"][0]["physicalLocation"];
    assert!(loc["artifactLocation"]["uri"].as_str().unwrap().ends_with("pr/netpol.yaml"), "{loc}");
    let np = std::fs::read_to_string(new.join("netpol.yaml")).unwrap();
    let rule_line =
        np.lines().enumerate().filter(|(_, l)| l.contains("- to: [{podSelector")).map(|(i, _)| i + 1).next().unwrap();
    assert_eq!(loc["region"]["startLine"], rule_line, "{loc}");
    assert_eq!(r["relatedLocations"].as_array().unwrap().len(), 1);
    // The reverse change closes it: exit 0, a `removed` line, no SARIF result.
    let out = run(&["explain", "--k8s", "--diff", n, o, "--format", "sarif"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["runs"][0]["results"].as_array().unwrap().is_empty());
    // Usage errors: one line, exit 2.
    for args in [
        vec!["explain", "--k8s", "--diff", o, n, "--format", "dot"],
        vec!["explain", "--k8s", o, "--format", "sarif"],
        vec!["explain", "--k8s", "--diff", o, "does/not/exist"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr).lines().count(), 1, "{args:?}: {}", text(&out.stderr));
    }
}
