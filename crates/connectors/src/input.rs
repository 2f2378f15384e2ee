//! The `value` field most connector steps share: the data they work on,
//! an expression tree over the message (default: the message itself).

use serde_json::Value;
use sluice_engine::{Context, FlowError, StepCx};
use sluice_expr::ValueTemplate;

/// What a step works on: its `value` field, or the message.
pub struct Input(Option<ValueTemplate>);

impl Input {
    /// Compiles the `value` field (when there is one).
    pub fn compile(cx: &mut StepCx<'_, '_>, value: Option<&Value>) -> Option<Self> {
        match value {
            None => Some(Input(None)),
            Some(v) => cx.value_template("value", v).map(|t| Input(Some(t))),
        }
    }

    /// The value for this message.
    pub fn value(&self, cx: &Context, message: &Value) -> Result<Value, FlowError> {
        match &self.0 {
            None => Ok(message.clone()),
            Some(t) => cx.eval_value(t, message),
        }
    }

    /// The value as text: a string as it is, anything else as JSON text.
    pub fn text(&self, cx: &Context, message: &Value) -> Result<String, FlowError> {
        Ok(as_text(self.value(cx, message)?))
    }
}

/// A string as it is, anything else as JSON text.
pub fn as_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The error of a step given input it cannot use (400).
pub fn bad_input(step: &str, message: impl Into<String>) -> FlowError {
    FlowError::new(step.to_owned(), 400, message)
}
