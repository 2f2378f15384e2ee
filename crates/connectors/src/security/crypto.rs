//! `hash`, `hmac`, `encrypt` and `decrypt` (aws-lc-rs).

use std::sync::Arc;

use aws_lc_rs::{aead, digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, ready, schema_of,
};
use sluice_expr::Template;
use sluice_spec::StepKind;

use super::{
    Decoded, InputEncoding, OutputEncoding, decode_base64, decode_hex, decoded, encode_bytes,
    input_bytes,
};
use crate::input::{Input, bad_input};

#[derive(Deserialize, JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
enum HashAlgorithm {
    Md5,
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

/// Fields of the `hash` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HashConfig {
    /// md5, sha1, sha256 (default) or sha512.
    #[serde(default)]
    algorithm: HashAlgorithm,
    /// What to hash (default: the message; objects as JSON text).
    #[serde(default)]
    value: Option<Value>,
    /// text (default) or base64 (the value is binary data in base64).
    #[serde(default)]
    input_encoding: InputEncoding,
    /// hex (default) or base64.
    #[serde(default)]
    encoding: OutputEncoding,
}

pub(crate) const HASH: StepFactory = StepFactory {
    kind: StepKind {
        name: "hash",
        summary: "The digest of the value: md5, sha1, sha256 or sha512, as hex or base64.",
        schema: schema_of::<HashConfig>,
    },
    compile: compile_hash,
};

struct HashStep {
    algorithm: HashAlgorithm,
    input: Input,
    input_encoding: InputEncoding,
    encoding: OutputEncoding,
}

fn compile_hash(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: HashConfig = cx.config()?;
    Some(Box::new(HashStep {
        algorithm: config.algorithm,
        input: Input::compile(cx, config.value.as_ref())?,
        input_encoding: config.input_encoding,
        encoding: config.encoding,
    }))
}

impl Step for HashStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        ready((|| {
            let bytes = input_bytes("hash", &self.input, self.input_encoding, cx, &message)?;
            let sum: Vec<u8> = match self.algorithm {
                HashAlgorithm::Md5 => {
                    use md5::Digest as _;
                    md5::Md5::digest(&bytes).to_vec()
                }
                HashAlgorithm::Sha1 => digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &bytes)
                    .as_ref()
                    .to_vec(),
                HashAlgorithm::Sha256 => digest::digest(&digest::SHA256, &bytes).as_ref().to_vec(),
                HashAlgorithm::Sha512 => digest::digest(&digest::SHA512, &bytes).as_ref().to_vec(),
            };
            Ok(Arc::new(Value::String(encode_bytes(&sum, self.encoding))))
        })())
    }
}

#[derive(Deserialize, JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
enum HmacAlgorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

/// How a key written as text is turned into bytes.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
enum KeyEncoding {
    /// The text's UTF-8 bytes (default).
    #[default]
    Text,
    Base64,
    Hex,
}

/// Fields of the `hmac` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HmacConfig {
    /// sha1, sha256 (default) or sha512.
    #[serde(default)]
    algorithm: HmacAlgorithm,
    /// The secret key; may hold expressions (`{{ account.webhook.secret }}`).
    key: String,
    /// text (default), base64 or hex.
    #[serde(default)]
    key_encoding: KeyEncoding,
    /// What to sign (default: the message; objects as JSON text).
    #[serde(default)]
    value: Option<Value>,
    /// text (default) or base64 (the value is binary data in base64).
    #[serde(default)]
    input_encoding: InputEncoding,
    /// hex (default) or base64.
    #[serde(default)]
    encoding: OutputEncoding,
    /// A signature to check (in `encoding`, may hold expressions): the
    /// output is then `{"valid": true|false}`, compared in constant time.
    #[serde(default)]
    expected: Option<String>,
}

pub(crate) const HMAC: StepFactory = StepFactory {
    kind: StepKind {
        name: "hmac",
        summary: "Sign the value with HMAC (sha1, sha256, sha512), or check a signature.",
        schema: schema_of::<HmacConfig>,
    },
    compile: compile_hmac,
};

struct HmacStep {
    algorithm: hmac::Algorithm,
    key: Template,
    key_encoding: KeyEncoding,
    input: Input,
    input_encoding: InputEncoding,
    encoding: OutputEncoding,
    expected: Option<Template>,
}

