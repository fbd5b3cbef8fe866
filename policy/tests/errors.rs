//! Every class of policy error names the line, the column, the field and a fix — and all errors
//! of a document are reported together.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use semble_policy::{parse, Severity};

const HEAD: &str = "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata:\n  name: t\nspec:\n";

/// The rendered error lines of `spec` (which starts at line 6).
fn errors(spec: &str) -> Vec<String> {
    let src = format!("{HEAD}{spec}");
    match parse(&src) {
        Ok(p) => panic!("expected errors, got a policy: {:?}", p.policy.name),
        Err(e) => e.errors().map(|d| d.render(Some("p.yaml"))).collect(),
    }
}

fn warnings(spec: &str) -> Vec<String> {
    let src = format!("{HEAD}{spec}");
    let p = parse(&src).unwrap_or_else(|e| panic!("{e}"));
    p.warnings.iter().filter(|d| d.severity == Severity::Warning).map(|d| d.render(Some("p.yaml"))).collect()
}

#[test]
fn misspelled_field_names_line_column_and_suggestion() {
    let e = errors("  process:\n    readOnlyRootFilesytem: true\n");
    assert_eq!(
        e,
        vec!["p.yaml:7:5: error: unknown field `readOnlyRootFilesytem` in `spec.process`; did you mean `readOnlyRootFilesystem`?"]
    );
}

#[test]
fn several_errors_are_reported_at_once_in_source_order() {
    let e = errors(
        "  process:\n    user: \"1000\"\n  capabilities:\n    add: [CHWON]\n  seccomp:\n    allow: [ptrace]\n    deny: [ptrace]\n  filesystem:\n    readOnly: [usr]\n    execute: [/bin]\n  network:\n    mode: nonee\n",
    );
    assert_eq!(e.len(), 5, "{e:#?}");
    assert_eq!(
        e[0],
        "p.yaml:7:11: error: expected an integer at `spec.process.user`, found a string; remove the quotes: `1000`"
    );
    assert_eq!(e[1], "p.yaml:9:11: error: unknown capability `CHWON`; did you mean `CHOWN`?");
    assert_eq!(e[2], "p.yaml:12:12: error: syscall `ptrace` is both allowed (line 11) and denied; remove it from `allow` or from `deny`");
    assert_eq!(e[3], "p.yaml:14:16: error: `usr` is not a usable path; use an absolute path, e.g. `/usr`");
    assert_eq!(e[4], "p.yaml:17:11: error: unknown value `nonee` for `spec.network.mode`; did you mean `none`?");
}

#[test]
fn unknown_syscall_with_suggestion() {
    let e = errors("  seccomp:\n    deny: [ptrce]\n");
    assert_eq!(e, vec!["p.yaml:7:12: error: unknown syscall `ptrce`; did you mean `ptrace`?"]);
}

#[test]
fn lower_case_capability_says_how_to_write_it() {
    let e = errors("  capabilities:\n    add: [chown]\n");
    assert_eq!(e, vec!["p.yaml:7:11: error: unknown capability `chown`; write it in upper case: `CHOWN`"]);
}

#[test]
fn cap_prefix_is_accepted() {
    let src = format!("{HEAD}  capabilities:\n    drop: [ALL]\n    add: [CAP_CHOWN, NET_BIND_SERVICE]\n");
    let p = parse(&src).unwrap().policy;
    assert_eq!(p.capabilities.granted().len(), 2);
}

#[test]
fn duplicates_are_errors() {
    let e = errors("  capabilities:\n    add: [CHOWN, CHOWN]\n  seccomp:\n    deny: [mount, mount]\n  filesystem:\n    readOnly: [/usr, /usr/]\n    execute: [/bin]\n");
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(e[0].contains("capability `CHOWN` is listed twice"), "{}", e[0]);
    assert!(e[1].contains("syscall `mount` is listed twice (first at line 9)"), "{}", e[1]);
    assert!(e[2].contains("path `/usr/` is listed twice"), "{}", e[2]);
}

