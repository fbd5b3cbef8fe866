//! What every connection and request shares: the settings, the rules and credentials in force,
//! the resolver, the upstream pool, metrics and the decision log.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use http::{Response, StatusCode};
use hyper_util::rt::TokioTimer;

use crate::body::full;
use crate::budget::{Budgets, ClientKey, ConnSlot};
use crate::config::Config;
use crate::creds::{Credentials, Secret};
use crate::deny::{Deny, Reason};
use crate::host::printable;
use crate::intercept::InterceptCa;
use crate::log::{Line, Logger};
use crate::metrics::Metrics;
use crate::pool::{Body, Upstreams};
use crate::resolve::Resolver;
use crate::rules::RuleSet;
use crate::sniff::Notes;
use crate::sys::PipePool;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct Proxy {
    /// The settings.
    pub config: Config,
    /// The rules in force (swapped whole by the admin API and SIGHUP).
    pub rules: ArcSwap<RuleSet>,
    /// The credentials (swapped whole on SIGHUP).
    pub creds: ArcSwap<Credentials>,
    /// Name resolution.
    pub resolver: Resolver,
    /// Upstream connections.
    pub upstreams: Arc<Upstreams>,
    /// Metrics.
    pub metrics: Metrics,
    /// Decision log.
    pub log: Logger,
    /// The intercept CA, when configured.
    pub intercept: Option<InterceptCa>,
    /// Ports the proxy itself listens on (client and admin).
    pub own_ports: Vec<u16>,
    /// This machine's addresses (a target there on an own port is the proxy itself).
    pub local_ips: Vec<IpAddr>,
    /// Relay pipes.
    pub pipes: PipePool,
    /// Open client connections and tunnels.
    pub connections: AtomicUsize,
    /// The most connections open at once since housekeeping last looked.
    pub peak_connections: AtomicUsize,
    /// The admin bearer token.
    pub admin_token: Option<Secret>,
    /// How client connections (and intercepted sessions) are served.
    pub http1: hyper::server::conn::http1::Builder,
    /// What each client may hold.
    pub budgets: Arc<Budgets>,
}

/// The response to a refusal: the status, the reason code in `x-semble-reason`, and one line
/// saying what and why.
pub fn deny_response(d: &Deny, close: bool) -> Response<Body> {
    let mut r = Response::new(full(format!("semble-proxy: {}\n", d.detail)));
    *r.status_mut() = StatusCode::from_u16(d.status()).unwrap_or(StatusCode::FORBIDDEN);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert("x-semble-reason", HeaderValue::from_static(d.reason.code()));
    if close {
        r.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

impl Proxy {
    /// Assemble the state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        rules: RuleSet,
        creds: Credentials,
        upstreams: Arc<Upstreams>,
        log: Logger,
        intercept: Option<InterceptCa>,
        own_ports: Vec<u16>,
        local_ips: Vec<IpAddr>,
        admin_token: Option<Secret>,
    ) -> Proxy {
        let mut resolver = Resolver::new(&config.resolve, &config.nameservers);
        if let Some(h) = &config.hosts_file {
            resolver = resolver.with_hosts_file(h.clone());
        }
        let mut metrics = Metrics::new();
        metrics.register_log_drops(log.dropped.clone());
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(config.limits.header_timeout)
            .max_headers(config.limits.max_headers)
            .max_header_size(config.limits.max_header_bytes)
            .max_buf_size(config.limits.max_header_bytes.max(8192) + 8192)
            .keep_alive(true);
        Proxy {
            rules: ArcSwap::from_pointee(rules),
            creds: ArcSwap::from_pointee(creds),
            resolver,
            upstreams,
            metrics,
            log,
            intercept,
            own_ports,
            local_ips,
            pipes: PipePool::default(),
            connections: AtomicUsize::new(0),
            peak_connections: AtomicUsize::new(0),
            admin_token,
            http1,
            budgets: Budgets::new(
                u64::try_from(config.limits.max_client_connections).unwrap_or(u64::MAX),
                u64::try_from(config.limits.max_client_buffered_bytes).unwrap_or(u64::MAX),
                u64::try_from(config.limits.max_buffered_bytes).unwrap_or(u64::MAX),
            ),
            config,
        }
    }

    /// Write a decision's log line and count it.
    pub fn finish(&self, line: &Line) {
        self.log.log(line);
        let rule = (!line.rule.is_empty()).then_some(line.rule.as_str());
        self.metrics.decision(line.decision, rule, line.reason);
    }

    /// Log and count a refusal, and answer it.
    pub fn refuse(&self, mut line: Line, d: Deny, start: Instant, close: bool) -> Response<Body> {
        line.refusal(&d);
        line.took(start);
        self.finish(&line);
        deny_response(&d, close)
    }

    /// Warn (a log event) about rules the intercept CA's name constraints do not cover: their
    /// intercepted tunnels fail until the CA is re-created.
    pub fn warn_uncovered(&self, rules: &RuleSet, source: &str) {
        if let Some(ca) = &self.intercept {
            let hosts: Vec<_> = rules.rules.iter().map(|r| r.spec.host.clone()).collect();
            let uncovered = ca.uncovered(&hosts);
            if !uncovered.is_empty() {
                self.log.event(
                    "intercept_ca_uncovered",
                    serde_json::json!({"source": source, "hosts": uncovered, "fix": "move --intercept-ca-dir away to make a CA for the current rules, and give the sandboxes the new ca.crt"}),
                );
            }
        }
    }

    /// Log what hyper refused before a request reached a handler.
    pub fn connection_error(&self, client: &str, mode: &'static str, e: &hyper::Error) {
        let reason = if e.is_parse_too_large() {
            Reason::HeaderTooLarge
        } else if e.is_parse() || e.is_parse_status() {
            Reason::Malformed
        } else if e.is_timeout() {
            Reason::HeaderTimeout
        } else {
            return;
        };
        let mut line = Line::new(client, mode);
        line.refusal(&Deny::new(reason, printable(&e.to_string())));
        self.finish(&line);
    }
}

/// A client connection (and the tunnel it may become). Dropping it releases its slot.
#[derive(Debug)]
pub struct ConnInfo {
    /// The client's address (`unix` for Unix sockets).
    pub client: String,
    /// Who the client is, for its budgets.
    pub key: ClientKey,
    /// Framing notes of its requests.
    pub notes: Notes,
    _slot: ConnSlot,
    proxy: Arc<Proxy>,
}

impl ConnInfo {
    /// A connection from `client` holding `slot` (its share of the client's budget) and a slot
    /// of `--max-connections` (released when this is dropped).
    pub fn new(client: String, key: ClientKey, slot: ConnSlot, notes: Notes, proxy: Arc<Proxy>) -> ConnInfo {
        ConnInfo { client, key, notes, _slot: slot, proxy }
    }
}

impl Drop for ConnInfo {
    fn drop(&mut self) {
        self.proxy.connections.fetch_sub(1, Ordering::Relaxed);
        self.proxy.metrics.active_connections.dec();
    }
}
