//! String functions.

use regex::Regex;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use super::{
    Args, FunctionDef, arg, build_regex, integer, opt_integer, opt_string, string, type_name,
};
use crate::{EvalError, render_text};

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "CONCAT",
        min_args: 1,
        max_args: None,
        body: concat,
    },
    FunctionDef {
        name: "CONTAINS",
        min_args: 2,
        max_args: Some(2),
        body: contains,
    },
    FunctionDef {
        name: "CAPITALIZE",
        min_args: 1,
        max_args: Some(1),
        body: capitalize,
    },
    FunctionDef {
        name: "LOWERCASE",
        min_args: 1,
        max_args: Some(1),
        body: lowercase,
    },
    FunctionDef {
        name: "UPPERCASE",
        min_args: 1,
        max_args: Some(1),
        body: uppercase,
    },
    FunctionDef {
        name: "TRIM",
        min_args: 1,
        max_args: Some(1),
        body: trim,
    },
    FunctionDef {
        name: "SUBSTRING",
        min_args: 2,
        max_args: Some(4),
        body: substring,
    },
    FunctionDef {
        name: "INDEXOF",
        min_args: 2,
        max_args: Some(3),
        body: index_of,
    },
    FunctionDef {
        name: "LASTINDEXOF",
        min_args: 2,
        max_args: Some(2),
        body: last_index_of,
    },
    FunctionDef {
        name: "REPLACE",
        min_args: 3,
        max_args: Some(3),
        body: replace,
    },
    FunctionDef {
        name: "SPLIT",
        min_args: 2,
        max_args: Some(2),
        body: split,
    },
    FunctionDef {
        name: "JOIN",
        min_args: 1,
        max_args: None,
        body: join,
    },
    FunctionDef {
        name: "LEFTPAD",
        min_args: 2,
        max_args: Some(3),
        body: left_pad,
    },
    FunctionDef {
        name: "RIGHTPAD",
        min_args: 2,
        max_args: Some(3),
        body: right_pad,
    },
    FunctionDef {
        name: "MATCHES",
        min_args: 2,
        max_args: Some(2),
        body: matches,
    },
    FunctionDef {
        name: "STRINGMATCHES",
        min_args: 2,
        max_args: Some(3),
        body: string_matches,
    },
    FunctionDef {
        name: "NORMALIZE",
        min_args: 1,
        max_args: Some(1),
        body: normalize,
    },
    FunctionDef {
        name: "ESCAPE",
        min_args: 1,
        max_args: Some(2),
        body: escape,
    },
    FunctionDef {
        name: "UNESCAPE",
        min_args: 1,
        max_args: Some(2),
        body: unescape,
    },
    FunctionDef {
        name: "RANDOMSTRINGS",
        min_args: 2,
        max_args: Some(2),
        body: random_strings,
    },
    FunctionDef {
        name: "TOSTRING",
        min_args: 1,
        max_args: Some(1),
        body: to_string,
    },
];

fn text(value: &Value) -> String {
    let mut out = String::new();
    render_text(value, &mut out);
    out
}

fn concat(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let mut out = String::new();
    for a in args {
        render_text(a, &mut out);
    }
    Ok(Value::String(out))
}

fn contains(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(match arg(args, 0) {
        Value::String(s) => s.contains(&text(arg(args, 1))),
        Value::Array(items) => items.iter().any(|i| crate::eval::equal(i, arg(args, 1))),
        Value::Object(map) => arg(args, 1).as_str().is_some_and(|k| map.contains_key(k)),
        Value::Null => false,
        other => {
            return Err(EvalError::function(
                "CONTAINS",
                format!(
                    "argument 1 must be a string, an array or an object, got {}",
                    type_name(other)
                ),
            ));
        }
    }))
}

fn capitalize(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let s = string("CAPITALIZE", args, 0)?;
    let mut chars = s.chars();
    Ok(Value::String(match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }))
}

fn lowercase(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::String(string("LOWERCASE", args, 0)?.to_lowercase()))
}

fn uppercase(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::String(string("UPPERCASE", args, 0)?.to_uppercase()))
}

fn trim(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::String(string("TRIM", args, 0)?.trim().to_owned()))
}

/// Character index → byte offset, clamped to the string.
fn byte_at(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(i, _)| i)
}

