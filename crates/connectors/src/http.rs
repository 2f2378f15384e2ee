//! `http-request`: call an HTTP API. One connection pool per compiled
//! step (so per deployment); TLS by rustls with aws-lc-rs, verifying
//! against the system's roots (Mozilla's when the system has none); auth
//! from an account: basic, bearer, api-key (header or query) and OAuth2
//! client credentials with the token cached until it expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, schema_of,
};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::StepKind;

use crate::input::{self, bad_input};

#[derive(Deserialize, JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "UPPERCASE")]
enum Method {
    #[default]
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl Method {
    fn to_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
            Method::Options => reqwest::Method::OPTIONS,
        }
    }
}

/// How `body` is sent.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum BodyType {
    /// JSON (`application/json`) — the default.
    #[default]
    Json,
    /// An HTML form (`application/x-www-form-urlencoded`) from an object.
    Form,
    /// The body as text (`text/plain` unless a header says otherwise).
    Text,
    /// The body is base64 of the bytes to send (`application/octet-stream`).
    Binary,
}

/// How the answer's body is read.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ResponseType {
    /// JSON when the content type says so, text for text, else base64.
    #[default]
    Auto,
    Json,
    Text,
    Base64,
}

/// An accepted status: a number (`404`) or a class (`"4xx"`).
#[derive(Deserialize, JsonSchema, Clone)]
#[serde(untagged)]
enum StatusRule {
    Code(u16),
    Class(String),
}

/// Fields of the `http-request` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HttpConfig {
    /// GET (default), POST, PUT, PATCH, DELETE, HEAD or OPTIONS.
    #[serde(default)]
    method: Method,
    /// The URL; may hold expressions (each expression's text is put as it is).
    url: String,
    /// Query parameters added to the URL (values may hold expressions; an
    /// array repeats the parameter; null leaves it out).
    #[serde(default)]
    query: Option<Value>,
    /// Request headers (values may hold expressions).
    #[serde(default)]
    headers: Option<Value>,
    /// The request body (may hold expressions); none by default.
    #[serde(default)]
    body: Option<Value>,
    /// json (default), form, text or binary (base64 in `body`).
    #[serde(default)]
    body_type: BodyType,
    /// An account to authenticate with: basic, bearer, api-key or
    /// oauth2-client-credentials.
    #[serde(default)]
    account: Option<String>,
    /// Statuses that are not errors besides 2xx, e.g. `[404, "5xx"]`.
    #[serde(default)]
    accept_status: Vec<StatusRule>,
    /// Follow redirects (default true, at most 10).
    #[serde(default = "yes")]
    follow_redirects: bool,
    /// Check the server's certificate (default true). Turn off only for a
    /// test server you trust.
    #[serde(default = "yes")]
    verify_tls: bool,
    /// auto (default), json, text or base64.
    #[serde(default)]
    response_type: ResponseType,
}

fn yes() -> bool {
    true
}

pub(crate) const HTTP_REQUEST: StepFactory = StepFactory {
    kind: StepKind {
        name: "http-request",
        summary: "Call an HTTP API; the output is {status, headers, body} with JSON parsed.",
        schema: schema_of::<HttpConfig>,
    },
    compile,
};

struct HttpStep {
    client: reqwest::Client,
    method: reqwest::Method,
    url: Template,
    query: Option<ValueTemplate>,
    headers: Option<ValueTemplate>,
    body: Option<ValueTemplate>,
    body_type: BodyType,
    account: Option<String>,
    accept: Vec<StatusRule>,
    response_type: ResponseType,
    /// OAuth2 tokens by token URL and client id, with their expiry.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

/// The roots certificates are checked against: the system's, else Mozilla's.
fn roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = store.add(cert);
            }
            if store.is_empty() {
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(store)
        })
        .clone()
}