fn compile_hmac(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: HmacConfig = cx.config()?;
    let key = cx.template("key", &config.key)?;
    let expected = match &config.expected {
        Some(e) => Some(cx.template("expected", e)?),
        None => None,
    };
    Some(Box::new(HmacStep {
        algorithm: match config.algorithm {
            HmacAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            HmacAlgorithm::Sha256 => hmac::HMAC_SHA256,
            HmacAlgorithm::Sha512 => hmac::HMAC_SHA512,
        },
        key,
        key_encoding: config.key_encoding,
        input: Input::compile(cx, config.value.as_ref())?,
        input_encoding: config.input_encoding,
        encoding: config.encoding,
        expected,
    }))
}

/// The key text as bytes.
fn key_bytes(step: &str, text: &str, encoding: KeyEncoding) -> Result<Vec<u8>, FlowError> {
    if text.is_empty() {
        return Err(bad_input(step, "the key is empty"));
    }
    match encoding {
        KeyEncoding::Text => Ok(text.as_bytes().to_vec()),
        KeyEncoding::Base64 => decode_base64(step, "the key", text),
        KeyEncoding::Hex => decode_hex(step, "the key", text),
    }
}

impl Step for HmacStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        ready((|| {
            let key_text = cx.render(&self.key, &message)?;
            let key = hmac::Key::new(
                self.algorithm,
                &key_bytes("hmac", &key_text, self.key_encoding)?,
            );
            let data = input_bytes("hmac", &self.input, self.input_encoding, cx, &message)?;
            let out = match &self.expected {
                None => {
                    let tag = hmac::sign(&key, &data);
                    Value::String(encode_bytes(tag.as_ref(), self.encoding))
                }
                Some(expected) => {
                    let text = cx.render(expected, &message)?;
                    let text = text.trim();
                    let given = match self.encoding {
                        OutputEncoding::Hex => decode_hex("hmac", "expected", text),
                        OutputEncoding::Base64 => decode_base64("hmac", "expected", text),
                    };
                    // A signature that does not even decode is simply not valid.
                    let valid = given.is_ok_and(|g| hmac::verify(&key, &data, &g).is_ok());
                    json!({ "valid": valid })
                }
            };
            Ok(Arc::new(out))
        })())
    }
}

/// Fields of the `encrypt` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EncryptConfig {
    /// The AES key as base64 of 16 or 32 bytes (AES-128-GCM or
    /// AES-256-GCM); may hold expressions (`{{ account.vault.key }}`).
    key: String,
    /// What to encrypt (default: the message; objects as JSON text).
    #[serde(default)]
    value: Option<Value>,
    /// text (default) or base64 (the value is binary data in base64).
    #[serde(default)]
    input_encoding: InputEncoding,
    /// Additional authenticated data: text bound to the ciphertext, needed
    /// again to decrypt; may hold expressions.
    #[serde(default)]
    aad: Option<String>,
}

/// Fields of the `decrypt` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DecryptConfig {
    /// The AES key as base64 of 16 or 32 bytes; may hold expressions.
    key: String,
    /// The ciphertext as `encrypt` wrote it (default: the message).
    #[serde(default)]
    value: Option<Value>,
    /// The additional authenticated data given to `encrypt`.
    #[serde(default)]
    aad: Option<String>,
    /// What the plaintext becomes: text (default), json or base64.
    #[serde(default)]
    output: Decoded,
}

pub(crate) const ENCRYPT: StepFactory = StepFactory {
    kind: StepKind {
        name: "encrypt",
        summary: "Encrypt the value with AES-GCM; the output is base64 of nonce, ciphertext and tag.",
        schema: schema_of::<EncryptConfig>,
    },
    compile: compile_encrypt,
};

pub(crate) const DECRYPT: StepFactory = StepFactory {
    kind: StepKind {
        name: "decrypt",
        summary: "Decrypt what `encrypt` wrote, checking it was not altered.",
        schema: schema_of::<DecryptConfig>,
    },
    compile: compile_decrypt,
};

const NONCE: usize = aead::NONCE_LEN;

struct Sealer {
    key: Template,
    aad: Option<Template>,
    input: Input,
}

