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

/// Checks a `headers` field at compile time: an object (name: value), or
/// an expression that gives one; the problem is reported at `headers`.
#[cfg(any(feature = "kafka", feature = "rabbitmq"))]
pub(crate) fn check_headers(cx: &mut StepCx<'_, '_>, headers: Option<&Value>) -> bool {
    if headers.is_some_and(|h| !(h.is_object() || h.is_string())) {
        let path = cx.path().key("headers");
        cx.problem(path, "headers must be an object (name: value)");
        return false;
    }
    true
}

/// The names and values of a `headers` template for this message: it must
/// give an object; null values are left out and an empty name is refused.
#[cfg(any(feature = "kafka", feature = "rabbitmq"))]
pub(crate) fn header_pairs(
    step: &str,
    cx: &Context,
    template: &ValueTemplate,
    message: &Value,
) -> Result<Vec<(String, Value)>, FlowError> {
    let Value::Object(map) = cx.eval_value(template, message)? else {
        return Err(bad_input(step, "headers must be an object"));
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (name, value) in map {
        if value.is_null() {
            continue;
        }
        if name.is_empty() {
            return Err(bad_input(step, "a header name is empty"));
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// The error of a step given input it cannot use (400).
pub fn bad_input(step: &str, message: impl Into<String>) -> FlowError {
    FlowError::new(step.to_owned(), 400, message)
}

/// Account `name` of this environment, or a 400 saying there is none.
pub fn account<'c>(step: &str, cx: &'c Context, name: &str) -> Result<&'c Value, FlowError> {
    cx.account(name).ok_or_else(|| {
        bad_input(
            step,
            format!("there is no account '{name}' in this environment"),
        )
    })
}

/// A text field of an account, when it has one.
pub fn account_text<'a>(account: &'a Value, field: &str) -> Option<&'a str> {
    account.get(field).and_then(Value::as_str)
}

/// A text field the account must have, or a 400 naming the account and field.
pub fn account_field<'a>(
    step: &str,
    name: &str,
    account: &'a Value,
    field: &str,
) -> Result<&'a str, FlowError> {
    account_text(account, field)
        .ok_or_else(|| bad_input(step, format!("account '{name}' has no '{field}' field")))
}

/// Checks that a connector step names its server one way: `url` or
/// `account`, not both nor neither (`what`: "the server", "the broker"…).
pub fn url_or_account<T, U>(
    cx: &mut StepCx<'_, '_>,
    what: &str,
    url: Option<&T>,
    account: Option<&U>,
) -> Option<()> {
    if url.is_some() == account.is_some() {
        let path = cx.path().clone();
        cx.problem(
            path,
            format!("give {what} as `url` or `account` (one of them)"),
        );
        return None;
    }
    Some(())
}

/// The bytes of the file at `path`, `len` bytes long by its metadata, when
/// it holds at most `max`; else `Err(size)`. The size is looked at before
/// reading and again while reading, in case the file grew meanwhile.
#[cfg(any(feature = "file", feature = "object-storage"))]
pub(crate) fn read_at_most(
    path: &std::path::Path,
    len: u64,
    max: u64,
) -> std::io::Result<Result<Vec<u8>, u64>> {
    use std::io::Read as _;
    if len > max {
        return Ok(Err(len));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    let read = bytes.len() as u64;
    Ok(if read > max { Err(read) } else { Ok(bytes) })
}

/// An operator's root directory: the environment variable's value, else
/// `default`, relative paths taken from the working directory.
#[cfg(any(feature = "file", feature = "object-storage"))]
pub(crate) fn root_dir(variable: &str, default: &str) -> std::path::PathBuf {
    use std::path::PathBuf;
    let given = std::env::var_os(variable)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from);
    if given.is_absolute() {
        given
    } else {
        std::env::current_dir().map_or(given.clone(), |dir| dir.join(&given))
    }
}

/// Checks the `content` of a writing operation (`write`, `put`): given,
/// and a string when `encoding: base64`. Names the problem at
/// `content`; false when there is one.
#[cfg(any(feature = "file", feature = "object-storage"))]
pub(crate) fn check_content(
    cx: &mut StepCx<'_, '_>,
    operation: &str,
    purpose: &str,
    content: Option<&Value>,
    base64: bool,
) -> bool {
    let at = cx.path().key("content");
    match content {
        None => {
            cx.problem(
                at,
                format!("operation {operation} needs `content`: {purpose}"),
            );
            false
        }
        Some(content) if base64 && !content.is_string() => {
            cx.problem(
                at,
                "with `encoding: base64` the content must be a string of base64",
            );
            false
        }
        Some(_) => true,
    }
}