/// `verifyTls: false`: any certificate is taken (for a test server the
/// user trusts); the handshake's signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub(crate) fn client(follow_redirects: bool, verify_tls: bool) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let tls = if verify_tls {
        builder
            .with_root_certificates(roots())
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(if follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: HttpConfig = cx.config()?;
    let url = cx.template("url", &config.url)?;
    let query = match &config.query {
        Some(v) => Some(cx.value_template("query", v)?),
        None => None,
    };
    let headers = match &config.headers {
        Some(v) => Some(cx.value_template("headers", v)?),
        None => None,
    };
    let body = match &config.body {
        Some(v) => Some(cx.value_template("body", v)?),
        None => None,
    };
    for (i, rule) in config.accept_status.iter().enumerate() {
        if let StatusRule::Class(text) = rule
            && class_of(text).is_none()
        {
            let path = cx.path().key("acceptStatus").index(i);
            cx.problem(
                path,
                format!("'{text}' is not a status or a class like \"4xx\""),
            );
            return None;
        }
    }
    let client = match client(config.follow_redirects, config.verify_tls) {
        Ok(c) => c,
        Err(e) => {
            let path = cx.path().clone();
            cx.problem(path, format!("cannot make an HTTP client: {e}"));
            return None;
        }
    };
    Some(Box::new(HttpStep {
        client,
        method: config.method.to_reqwest(),
        url,
        query,
        headers,
        body,
        body_type: config.body_type,
        account: config.account,
        accept: config.accept_status,
        response_type: config.response_type,
        tokens: Mutex::new(HashMap::new()),
    }))
}

/// `"4xx"` → 4.
fn class_of(text: &str) -> Option<u16> {
    let t = text.trim().to_ascii_lowercase();
    let digit = t.strip_suffix("xx")?;
    match digit.parse::<u16>() {
        Ok(d) if (1..=5).contains(&d) => Some(d),
        _ => None,
    }
}

fn http_error(status: u16, message: impl Into<String>) -> FlowError {
    FlowError::new("http", status, message)
}

/// A value as query or header text: strings bare, the rest as JSON.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Auth read from an account for one request.
enum Auth {
    Basic(String, String),
    Bearer(String),
    Header(String, String),
    Query(String, String),
    OAuth2 {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
        audience: Option<String>,
    },
}

fn field<'a>(account: &'a Value, name: &str, field: &str) -> Result<&'a str, FlowError> {
    input::account_field("http-request", name, account, field)
}

fn optional(account: &Value, field: &str) -> Option<String> {
    input::account_text(account, field).map(str::to_owned)
}

fn auth_of(name: &str, account: &Value) -> Result<Auth, FlowError> {
    let kind = input::account_text(account, "type").unwrap_or("");
    Ok(match kind {
        "basic" => Auth::Basic(
            field(account, name, "username")?.to_owned(),
            field(account, name, "password")?.to_owned(),
        ),
        "bearer" => Auth::Bearer(field(account, name, "token")?.to_owned()),
        "api-key" => {
            let key = field(account, name, "key")?.to_owned();
            match (optional(account, "query"), optional(account, "header")) {
                (Some(param), _) => Auth::Query(param, key),
                (None, header) => Auth::Header(header.unwrap_or_else(|| "X-API-Key".into()), key),
            }
        }
        "oauth2-client-credentials" => Auth::OAuth2 {
            token_url: field(account, name, "tokenUrl")?.to_owned(),
            client_id: field(account, name, "clientId")?.to_owned(),
            client_secret: field(account, name, "clientSecret")?.to_owned(),
            scope: optional(account, "scope"),
            audience: optional(account, "audience"),
        },
        other => {
            return Err(bad_input(
                "http-request",
                format!(
                    "account '{name}' is of type '{other}'; http-request takes basic, bearer, api-key or oauth2-client-credentials"
                ),
            ));
        }
    })
}

impl HttpStep {
    fn accepted(&self, status: u16) -> bool {
        (200..300).contains(&status)
            || self.accept.iter().any(|rule| match rule {
                StatusRule::Code(c) => *c == status,
                StatusRule::Class(text) => class_of(text) == Some(status / 100),
            })
    }

