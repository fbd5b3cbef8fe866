//! Decision logs: one JSON object per line on standard error, one line per decision.
//!
//! Lines are handed to a writer thread through a bounded queue and written in batches, so a
//! request never waits on a `write(2)` to a slow terminal or log pipe. When the queue is full
//! the line is dropped and counted, never waited for (see [`Logger`]): a stalled log pipe must
//! not freeze the data path. The writer wakes at most every 2 ms, so under load a request does
//! not pay for waking it.
//!
//! Fields: `ts`, `client`, `mode` (`http`, `connect`, `intercept`, `admin`), `method`,
//! `target` (`host:port`), `path` (without the query string, which may carry secrets),
//! `decision` (`allow`, `deny`, `error`), `status`, `rule`, `reason`, `detail`, `upstream`,
//! `credential` (its name, never its value), `bytes_up`, `bytes_down`, `duration_ms`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;

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
///
/// A request never waits for its log line: lines go into a bounded queue, and when the queue is
/// full (standard error is not being read: a stalled log pipe, a stopped collector) the line is
/// dropped and counted instead — `semble_proxy_log_lines_dropped_total`, and one
/// `log_lines_dropped` event with the count once the writer moves again. A writer blocked in
/// `write(2)` for longer than the stall limit makes [`Logger::health`] fail, so `/healthz` says the
/// pipeline is stuck rather than `ok`.
#[derive(Debug, Clone)]
pub struct Logger {
    tx: SyncSender<Vec<u8>>,
    state: Arc<WriterState>,
    /// Lines dropped because the queue was full.
    pub dropped: Counter,
}

/// What the writer thread is doing, for [`Logger::health`].
#[derive(Debug)]
struct WriterState {
    start: Instant,
    /// Milliseconds since `start` at which the current write began, plus one; 0 when idle.
    writing_since: AtomicU64,
    stall: Duration,
}

/// Lines the queue holds before new ones are dropped.
pub const QUEUE_LINES: usize = 16 * 1024;

impl Logger {
    /// Start the writer thread, writing to `out`; a write blocked longer than `stall` makes
    /// the log unhealthy.
    pub fn start(out: Box<dyn Write + Send>, stall: Duration) -> std::io::Result<Logger> {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE_LINES);
        let state = Arc::new(WriterState { start: Instant::now(), writing_since: AtomicU64::new(0), stall });
        let dropped = Counter::default();
        let (st, dr) = (state.clone(), dropped.clone());
        std::thread::Builder::new().name("semble-proxy-log".into()).spawn(move || writer(rx, out, &st, &dr))?;
        Ok(Logger { tx, state, dropped })
    }

    fn send(&self, bytes: Vec<u8>) {
        match self.tx.try_send(bytes) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.inc();
            }
        }
    }

    /// Log one decision (dropped and counted when the queue is full; never waits).
    pub fn log(&self, line: &Line) {
        if let Ok(mut bytes) = serde_json::to_vec(line) {
            bytes.push(b'\n');
            self.send(bytes);
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
            self.send(bytes);
        }
    }

    /// `Err` while the writer has been blocked in a write for longer than the stall limit.
    pub fn health(&self) -> Result<(), String> {
        let since = self.state.writing_since.load(Ordering::Relaxed);
        if since == 0 {
            return Ok(());
        }
        let now = ms(&self.state.start);
        let blocked = Duration::from_millis(now.saturating_sub(since - 1));
        if blocked < self.state.stall {
            return Ok(());
        }
        Err(format!(
            "the decision log has been blocked writing to standard error for {} s (nothing reads it); {} line(s) dropped so far",
            blocked.as_secs(),
            self.dropped.get()
        ))
    }
}

fn ms(start: &Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn writer(rx: Receiver<Vec<u8>>, out: Box<dyn Write + Send>, state: &WriterState, dropped: &Counter) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut reported = 0u64;
    let write = |out: &mut std::io::BufWriter<Box<dyn Write + Send>>, bytes: &[u8]| {
        state.writing_since.store(ms(&state.start) + 1, Ordering::Relaxed);
        let _ = out.write_all(bytes);
    };
    while let Ok(first) = rx.recv() {
        write(&mut out, &first);
        while let Ok(more) = rx.try_recv() {
            write(&mut out, &more);
        }
        let _ = out.flush();
        state.writing_since.store(0, Ordering::Relaxed);
        let lost = dropped.get();
        if lost > reported {
            let line = serde_json::json!({"ts": now_rfc3339(), "event": "log_lines_dropped", "dropped": lost - reported, "total": lost});
            if let Ok(mut bytes) = serde_json::to_vec(&line) {
                bytes.push(b'\n');
                write(&mut out, &bytes);
                let _ = out.flush();
                state.writing_since.store(0, Ordering::Relaxed);
            }
            reported = lost;
        }
        // Let lines gather before the next batch: under load, senders then find no waiting
        // reader to wake, and a request costs no futex call and no thread switch for its log line.
        std::thread::sleep(COALESCE);
    }
}

/// How long the writer lets lines gather between batches (lines wait at most this long).
const COALESCE: Duration = Duration::from_millis(2);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A writer that blocks while `gate` is held, like a pipe nobody reads.
    struct Gated(Arc<Mutex<()>>, Arc<Mutex<Vec<u8>>>);

    impl Write for Gated {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let _open = self.0.lock().unwrap();
            self.1.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_writer_drops_and_counts_and_never_blocks_the_sender() {
        let gate = Arc::new(Mutex::new(()));
        let out = Arc::new(Mutex::new(Vec::new()));
        let held = gate.lock().unwrap();
        let log = Logger::start(Box::new(Gated(gate.clone(), out.clone())), Duration::from_millis(200)).unwrap();
        let t = Instant::now();
        // The first line fills the writer's buffer only when flushed; enough lines to fill
        // BufWriter (64 KiB) and the queue behind it.
        for _ in 0..(QUEUE_LINES + 5000) {
            log.log(&Line::new("c", "http"));
        }
        assert!(t.elapsed() < Duration::from_secs(5), "logging blocked the sender for {:?}", t.elapsed());
        assert!(log.dropped.get() > 0, "nothing was dropped");
        std::thread::sleep(Duration::from_millis(400));
        let e = log.health().unwrap_err();
        assert!(e.contains("blocked") && e.contains("dropped"), "{e}");
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(5);
        while log.health().is_err() || !String::from_utf8_lossy(&out.lock().unwrap()).contains("log_lines_dropped") {
            assert!(Instant::now() < deadline, "the writer did not recover");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
