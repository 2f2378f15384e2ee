//! Security and encoding steps: `base64`, `hash`, `hmac`, `encrypt`,
//! `decrypt`, `jwt`, `gzip`, `gunzip`. Binary data travels through
//! pipelines as base64 text; keys come from expressions, usually an
//! account's field (`{{ account.signing.secret }}`), so they are masked.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_engine::{Context, FlowError, StepFactory};

use crate::input::{Input, bad_input};

mod codec;
mod crypto;
mod jwt;

pub(crate) const FACTORIES: [StepFactory; 8] = [
    codec::BASE64,
    codec::GZIP,
    codec::GUNZIP,
    crypto::HASH,
    crypto::HMAC,
    crypto::ENCRYPT,
    crypto::DECRYPT,
    jwt::JWT,
];

/// How the `value` text is turned into bytes.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum InputEncoding {
    /// The text's UTF-8 bytes (objects and arrays as JSON text).
    #[default]
    Text,
    /// The text is base64 (binary data, e.g. a file's content).
    Base64,
}

/// How bytes are written as text.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OutputEncoding {
    #[default]
    Hex,
    Base64,
}

/// What decoded bytes become.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Decoded {
    /// UTF-8 text (an error when the bytes are not UTF-8).
    #[default]
    Text,
    /// The text parsed as JSON.
    Json,
    /// The bytes as base64 (binary data).
    Base64,
}

/// The bytes of the step's `value`.
pub(crate) fn input_bytes(
    step: &str,
    input: &Input,
    encoding: InputEncoding,
    cx: &Context,
    message: &Value,
) -> Result<Vec<u8>, FlowError> {
    let text = input.text(cx, message)?;
    match encoding {
        InputEncoding::Text => Ok(text.into_bytes()),
        InputEncoding::Base64 => decode_base64(step, "value", &text),
    }
}

/// Standard or URL-safe base64, padded or not; whitespace ignored.
pub(crate) fn decode_base64(step: &str, what: &str, text: &str) -> Result<Vec<u8>, FlowError> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let url = clean.contains(['-', '_']);
    let unpadded = clean.trim_end_matches('=');
    let result = if url {
        URL_SAFE_NO_PAD.decode(unpadded)
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded)
    };
    result.map_err(|e| bad_input(step, format!("{what} is not base64: {e}")))
}

/// Bytes as the step's output.
pub(crate) fn decoded(step: &str, bytes: Vec<u8>, into: Decoded) -> Result<Value, FlowError> {
    match into {
        Decoded::Base64 => Ok(Value::String(STANDARD.encode(bytes))),
        Decoded::Text | Decoded::Json => {
            let text = String::from_utf8(bytes).map_err(|_| {
                bad_input(
                    step,
                    "the result is not UTF-8 text; use `output: base64` for binary data",
                )
            })?;
            if into == Decoded::Json {
                serde_json::from_str(&text)
                    .map_err(|e| bad_input(step, format!("the result is not JSON: {e}")))
            } else {
                Ok(Value::String(text))
            }
        }
    }
}

pub(crate) fn encode_bytes(bytes: &[u8], encoding: OutputEncoding) -> String {
    match encoding {
        OutputEncoding::Hex => {
            let mut out = String::with_capacity(bytes.len() * 2);
            for b in bytes {
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
            out
        }
        OutputEncoding::Base64 => STANDARD.encode(bytes),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Hex text (either case) as bytes.
pub(crate) fn decode_hex(step: &str, what: &str, text: &str) -> Result<Vec<u8>, FlowError> {
    let text = text.trim();
    if text.len() % 2 != 0 {
        return Err(bad_input(step, format!("{what} is not hex: odd length")));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| bad_input(step, format!("{what} is not hex (at character {i})")))
        })
        .collect()
}

pub(crate) fn url_safe_encode(bytes: &[u8], url_safe: bool, pad: bool) -> String {
    match (url_safe, pad) {
        (true, true) => URL_SAFE.encode(bytes),
        (true, false) => URL_SAFE_NO_PAD.encode(bytes),
        (false, _) => STANDARD.encode(bytes),
    }
}
