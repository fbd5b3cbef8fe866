//! Property tests: no input makes the parser (or the pure compile targets) panic.
//!
//! Three generators: arbitrary text; the example policies with random edits (the inputs closest
//! to real mistakes); and random YAML documents built from the policy's own vocabulary, which
//! reach deep into the validator.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use proptest::prelude::*;
use semble_policy::compile::{landlock, oci, proxy};
use semble_policy::explain::{explain, SeccompFacts};

fn exercise(src: &str) {
    if let Ok(p) = semble_policy::parse(src) {
        let _ = oci::fragment(&p.policy, None);
        let _ = landlock::ruleset(&p.policy);
        let _ = proxy::rules(&p.policy);
        let _ = explain(&p.policy, &SeccompFacts::default());
    }
    let _ = semble_policy::parse_rules(src);
    let _ = semble_policy::yaml::parse_stream(src);
}

fn examples() -> Vec<String> {
    ["workspace", "llm-server", "data-processor"]
        .iter()
        .map(|n| std::fs::read_to_string(format!("{}/../examples/{n}.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap())
        .collect()
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    SwapLines(usize, usize),
    DuplicateLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let tokens = prop::sample::select(vec![
        ":",
        "-",
        " ",
        "\n",
        "  ",
        "[",
        "]",
        "{",
        "}",
        "\"",
        "'",
        "&a",
        "*a",
        "<<: ",
        "!!str ",
        "#",
        "0x",
        "-1",
        "99999999999999999999",
        "ALL",
        "/..",
        "~",
        "null",
        "true",
        "*.",
        "\t",
        "é",
        "\u{0}",
        "---\n",
        "? ",
    ]);
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), prop::collection::vec(tokens, 1..4)).prop_map(|(a, t)| Edit::Insert(a, t.concat())),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        any::<usize>().prop_map(Edit::DuplicateLine),
    ]
}

fn apply(src: &str, edits: &[Edit]) -> String {
    let mut s: Vec<char> = src.chars().collect();
    for e in edits {
        match e {
            Edit::Delete(at, n) if !s.is_empty() => {
                let at = at % s.len();
                let end = (at + n).min(s.len());
                s.drain(at..end);
            }
            Edit::Insert(at, text) => {
                let at = if s.is_empty() { 0 } else { at % s.len() };
                for (i, c) in text.chars().enumerate() {
                    s.insert(at + i, c);
                }
            }
            Edit::SwapLines(a, b) => {
                let text: String = s.iter().collect();
                let mut lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let (a, b) = (a % lines.len(), b % lines.len());
                    lines.swap(a, b);
                }
                s = lines.join("\n").chars().collect();
            }
            Edit::DuplicateLine(a) => {
                let text: String = s.iter().collect();
                let mut lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let a = a % lines.len();
                    lines.insert(a, lines[a]);
                }
                s = lines.join("\n").chars().collect();
            }
            _ => {}
        }
    }
    s.into_iter().collect()
}

/// Random YAML from the policy's vocabulary.
fn yaml_value(depth: u32) -> BoxedStrategy<String> {
    let scalar = prop::sample::select(vec![
        "1000",
        "0",
        "-1",
        "true",
        "false",
        "null",
        "ALL",
        "CHOWN",
        "SYS_ADMIN",
        "ptrace",
        "mount",
        "/usr",
        "/tmp",
        "relative",
        "none",
        "proxy",
        "open",
        "gvisor",
        "runc",
        "embedded",
        "required",
        "best-effort",
        "default",
        "strict",
        "errno",
        "EPERM",
        "2Gi",
        "500m",
        "api.example.com",
        "*.example.com",
        "*",
        "443",
        "65536",
        "s0:c1,c2",
        "semble_x_t",
        "auto",
        "nvidia",
        "rw",
        "/dev/fuse",
        "\"quoted\"",
        "1.5",
        "0x10",
    ])
    .prop_map(str::to_string)
    .boxed();
    if depth == 0 {
        return scalar;
    }
    let key = prop::sample::select(vec![
        "runtime",
        "backend",
        "fallback",
        "process",
        "user",
        "group",
        "noNewPrivileges",
        "readOnlyRootFilesystem",
        "rlimits",
        "nofile",
        "soft",
        "hard",
        "capabilities",
        "drop",
        "add",
        "seccomp",
        "baseline",
        "allow",
        "deny",
        "defaultAction",
        "errno",
        "filesystem",
        "readOnly",
        "readWrite",
        "execute",
        "enforcement",
        "selinux",
        "type",
        "level",
        "network",
        "mode",
        "egress",
        "host",
        "ports",
        "credential",
        "methods",
        "paths",
        "allowAddresses",
        "dns",
        "ingress",
        "fromNamespace",
        "fromPods",
        "fromCidr",
        "port",
        "endPort",
        "protocol",
        "proxy",
        "placement",
        "devices",
        "gpu",
        "path",
        "access",
        "kubernetes",
        "namespace",
        "podSelector",
        "tolerations",
        "overhead",
        "resources",
        "memory",
        "cpu",
        "pids",
        "bogus",
    ]);
    prop_oneof![
        2 => scalar,
        1 => prop::collection::vec(yaml_value(depth - 1), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
        2 => prop::collection::vec((key, yaml_value(depth - 1)), 0..5)
            .prop_map(|kv| format!("{{{}}}", kv.into_iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "))),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in any::<String>()) {
        exercise(&src);
    }

    #[test]
    fn edited_examples_never_panic(which in 0usize..3, edits in prop::collection::vec(edit(), 1..6)) {
        let src = apply(&examples()[which], &edits);
        exercise(&src);
    }

    #[test]
    fn random_specs_never_panic(spec in yaml_value(4)) {
        let src = format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: f}}\nspec: {spec}\n");
        exercise(&src);
    }
}
