//! `shift`: copies data from the input tree to places in a new output tree.
//!
//! The spec mirrors the input: keys on the left match input keys (literals
//! first, then `&` keys, then wildcards from most to least specific; the
//! first match wins), values on the right are output paths. Special keys
//! (`$`, `@`, `#`) always fire at their level.

mod output;

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::{JoltError, child_path, index_path};
use crate::key::{KeyPattern, Matched, specificity};
use crate::path::{Cursor, KeyRef, KeyTemplate, Levels, ValueRef, parse_key_ref, unescape};
use output::OutputPath;

/// A compiled `shift` spec.
#[derive(Debug, Clone)]
pub(crate) struct Shift {
    root: Node,
}

#[derive(Debug, Clone)]
struct Node {
    literals: HashMap<String, Child>,
    computed: Vec<(Lhs, Child)>,
    specials: Vec<Special>,
}

#[derive(Debug, Clone)]
enum Child {
    Leaf(Vec<OutputPath>),
    Node(Node),
}

#[derive(Debug, Clone)]
enum Lhs {
    Pattern(KeyPattern),
    /// A key built from `&` references, matched literally once resolved.
    Reference(KeyTemplate),
}

#[derive(Debug, Clone)]
enum Special {
    /// `$`: the matched key itself becomes the data.
    Dollar {
        key: KeyRef,
        outputs: Vec<OutputPath>,
    },
    /// `#text`: the constant text becomes the data.
    Hash {
        text: String,
        outputs: Vec<OutputPath>,
    },
    /// `@` / `@(n,path)`: data from this level or above.
    At {
        source: Option<ValueRef>,
        child: Box<Child>,
    },
}

/// How many `*` captures each level has, root first: what `&` references
/// are checked against while compiling.
type Scope = Vec<usize>;

impl Shift {
    pub fn compile(spec: &Value, path: &str) -> Result<Shift, JoltError> {
        let Value::Object(map) = spec else {
            return Err(JoltError::spec(path, "a shift spec must be an object"));
        };
        let root = compile_node(map, path, &mut vec![0])?;
        Ok(Shift { root })
    }

