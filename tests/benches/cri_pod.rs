//! A pod through containerd's CRI, start to exit: the `semble-runc` handler against containerd's
//! plain `runc` handler (and, for information, `semble-gvisor`), the same pod (the workspace policy's emitted pod, its workload running
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
                                          // For information (no goal): the same pod in a gVisor sandbox.
    let mut gvisor = semble.clone();
    gvisor.spec.runtime_class_name = Some("semble-gvisor".into());
    let pods = [("runc handler", &plain), ("semble-runc handler", &semble), ("semble-gvisor handler", &gvisor)];
    // Warm-up: the first pod of each handler pays for page cache and the shim binary's first load.
    for _ in 0..2 {
        for (_, pod) in &pods {
            one(&node, pod);
        }
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); pods.len()];
    for i in 0..runs {
        // Rotate which goes first.
        for k in 0..pods.len() {
            let j = (i + k) % pods.len();
            times[j].push(one(&node, pods[j].1));
        }
    }
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    println!("pod start-to-exit through CRI, {runs} alternated runs each (median, min-max):");
    for ((name, _), (t, m)) in pods.iter().zip(times.iter().zip(&medians)) {
        println!("  {name:<22} {m:7.1} ms  ({:.1}-{:.1})  ratio {:.3}", t[0], t[t.len() - 1], m / medians[0]);
    }
    println!("  ratio semble-runc/runc {:.3} (goal <= 1.10)", medians[1] / medians[0]);
}
