//! `remove`: deletes keys. The spec mirrors the input; a key whose spec value
//! is `""` is removed, an object value descends into that key. Keys may be
//! literals, `*` wildcards or `a|b` alternatives; inside arrays, keys are
//! indices.

use serde_json::{Map, Value};

use crate::error::{JoltError, child_path};
use crate::key::KeyPattern;

#[derive(Debug, Clone)]
pub(crate) struct Remove {
    root: Node,
}

#[derive(Debug, Clone)]
struct Node {
    entries: Vec<(KeyPattern, Action)>,
}

#[derive(Debug, Clone)]
enum Action {
    Delete,
    Descend(Node),
}

impl Remove {
    pub fn compile(spec: &Value, path: &str) -> Result<Remove, JoltError> {
        Ok(Remove {
            root: compile_node(spec, path)?,
        })
    }

    pub fn apply(&self, mut value: Value) -> Value {
        self.root.apply(&mut value);
        value
    }
}

fn compile_node(spec: &Value, path: &str) -> Result<Node, JoltError> {
    let Value::Object(map) = spec else {
        return Err(JoltError::spec(path, "a remove spec must be an object"));
    };
    let mut entries = Vec::with_capacity(map.len());
    for (raw, value) in map {
        let key_path = child_path(path, raw);
        let pattern = KeyPattern::parse(raw).map_err(|m| JoltError::spec(&key_path, m))?;
        let action = match value {
            Value::String(s) if s.is_empty() => Action::Delete,
            Value::Object(_) => Action::Descend(compile_node(value, &key_path)?),
            _ => {
                return Err(JoltError::spec(
                    &key_path,
                    "expected \"\" (remove this key) or an object (descend into it)",
                ));
            }
        };
        entries.push((pattern, action));
    }
    Ok(Node { entries })
}

impl Node {
    fn apply(&self, value: &mut Value) {
        match value {
            Value::Object(map) => self.apply_object(map),
            Value::Array(items) => self.apply_array(items),
            _ => {}
        }
    }

    fn apply_object(&self, map: &mut Map<String, Value>) {
        for (pattern, action) in &self.entries {
            let keys: Vec<String> = match pattern.as_literal() {
                Some(key) if map.contains_key(key) => vec![key.to_owned()],
                Some(_) => Vec::new(),
                None => map
                    .keys()
                    .filter(|k| pattern.captures(k).is_some())
                    .cloned()
                    .collect(),
            };
            for key in keys {
                match action {
                    Action::Delete => {
                        map.shift_remove(&key);
                    }
                    Action::Descend(node) => {
                        if let Some(child) = map.get_mut(&key) {
                            node.apply(child);
                        }
                    }
                }
            }
        }
    }

    fn apply_array(&self, items: &mut Vec<Value>) {
        let mut doomed = Vec::new();
        for (pattern, action) in &self.entries {
            for (index, item) in items.iter_mut().enumerate() {
                if pattern.captures(&index.to_string()).is_none() {
                    continue;
                }
                match action {
                    Action::Delete => doomed.push(index),
                    Action::Descend(node) => node.apply(item),
                }
            }
        }
        doomed.sort_unstable();
        doomed.dedup();
        for index in doomed.into_iter().rev() {
            items.remove(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn remove(spec: Value, input: Value) -> Value {
        Remove::compile(&spec, "spec").unwrap().apply(input)
    }

    #[test]
    fn removes_literals_wildcards_and_nested() {
        let out = remove(
            json!({"secret": "", "tmp-*": "", "user": {"password": ""}}),
            json!({"secret": 1, "tmp-a": 2, "tmp-b": 3, "keep": 4, "user": {"name": "x", "password": "p"}}),
        );
        assert_eq!(out, json!({"keep": 4, "user": {"name": "x"}}));
    }

    #[test]
    fn removes_inside_arrays_by_index_and_wildcard() {
        let out = remove(
            json!({"items": {"*": {"internal": ""}, "0": ""}}),
            json!({"items": [{"a": 1, "internal": 2}, {"a": 3, "internal": 4}]}),
        );
        assert_eq!(out, json!({"items": [{"a": 3}]}));
    }

    #[test]
    fn bad_spec_names_the_key() {
        let err = Remove::compile(&json!({"a": {"b": 1}}), "[0].spec").unwrap_err();
        assert_eq!(err.path(), "[0].spec.a.b");
    }
}
