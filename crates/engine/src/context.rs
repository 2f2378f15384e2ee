//! The state of one execution (or one branch of it) that steps read and
//! write: step outputs, the scope roots, the answer, logs and the trace.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use sluice_expr::{LazyRoot, Scope, Template, ValueTemplate};

use crate::mask::Mask;
use crate::services::Services;
use crate::testing::Mocks;
use crate::trace::{After, Edit, Open, Pending, append_journal};
use crate::{FlowError, Message, TraceEntry};

/// The HTTP answer set by a `response` step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub status: u16,
    pub headers: Map<String, Value>,
    /// Shared: a `response` without `body` answers with the message
    /// itself, which it need not copy.
    pub body: Message,
}

/// One line written by a `log` step (already masked).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
    /// The step that wrote it.
    pub step: Arc<str>,
    /// Unix time in milliseconds.
    pub at: i64,
}

/// What `metadata` is made of; the JSON is built on first use only, since
/// most executions never read it.
pub(crate) struct MetadataSource {
    pub pipeline: String,
    pub major: u32,
    pub minor: u32,
    pub realm: String,
    pub environment: String,
    pub key: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub attempt: u32,
    pub redelivery: bool,
}

impl MetadataSource {
    fn to_value(&self) -> Value {
        serde_json::json!({
            "pipeline": {
                "name": self.pipeline,
                "major": self.major,
                "minor": self.minor,
                "realm": self.realm,
            },
            "environment": self.environment,
            "execution": {
                "key": self.key,
                "startedAt": self.started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "attempt": self.attempt,
                "redelivery": self.redelivery,
            }
        })
    }
}

/// What every branch of one execution shares.
pub(crate) struct Shared {
    pub globals: Arc<Value>,
    pub accounts: Arc<Value>,
    pub metadata_source: MetadataSource,
    pub metadata: std::sync::OnceLock<Value>,
    pub services: Services,
    pub mocks: Option<Mocks>,
    pub mask: std::sync::Arc<Mask>,
    pub trace_payloads: bool,
    pub max_trace_entries: usize,
    pub call_depth: u32,
    pub started: std::time::Instant,
}

impl LazyRoot for Shared {
    fn value(&self) -> &Value {
        self.metadata
            .get_or_init(|| self.metadata_source.to_value())
    }
}

/// Per-branch execution state handed to every step.
pub struct Context {
    pub(crate) shared: Arc<Shared>,
    pub(crate) outputs: HashMap<String, Message>,
    pub(crate) item: Option<Message>,
    pub(crate) index: Option<Value>,
    pub(crate) error: Option<Value>,
    pub(crate) response: Option<Response>,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) trace: Vec<TraceEntry>,
    /// The changes made in place that the trace needs taken back.
    pub(crate) journal: Vec<Edit>,
    /// The inputs of the steps running now (outermost first).
    pub(crate) open: Vec<Open>,
}

/// How far back in the trace a holder of the message being changed is
/// looked for; one further back makes the change copy, as before.
const HOLDERS_SCANNED: usize = 16;

