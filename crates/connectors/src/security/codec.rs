//! `base64`, `gzip` and `gunzip`.

use std::io::{Read, Write};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_engine::{Context, Message, Step, StepCx, StepFactory, StepFuture, ready, schema_of};
use sluice_spec::{ByteSize, StepKind};

use super::{Decoded, InputEncoding, decode_base64, decoded, input_bytes, url_safe_encode};
use crate::input::{Input, bad_input};

#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Direction {
    /// Text (or bytes, with `inputEncoding: base64`) to base64.
    #[default]
    Encode,
    /// Base64 to text, JSON or bytes.
    Decode,
}

/// Fields of the `base64` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Base64Config {
    /// encode (default) or decode.
    #[serde(default)]
    operation: Direction,
    /// What to encode or decode (default: the message; objects as JSON text).
    #[serde(default)]
    value: Option<Value>,
    /// encode: use the URL-safe alphabet (`-_`) without padding.
    #[serde(default)]
    url_safe: bool,
    /// decode: what the bytes become — text (default), json or base64.
    #[serde(default)]
    output: Decoded,
}

pub(crate) const BASE64: StepFactory = StepFactory {
    kind: StepKind {
        name: "base64",
        summary: "Encode text as base64, or decode base64 into text or JSON.",
        schema: schema_of::<Base64Config>,
    },
    compile: compile_base64,
};

struct Base64Step {
    operation: Direction,
    input: Input,
    url_safe: bool,
    output: Decoded,
}

fn compile_base64(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: Base64Config = cx.config()?;
    Some(Box::new(Base64Step {
        operation: config.operation,
        input: Input::compile(cx, config.value.as_ref())?,
        url_safe: config.url_safe,
        output: config.output,
    }))
}

impl Step for Base64Step {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        ready((|| {
            let text = self.input.text(cx, &message)?;
            let out = match self.operation {
                Direction::Encode => {
                    Value::String(url_safe_encode(text.as_bytes(), self.url_safe, false))
                }
                Direction::Decode => decoded(
                    "base64",
                    decode_base64("base64", "value", &text)?,
                    self.output,
                )?,
            };
            Ok(Arc::new(out))
        })())
    }
}

/// Fields of the `gzip` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GzipConfig {
    /// What to compress (default: the message; objects as JSON text).
    #[serde(default)]
    value: Option<Value>,
    /// text (default) or base64 (the value is binary data in base64).
    #[serde(default)]
    input_encoding: InputEncoding,
    /// Compression level 0–9 (default 6).
    #[serde(default = "default_level")]
    #[schemars(range(min = 0, max = 9))]
    level: u32,
}

fn default_level() -> u32 {
    6
}

pub(crate) const GZIP: StepFactory = StepFactory {
    kind: StepKind {
        name: "gzip",
        summary: "Compress the value with gzip; the output is base64.",
        schema: schema_of::<GzipConfig>,
    },
    compile: compile_gzip,
};

struct GzipStep {
    input: Input,
    encoding: InputEncoding,
    level: u32,
}

fn compile_gzip(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: GzipConfig = cx.config()?;
    if config.level > 9 {
        let path = cx.path().key("level");
        cx.problem(
            path,
            format!("level {} is not between 0 and 9", config.level),
        );
        return None;
    }
    Some(Box::new(GzipStep {
        input: Input::compile(cx, config.value.as_ref())?,
        encoding: config.input_encoding,
        level: config.level,
    }))
}

impl Step for GzipStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        ready((|| {
            let bytes = input_bytes("gzip", &self.input, self.encoding, cx, &message)?;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(self.level));
            let compressed = encoder
                .write_all(&bytes)
                .and_then(|()| encoder.finish())
                .map_err(|e| bad_input("gzip", format!("cannot compress: {e}")))?;
            Ok(Arc::new(Value::String(url_safe_encode(
                &compressed,
                false,
                true,
            ))))
        })())
    }
}

/// Fields of the `gunzip` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GunzipConfig {
    /// The gzip data as base64 (default: the message).
    #[serde(default)]
    value: Option<Value>,
    /// What the bytes become: text (default), json or base64.
    #[serde(default)]
    output: Decoded,
    /// Largest decompressed size (default 64MB): protects against
    /// decompression bombs.
    #[serde(default)]
    max_size: Option<ByteSize>,
}

pub(crate) const GUNZIP: StepFactory = StepFactory {
    kind: StepKind {
        name: "gunzip",
        summary: "Decompress base64 gzip data into text, JSON or base64.",
        schema: schema_of::<GunzipConfig>,
    },
    compile: compile_gunzip,
};

struct GunzipStep {
    input: Input,
    output: Decoded,
    max_size: u64,
}

fn compile_gunzip(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: GunzipConfig = cx.config()?;
    Some(Box::new(GunzipStep {
        input: Input::compile(cx, config.value.as_ref())?,
        output: config.output,
        max_size: config.max_size.map_or(64 * 1024 * 1024, |b| b.0),
    }))
}

impl Step for GunzipStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        ready((|| {
            let text = self.input.text(cx, &message)?;
            let compressed = decode_base64("gunzip", "value", &text)?;
            let mut out = Vec::new();
            let read = flate2::read::MultiGzDecoder::new(compressed.as_slice())
                .take(self.max_size + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad_input("gunzip", format!("the value is not gzip data: {e}")))?;
            if read as u64 > self.max_size {
                return Err(bad_input(
                    "gunzip",
                    format!(
                        "the decompressed data is larger than maxSize ({} bytes)",
                        self.max_size
                    ),
                ));
            }
            Ok(Arc::new(decoded("gunzip", out, self.output)?))
        })())
    }
}
