//! Numbers: conversions, Java `DecimalFormat`-style formatting and random
//! integers.
//!
//! Formatting rounds on the decimal digits a person sees (the shortest text
//! that reads back as the same `f64`), so `1.005` with two decimals is `1.01`
//! under half-up, not `1.00` as binary rounding would give.

use serde_json::Value;

use super::{Args, FunctionDef, arg, integer, opt_string, string, type_name};
use crate::EvalError;

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "TONUMBER",
        min_args: 1,
        max_args: Some(4),
        body: to_number,
    },
    FunctionDef {
        name: "TOINT",
        min_args: 1,
        max_args: Some(1),
        body: to_int,
    },
    FunctionDef {
        name: "TOLONG",
        min_args: 1,
        max_args: Some(1),
        body: to_long,
    },
    FunctionDef {
        name: "TODOUBLE",
        min_args: 1,
        max_args: Some(1),
        body: to_double,
    },
    FunctionDef {
        name: "FORMATNUMBER",
        min_args: 2,
        max_args: Some(3),
        body: format_number,
    },
    FunctionDef {
        name: "RANDOMNUMBERS",
        min_args: 2,
        max_args: Some(2),
        body: random_numbers,
    },
];

/// A number as the functions see it: integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// The JSON value: floats that are not finite are an error of `function`.
    pub(crate) fn into_value(self, function: &'static str) -> Result<Value, EvalError> {
        match self {
            Num::Int(i) => Ok(Value::from(i)),
            Num::Float(f) => serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| EvalError::function(function, "the result is not a finite number")),
        }
    }
}

/// Reads a JSON number, or text holding one, keeping integers exact.
pub(crate) fn parse_num(value: &Value) -> Option<Num> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .map(Num::Int)
            .or_else(|| n.as_f64().map(Num::Float)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().map(Num::Int).ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Num::Float)
            })
        }
        _ => None,
    }
}

/// Argument `index` as a number (numeric text accepted).
pub(crate) fn num(
    function: &'static str,
    args: Args<'_, '_>,
    index: usize,
) -> Result<Num, EvalError> {
    let value = arg(args, index);
    parse_num(value).ok_or_else(|| {
        EvalError::function(
            function,
            match value {
                Value::String(s) => format!("argument {} must be a number, got '{s}'", index + 1),
                other => format!(
                    "argument {} must be a number, got {}",
                    index + 1,
                    type_name(other)
                ),
            },
        )
    })
}

/// Decimal and grouping separators of a locale (`en`, `en-US`, `pt-BR`…).
fn separators(function: &'static str, locale: Option<&str>) -> Result<(char, char), EvalError> {
    let Some(locale) = locale else {
        return Ok(('.', ','));
    };
    let language = locale
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match language.as_str() {
        "en" | "ja" | "zh" | "ko" | "he" | "th" => Ok(('.', ',')),
        "pt" | "de" | "es" | "it" | "nl" | "id" | "tr" | "da" | "el" => Ok((',', '.')),
        "fr" | "ru" | "pl" | "sv" | "nb" | "fi" | "cs" | "uk" => Ok((',', '\u{a0}')),
        _ => Err(EvalError::function(
            function,
            format!("locale '{locale}' is not supported"),
        )),
    }
}

fn to_number(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "TONUMBER";
    let value = arg(args, 0);
    // The pattern (argument 2) only documents the text's shape; the locale
    // decides the separators.
    let _pattern = opt_string(F, args, 1)?;
    let (decimal, group) = separators(F, opt_string(F, args, 2)?)?;
    let as_integer = match arg(args, 3) {
        Value::Null => false,
        Value::Bool(b) => *b,
        other => {
            return Err(EvalError::function(
                F,
                format!("argument 4 must be a boolean, got {}", type_name(other)),
            ));
        }
    };
    let parsed = match value {
        Value::Null => return Ok(Value::Null),
        Value::Number(_) => parse_num(value),
        Value::String(text) => {
            let normalized: String = text
                .trim()
                .chars()
                .filter(|c| *c != group && !(group == '\u{a0}' && (*c == ' ' || *c == '\u{202f}')))
                .map(|c| if c == decimal { '.' } else { c })
                .collect();
            parse_num(&Value::String(normalized))
        }
        other => {
            return Err(EvalError::function(
                F,
                format!(
                    "argument 1 must be a string or number, got {}",
                    type_name(other)
                ),
            ));
        }
    };
    let Some(n) = parsed else {
        return Err(EvalError::function(
            F,
            format!("'{}' is not a number", value.as_str().unwrap_or_default()),
        ));
    };
    if as_integer {
        truncate(F, n)
    } else {
        n.into_value(F)
    }
}

