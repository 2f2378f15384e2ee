//! The per-step trace of an execution, as the portal's execution view shows it.
//!
//! Entries hold the messages as they were (shared, not copied) and unmasked:
//! most traces are never kept, so masking is paid only when a trace is
//! serialized, through [`MaskedTrace`] — the only way a trace leaves.

use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use crate::Message;
use crate::mask::Mask;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceStatus {
    Ok,
    Error,
    Skipped,
}

/// One step run.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// The step id, or its path when it has none.
    pub step: Arc<str>,
    /// The step type.
    pub kind: &'static str,
    pub status: TraceStatus,
    /// Microseconds from the start of the execution.
    pub start_us: u64,
    pub duration_us: u64,
    /// The input message (unmasked), when payloads are traced.
    pub input: Option<Message>,
    /// The output (unmasked), when payloads are traced.
    pub output: Option<Message>,
    /// The error object (unmasked), when the step failed.
    pub error: Option<Value>,
}

/// A trace with its mask applied as it is serialized: sensitive fields and
/// secrets come out as `***`.
pub struct MaskedTrace<'a> {
    pub entries: &'a [TraceEntry],
    pub mask: &'a Mask,
}

impl MaskedTrace<'_> {
    /// The trace as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "[]".to_owned())
    }
}

impl Serialize for MaskedTrace<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.entries.len()))?;
        for entry in self.entries {
            seq.serialize_element(&MaskedEntry {
                entry,
                mask: self.mask,
            })?;
        }
        seq.end()
    }
}

struct MaskedEntry<'a> {
    entry: &'a TraceEntry,
    mask: &'a Mask,
}

impl Serialize for MaskedEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.entry;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("step", &*e.step)?;
        map.serialize_entry("type", e.kind)?;
        map.serialize_entry("status", &e.status)?;
        map.serialize_entry("startUs", &e.start_us)?;
        map.serialize_entry("durationUs", &e.duration_us)?;
        let payloads = [
            ("input", e.input.as_deref()),
            ("output", e.output.as_deref()),
            ("error", e.error.as_ref()),
        ];
        for (name, value) in payloads {
            let Some(value) = value else { continue };
            if self.mask.is_empty() {
                map.serialize_entry(name, value)?;
            } else {
                map.serialize_entry(name, &self.mask.value(value))?;
            }
        }
        map.end()
    }
}
