//! What can go wrong compiling or running an embedded language.

use std::time::Duration;

use serde::Serialize;

/// One JSON Schema violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer into the checked value (`""` for the root).
    pub path: String,
    pub message: String,
    /// The schema keyword that failed (`required`, `type`, …).
    pub keyword: String,
}

/// A failure of an embedded language.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LangError {
    /// The program (filter, path, template, script, schema) is not valid.
    #[error("invalid {language}: {message}")]
    Compile {
        language: &'static str,
        message: String,
    },
    /// The program failed while running.
    #[error("{language} failed: {message}")]
    Runtime {
        language: &'static str,
        message: String,
    },
    /// The program ran past its time limit.
    #[error("{language} ran longer than {limit:?}")]
    Timeout {
        language: &'static str,
        limit: Duration,
    },
    /// The program used more memory than allowed.
    #[error("{language} used more than {limit} bytes of memory")]
    Memory {
        language: &'static str,
        limit: usize,
    },
    /// The output is larger than allowed.
    #[error("{language} output is larger than {limit} bytes")]
    OutputTooLarge {
        language: &'static str,
        limit: usize,
    },
    /// The value does not match the JSON Schema.
    #[error("{}", describe_violations(.0))]
    Invalid(Vec<Violation>),
}

fn describe_violations(violations: &[Violation]) -> String {
    let parts: Vec<String> = violations
        .iter()
        .map(|v| {
            let at = if v.path.is_empty() {
                "(root)"
            } else {
                v.path.as_str()
            };
            format!("{at}: {}", v.message)
        })
        .collect();
    format!(
        "{} schema violation{}: {}",
        violations.len(),
        if violations.len() == 1 { "" } else { "s" },
        parts.join("; ")
    )
}

impl LangError {
    /// The stable error code for the execution error object.
    pub fn code(&self) -> &'static str {
        match self {
            LangError::Compile { .. } => "compile",
            LangError::Runtime { .. } => "runtime",
            LangError::Timeout { .. } => "timeout",
            LangError::Memory { .. } => "memory",
            LangError::OutputTooLarge { .. } => "output_size",
            LangError::Invalid(_) => "validation",
        }
    }
}
