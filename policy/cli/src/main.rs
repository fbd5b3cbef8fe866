//! `semble-policy`: validate, compile and explain SandboxPolicy files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use semble_cli::commands::{self, Format};
use semble_cli::exit;
use semble_cli::targets::Target;

const AFTER_HELP: &str = "\
Examples:
  semble-policy validate examples/*.yaml
  semble-policy compile examples/workspace.yaml --target all --out out/
  semble-policy compile examples/workspace.yaml --target seccomp > workspace.seccomp.json
  podman run --security-opt seccomp=workspace.seccomp.json busybox true
  semble-policy explain examples/workspace.yaml

Exit codes: 0 success; 1 invalid policy; 2 usage error or unreadable input.";

/// Validate, compile and explain semble SandboxPolicy files.
#[derive(Debug, Parser)]
#[command(name = "semble-policy", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check policies; print every problem as `file:line:column: error: message; fix`.
    #[command(
        after_help = "Examples:\n  semble-policy validate examples/*.yaml\n  semble-policy validate --format json policy.yaml | jq '.[].diagnostics'"
    )]
    Validate {
        /// Policy files (YAML or JSON); `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compile a policy into an enforcement artifact.
    #[command(
        after_help = "Examples:\n  semble-policy compile examples/workspace.yaml --target all --out out/\n  semble-policy compile examples/workspace.yaml --target oci | jq .process.capabilities\n  semble-policy compile examples/workspace.yaml --target seccomp-bpf > filter.bpf\n  semble-policy compile examples/workspace.yaml --target kubernetes --image ghcr.io/acme/agent:1.4 | kubectl apply -f -\n\nFiles written with --out are named POLICY.oci.json, POLICY.seccomp.json, POLICY.seccomp.bpf,\nPOLICY.landlock.json, POLICY.proxy-rules.json and POLICY.k8s.yaml; each is written atomically."
    )]
    Compile {
        /// The policy file.
        file: PathBuf,
        /// What to produce.
        #[arg(long, short, value_enum)]
        target: Target,
        /// Write into this directory instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Kubernetes: the workload's image.
        #[arg(long, value_name = "IMAGE", default_value_t = semble_k8s::Options::default().image)]
        image: String,
        /// Kubernetes: semble-proxy's image.
        #[arg(long, value_name = "IMAGE", default_value_t = semble_k8s::Options::default().proxy_image)]
        proxy_image: String,
        /// Kubernetes: the namespace of the gateway proxies.
        #[arg(long, value_name = "NAMESPACE", default_value_t = semble_k8s::Options::default().proxy_namespace)]
        proxy_namespace: String,
        /// Kubernetes: a fixed ClusterIP for the gateway Service (workloads without DNS reach it by address).
        #[arg(long, value_name = "IP")]
        proxy_cluster_ip: Option<std::net::IpAddr>,
        /// Kubernetes: also emit policies for this CNI (`cilium`: a CiliumNetworkPolicy with toFQDNs).
        #[arg(long, value_name = "CNI", value_parser = ["cilium"])]
        cni: Option<String>,
    },
    /// Say what a workload under the policy can and cannot do, and why.
    #[command(after_help = "Example:\n  semble-policy explain examples/workspace.yaml")]
    Explain {
        /// The policy file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Validate { files, format } => commands::validate(&files, format),
        Command::Compile { file, target, out, image, proxy_image, proxy_namespace, proxy_cluster_ip, cni } => {
            let k8s = semble_k8s::Options {
                image,
                proxy_image,
                proxy_namespace,
                proxy_cluster_ip: proxy_cluster_ip.map(|ip| ip.to_string()),
                cilium: cni.as_deref() == Some("cilium"),
            };
            commands::compile(&file, target, out.as_deref(), &k8s)
        }
        Command::Explain { file } => commands::explain(&file),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line, whatever RUST_BACKTRACE says: the chain of causes, joined.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("semble-policy: error: {msg}");
            ExitCode::from(exit::USAGE)
        }
    }
}
