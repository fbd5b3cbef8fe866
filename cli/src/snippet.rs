//! A diagnostic's source line with a caret under the offending text (`validate
//! --show-source`), rendered by `annotate-snippets`, the renderer rustc uses. The one-line form
//! stays the default: scripts and CI read one line per problem.

use annotate_snippets::{Level, Renderer, Snippet};
use semble_policy::diag::{Diagnostic, Severity};

/// The byte range a diagnostic's position points at in `source`: from its (1-based, character)
/// column to the end of the word there, at least one character.
pub fn span(source: &str, line: u32, column: u32) -> Option<std::ops::Range<usize>> {
    let before = line.checked_sub(1)? as usize;
    if source.split_inclusive('\n').count() <= before {
        return None;
    }
    let start_of_line: usize = source.split_inclusive('\n').take(before).map(str::len).sum();
    let text = source.get(start_of_line..)?.split('\n').next()?;
    let col = column.checked_sub(1)? as usize;
    let (offset, _) =
        text.char_indices().nth(col).or_else(|| (col == text.chars().count()).then_some((text.len(), ' ')))?;
    let rest = &text[offset..];
    let stop = |c: char| c.is_whitespace() || ",:{}[]\"'#".contains(c);
    let len = rest.char_indices().find(|(_, c)| stop(*c)).map(|(i, _)| i).unwrap_or(rest.len());
    let len = if len == 0 { rest.chars().next().map(char::len_utf8).unwrap_or(0) } else { len };
    Some(start_of_line + offset..start_of_line + offset + len)
}

/// The diagnostic rendered with its source line, or `None` when it has no position in `source`.
pub fn render(file: &str, source: &str, d: &Diagnostic) -> Option<String> {
    let pos = d.pos?;
    let range = span(source, pos.line, pos.column)?;
    let level = match d.severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warning,
        Severity::Note => Level::Note,
    };
    let label = d.help.as_deref().unwrap_or("");
    let message = level.title(&d.message).snippet(
        Snippet::source(source).line_start(1).origin(file).fold(true).annotation(level.span(range).label(label)),
    );
    Some(Renderer::plain().render(message).to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_caret_sits_under_the_word_the_position_names() {
        let src = "spec:\n  network:\n    egress: [{host: api.example.com, prots: [443]}]\n";
        let e = semble_policy::parse(&format!(
            "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: x}}\n{src}"
        ))
        .unwrap_err();
        let d = e.diagnostics.iter().find(|d| d.message.contains("prots")).unwrap();
        let full = format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: x}}\n{src}");
        let out = render("p.yaml", &full, d).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        let code = lines.iter().position(|l| l.contains("prots: [443]")).unwrap();
        let caret = lines[code + 1];
        let at = lines[code].find("prots").unwrap();
        assert_eq!(caret.find('^'), Some(at), "{out}");
        assert_eq!(caret.matches('^').count(), "prots".len(), "{out}");
        assert!(out.contains("p.yaml:6:38") && out.contains("did you mean `ports`?"), "{out}");
    }

    #[test]
    fn spans_count_characters_and_stay_inside_the_source() {
        assert_eq!(span("a: ä bc\n", 1, 6), Some(6..8));
        assert_eq!(span("x\n", 1, 2), Some(1..1));
        assert_eq!(span("x\n", 3, 1), None);
        assert_eq!(span("x", 1, 0), None);
    }
}