impl Context {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Context {
            shared,
            outputs: HashMap::new(),
            item: None,
            index: None,
            error: None,
            response: None,
            logs: Vec::new(),
            trace: Vec::new(),
            journal: Vec::new(),
            open: Vec::new(),
        }
    }

    /// Makes `message` changeable in place when everything else holding it
    /// is this context's trace, its open inputs or its journal: those are
    /// pointed at the message as it is before the change about to be
    /// journaled, whose index is returned. `None` when something else
    /// holds it too (a step output, a branch, a loop item…): the change
    /// then copies it.
    pub(crate) fn detach(&mut self, message: &Message) -> Option<usize> {
        let others = Arc::strong_count(message) - 1;
        if others == 0 {
            return Some(self.journal.len());
        }
        let same = |m: &Message| Arc::ptr_eq(m, message);
        let journal = self
            .journal
            .iter()
            .rev()
            .take(HOLDERS_SCANNED)
            .position(|e| matches!(&e.after, After::Held(m) if same(m)))
            .map(|back| self.journal.len() - 1 - back);
        let open: Vec<usize> = (0..self.open.len())
            .filter(|i| matches!(&self.open[*i], Open::Held(m) if same(m)))
            .collect();
        let mut found = usize::from(journal.is_some()) + open.len();
        let mut slots = Vec::new();
        for (i, entry) in self.trace.iter().enumerate().rev().take(HOLDERS_SCANNED) {
            if found >= others {
                break;
            }
            for (which, held) in [&entry.input, &entry.output].into_iter().enumerate() {
                if held.as_ref().is_some_and(same) {
                    slots.push((i, which));
                    found += 1;
                }
            }
        }
        if found != others {
            return None;
        }
        let change = self.journal.len();
        let before = Pending::Before(change);
        if let Some(j) = journal {
            self.journal[j].after = After::Before(change);
        }
        for i in open {
            self.open[i] = Open::Pending(before);
        }
        for (i, which) in slots {
            let entry = &mut self.trace[i];
            if which == 0 {
                entry.input = None;
            } else {
                entry.output = None;
            }
            entry.pending[which] = Some(before);
        }
        Some(change)
    }

    /// The expression scope over `message`.
    pub fn scope<'a>(&'a self, message: &'a Value) -> Scope<'a> {
        let mut scope = Scope::new(message);
        scope.steps = Some(&self.outputs);
        scope.global = Some(&self.shared.globals);
        scope.account = Some(&self.shared.accounts);
        scope.metadata = Some(&*self.shared as &dyn LazyRoot);
        scope.item = self.item.as_deref();
        scope.index = self.index.as_ref();
        scope.error = self.error.as_ref();
        scope
    }

    /// Evaluates a template over `message`.
    pub fn eval<'a>(
        &'a self,
        template: &'a Template,
        message: &'a Value,
    ) -> Result<Cow<'a, Value>, FlowError> {
        template
            .eval(&self.scope(message))
            .map_err(FlowError::expression)
    }

    /// Renders a template over `message` as text.
    pub fn render<'a>(
        &'a self,
        template: &'a Template,
        message: &'a Value,
    ) -> Result<Cow<'a, str>, FlowError> {
        template
            .render(&self.scope(message))
            .map_err(FlowError::expression)
    }

    /// Evaluates a JSON tree template over `message`.
    pub fn eval_value(
        &self,
        template: &ValueTemplate,
        message: &Value,
    ) -> Result<Value, FlowError> {
        template
            .eval(&self.scope(message))
            .map_err(FlowError::expression)
    }

    /// Evaluates a JSON tree template with `item` and `index` set (steps
    /// that repeat over elements, like a database batch).
    pub fn eval_value_for(
        &self,
        template: &ValueTemplate,
        message: &Value,
        item: &Value,
        index: &Value,
    ) -> Result<Value, FlowError> {
        let mut scope = self.scope(message);
        scope.item = Some(item);
        scope.index = Some(index);
        template.eval(&scope).map_err(FlowError::expression)
    }

    /// Whether a condition holds over `message`.
    pub fn condition(&self, template: &Template, message: &Value) -> Result<bool, FlowError> {
        template
            .is_true(&self.scope(message))
            .map_err(FlowError::expression)
    }

    /// The services (sessions, objects, events, calls).
    pub fn services(&self) -> &Services {
        &self.shared.services
    }

    /// The execution's metadata (`pipeline`, `environment`, `execution`).
    pub fn metadata(&self) -> &Value {
        self.shared.value()
    }

    /// The execution key.
    pub fn execution_key(&self) -> &str {
        &self.shared.metadata_source.key
    }

    /// An account's fields by name (connector steps with `account:`).
    pub fn account(&self, name: &str) -> Option<&Value> {
        self.shared.accounts.get(name)
    }

    /// The globals and accounts (for steps that hand them to other languages).
    pub fn globals(&self) -> &Value {
        &self.shared.globals
    }

    /// The current `for-each` element, `index`, and `error` (when set).
    pub fn item(&self) -> Option<&Value> {
        self.item.as_deref()
    }

    pub fn index(&self) -> Option<&Value> {
        self.index.as_ref()
    }

    pub fn error(&self) -> Option<&Value> {
        self.error.as_ref()
    }

    /// Sets the execution's HTTP answer.
    pub fn set_response(&mut self, response: Response) {
        self.response = Some(response);
    }

    /// Writes a log line, masked.
    pub fn log(&mut self, level: &'static str, step: &Arc<str>, text: &str, message: &Value) {
        let masked = self.shared.mask.text(text, message).into_owned();
        self.logs.push(LogLine {
            level,
            message: masked,
            step: step.clone(),
            at: chrono::Utc::now().timestamp_millis(),
        });
    }

    /// A child context for a branch run alongside others: it sees the
    /// outputs so far; its own outputs, logs and trace come back through
    /// [`Context::join`].
    pub fn fork(&self) -> Context {
        Context {
            shared: self.shared.clone(),
            outputs: self.outputs.clone(),
            item: self.item.clone(),
            index: self.index.clone(),
            error: self.error.clone(),
            response: None,
            logs: Vec::new(),
            trace: Vec::new(),
            journal: Vec::new(),
            open: Vec::new(),
        }
    }

    /// Takes back a branch's outputs, answer, logs and trace.
    pub fn join(&mut self, child: Context) {
        for (k, v) in child.outputs {
            self.outputs.insert(k, v);
        }
        if child.response.is_some() {
            self.response = child.response;
        }
        self.logs.extend(child.logs);
        let room = self
            .shared
            .max_trace_entries
            .saturating_sub(self.trace.len());
        let mut trace = child.trace;
        trace.truncate(room);
        // A branch none of whose trace is kept leaves its journal behind
        // too: a long loop does not hold every item's messages.
        if !trace.is_empty() {
            append_journal(&mut self.journal, child.journal, &mut trace);
        }
        self.trace.extend(trace);
    }

    /// Sets `item`/`index`/`error`, returning what they were for [`Context::restore_frame`].
    pub(crate) fn with_frame(
        &mut self,
        item: Option<Message>,
        index: Option<Value>,
        error: Option<Value>,
    ) -> Frame {
        Frame {
            item: std::mem::replace(&mut self.item, item),
            index: std::mem::replace(&mut self.index, index),
            error: std::mem::replace(&mut self.error, error),
        }
    }

    pub(crate) fn restore_frame(&mut self, frame: Frame) {
        self.item = frame.item;
        self.index = frame.index;
        self.error = frame.error;
    }

    /// Sets the error visible as `{{ error }}` (inside `onException`).
    pub(crate) fn set_error(&mut self, error: Option<Value>) -> Option<Value> {
        std::mem::replace(&mut self.error, error)
    }
}

/// The saved scope roots of an enclosing frame.
pub(crate) struct Frame {
    item: Option<Message>,
    index: Option<Value>,
    error: Option<Value>,
}
