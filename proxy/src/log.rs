//! Decision logs: one JSON object per line on standard error, one line per decision.
//!
//! Lines are handed to a writer thread through a bounded queue and written in batches, so a
//! request never waits on a `write(2)` to a slow terminal or log pipe unless the queue is full
//! (then it waits: a decision is never silently dropped). The writer wakes at most every 2 ms,
//! so under load a request does not pay for waking it.
//!
//! Fields: `ts`, `client`, `mode` (`http`, `connect`, `intercept`, `admin`), `method`,
//! `target` (`host:port`), `path` (without the query string, which may carry secrets),
//! `decision` (`allow`, `deny`, `error`), `status`, `rule`, `reason`, `detail`, `upstream`,
//! `credential` (its name, never its value), `bytes_up`, `bytes_down`, `duration_ms`.

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::{Instant, SystemTime};

use serde::Serialize;

/// One decision.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Line {
    /// RFC 3339 time of the decision.
    pub ts: String,
    /// The client (`127.0.0.1:5000`, or `unix`).
    pub client: String,
    /// `http`, `connect`, `intercept`, `admin`, `conn`.
    pub mode: &'static str,
    /// The method.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// `host:port`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// The path (no query).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// `allow`, `deny`, `error`.
    pub decision: &'static str,
    /// HTTP status sent (or that would have been, for tunnels cut after `200`).
    pub status: u16,
    /// The rule's label.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rule: String,
    /// Reason code.
    pub reason: &'static str,
    /// Human explanation.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The address connected to.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub upstream: String,
    /// The credential's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credential: String,
    /// Bytes client -> upstream (bodies, or tunnel bytes).
    pub bytes_up: u64,
    /// Bytes upstream -> client.
    pub bytes_down: u64,
    /// Time from the request head to the end of the response (or tunnel).
    pub duration_ms: f64,
}

impl Line {
    /// A line stamped now, for `client` and `mode`.
    pub fn new(client: &str, mode: &'static str) -> Line {
        Line { ts: now_rfc3339(), client: client.to_string(), mode, ..Line::default() }
    }

    /// Record a refusal: `deny` for the client's or the policy's doing, `error` for 5xx.
    pub fn refusal(&mut self, d: &crate::deny::Deny) {
        self.decision = if d.status() >= 500 { "error" } else { "deny" };
        self.status = d.status();
        self.reason = d.reason.code();
        self.detail = d.detail.clone();
    }

    /// Set the duration from `start`.
    pub fn took(&mut self, start: Instant) {
        self.duration_ms = (start.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    }
}

fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::from(SystemTime::now());
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The sending side of the log.
#[derive(Debug, Clone)]
pub struct Logger {
    tx: SyncSender<Vec<u8>>,
}

impl Logger {
    /// Start the writer thread, writing to `out`.
    pub fn start(out: Box<dyn Write + Send>) -> std::io::Result<Logger> {
        let (tx, rx) = sync_channel::<Vec<u8>>(16 * 1024);
        std::thread::Builder::new().name("semble-proxy-log".into()).spawn(move || writer(rx, out))?;
        Ok(Logger { tx })
    }

    /// Log one decision.
    pub fn log(&self, line: &Line) {
        if let Ok(mut bytes) = serde_json::to_vec(line) {
            bytes.push(b'\n');
            let _ = self.tx.send(bytes);
        }
    }

    /// Log a free-form event (startup, reload) as JSON with an `event` field.
    pub fn event(&self, event: &str, fields: serde_json::Value) {
        let mut obj = serde_json::json!({"ts": now_rfc3339(), "event": event});
        if let (Some(o), serde_json::Value::Object(f)) = (obj.as_object_mut(), fields) {
            o.extend(f);
        }
        if let Ok(mut bytes) = serde_json::to_vec(&obj) {
            bytes.push(b'\n');
            let _ = self.tx.send(bytes);
        }
    }
}

fn writer(rx: Receiver<Vec<u8>>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(first) = rx.recv() {
        let _ = out.write_all(&first);
        while let Ok(more) = rx.try_recv() {
            let _ = out.write_all(&more);
        }
        let _ = out.flush();
        // Let lines gather before the next batch: under load, senders then find no waiting
        // reader to wake, and a request costs no futex call and no thread switch for its log line.
        std::thread::sleep(COALESCE);
    }
}

/// How long the writer lets lines gather between batches (lines wait at most this long).
const COALESCE: std::time::Duration = std::time::Duration::from_millis(2);
