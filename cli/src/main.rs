//! `semble-policy`: validate, compile, explain, lint and record SandboxPolicy files, and summarize denial logs.

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
  semble-policy record --out agent.yaml --base examples/workspace.yaml -- ./agent --selftest
  semble-policy denials /run/semble-shim/denials/*.jsonl

Exit codes: 0 success; 1 invalid policy; 2 usage error or unreadable input.";

/// Validate, compile, explain and lint semble SandboxPolicy files; record them from runs and explain denials.
#[derive(Debug, Parser)]
#[command(name = "semble-policy", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarize denial logs written by semble-shim's supervisor: syscall, count, first and
    /// last seen, the rule that refused it, the fix.
    #[command(
        after_help = "Examples:\n  semble-policy denials /run/semble-shim/denials/web-1.jsonl\n  semble-policy denials --format json logs/*.jsonl\n  semble-policy denials --patch logs/*.jsonl > allow.yaml   # an overlay allowing what was refused\n\nA warning is printed on stderr for each dangerous syscall the overlay would allow."
    )]
    Denials {
        /// Denial logs (`denials.jsonl`).
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Print a policy overlay allowing what was refused.
        #[arg(long)]
        patch: bool,
    },
    /// Run a command and record the syscalls it makes into a policy's seccomp allow-list.
    #[command(
        after_help = "Examples:\n  semble-policy record --out agent.yaml -- python3 agent.py --selftest\n  semble-policy record --out agent.yaml --base examples/workspace.yaml -- ./run-tests.sh\n  semble-policy record --out agent.yaml -- ./other-path.sh     # merges into agent.yaml\n\nThe command runs unconfined while it is recorded (every syscall is let through): record only\ncode you would run anyway. The policy is written with `baseline: none` and one line per\nsyscall saying where it was first seen; an existing --out file is merged, not replaced.\nTo record a container instead: semble-shim --record FILE run ...\nExit status: the command's."
    )]
    Record {
        /// The policy file to write (merged when it exists).
        #[arg(long)]
        out: PathBuf,
        /// A policy to record onto: everything but its seccomp section is kept.
        #[arg(long)]
        base: Option<PathBuf>,
        /// The policy's name when there is no base or earlier recording.
        #[arg(long, default_value = "recorded")]
        name: String,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// (internal) The recording helper: load the recording filter, hand it over, exec.
    #[command(name = "__record-child", hide = true)]
    RecordChild {
        /// The inherited socket's number.
        channel: String,
        /// The command.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Check policies; print every problem as `file:line:column: error: message; fix`.
    #[command(
        after_help = "Examples:\n  semble-policy validate examples/*.yaml\n  semble-policy validate --format json policy.yaml | jq '.[].diagnostics'\n  semble-policy validate --show-source policy.yaml"
    )]
    Validate {
        /// Policy files (YAML or JSON); `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Under each diagnostic (text format), show its source line with a caret under the
        /// offending text.
        #[arg(long)]
        show_source: bool,
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
    /// Find what makes a sandbox weak in policies, Kubernetes manifests, Compose files, seccomp
    /// profiles and OCI bundles (recognised by content).
    #[command(
        after_help = "Examples:\n  semble-policy lint examples/ deploy/ k8s/\n  semble-policy lint --format sarif . > semble.sarif      # GitHub code scanning\n  semble-policy lint --fail-on warning --exclude 'vendor/*' manifests/\n  semble-policy lint --pss-version v1.31 k8s/      # the Pod Security policy of a 1.31 cluster\n  semble-policy lint --list-rules\n\nExit status: 0 clean, 1 findings at or above --fail-on, 2 usage error or unreadable input.\nSuppress with `# semble-lint: ignore=RULE reason=\"...\"` or the annotation ignore-check.semble.dev/RULE."
    )]
    Lint {
        /// Files or directories (recursively: *.yaml, *.yml, *.json); `-` for standard input.
        #[arg(required_unless_present = "list_rules")]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_parser = ["text", "json", "sarif", "junit", "markdown"], default_value = "text")]
        format: String,
        /// Exit 1 when a finding is at least this severe.
        #[arg(long, value_parser = ["info", "warning", "error"], default_value = "error")]
        fail_on: String,
        /// Skip paths matching this glob (repeatable; `*` spans directories).
        #[arg(long, value_name = "GLOB")]
        exclude: Vec<String>,
        /// Print the rule catalogue (with --format markdown: docs/lint-rules.md).
        #[arg(long)]
        list_rules: bool,
        /// Configuration (rules off or re-levelled, excluded paths); default `.semble-lint.yaml`
        /// in the current directory when present.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The Pod Security policy version pods are held to (`latest`, `v1.32`), unless their
        /// namespace in the linted files sets `pod-security.kubernetes.io/enforce-version`.
        #[arg(long, value_name = "VERSION", default_value = "latest")]
        pss_version: String,
    },
    /// Say what a workload under the policy can and cannot do, and why; or, with --k8s, who can
    /// reach whom under a set of Kubernetes NetworkPolicies; or, with --k8s --diff, what a change
    /// to them opens.
    #[command(
        after_help = "Examples:\n  semble-policy explain examples/workspace.yaml\n  semble-policy explain --k8s manifests/\n  semble-policy explain --k8s manifests/ --format connlist        # np-guard's `list` lines\n  semble-policy explain --k8s out/workspace.k8s.yaml backend.yaml --from backend/api --to sandboxes/workspace --port 8081\n  semble-policy explain --k8s cluster/ --format dot | dot -Tsvg > net.svg\n  semble-policy explain --k8s --diff main/k8s/ pr/k8s/                # what the change opens\n  semble-policy explain --k8s --diff main/k8s/ pr/k8s/ --format sarif > netpol.sarif\n\nWith --from/--to the exit status is 0 when the connection is allowed and 1 when it is denied;\nwith --diff it is 1 when the change opens a connection, else 0.\nEndpoints: NAMESPACE/NAME of a Pod or workload, a unique NAME, `internet` (any public address),\n`metadata` (169.254.169.254) or an IP address; kube-system/kube-dns exists unless defined.\nFormats: text, json, dot (the table); connlist, connlist-json (np-guard's `netpol-analyzer list`\noutput, line for line); with --diff: text (np-guard's `diff` lines), json, sarif."
    )]
    Explain {
        /// The policy file.
        #[arg(required_unless_present = "k8s", conflicts_with = "k8s")]
        file: Option<PathBuf>,
        /// Kubernetes manifests (files or directories, multi-document YAML) to explain.
        #[arg(long, num_args = 0.., value_name = "PATH")]
        k8s: Vec<PathBuf>,
        /// With --k8s: the manifests before and after a change (files or directories).
        #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], requires = "k8s", conflicts_with_all = ["from", "to"])]
        diff: Vec<PathBuf>,
        /// With --k8s: the source of one connection to explain.
        #[arg(long, requires_all = ["to", "k8s"], value_name = "ENDPOINT")]
        from: Option<String>,
        /// With --k8s: its destination.
        #[arg(long, requires_all = ["from", "k8s"], value_name = "ENDPOINT")]
        to: Option<String>,
        /// With --from/--to: the port, `443` (TCP) or `53/UDP`.
        #[arg(long, requires = "from", value_name = "PORT[/PROTO]", default_value = "443")]
        port: String,
        /// With --k8s: output format.
        #[arg(long, value_enum, default_value = "text")]
        format: commands::K8sFormat,
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
        Command::Denials { logs, format, patch } => commands::denials(&logs, format, patch),
        Command::Record { out, base, name, command } => commands::record(&out, base.as_deref(), &name, &command),
        Command::RecordChild { channel, command } => {
            let command: Vec<String> = command.into_iter().skip_while(|a| a == "--").collect();
            let e = semble_supervisor::record::child(&channel, &command);
            eprintln!("semble-policy: error: {e}");
            return ExitCode::from(127);
        }
        Command::Validate { files, format, show_source } => commands::validate(&files, format, show_source),
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
        Command::Lint { paths, format, fail_on, exclude, list_rules, config, pss_version } => {
            let lint = commands::LintArgs {
                format: &format,
                fail_on: &fail_on,
                exclude: &exclude,
                list_rules,
                pss_version: &pss_version,
            };
            commands::lint(&paths, &lint, config.as_deref())
        }
        Command::Explain { file, k8s, diff, from, to, port, format } => match (file, diff.as_slice()) {
            (Some(f), _) => commands::explain(&f),
            (None, [old, new]) if k8s.is_empty() => commands::explain_diff(old, new, format),
            (None, [_, _]) => Err(anyhow::anyhow!(
                "--diff takes the two sets of manifests itself; write `--k8s --diff OLD NEW` without other paths"
            )),
            (None, _) if k8s.is_empty() => {
                Err(anyhow::anyhow!("--k8s needs the manifests to explain (files or directories), or `--diff OLD NEW`"))
            }
            (None, _) => commands::explain_k8s(&k8s, from.as_deref(), to.as_deref(), Some(&port), format),
        },
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
