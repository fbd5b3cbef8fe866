//! A deterministic YAML writer for JSON values (block style, keys in the order given).
//!
//! Strings are written plain only when they are unambiguous (letters, digits and a few
//! punctuation marks, not a number, boolean or null in any YAML version); everything else is
//! written as a JSON string, which is a valid YAML double-quoted scalar. So what `kubectl` or any
//! YAML 1.1/1.2 reader reads back is exactly the value here.

use serde_json::Value;

/// One document: leading comment lines, then the object.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Comment lines (without `# `).
    pub comments: Vec<String>,
    /// The object.
    pub value: Value,
}

/// Write documents as one multi-document YAML stream.
pub fn stream(docs: &[Doc]) -> String {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        for c in &d.comments {
            if c.is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str("# ");
                out.push_str(c);
                out.push('\n');
            }
        }
        node(&mut out, &d.value, 0);
    }
    out
}

fn node(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                pad(out, indent);
                out.push_str(&scalar_str(k));
                out.push(':');
                value_after_key(out, val, indent);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                pad(out, indent);
                out.push('-');
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // The first key goes on the dash line.
                        let mut first = true;
                        for (k, val) in m {
                            if first {
                                out.push(' ');
                                first = false;
                            } else {
                                pad(out, indent + 2);
                            }
                            out.push_str(&scalar_str(k));
                            out.push(':');
                            value_after_key(out, val, indent + 2);
                        }
                    }
                    Value::Array(inner) if !inner.is_empty() => {
                        out.push('\n');
                        node(out, item, indent + 2);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&scalar(item));
                        out.push('\n');
                    }
                }
            }
        }
        _ => {
            pad(out, indent);
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

fn value_after_key(out: &mut String, val: &Value, indent: usize) {
    match val {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            node(out, val, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            // Sequences under a key are indented like kubectl writes them.
            node(out, val, indent + 2);
        }
        Value::String(s) if s.contains('\n') && !s.trim_end_matches('\n').contains("\n\n\n") => {
            block_literal(out, s, indent + 2);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(val));
            out.push('\n');
        }
    }
}

/// A multi-line string as a literal block (`|`, `|-` or `|+` for its trailing newlines).
fn block_literal(out: &mut String, s: &str, indent: usize) {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let lead_space = body.starts_with(' ') || body.starts_with('\t');
    // Lines with trailing spaces or tabs, or a leading space on the first line, would need an
    // indentation indicator: use the quoted form instead.
    if lead_space || body.lines().any(|l| l.ends_with(' ') || l.contains('\t')) || body.contains('\r') {
        out.push(' ');
        out.push_str(&quoted(s));
        out.push('\n');
        return;
    }
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    out.push_str(" |");
    out.push_str(chomp);
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..trailing {
        out.push('\n');
    }
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_str(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A string, plain when that cannot be read back as anything else.
fn scalar_str(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        quoted(s)
    }
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !(first.is_ascii_alphanumeric() || first == '/' || first == '_') {
        return false;
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./@+".contains(c)) || s.ends_with('.') {
        return false;
    }
    // Anything a YAML 1.1 or 1.2 reader could take for a boolean, null or number.
    const WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"];
    if WORDS.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    // Hex (0x1F), octal (0o17), exponents (1e3), YAML 1.1's underscores (1_000).
    let digits_or_signs = s.chars().all(|c| c.is_ascii_hexdigit() || "+-._xXoO".contains(c));
    let starts_numeric = first.is_ascii_digit() || first == '+' || first == '.';
    !(digits_or_signs && starts_numeric)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in
            ["8080", "1e3", "0x1F", "yes", "No", "ON", "null", "", "1.5", "*.example.com", "a: b", "-x", "0o17", "a."]
        {
            assert!(scalar_str(s).starts_with('"'), "{s:?} must be quoted");
        }
        for s in ["semble-proxy", "kubernetes.io/metadata.name", "/workspace", "v1", "s0", "10.0.0.0/8", "IfNotPresent"]
        {
            assert_eq!(scalar_str(s), s);
        }
    }

    #[test]
    fn writes_block_yaml() {
        let d = Doc {
            comments: vec!["a note".into()],
            value: json!({"kind": "X", "spec": {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}], "empty": [], "list": ["a", "b"],
                "nested": [["x"]], "text": "line 1\nline 2\n"}}),
        };
        let want = "---\n# a note\nkind: X\nspec:\n  ports:\n    - port: 53\n      protocol: UDP\n    - port: 53\n  empty: []\n  list:\n    - a\n    - b\n  nested:\n    -\n      - x\n  text: |\n    line 1\n    line 2\n";
        assert_eq!(stream(&[d]), want);
    }
}
