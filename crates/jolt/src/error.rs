//! The crate's error type.

/// Why a JOLT chain could not be compiled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoltError {
    /// The spec is malformed; `path` locates the offending part inside the
    /// chain spec, like `[0].spec.rating.*.value`.
    #[error("invalid JOLT spec{}: {message}", location(.path))]
    InvalidSpec {
        /// Where in the spec the problem is (empty for the chain itself).
        path: String,
        /// What is wrong, in words a person can act on.
        message: String,
    },
}

impl JoltError {
    /// A stable, machine-readable code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            JoltError::InvalidSpec { .. } => "jolt_invalid_spec",
        }
    }

    /// The path inside the spec the error points at.
    pub fn path(&self) -> &str {
        match self {
            JoltError::InvalidSpec { path, .. } => path,
        }
    }

    pub(crate) fn spec(path: &str, message: impl Into<String>) -> Self {
        JoltError::InvalidSpec {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

fn location(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at `{path}`")
    }
}

/// The path of a child key inside a spec path.
pub(crate) fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The path of an array element inside a spec path.
pub(crate) fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}
