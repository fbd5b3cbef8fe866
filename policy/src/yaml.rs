//! Spanned YAML (and JSON) documents.
//!
//! We read YAML with `saphyr-parser`, a maintained YAML 1.2 event parser that reports the position
//! of every event, and build a small tree in which every node and every mapping key keeps its
//! line and column. Everything that reports a problem in a user's file (policy validation, lint,
//! `explain --k8s`) walks this tree, so each message can say `file:line:column`.
//!
//! Why not deserialize straight into structs with serde? Serde stops at the first error; a policy
//! author wants all of them at once, and lint needs the position of arbitrary fields of arbitrary
//! manifests. The tree is converted to `serde_json::Value` where typed decoding helps (e.g. the
//! Kubernetes types), with positions looked up by path.
//!
//! Behaviour worth knowing:
//! - plain scalars are typed with the YAML 1.2 core schema (`true`, `null`, `0x1F`, `1e3`…);
//!   quoted and block scalars are always strings; `!!str` forces a string;
//! - duplicate keys in a mapping are an error (a second `privileged:` must not silently win);
//! - anchors, aliases and `<<` merge keys are supported (Compose files use them), with a limit on
//!   how far aliases may expand so a "billion laughs" document fails fast;
//! - JSON is read by the same parser (JSON is YAML); tabs, legal JSON whitespace, are
//!   normalised first so that columns stay exact.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diag::Pos;

/// Nodes an alias-expanded stream may hold before we refuse it.
const MAX_NODES: usize = 2_000_000;
/// Maximum nesting depth of sequences and mappings.
const MAX_DEPTH: usize = 128;

/// A parsed value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it starts in the source.
    pub pos: Pos,
}

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string (any quoted or block scalar, or a plain scalar that is not another type).
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Map),
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where the key starts.
    pub pos: Pos,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A mapping whose keys are unique strings, kept in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    entries: Vec<(Key, Node)>,
}

impl Map {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// The key and value under `key`.
    pub fn get_entry(&self, key: &str) -> Option<(&Key, &Node)> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(k, v)| (k, v))
    }

    /// Entries in source order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Node)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the mapping is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.name == key)
    }
}

impl Node {
    /// A short name of the node's type for messages: "a mapping", "a string"…
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The mapping, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence, if this is one.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.value {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// A scalar rendered as text (strings as-is, numbers and booleans in YAML form).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::String(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => Some("null".to_string()),
            _ => None,
        }
    }

    /// Follow a path of mapping keys.
    pub fn get_path(&self, keys: &[&str]) -> Option<&Node> {
        let mut node = self;
        for key in keys {
            node = node.as_map()?.get(key)?;
        }
        Some(node)
    }

    /// Convert to JSON (mapping order kept by key; JSON maps are sorted, which is fine for
    /// decoding).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
            }
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => serde_json::Value::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }
}

/// A syntax or structure error: the document cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// Where reading stopped.
    pub pos: Pos,
    /// What went wrong (lowercase, no final period).
    pub message: String,
}

/// One document of a stream, with the line its `---` (or first content) sits on.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The root node (`Null` for an empty document).
    pub root: Node,
    /// The index of the document in its stream, from 0.
    pub index: usize,
}

/// Parse a single-document YAML or JSON text.
pub fn parse(src: &str) -> Result<Node, ParseError> {
    let docs = parse_stream(src)?;
    let count = docs.len();
    let mut docs = docs.into_iter();
    match (docs.next(), count) {
        (None, _) => Ok(Node { value: Value::Null, pos: Pos::new(1, 1) }),
        (Some(doc), 1) => Ok(doc.root),
        (Some(_), _) => {
            let second = docs.next().map(|d| d.root.pos).unwrap_or(Pos::new(1, 1));
            Err(ParseError { pos: second, message: format!("expected one document, found {count}") })
        }
    }
}

/// Parse every document of a YAML stream (`---`-separated). Empty documents are kept as `Null`.
pub fn parse_stream(src: &str) -> Result<Vec<Document>, ParseError> {
    let normalised;
    let text = if looks_like_json(src) {
        normalised = src.replace('\t', " ");
        normalised.as_str()
    } else {
        src
    };
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| ParseError {
            pos: Pos::new(
                u32::try_from(e.marker().line()).unwrap_or(u32::MAX),
                u32::try_from(e.marker().col() + 1).unwrap_or(u32::MAX),
            ),
            message: clean_scan_message(e.info()),
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.docs)
}

fn looks_like_json(src: &str) -> bool {
    matches!(src.trim_start().chars().next(), Some('{') | Some('['))
}

