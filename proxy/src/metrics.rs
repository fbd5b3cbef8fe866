//! Prometheus metrics (`GET /metrics` on the admin listener), with `prometheus-client`, the
//! Prometheus project's own Rust client.
//!
//! Label values are bounded by the rules, never by what clients send: an allowed request is
//! labelled with its rule (`bedrock-runtime.us-east-1.amazonaws.com:443`), a refused one with
//! `-`, so a workload probing a million names cannot grow the metric set.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of `semble_proxy_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `allow`, `deny` or `error`.
    pub decision: &'static str,
    /// The rule's label, or `-`.
    pub rule: String,
    /// The reason code (`ok` for allowed requests).
    pub reason: &'static str,
}

/// Labels of `semble_proxy_bytes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// `upstream` (client to upstream) or `downstream`.
    pub direction: &'static str,
}

/// Every metric of the proxy.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests (and tunnels) by decision, rule and reason.
    pub requests: Family<RequestLabels, Counter>,
    /// Bytes relayed.
    pub bytes: Family<DirectionLabels, Counter>,
    /// Open `CONNECT` tunnels.
    pub active_tunnels: Gauge,
    /// Open client connections.
    pub active_connections: Gauge,
    /// Time from sending a request upstream to its response head.
    pub upstream_latency: Histogram,
    /// Failed name lookups.
    pub dns_failures: Counter,
    /// Rule reloads that failed (the old rules stayed).
    pub reload_failures: Counter,
}

impl Metrics {
    /// Register the decision log's dropped-lines counter (it lives with the log writer).
    pub fn register_log_drops(&mut self, dropped: Counter) {
        self.registry.register(
            "log_lines_dropped",
            "Decision log lines dropped because standard error was not being read fast enough",
            dropped,
        );
    }
}

impl Metrics {
    /// Register every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("semble_proxy");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests and tunnels by decision, rule and reason", requests.clone());
        let bytes = Family::<DirectionLabels, Counter>::default();
        registry.register("bytes", "Bytes relayed, by direction", bytes.clone());
        let active_tunnels = Gauge::default();
        registry.register("active_tunnels", "Open CONNECT tunnels", active_tunnels.clone());
        let active_connections = Gauge::default();
        registry.register("active_connections", "Open client connections", active_connections.clone());
        let upstream_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "upstream_latency_seconds",
            "Time from sending a request upstream to its response head",
            upstream_latency.clone(),
        );
        let dns_failures = Counter::default();
        registry.register("dns_failures", "Failed name lookups", dns_failures.clone());
        let reload_failures = Counter::default();
        registry.register(
            "rule_reload_failures",
            "Rule updates refused (the previous rules stayed)",
            reload_failures.clone(),
        );
        Metrics {
            registry,
            requests,
            bytes,
            active_tunnels,
            active_connections,
            upstream_latency,
            dns_failures,
            reload_failures,
        }
    }

    /// Count one decision.
    pub fn decision(&self, decision: &'static str, rule: Option<&str>, reason: &'static str) {
        let rule = rule.unwrap_or("-").to_string();
        self.requests.get_or_create(&RequestLabels { decision, rule, reason }).inc();
    }

    /// Count relayed bytes.
    pub fn relayed(&self, up: u64, down: u64) {
        if up > 0 {
            self.bytes.get_or_create(&DirectionLabels { direction: "upstream" }).inc_by(up);
        }
        if down > 0 {
            self.bytes.get_or_create(&DirectionLabels { direction: "downstream" }).inc_by(down);
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