    /// Builds the output tree; `null` when nothing matched, as in Java JOLT.
    pub fn apply(&self, input: &Value) -> Value {
        let mut output = Value::Object(Map::new());
        let mut walk = Walk { frames: Vec::new() };
        self.root.apply(
            Some(input),
            Matched::literal(output::ROOT),
            &mut walk,
            &mut output,
        );
        match output {
            Value::Object(mut map) => map.remove(output::ROOT).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

fn compile_node(
    map: &Map<String, Value>,
    path: &str,
    scope: &mut Scope,
) -> Result<Node, JoltError> {
    let mut node = Node {
        literals: HashMap::new(),
        computed: Vec::new(),
        specials: Vec::new(),
    };
    let mut computed: Vec<(bool, &str, Lhs, Child)> = Vec::new();
    let parent_captures = scope.last().copied().unwrap_or(0);
    for (raw, value) in map {
        let key_path = child_path(path, raw);
        let fail = |message: String| JoltError::spec(&key_path, message);
        if let Some(rest) = raw.strip_prefix('$') {
            let mut cursor = Cursor::new(rest);
            let key = parse_key_ref(&mut cursor, '$').map_err(fail)?;
            if !cursor.at_end() {
                return Err(fail(format!(
                    "unexpected text after the `$` reference in `{raw}`"
                )));
            }
            check_ref(&key, scope, '$').map_err(fail)?;
            let outputs = with_level(scope, parent_captures, |scope| {
                compile_outputs(value, &key_path, scope)
            })?;
            node.specials.push(Special::Dollar { key, outputs });
        } else if let Some(rest) = raw.strip_prefix('#') {
            let text = unescape(rest);
            let outputs = with_level(scope, parent_captures, |scope| {
                compile_outputs(value, &key_path, scope)
            })?;
            node.specials.push(Special::Hash { text, outputs });
        } else if raw.starts_with('@') {
            let source = if raw == "@" {
                None
            } else {
                let reference = ValueRef::parse(raw).map_err(fail)?;
                check_value_ref(&reference, scope).map_err(fail)?;
                Some(reference)
            };
            let child = with_level(scope, parent_captures, |scope| {
                compile_child(value, &key_path, scope)
            })?;
            node.specials.push(Special::At {
                source,
                child: Box::new(child),
            });
        } else if has_unescaped(raw, '&') {
            let template = KeyTemplate::parse(
                raw,
                &[
                    ('*', "`*` cannot be combined with `&` in a key"),
                    ('|', "`|` cannot be combined with `&` in a key"),
                ],
            )
            .map_err(fail)?;
            for r in template.refs() {
                check_ref(r, scope, '&').map_err(fail)?;
            }
            let child = with_level(scope, 0, |scope| compile_child(value, &key_path, scope))?;
            computed.push((true, raw, Lhs::Reference(template), child));
        } else {
            let pattern = KeyPattern::parse(raw).map_err(fail)?;
            let child = with_level(scope, pattern.capture_count(), |scope| {
                compile_child(value, &key_path, scope)
            })?;
            match pattern {
                KeyPattern::Literal(text) => {
                    node.literals.insert(text, child);
                }
                pattern => computed.push((false, raw, Lhs::Pattern(pattern), child)),
            }
        }
    }
    computed.sort_by(|a, b| specificity(a.0, a.1, b.0, b.1));
    node.computed = computed
        .into_iter()
        .map(|(_, _, lhs, child)| (lhs, child))
        .collect();
    Ok(node)
}

fn with_level<T>(scope: &mut Scope, captures: usize, f: impl FnOnce(&mut Scope) -> T) -> T {
    scope.push(captures);
    let result = f(scope);
    scope.pop();
    result
}

fn compile_child(value: &Value, path: &str, scope: &mut Scope) -> Result<Child, JoltError> {
    match value {
        Value::Object(map) => Ok(Child::Node(compile_node(map, path, scope)?)),
        _ => Ok(Child::Leaf(compile_outputs(value, path, scope)?)),
    }
}

fn compile_outputs(value: &Value, path: &str, scope: &Scope) -> Result<Vec<OutputPath>, JoltError> {
    let parse = |raw: &str, path: &str| {
        OutputPath::parse(raw, scope).map_err(|message| JoltError::spec(path, message))
    };
    match value {
        Value::String(raw) => Ok(vec![parse(raw, path)?]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(raw) => parse(raw, &index_path(path, i)),
                _ => Err(JoltError::spec(
                    &index_path(path, i),
                    "an output path must be a string",
                )),
            })
            .collect(),
        _ => Err(JoltError::spec(
            path,
            "expected an output path (a string or an array of strings) or an object",
        )),
    }
}

fn has_unescaped(raw: &str, wanted: char) -> bool {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if c == wanted {
            return true;
        }
    }
    false
}

/// Checks a `&`/`$` reference against the levels that exist where it is used.
pub(crate) fn check_ref(r: &KeyRef, scope: &Scope, sigil: char) -> Result<(), String> {
    let levels = scope.len();
    let Some(captures) = levels.checked_sub(r.up + 1).and_then(|i| scope.get(i)) else {
        return Err(format!(
            "bad `{sigil}` reference: `{sigil}{}` goes above the root (at most {} level(s) up here)",
            r.up,
            levels.saturating_sub(1)
        ));
    };
    if r.group > *captures {
        return Err(format!(
            "bad `{sigil}` reference: `{sigil}({},{})` asks for capture {} but that key has {} `*`",
            r.up, r.group, r.group, captures
        ));
    }
    Ok(())
}

pub(crate) fn check_value_ref(r: &ValueRef, scope: &Scope) -> Result<(), String> {
    if r.up >= scope.len() {
        return Err(format!(
            "bad `@` reference: `@{}` goes above the root (at most {} level(s) up here)",
            r.up,
            scope.len().saturating_sub(1)
        ));
    }
    r.key_refs().try_for_each(|k| check_ref(k, scope, '&'))
}

/// One level of the walk over the input.
struct Frame<'a> {
    data: Option<&'a Value>,
    matched: Matched,
    /// How many children of this level matched so far: `#n` in `[#n]`.
    hash_count: usize,
}

/// The levels from the root to the key being processed.
pub(crate) struct Walk<'a> {
    frames: Vec<Frame<'a>>,
}

impl<'a> Walk<'a> {
    fn frame(&self, up: usize) -> Option<&Frame<'a>> {
        self.frames
            .len()
            .checked_sub(up + 1)
            .and_then(|i| self.frames.get(i))
    }

    pub(crate) fn data(&self, up: usize) -> Option<&'a Value> {
        self.frame(up)?.data
    }

    pub(crate) fn hash_count(&self, up: usize) -> Option<usize> {
        self.frame(up).map(|f| f.hash_count)
    }

    fn push(&mut self, data: Option<&'a Value>, matched: Matched) {
        self.frames.push(Frame {
            data,
            matched,
            hash_count: 0,
        });
    }

    fn pop(&mut self) {
        self.frames.pop();
    }

    /// A copy of the current level, for special keys which act at their
    /// parent's level.
    fn current(&self) -> (Option<&'a Value>, Matched) {
        match self.frames.last() {
            Some(frame) => (frame.data, frame.matched.clone()),
            None => (None, Matched::literal(output::ROOT)),
        }
    }
}

impl Levels for Walk<'_> {
    fn matched(&self, up: usize) -> Option<&Matched> {
        self.frame(up).map(|f| &f.matched)
    }
}

