//! JOLT JSON-to-JSON transforms, the language of the `jolt` step.
//!
//! This crate owns the JOLT language as defined by the Java bazaarvoice JOLT
//! library: a [`Chain`] compiles a chain spec (`shift`, `default`, `remove`,
//! `modify-overwrite-beta`, `modify-default-beta`, `modify-define-beta`,
//! `cardinality`, `sort`) once, reporting spec errors with the path inside the
//! spec, and then applies it to any number of JSON values without parsing
//! anything again. It knows nothing about steps, pipelines or the engine, and
//! does no I/O.

mod cardinality;
mod chain;
mod default;
mod error;
mod key;
mod modify;
mod path;
mod remove;
mod shift;
mod sort;

pub use chain::Chain;
pub use error::JoltError;

/// Result type of this crate.
pub type Result<T, E = JoltError> = std::result::Result<T, E>;
