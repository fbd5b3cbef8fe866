//! `semble-proxy`: the egress credential proxy. See the library docs and `docs/proxy.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use ipnet::IpNet;
use semble_proxy::config::{self, Config, Limits, ListenAddr, Pin, RulesSource};

const EXAMPLES: &str = "\
Examples:
  # The sidecar of the workspace policy: the workload uses HTTP_PROXY=http://127.0.0.1:8080
  semble-proxy --policy /etc/semble/workspace.yaml --credentials /run/secrets/semble/credentials.yaml \\
      --listen 127.0.0.1:8080 --admin unix:/run/semble/proxy-admin.sock --admin-token-file /run/secrets/semble/admin-token

  # For a network-less container started by semble-shim (semble-init bridges 127.0.0.1:8080 to this socket)
  semble-proxy --policy /etc/semble/policies/workspace.yaml --listen unix:/run/semble/proxy/workspace/proxy.sock

  # Clients that insist on https:// get TLS from a per-deployment CA (mount only ca.crt into the sandbox)
  semble-proxy --rules rules.yaml --credentials creds.yaml --intercept-ca-dir /var/lib/semble-proxy/ca

  # Check the files and exit (CI)
  semble-proxy --policy workspace.yaml --credentials creds.yaml --check

  # Replace the rules at run time; bad rules are refused and the old ones stay
  curl --unix-socket /run/semble/proxy-admin.sock -H \"Authorization: Bearer $(cat token)\" \\
      -X PUT --data-binary @rules.yaml http://admin/rules

Signals: SIGHUP reloads the rules and credentials files; SIGTERM/SIGINT stop.
Logs: one JSON line per decision on standard error.";

