//! Log lines in runc's format, so tools that read runc logs read ours.
//!
//! runc writes `{"level":"error","msg":"…","time":"…"}` (JSON) or
//! `time="…" level=error msg="…"` (text) to `--log`; containerd reads the last error line of a
//! JSON log when a create fails and shows its `msg`. semble adds fields (`container`, `policy`,
//! `backend`, `enforced`) that readers ignore.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};

use crate::cli::LogFormat;

/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Debug details (with `--debug`).
    Debug,
    /// Normal operation.
    Info,
    /// Something the operator should know.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

/// Where log lines go.
#[derive(Debug, Clone)]
pub struct Logger {
    file: Option<PathBuf>,
    format: LogFormat,
    debug: bool,
    context: Map<String, Value>,
    started: Instant,
}

impl Logger {
    /// A logger writing to `file` (or stderr).
    pub fn new(file: Option<PathBuf>, format: LogFormat, debug: bool) -> Self {
        Logger { file, format, debug, context: Map::new(), started: Instant::now() }
    }

    /// Add a field to every following line (container id, policy, backend).
    pub fn with(&mut self, key: &str, value: impl Into<Value>) {
        self.context.insert(key.to_string(), value.into());
    }

    /// Whether lines go to a file (as opposed to stderr).
    pub fn to_file(&self) -> bool {
        self.file.is_some()
    }

    /// Write one line.
    pub fn log(&self, level: Level, msg: &str, extra: &[(&str, Value)]) {
        // On stderr (no --log), runc only says what needs attention; so do we.
        let threshold = if self.debug {
            Level::Debug
        } else if self.file.is_some() {
            Level::Info
        } else {
            Level::Warn
        };
        if level < threshold {
            return;
        }
        let time = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
        let line = match self.format {
            LogFormat::Json => {
                let mut m = Map::new();
                m.insert("level".into(), level.as_str().into());
                m.insert("msg".into(), msg.into());
                m.insert("time".into(), time.into());
                for (k, v) in &self.context {
                    m.insert(k.clone(), v.clone());
                }
                for (k, v) in extra {
                    m.insert((*k).to_string(), v.clone());
                }
                Value::Object(m).to_string()
            }
            LogFormat::Text => {
                let mut s = format!("time=\"{time}\" level={} msg={}", level.as_str(), quote(msg));
                for (k, v) in
                    self.context.iter().map(|(k, v)| (k.as_str(), v)).chain(extra.iter().map(|(k, v)| (*k, v)))
                {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Array(items) if items.iter().all(|i| i.get("control").is_some()) => items
                            .iter()
                            .map(|i| {
                                format!(
                                    "{}: {}",
                                    i["control"].as_str().unwrap_or(""),
                                    i["detail"].as_str().unwrap_or("")
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                        other => other.to_string(),
                    };
                    s.push_str(&format!(" {k}={}", quote(&v)));
                }
                s
            }
        };
        match &self.file {
            Some(path) => {
                if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
                    let _ = writeln!(f, "{line}");
                }
            }
            None => eprintln!("{line}"),
        }
    }

    /// Info line.
    pub fn info(&self, msg: &str, extra: &[(&str, Value)]) {
        self.log(Level::Info, msg, extra);
    }

    /// Warning line.
    pub fn warn(&self, msg: &str, extra: &[(&str, Value)]) {
        self.log(Level::Warn, msg, extra);
    }

    /// Debug line, with the milliseconds since the command started.
    pub fn debug(&self, msg: &str, extra: &[(&str, Value)]) {
        let ms = (self.started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        let mut all = vec![("elapsed_ms", Value::from(ms))];
        all.extend(extra.iter().cloned());
        self.log(Level::Debug, msg, &all);
    }

    /// Error line.
    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg, &[]);
    }
}

fn quote(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    format!("\"{escaped}\"")
}