impl Node {
    fn apply<'a>(
        &self,
        data: Option<&'a Value>,
        matched: Matched,
        walk: &mut Walk<'a>,
        out: &mut Value,
    ) {
        walk.push(data, matched);
        for special in &self.specials {
            special.apply(walk, out);
        }
        match data {
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    self.dispatch(key, Some(value), walk, out);
                }
            }
            Some(Value::Array(items)) => {
                for (index, value) in items.iter().enumerate() {
                    self.dispatch(&index.to_string(), Some(value), walk, out);
                }
            }
            Some(Value::Null) | None => {}
            // A scalar is matched by its text, with no data below it.
            Some(scalar) => {
                if let Some(key) = scalar_key(scalar) {
                    self.dispatch(&key, None, walk, out);
                }
            }
        }
        walk.pop();
    }

    fn dispatch<'a>(
        &self,
        key: &str,
        data: Option<&'a Value>,
        walk: &mut Walk<'a>,
        out: &mut Value,
    ) {
        let hit = if let Some(child) = self.literals.get(key) {
            child.apply(data, Matched::literal(key), walk, out);
            true
        } else {
            self.computed.iter().any(|(lhs, child)| {
                let matched = match lhs {
                    Lhs::Pattern(pattern) => pattern.matches(key),
                    Lhs::Reference(template) => (template.resolve(walk).as_deref() == Some(key))
                        .then(|| Matched::literal(key)),
                };
                match matched {
                    Some(matched) => {
                        child.apply(data, matched, walk, out);
                        true
                    }
                    None => false,
                }
            })
        };
        if hit && let Some(frame) = walk.frames.last_mut() {
            frame.hash_count += 1;
        }
    }
}

impl Child {
    fn apply<'a>(
        &self,
        data: Option<&'a Value>,
        matched: Matched,
        walk: &mut Walk<'a>,
        out: &mut Value,
    ) {
        match self {
            Child::Node(node) => node.apply(data, matched, walk, out),
            Child::Leaf(outputs) => {
                if let Some(data) = data {
                    walk.push(Some(data), matched);
                    write_all(outputs, data, walk, out);
                    walk.pop();
                }
            }
        }
    }
}

impl Special {
    /// Special keys act at their parent's level; `$` and `#` add a level whose
    /// matched key is the text they produce, as Java JOLT does.
    fn apply(&self, walk: &mut Walk<'_>, out: &mut Value) {
        let (data, matched) = walk.current();
        match self {
            Special::Dollar { key, outputs } => {
                let Some(resolved) = key.resolve(walk).map(str::to_owned) else {
                    return;
                };
                walk.push(data, Matched::literal(&resolved));
                write_all(outputs, &Value::String(resolved), walk, out);
                walk.pop();
            }
            Special::Hash { text, outputs } => {
                walk.push(data, Matched::literal(text));
                write_all(outputs, &Value::String(text.clone()), walk, out);
                walk.pop();
            }
            Special::At { source, child } => {
                let found = match source {
                    None => data,
                    Some(reference) => walk
                        .data(reference.up)
                        .and_then(|start| reference.resolve(start, walk)),
                };
                if found.is_some() {
                    child.apply(found, matched, walk, out);
                }
            }
        }
    }
}

fn write_all(outputs: &[OutputPath], data: &Value, walk: &Walk<'_>, out: &mut Value) {
    for output in outputs {
        output.write(data.clone(), walk, out);
    }
}

/// The text a scalar is matched by, like Java's `toString`.
fn scalar_key(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn shift(spec: Value, input: Value) -> Value {
        Shift::compile(&spec, "spec").unwrap().apply(&input)
    }

    #[test]
    fn literal_beats_wildcard_and_specific_wildcard_beats_general() {
        let spec = json!({"*": "other.&", "a": "lit", "a*": "pre.&"});
        let out = shift(spec, json!({"a": 1, "ab": 2, "c": 3}));
        assert_eq!(out, json!({"lit": 1, "pre": {"ab": 2}, "other": {"c": 3}}));
    }

    #[test]
    fn hash_index_counts_matches_of_the_level() {
        // `b` does not match `a*`, so `a2` is the second match of the root level.
        let out = shift(json!({"a*": "out[#1]"}), json!({"a1": 1, "b": 2, "a2": 3}));
        assert_eq!(out, json!({"out": [1, 3]}));
    }

    #[test]
    fn references_are_checked_at_compile_time() {
        let err = Shift::compile(&json!({"a": {"b": "x.&3"}}), "spec").unwrap_err();
        assert!(err.to_string().contains("spec.a.b"), "{err}");
        assert!(Shift::compile(&json!({"a-*": {"b": "x.&(1,2)"}}), "spec").is_err());
        assert!(Shift::compile(&json!({"a-*": {"b": "x.&(1,1)"}}), "spec").is_ok());
    }
}
