//! Start-up, listeners, reloads and shutdown.

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, UnixListener};

use crate::admin;
use crate::budget::ClientKey;
use crate::config::{Config, ListenAddr, RulesSource};
use crate::creds::{self, Credentials, Kind, Secret, ValueSource};
use crate::intercept::InterceptCa;
use crate::log::Logger;
use crate::net::ClientIo;
use crate::pool::{client_tls, Upstreams};
use crate::rules::RuleSet;
use crate::state::Proxy;

/// Read the rules file.
pub fn load_rules(source: &RulesSource) -> Result<RuleSet, String> {
    let path = source.path();
    let src = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let parsed = semble_policy::parse_rules(&src).map_err(|e| {
        let file = path.display().to_string();
        e.diagnostics.iter().map(|d| d.render(Some(&file))).collect::<Vec<_>>().join("\n")
    })?;
    if let RulesSource::Policy(_) = source {
        if parsed.egress.is_empty() {
            return Err(format!(
                "{}: the policy has no network.egress rules, so the proxy would refuse everything; add rules or do not run a proxy for it",
                path.display()
            ));
        }
    }
    Ok(RuleSet::new(parsed, path.display().to_string()))
}

fn load_credentials(config: &Config) -> Result<Credentials, String> {
    match &config.credentials {
        Some(p) => creds::load(p),
        None => Ok(Credentials::default()),
    }
}

fn read_token(path: &Path) -> Result<Secret> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read --admin-token-file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "--admin-token-file {}: other users can read it (mode {:o}); run `chmod 600 {}`",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        );
    }
    let t =
        std::fs::read_to_string(path).with_context(|| format!("cannot read --admin-token-file {}", path.display()))?;
    let t = t.trim();
    if t.len() < 16 {
        bail!(
            "--admin-token-file {}: the token is shorter than 16 characters; use e.g. `openssl rand -hex 32`",
            path.display()
        );
    }
    Ok(Secret::new(t))
}

enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener, std::path::PathBuf),
}

async fn bind(addr: &ListenAddr, mode: u32) -> Result<Bound> {
    match addr {
        ListenAddr::Tcp(sa) => {
            let sock = if sa.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
                .with_context(|| format!("cannot listen on {sa}"))?;
            sock.set_reuseaddr(true).with_context(|| format!("cannot listen on {sa}"))?;
            sock.bind(*sa).with_context(|| format!("cannot listen on {sa} (is another process using the port?)"))?;
            Ok(Bound::Tcp(sock.listen(4096).with_context(|| format!("cannot listen on {sa}"))?))
        }
        ListenAddr::Unix(p) => {
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            if let Ok(meta) = std::fs::symlink_metadata(p) {
                if !meta.file_type().is_socket() {
                    bail!("cannot listen on unix:{}: the path exists and is not a socket; remove it", p.display());
                }
                if std::os::unix::net::UnixStream::connect(p).is_ok() {
                    bail!("cannot listen on unix:{}: another process is listening there", p.display());
                }
                std::fs::remove_file(p).with_context(|| format!("cannot remove the stale socket {}", p.display()))?;
            }
            let l = UnixListener::bind(p).with_context(|| {
                format!("cannot listen on unix:{} (does the directory exist and is it writable?)", p.display())
            })?;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot set the mode of {}", p.display()))?;
            Ok(Bound::Unix(l, p.clone()))
        }
    }
}

fn local_ips() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if let Some(sa) = a.address {
                if let Some(v4) = sa.as_sockaddr_in() {
                    out.push(IpAddr::V4(v4.ip()));
                } else if let Some(v6) = sa.as_sockaddr_in6() {
                    out.push(IpAddr::V6(v6.ip()));
                }
            }
        }
    }
    out
}

