//! Typed reading of a spanned YAML tree, collecting every problem instead of stopping at the
//! first (the role serde would play, with better errors). Other crates read their own
//! configuration files (the proxy's credentials) with it, so every file semble reads reports
//! problems the same way: `file:line:column: path: message (help)`.

use std::collections::BTreeMap;

use crate::diag::{did_you_mean, Diagnostics, Pos};
use crate::yaml::{Map, Node, Value};

/// Reads nodes into values, recording positions of every field read and every problem found.
#[derive(Debug, Default)]
pub struct Reader {
    /// Every problem found so far.
    pub diags: Diagnostics,
    /// Where each field read was written (`a.b[2].c` -> position of its key).
    pub positions: BTreeMap<String, Pos>,
}

impl Reader {
    /// Record an error at `pos`.
    pub fn error(&mut self, pos: Pos, path: &str, msg: impl Into<String>, help: Option<String>) {
        self.diags.error(Some(pos), path, msg, help);
    }

    /// Record a warning at `pos`.
    pub fn warning(&mut self, pos: Pos, path: &str, msg: impl Into<String>, help: Option<String>) {
        self.diags.warning(Some(pos), path, msg, help);
    }

    fn wrong_type(&mut self, node: &Node, path: &str, expected: &str, example: Option<String>) {
        let help = match (&node.value, example) {
            (Value::String(s), _) if expected == "an integer" && s.trim().parse::<i64>().is_ok() => {
                Some(format!("remove the quotes: `{}`", s.trim()))
            }
            (Value::String(s), _) if expected == "a boolean" && matches!(s.as_str(), "true" | "false") => {
                Some(format!("remove the quotes: `{s}`"))
            }
            (Value::String(s), _)
                if expected == "a boolean"
                    && matches!(s.to_ascii_lowercase().as_str(), "yes" | "no" | "on" | "off") =>
            {
                Some("write `true` or `false`".to_string())
            }
            (_, Some(example)) => Some(format!("for example `{example}`")),
            _ => None,
        };
        self.error(node.pos, path, format!("expected {expected} at `{path}`, found {}", node.kind()), help);
    }

    /// A mapping with only `fields` as keys. `null` reads as an empty section. Positions of the
    /// known fields are recorded under `path.field`.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str, fields: &[&str]) -> Option<&'n Map> {
        match &node.value {
            Value::Null => None,
            Value::Map(m) => {
                for (key, _) in m.iter() {
                    let child = join(path, &key.name);
                    if fields.contains(&key.name.as_str()) {
                        self.positions.insert(child, key.pos);
                    } else {
                        let help = did_you_mean(&key.name, fields.iter().copied()).or_else(|| {
                            Some(format!(
                                "known fields: {}",
                                fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
                            ))
                        });
                        let place = if path.is_empty() { "the document".to_string() } else { format!("`{path}`") };
                        self.error(key.pos, &child, format!("unknown field `{}` in {place}", key.name), help);
                    }
                }
                Some(m)
            }
            _ => {
                self.wrong_type(node, path, "a mapping", None);
                None
            }
        }
    }

    /// A mapping of string keys to string values (labels, selectors).
    pub fn string_map(&mut self, node: &Node, path: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match &node.value {
            Value::Null => {}
            Value::Map(m) => {
                for (k, v) in m.iter() {
                    let child = join(path, &k.name);
                    self.positions.insert(child.clone(), k.pos);
                    // Kubernetes label values are strings; accept scalars written unquoted.
                    match &v.value {
                        Value::String(s) => {
                            out.insert(k.name.clone(), s.clone());
                        }
                        Value::Int(_) | Value::Bool(_) | Value::Float(_) => {
                            let text = v.scalar_text().unwrap_or_default();
                            self.error(
                                v.pos,
                                &child,
                                format!("expected a string at `{child}`, found {}", v.kind()),
                                Some(format!("quote it: `\"{text}\"`")),
                            );
                        }
                        _ => self.wrong_type(v, &child, "a string", None),
                    }
                }
            }
            _ => self.wrong_type(node, path, "a mapping", Some("{app: workspace}".into())),
        }
        out
    }

    /// A list; `null` reads as empty.
    pub fn list<'n>(&mut self, node: &'n Node, path: &str) -> &'n [Node] {
        match &node.value {
            Value::Null => &[],
            Value::Seq(items) => items,
            _ => {
                self.wrong_type(node, path, "a list", None);
                &[]
            }
        }
    }

    /// A string.
    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.wrong_type(node, path, "a string", None);
                None
            }
        }
    }

    /// A string, accepting numbers written without quotes (e.g. `cpu: 2`).
    pub fn scalar_string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::String(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            _ => {
                self.wrong_type(node, path, "a string", None);
                None
            }
        }
    }

    /// A boolean.
    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(node, path, "a boolean", None);
                None
            }
        }
    }

    /// A non-negative integer.
    pub fn u64(&mut self, node: &Node, path: &str) -> Option<u64> {
        match &node.value {
            Value::Int(i) => match u64::try_from(*i) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.error(node.pos, path, format!("`{i}` at `{path}` must not be negative"), None);
                    None
                }
            },
            _ => {
                self.wrong_type(node, path, "an integer", None);
                None
            }
        }
    }

    /// A non-negative integer that fits 32 bits.
    pub fn u32(&mut self, node: &Node, path: &str) -> Option<u32> {
        let v = self.u64(node, path)?;
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(
                    node.pos,
                    path,
                    format!("`{v}` at `{path}` is too large"),
                    Some(format!("use a value up to {}", u32::MAX)),
                );
                None
            }
        }
    }

    /// A port number 1..=65535.
    pub fn port(&mut self, node: &Node, path: &str) -> Option<u16> {
        let v = self.u64(node, path)?;
        match u16::try_from(v) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("`{v}` at `{path}` is not a port"),
                    Some("use a number from 1 to 65535".into()),
                );
                None
            }
        }
    }

    /// One of a fixed set of names.
    pub fn one_of<T: Copy>(&mut self, node: &Node, path: &str, choices: &[(&str, T)]) -> Option<T> {
        let text = match &node.value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".to_string(),
            _ => {
                self.wrong_type(node, path, "a string", None);
                return None;
            }
        };
        if let Some((_, v)) = choices.iter().find(|(n, _)| *n == text) {
            return Some(*v);
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let help = did_you_mean(&text, names.iter().copied()).unwrap_or_else(|| {
            format!("use one of {}", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
        });
        self.error(node.pos, path, format!("unknown value `{text}` for `{path}`"), Some(help));
        None
    }

    /// Report a required field that is missing from a mapping that starts at `pos`.
    pub fn missing(&mut self, pos: Pos, path: &str, field: &str, example: &str) {
        let child = join(path, field);
        let place = if path.is_empty() { "the document".to_string() } else { format!("`{path}`") };
        self.error(pos, &child, format!("missing field `{field}` in {place}"), Some(format!("add `{example}`")));
    }
}

/// `a.b` (or `b` at the root).
pub fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// `a[3]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}