    /// An OAuth2 access token: the cached one while it is valid, else a new one.
    async fn oauth_token(&self, auth: &Auth, fresh: bool) -> Result<String, FlowError> {
        let Auth::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
            audience,
        } = auth
        else {
            return Err(http_error(500, "not an OAuth2 account"));
        };
        let cache_key = format!(
            "{token_url}\u{0}{client_id}\u{0}{}",
            scope.as_deref().unwrap_or("")
        );
        if !fresh
            && let Some((token, until)) = self.lock_tokens().get(&cache_key)
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if let Some(s) = scope {
            form.push(("scope", s.clone()));
        }
        if let Some(a) = audience {
            form.push(("audience", a.clone()));
        }
        let response = self
            .client
            .post(token_url)
            .basic_auth(client_id, Some(client_secret))
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                http_error(
                    502,
                    format!("the OAuth2 token request failed: {}", describe(&e)),
                )
            })?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let Some(token) = body.get("access_token").and_then(Value::as_str) else {
            return Err(http_error(
                502,
                format!("the OAuth2 token endpoint answered {status} without an access_token"),
            )
            .with_details(json!({"status": status, "body": body})));
        };
        let lifetime = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(300);
        // Renewed a little before it runs out.
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(30).max(1));
        self.lock_tokens()
            .insert(cache_key, (token.to_owned(), until));
        Ok(token.to_owned())
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn request(
        &self,
        cx: &Context,
        message: &Value,
        auth: Option<&Auth>,
        oauth_token: Option<&str>,
    ) -> Result<reqwest::RequestBuilder, FlowError> {
        let url = cx.render(&self.url, message)?;
        let mut url = reqwest::Url::parse(url.trim())
            .map_err(|e| bad_input("http-request", format!("'{url}' is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_input(
                "http-request",
                format!("'{url}' is not an http or https URL"),
            ));
        }
        if let Some(query) = &self.query {
            let query = cx.eval_value(query, message)?;
            let Value::Object(pairs) = query else {
                return Err(bad_input("http-request", "query must be an object"));
            };
            let mut out = url.query_pairs_mut();
            for (k, v) in &pairs {
                match v {
                    Value::Array(items) => {
                        for item in items {
                            if let Some(t) = text_of(item) {
                                out.append_pair(k, &t);
                            }
                        }
                    }
                    other => {
                        if let Some(t) = text_of(other) {
                            out.append_pair(k, &t);
                        }
                    }
                }
            }
        }
        if let Some(Auth::Query(param, key)) = auth {
            url.query_pairs_mut().append_pair(param, key);
        }
        let mut headers = HeaderMap::new();
        if let Some(template) = &self.headers {
            let Value::Object(map) = cx.eval_value(template, message)? else {
                return Err(bad_input("http-request", "headers must be an object"));
            };
            for (k, v) in &map {
                let Some(text) = text_of(v) else { continue };
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                    bad_input("http-request", format!("'{k}' is not a header name"))
                })?;
                let value = HeaderValue::from_str(&text).map_err(|_| {
                    bad_input(
                        "http-request",
                        format!("the value of header '{k}' is not valid"),
                    )
                })?;
                headers.append(name, value);
            }
        }
        let mut request = self.client.request(self.method.clone(), url);
        match auth {
            Some(Auth::Basic(user, password)) => request = request.basic_auth(user, Some(password)),
            Some(Auth::Bearer(token)) => request = request.bearer_auth(token),
            Some(Auth::Header(name, key)) => {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    bad_input("http-request", format!("'{name}' is not a header name"))
                })?;
                let value = HeaderValue::from_str(key).map_err(|_| {
                    bad_input("http-request", "the API key is not a valid header value")
                })?;
                headers.insert(name, value);
            }
            Some(Auth::OAuth2 { .. }) => {
                if let Some(token) = oauth_token {
                    request = request.bearer_auth(token);
                }
            }
            Some(Auth::Query(..)) | None => {}
        }
        if let Some(template) = &self.body {
            let body = cx.eval_value(template, message)?;
            let has_type = headers.contains_key(reqwest::header::CONTENT_TYPE);
            request = match self.body_type {
                BodyType::Json => request.json(&body),
                BodyType::Form => {
                    let Value::Object(fields) = &body else {
                        return Err(bad_input("http-request", "a form body must be an object"));
                    };
                    let pairs: Vec<(String, String)> = fields
                        .iter()
                        .filter_map(|(k, v)| text_of(v).map(|t| (k.clone(), t)))
                        .collect();
                    request.form(&pairs)
                }
                BodyType::Text => {
                    let text = text_of(&body).unwrap_or_default();
                    if !has_type {
                        headers.insert(
                            reqwest::header::CONTENT_TYPE,
                            HeaderValue::from_static("text/plain; charset=utf-8"),
                        );
                    }
                    request.body(text)
                }
                BodyType::Binary => {
                    let text = text_of(&body).unwrap_or_default();
                    let bytes = STANDARD.decode(text.trim()).map_err(|e| {
                        bad_input("http-request", format!("a binary body must be base64: {e}"))
                    })?;
                    if !has_type {
                        headers.insert(
                            reqwest::header::CONTENT_TYPE,
                            HeaderValue::from_static("application/octet-stream"),
                        );
                    }
                    request.body(bytes)
                }
            };
        }
        Ok(request.headers(headers))
    }

    async fn answer(&self, response: reqwest::Response) -> Result<Value, FlowError> {
        let status = response.status().as_u16();
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&text);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), Value::String(text));
                }
            }
        }
        let content_type = headers
            .get("content-type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| http_error(502, format!("reading the answer failed: {}", describe(&e))))?;
        let body = body_of(&bytes, &content_type, self.response_type)?;
        let out = json!({"status": status, "headers": headers, "body": body});
        if self.accepted(status) {
            Ok(out)
        } else {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            Err(FlowError::new(
                "http_status",
                status,
                format!("the server answered {status} {reason}")
                    .trim_end()
                    .to_owned(),
            )
            .with_details(json!({"status": status, "body": out["body"]})))
        }
    }
}

