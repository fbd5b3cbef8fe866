//! `semble-policy lint` as a command: output formats, exit codes, configuration, the generated
//! rules document, directories.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::PathBuf;
use std::process::{Command, Output};

use semble_lint::RULES;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_semble-policy")).args(args).current_dir(root()).output().unwrap()
}

#[test]
fn semble_own_files_have_no_error_findings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for p in ["workspace", "llm-server", "data-processor"] {
        let out = run(&["compile", &format!("examples/{p}.yaml"), "--target", "kubernetes", "--out", d]);
        assert!(out.status.success());
    }
    let out = run(&["lint", "examples", "deploy", d]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn formats_and_exit_codes() {
    let f = "lint/tests/fixtures/compose-ai-stack.yaml";
    let out = run(&["lint", f]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{f}:18:19: error SB030 service `cadvisor` uses the host's network\n    fix: ")),
        "{text}"
    );
    let out = run(&["lint", "--format", "sarif", f]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run0 = &v["runs"][0];
    assert_eq!(run0["tool"]["driver"]["rules"].as_array().unwrap().len(), RULES.len());
    let r = &run0["results"][0];
    assert!(r["ruleId"].is_string() && r["locations"][0]["physicalLocation"]["region"]["startLine"].is_u64());
    let idx = usize::try_from(r["ruleIndex"].as_u64().unwrap()).unwrap();
    assert_eq!(run0["tool"]["driver"]["rules"][idx]["id"], r["ruleId"]);
    let out = run(&["lint", "--format", "junit", f]);
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("<testsuite name=\"semble-policy lint\" tests=\"1\" failures=\"1\">"));
    let out = run(&["lint", "--format", "json", "examples"]);
    assert_eq!(out.status.code(), Some(0));
    // Warnings fail only with --fail-on warning.
    let out = run(&["lint", "--fail-on", "warning", "cli/tests/golden/workspace.k8s.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    // Unreadable input: exit 2, the file named, one line.
    let out = run(&["lint", "does/not/exist.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does/not/exist.yaml") && err.lines().count() == 1, "{err}");
    // --exclude
    let out = run(&[
        "lint",
        "--exclude",
        "*compose-ai-stack.yaml",
        "--exclude",
        "*seccomp.json",
        "--exclude",
        "*sidecar.yaml",
        "lint/tests/fixtures",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn the_rules_document_is_generated_from_the_catalogue() {
    let out = run(&["lint", "--list-rules", "--format", "markdown"]);
    let doc = std::fs::read_to_string(root().join("docs/lint-rules.md")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        doc,
        "regenerate: semble-policy lint --list-rules --format markdown > docs/lint-rules.md"
    );
}

#[test]
fn quadlet_units_are_found_in_directories() {
    let unit = "[Container]\nImage=docker.io/grafana/grafana:latest\nNetwork=host\n";
    // Found in a directory, next to a file lint must not read.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("grafana.container"), unit).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "Network=host\n").unwrap();
    let out = run(&["lint", "--format", "json", dir.path().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"], 1, "{v}");
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "SB030" && f["file"].as_str().unwrap().ends_with("grafana.container")));
}

#[test]
fn a_configuration_file_turns_rules_off_relevels_them_and_excludes_paths() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join(".semble-lint.yaml");
    std::fs::write(
        &cfg,
        "rules:\n  SB030: off\n  SB001: warning\n  SB013: warning\nexclude: ['*seccomp.json', '*sidecar.yaml']\n",
    )
    .unwrap();
    let out = run(&["lint", "--config", cfg.to_str().unwrap(), "lint/tests/fixtures"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("SB030") && !text.contains("SB041") && !text.contains("SB022"), "{text}");
    assert!(text.contains("warning SB001") && text.contains("warning SB013"), "{text}");
    assert_eq!(out.status.code(), Some(0), "no error left:\n{text}");
    std::fs::write(&cfg, "rules:\n  SB999: off\n").unwrap();
    let out = run(&["lint", "--config", cfg.to_str().unwrap(), "examples"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".semble-lint.yaml:2:3: unknown rule `SB999`"), "{err}");
}

#[test]
fn the_text_summary_is_a_line_of_its_own_after_the_last_finding() {
    // Both streams into one file, as a terminal or `2>&1` shows them.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.txt");
    let file = std::fs::File::create(&log).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_semble-policy"))
        .args(["lint", "lint/tests/fixtures/eks-workspace-sidecar.yaml"])
        .current_dir(root())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.last().unwrap();
    assert!(last.starts_with("1 file(s): ") && last.ends_with(" warning(s)"), "{text}");
    assert_eq!(lines[lines.len() - 2], "", "a blank line before the summary: {text}");
    assert!(lines[lines.len() - 3].starts_with("    fix: "), "{text}");
    assert!(text.ends_with("warning(s)\n"), "{text:?}");
    // Read apart, as CI logs that print stdout and then stderr do: the summary still starts its
    // own line (the last finding's line is not continued by it).
    let out = run(&["lint", "lint/tests/fixtures/eks-workspace-sidecar.yaml"]);
    let glued = format!("{}{}", String::from_utf8_lossy(&out.stdout).trim_end(), String::from_utf8_lossy(&out.stderr));
    let summary = glued.lines().find(|l| l.contains("file(s): ")).unwrap();
    assert!(summary.starts_with("1 file(s): "), "{glued}");
}

#[test]
fn pss_version_picks_the_policy_and_a_bad_one_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {sysctls: [{name: net.ipv4.tcp_rmem, value: '4096 87380 6291456'}]}\n  containers: [{name: c, image: registry.k8s.io/pause:3.10}]\n",
    )
    .unwrap();
    let p = pod.to_str().unwrap();
    let json = |args: &[&str]| -> serde_json::Value { serde_json::from_slice(&run(args).stdout).unwrap() };
    let has_sysctl = |v: &serde_json::Value| v["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "SB017");
    assert!(!has_sysctl(&json(&["lint", "--format", "json", p])), "latest: tcp_rmem is safe");
    let old = json(&["lint", "--format", "json", "--pss-version", "v1.31", p]);
    assert!(has_sysctl(&old), "{old}");
    let f = old["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "SB017").unwrap().clone();
    assert_eq!(f["pod_security"], serde_json::json!({"check": "sysctls", "level": "baseline", "version": "v1.31"}));
    let out = run(&["lint", "--pss-version", "1.x", p]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--pss-version") && err.contains("`1.x`") && err.lines().count() == 1, "{err}");
}
