//! Double Braces: the expression language of Sluice pipelines.
//!
//! This crate owns lexing, parsing, compiling and evaluating `{{ … }}`
//! expressions and the whole function library. It knows nothing of steps,
//! pipelines or I/O: callers hand it a [`Scope`] of JSON roots and get JSON
//! back. Expressions are compiled once; evaluation borrows from the scope and
//! allocates only what a result needs.

mod ast;
mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
mod template;

use std::collections::HashMap;
use std::sync::Arc;

pub use error::{EvalError, ParseError};
pub use eval::truthy;
pub use serde_json::Value;
pub use template::{Template, ValueTemplate};

/// Outputs of earlier steps by id, read as `steps.<id>`.
pub trait StepOutputs: Send + Sync {
    /// The output of step `id`, if it ran.
    fn get(&self, id: &str) -> Option<&Value>;
}

impl StepOutputs for serde_json::Map<String, Value> {
    fn get(&self, id: &str) -> Option<&Value> {
        serde_json::Map::get(self, id)
    }
}

impl StepOutputs for HashMap<String, Arc<Value>> {
    fn get(&self, id: &str) -> Option<&Value> {
        HashMap::get(self, id).map(|v| &**v)
    }
}

/// A root whose value may be built on first read (the engine makes
/// `metadata` only when an expression asks for it).
pub trait LazyRoot: Send + Sync {
    /// The root's value.
    fn value(&self) -> &Value;
}

impl LazyRoot for Value {
    fn value(&self) -> &Value {
        self
    }
}

/// The roots an expression can read; `None` roots read as null.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub message: &'a Value,
    pub steps: Option<&'a dyn StepOutputs>,
    pub global: Option<&'a Value>,
    pub account: Option<&'a Value>,
    pub metadata: Option<&'a dyn LazyRoot>,
    pub item: Option<&'a Value>,
    pub index: Option<&'a Value>,
    pub error: Option<&'a Value>,
}

impl<'a> Scope<'a> {
    /// A scope with only `message`.
    pub fn new(message: &'a Value) -> Self {
        Scope {
            message,
            steps: None,
            global: None,
            account: None,
            metadata: None,
            item: None,
            index: None,
            error: None,
        }
    }
}

/// How a value is written into mixed text: strings as they are, null as
/// nothing, numbers and booleans as JSON, arrays and objects as compact JSON.
pub fn render_text(value: &Value, out: &mut String) {
    match value {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        other => out.push_str(&other.to_string()),
    }
}

/// The name of every function of the library.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    functions::table().map(|f| f.name)
}
