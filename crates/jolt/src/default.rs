//! `default`: fills in values that are missing or null, never overwriting
//! data. The spec mirrors the input; object values descend (creating the
//! object when it is missing), `name[]` creates an array instead, other values
//! are the defaults. Literal keys apply first, then `a|b` alternatives, then
//! `*` wildcards, which only visit keys the data already has.

use serde_json::{Map, Value};

use crate::error::{JoltError, child_path};
use crate::key::KeyPattern;

#[derive(Debug, Clone)]
pub(crate) struct Default {
    root: Node,
}

#[derive(Debug, Clone)]
struct Node {
    /// Literal keys, with `a|b` alternatives expanded after them.
    literals: Vec<(String, Child)>,
    wildcards: Vec<(KeyPattern, Child)>,
}

#[derive(Debug, Clone)]
enum Child {
    Value(Value),
    Node { node: Node, array: bool },
}

impl Default {
    pub fn compile(spec: &Value, path: &str) -> Result<Default, JoltError> {
        let Value::Object(map) = spec else {
            return Err(JoltError::spec(path, "a default spec must be an object"));
        };
        Ok(Default {
            root: compile_node(map, path)?,
        })
    }

    pub fn apply(&self, mut value: Value) -> Value {
        if value.is_null() {
            value = Value::Object(Map::new());
        }
        self.root.apply(&mut value);
        value
    }
}

fn compile_node(map: &Map<String, Value>, path: &str) -> Result<Node, JoltError> {
    let mut literals = Vec::new();
    let mut alternatives = Vec::new();
    let mut wildcards = Vec::new();
    for (raw, value) in map {
        let key_path = child_path(path, raw);
        let (key, array) = match raw.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (raw.as_str(), false),
        };
        let child = match value {
            Value::Object(inner) => Child::Node {
                node: compile_node(inner, &key_path)?,
                array,
            },
            _ if array => {
                return Err(JoltError::spec(
                    &key_path,
                    "a `name[]` key needs an object spec for the array's elements",
                ));
            }
            _ => Child::Value(value.clone()),
        };
        match KeyPattern::parse(key).map_err(|m| JoltError::spec(&key_path, m))? {
            KeyPattern::Literal(text) => literals.push((text, child)),
            KeyPattern::Or(options) if options.iter().all(|o| o.as_literal().is_some()) => {
                for option in options {
                    if let KeyPattern::Literal(text) = option {
                        alternatives.push((text, child.clone()));
                    }
                }
            }
            pattern => wildcards.push((pattern, child)),
        }
    }
    literals.extend(alternatives);
    Ok(Node {
        literals,
        wildcards,
    })
}

impl Node {
    fn apply(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, child) in &self.literals {
                    let slot = map.entry(key.clone()).or_insert(Value::Null);
                    child.fill(slot);
                }
                for (pattern, child) in &self.wildcards {
                    for (key, slot) in map.iter_mut() {
                        if pattern.captures(key).is_some() {
                            child.fill_existing(slot);
                        }
                    }
                }
            }
            Value::Array(items) => {
                for (key, child) in &self.literals {
                    let Ok(index) = key.parse::<usize>() else {
                        continue;
                    };
                    if items.len() <= index {
                        items.resize(index + 1, Value::Null);
                    }
                    child.fill(&mut items[index]);
                }
                for (pattern, child) in &self.wildcards {
                    for (index, slot) in items.iter_mut().enumerate() {
                        if pattern.captures(&index.to_string()).is_some() {
                            child.fill_existing(slot);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl Child {
    /// A literal key: create what is missing.
    fn fill(&self, slot: &mut Value) {
        match self {
            Child::Value(default) => {
                if slot.is_null() {
                    *slot = default.clone();
                }
            }
            Child::Node { node, array } => {
                if slot.is_null() {
                    *slot = if *array {
                        Value::Array(Vec::new())
                    } else {
                        Value::Object(Map::new())
                    };
                }
                node.apply(slot);
            }
        }
    }

    /// A wildcard: only complete keys the data already has.
    fn fill_existing(&self, slot: &mut Value) {
        match self {
            Child::Value(_) => self.fill(slot),
            Child::Node { node, .. } => node.apply(slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(spec: Value, input: Value) -> Value {
        Default::compile(&spec, "spec").unwrap().apply(input)
    }

    #[test]
    fn fills_missing_and_null_never_overwrites() {
        let out = run(
            json!({"country": "BR", "status": "new", "name": "x", "address": {"city": "?"}}),
            json!({"name": "Ana", "status": null}),
        );
        assert_eq!(
            out,
            json!({"name": "Ana", "status": "new", "country": "BR", "address": {"city": "?"}})
        );
    }

    #[test]
    fn wildcards_visit_existing_children_and_arrays() {
        let out = run(
            json!({"items[]": {"*": {"qty": 1}}, "a|b": 0}),
            json!({"items": [{"qty": 3}, {"sku": "x"}], "b": 5}),
        );
        assert_eq!(
            out,
            json!({"items": [{"qty": 3}, {"sku": "x", "qty": 1}], "b": 5, "a": 0})
        );
        assert_eq!(
            run(json!({"list[]": {"1": "z"}}), json!({})),
            json!({"list": [null, "z"]})
        );
    }

    #[test]
    fn array_key_needs_an_object() {
        assert_eq!(
            Default::compile(&json!({"a[]": 1}), "s")
                .unwrap_err()
                .path(),
            "s.a[]"
        );
    }
}
