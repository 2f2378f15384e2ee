//! The gateway: `/{env}/pipeline/{realm}/v{major}/{name}[/{route…}]`.
//! It finds the deployment, answers CORS preflights, checks the consumer
//! (API key or basic auth), the method, the route, the rate limit and the
//! body size, turns the request into the http trigger message, runs the
//! execution and turns its result into the answer. Every answer carries
//! `X-Execution-Key`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use sluice_spec::{BodyEncoding, HttpAuth, HttpTrigger, Trigger};
use sluice_store::{Consumer, Store};

use crate::error::ApiError;
use crate::runtime::{Deployed, Rejection, RunRequest};
use crate::secrets::hash_secret;
use crate::state::AppState;

static EXECUTION_KEY: HeaderName = HeaderName::from_static("x-execution-key");

/// What a URL that is neither the API nor a pipeline gets.
pub const NO_SUCH_ROUTE: &str = "no such route: the API is under /api/v1, pipelines under /{env}/pipeline/{realm}/v{major}/{name}";

/// The parts of a gateway URL, percent-decoded.
#[derive(Debug, PartialEq)]
pub struct GatewayPath {
    env: String,
    realm: String,
    version: String,
    name: String,
    rest: Option<String>,
}

impl GatewayPath {
    /// The parts of `path` when it has the gateway's shape
    /// (`/{env}/pipeline/{realm}/{version}/{name}[/{rest…}]`, no part
    /// empty); a part that is not UTF-8 once decoded is a bad request.
    ///
    /// Read here rather than by a route with parameters: the router copied
    /// every parameter into shared strings in the request's extensions,
    /// and the extractor copied them again (about 2% of a call's
    /// instructions).
    fn parse(path: &str) -> Result<Option<Self>, ApiError> {
        let Some(([env, realm, version, name], rest)) = split(path) else {
            return Ok(None);
        };
        Ok(Some(GatewayPath {
            env: decode(env)?,
            realm: decode(realm)?,
            version: decode(version)?,
            name: decode(name)?,
            rest: rest.map(decode).transpose()?,
        }))
    }
}

/// Whether `path` has the gateway's shape (its parts not decoded yet).
pub fn is_gateway_path(path: &str) -> bool {
    split(path).is_some()
}

/// `/{env}/pipeline/{realm}/{version}/{name}[/{rest…}]` cut into its
/// parts, none of them empty.
fn split(path: &str) -> Option<([&str; 4], Option<&str>)> {
    let mut parts = path.strip_prefix('/')?.splitn(6, '/');
    let (Some(env), Some("pipeline"), Some(realm), Some(version), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let rest = parts.next();
    let named = [env, realm, version, name];
    (!named.iter().any(|p| p.is_empty()) && rest != Some("")).then_some((named, rest))
}

fn decode(part: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "the URL part '{part}' is not UTF-8 once percent-decoded"
            ))
        })
}

/// API keys already looked up, by hash (misses too, so a flood of bad
/// keys does not reach the store). Cleared on every consumer change.
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, Option<Arc<Consumer>>>>,
}

/// Entries kept before the cache starts over.
const KEY_CACHE_LIMIT: usize = 100_000;

impl KeyCache {
    async fn consumer(
        &self,
        store: &dyn Store,
        key: &str,
    ) -> Result<Option<Arc<Consumer>>, ApiError> {
        let hash = hash_secret(key);
        if let Some(found) = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
        {
            return Ok(found.clone());
        }
        let found = store.find_api_key(&hash).await?.map(|(_, c)| Arc::new(c));
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= KEY_CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(hash, found.clone());
        Ok(found)
    }

    /// Forgets everything (a consumer or key changed).
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// A consumer: realm, environment, name.
type ConsumerId = (String, String, String);

/// Per-consumer token buckets: tokens left and when they were counted.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<ConsumerId, (f64, Instant)>>,
}

