//! A pod through containerd's CRI, start to exit: the `semble-runc` handler against containerd's
//! plain `runc` handler, the same pod (the workspace policy's emitted pod, its workload running
//! `/bin/true`), alternated run by run so that machine noise hits both alike.
//!
//! `sudo dev/build && sudo cargo bench -p semble-tests --bench cri_pod` (root, containerd, runc,
//! the CNI plugins). `SEMBLE_BENCH_RUNS` sets the runs per handler (default 20). The goal
//! (issue #10): median(semble-runc) / median(runc) ≤ 1.10.
//!
//! One run is what the kubelet does for a pod that runs to completion: RunPodSandbox (CNI
//! included), CreateContainer, StartContainer, wait for the exit, StopPodSandbox,
//! RemovePodSandbox.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // benchmark: a panic is a failure

use std::time::{Duration, Instant};

use semble_tests::cri::{CriNode, PodManifest};
use semble_tests::median;

fn one(node: &CriNode, pod: &PodManifest) -> f64 {
    let start = Instant::now();
    let running = node.run_pod(pod).unwrap_or_else(|e| panic!("{e}\ncontainerd:\n{}", node.log()));
    let code = running.wait_exit("workload", Duration::from_secs(60)).unwrap();
    assert_eq!(code, 0, "the workload failed under {}", running.handler);
    running.remove();
    start.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let runs: usize = std::env::var("SEMBLE_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let node = CriNode::start();
    let mut semble = node.manifests("workspace");
    semble.spec.runtime_class_name = Some("semble-runc".into());
    semble.workload().command = Some(vec!["/bin/true".into()]);
    let mut plain = semble.clone();
    plain.spec.runtime_class_name = None; // containerd's default handler: runc
                                          // Warm-up: the first pod of each handler pays for page cache and the shim binary's first load.
    for _ in 0..2 {
        one(&node, &plain);
        one(&node, &semble);
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Alternate which goes first.
        if i % 2 == 0 {
            a.push(one(&node, &plain));
            b.push(one(&node, &semble));
        } else {
            b.push(one(&node, &semble));
            a.push(one(&node, &plain));
        }
    }
    let (ma, mb) = (median(&mut a), median(&mut b));
    println!("pod start-to-exit through CRI, {runs} alternated runs each (median, min-max):");
    println!("  runc handler          {ma:7.1} ms  ({:.1}-{:.1})", a[0], a[a.len() - 1]);
    println!("  semble-runc handler   {mb:7.1} ms  ({:.1}-{:.1})", b[0], b[b.len() - 1]);
    println!("  ratio semble-runc/runc {:.3} (goal <= 1.10)", mb / ma);
}