fn substring(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "SUBSTRING";
    let s = string(F, args, 0)?;
    let len = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
    let start = integer(F, args, 1)?;
    let end = opt_integer(F, args, 2)?.unwrap_or(len);
    let strict = matches!(arg(args, 3), Value::Bool(true));
    if strict && (start < 0 || end > len || start > end) {
        return Err(EvalError::function(
            F,
            format!("range {start}..{end} is outside a string of {len} characters"),
        ));
    }
    let clamp = |n: i64| usize::try_from(n.clamp(0, len)).unwrap_or(0);
    let (a, b) = (clamp(start), clamp(end));
    if a >= b {
        return Ok(Value::String(String::new()));
    }
    Ok(Value::String(s[byte_at(s, a)..byte_at(s, b)].to_owned()))
}

fn char_index(s: &str, byte: usize) -> i64 {
    i64::try_from(s[..byte].chars().count()).unwrap_or(-1)
}

fn index_of(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "INDEXOF";
    if let Value::Array(items) = arg(args, 0) {
        let pos = items
            .iter()
            .position(|i| crate::eval::equal(i, arg(args, 1)));
        return Ok(Value::from(
            pos.map_or(-1, |p| i64::try_from(p).unwrap_or(-1)),
        ));
    }
    let s = string(F, args, 0)?;
    let needle = text(arg(args, 1));
    let from = usize::try_from(opt_integer(F, args, 2)?.unwrap_or(0).max(0)).unwrap_or(0);
    let start = byte_at(s, from);
    Ok(Value::from(
        s[start..]
            .find(&needle)
            .map_or(-1, |b| char_index(s, start + b)),
    ))
}

fn last_index_of(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let s = string("LASTINDEXOF", args, 0)?;
    let needle = text(arg(args, 1));
    Ok(Value::from(
        s.rfind(&needle).map_or(-1, |b| char_index(s, b)),
    ))
}

fn replace(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let re = build_regex("REPLACE", string("REPLACE", args, 1)?)?;
    with_regex("REPLACE", args, &re)
}

fn split(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let re = build_regex("SPLIT", string("SPLIT", args, 1)?)?;
    with_regex("SPLIT", args, &re)
}

fn matches(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let re = build_regex("MATCHES", string("MATCHES", args, 1)?)?;
    with_regex("MATCHES", args, &re)
}

fn string_matches(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "STRINGMATCHES";
    let pattern = string(F, args, 1)?;
    let re = match opt_string(F, args, 2)? {
        Some(flags) => build_regex(F, &format!("(?{flags}){pattern}"))?,
        None => build_regex(F, pattern)?,
    };
    with_regex(F, args, &re)
}

/// The regex functions, with the pattern (argument 2) compiled.
pub(super) fn with_regex(
    name: &'static str,
    args: Args<'_, '_>,
    re: &Regex,
) -> Result<Value, EvalError> {
    let s = string(name, args, 0)?;
    Ok(match name {
        "REPLACE" => {
            let replacement = string(name, args, 2)?;
            Value::String(re.replace_all(s, replacement).into_owned())
        }
        "SPLIT" => Value::Array(re.split(s).map(|p| Value::String(p.to_owned())).collect()),
        // Java's String.matches: the whole string must match.
        "MATCHES" => Value::Bool(
            re.find(s)
                .is_some_and(|m| m.start() == 0 && m.end() == s.len()),
        ),
        _ => Value::Array(
            re.find_iter(s)
                .map(|m| Value::String(m.as_str().to_owned()))
                .collect(),
        ),
    })
}

fn join(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let separator = string("JOIN", args, 0)?;
    let mut parts = Vec::new();
    for a in &args[1..] {
        match a.as_ref() {
            Value::Array(items) => parts.extend(items.iter().map(text)),
            other => parts.push(text(other)),
        }
    }
    Ok(Value::String(parts.join(separator)))
}

/// Longest padded string accepted (a guard against runaway widths).
const MAX_PAD: i64 = 1 << 20;

