//! YAML (1.2 core schema) into JSON, recording where every field stands.
//!
//! Built on the event stream of `saphyr-parser` so each node keeps its
//! line and column. Anchors and aliases are expanded with a budget so a
//! small file cannot expand into a huge document.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, SpannedEventReceiver, Tag};
use serde_json::{Map, Number, Value};

use crate::{FieldPath, Position, SourceMap};

/// Most nodes a document may expand to (aliases included).
const NODE_BUDGET: usize = 1_000_000;

/// A YAML syntax or structure error.
#[derive(Debug)]
pub(crate) struct YamlError {
    pub message: String,
    pub position: Position,
}

pub(crate) fn parse(text: &str) -> Result<(Value, SourceMap), YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(YamlError {
            message: format!("invalid YAML: {}", e.info()),
            position: Position {
                line: m.line(),
                column: m.col() + 1,
            },
        });
    }
    if let Some(error) = builder.error {
        return Err(error);
    }
    if builder.documents > 1 {
        return Err(YamlError {
            message: "a pipeline file holds one YAML document; found several (`---`)".into(),
            position: Position { line: 1, column: 1 },
        });
    }
    Ok((builder.root.unwrap_or(Value::Null), builder.map))
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        path: FieldPath,
    },
    Map {
        members: Map<String, Value>,
        anchor: usize,
        path: FieldPath,
        /// The key read, waiting for its value.
        key: Option<(String, Position)>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    anchors: HashMap<usize, Value>,
    map: SourceMap,
    nodes: usize,
    documents: usize,
    error: Option<YamlError>,
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

impl Builder {
    fn fail(&mut self, message: String, at: Position) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                message,
                position: at,
            });
        }
    }

    /// The path of the node about to be added, and the position of its key.
    fn next_path(&self) -> (FieldPath, Option<Position>) {
        match self.stack.last() {
            None => (FieldPath::root(), None),
            Some(Frame::Seq { items, path, .. }) => (path.index(items.len()), None),
            Some(Frame::Map {
                path,
                key: Some((k, at)),
                ..
            }) => (path.key(k), Some(*at)),
            // A key is being read: its own path does not matter.
            Some(Frame::Map { path, .. }) => (path.clone(), None),
        }
    }

    /// Whether the next node is a mapping key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn add(&mut self, value: Value, at: Position) {
        self.nodes += 1;
        if self.nodes > NODE_BUDGET {
            self.fail(
                format!("document expands to more than {NODE_BUDGET} nodes (aliases?)"),
                at,
            );
            return;
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { members, key, .. }) => match key.take() {
                None => {
                    let text = match value {
                        Value::String(s) => s,
                        Value::Null => "null".to_owned(),
                        Value::Bool(_) | Value::Number(_) => value.to_string(),
                        Value::Array(_) | Value::Object(_) => {
                            self.fail("a mapping key must be a scalar".into(), at);
                            return;
                        }
                    };
                    if members.contains_key(&text) {
                        let message = format!("duplicate key '{text}'");
                        self.fail(message, at);
                        return;
                    }
                    *key = Some((text, at));
                }
                Some((k, _)) => {
                    members.insert(k, value);
                }
            },
        }
    }

    fn count_nodes(value: &Value) -> usize {
        match value {
            Value::Array(a) => 1 + a.iter().map(Self::count_nodes).sum::<usize>(),
            Value::Object(o) => 1 + o.values().map(Self::count_nodes).sum::<usize>(),
            _ => 1,
        }
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, event: Event<'input>, span: Span) {
        if self.error.is_some() {
            return;
        }
        let at = position(&span);
        match event {
            Event::DocumentStart(_) => self.documents += 1,
            Event::Scalar(text, style, anchor, tag) => {
                let is_key = self.expecting_key();
                let value = match resolve_scalar(&text, style, tag.as_deref()) {
                    Ok(v) => v,
                    Err(message) => {
                        self.fail(message, at);
                        return;
                    }
                };
                if !is_key {
                    let (path, key_at) = self.next_path();
                    self.map.insert(path, key_at, at);
                }
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.add(value, at);
            }
            Event::SequenceStart(anchor, _) => {
                if self.expecting_key() {
                    self.fail("a mapping key must be a scalar".into(), at);
                    return;
                }
                let (path, key_at) = self.next_path();
                self.map.insert(path.clone(), key_at, at);
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    path,
                });
            }
            Event::MappingStart(anchor, _) => {
                if self.expecting_key() {
                    self.fail("a mapping key must be a scalar".into(), at);
                    return;
                }
                let (path, key_at) = self.next_path();
                self.map.insert(path.clone(), key_at, at);
                self.stack.push(Frame::Map {
                    members: Map::new(),
                    anchor,
                    path,
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map {
                        members, anchor, ..
                    }) => (Value::Object(merge_keys(members)), anchor),
                    None => return,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                // The container's own node was counted by its children.
                self.nodes = self.nodes.saturating_sub(1);
                self.add(value, at);
            }
            Event::Alias(id) => {
                let Some(value) = self.anchors.get(&id).cloned() else {
                    self.fail("alias to an unknown anchor".into(), at);
                    return;
                };
                // An alias adds every node it expands to.
                self.nodes += Self::count_nodes(&value).saturating_sub(1);
                if !self.expecting_key() {
                    let (path, key_at) = self.next_path();
                    self.map.insert(path, key_at, at);
                }
                self.add(value, at);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

/// Applies YAML merge keys (`<<: *base`): members of the merged mappings
/// that the mapping does not set itself.
fn merge_keys(mut members: Map<String, Value>) -> Map<String, Value> {
    let Some(merged) = members.shift_remove("<<") else {
        return members;
    };
    let sources = match merged {
        Value::Array(items) => items,
        other => vec![other],
    };
    for source in sources {
        if let Value::Object(source) = source {
            for (k, v) in source {
                members.entry(k).or_insert(v);
            }
        }
    }
    members
}

/// A scalar by the YAML 1.2 core schema: plain scalars may be null,
/// booleans or numbers; quoted and block scalars are strings.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(tag) = tag
        && tag.handle == "tag:yaml.org,2002:"
    {
        return match tag.suffix.as_str() {
            "str" => Ok(Value::String(text.to_string())),
            "null" => Ok(Value::Null),
            "bool" => plain_scalar(text)
                .filter(Value::is_boolean)
                .ok_or_else(|| format!("'{text}' is not a boolean")),
            "int" | "float" => plain_scalar(text)
                .filter(Value::is_number)
                .ok_or_else(|| format!("'{text}' is not a number")),
            other => Err(format!("unsupported YAML tag !!{other}")),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_string()));
    }
    Ok(plain_scalar(text).unwrap_or_else(|| Value::String(text.to_string())))
}

