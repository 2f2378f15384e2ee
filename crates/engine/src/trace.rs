//! The per-step trace of an execution, as the portal's execution view shows it.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceStatus {
    Ok,
    Error,
    Skipped,
}

/// One step run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceEntry {
    /// The step id, or its path when it has none.
    pub step: Arc<str>,
    /// The step type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: TraceStatus,
    /// Microseconds from the start of the execution.
    pub start_us: u64,
    pub duration_us: u64,
    /// The input message (masked), when payloads are traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The output (masked), when payloads are traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The error object, when the step failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}
