//! `jwt`: sign claims into a token, or verify a token into its claims
//! (HS256/384/512, RS256, ES256; exp and nbf checked).

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, ready, schema_of,
};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::{HumanDuration, StepKind};

use crate::input::bad_input;

#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Operation {
    /// Make a token from `claims`.
    #[default]
    Sign,
    /// Check `token` and output its claims.
    Verify,
}

#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
enum Alg {
    #[default]
    HS256,
    HS384,
    HS512,
    RS256,
    ES256,
}

impl Alg {
    fn algorithm(self) -> Algorithm {
        match self {
            Alg::HS256 => Algorithm::HS256,
            Alg::HS384 => Algorithm::HS384,
            Alg::HS512 => Algorithm::HS512,
            Alg::RS256 => Algorithm::RS256,
            Alg::ES256 => Algorithm::ES256,
        }
    }

    fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }
}

/// Fields of the `jwt` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JwtConfig {
    /// sign (default) or verify.
    #[serde(default)]
    operation: Operation,
    /// HS256 (default), HS384, HS512, RS256 or ES256.
    #[serde(default)]
    algorithm: Alg,
    /// HS*: the shared secret; RS256/ES256: a PEM key — the private key
    /// to sign, the public key to verify. May hold expressions
    /// (`{{ account.tokens.secret }}`).
    key: String,
    /// sign: the claims (default: the message); strings may hold expressions.
    #[serde(default)]
    claims: Option<Value>,
    /// sign: adds `iat` (now) and `exp` (now + this).
    #[serde(default)]
    expires_in: Option<HumanDuration>,
    /// sign: the header's `kid`.
    #[serde(default)]
    key_id: Option<String>,
    /// verify: the token (default: the message); a leading `Bearer ` is removed.
    #[serde(default)]
    token: Option<String>,
    /// verify: the `iss` the token must have.
    #[serde(default)]
    issuer: Option<String>,
    /// verify: an `aud` the token must have.
    #[serde(default)]
    audience: Option<String>,
    /// verify: tolerated clock difference for `exp` and `nbf` (default 0s).
    #[serde(default)]
    leeway: Option<HumanDuration>,
    /// verify: whether a token without `exp` is refused (default true).
    #[serde(default = "yes")]
    require_exp: bool,
}

fn yes() -> bool {
    true
}

pub(crate) const JWT: StepFactory = StepFactory {
    kind: StepKind {
        name: "jwt",
        summary: "Sign claims into a JWT, or verify a JWT (signature, exp, nbf, iss, aud) into its claims.",
        schema: schema_of::<JwtConfig>,
    },
    compile,
};

