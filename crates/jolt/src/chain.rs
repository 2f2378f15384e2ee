//! A compiled chain of JOLT operations.

use serde_json::Value;

use crate::cardinality::Cardinality;
use crate::default::Default;
use crate::error::{JoltError, child_path, index_path};
use crate::modify::{Modify, WriteMode};
use crate::remove::Remove;
use crate::shift::Shift;

/// A compiled JOLT chain: the `spec` of a `jolt` step (an array of operations
/// `{operation, spec}`; a single object operation is also accepted).
#[derive(Debug, Clone)]
pub struct Chain {
    operations: Vec<Operation>,
}

#[derive(Debug, Clone)]
enum Operation {
    Shift(Shift),
    Default(Default),
    Remove(Remove),
    Modify(Modify),
    Cardinality(Cardinality),
    Sort,
}

const OPERATIONS: &str = "shift, default, remove, modify-overwrite-beta, \
     modify-default-beta, modify-define-beta, cardinality, sort";

impl Chain {
    /// Parses and validates a chain spec; every later [`Chain::apply`] reuses
    /// the compiled form.
    pub fn compile(spec: &Value) -> Result<Chain, JoltError> {
        let operations = match spec {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| compile_operation(item, &index_path("", i)))
                .collect::<Result<Vec<_>, _>>()?,
            Value::Object(_) => vec![compile_operation(spec, "")?],
            _ => {
                return Err(JoltError::spec(
                    "",
                    "a JOLT chain must be an array of operations (or one operation object)",
                ));
            }
        };
        Ok(Chain { operations })
    }

    /// Runs every operation of the chain in order, each on the previous one's
    /// output.
    pub fn apply(&self, input: Value) -> Result<Value, JoltError> {
        let mut value = input;
        for operation in &self.operations {
            value = match operation {
                Operation::Shift(shift) => shift.apply(&value),
                Operation::Default(default) => default.apply(value),
                Operation::Remove(remove) => remove.apply(value),
                Operation::Modify(modify) => modify.apply(value),
                Operation::Cardinality(cardinality) => cardinality.apply(value),
                Operation::Sort => crate::sort::apply(value),
            };
        }
        Ok(value)
    }
}

fn compile_operation(item: &Value, path: &str) -> Result<Operation, JoltError> {
    let Value::Object(fields) = item else {
        return Err(JoltError::spec(
            path,
            "an operation must be an object `{\"operation\": ..., \"spec\": ...}`",
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| *k != "operation" && *k != "spec") {
        return Err(JoltError::spec(
            &child_path(path, unknown),
            format!("unknown field `{unknown}` (an operation has `operation` and `spec`)"),
        ));
    }
    let name_path = child_path(path, "operation");
    let name = match fields.get("operation") {
        Some(Value::String(name)) => name.as_str(),
        Some(_) => return Err(JoltError::spec(&name_path, "`operation` must be a string")),
        None => return Err(JoltError::spec(path, "missing `operation`")),
    };
    let spec_path = child_path(path, "spec");
    let spec = fields.get("spec");
    if name == "sort" {
        return Ok(Operation::Sort);
    }
    if !OPERATIONS.split(", ").any(|known| known == name) {
        return Err(JoltError::spec(
            &name_path,
            format!("unknown operation `{name}` (expected one of {OPERATIONS})"),
        ));
    }
    let Some(spec) = spec else {
        return Err(JoltError::spec(
            path,
            format!("missing `spec` for `{name}`"),
        ));
    };
    Ok(match name {
        "shift" => Operation::Shift(Shift::compile(spec, &spec_path)?),
        "default" => Operation::Default(Default::compile(spec, &spec_path)?),
        "remove" => Operation::Remove(Remove::compile(spec, &spec_path)?),
        "cardinality" => Operation::Cardinality(Cardinality::compile(spec, &spec_path)?),
        "modify-overwrite-beta" => {
            Operation::Modify(Modify::compile(spec, &spec_path, WriteMode::Overwrite)?)
        }
        "modify-default-beta" => {
            Operation::Modify(Modify::compile(spec, &spec_path, WriteMode::Default)?)
        }
        _ => Operation::Modify(Modify::compile(spec, &spec_path, WriteMode::Define)?),
    })
}
