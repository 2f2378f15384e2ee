//! RFC 9535 JSONPath queries.

use serde_json::Value;

use crate::LangError;

/// A compiled JSONPath.
#[derive(Debug, Clone)]
pub struct JsonPath(serde_json_path::JsonPath);

impl JsonPath {
    /// Parses `path`.
    pub fn compile(path: &str) -> Result<JsonPath, LangError> {
        serde_json_path::JsonPath::parse(path)
            .map(JsonPath)
            .map_err(|e| LangError::Compile {
                language: "JSONPath",
                message: e.to_string(),
            })
    }

    /// Every match in `value`, in document order.
    pub fn query<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        self.0.query(value).all()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn filters_slices_and_functions() {
        let doc = json!({"book": [
            {"title": "A", "price": 8, "tags": ["x"]},
            {"title": "B", "price": 12, "tags": []},
            {"title": "C", "price": 9, "tags": ["x", "y"]}
        ]});
        let q = |p: &str| {
            JsonPath::compile(p)
                .expect("valid")
                .query(&doc)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            q("$.book[?@.price < 10].title"),
            vec![json!("A"), json!("C")]
        );
        assert_eq!(q("$.book[1:].title"), vec![json!("B"), json!("C")]);
        assert_eq!(q("$.book[?length(@.tags) > 1].title"), vec![json!("C")]);
        assert_eq!(q("$..title").len(), 3);
        assert_eq!(
            q("$.book[?match(@.title, '[AB]')].price"),
            vec![json!(8), json!(12)]
        );
        assert!(q("$.nothing").is_empty());
    }

    #[test]
    fn bad_paths_are_compile_errors() {
        let e = JsonPath::compile("$[?").expect_err("invalid");
        assert_eq!(e.code(), "compile");
        assert!(e.to_string().starts_with("invalid JSONPath"), "{e}");
    }
}
