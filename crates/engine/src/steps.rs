//! The step trait, compiled step lists, and every built-in step type.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sluice_expr::Template;

use crate::field::Undo;
use crate::{Context, FieldRef, FlowError, Message};

pub(crate) mod assert;
pub(crate) mod block;
pub(crate) mod call;
pub(crate) mod choice;
pub(crate) mod delay;
pub(crate) mod do_while;
pub(crate) mod for_each;
pub(crate) mod jolt;
pub(crate) mod jq;
pub(crate) mod json;
pub(crate) mod jsonpath;
pub(crate) mod log;
pub(crate) mod object_store;
pub(crate) mod parallel;
pub(crate) mod publish;
pub(crate) mod response;
pub(crate) mod retry;
pub(crate) mod script;
pub(crate) mod session;
pub(crate) mod set;
pub(crate) mod template;
pub(crate) mod throw_error;
pub(crate) mod validate;

/// What running a step gives: its output message, or an error.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Message, FlowError>> + Send + 'a>>;

/// A compiled step: built once per pipeline load from its config, run per
/// message. The engine applies the common fields around it.
pub trait Step: Send + Sync + 'static {
    /// Runs the step on `message`.
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a>;

    /// For a step that only writes and removes fields of the message
    /// (`set`): what it writes, computed over `message` without changing
    /// it, so the engine can apply it in place and keep an undo for the
    /// trace instead of a copy. `None` for every other step; a step that
    /// answers must do in `run` exactly what its writes do.
    fn writes<'a>(
        &'a self,
        _message: &Value,
        _cx: &Context,
    ) -> Option<Result<Writes<'a>, FlowError>> {
        None
    }
}

/// The fields a step writes (in order) and then removes.
pub struct Writes<'a> {
    pub(crate) set: Vec<(&'a FieldRef, Value)>,
    pub(crate) remove: &'a [FieldRef],
}

impl<'a> Writes<'a> {
    /// Writes `set` in order, then removes `remove`.
    pub fn new(set: Vec<(&'a FieldRef, Value)>, remove: &'a [FieldRef]) -> Self {
        Writes { set, remove }
    }

    /// Applies the writes to `target`.
    pub fn apply(self, target: &mut Value) {
        for (field, value) in self.set {
            field.set(target, value);
        }
        for field in self.remove {
            field.remove(target);
        }
    }

    /// Applies the writes to `target` and says how to take them back
    /// (applied in reverse order).
    pub(crate) fn apply_keeping(self, target: &mut Value) -> Vec<Undo> {
        let mut undo: Vec<Undo> = self
            .set
            .into_iter()
            .map(|(field, value)| field.set_keeping(target, value))
            .collect();
        undo.extend(self.remove.iter().filter_map(|f| f.remove_keeping(target)));
        undo
    }
}

/// One step of a list with its common fields compiled.
pub(crate) struct Node {
    /// The id, or the path of the step when it has none (names it in traces and errors).
    pub label: Arc<str>,
    pub id: Option<Arc<str>>,
    pub kind: &'static str,
    pub condition: Option<Template>,
    pub into: Option<FieldRef>,
    pub timeout: Option<Duration>,
    pub fail_on_error: bool,
    pub step: Box<dyn Step>,
}

/// A compiled list of steps, run in order.
#[derive(Clone, Default)]
pub struct StepList(pub(crate) Arc<[Node]>);

impl StepList {
    /// Whether the list has no step.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for StepList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|n| &n.label))
            .finish()
    }
}

/// The variables other languages (jq, Jinja, JavaScript) see besides the
/// message, in this order.
pub(crate) const LANGUAGE_VARIABLES: &[&str] = &["item", "index", "error", "global", "metadata"];

/// The values of [`LANGUAGE_VARIABLES`] in `cx`.
pub(crate) fn language_values(cx: &Context) -> Vec<serde_json::Value> {
    use serde_json::Value;
    vec![
        cx.item().cloned().unwrap_or(Value::Null),
        cx.index().cloned().unwrap_or(Value::Null),
        cx.error().cloned().unwrap_or(Value::Null),
        cx.globals().clone(),
        cx.metadata().clone(),
    ]
}

/// A failure of an embedded language as an execution error.
pub(crate) fn language_error(error: sluice_lang::LangError) -> FlowError {
    use sluice_lang::LangError;
    let status = match &error {
        LangError::Invalid(_) => 400,
        LangError::Timeout { .. } => 504,
        _ => 500,
    };
    let mut flow = FlowError::new(error.code(), status, error.to_string());
    if let LangError::Invalid(violations) = &error {
        flow = flow.with_details(serde_json::json!({ "violations": violations }));
    }
    flow
}

/// A step future that is ready at once (for steps that do no waiting).
pub fn ready<'a>(result: Result<Message, FlowError>) -> StepFuture<'a> {
    Box::pin(std::future::ready(result))
}
