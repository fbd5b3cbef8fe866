//! Golden files for every compile target of every example policy.
//!
//! A change to an artifact shows up as a diff in review. To accept a change on purpose:
//! `SEMBLE_UPDATE_GOLDEN=1 cargo test -p semble-policy-cli --test golden` (never edit by hand).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::PathBuf;

use semble_cli::targets::{self, Target};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check(name: &str, actual: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    semble_files::golden::check(&path, actual).unwrap_or_else(|e| panic!("{e}"));
}

fn policy(name: &str) -> semble_policy::SandboxPolicy {
    let src = std::fs::read_to_string(root().join(format!("examples/{name}.yaml"))).unwrap();
    semble_policy::parse(&src).unwrap().policy
}

const EXAMPLES: &[&str] = &["workspace", "llm-server", "data-processor"];

#[test]
fn every_target_of_every_example_matches_its_golden_file() {
    for name in EXAMPLES {
        let p = policy(name);
        for t in Target::EACH {
            match targets::compile(&p, *t) {
                Ok(artifacts) => {
                    for a in artifacts {
                        check(&a.file, &a.bytes);
                    }
                }
                // Targets a policy has no section for (Landlock, SELinux) are errors on their own.
                Err(e) => check(&format!("{}.error", t.file_name(name)), e.to_string().as_bytes()),
            }
        }
        check(&format!("{name}.explain.txt"), targets::explain_text(&p).as_bytes());
    }
}

#[test]
fn compiling_twice_gives_identical_bytes() {
    for name in EXAMPLES {
        let p = policy(name);
        let a = targets::compile(&p, Target::All).unwrap();
        let b = targets::compile(&policy(name), Target::All).unwrap();
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn the_workspace_seccomp_profile_never_allows_escape_syscalls_unconditionally() {
    let p = policy("workspace");
    let bytes = &targets::compile(&p, Target::Seccomp).unwrap()[0].bytes;
    let profile: semble_policy::seccomp_profile::SeccompProfile = serde_json::from_slice(bytes).unwrap();
    let forbidden = [
        "bpf",
        "keyctl",
        "add_key",
        "request_key",
        "unshare",
        "mount",
        "umount2",
        "pivot_root",
        "userfaultfd",
        "perf_event_open",
        "kexec_load",
        "kexec_file_load",
        "open_by_handle_at",
        "init_module",
        "finit_module",
        "delete_module",
        "io_uring_setup",
        "setns",
        "reboot",
        "swapon",
        "acct",
        "iopl",
        "ioperm",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
    ];
    for rule in &profile.syscalls {
        if rule.action == "SCMP_ACT_ALLOW" {
            for n in &rule.names {
                assert!(!forbidden.contains(&n.as_str()), "`{n}` is allowed by {:?}", rule.comment);
            }
        }
    }
    assert_eq!(profile.default_action, "SCMP_ACT_ERRNO");
}