impl RateLimiter {
    /// `Ok` when the consumer may make a request now; else seconds to wait.
    fn take(&self, consumer: &Consumer) -> Result<(), u64> {
        let Some(limit) = consumer.rate_limit else {
            return Ok(());
        };
        let capacity = f64::from(limit.requests.max(1));
        let per_second = capacity / (limit.per_ms.max(1) as f64 / 1000.0);
        let key = (
            consumer.realm.clone(),
            consumer.environment.clone(),
            consumer.name.clone(),
        );
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = buckets.entry(key).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * per_second).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_second).ceil().max(1.0) as u64)
        }
    }

    /// Forgets every bucket (limits changed).
    pub fn clear(&self) {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

fn new_key() -> String {
    sluice_engine::new_execution_key()
}

fn with_key(mut response: Response, key: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(key) {
        response.headers_mut().insert(EXECUTION_KEY.clone(), value);
    }
    response
}

fn error_answer(error: ApiError, key: &str) -> Response {
    with_key(error.into_response(), key)
}

/// Handles one gateway request; the router's fallback, so a URL without
/// the gateway's shape gets the "no such route" answer.
pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = match GatewayPath::parse(uri.path()) {
        Ok(Some(path)) => path,
        Ok(None) => return ApiError::not_found(NO_SUCH_ROUTE).into_response(),
        Err(error) => return error.into_response(),
    };
    let key = new_key();
    match serve(&state, path, method, uri, headers, body, &key).await {
        Ok(response) => with_key(response, &key),
        Err(error) => error_answer(error, &key),
    }
}

/// Handles one gateway request taken whole (see [`crate::Front`]).
pub async fn handle_request(state: AppState, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    handle(State(state), parts.method, parts.uri, parts.headers, body).await
}

fn parse_major(version: &str) -> Option<u32> {
    version.strip_prefix('v')?.parse().ok()
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    state: &AppState,
    path: GatewayPath,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    key: &str,
) -> Result<Response, ApiError> {
    let Some(major) = parse_major(&path.version) else {
        return Err(ApiError::not_found(format!(
            "'{}' is not a major version: the URL is /{{env}}/pipeline/{{realm}}/v{{major}}/{{name}}",
            path.version
        )));
    };
    let runtime = &state.runtime;
    let Some(deployed) = runtime.find(&path.realm, &path.env, &path.name, major) else {
        return Err(ApiError::not_found(format!(
            "no pipeline '{}' v{major} is deployed in '{}' of realm '{}'",
            path.name, path.env, path.realm
        )));
    };
    let Some(Trigger::Http(trigger)) = &deployed.plan.definition.trigger else {
        return Err(ApiError::not_found(format!(
            "pipeline '{}' is not triggered over HTTP",
            path.name
        )));
    };
    let cors_origin = cors_origin(trigger, &headers);
    if method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return Ok(preflight(trigger, &headers, cors_origin));
    }
    let mut answer = async {
        let consumer = authenticate(state, trigger, &deployed, &headers, &uri).await?;
        if !trigger.methods.is_empty()
            && !trigger
                .methods
                .iter()
                .any(|m| m.as_str() == method.as_str())
        {
            let allowed: Vec<String> = trigger
                .methods
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect();
            let mut error = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{method} is not accepted by '{}'; it accepts {}",
                    path.name,
                    allowed.join(", ")
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                error = error.with_header(header::ALLOW, value);
            }
            return Err(error.with_details(json!({"allowed": allowed})));
        }
        let sub_path = path
            .rest
            .as_deref()
            .map_or_else(|| "/".to_owned(), |r| format!("/{r}"));
        let params = route_params(&deployed, &sub_path, &path.name)?;
        if let Some(consumer) = &consumer
            && let Err(wait) = state.limits.take(consumer)
        {
            state.runtime.metrics.reject("rate_limit");
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("consumer '{}' is over its rate limit", consumer.name),
            );
            error.retry_after = Some(wait);
            return Err(error);
        }
        let limit = trigger
            .max_body_size
            .map_or(state.config.default_max_body, |b| {
                usize::try_from(b.0).unwrap_or(usize::MAX)
            });
        let bytes = read_body(body, limit).await.inspect_err(|_| {
            state.runtime.metrics.reject("body_size");
        })?;
        let message = http_message(trigger, &method, &uri, &headers, &sub_path, params, &bytes)?;
        let mut request = RunRequest::new(message, "http");
        request.execution_key = Some(key.to_owned());
        match state.runtime.run(&deployed, request).await {
            Ok(execution) => Ok(answer_of(execution)),
            Err(rejection) => Err(rejected(rejection)),
        }
    }
    .await
    .unwrap_or_else(IntoResponse::into_response);
    if let Some(origin) = cors_origin {
        answer
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        answer
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(answer)
}

fn rejected(rejection: Rejection) -> ApiError {
    let status = match rejection {
        Rejection::QueueTimeout => StatusCode::GATEWAY_TIMEOUT,
        Rejection::Overflow | Rejection::Draining | Rejection::Superseded => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let mut error = ApiError::new(status, "unavailable", rejection.message());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        error.retry_after = Some(1);
    }
    error
}

