//! The pipeline engine: compiles a pipeline definition into a plan once
//! (expressions, nested steps, step runtimes), then runs the plan over JSON
//! messages on tokio, applying the common step fields (`if`, `into`,
//! `timeout`, `failOnError`) around every step, handling errors with
//! `onException`, masking sensitive data and recording a per-step trace.
//!
//! The engine owns no I/O of its own: sessions, object stores, events and
//! calls to other pipelines go through the traits in [`services`], so the
//! CLI can use in-memory versions and the server its store and bus.

mod catalog;
mod compile;
mod context;
mod error;
mod field;
mod files;
mod load;
mod mask;
mod plan;
mod run;
pub mod services;
mod steps;
pub mod testing;
mod trace;

pub use catalog::{Catalog, StepFactory, schema_of};
pub use compile::StepCx;
pub use context::{Context, LogLine, Response};
pub use error::{FlowError, LoadError};
pub use field::FieldRef;
pub use files::FileCaller;
pub use load::{compile_document, load_file, load_str};
pub use mask::{MASKED, Mask};
pub use plan::{Execution, Plan, RunOptions, new_execution_key};
pub use run::run_steps;
pub use services::Services;
pub use steps::{Step, StepFuture, StepList, Writes, ready};
pub use trace::{MaskedTrace, TraceEntry, TraceStatus};

/// The message flowing between steps: shared, cloned only when written to
/// while another reference is alive.
pub type Message = std::sync::Arc<serde_json::Value>;
