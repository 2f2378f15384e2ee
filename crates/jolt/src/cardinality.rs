//! `cardinality`: makes values single (`ONE`: an array becomes its first
//! element) or plural (`MANY`: a single value becomes a one-element array).
//! The spec mirrors the input; `@` inside a nested spec applies to the node
//! itself before descending.

use serde_json::{Map, Value};

use crate::error::{JoltError, child_path};
use crate::key::KeyPattern;

#[derive(Debug, Clone)]
pub(crate) struct Cardinality {
    root: Node,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    One,
    Many,
}

#[derive(Debug, Clone)]
struct Node {
    /// What `@` asks of the node itself.
    own: Option<Want>,
    literals: Vec<(String, Child)>,
    patterns: Vec<(KeyPattern, Child)>,
}

#[derive(Debug, Clone)]
enum Child {
    Leaf(Want),
    Node(Node),
}

impl Cardinality {
    pub fn compile(spec: &Value, path: &str) -> Result<Cardinality, JoltError> {
        Ok(Cardinality {
            root: compile_node(spec, path)?,
        })
    }

    pub fn apply(&self, mut value: Value) -> Value {
        self.root.descend(&mut value);
        value
    }
}

fn want(value: &Value, path: &str) -> Result<Want, JoltError> {
    match value {
        Value::String(s) if s.eq_ignore_ascii_case("ONE") => Ok(Want::One),
        Value::String(s) if s.eq_ignore_ascii_case("MANY") => Ok(Want::Many),
        _ => Err(JoltError::spec(
            path,
            "expected \"ONE\", \"MANY\" or an object",
        )),
    }
}

fn compile_node(spec: &Value, path: &str) -> Result<Node, JoltError> {
    let Value::Object(map) = spec else {
        return Err(JoltError::spec(
            path,
            "a cardinality spec must be an object",
        ));
    };
    let mut node = Node {
        own: None,
        literals: Vec::new(),
        patterns: Vec::new(),
    };
    for (raw, value) in map {
        let key_path = child_path(path, raw);
        if raw == "@" {
            node.own = Some(want(value, &key_path)?);
            continue;
        }
        let child = match value {
            Value::Object(_) => Child::Node(compile_node(value, &key_path)?),
            _ => Child::Leaf(want(value, &key_path)?),
        };
        match KeyPattern::parse(raw).map_err(|m| JoltError::spec(&key_path, m))? {
            KeyPattern::Literal(key) => node.literals.push((key, child)),
            pattern => node.patterns.push((pattern, child)),
        }
    }
    Ok(node)
}

fn convert(value: &mut Value, want: Want) {
    match (want, &mut *value) {
        (Want::One, Value::Array(items)) => {
            *value = if items.is_empty() {
                Value::Null
            } else {
                items.swap_remove(0)
            };
        }
        (Want::Many, Value::Array(_) | Value::Null) | (Want::One, _) => {}
        (Want::Many, _) => {
            let single = std::mem::take(value);
            *value = Value::Array(vec![single]);
        }
    }
}

impl Node {
    fn apply_here(&self, value: &mut Value) {
        if let Some(want) = self.own {
            convert(value, want);
        }
        self.descend(value);
    }

    fn descend(&self, value: &mut Value) {
        match value {
            Value::Object(map) => self.descend_object(map),
            Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    if let Some(child) = self.child_for(&index.to_string()) {
                        child.apply(item);
                    }
                }
            }
            _ => {}
        }
    }

    fn descend_object(&self, map: &mut Map<String, Value>) {
        for (key, item) in map.iter_mut() {
            if let Some(child) = self.child_for(key) {
                child.apply(item);
            }
        }
    }

    fn child_for(&self, key: &str) -> Option<&Child> {
        if let Some((_, child)) = self.literals.iter().find(|(literal, _)| literal == key) {
            return Some(child);
        }
        self.patterns
            .iter()
            .find(|(p, _)| p.captures(key).is_some())
            .map(|(_, child)| child)
    }
}

impl Child {
    fn apply(&self, value: &mut Value) {
        match self {
            Child::Leaf(want) => convert(value, *want),
            Child::Node(node) => node.apply_here(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(spec: Value, input: Value) -> Value {
        Cardinality::compile(&spec, "spec").unwrap().apply(input)
    }

    #[test]
    fn one_and_many() {
        let out = run(
            json!({"photo": "ONE", "tags": "MANY", "empty": "ONE", "none": "MANY"}),
            json!({"photo": [{"u": 1}, {"u": 2}], "tags": "x", "empty": [], "none": null}),
        );
        assert_eq!(
            out,
            json!({"photo": {"u": 1}, "tags": ["x"], "empty": null, "none": null})
        );
    }

    #[test]
    fn at_applies_to_the_node_then_descends() {
        let out = run(
            json!({"review": {"@": "ONE", "stars": "MANY"}}),
            json!({"review": [{"stars": 4}, {"stars": 5}]}),
        );
        assert_eq!(out, json!({"review": {"stars": [4]}}));
        let out = run(
            json!({"items": {"*": {"id": "ONE"}}}),
            json!({"items": [{"id": [1, 2]}, {"id": 3}]}),
        );
        assert_eq!(out, json!({"items": [{"id": 1}, {"id": 3}]}));
    }

    #[test]
    fn bad_leaf_is_named() {
        assert_eq!(
            Cardinality::compile(&json!({"a": "SOME"}), "s")
                .unwrap_err()
                .path(),
            "s.a"
        );
    }
}