fn pad(name: &'static str, args: Args<'_, '_>, left: bool) -> Result<Value, EvalError> {
    let s = text(arg(args, 0));
    let width = integer(name, args, 1)?;
    if !(0..=MAX_PAD).contains(&width) {
        return Err(EvalError::function(
            name,
            format!("length must be between 0 and {MAX_PAD}, got {width}"),
        ));
    }
    let fill = match opt_string(name, args, 2)? {
        Some(c) if c.chars().count() == 1 => c.chars().next().unwrap_or(' '),
        Some(c) => {
            return Err(EvalError::function(
                name,
                format!("the pad character must be one character, got '{c}'"),
            ));
        }
        None => ' ',
    };
    let have = s.chars().count();
    let want = usize::try_from(width).unwrap_or(0);
    if have >= want {
        return Ok(Value::String(s));
    }
    let padding: String = std::iter::repeat_n(fill, want - have).collect();
    Ok(Value::String(if left {
        padding + &s
    } else {
        s + &padding
    }))
}

fn left_pad(args: Args<'_, '_>) -> Result<Value, EvalError> {
    pad("LEFTPAD", args, true)
}

fn right_pad(args: Args<'_, '_>) -> Result<Value, EvalError> {
    pad("RIGHTPAD", args, false)
}

fn normalize(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let s = string("NORMALIZE", args, 0)?;
    Ok(Value::String(
        s.nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .collect(),
    ))
}

fn escape(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "ESCAPE";
    let s = string(F, args, 0)?;
    let kind = opt_string(F, args, 1)?
        .unwrap_or("json")
        .to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    match kind.as_str() {
        "json" | "java" => {
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '/' if kind == "json" => out.push_str("\\/"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
        }
        "html" | "xml" => {
            for c in s.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str(if kind == "xml" { "&apos;" } else { "&#39;" }),
                    c => out.push(c),
                }
            }
        }
        "csv" => {
            if s.contains([',', '"', '\n', '\r']) {
                out.push('"');
                out.push_str(&s.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(s);
            }
        }
        other => {
            return Err(EvalError::function(
                F,
                format!("unknown type '{other}': expected json, java, html, xml or csv"),
            ));
        }
    }
    Ok(Value::String(out))
}

fn unescape(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "UNESCAPE";
    let s = string(F, args, 0)?;
    let kind = opt_string(F, args, 1)?
        .unwrap_or("json")
        .to_ascii_lowercase();
    Ok(Value::String(match kind.as_str() {
        "json" | "java" => {
            let quoted = format!("\"{}\"", s.replace("\\'", "'"));
            serde_json::from_str::<String>(&quoted)
                .map_err(|e| EvalError::function(F, format!("invalid escape in '{s}': {e}")))?
        }
        "html" | "xml" => s
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&#39;", "'")
            .replace("&amp;", "&"),
        "csv" => match s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(inner) => inner.replace("\"\"", "\""),
            None => s.to_owned(),
        },
        other => {
            return Err(EvalError::function(
                F,
                format!("unknown type '{other}': expected json, java, html, xml or csv"),
            ));
        }
    }))
}

/// Longest random string (a guard against runaway lengths).
const MAX_RANDOM: i64 = 1 << 16;

fn random_strings(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "RANDOMSTRINGS";
    let charset = string(F, args, 0)?;
    let length = integer(F, args, 1)?;
    if !(0..=MAX_RANDOM).contains(&length) {
        return Err(EvalError::function(
            F,
            format!("length must be between 0 and {MAX_RANDOM}, got {length}"),
        ));
    }
    let alphabet: Vec<char> = match charset.to_ascii_uppercase().as_str() {
        "ALPHANUMERIC" => ('A'..='Z').chain('a'..='z').chain('0'..='9').collect(),
        "ALPHABETIC" | "ALPHA" => ('A'..='Z').chain('a'..='z').collect(),
        "NUMERIC" => ('0'..='9').collect(),
        "HEX" => ('0'..='9').chain('a'..='f').collect(),
        _ => charset.chars().collect(),
    };
    if alphabet.is_empty() {
        return Err(EvalError::function(F, "the character set is empty"));
    }
    let out: String = (0..length)
        .map(|_| alphabet[fastrand::usize(..alphabet.len())])
        .collect();
    Ok(Value::String(out))
}