fn cors_origin(trigger: &HttpTrigger, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    if trigger.cors.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    trigger
        .cors
        .iter()
        .any(|o| o.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

fn preflight(trigger: &HttpTrigger, headers: &HeaderMap, origin: Option<HeaderValue>) -> Response {
    let Some(origin) = origin else {
        return ApiError::forbidden("this origin may not call the pipeline (CORS)").into_response();
    };
    let methods = if trigger.methods.is_empty() {
        "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS".to_owned()
    } else {
        trigger
            .methods
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if let Ok(v) = HeaderValue::from_str(&methods) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("content-type, apikey, authorization"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// The consumer calling, when the trigger asks for one.
async fn authenticate(
    state: &AppState,
    trigger: &HttpTrigger,
    deployed: &Deployed,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Option<Arc<Consumer>>, ApiError> {
    let d = &deployed.deployment;
    let (secret, user) = match trigger.auth {
        HttpAuth::None => return Ok(None),
        HttpAuth::Apikey => {
            let from_header = headers.get("apikey").and_then(|v| v.to_str().ok());
            // The query is decoded only when the header is absent.
            let key = from_header.map(str::to_owned).or_else(|| {
                query_pairs(uri)
                    .into_iter()
                    .find(|(k, _)| k == "apikey")
                    .map(|(_, v)| v)
            });
            match key {
                Some(key) => (key, None),
                None => {
                    state.runtime.metrics.reject("auth");
                    return Err(ApiError::unauthorized(
                        "this pipeline needs an API key: send it in the 'apikey' header",
                    ));
                }
            }
        }
        HttpAuth::Basic => match basic_credentials(headers) {
            Some((user, password)) => (password, Some(user)),
            None => {
                state.runtime.metrics.reject("auth");
                return Err(ApiError::unauthorized(
                    "this pipeline needs basic auth: the consumer name and one of its keys",
                )
                .with_header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sluice\""),
                )
                .with_details(json!({"scheme": "Basic"})));
            }
        },
    };
    let consumer = state
        .keys
        .consumer(state.store.as_ref(), &secret)
        .await?
        .filter(|c| c.realm == d.realm && c.environment == d.environment)
        .filter(|c| user.as_ref().is_none_or(|u| *u == c.name));
    let Some(consumer) = consumer else {
        state.runtime.metrics.reject("auth");
        return Err(ApiError::unauthorized(format!(
            "the credentials are not valid for '{}' of realm '{}'",
            d.environment, d.realm
        )));
    };
    if !consumer
        .pipelines
        .iter()
        .any(|p| p == "*" || *p == d.pipeline)
    {
        state.runtime.metrics.reject("forbidden");
        return Err(ApiError::forbidden(format!(
            "consumer '{}' may not call pipeline '{}'",
            consumer.name, d.pipeline
        )));
    }
    Ok(Some(consumer))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn route_params(
    deployed: &Deployed,
    sub_path: &str,
    name: &str,
) -> Result<Map<String, Value>, ApiError> {
    if sub_path == "/" {
        return Ok(Map::new());
    }
    if let Some(params) = deployed.routes.iter().find_map(|r| r.matches(sub_path)) {
        return Ok(params);
    }
    let routes: Vec<&str> = deployed.routes.iter().map(|r| r.text.as_str()).collect();
    let known = if routes.is_empty() {
        "it has no extra routes".to_owned()
    } else {
        format!("its routes are {}", routes.join(", "))
    };
    Err(ApiError::not_found(format!(
        "pipeline '{name}' has no route '{sub_path}'; {known}"
    ))
    .with_details(json!({"routes": routes})))
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    })
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    let Some(query) = uri.query() else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// The http trigger message (DESIGN §2.3). The caller's credentials
/// (`apikey`, `Authorization`) are left out so they never reach a log.
fn http_message(
    trigger: &HttpTrigger,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    sub_path: &str,
    params: Map<String, Value>,
    bytes: &Bytes,
) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // Sized once, and each name looked up once (its hash is SipHash's).
    let mut header_map = Map::with_capacity(headers.keys_len());
    for (name, value) in headers {
        let name = name.as_str();
        if name == "apikey" || (name == "authorization" && trigger.auth != HttpAuth::None) {
            continue;
        }
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match header_map.entry(name) {
            serde_json::map::Entry::Occupied(mut seen) => {
                if let Value::String(existing) = seen.get_mut() {
                    existing.push_str(", ");
                    existing.push_str(&text);
                }
            }
            serde_json::map::Entry::Vacant(new) => {
                new.insert(Value::String(text));
            }
        }
    }
    let mut query = Map::new();
    for (k, v) in query_pairs(uri) {
        if k == "apikey" && trigger.auth == HttpAuth::Apikey {
            continue;
        }
        match query.get_mut(&k) {
            Some(Value::Array(list)) => list.push(Value::String(v)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(v)]);
            }
            None => {
                query.insert(k, Value::String(v));
            }
        }
    }
    let body = body_value(trigger, &content_type, bytes)?;
    // Built by moving the parts in: `json!` would copy each of them.
    let mut message = Map::with_capacity(7);
    message.insert("body".into(), body);
    message.insert("headers".into(), Value::Object(header_map));
    message.insert("query".into(), Value::Object(query));
    message.insert("params".into(), Value::Object(params));
    message.insert("method".into(), Value::from(method.as_str()));
    message.insert("path".into(), Value::from(sub_path));
    message.insert("contentType".into(), Value::String(content_type));
    Ok(Value::Object(message))
}

fn body_value(trigger: &HttpTrigger, content_type: &str, bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json" || essence.ends_with("+json");
    if is_json || (essence.is_empty() && matches!(bytes.first(), Some(b'{' | b'['))) {
        return serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
        });
    }
    if trigger.body_encoding == Some(BodyEncoding::Base64) {
        return Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Value::String(text.to_owned())),
        Err(_) => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )),
    }
}