/// The egress credential proxy: per-request allow-list decisions, credentials injected outside
/// the sandbox.
#[derive(Debug, Parser)]
#[command(name = "semble-proxy", version, after_help = EXAMPLES, group(ArgGroup::new("source").required(true).args(["policy", "rules"])))]
struct Cli {
    /// A SandboxPolicy; its `network.egress` rules are enforced.
    #[arg(long, value_name = "FILE", env = "SEMBLE_PROXY_POLICY")]
    policy: Option<PathBuf>,
    /// A ProxyRules file (same rule schema; `semble-policy compile --target proxy` writes one).
    #[arg(long, value_name = "FILE", env = "SEMBLE_PROXY_RULES")]
    rules: Option<PathBuf>,
    /// Where clients connect: `127.0.0.1:8080`, `[::1]:8080` or `unix:/path` (repeatable).
    #[arg(long, value_name = "ADDR", value_parser = config::parse_listen, default_value = "127.0.0.1:8080")]
    listen: Vec<ListenAddr>,
    /// The admin API listener (`unix:/path` or a loopback `ADDR:PORT`).
    #[arg(long, value_name = "ADDR", value_parser = config::parse_admin)]
    admin: Option<ListenAddr>,
    /// File with the bearer token of `GET/PUT /rules` (mode 0600; without it `/rules` is off).
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// The credentials file (`kind: ProxyCredentials`).
    #[arg(long, value_name = "FILE", env = "SEMBLE_PROXY_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Pin a name: `HOST:PORT:ADDR[,ADDR]`, as curl's --resolve (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = config::parse_pin)]
    resolve: Vec<Pin>,
    /// PEM CA bundle trusted for upstream TLS instead of the system roots.
    #[arg(long, value_name = "FILE")]
    upstream_ca: Option<PathBuf>,
    /// Permit a reserved address range for every rule (e.g. a loopback test upstream; repeatable).
    #[arg(long, value_name = "CIDR", value_parser = config::parse_cidr)]
    allow_cidr: Vec<IpNet>,
    /// Directory of the intercept CA (ca.crt, ca.key), created on first start.
    #[arg(long, value_name = "DIR")]
    intercept_ca_dir: Option<PathBuf>,
    /// A hosts file to answer names before DNS (e.g. `/etc/hosts`). None by default: in a pod the
    /// kubelet shares `/etc/hosts` with the workload, which must not redirect a pinned name.
    /// Never name a file a workload can write; pin names with `--resolve` instead.
    #[arg(long, value_name = "FILE")]
    hosts_file: Option<PathBuf>,
    /// DNS server to use instead of /etc/resolv.conf: `ADDR` or `ADDR:PORT` (repeatable).
    #[arg(long, value_name = "ADDR", value_parser = config::parse_nameserver)]
    nameserver: Vec<SocketAddr>,
    /// Concurrent client connections and tunnels; more are answered 503.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Largest request head (request line and headers) in bytes; larger gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_header_bytes)]
    max_header_bytes: usize,
    /// Most request headers; more gets 431.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_headers)]
    max_headers: usize,
    /// Time allowed to send a request head, and to wait for the next on a kept-alive connection.
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration, default_value = "10s")]
    header_timeout: Duration,
    /// Connections, bodies and tunnels with nothing moving for this long are closed.
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration, default_value = "5m")]
    idle_timeout: Duration,
    /// Time allowed to connect (and do TLS) to an upstream.
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration, default_value = "10s")]
    connect_timeout: Duration,
    /// Largest body signed with SigV4 (it is buffered to be hashed); larger gets 413.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_signed_body)]
    max_signed_body: usize,
    /// Connections and tunnels one client (a source address, or a Unix listener) may hold; more
    /// are answered 429.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_client_connections)]
    max_client_connections: usize,
    /// Bytes of bodies read whole (to be signed) at once, all clients together; more get 503.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_buffered_bytes)]
    max_buffered_bytes: usize,
    /// Bytes of bodies read whole at once for one client; more get 429.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_client_buffered_bytes)]
    max_client_buffered_bytes: usize,
    /// Mode of Unix listener sockets (octal); access is meant to be governed by the directory.
    #[arg(long, value_name = "MODE", value_parser = parse_mode, default_value = "666")]
    socket_mode: u32,
    /// Threads serving clients, each running its own event loop so that a request and its
    /// upstream connection stay on one thread (default: one per CPU this process may use).
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    workers: usize,
    /// `/healthz` fails while writing the decision log (standard error) has been blocked this
    /// long; lines that arrive meanwhile are dropped and counted, never waited for.
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration, default_value = "5s")]
    log_stall_timeout: Duration,
    /// Check the rules, credentials and CA, print a summary, and exit.
    #[arg(long)]
    check: bool,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("`{s}` is not an octal mode such as 660"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rules = match (cli.policy, cli.rules) {
        (Some(p), _) => RulesSource::Policy(p),
        (None, Some(r)) => RulesSource::Rules(r),
        (None, None) => unreachable_source(),
    };
    let config = Config {
        rules,
        listen: cli.listen,
        admin: cli.admin,
        admin_token_file: cli.admin_token_file,
        credentials: cli.credentials,
        resolve: cli.resolve,
        upstream_ca: cli.upstream_ca,
        allow_cidr: cli.allow_cidr,
        intercept_ca_dir: cli.intercept_ca_dir,
        nameservers: cli.nameserver,
        hosts_file: cli.hosts_file,
        limits: Limits {
            max_connections: cli.max_connections,
            max_header_bytes: cli.max_header_bytes,
            max_headers: cli.max_headers,
            header_timeout: cli.header_timeout,
            idle_timeout: cli.idle_timeout,
            connect_timeout: cli.connect_timeout,
            max_signed_body: cli.max_signed_body,
            max_client_connections: cli.max_client_connections,
            max_buffered_bytes: cli.max_buffered_bytes,
            max_client_buffered_bytes: cli.max_client_buffered_bytes,
        },
        socket_mode: cli.socket_mode,
        workers: cli.workers,
        log_stall_timeout: cli.log_stall_timeout,
    };
    // This runtime runs start-up, the admin API, signals and housekeeping; clients are served
    // by the worker threads `server::run` starts.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("semble-proxy: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if cli.check {
        rt.block_on(semble_proxy::server::check(config))
    } else {
        rt.block_on(semble_proxy::server::run(config))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            for line in format!("{e:#}").lines() {
                eprintln!("semble-proxy: error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

fn unreachable_source() -> RulesSource {
    // clap's required group guarantees one of --policy/--rules; keep a clear message anyway.
    eprintln!("semble-proxy: error: give --policy FILE or --rules FILE");
    std::process::exit(2)
}
