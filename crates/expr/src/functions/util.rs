//! Utilities: identifiers, encodings, booleans and hashes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;
use sha2::Digest as _;

use super::{Args, FunctionDef, arg, opt_string, string, type_name};
use crate::EvalError;

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "UUID",
        min_args: 0,
        max_args: Some(0),
        body: uuid,
    },
    FunctionDef {
        name: "BASEENCODE",
        min_args: 1,
        max_args: Some(2),
        body: base_encode,
    },
    FunctionDef {
        name: "BASEDECODE",
        min_args: 1,
        max_args: Some(2),
        body: base_decode,
    },
    FunctionDef {
        name: "URIENCODE",
        min_args: 1,
        max_args: Some(2),
        body: uri_encode,
    },
    FunctionDef {
        name: "URIDECODE",
        min_args: 1,
        max_args: Some(2),
        body: uri_decode,
    },
    FunctionDef {
        name: "TOBOOLEAN",
        min_args: 1,
        max_args: Some(1),
        body: to_boolean,
    },
    FunctionDef {
        name: "HASH",
        min_args: 2,
        max_args: Some(2),
        body: hash,
    },
];

fn uuid(_: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::String(uuid::Uuid::new_v4().to_string()))
}

/// Only UTF-8 text is supported as the charset argument.
fn charset(function: &'static str, args: Args<'_, '_>) -> Result<(), EvalError> {
    match opt_string(function, args, 1)? {
        None => Ok(()),
        Some(c) if c.eq_ignore_ascii_case("utf-8") || c.eq_ignore_ascii_case("utf8") => Ok(()),
        Some(c) => Err(EvalError::function(
            function,
            format!("charset '{c}' is not supported (only UTF-8)"),
        )),
    }
}

fn base_encode(args: Args<'_, '_>) -> Result<Value, EvalError> {
    charset("BASEENCODE", args)?;
    Ok(Value::String(STANDARD.encode(string(
        "BASEENCODE",
        args,
        0,
    )?)))
}

fn base_decode(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "BASEDECODE";
    charset(F, args)?;
    let bytes = STANDARD
        .decode(string(F, args, 0)?.trim())
        .map_err(|e| EvalError::function(F, format!("not valid base64: {e}")))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| EvalError::function(F, "the decoded bytes are not UTF-8 text"))
}

fn uri_encode(args: Args<'_, '_>) -> Result<Value, EvalError> {
    charset("URIENCODE", args)?;
    let s = string("URIENCODE", args, 0)?;
    // Unreserved characters (RFC 3986) stay as they are.
    let encoded: String = utf8_percent_encode(s, NON_ALPHANUMERIC)
        .to_string()
        .replace("%2D", "-")
        .replace("%2E", ".")
        .replace("%5F", "_")
        .replace("%7E", "~");
    Ok(Value::String(encoded))
}

fn uri_decode(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "URIDECODE";
    charset(F, args)?;
    let s = string(F, args, 0)?.replace('+', " ");
    percent_decode_str(&s)
        .decode_utf8()
        .map(|c| Value::String(c.into_owned()))
        .map_err(|_| EvalError::function(F, "the decoded bytes are not UTF-8 text"))
}

fn to_boolean(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(match arg(args, 0) {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "on" => true,
            "false" | "no" | "n" | "0" | "off" | "" => false,
            _ => {
                return Err(EvalError::function(
                    "TOBOOLEAN",
                    format!("'{s}' is not a boolean"),
                ));
            }
        },
        other => {
            return Err(EvalError::function(
                "TOBOOLEAN",
                format!(
                    "argument 1 must be a boolean, number or string, got {}",
                    type_name(other)
                ),
            ));
        }
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "HASH";
    let s = string(F, args, 0)?.as_bytes();
    let algorithm = string(F, args, 1)?;
    let digest = match algorithm.to_ascii_lowercase().replace('-', "").as_str() {
        "md5" => hex(&md5::Md5::digest(s)),
        "sha1" => hex(&sha1::Sha1::digest(s)),
        "sha256" => hex(&sha2::Sha256::digest(s)),
        "sha512" => hex(&sha2::Sha512::digest(s)),
        other => {
            return Err(EvalError::function(
                F,
                format!("unknown algorithm '{other}': expected md5, sha1, sha256 or sha512"),
            ));
        }
    };
    Ok(Value::String(digest))
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
    fn encodings() {
        assert_eq!(
            call(base_encode, &[json!("hi ✓")]).ok(),
            Some(json!("aGkg4pyT"))
        );
        assert_eq!(
            call(base_decode, &[json!("aGkg4pyT")]).ok(),
            Some(json!("hi ✓"))
        );
        assert!(
            call(base_decode, &[json!("***")])
                .expect_err("bad")
                .to_string()
                .starts_with("BASEDECODE")
        );
        assert!(call(base_encode, &[json!("x"), json!("latin1")]).is_err());
        assert_eq!(
            call(uri_encode, &[json!("a b&c/d-e.f_g~")]).ok(),
            Some(json!("a%20b%26c%2Fd-e.f_g~"))
        );
        assert_eq!(
            call(uri_decode, &[json!("a%20b+c")]).ok(),
            Some(json!("a b c"))
        );
    }

    #[test]
    fn booleans_and_hashes() {
        assert_eq!(call(to_boolean, &[json!("Yes")]).ok(), Some(json!(true)));
        assert_eq!(call(to_boolean, &[json!(0)]).ok(), Some(json!(false)));
        assert!(call(to_boolean, &[json!("maybe")]).is_err());
        assert_eq!(
            call(hash, &[json!("abc"), json!("md5")]).ok(),
            Some(json!("900150983cd24fb0d6963f7d28e17f72"))
        );
        assert_eq!(
            call(hash, &[json!("abc"), json!("SHA-256")]).ok(),
            Some(json!(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            ))
        );
        assert!(call(hash, &[json!("abc"), json!("crc32")]).is_err());
        let id = call(uuid, &[]).expect("uuid");
        assert_eq!(id.as_str().map(str::len), Some(36));
    }
}