/// The HTTP answer of an execution.
fn answer_of(execution: sluice_engine::Execution) -> Response {
    match (execution.result, execution.response) {
        (Ok(_), Some(response)) => {
            let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
            let mut content_type = None;
            let mut headers = HeaderMap::new();
            for (name, value) in &response.headers {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&text),
                ) {
                    if n == header::CONTENT_TYPE {
                        content_type = Some(text.clone());
                    }
                    headers.insert(n, v);
                }
            }
            let raw_text = content_type
                .as_deref()
                .is_some_and(|ct| !ct.contains("json"));
            let mut answer = if raw_text && response.body.is_string() {
                // Copied only when the body is the message itself.
                let text = match Arc::unwrap_or_clone(response.body) {
                    Value::String(text) => text,
                    _ => String::new(),
                };
                (status, text).into_response()
            } else {
                (status, axum::Json(&*response.body)).into_response()
            };
            answer.headers_mut().extend(headers);
            answer
        }
        (Ok(output), None) => (StatusCode::OK, axum::Json(output)).into_response(),
        (Err(error), _) => {
            let status = StatusCode::from_u16(error.status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut body = error.to_value();
            if let Value::Object(map) = &mut body {
                map.insert("executionKey".into(), Value::String(execution.key.clone()));
            }
            (status, axum::Json(execution.mask.value(&body))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> Option<GatewayPath> {
        GatewayPath::parse(path).unwrap()
    }

    #[test]
    fn gateway_paths_are_read_part_by_part_and_decoded() {
        let path = parts("/test/pipeline/acme/v1/echo").unwrap();
        assert_eq!(
            path,
            GatewayPath {
                env: "test".into(),
                realm: "acme".into(),
                version: "v1".into(),
                name: "echo".into(),
                rest: None,
            }
        );
        let path = parts("/prod/pipeline/acme/v2/orders/42/lines%20a/b").unwrap();
        assert_eq!(path.name, "orders");
        assert_eq!(path.rest.as_deref(), Some("42/lines a/b"));
        assert_eq!(
            parts("/test/pipeline/ac%6De/v1/echo").unwrap().realm,
            "acme"
        );
    }

    #[test]
    fn other_paths_are_not_gateway_paths() {
        for path in [
            "/",
            "/healthz/x",
            "/api/v1/nothing-here",
            "/test/pipeline/acme/v1",
            "/test/pipelines/acme/v1/echo",
            "//pipeline/acme/v1/echo",
            "/test/pipeline//v1/echo",
            "/test/pipeline/acme/v1/echo/",
            "test/pipeline/acme/v1/echo",
        ] {
            assert_eq!(parts(path), None, "{path}");
        }
    }

    #[test]
    fn a_part_that_is_not_utf8_is_a_bad_request() {
        let error = GatewayPath::parse("/test/pipeline/acme/v1/%FF").unwrap_err();
        assert_eq!(error.into_response().status(), StatusCode::BAD_REQUEST);
    }
}
