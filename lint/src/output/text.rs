//! Text for people: `file:line:column: level RULE message` and the fix on the next line.

use crate::rules::Level;
use crate::Finding;

/// Text: `file:line:column: level RULE message` and the fix.
pub fn render(findings: &[Finding], colour: bool) -> String {
    let mut out = String::new();
    for f in findings {
        let (a, b) = if colour {
            (
                match f.level {
                    Level::Error => "\x1b[31m",
                    Level::Warning => "\x1b[33m",
                    Level::Info => "\x1b[36m",
                },
                "\x1b[0m",
            )
        } else {
            ("", "")
        };
        out.push_str(&format!(
            "{}:{}:{}: {a}{}{b} {} {}\n    fix: {}\n",
            f.file,
            f.line,
            f.column,
            f.level.as_str(),
            f.rule,
            f.message,
            f.fix
        ));
    }
    out
}
