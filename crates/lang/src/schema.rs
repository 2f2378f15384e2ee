//! JSON Schema validation, local references only.

use serde_json::Value;

use crate::{LangError, Violation};

/// A compiled JSON Schema.
pub struct SchemaValidator(jsonschema::Validator);

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchemaValidator")
    }
}

impl SchemaValidator {
    /// Compiles `schema` (draft 2020-12 unless `$schema` says otherwise).
    /// References outside the schema are refused: nothing is fetched.
    pub fn compile(schema: &Value) -> Result<SchemaValidator, LangError> {
        jsonschema::validator_for(schema)
            .map(SchemaValidator)
            .map_err(|e| {
                let message = match e.kind() {
                    jsonschema::error::ValidationErrorKind::Referencing(r) => {
                        format!("{r} (only references inside the schema are allowed)")
                    }
                    _ => format!("{e} at {}", pointer_or_root(e.schema_path().as_str())),
                };
                LangError::Compile {
                    language: "JSON Schema",
                    message,
                }
            })
    }

    /// Checks `value`; the error lists every violation.
    pub fn validate(&self, value: &Value) -> Result<(), LangError> {
        let violations: Vec<Violation> = self
            .0
            .iter_errors(value)
            .map(|e| Violation {
                path: e.instance_path().as_str().to_owned(),
                message: e.to_string(),
                keyword: e.kind().keyword().to_owned(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(LangError::Invalid(violations))
        }
    }
}

fn pointer_or_root(p: &str) -> &str {
    if p.is_empty() { "(root)" } else { p }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_every_violation() {
        let schema = json!({
            "type": "object",
            "required": ["a", "b"],
            "properties": {"a": {"type": "integer"}, "c": {"$ref": "#/$defs/small"}},
            "$defs": {"small": {"maximum": 3}}
        });
        let v = SchemaValidator::compile(&schema).expect("valid");
        assert!(v.validate(&json!({"a": 1, "b": 2, "c": 3})).is_ok());
        let Err(LangError::Invalid(violations)) = v.validate(&json!({"a": "x", "c": 9})) else {
            panic!("should be invalid");
        };
        let mut seen: Vec<(String, String)> = violations
            .iter()
            .map(|v| (v.path.clone(), v.keyword.clone()))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("".into(), "required".into()),
                ("/a".into(), "type".into()),
                ("/c".into(), "maximum".into())
            ]
        );
    }

    #[test]
    fn bad_and_remote_schemas_are_compile_errors() {
        let e = SchemaValidator::compile(&json!({"type": "nonsense"})).expect_err("invalid");
        assert_eq!(e.code(), "compile");
        let e = SchemaValidator::compile(&json!({"$ref": "https://example.com/schema.json"}))
            .expect_err("remote");
        assert_eq!(e.code(), "compile");
    }
}