fn to_string(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::String(match arg(args, 0) {
        Value::Null => "null".to_owned(),
        other => text(other),
    }))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    fn call(
        f: fn(Args<'_, '_>) -> Result<Value, EvalError>,
        args: &[Value],
    ) -> Result<Value, EvalError> {
        let args: Vec<Cow<'_, Value>> = args.iter().map(Cow::Borrowed).collect();
        f(&args)
    }

    #[test]
    fn substring_is_char_based_and_clamped() {
        assert_eq!(
            call(substring, &[json!("héllo"), json!(1), json!(3)]).ok(),
            Some(json!("él"))
        );
        assert_eq!(
            call(substring, &[json!("abc"), json!(1)]).ok(),
            Some(json!("bc"))
        );
        assert_eq!(
            call(substring, &[json!("abc"), json!(5)]).ok(),
            Some(json!(""))
        );
        assert!(call(substring, &[json!("abc"), json!(1), json!(9), json!(true)]).is_err());
        let e = call(substring, &[json!(1), json!(2)]).expect_err("type");
        assert!(
            e.to_string()
                .contains("SUBSTRING: argument 1 must be a string, got number"),
            "{e}"
        );
    }

    #[test]
    fn regexes() {
        assert_eq!(
            call(replace, &[json!("a1b22"), json!("[0-9]+"), json!("#")]).ok(),
            Some(json!("a#b#"))
        );
        assert_eq!(
            call(split, &[json!("a, b,c"), json!(",\\s*")]).ok(),
            Some(json!(["a", "b", "c"]))
        );
        assert_eq!(
            call(matches, &[json!("abc123"), json!("[a-z]+[0-9]+")]).ok(),
            Some(json!(true))
        );
        assert_eq!(
            call(matches, &[json!("abc123x"), json!("[a-z]+[0-9]+")]).ok(),
            Some(json!(false))
        );
        assert_eq!(
            call(
                string_matches,
                &[json!("A1 b2"), json!("[a-z][0-9]"), json!("i")]
            )
            .ok(),
            Some(json!(["A1", "b2"]))
        );
        let e = call(replace, &[json!("x"), json!("("), json!("")]).expect_err("bad regex");
        assert!(
            e.to_string()
                .starts_with("REPLACE: invalid regular expression"),
            "{e}"
        );
    }

    #[test]
    fn padding_and_joining() {
        assert_eq!(
            call(left_pad, &[json!(42), json!(5), json!("0")]).ok(),
            Some(json!("00042"))
        );
        assert_eq!(
            call(right_pad, &[json!("ab"), json!(4)]).ok(),
            Some(json!("ab  "))
        );
        assert_eq!(
            call(left_pad, &[json!("abcdef"), json!(3)]).ok(),
            Some(json!("abcdef"))
        );
        assert!(call(left_pad, &[json!("a"), json!(3), json!("xy")]).is_err());
        assert_eq!(
            call(join, &[json!("-"), json!(["a", "b"]), json!(3)]).ok(),
            Some(json!("a-b-3"))
        );
    }

    #[test]
    fn escaping_round_trips() {
        for kind in ["json", "html", "xml", "csv", "java"] {
            let original = json!("a \"quoted\" <tag> & 'x', y\nz");
            let escaped = call(escape, &[original.clone(), json!(kind)]).expect("escape");
            assert_eq!(
                call(unescape, &[escaped, json!(kind)]).ok(),
                Some(original),
                "{kind}"
            );
        }
        assert!(call(escape, &[json!("x"), json!("yaml")]).is_err());
    }

    #[test]
    fn other_string_functions() {
        assert_eq!(
            call(normalize, &[json!("Ação é útil")]).ok(),
            Some(json!("Acao e util"))
        );
        assert_eq!(call(capitalize, &[json!("élan")]).ok(), Some(json!("Élan")));
        assert_eq!(
            call(index_of, &[json!("héllo"), json!("l")]).ok(),
            Some(json!(2))
        );
        assert_eq!(
            call(index_of, &[json!("hello"), json!("l"), json!(3)]).ok(),
            Some(json!(3))
        );
        assert_eq!(
            call(last_index_of, &[json!("hello"), json!("l")]).ok(),
            Some(json!(3))
        );
        assert_eq!(
            call(contains, &[json!([1, 2]), json!(2.0)]).ok(),
            Some(json!(true))
        );
        assert_eq!(
            call(to_string, &[json!({"a": 1})]).ok(),
            Some(json!("{\"a\":1}"))
        );
        let r = call(random_strings, &[json!("HEX"), json!(8)]).expect("random");
        assert!(
            r.as_str()
                .is_some_and(|s| s.len() == 8 && s.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }
}