fn truncate(function: &'static str, n: Num) -> Result<Value, EvalError> {
    match n {
        Num::Int(i) => Ok(Value::from(i)),
        Num::Float(f) => {
            let t = f.trunc();
            if t.abs() < 9.223_372_036_854_775e18 {
                Ok(Value::from(t as i64))
            } else {
                Err(EvalError::function(
                    function,
                    format!("{f} does not fit in a 64-bit integer"),
                ))
            }
        }
    }
}

fn to_integer(function: &'static str, args: Args<'_, '_>) -> Result<Value, EvalError> {
    match arg(args, 0) {
        Value::Null => Ok(Value::Null),
        Value::Bool(b) => Ok(Value::from(i64::from(*b))),
        _ => truncate(function, num(function, args, 0)?),
    }
}

fn to_int(args: Args<'_, '_>) -> Result<Value, EvalError> {
    to_integer("TOINT", args)
}

fn to_long(args: Args<'_, '_>) -> Result<Value, EvalError> {
    to_integer("TOLONG", args)
}

fn to_double(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "TODOUBLE";
    match arg(args, 0) {
        Value::Null => Ok(Value::Null),
        _ => Num::Float(num(F, args, 0)?.as_f64()).into_value(F),
    }
}

fn random_numbers(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "RANDOMNUMBERS";
    let min = integer(F, args, 0)?;
    let max = integer(F, args, 1)?;
    if min > max {
        return Err(EvalError::function(
            F,
            format!("min {min} is greater than max {max}"),
        ));
    }
    Ok(Value::from(fastrand::i64(min..=max)))
}

/// How to round the last kept digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rounding {
    /// Away from zero on a tie (`ROUND`).
    HalfUp,
    /// To the even digit on a tie (Java `DecimalFormat`'s default).
    HalfEven,
}

/// The decimal digits of a finite `f64`: `digits` with the decimal point
/// after `point` of them (`point` may be negative or past the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    pub negative: bool,
    pub digits: Vec<u8>,
    pub point: i64,
}

impl Decimal {
    pub(crate) fn from_f64(f: f64) -> Decimal {
        // `{:e}` prints the shortest digits that read back as `f`.
        let text = format!("{:e}", f.abs());
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let exponent: i64 = exponent.parse().unwrap_or(0);
        let digits: Vec<u8> = mantissa
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect();
        let mut decimal = Decimal {
            negative: f.is_sign_negative() && f != 0.0,
            digits,
            point: exponent + 1,
        };
        decimal.trim();
        decimal
    }

    fn trim(&mut self) {
        while self.digits.last() == Some(&0) {
            self.digits.pop();
        }
        while self.digits.first() == Some(&0) {
            self.digits.remove(0);
            self.point -= 1;
        }
        if self.digits.is_empty() {
            self.point = 0;
            self.negative = false;
        }
    }

    /// Rounds to `decimals` digits after the point.
    pub(crate) fn round(&mut self, decimals: i64, mode: Rounding) {
        let keep = self.point + decimals;
        if keep >= self.digits.len() as i64 {
            return;
        }
        if keep < 0 {
            self.digits.clear();
            self.trim();
            return;
        }
        let keep = keep as usize;
        let first_dropped = self.digits[keep];
        let rest_nonzero = self.digits[keep + 1..].iter().any(|d| *d != 0);
        let previous_odd = keep > 0 && self.digits[keep - 1] % 2 == 1;
        let up = match (first_dropped.cmp(&5), mode) {
            (std::cmp::Ordering::Greater, _) => true,
            (std::cmp::Ordering::Less, _) => false,
            (std::cmp::Ordering::Equal, Rounding::HalfUp) => true,
            (std::cmp::Ordering::Equal, Rounding::HalfEven) => rest_nonzero || previous_odd,
        };
        self.digits.truncate(keep);
        if up {
            let mut i = keep;
            loop {
                if i == 0 {
                    self.digits.insert(0, 1);
                    self.point += 1;
                    break;
                }
                i -= 1;
                if self.digits[i] == 9 {
                    self.digits[i] = 0;
                } else {
                    self.digits[i] += 1;
                    break;
                }
            }
        }
        self.trim();
    }