/// Whether a credential that cannot be produced at start-up is fatal: values the operator
/// gives directly (environment, files) are; a credential endpoint may come up later (the
/// proxy then reports not ready).
fn fatal_when_missing(kind: &Kind) -> bool {
    match kind {
        Kind::Header { source: ValueSource::Env(_) | ValueSource::File(_), .. } => true,
        Kind::AwsSigV4 { source, .. } => !matches!(source, creds::AwsSource::ContainerEndpoint),
    }
}

/// Reload the rules and credentials files (SIGHUP). On any error nothing changes.
pub async fn reload(proxy: &Proxy) -> Result<usize, String> {
    let rules = load_rules(&proxy.config.rules)?;
    let creds = load_credentials(&proxy.config)?;
    let missing = rules.missing_credentials(&creds);
    if !missing.is_empty() {
        return Err(missing.join("\n"));
    }
    let n = rules.rules.len();
    proxy.warn_uncovered(&rules, "SIGHUP");
    proxy.creds.store(Arc::new(creds));
    proxy.rules.store(Arc::new(rules));
    Ok(n)
}

/// Everything read from files at start-up.
struct Loaded {
    rules: RuleSet,
    creds: Credentials,
    admin_token: Option<Secret>,
    intercept: Option<InterceptCa>,
    tls: rustls::ClientConfig,
    roots_problem: Option<String>,
}

async fn load_all(config: &Config) -> Result<Loaded> {
    let rules = load_rules(&config.rules).map_err(|e| anyhow!(e))?;
    let creds = load_credentials(config).map_err(|e| anyhow!(e))?;
    let missing = rules.missing_credentials(&creds);
    if !missing.is_empty() {
        let hint = if config.credentials.is_none() { "; pass --credentials FILE" } else { "" };
        bail!("{}{hint}", missing.join("\n"));
    }
    for (_, name) in rules.credentials() {
        if let Some(c) = creds.get(name) {
            if fatal_when_missing(&c.kind) {
                c.check().await.map_err(|d| anyhow!("{}", d.detail))?;
            }
        }
    }
    let admin_token = config.admin_token_file.as_deref().map(read_token).transpose()?;
    let intercept = match &config.intercept_ca_dir {
        Some(d) => {
            let hosts: Vec<_> = rules.rules.iter().map(|r| r.spec.host.clone()).collect();
            let addrs: Vec<_> = rules.rules.iter().flat_map(|r| r.spec.allow_addresses.iter().copied()).collect();
            Some(InterceptCa::load_or_create(d, &hosts, &addrs).map_err(|e| anyhow!(e))?)
        }
        None => None,
    };
    let (tls, roots_problem) = client_tls(config.upstream_ca.as_deref()).map_err(|e| anyhow!(e))?;
    Ok(Loaded { rules, creds, admin_token, intercept, tls, roots_problem })
}

/// `--check`: read every file as a start would, say what would be enforced, and exit.
pub async fn check(config: Config) -> Result<()> {
    let l = load_all(&config).await?;
    println!("rules: {} from {}", l.rules.rules.len(), l.rules.source);
    for r in &l.rules.rules {
        let mut extra = Vec::new();
        if let Some(c) = &r.spec.credential {
            extra.push(format!("credential {c}"));
        }
        if !r.spec.methods.is_empty() {
            extra.push(format!("methods {}", r.spec.methods.join(",")));
        }
        if !r.spec.paths.is_empty() {
            extra.push(format!("paths {}", r.spec.paths.join(",")));
        }
        let tls = if r.spec.tls {
            "tls".to_string()
        } else if r.spec.tls_ports.is_empty() {
            "plain".to_string()
        } else {
            let ports: Vec<String> = r.spec.tls_ports.iter().map(u16::to_string).collect();
            format!("tls on {}", ports.join(","))
        };
        println!("  allow {} ({tls}{}{})", r.label, if extra.is_empty() { "" } else { ", " }, extra.join(", "));
    }
    for (name, c) in &l.creds.by_name {
        match c.check().await {
            Ok(()) => println!("credential {name}: available"),
            Err(d) => println!("credential {name}: NOT available: {}", d.detail),
        }
    }
    if let Some(ca) = &l.intercept {
        println!("intercept CA: {}", ca.cert_path.display());
    }
    if let Some(p) = &l.roots_problem {
        println!("upstream TLS: {p}");
    }
    let m = config.limits.maxima();
    println!(
        "memory bound: {} MiB (--max-connections {}, --max-client-connections {}, --max-header-bytes {}, --max-buffered-bytes {}); a container limit below it can be reached",
        m.memory_bound().div_ceil(1024 * 1024),
        m.max_connections,
        m.max_client_connections,
        m.max_header_bytes,
        m.max_buffered_bytes
    );
    Ok(())
}

