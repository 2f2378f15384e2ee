//! `sort`: orders the keys of every object alphabetically, recursively, so
//! output is stable whatever order the input came in. Arrays keep their order.

use serde_json::{Map, Value};

pub(crate) fn apply(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, apply(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(apply).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn sorts_nested_keys_and_keeps_array_order() {
        let out = super::apply(json!({"b": 1, "a": {"z": 1, "y": [{"d": 1, "c": 2}, 3]}}));
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"a":{"y":[{"c":2,"d":1},3],"z":1},"b":1}"#
        );
    }
}
