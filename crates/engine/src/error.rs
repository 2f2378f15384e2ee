//! The error object of an execution, and errors of loading a pipeline.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};
use sluice_spec::Problems;

/// An execution error: the one JSON object users see everywhere —
/// `{message, status, code, step, details}`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowError {
    /// What went wrong, for people.
    pub message: String,
    /// HTTP-style status (default 500).
    pub status: u16,
    /// A stable machine word (`timeout`, `validation`, `assertion`, `thrown`, `expression`, …).
    pub code: Cow<'static, str>,
    /// The failing step's id, or its path when it has none.
    pub step: Option<String>,
    /// Anything more that helps (violations, the remote answer…).
    pub details: Option<Box<Value>>,
}

impl FlowError {
    /// An error with `code` and `status`.
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        status: u16,
        message: impl Into<String>,
    ) -> Self {
        FlowError {
            message: message.into(),
            status,
            code: code.into(),
            step: None,
            details: None,
        }
    }

    /// An expression that failed while evaluating (status 500, code `expression`).
    pub fn expression(error: sluice_expr::EvalError) -> Self {
        FlowError::new("expression", 500, error.to_string())
    }

    /// A step that ran past its time.
    pub fn timeout(after: std::time::Duration) -> Self {
        FlowError::new(
            "timeout",
            504,
            format!("timed out after {}", sluice_spec::HumanDuration(after)),
        )
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// Records how many tries were made (in `details.attempts`).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        match self.details.as_deref_mut() {
            Some(Value::Object(map)) => {
                map.insert("attempts".into(), Value::from(attempts));
            }
            None => {
                let mut map = Map::new();
                map.insert("attempts".into(), Value::from(attempts));
                self.details = Some(Box::new(Value::Object(map)));
            }
            Some(_) => {}
        }
        self
    }

    /// Names the failing step unless a deeper step was named already.
    pub fn at_step(mut self, label: &str) -> Self {
        if self.step.is_none() {
            self.step = Some(label.to_owned());
        }
        self
    }

    /// The error as its JSON object.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("message".into(), Value::String(self.message.clone()));
        m.insert("status".into(), Value::from(self.status));
        m.insert("code".into(), Value::String(self.code.to_string()));
        m.insert(
            "step".into(),
            self.step.clone().map_or(Value::Null, Value::String),
        );
        m.insert(
            "details".into(),
            self.details.as_deref().cloned().unwrap_or(Value::Null),
        );
        Value::Object(m)
    }

    /// Reads an error object (as written in mocks or caught from a called
    /// pipeline); missing fields take their defaults.
    pub fn from_value(value: &Value) -> Self {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        let status = value
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (100..600).contains(s))
            .unwrap_or(500);
        FlowError {
            message: text("message").unwrap_or_else(|| "error".into()),
            status,
            code: Cow::Owned(text("code").unwrap_or_else(|| "thrown".into())),
            step: text("step"),
            details: value
                .get("details")
                .filter(|d| !d.is_null())
                .cloned()
                .map(Box::new),
        }
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.message, self.code, self.status)?;
        if let Some(step) = &self.step {
            write!(f, " at {step}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FlowError {}

/// Why a pipeline could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The file has problems; every one is listed.
    #[error("{0}")]
    Invalid(Problems),
}