fn plain_scalar(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    let unsigned = text.trim_start_matches(['-', '+']);
    let negative = text.starts_with('-');
    if let Some(hex) = unsigned.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16)
            .ok()
            .map(|n| Value::from(if negative { -n } else { n }));
    }
    if let Some(oct) = unsigned.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8)
            .ok()
            .map(|n| Value::from(if negative { -n } else { n }));
    }
    if unsigned.bytes().all(|b| b.is_ascii_digit()) && !unsigned.is_empty() {
        if let Ok(n) = text.parse::<i64>() {
            return Some(Value::from(n));
        }
        if let Ok(n) = text.trim_start_matches('+').parse::<u64>() {
            return Some(Value::from(n));
        }
    }
    let looks_float = unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && unsigned.bytes().any(|b| b.is_ascii_digit());
    if looks_float && let Ok(f) = text.parse::<f64>() {
        return Number::from_f64(f).map(Value::Number);
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn core_schema_scalars() {
        let (v, _) =
            parse("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: 0x1F\ng: hello\nh: -3\ni: 1e3\n")
                .expect("parses");
        assert_eq!(
            v,
            json!({"a": 1, "b": 1.5, "c": true, "d": null, "e": "1", "f": 31, "g": "hello", "h": -3, "i": 1000.0})
        );
    }

    #[test]
    fn records_positions() {
        let text = "name: x\nsteps:\n  - type: set\n    values: {a: 1}\n  - type: log\n";
        let (_, map) = parse(text).expect("parses");
        let at = map
            .locate(&FieldPath::from_text("steps[1].type"))
            .expect("known");
        assert_eq!(at, Position { line: 5, column: 5 });
        let at = map
            .locate(&FieldPath::from_text("steps[0].values.a"))
            .expect("known");
        assert_eq!((at.line, at.column), (4, 14));
        // A missing field points at its nearest parent.
        let at = map
            .locate(&FieldPath::from_text("steps[0].nothing"))
            .expect("parent");
        assert_eq!(at.line, 3);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert!(e.message.contains("duplicate key 'a'"), "{}", e.message);
        assert_eq!(e.position.line, 3);
    }

    #[test]
    fn aliases_and_merge_keys() {
        let (v, _) = parse("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n").expect("parses");
        assert_eq!(v["other"], json!({"x": 1, "y": 3}));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&text).expect_err("too big");
        assert!(e.message.contains("more than"), "{}", e.message);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n").expect_err("bad");
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        assert!(e.position.line >= 1);
    }
}