    /// Digits before the point (at least `min` of them, zero-padded).
    fn integer_digits(&self, min: usize) -> Vec<u8> {
        let count = self.point.max(0) as usize;
        let mut out: Vec<u8> = (0..count)
            .map(|i| self.digits.get(i).copied().unwrap_or(0))
            .collect();
        while out.len() < min {
            out.insert(0, 0);
        }
        out
    }

    /// Digits after the point, between `min` and `max` of them.
    fn fraction_digits(&self, min: usize, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..max as i64 {
            let index = self.point + i;
            out.push(if index < 0 {
                0
            } else {
                self.digits.get(index as usize).copied().unwrap_or(0)
            });
        }
        while out.len() > min && out.last() == Some(&0) {
            out.pop();
        }
        out
    }

    pub(crate) fn to_f64(&self) -> f64 {
        let mut text = String::from(if self.negative { "-0." } else { "0." });
        text.extend(self.digits.iter().map(|d| char::from(b'0' + d)));
        text.push_str(&format!("e{}", self.point));
        text.parse().unwrap_or(0.0)
    }
}

/// A compiled `DecimalFormat` pattern: `prefix #,##0.00# suffix`, with an
/// optional `;negative` part, `%` (×100) and `‰` (×1000), and `'` quoting.
#[derive(Debug)]
struct Pattern {
    prefix: String,
    suffix: String,
    negative: Option<(String, String)>,
    min_integer: usize,
    grouping: Option<usize>,
    min_fraction: usize,
    max_fraction: usize,
    multiplier: u32,
}

fn parse_pattern(function: &'static str, pattern: &str) -> Result<Pattern, EvalError> {
    let (positive, negative) = split_unquoted(pattern, ';');
    let (prefix, body, suffix) = split_affixes(positive);
    if body.is_empty() {
        return Err(EvalError::function(
            function,
            format!("pattern '{pattern}' has no digits (use # and 0)"),
        ));
    }
    let (integer, fraction) = body.split_once('.').unwrap_or((body, ""));
    if fraction.contains(',') || fraction.contains('.') {
        return Err(EvalError::function(
            function,
            format!("pattern '{pattern}' has a malformed fraction part"),
        ));
    }
    let grouping = integer
        .rfind(',')
        .map(|i| integer.len() - i - 1)
        .filter(|g| *g > 0);
    let integer_digits: String = integer.chars().filter(|c| *c != ',').collect();
    if let Some(bad) = integer_digits
        .chars()
        .chain(fraction.chars())
        .find(|c| *c != '#' && *c != '0')
    {
        return Err(EvalError::function(
            function,
            format!("pattern '{pattern}': unexpected '{bad}' among the digits"),
        ));
    }
    if unquote_digits(suffix) {
        return Err(EvalError::function(
            function,
            format!(
                "pattern '{pattern}': digits after the suffix started (quote literal text with ')"
            ),
        ));
    }
    let affixes = format!("{prefix}{suffix}");
    let multiplier = if affixes.contains('%') {
        100
    } else if affixes.contains('‰') {
        1000
    } else {
        1
    };
    let negative = negative.map(|n| {
        let (p, _, s) = split_affixes(n);
        (unquote(p), unquote(s))
    });
    Ok(Pattern {
        prefix: unquote(prefix),
        suffix: unquote(suffix),
        negative,
        min_integer: integer_digits.chars().filter(|c| *c == '0').count(),
        grouping,
        min_fraction: fraction.chars().filter(|c| *c == '0').count(),
        max_fraction: fraction.len(),
        multiplier,
    })
}

/// Splits at the first `separator` outside `'` quotes.
fn split_unquoted(text: &str, separator: char) -> (&str, Option<&str>) {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            c if c == separator && !quoted => return (&text[..i], Some(&text[i + c.len_utf8()..])),
            _ => {}
        }
    }
    (text, None)
}

/// `prefix`, the digit body (`#0,.`), `suffix`.
fn split_affixes(part: &str) -> (&str, &str, &str) {
    let mut quoted = false;
    let mut start = None;
    let mut end = 0;
    for (i, c) in part.char_indices() {
        if c == '\'' {
            quoted = !quoted;
            continue;
        }
        if !quoted && matches!(c, '#' | '0' | ',' | '.') {
            start.get_or_insert(i);
            end = i + 1;
        } else if start.is_some() && !quoted {
            break;
        }
    }
    match start {
        Some(s) => (&part[..s], &part[s..end], &part[end..]),
        None => (part, "", ""),
    }
}