#[test]
fn adding_what_drop_all_removed_is_fine_but_drop_and_add_of_the_same_is_not() {
    let src = format!("{HEAD}  capabilities:\n    drop: [ALL]\n    add: [CHOWN]\n");
    assert!(parse(&src).is_ok());
    let e = errors("  capabilities:\n    drop: [NET_RAW]\n    add: [NET_RAW]\n");
    assert_eq!(
        e,
        vec!["p.yaml:8:11: error: capability `NET_RAW` is both dropped and added; remove it from `drop` or from `add`"]
    );
}

#[test]
fn same_path_with_two_rights_is_a_contradiction() {
    let e = errors("  filesystem:\n    readOnly: [/data]\n    readWrite: [/data]\n    execute: [/bin]\n");
    assert_eq!(e, vec!["p.yaml:8:17: error: path `/data` is in both `readOnly` and `readWrite`; keep it in one list"]);
}

#[test]
fn dot_dot_and_relative_paths_are_refused() {
    let e = errors("  filesystem:\n    readWrite: [/tmp/../etc, ./x]\n    execute: [/bin]\n");
    assert_eq!(e.len(), 2);
    assert!(e[0].contains("remove `.` and `..` components"), "{}", e[0]);
    assert!(e[1].contains("use an absolute path, e.g. `/x`"), "{}", e[1]);
}

#[test]
fn wrong_types_name_what_was_expected() {
    let e = errors("  process:\n    noNewPrivileges: yes\n  network: [none]\n");
    assert_eq!(e[0], "p.yaml:7:22: error: expected a boolean at `spec.process.noNewPrivileges`, found a string; write `true` or `false`");
    assert_eq!(e[1], "p.yaml:8:12: error: expected a mapping at `spec.network`, found a list");
}

#[test]
fn missing_header_fields() {
    let e = parse("kind: SandboxPolicy\nspec: {}\n").unwrap_err();
    let lines: Vec<String> = e.errors().map(|d| d.render(None)).collect();
    assert!(lines.iter().any(|l| l.contains("missing field `apiVersion`")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("missing field `metadata`")), "{lines:?}");
}

#[test]
fn wrong_api_version_and_kind() {
    let e = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n").unwrap_err();
    let lines: Vec<String> = e.errors().map(|d| d.render(None)).collect();
    assert_eq!(lines[0], "1:13: error: unsupported apiVersion `v1`; use `semble.dev/v1alpha1`");
    assert_eq!(lines[1], "2:7: error: unsupported kind `Pod`; use `SandboxPolicy`");
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let e = parse("apiVersion: semble.dev/v1alpha1\nkind: [SandboxPolicy\n").unwrap_err();
    let d = &e.diagnostics[0];
    assert!(d.pos.is_some() && d.message.starts_with("invalid YAML"), "{d:?}");
}

#[test]
fn duplicate_keys_are_errors() {
    let e = parse(&format!("{HEAD}  process:\n    user: 1000\n    user: 0\n")).unwrap_err();
    assert_eq!(e.diagnostics[0].render(None), "8:5: error: duplicate key `user` (first at line 7); remove one of them");
}

