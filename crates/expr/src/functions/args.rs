//! Helpers that read typed arguments and produce errors naming the function.

use serde_json::Value;

use super::Args;
use crate::EvalError;

/// The JSON type name used in error messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(function: &'static str, index: usize, expected: &str, got: &Value) -> EvalError {
    EvalError::function(
        function,
        format!(
            "argument {} must be {expected}, got {}",
            index + 1,
            type_name(got)
        ),
    )
}

/// Argument `index` (0-based) or `Null` when it was not given.
pub(crate) fn arg<'a>(args: Args<'a, '_>, index: usize) -> &'a Value {
    args.get(index).map_or(&Value::Null, |v| v.as_ref())
}

/// A string argument.
pub(crate) fn string<'a>(
    function: &'static str,
    args: Args<'a, '_>,
    index: usize,
) -> Result<&'a str, EvalError> {
    match arg(args, index) {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(function, index, "a string", other)),
    }
}

/// An optional string argument: missing or null gives `None`.
pub(crate) fn opt_string<'a>(
    function: &'static str,
    args: Args<'a, '_>,
    index: usize,
) -> Result<Option<&'a str>, EvalError> {
    match arg(args, index) {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(wrong_type(function, index, "a string", other)),
    }
}

/// A number argument; numeric strings are accepted.
pub(crate) fn number(
    function: &'static str,
    args: Args<'_, '_>,
    index: usize,
) -> Result<f64, EvalError> {
    let value = arg(args, index);
    match value {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| wrong_type(function, index, "a number", value)),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| wrong_type(function, index, "a number", value)),
        other => Err(wrong_type(function, index, "a number", other)),
    }
}

/// An integer argument; integral floats and numeric strings are accepted.
pub(crate) fn integer(
    function: &'static str,
    args: Args<'_, '_>,
    index: usize,
) -> Result<i64, EvalError> {
    let value = arg(args, index);
    if let Value::Number(n) = value
        && let Some(i) = n.as_i64()
    {
        return Ok(i);
    }
    let f = number(function, args, index)?;
    if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        // Exact: |f| < 2^53, so the cast keeps every digit.
        Ok(f as i64)
    } else {
        Err(wrong_type(function, index, "an integer", value))
    }
}

/// An optional integer argument: missing or null gives `None`.
pub(crate) fn opt_integer(
    function: &'static str,
    args: Args<'_, '_>,
    index: usize,
) -> Result<Option<i64>, EvalError> {
    match arg(args, index) {
        Value::Null => Ok(None),
        _ => integer(function, args, index).map(Some),
    }
}

/// An array argument.
pub(crate) fn array<'a>(
    function: &'static str,
    args: Args<'a, '_>,
    index: usize,
) -> Result<&'a Vec<Value>, EvalError> {
    match arg(args, index) {
        Value::Array(a) => Ok(a),
        other => Err(wrong_type(function, index, "an array", other)),
    }
}

/// The JSON number for `f`: an integer when `f` is integral and exact, a
/// float otherwise; NaN and infinities are an error of `function`.
pub(crate) fn number_value(function: &'static str, f: f64) -> Result<Value, EvalError> {
    if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        // Exact: |f| < 2^53.
        return Ok(Value::from(f as i64));
    }
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| EvalError::function(function, "result is not a finite number"))
}