/// Whether unquoted text holds a digit placeholder (`#0,.`).
fn unquote_digits(text: &str) -> bool {
    let mut quoted = false;
    text.chars().any(|c| {
        if c == '\'' {
            quoted = !quoted;
        }
        !quoted && matches!(c, '#' | '0' | ',' | '.')
    })
}

fn unquote(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.peek() == Some(&'\'') {
                out.push('\'');
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn format_number(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "FORMATNUMBER";
    if arg(args, 0).is_null() {
        return Ok(Value::Null);
    }
    let n = num(F, args, 0)?.as_f64();
    let pattern = parse_pattern(F, string(F, args, 1)?)?;
    let (decimal_sep, group_sep) = separators(F, opt_string(F, args, 2)?)?;
    let mut decimal = Decimal::from_f64(n * f64::from(pattern.multiplier));
    decimal.round(pattern.max_fraction as i64, Rounding::HalfEven);
    let integer = decimal.integer_digits(pattern.min_integer.max(usize::from(
        pattern.max_fraction == 0 && pattern.min_integer == 0,
    )));
    let fraction = decimal.fraction_digits(pattern.min_fraction, pattern.max_fraction);
    let mut body = String::new();
    for (i, d) in integer.iter().enumerate() {
        if let Some(group) = pattern.grouping
            && i > 0
            && (integer.len() - i) % group == 0
        {
            body.push(group_sep);
        }
        body.push(char::from(b'0' + d));
    }
    if !fraction.is_empty() {
        body.push(decimal_sep);
        body.extend(fraction.iter().map(|d| char::from(b'0' + d)));
    }
    if body.is_empty() {
        body.push('0');
    }
    let text = if decimal.negative {
        match &pattern.negative {
            Some((prefix, suffix)) => format!("{prefix}{body}{suffix}"),
            None => format!("-{}{body}{}", pattern.prefix, pattern.suffix),
        }
    } else {
        format!("{}{body}{}", pattern.prefix, pattern.suffix)
    };
    Ok(Value::String(text))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    fn call(
        f: fn(Args<'_, '_>) -> Result<Value, EvalError>,
        args: &[Value],
    ) -> Result<Value, String> {
        let args: Vec<Cow<'_, Value>> = args.iter().map(Cow::Borrowed).collect();
        f(&args).map_err(|e| e.to_string())
    }

    #[test]
    fn to_number_parses_text_and_locales() {
        assert_eq!(call(to_number, &[json!("42")]).unwrap(), json!(42));
        assert_eq!(call(to_number, &[json!(" 3.5 ")]).unwrap(), json!(3.5));
        assert_eq!(
            call(
                to_number,
                &[json!("1.234,56"), json!("#,##0.00"), json!("pt-BR")]
            )
            .unwrap(),
            json!(1234.56)
        );
        assert_eq!(
            call(to_number, &[json!("1,234.56"), Value::Null, json!("en-US")]).unwrap(),
            json!(1234.56)
        );
        assert_eq!(
            call(
                to_number,
                &[json!("9.99"), Value::Null, Value::Null, json!(true)]
            )
            .unwrap(),
            json!(9)
        );
        assert_eq!(call(to_number, &[Value::Null]).unwrap(), Value::Null);
        assert_eq!(call(to_number, &[json!(7)]).unwrap(), json!(7));
        assert!(
            call(to_number, &[json!("abc")])
                .unwrap_err()
                .contains("TONUMBER: 'abc' is not a number")
        );
        assert!(
            call(to_number, &[json!("1"), Value::Null, json!("xx")])
                .unwrap_err()
                .contains("locale 'xx'")
        );
        assert!(
            call(to_number, &[json!([1])])
                .unwrap_err()
                .contains("TONUMBER")
        );
    }

    #[test]
    fn integer_and_double_conversions() {
        assert_eq!(call(to_int, &[json!(3.99)]).unwrap(), json!(3));
        assert_eq!(call(to_int, &[json!(-3.99)]).unwrap(), json!(-3));
        assert_eq!(call(to_int, &[json!("12")]).unwrap(), json!(12));
        assert_eq!(call(to_int, &[json!(true)]).unwrap(), json!(1));
        assert_eq!(
            call(to_long, &[json!("9007199254740993")]).unwrap(),
            json!(9_007_199_254_740_993_i64)
        );
        assert_eq!(call(to_double, &[json!(3)]).unwrap(), json!(3.0));
        assert_eq!(call(to_double, &[json!("2.5")]).unwrap(), json!(2.5));
        assert_eq!(call(to_int, &[Value::Null]).unwrap(), Value::Null);
        assert!(
            call(to_int, &[json!("x1")])
                .unwrap_err()
                .contains("TOINT: argument 1 must be a number")
        );
        assert!(call(to_int, &[json!(1e30)]).unwrap_err().contains("64-bit"));
        assert!(
            call(to_double, &[json!({})])
                .unwrap_err()
                .contains("TODOUBLE")
        );
    }

    #[test]
    fn format_number_follows_decimal_format() {
        let f = |n: Value, p: &str| call(format_number, &[n, json!(p)]).unwrap();
        assert_eq!(f(json!(1234567.891), "#,##0.00"), json!("1,234,567.89"));
        assert_eq!(f(json!(0.5), "#,##0.00"), json!("0.50"));
        assert_eq!(f(json!(5), "0000"), json!("0005"));
        assert_eq!(f(json!(1.5), "0.###"), json!("1.5"));
        assert_eq!(f(json!(0.256), "#.#%"), json!("25.6%"));
        assert_eq!(f(json!(-12.5), "#,##0.00"), json!("-12.50"));
        assert_eq!(f(json!(-12.5), "#,##0.00;(#,##0.00)"), json!("(12.50)"));
        assert_eq!(f(json!(2.5), "0"), json!("2"), "half-even, as Java");
        assert_eq!(f(json!(3.5), "0"), json!("4"));
        assert_eq!(f(json!(0.125), "0.00"), json!("0.12"));
        assert_eq!(f(json!(19.9), "'R$' #,##0.00"), json!("R$ 19.90"));
        assert_eq!(f(json!(0), "#.##"), json!("0"));
        assert_eq!(
            call(
                format_number,
                &[json!(1234.5), json!("#,##0.00"), json!("de")]
            )
            .unwrap(),
            json!("1.234,50")
        );
        assert_eq!(
            call(format_number, &[Value::Null, json!("0")]).unwrap(),
            Value::Null
        );
        assert!(
            call(format_number, &[json!(1), json!("abc")])
                .unwrap_err()
                .contains("no digits")
        );
        assert!(
            call(format_number, &[json!(1), json!("0.0x0")])
                .unwrap_err()
                .contains("FORMATNUMBER")
        );
        assert!(
            call(format_number, &[json!("x"), json!("0")])
                .unwrap_err()
                .contains("must be a number")
        );
    }

    #[test]
    fn random_numbers_stay_in_range() {
        for _ in 0..200 {
            let n = call(random_numbers, &[json!(1), json!(3)])
                .unwrap()
                .as_i64()
                .unwrap();
            assert!((1..=3).contains(&n));
        }
        assert_eq!(
            call(random_numbers, &[json!(5), json!(5)]).unwrap(),
            json!(5)
        );
        assert!(
            call(random_numbers, &[json!(5), json!(1)])
                .unwrap_err()
                .contains("greater")
        );
        assert!(
            call(random_numbers, &[json!(1.5), json!(2)])
                .unwrap_err()
                .contains("integer")
        );
    }

    #[test]
    fn decimal_rounding_uses_visible_digits() {
        let round = |f: f64, d: i64, m| {
            let mut x = Decimal::from_f64(f);
            x.round(d, m);
            x.to_f64()
        };
        assert_eq!(round(1.005, 2, Rounding::HalfUp), 1.01);
        assert_eq!(round(2.5, 0, Rounding::HalfUp), 3.0);
        assert_eq!(round(-2.5, 0, Rounding::HalfUp), -3.0);
        assert_eq!(round(2.5, 0, Rounding::HalfEven), 2.0);
        assert_eq!(round(9.99, 1, Rounding::HalfUp), 10.0);
        assert_eq!(round(1234.0, -2, Rounding::HalfUp), 1200.0);
        assert_eq!(round(0.0004, 2, Rounding::HalfUp), 0.0);
    }
}
