//! The JSON Schema of the pipeline format, assembled from the step kinds,
//! and structural validation of a document against it.

use schemars::generate::SchemaSettings;
use schemars::{Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::{Document, FieldPath, PipelineDef, Problem, StepCommon};

/// What the format needs to know of one step type.
#[derive(Clone, Copy)]
pub struct StepKind {
    /// The `type` value.
    pub name: &'static str,
    /// One line on what the step does.
    pub summary: &'static str,
    /// The JSON Schema of the step's own fields (an object schema).
    pub schema: fn(&mut SchemaGenerator) -> Schema,
}

impl std::fmt::Debug for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepKind")
            .field("name", &self.name)
            .finish()
    }
}

/// The JSON Schema (draft 2020-12) of a pipeline file whose steps are of
/// `kinds`. Editors use it for completion; [`validate_structure`] uses it
/// to find every structural problem.
pub fn pipeline_schema(kinds: &[StepKind]) -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut root = generator.root_schema_for::<PipelineDef>().to_value();
    let common = <StepCommon as schemars::JsonSchema>::json_schema(&mut generator).to_value();
    let common_properties = common
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();

    let mut branches = Vec::new();
    let mut step_defs = Map::new();
    for kind in kinds {
        let mut schema = (kind.schema)(&mut generator).to_value();
        let object = schema
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut properties = object
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        properties.insert("type".into(), json!({"const": kind.name}));
        for (k, v) in &common_properties {
            properties.insert(k.clone(), v.clone());
        }
        let mut step = Map::new();
        step.insert("type".into(), json!("object"));
        step.insert("description".into(), json!(kind.summary));
        step.insert("properties".into(), Value::Object(properties));
        if let Some(required) = object.get("required") {
            step.insert("required".into(), required.clone());
        }
        step.insert("additionalProperties".into(), json!(false));
        for extra in ["allOf", "anyOf", "oneOf", "dependentRequired"] {
            if let Some(v) = object.get(extra) {
                step.insert(extra.into(), v.clone());
            }
        }
        let def_name = format!("step-{}", kind.name);
        step_defs.insert(def_name.clone(), Value::Object(step));
        branches.push(json!({
            "if": {"properties": {"type": {"const": kind.name}}, "required": ["type"]},
            "then": {"$ref": format!("#/$defs/{def_name}")}
        }));
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
    let step = json!({
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": names, "description": "The step type."}},
        "allOf": branches
    });

    let definitions = generator.take_definitions(true);
    if let Some(root) = root.as_object_mut() {
        let defs = root
            .entry("$defs")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(defs) = defs.as_object_mut() {
            defs.extend(definitions);
            defs.extend(step_defs);
            defs.insert("Step".into(), step);
        }
    }
    sharpen(&mut root);
    root
}

/// Rewrites the alternatives schemars generates so that a validator reports
/// the real problem instead of "not valid under any of the schemas":
/// `Option<T>` (`anyOf: [T, null]`) becomes `if null else T`, and a tagged
/// enum (`oneOf` whose branches each pin `type` to a constant) becomes one
/// `if type == … then branch` per variant, as steps are.
fn sharpen(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::Array(options)) = object.get("anyOf")
                && options.len() == 2
                && let Some(null_at) = options.iter().position(|o| o == &json!({"type": "null"}))
            {
                let other = options[1 - null_at].clone();
                object.remove("anyOf");
                object.insert("if".into(), json!({"type": "null"}));
                object.insert("else".into(), other);
            }
            if let Some(Value::Array(options)) = object.get("oneOf") {
                let tags: Option<Vec<Value>> = options
                    .iter()
                    .map(|o| o.pointer("/properties/type/const").cloned())
                    .collect();
                if let Some(tags) = tags.filter(|t| !t.is_empty()) {
                    let branches: Vec<Value> = options
                        .iter()
                        .zip(&tags)
                        .map(|(option, tag)| {
                            json!({
                                "if": {"properties": {"type": {"const": tag}}, "required": ["type"]},
                                "then": option
                            })
                        })
                        .collect();
                    object.remove("oneOf");
                    object.insert("type".into(), json!("object"));
                    object.insert("required".into(), json!(["type"]));
                    object.insert("properties".into(), json!({"type": {"enum": tags}}));
                    object.insert("allOf".into(), Value::Array(branches));
                }
            }
            object.values_mut().for_each(sharpen);
        }
        Value::Array(items) => items.iter_mut().for_each(sharpen),
        _ => {}
    }
}

/// Checks documents against a pipeline schema, compiled once.
pub struct StructureValidator {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for StructureValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StructureValidator")
    }
}

impl StructureValidator {
    /// Compiles `schema` (as made by [`pipeline_schema`]).
    pub fn new(schema: &Value) -> Result<Self, String> {
        jsonschema::draft202012::new(schema)
            .map(|validator| StructureValidator { validator })
            .map_err(|e| e.to_string())
    }

    /// Every structural problem of `document` (unknown or missing fields,
    /// wrong types, bad patterns), with positions.
    ///
    /// An unknown step `type` is left to the caller, which can name it
    /// better than the schema's long enumeration.
    pub fn validate(&self, document: &Document) -> Vec<Problem> {
        let mut problems = Vec::new();
        for error in self.validator.iter_errors(&document.value) {
            let path = FieldPath::from_pointer(error.instance_path().as_str());
            let schema_path = error.schema_path().as_str();
            if schema_path.ends_with("/properties/type/enum") {
                continue;
            }
            problems.push(document.problem(path, describe(&error)));
        }
        problems
    }
}

/// A shorter message than the validator's for the common cases.
fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as Kind;
    match error.kind() {
        Kind::AdditionalProperties { unexpected } => {
            let fields: Vec<String> = unexpected.iter().map(|f| format!("'{f}'")).collect();
            if fields.len() == 1 {
                format!("unknown field {}", fields[0])
            } else {
                format!("unknown fields {}", fields.join(", "))
            }
        }
        Kind::Required { property } => {
            format!("missing required field {property}")
        }
        Kind::Pattern { pattern } => {
            if pattern.contains("ms|s|m|h|d") {
                format!(
                    "invalid duration {}: expected a number and a unit (ms, s, m, h, d), e.g. 30s",
                    error.instance()
                )
            } else {
                format!("{} does not match the pattern {pattern}", error.instance())
            }
        }
        _ => error.to_string(),
    }
}
