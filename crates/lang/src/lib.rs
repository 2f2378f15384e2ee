//! The embedded languages pipeline steps run: jq (jaq), JSONPath (RFC 9535),
//! Jinja (minijinja), JavaScript (QuickJS) and JSON Schema. Each is compiled
//! once and run per message under time, memory and size limits.
//!
//! This crate knows nothing of pipelines, steps or expressions: it takes and
//! gives `serde_json` values, and never touches the file system or network.

mod error;
mod jinja;
mod jq;
mod jsonpath;
mod schema;
mod script;

use std::time::Duration;

pub use error::{LangError, Violation};
pub use jinja::Jinja;
pub use jq::Jq;
pub use jsonpath::JsonPath;
pub use schema::SchemaValidator;
pub use script::Script;

/// Budgets for one run of a script or template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest run.
    pub time: Duration,
    /// Most memory (bytes) a script may allocate.
    pub memory: usize,
    /// Largest output (bytes).
    pub output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_secs(1),
            memory: 32 * 1024 * 1024,
            output: 10 * 1024 * 1024,
        }
    }
}