/// Run the proxy until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<()> {
    let Loaded { rules, creds, admin_token, intercept, tls, roots_problem } = load_all(&config).await?;
    let upstreams = Upstreams::new(tls, roots_problem.clone(), config.limits.connect_timeout);
    let log =
        Logger::start(Box::new(std::io::stderr()), config.log_stall_timeout).context("cannot start the log writer")?;

    let mut bound = Vec::new();
    for l in &config.listen {
        bound.push(bind(l, config.socket_mode).await?);
    }
    let admin_bound = match &config.admin {
        Some(a) => Some(bind(a, 0o600).await?),
        None => None,
    };
    let mut own_ports = Vec::new();
    let mut names = Vec::new();
    for b in bound.iter().chain(admin_bound.iter()) {
        match b {
            Bound::Tcp(l) => {
                let a = l.local_addr()?;
                own_ports.push(a.port());
                names.push(a.to_string());
            }
            Bound::Unix(_, p) => names.push(format!("unix:{}", p.display())),
        }
    }
    let client_names = names[..bound.len()].to_vec();
    let admin_name = names.get(bound.len()).cloned();
    let proxy =
        Arc::new(Proxy::new(config, rules, creds, upstreams, log, intercept, own_ports, local_ips(), admin_token));
    let mut sockets = Vec::new();
    let mut shared = Vec::new();
    for b in bound {
        match b {
            Bound::Tcp(l) => shared.push(Shared::Tcp(l.into_std()?)),
            Bound::Unix(l, p) => {
                sockets.push(p.clone());
                shared.push(Shared::Unix(l.into_std()?));
            }
        }
    }
    start_workers(&proxy, &shared)?;
    if let Some(b) = admin_bound {
        if let Bound::Unix(_, p) = &b {
            sockets.push(p.clone());
        }
        tokio::spawn(accept_loop(proxy.clone(), b, true, usize::MAX));
    }
    {
        let rs = proxy.rules.load();
        proxy.log.event(
            "started",
            serde_json::json!({
                "listen": client_names,
                "admin": admin_name,
                "rules": rs.rules.len(),
                "rules_from": rs.source,
                "intercept_ca": proxy.intercept.as_ref().map(|c| c.cert_path.display().to_string()),
                "intercept_ca_expires": proxy.intercept.as_ref().map(|c| {
                    let t = time::OffsetDateTime::from(c.expires());
                    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
                }),
                "dns": proxy.resolver.dns_problem.clone().unwrap_or_else(|| "ok".into()),
                "upstream_roots": roots_problem.unwrap_or_else(|| "ok".into()),
            }),
        );
    }
    {
        let rs = proxy.rules.load();
        proxy.warn_uncovered(&rs, "start");
    }
    if let Some(ca) = &proxy.intercept {
        let soon = std::time::SystemTime::now() + Duration::from_secs(30 * 86_400);
        if ca.expires() < soon {
            proxy.log.event(
                "intercept_ca_expiring",
                serde_json::json!({"ca": ca.cert_path.display().to_string(), "fix": "move --intercept-ca-dir away to make a new CA before it expires, and give the sandboxes the new ca.crt"}),
            );
        }
    }
    tokio::spawn(housekeeping(proxy.clone()));
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => match reload(&proxy).await {
                Ok(n) => proxy.log.event("rules_applied", serde_json::json!({"source": "SIGHUP", "rules": n})),
                Err(e) => {
                    proxy.metrics.reload_failures.inc();
                    proxy.log.event("rules_rejected", serde_json::json!({"source": "SIGHUP", "errors": e}));
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    for p in sockets {
        let _ = std::fs::remove_file(p);
    }
    proxy.log.event("stopped", serde_json::json!({}));
    // Give the log writer a moment to drain.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

/// A client listener, shared by every worker thread.
enum Shared {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// Start the worker threads. Each runs a single-threaded tokio runtime and accepts from every
/// client listener (the kernel hands each new connection to one of them). A connection, the
/// upstream connections it opens and its tunnel then live on that thread: no task hops between
/// threads on the request path, which is what keeps the added latency down.
fn start_workers(proxy: &Arc<Proxy>, shared: &[Shared]) -> Result<()> {
    let n = match proxy.config.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    for i in 0..n {
        let mut mine = Vec::new();
        for l in shared {
            mine.push(match l {
                Shared::Tcp(l) => Shared::Tcp(l.try_clone()?),
                Shared::Unix(l) => Shared::Unix(l.try_clone()?),
            });
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a worker runtime")?;
        let proxy = proxy.clone();
        std::thread::Builder::new()
            .name(format!("semble-proxy-{i}"))
            .spawn(move || {
                crate::pool::set_worker(i);
                rt.block_on(async move {
                    for (index, l) in mine.into_iter().enumerate() {
                        let bound = match l {
                            Shared::Tcp(l) => TcpListener::from_std(l).map(Bound::Tcp),
                            Shared::Unix(l) => UnixListener::from_std(l).map(|l| Bound::Unix(l, Default::default())),
                        };
                        match bound {
                            Ok(b) => drop(tokio::spawn(accept_loop(proxy.clone(), b, false, index))),
                            Err(e) => proxy.log.event("accept_failed", serde_json::json!({"error": e.to_string()})),
                        }
                    }
                    std::future::pending::<()>().await
                })
            })
            .context("cannot start a worker thread")?;
    }
    Ok(())
}

/// Accept from one listener (`index`: its place among the client listeners; a Unix listener is
/// one sandbox, one client for its budgets).
async fn accept_loop(proxy: Arc<Proxy>, bound: Bound, admin: bool, index: usize) {
    loop {
        let accepted = match &bound {
            Bound::Tcp(l) => l.accept().await.map(|(s, peer)| {
                let _ = s.set_nodelay(true);
                (ClientIo::Tcp(s), peer.to_string(), ClientKey::Ip(peer.ip()))
            }),
            Bound::Unix(l, _) => {
                l.accept().await.map(|(s, _)| (ClientIo::Unix(s), "unix".to_string(), ClientKey::Unix(index)))
            }
        };
        match accepted {
            Ok((io, client, key)) => {
                if admin {
                    tokio::spawn(serve_admin(proxy.clone(), io, client));
                } else {
                    tokio::spawn(crate::conn::serve(proxy.clone(), io, client, key));
                }
            }
            Err(e) => {
                // Out of descriptors: back off instead of spinning; connections waiting in the
                // backlog are taken when some close.
                proxy.log.event("accept_failed", serde_json::json!({"error": e.to_string()}));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_admin(proxy: Arc<Proxy>, io: ClientIo, client: String) {
    let p = proxy.clone();
    let svc = service_fn(move |req| admin::handle(p.clone(), client.clone(), req));
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
    let _ = b.serve_connection(TokioIo::new(io), svc).await;
}

/// Drop stale pooled connections; give memory back after many connections closed.
async fn housekeeping(proxy: Arc<Proxy>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        proxy.upstreams.sweep();
        let now = proxy.connections.load(Ordering::Relaxed);
        // The peak is recorded at accept time, so a burst that opened and closed between two
        // ticks still counts.
        let peak = proxy.peak_connections.swap(now, Ordering::Relaxed);
        if peak >= now + 256 && now < peak / 2 {
            crate::sys::trim_heap();
        }
    }
}
