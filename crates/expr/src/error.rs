//! Errors of parsing (at load time) and evaluation (at run time).

/// A problem found while parsing an expression; `column` is 1-based and
/// counts characters of the field the expression was written in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (column {column})")]
pub struct ParseError {
    pub message: String,
    pub column: usize,
}

/// A failure while evaluating a compiled expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A function was given an argument it cannot work with.
    #[error("{function}: {message}")]
    Function {
        function: &'static str,
        message: String,
    },
    /// An operator was applied to values it cannot combine (e.g. `{} * 2`).
    #[error("{0}")]
    Operator(String),
}

impl EvalError {
    /// An error raised by the function `function` (upper-case name).
    pub fn function(function: &'static str, message: impl Into<String>) -> Self {
        EvalError::Function {
            function,
            message: message.into(),
        }
    }
}
