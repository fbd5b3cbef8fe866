//! Diagnostics: what went wrong, where, and how to fix it.
//!
//! Every message follows the house style: lowercase, no final period, user input in backticks,
//! then a fix. A diagnostic renders on exactly one line:
//!
//! ```text
//! examples/bad.yaml:7:5: error: unknown field `readOnlyRootFilesytem` in `spec.process`; did you mean `readOnlyRootFilesystem`?
//! ```

use std::fmt;

/// A position in a source file: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl Pos {
    /// A position from 1-based line and column.
    pub const fn new(line: u32, column: u32) -> Self {
        Pos { line, column }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is wrong.
    Note,
    /// The policy is valid but probably not what was meant.
    Warning,
    /// The policy is rejected.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding about a policy document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error, warning or note.
    pub severity: Severity,
    /// Where in the source; `None` when the finding is about the document as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos: Option<Pos>,
    /// The field path, e.g. `spec.process.user` or `spec.network.egress[0].host`.
    pub path: String,
    /// What is wrong (lowercase, no final period).
    pub message: String,
    /// How to fix it, when there is something to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// Render on one line, prefixed by `file` when given.
    pub fn render(&self, file: Option<&str>) -> String {
        let mut out = String::new();
        if let Some(file) = file {
            out.push_str(file);
            out.push(':');
        }
        if let Some(pos) = self.pos {
            out.push_str(&format!("{}:{}:", pos.line, pos.column));
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("{}: {}", self.severity, self.message));
        if let Some(help) = &self.help {
            out.push_str("; ");
            out.push_str(help);
        }
        // One line, whatever the user put in the document.
        out.replace(['\n', '\r'], " ")
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(None))
    }
}

/// A collector: every check adds to it, so a document reports all of its problems at once.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record an error.
    pub fn error(&mut self, pos: Option<Pos>, path: &str, message: impl Into<String>, help: Option<String>) {
        self.push(Severity::Error, pos, path, message, help);
    }

    /// Record a warning.
    pub fn warning(&mut self, pos: Option<Pos>, path: &str, message: impl Into<String>, help: Option<String>) {
        self.push(Severity::Warning, pos, path, message, help);
    }

    /// Record a diagnostic of any severity.
    pub fn push(
        &mut self,
        severity: Severity,
        pos: Option<Pos>,
        path: &str,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.items.push(Diagnostic { severity, pos, path: path.to_string(), message: message.into(), help });
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// All diagnostics in source order (then by severity, errors first).
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            let ka = (a.pos.is_none(), a.pos, std::cmp::Reverse(a.severity));
            let kb = (b.pos.is_none(), b.pos, std::cmp::Reverse(b.severity));
            ka.cmp(&kb)
        });
        self.items.dedup();
        self.items
    }
}

/// The closest candidate to `input`, for "did you mean …?" help; `None` when nothing is close.
pub fn suggest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let score = strsim::jaro_winkler(&lower, &c.to_ascii_lowercase());
            (score, c)
        })
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `did you mean `x`?` for the closest candidate, if any.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    suggest(input, candidates).map(|s| format!("did you mean `{s}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_on_one_line_with_location_and_help() {
        let d = Diagnostic {
            severity: Severity::Error,
            pos: Some(Pos::new(7, 5)),
            path: "spec.process".into(),
            message: "unknown field `a\nb`".into(),
            help: Some("remove it".into()),
        };
        assert_eq!(d.render(Some("p.yaml")), "p.yaml:7:5: error: unknown field `a b`; remove it");
    }

    #[test]
    fn suggestions_are_close_or_absent() {
        let fields = ["readOnlyRootFilesystem", "noNewPrivileges", "user"];
        assert_eq!(suggest("readOnlyRootFilesytem", fields), Some("readOnlyRootFilesystem"));
        assert_eq!(suggest("usr", fields), Some("user"));
        assert_eq!(suggest("zzzzzz", fields), None);
    }

    #[test]
    fn sorted_by_position_then_severity() {
        let mut d = Diagnostics::new();
        d.warning(Some(Pos::new(3, 1)), "b", "w", None);
        d.error(Some(Pos::new(1, 1)), "a", "e", None);
        d.error(None, "", "whole", None);
        let v = d.into_sorted();
        assert_eq!(v[0].message, "e");
        assert_eq!(v[1].message, "w");
        assert_eq!(v[2].message, "whole");
    }
}