impl Sealer {
    fn compile(
        cx: &mut StepCx<'_, '_>,
        key: &str,
        aad: Option<&String>,
        value: Option<&Value>,
    ) -> Option<Self> {
        let key = cx.template("key", key)?;
        let aad = match aad {
            Some(a) => Some(cx.template("aad", a)?),
            None => None,
        };
        Some(Sealer {
            key,
            aad,
            input: Input::compile(cx, value)?,
        })
    }

    fn key(
        &self,
        step: &str,
        cx: &Context,
        message: &Value,
    ) -> Result<aead::LessSafeKey, FlowError> {
        let text = cx.render(&self.key, message)?;
        let bytes = decode_base64(step, "the key", &text)?;
        let algorithm = match bytes.len() {
            16 => &aead::AES_128_GCM,
            32 => &aead::AES_256_GCM,
            n => {
                return Err(bad_input(
                    step,
                    format!(
                        "the key has {n} bytes; AES-GCM takes 16 or 32 (base64 of random bytes)"
                    ),
                ));
            }
        };
        aead::UnboundKey::new(algorithm, &bytes)
            .map(aead::LessSafeKey::new)
            .map_err(|_| bad_input(step, "the key is not a valid AES key"))
    }

    fn aad(&self, cx: &Context, message: &Value) -> Result<Vec<u8>, FlowError> {
        match &self.aad {
            None => Ok(Vec::new()),
            Some(t) => Ok(cx.render(t, message)?.into_owned().into_bytes()),
        }
    }
}

struct EncryptStep {
    sealer: Sealer,
    input_encoding: InputEncoding,
}

fn compile_encrypt(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: EncryptConfig = cx.config()?;
    Some(Box::new(EncryptStep {
        sealer: Sealer::compile(cx, &config.key, config.aad.as_ref(), config.value.as_ref())?,
        input_encoding: config.input_encoding,
    }))
}

impl Step for EncryptStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        ready((|| {
            let key = self.sealer.key("encrypt", cx, &message)?;
            let aad = self.sealer.aad(cx, &message)?;
            let mut data = input_bytes(
                "encrypt",
                &self.sealer.input,
                self.input_encoding,
                cx,
                &message,
            )?;
            let mut nonce = [0u8; NONCE];
            aws_lc_rs::rand::fill(&mut nonce)
                .map_err(|_| FlowError::new("encrypt", 500, "no random bytes for the nonce"))?;
            key.seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad.as_slice()),
                &mut data,
            )
            .map_err(|_| FlowError::new("encrypt", 500, "encryption failed"))?;
            let mut out = Vec::with_capacity(NONCE + data.len());
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&data);
            Ok(Arc::new(Value::String(STANDARD.encode(out))))
        })())
    }
}

struct DecryptStep {
    sealer: Sealer,
    output: Decoded,
}

fn compile_decrypt(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: DecryptConfig = cx.config()?;
    Some(Box::new(DecryptStep {
        sealer: Sealer::compile(cx, &config.key, config.aad.as_ref(), config.value.as_ref())?,
        output: config.output,
    }))
}

impl Step for DecryptStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        ready((|| {
            let key = self.sealer.key("decrypt", cx, &message)?;
            let aad = self.sealer.aad(cx, &message)?;
            let text = self.sealer.input.text(cx, &message)?;
            let sealed = decode_base64("decrypt", "value", &text)?;
            if sealed.len() < NONCE + key.algorithm().tag_len() {
                return Err(bad_input(
                    "decrypt",
                    "the value is too short to be encrypted data",
                ));
            }
            let (nonce, rest) = sealed.split_at(NONCE);
            let nonce = aead::Nonce::try_assume_unique_for_key(nonce)
                .map_err(|_| bad_input("decrypt", "the value has no valid nonce"))?;
            let mut rest = rest.to_vec();
            let plain = key
                .open_in_place(nonce, aead::Aad::from(aad.as_slice()), &mut rest)
                .map_err(|_| {
                    bad_input(
                        "decrypt",
                        "the value was not encrypted with this key (and aad), or it was altered",
                    )
                })?;
            let plain = plain.to_vec();
            Ok(Arc::new(decoded("decrypt", plain, self.output)?))
        })())
    }
}
