//! Container start overhead: `semble-shim run` against `runc run`, same busybox `/bin/true`
//! bundle, alternated run by run so that machine noise hits every variant alike.
//!
//! `sudo dev/build && sudo cargo bench -p semble-tests --bench shim_start` (needs root and runc).
//! `SEMBLE_BENCH_RUNS` sets the number of runs per variant (default 40). The goal (issue #3):
//! median(semble-shim) / median(runc) ≤ 1.10.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark: a panic is a failure

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use semble_tests::*;

/// The `pct`-th percentile (0–100), nearest rank.
fn percentile(v: &[f64], pct: usize) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[(s.len() - 1) * pct / 100]
}

/// CPU time (user + system) of all waited-for children so far, in ms.
fn children_cpu_ms() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1000.0 + t.tv_usec() as f64 / 1000.0;
    tv(u.user_time()) + tv(u.system_time())
}

/// Wall-clock and CPU milliseconds of one run.
fn time(cmd: &mut Command) -> (f64, f64) {
    let cpu0 = children_cpu_ms();
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).stdin(Stdio::null()).status().unwrap();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    assert!(status.success(), "{cmd:?} failed");
    (ms, children_cpu_ms() - cpu0)
}

/// A tmpfs mounted on a temporary directory for the run's state, unmounted at the end.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new() -> Tmpfs {
        let dir = tempfile::Builder::new().prefix("semble-bench").tempdir().unwrap();
        run(Command::new("mount").args(["-t", "tmpfs", "-o", "mode=0711", "semble-bench"]).arg(dir.path()), true);
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    require_root();
    let runc = require_tool("runc", "runc");
    let runs: usize = std::env::var("SEMBLE_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let t = tempfile::tempdir().unwrap();
    let b = bundle(&t.path().join("bundle"), &["/bin/true"]);
    // Runtime state lives on tmpfs, as /run/runc and /run/semble-shim do in production (a tmpfs
    // mounted here: /run is not one on every machine); the bundle stays on disk, as engines keep it.
    let state = Tmpfs::new();
    let builtin = workspace().join("shim/src/builtin-default.yaml");
    // The built-in policy without the per-container denial supervisor: what explanations cost.
    let quiet = t.path().join("quiet.yaml");
    let text = std::fs::read_to_string(&builtin).unwrap();
    assert!(text.contains("    baseline: default\n"));
    std::fs::write(
        &quiet,
        text.replace("    baseline: default\n", "    baseline: default\n    explainDenials: false\n"),
    )
    .unwrap();
    let ws = semble_tests::scenarios::policy_dir_for("runc").join("workspace.yaml");
    let ws_embedded = semble_tests::scenarios::policy_dir_for("embedded").join("workspace.yaml");
    let root = |n: &str| state.path().join(n);
    // The same bundle as semble rewrites it for the built-in policy, run by runc alone: the
    // difference between this and `semble-shim run` is the shim's own cost; the difference
    // between this and plain `runc run` is what the policy's enforcement costs runc.
    let rewritten = t.path().join("rewritten");
    {
        let st = Command::new(bin("semble-shim"))
            .arg("--root")
            .arg(root("prep"))
            .arg("--policy")
            .arg(&builtin)
            .args(["create", "-b"])
            .arg(&b)
            .arg("prep")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::create_dir_all(&rewritten).unwrap();
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
        let kept_box = t.path().join("kept-box");
        run(Command::new("cp").arg("-a").arg(root("prep").join("semble/prep/box")).arg(&kept_box), true);
        for m in cfg["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/.semble" {
                m["source"] = serde_json::json!(kept_box);
            }
        }
        cfg["root"]["path"] = serde_json::json!(b.join("rootfs"));
        std::fs::write(rewritten.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
        let st = Command::new(bin("semble-shim"))
            .arg("--root")
            .arg(root("prep"))
            .args(["delete", "--force", "prep"])
            .status()
            .unwrap();
        assert!(st.success());
    }
    type Variant<'a> = (&'a str, Box<dyn Fn(usize) -> Command + 'a>);
    let variants: Vec<Variant> = vec![
        (
            "runc run",
            Box::new(|i| {
                let mut c = Command::new(&runc);
                c.arg("--root").arg(root("runc")).args(["run", "-b"]).arg(&b).arg(format!("r{i}"));
                c
            }),
        ),
        (
            "runc run, bundle as semble rewrote it (built-in policy)",
            Box::new(|i| {
                let mut c = Command::new(&runc);
                c.arg("--root").arg(root("runc2")).args(["run", "-b"]).arg(&rewritten).arg(format!("x{i}"));
                c
            }),
        ),
        (
            "semble-shim run (built-in default policy)",
            Box::new(|i| {
                let mut c = Command::new(bin("semble-shim"));
                c.arg("--root")
                    .arg(root("s1"))
                    .arg("--policy")
                    .arg(&builtin)
                    .args(["run", "-b"])
                    .arg(&b)
                    .arg(format!("s{i}"));
                c
            }),
        ),
        (
            "semble-shim run (built-in policy, denials not explained)",
            Box::new(|i| {
                let mut c = Command::new(bin("semble-shim"));
                c.arg("--root")
                    .arg(root("s3"))
                    .arg("--policy")
                    .arg(&quiet)
                    .args(["run", "-b"])
                    .arg(&b)
                    .arg(format!("q{i}"));
                c
            }),
        ),
        (
            "semble-shim run (workspace policy: Landlock, semble-init)",
            Box::new(|i| {
                let mut c = Command::new(bin("semble-shim"));
                c.arg("--root")
                    .arg(root("s2"))
                    .arg("--policy")
                    .arg(&ws)
                    .arg("--proxy-dir")
                    .arg(root("proxy"))
                    .args(["run", "-b"])
                    .arg(&b)
                    .arg(format!("w{i}"));
                c
            }),
        ),
        (
            "semble-shim --backend embedded run (built-in default policy)",
            Box::new(|i| {
                let mut c = Command::new(bin("semble-shim"));
                c.arg("--root")
                    .arg(root("e1"))
                    .arg("--backend")
                    .arg("embedded")
                    .arg("--policy")
                    .arg(&builtin)
                    .args(["run", "-b"])
                    .arg(&b)
                    .arg(format!("e{i}"));
                c
            }),
        ),
        (
            "semble-shim run, embedded (workspace policy)",
            Box::new(|i| {
                let mut c = Command::new(bin("semble-shim"));
                c.arg("--root")
                    .arg(root("e2"))
                    .arg("--policy")
                    .arg(&ws_embedded)
                    .arg("--proxy-dir")
                    .arg(root("proxy"))
                    .args(["run", "-b"])
                    .arg(&b)
                    .arg(format!("f{i}"));
                c
            }),
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for w in 0..3 {
        for (_, v) in &variants {
            time(&mut v(1000 + w));
        }
    }
    for i in 0..runs {
        for (k, (_, v)) in variants.iter().enumerate() {
            let (wall, c) = time(&mut v(i));
            samples[k].push(wall);
            cpu[k].push(c);
        }
    }
    let base = median(&mut samples[0].clone());
    let base_cpu = median(&mut cpu[0].clone());
    println!("container start, busybox /bin/true, {runs} alternated runs each ({})", Path::new(&b).display());
    println!(
        "{:<58} {:>9} {:>9} {:>9} {:>7} {:>8} {:>7}",
        "variant", "median ms", "p10 ms", "p90 ms", "ratio", "cpu ms", "ratio"
    );
    for (k, (name, _)) in variants.iter().enumerate() {
        let m = median(&mut samples[k].clone());
        let c = median(&mut cpu[k].clone());
        println!(
            "{:<58} {:>9.2} {:>9.2} {:>9.2} {:>7.3} {:>8.2} {:>7.3}",
            name,
            m,
            percentile(&samples[k], 10),
            percentile(&samples[k], 90),
            m / base,
            c,
            c / base_cpu
        );
    }
}