fn clean_scan_message(info: &str) -> String {
    let mut msg = info.trim().trim_end_matches('.').to_string();
    if let Some(first) = msg.get(..1) {
        let lower = first.to_lowercase();
        msg.replace_range(..1, &lower);
    }
    format!("invalid YAML: {msg}")
}

fn pos_of(span: &Span) -> Pos {
    Pos::new(
        u32::try_from(span.start.line()).unwrap_or(u32::MAX),
        u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
    )
}

enum Frame {
    Seq { pos: Pos, anchor: usize, items: Vec<Node> },
    Map { pos: Pos, anchor: usize, map: Map, merges: Vec<Node>, key: Option<PendingKey> },
}

enum PendingKey {
    Key(Key),
    Merge,
}

#[derive(Default)]
struct Builder {
    docs: Vec<Document>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), ParseError> {
        let pos = pos_of(&span);
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart(_) => {
                self.anchors.clear();
                Ok(())
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| ParseError { pos, message: "alias refers to an unknown anchor".into() })?;
                self.count(count_nodes(&node), pos)?;
                self.push_alias(node, pos)
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, pos)?;
                let tag = tag.map(|t| t.suffix.clone());
                // A scalar in key position becomes a key directly, so keys keep their text.
                if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                    if key.is_none() {
                        *key = Some(if text == "<<" && style == ScalarStyle::Plain {
                            PendingKey::Merge
                        } else {
                            PendingKey::Key(Key { name: text.to_string(), pos })
                        });
                        if anchor != 0 {
                            let node = Node { value: Value::String(text.to_string()), pos };
                            self.anchors.insert(anchor, node);
                        }
                        return Ok(());
                    }
                }
                let value = resolve_scalar(&text, style, tag.as_deref());
                let node = Node { value, pos };
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node)
            }
            Event::SequenceStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Seq { pos, anchor, items: Vec::new() });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Map { pos, anchor, map: Map::default(), merges: Vec::new(), key: None });
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq { pos, anchor, items }) => self.close(Node { value: Value::Seq(items), pos }, anchor),
                _ => Err(ParseError { pos, message: "unbalanced sequence".into() }),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map { pos, anchor, mut map, merges, .. }) => {
                    apply_merges(&mut map, merges)?;
                    self.close(Node { value: Value::Map(map), pos }, anchor)
                }
                _ => Err(ParseError { pos, message: "unbalanced mapping".into() }),
            },
        }
    }

    fn count(&mut self, n: usize, pos: Pos) -> Result<(), ParseError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(ParseError {
                pos,
                message: format!(
                    "document expands to more than {MAX_NODES} nodes through aliases; \
                     remove the alias chain"
                ),
            });
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos) -> Result<(), ParseError> {
        self.count(1, pos)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(ParseError { pos, message: format!("nesting deeper than {MAX_DEPTH} levels") });
        }
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return Err(ParseError {
                pos,
                message: "a mapping key must be a plain value, not a list or mapping".into(),
            });
        }
        Ok(())
    }

    fn close(&mut self, node: Node, anchor: usize) -> Result<(), ParseError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        self.push(node)
    }

    fn push_alias(&mut self, node: Node, pos: Pos) -> Result<(), ParseError> {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            if key.is_none() {
                let name = node.scalar_text().ok_or_else(|| ParseError {
                    pos,
                    message: "a mapping key must be a plain value, not a list or mapping".into(),
                })?;
                *key = Some(PendingKey::Key(Key { name, pos }));
                return Ok(());
            }
        }
        // An alias takes the position where it is used, so messages point at the use.
        let node = Node { pos, ..node };
        self.push(node)
    }

    fn push(&mut self, node: Node) -> Result<(), ParseError> {
        match self.stack.last_mut() {
            None => {
                let index = self.docs.len();
                self.docs.push(Document { root: node, index });
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map { map, merges, key, .. }) => match key.take() {
                Some(PendingKey::Merge) => {
                    merges.push(node);
                    Ok(())
                }
                Some(PendingKey::Key(k)) => {
                    if let Some((first, _)) = map.get_entry(&k.name) {
                        return Err(ParseError {
                            pos: k.pos,
                            message: format!(
                                "duplicate key `{}` (first at line {}); remove one of them",
                                k.name, first.pos.line
                            ),
                        });
                    }
                    map.entries.push((k, node));
                    Ok(())
                }
                None => Err(ParseError {
                    pos: node.pos,
                    message: "a mapping key must be a plain value, not a list or mapping".into(),
                }),
            },
        }
    }
}

