//! The generated modules build with the real tools: the CIL with `secilc` (against a minimal
//! base and container templates written for these tests, see `tests/cil/`), the refpolicy module
//! with Debian's `selinux-policy-dev` Makefile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;

fn policies() -> Vec<semble_policy::SandboxPolicy> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<semble_policy::SandboxPolicy> = ["workspace"]
        .iter()
        .map(|n| {
            semble_policy::parse(&std::fs::read_to_string(root.join(format!("../examples/{n}.yaml"))).unwrap())
                .unwrap()
                .policy
        })
        .collect();
    // One that exercises every rule the generators can write.
    let everything = "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: everything}\nspec:\n  selinux: {type: semble_everything_t, level: auto}\n  capabilities: {add: [CHOWN, NET_BIND_SERVICE, SYS_ADMIN, BPF, PERFMON]}\n  network: {mode: open, dns: true, ingress: [{fromNamespace: a, ports: [80, {port: 9000, endPort: 9010}, {port: 53, protocol: UDP}]}]}\n  devices: {gpu: nvidia}\n";
    out.push(semble_policy::parse(everything).unwrap().policy);
    out
}

fn tool(name: &str, package: &str) -> PathBuf {
    let p = Path::new("/usr/bin").join(name);
    assert!(p.exists(), "`{name}` is not installed: apt-get install {package} (.ci/run installs it)");
    p
}

#[test]
fn cil_modules_compile_with_secilc() {
    let secilc = tool("secilc", "secilc");
    let dir = tempfile::tempdir().unwrap();
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cil");
    for p in policies() {
        let name = semble_selinux::module_name(&p).unwrap();
        let module = dir.path().join(format!("{name}.cil"));
        std::fs::write(&module, semble_selinux::cil(&p).unwrap()).unwrap();
        let out = Command::new(&secilc)
            .arg("--output")
            .arg(dir.path().join("policy.bin"))
            .arg("--filecontext")
            .arg(dir.path().join("file_contexts"))
            .arg(base.join("base.cil"))
            .arg(base.join("templates.cil"))
            .arg(&module)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "secilc rejected {name}.cil:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            semble_selinux::cil(&p).unwrap()
        );
    }
}

#[test]
fn a_broken_module_is_caught() {
    // The check is real: a permission the base does not define fails.
    let secilc = tool("secilc", "secilc");
    let dir = tempfile::tempdir().unwrap();
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cil");
    let module = dir.path().join("bad.cil");
    std::fs::write(&module, "(block bad (blockinherit container) (allow process process (capability (fly))))\n")
        .unwrap();
    let out = Command::new(&secilc)
        .arg("--output")
        .arg(dir.path().join("p"))
        .arg("--filecontext")
        .arg(dir.path().join("fc"))
        .arg(base.join("base.cil"))
        .arg(base.join("templates.cil"))
        .arg(&module)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn refpolicy_modules_build_with_the_devel_makefile() {
    let makefile = Path::new("/usr/share/selinux/devel/Makefile");
    assert!(
        makefile.exists(),
        "selinux-policy-dev is not installed: apt-get install selinux-policy-dev (.ci/run installs it)"
    );
    for p in policies() {
        let m = semble_selinux::refpolicy(&p).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("{}.te", m.name)), &m.te).unwrap();
        std::fs::write(dir.path().join(format!("{}.if", m.name)), &m.interfaces).unwrap();
        std::fs::write(dir.path().join(format!("{}.fc", m.name)), &m.file_contexts).unwrap();
        let out = Command::new("make")
            .arg("-f")
            .arg(makefile)
            .arg(format!("{}.pp", m.name))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success() && dir.path().join(format!("{}.pp", m.name)).exists(),
            "{}.pp did not build:\n{}\n{}\n{}",
            m.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            m.te
        );
    }
}
