//! Parse + validate + compile every target, for each example policy.
//!
//! `cargo bench -p semble-policy-cli --bench compile`. Reports the median of many iterations per
//! policy, split into parse+validate and compile-all (which includes libseccomp compiling the
//! profile to BPF, twice: once to prove the OCI fragment's profile loads, once for `seccomp-bpf`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark: a panic is a failure

use std::time::Instant;

use semble_cli::targets::{compile, Target};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let iterations: usize = std::env::var("SEMBLE_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    println!("{:<16} {:>16} {:>16} {:>12}", "policy", "parse+validate", "compile all", "total");
    for name in ["workspace", "llm-server", "data-processor"] {
        let src = std::fs::read_to_string(format!("{}/../examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let (mut parse, mut comp) = (Vec::new(), Vec::new());
        for _ in 0..iterations {
            let t = Instant::now();
            let p = semble_policy::parse(&src).unwrap();
            let t1 = t.elapsed().as_secs_f64() * 1e6;
            let t = Instant::now();
            let a = compile(&p.policy, Target::All).unwrap();
            std::hint::black_box(a);
            comp.push(t.elapsed().as_secs_f64() * 1e6);
            parse.push(t1);
        }
        let (p, c) = (median(parse), median(comp));
        println!("{:<16} {:>13.1} us {:>13.1} us {:>9.1} us", name, p, c, p + c);
    }
}