#[test]
fn network_contradictions() {
    let e = errors("  network:\n    mode: none\n    dns: true\n    egress:\n      - host: api.example.com\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e.iter().any(|l| l.contains("egress rules need `mode: proxy`")));
    assert!(e.iter().any(|l| l.contains("`dns: true` needs a network")));
}

#[test]
fn egress_hosts_are_names_not_addresses() {
    for (host, fix) in [
        ("169.254.169.254", "IP addresses are not host names"),
        ("\"[fd00:ec2::254]\"", "IP addresses are not host names"),
        ("ex*ample.com", "only a leading `*.` wildcard"),
        ("\"*.com\"", "a wildcard needs at least two labels"),
        ("bücher.de", "punycode"),
        ("\"2130706433\"", "numeric names"),
        ("\"0x7f.1\"", "numeric names"),
        ("\"127.1\"", "numeric names"),
        ("\"10.0.0.1.\"", "IP addresses are not host names"),
        ("a_b.example.com", "use a DNS name"),
    ] {
        let e = errors(&format!("  network:\n    mode: proxy\n    egress:\n      - host: {host}\n"));
        assert_eq!(e.len(), 1, "{host}: {e:#?}");
        assert!(e[0].contains(fix), "{host}: {}", e[0]);
    }
}

#[test]
fn egress_hosts_are_normalised() {
    let src = format!(
        "{HEAD}  network:\n    mode: proxy\n    egress:\n      - host: Bedrock-Runtime.US-East-1.AmazonAWS.com.\n"
    );
    let p = parse(&src).unwrap().policy;
    assert_eq!(p.network.egress[0].host.to_string(), "bedrock-runtime.us-east-1.amazonaws.com");
    assert_eq!(p.network.egress[0].ports, vec![443]);
    assert!(p.network.egress[0].tls);
}

#[test]
fn same_egress_destination_twice_is_an_error() {
    let e = errors("  network:\n    mode: proxy\n    egress:\n      - host: a.example.com\n        ports: [443, 8443]\n      - host: a.example.com\n        ports: [8443]\n");
    assert_eq!(
        e,
        vec!["p.yaml:11:9: error: `a.example.com:8443` is already allowed by the rule at line 9; merge the two rules"]
    );
}

#[test]
fn quantities_are_checked() {
    let e = errors("  resources:\n    memory: 2GB\n    cpu: lots\n    pids: 0\n");
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(e[0].contains("`2GB` is not a valid quantity; write it like `2Gi` or `512Mi`"));
}

#[test]
fn selinux_names_are_checked() {
    let e = errors("  selinux:\n    type: Container\n    level: s0:c2000\n");
    assert_eq!(e.len(), 2, "{e:#?}");
}

#[test]
fn a_policy_that_cannot_start_anything_is_refused() {
    let e = errors("  filesystem:\n    readOnly: [/usr]\n");
    assert!(e[0].contains("no path is executable"), "{e:?}");
}

#[test]
fn warnings_do_not_block() {
    let w = warnings("  filesystem:\n    readWrite: [/tmp]\n    execute: [/tmp/bin]\n");
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("`/tmp/bin` is executable and overlaps writable `/tmp`"), "{}", w[0]);
}

#[test]
fn error_lines_are_single_lines_even_with_hostile_input() {
    let e = errors("  capabilities:\n    add: [\"CHOWN\\nerror: forged\"]\n");
    assert!(e.iter().all(|l| !l.contains('\n')), "{e:?}");
}

#[test]
fn json_policies_get_positions_too() {
    let src = r#"{
  "apiVersion": "semble.dev/v1alpha1",
  "kind": "SandboxPolicy",
  "metadata": {"name": "j"},
  "spec": {"process": {"usr": 1000}}
}"#;
    let e = parse(src).unwrap_err();
    assert_eq!(
        e.diagnostics[0].render(None),
        "5:24: error: unknown field `usr` in `spec.process`; did you mean `user`?"
    );
}

#[test]
fn defaults_are_the_safe_choice() {
    let p = parse(&format!("{HEAD}  network: {{mode: none}}\n")).unwrap().policy;
    assert!(p.capabilities.granted().is_empty());
    assert!(p.process.no_new_privileges);
    assert!(p.process.read_only_root_filesystem);
    assert_eq!(p.network.mode, semble_policy::model::NetworkMode::None);
    assert_eq!(p.seccomp.baseline, semble_policy::model::Baseline::Default);
}

#[test]
fn examples_are_valid() {
    for name in ["workspace", "llm-server", "data-processor"] {
        let src = std::fs::read_to_string(format!("{}/../examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let p = parse(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.policy.name, name);
        assert!(p.warnings.iter().all(|w| w.severity != Severity::Warning), "{name}: {:?}", p.warnings);
    }
}
