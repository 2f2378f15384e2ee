//! Format steps: `csv-to-json`, `json-to-csv`, `xml-to-json` and
//! `json-to-xml`. Parsing and writing go through the `csv` and `quick-xml`
//! crates; this module only maps their records and events to JSON and back.

use serde_json::{Number, Value};
use sluice_engine::{StepCx, StepFactory};

mod csv;
mod xml;

/// The format step types.
pub(crate) const FACTORIES: [StepFactory; 4] = [
    self::csv::CSV_TO_JSON,
    self::csv::JSON_TO_CSV,
    self::xml::XML_TO_JSON,
    self::xml::JSON_TO_XML,
];

/// How a JSON value's type is named in error messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A text cell or XML value with `types: true`: integers and decimals (in
/// JSON's number syntax) become numbers, `true`/`false` booleans, the empty
/// text null; anything else stays the string it was.
pub(crate) fn typed(text: &str) -> Value {
    match text {
        "" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => number(text).map_or_else(|| Value::String(text.to_owned()), Value::Number),
    }
}

/// `text` as a JSON number when it is written exactly like one (no sign
/// `+`, no leading zeros, no spaces) and fits without losing digits of an
/// integer; `None` otherwise.
fn number(text: &str) -> Option<Number> {
    let bytes = text.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let int_digits = digits(&mut i);
    if int_digits == 0 || (int_digits > 1 && bytes[int_start] == b'0') {
        return None;
    }
    let mut integer = true;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return None;
        }
        integer = false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
        integer = false;
    }
    if i != bytes.len() {
        return None;
    }
    if integer {
        if let Ok(n) = text.parse::<i64>() {
            return Some(Number::from(n));
        }
        // Integers beyond 64 bits would lose digits as floats: keep the text.
        return text.parse::<u64>().ok().map(Number::from);
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

/// Reads a one-character option (`delimiter`, `quote`) as the byte the
/// `csv` crate wants, recording a problem at the field when it is not a
/// single ASCII character or is a line break.
pub(crate) fn single_byte(cx: &mut StepCx<'_, '_>, field: &str, text: &str) -> Option<u8> {
    let mut chars = text.chars();
    let problem = match (chars.next(), chars.next()) {
        (Some(c), None) if c == '\n' || c == '\r' => {
            Some(format!("{field} cannot be a line break"))
        }
        (Some(c), None) if c.is_ascii() => None,
        (Some(c), None) => Some(format!(
            "{field} must be an ASCII character, got {c:?} (U+{:04X})",
            u32::from(c)
        )),
        _ => Some(format!(
            "{field} must be exactly one character, got {text:?} ({} characters)",
            text.chars().count()
        )),
    };
    match problem {
        None => u8::try_from(u32::from(text.chars().next()?)).ok(),
        Some(message) => {
            cx.problem(cx.path().key(field), message);
            None
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_cells() {
        assert_eq!(typed("42"), json!(42));
        assert_eq!(typed("-7"), json!(-7));
        assert_eq!(typed("1.5"), json!(1.5));
        assert_eq!(typed("2e3"), json!(2000.0));
        assert_eq!(
            typed("18446744073709551615"),
            json!(18446744073709551615u64)
        );
        assert_eq!(
            typed("123456789012345678901234"),
            json!("123456789012345678901234")
        );
        assert_eq!(typed("007"), json!("007"));
        assert_eq!(typed("+1"), json!("+1"));
        assert_eq!(typed("1."), json!("1."));
        assert_eq!(typed(".5"), json!(".5"));
        assert_eq!(typed(" 1"), json!(" 1"));
        assert_eq!(typed("1e999"), json!("1e999"));
        assert_eq!(typed("true"), json!(true));
        assert_eq!(typed("False"), json!("False"));
        assert_eq!(typed(""), Value::Null);
        assert_eq!(typed("abc"), json!("abc"));
    }

    #[test]
    fn lines_and_columns() {
        let text = "ab\nçd\nx";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 5), (2, 2));
        assert_eq!(line_col(text, 100), (3, 2));
    }
}