/// Apply `<<` merge keys: entries written in the mapping win over merged ones, and earlier merge
/// sources win over later ones.
fn apply_merges(map: &mut Map, merges: Vec<Node>) -> Result<(), ParseError> {
    for merge in merges {
        let sources: Vec<Node> = match merge.value {
            Value::Map(_) => vec![merge],
            Value::Seq(items) => items,
            _ => {
                return Err(ParseError {
                    pos: merge.pos,
                    message: "a `<<` merge key needs a mapping or a list of mappings".into(),
                })
            }
        };
        for source in sources {
            let Value::Map(src) = source.value else {
                return Err(ParseError {
                    pos: source.pos,
                    message: "a `<<` merge key needs a mapping or a list of mappings".into(),
                });
            };
            for (k, v) in src.entries {
                if !map.contains(&k.name) {
                    map.entries.push((k, v));
                }
            }
        }
    }
    Ok(())
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(m) => 1 + m.entries.iter().map(|(_, v)| 1 + count_nodes(v)).sum::<usize>(),
        _ => 1,
    }
}

/// Type a scalar with the YAML 1.2 core schema.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    if style != ScalarStyle::Plain || tag == Some("str") {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(v) = parse_int(text) {
        return Value::Int(v);
    }
    if is_float(text) {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return i64::from_str_radix(hex, 16).ok();
        }
        return None;
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return i64::from_str_radix(oct, 8).ok();
        }
        return None;
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()
}

fn is_float(text: &str) -> bool {
    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty())
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        }
    };
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_follow_the_core_schema() {
        let n = parse("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: 0x10\ng: hello\nh: 1e3\ni: 1.2.3").unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m.get("a").unwrap().value, Value::Int(1));
        assert_eq!(m.get("b").unwrap().value, Value::String("1".into()));
        assert_eq!(m.get("c").unwrap().value, Value::Bool(true));
        assert_eq!(m.get("d").unwrap().value, Value::Null);
        assert_eq!(m.get("e").unwrap().value, Value::Float(1.5));
        assert_eq!(m.get("f").unwrap().value, Value::Int(16));
        assert_eq!(m.get("g").unwrap().value, Value::String("hello".into()));
        assert_eq!(m.get("h").unwrap().value, Value::Float(1000.0));
        assert_eq!(m.get("i").unwrap().value, Value::String("1.2.3".into()));
    }

    #[test]
    fn keys_and_values_keep_positions() {
        let n = parse("spec:\n  process:\n    user: 1000\n").unwrap();
        let spec = n.as_map().unwrap().get_entry("spec").unwrap();
        assert_eq!(spec.0.pos, Pos::new(1, 1));
        let (k, v) = spec.1.as_map().unwrap().get("process").unwrap().as_map().unwrap().get_entry("user").unwrap();
        assert_eq!(k.pos, Pos::new(3, 5));
        assert_eq!(v.pos, Pos::new(3, 11));
    }

    #[test]
    fn duplicate_keys_are_rejected_with_both_lines() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos::new(3, 1));
        assert!(err.message.contains("duplicate key `a` (first at line 1)"), "{}", err.message);
    }

    #[test]
    fn json_with_tabs_keeps_columns() {
        let n = parse("{\n\t\"a\": [1, 2],\n\t\"b\": {\"c\": null}\n}").unwrap();
        let (k, _) = n.as_map().unwrap().get_entry("b").unwrap();
        assert_eq!(k.pos, Pos::new(3, 2));
    }

    #[test]
    fn merge_keys_and_aliases() {
        let src = "base: &b\n  image: x\n  ports: [1]\nsvc:\n  <<: *b\n  image: y\n";
        let n = parse(src).unwrap();
        let svc = n.get_path(&["svc"]).unwrap().as_map().unwrap();
        assert_eq!(svc.get("image").unwrap().as_str(), Some("y"));
        assert_eq!(svc.get("ports").unwrap().as_seq().unwrap().len(), 1);
    }

    #[test]
    fn alias_bombs_fail_fast() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = parse(&src).unwrap_err();
        assert!(err.message.contains("more than"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let src = "[".repeat(500);
        assert!(parse(&src).is_err());
    }

    #[test]
    fn streams_keep_empty_documents_and_order() {
        let docs = parse_stream("a: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[1].root.is_null());
        assert_eq!(docs[2].root.pos.line, 4);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3").unwrap_err();
        assert!(err.message.starts_with("invalid YAML"), "{}", err.message);
        assert!(err.pos.line >= 1);
    }

    #[test]
    fn complex_keys_are_refused() {
        assert!(parse("? [a]\n: 1\n").is_err());
    }
}
