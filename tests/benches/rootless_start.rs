//! Rootless Podman start: `podman run --rm IMAGE /bin/true` as an ordinary user, with Podman's own
//! runtime and with semble-shim, alternated run by run (machine noise hits every variant alike).
//!
//! `sudo dev/build && sudo cargo bench -p semble-tests --bench rootless_start` (root creates the
//! test user; the runs are the user's). `SEMBLE_BENCH_RUNS` sets the runs per variant (default
//! 20). Reported: median wall-clock per variant and its ratio to Podman's own runtime.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark: a panic is a failure

use std::process::{Command, Stdio};
use std::time::Instant;

use semble_tests::rootless::{Rootless, IMAGE};

fn time(mut cmd: Command) -> f64 {
    let start = Instant::now();
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output().unwrap();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    ms
}

fn main() {
    let runs: usize = std::env::var("SEMBLE_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let r = Rootless::start(&semble_tests::scenarios::policy_dir_for("runc"));
    let _proxy = r.proxy("workspace");
    let base = ["run", "--rm", "--network", "none"];
    type Variant<'a> = (&'a str, Box<dyn Fn() -> Command + 'a>);
    let variants: Vec<Variant> = vec![
        (
            "podman run (Podman's default runtime)",
            Box::new(|| {
                let mut c = r.podman_default();
                c.args(base).arg(IMAGE).arg("/bin/true");
                c
            }),
        ),
        (
            "podman --runtime semble-shim run (built-in default policy)",
            Box::new(|| {
                let mut c = r.podman();
                c.args(base).arg(IMAGE).arg("/bin/true");
                c
            }),
        ),
        (
            "podman --runtime semble-shim run (workspace policy)",
            Box::new(|| {
                let mut c = r.podman();
                c.args(base).args(["--annotation", "semble.dev/policy=workspace"]).arg(IMAGE).arg("/bin/true");
                c
            }),
        ),
    ];
    // One warm-up each: image layers, Podman's pause process.
    for (_, v) in &variants {
        time(v());
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..runs {
        for (i, (_, v)) in variants.iter().enumerate() {
            times[i].push(time(v()));
        }
    }
    let base_median = semble_tests::median(&mut times[0].clone());
    println!("rootless podman run /bin/true, {runs} runs per variant, alternated");
    println!("| variant | median | ratio |");
    println!("|---|---|---|");
    for (i, (name, _)) in variants.iter().enumerate() {
        let m = semble_tests::median(&mut times[i]);
        println!("| {name} | {m:.1} ms | {:.2} |", m / base_median);
    }
}