struct JwtStep {
    operation: Operation,
    alg: Alg,
    key: Template,
    claims: Option<ValueTemplate>,
    expires_in: Option<u64>,
    key_id: Option<String>,
    token: Option<Template>,
    validation: Validation,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: JwtConfig = cx.config()?;
    let key = cx.template("key", &config.key)?;
    let claims = match &config.claims {
        Some(c) => Some(cx.value_template("claims", c)?),
        None => None,
    };
    let token = match &config.token {
        Some(t) => Some(cx.template("token", t)?),
        None => None,
    };
    let mut validation = Validation::new(config.algorithm.algorithm());
    validation.leeway = config.leeway.map_or(0, |l| l.0.as_secs());
    validation.validate_nbf = true;
    validation.validate_exp = true;
    let mut required = Vec::new();
    if config.require_exp {
        required.push("exp");
    }
    if let Some(iss) = &config.issuer {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    match &config.audience {
        Some(aud) => {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    Some(Box::new(JwtStep {
        operation: config.operation,
        alg: config.algorithm,
        key,
        claims,
        expires_in: config.expires_in.map(|d| d.0.as_secs()),
        key_id: config.key_id,
        token,
        validation,
    }))
}

/// A refused token (401) with the reason.
fn refused(message: impl Into<String>) -> FlowError {
    FlowError::new("jwt", 401, message)
}

fn key_error(e: &jsonwebtoken::errors::Error) -> FlowError {
    bad_input(
        "jwt",
        format!("the key is not usable for this algorithm: {e}"),
    )
}

impl JwtStep {
    fn sign(&self, key: &str, cx: &Context, message: &Value) -> Result<Value, FlowError> {
        let claims = match &self.claims {
            Some(t) => cx.eval_value(t, message)?,
            None => message.clone(),
        };
        let Value::Object(mut claims) = claims else {
            return Err(bad_input("jwt", "the claims must be an object"));
        };
        if let Some(seconds) = self.expires_in {
            let now = jsonwebtoken::get_current_timestamp();
            claims.insert("iat".into(), Value::from(now));
            claims.insert("exp".into(), Value::from(now + seconds));
        }
        let encoding = match self.alg {
            a if a.is_hmac() => EncodingKey::from_secret(key.as_bytes()),
            Alg::RS256 => EncodingKey::from_rsa_pem(key.as_bytes()).map_err(|e| key_error(&e))?,
            _ => EncodingKey::from_ec_pem(key.as_bytes()).map_err(|e| key_error(&e))?,
        };
        let mut header = Header::new(self.alg.algorithm());
        header.kid.clone_from(&self.key_id);
        jsonwebtoken::encode(&header, &claims, &encoding)
            .map(Value::String)
            .map_err(|e| key_error(&e))
    }

    fn verify(&self, key: &str, cx: &Context, message: &Value) -> Result<Value, FlowError> {
        let token = match &self.token {
            Some(t) => cx.render(t, message)?.into_owned(),
            None => match message {
                Value::String(s) => s.clone(),
                _ => return Err(bad_input("jwt", "the token must be a string")),
            },
        };
        let token = token.trim();
        let token = token
            .strip_prefix("Bearer ")
            .or_else(|| token.strip_prefix("bearer "))
            .unwrap_or(token)
            .trim();
        let decoding = match self.alg {
            a if a.is_hmac() => DecodingKey::from_secret(key.as_bytes()),
            Alg::RS256 => DecodingKey::from_rsa_pem(key.as_bytes()).map_err(|e| key_error(&e))?,
            _ => DecodingKey::from_ec_pem(key.as_bytes()).map_err(|e| key_error(&e))?,
        };
        match jsonwebtoken::decode::<Map<String, Value>>(token, &decoding, &self.validation) {
            Ok(data) => Ok(Value::Object(data.claims)),
            Err(e) => Err(refused(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
                ErrorKind::InvalidSignature => "the token's signature does not match".to_owned(),
                ErrorKind::InvalidIssuer => {
                    "the token's issuer (iss) is not the expected one".to_owned()
                }
                ErrorKind::InvalidAudience => {
                    "the token's audience (aud) is not the expected one".to_owned()
                }
                ErrorKind::InvalidAlgorithm => format!(
                    "the token is signed with another algorithm than {:?}",
                    self.alg.algorithm()
                ),
                ErrorKind::MissingRequiredClaim(claim) => {
                    format!("the token has no '{claim}' claim")
                }
                ErrorKind::InvalidKeyFormat
                | ErrorKind::InvalidEcdsaKey
                | ErrorKind::InvalidRsaKey(_) => return Err(key_error(&e)),
                _ => format!("the token is not a valid JWT: {e}"),
            })),
        }
    }
}

impl Step for JwtStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        ready((|| {
            let key = cx.render(&self.key, &message)?.into_owned();
            if key.is_empty() {
                return Err(bad_input("jwt", "the key is empty"));
            }
            let out = match self.operation {
                Operation::Sign => self.sign(&key, cx, &message)?,
                Operation::Verify => self.verify(&key, cx, &message)?,
            };
            Ok(Arc::new(out))
        })())
    }
}