fn body_of(bytes: &[u8], content_type: &str, wanted: ResponseType) -> Result<Value, FlowError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let is_json = essence == "application/json" || essence.ends_with("+json");
    let as_text = || String::from_utf8_lossy(bytes).into_owned();
    Ok(match wanted {
        ResponseType::Json => serde_json::from_slice(bytes)
            .map_err(|e| http_error(502, format!("the answer is not JSON: {e}")))?,
        ResponseType::Text => Value::String(as_text()),
        ResponseType::Base64 => Value::String(STANDARD.encode(bytes)),
        ResponseType::Auto if is_json => {
            serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(as_text()))
        }
        ResponseType::Auto
            if essence.starts_with("text/")
                || essence.ends_with("xml")
                || essence == "application/x-www-form-urlencoded"
                || (essence.is_empty() && std::str::from_utf8(bytes).is_ok()) =>
        {
            Value::String(as_text())
        }
        ResponseType::Auto => Value::String(STANDARD.encode(bytes)),
    })
}

/// A transport error with its cause chain (the top line alone says little).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Step for HttpStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let auth = match &self.account {
                None => None,
                Some(name) => Some(auth_of(name, input::account("http-request", cx, name)?)?),
            };
            let is_oauth = matches!(auth, Some(Auth::OAuth2 { .. }));
            let mut token = None;
            if is_oauth && let Some(a) = &auth {
                token = Some(self.oauth_token(a, false).await?);
            }
            let send = |token: Option<String>| {
                let request = self.request(cx, &message, auth.as_ref(), token.as_deref());
                async move {
                    request?.send().await.map_err(|e| {
                        let status = if e.is_timeout() { 504 } else { 502 };
                        http_error(status, format!("the request failed: {}", describe(&e)))
                    })
                }
            };
            let mut response = send(token).await?;
            // A token revoked before its time: fetch a new one and try once more.
            if is_oauth
                && response.status() == reqwest::StatusCode::UNAUTHORIZED
                && let Some(a) = &auth
            {
                let fresh = self.oauth_token(a, true).await?;
                response = send(Some(fresh)).await?;
            }
            Ok(Arc::new(self.answer(response).await?))
        })
    }
}
