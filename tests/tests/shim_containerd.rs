//! containerd drives semble-shim through its runc shim (`ctr run --runc-binary`), runc backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use semble_tests::scenarios::*;
use semble_tests::*;

#[test]
fn ctr_run_with_runc_binary() {
    ctr_run("runc");
}

#[test]
fn ctr_exec_kill_and_delete() {
    ctr_exec_kill_delete("runc");
}

#[test]
fn ctr_refusal_reaches_the_user() {
    let e = CtrEnv::start("runc");
    let id = unique("ctrbad");
    let out = run(
        e.containerd.ctr().args(["run", "--rm", "--runc-binary"]).arg(bin("semble-shim")).args([
            "--annotation",
            "semble.dev/policy=nope",
            &e.image,
            &id,
            "true",
        ]),
        false,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown policy `nope`"), "{stderr}");
    let _ = run(e.containerd.ctr().args(["containers", "delete", &id]), false);
}
