//! `http-request` against a real HTTP server started by the test.

#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use sluice_engine::{FlowError, RunOptions, load_str};
use sluice_spec::Format;

#[derive(Default)]
struct Server {
    token_calls: AtomicUsize,
    /// Tokens issued before this number are refused (revoked).
    valid_from: AtomicUsize,
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
        .collect();
    axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
    .into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        axum::Json(json!({"code": code})),
    )
        .into_response()
}

async fn token(State(s): State<Arc<Server>>, headers: HeaderMap, body: String) -> Response {
    // client:secret
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some("Basic Y2xpZW50OnNlY3JldA==")
        || !body.contains("grant_type=client_credentials")
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let n = s.token_calls.fetch_add(1, Ordering::SeqCst);
    axum::Json(
        json!({"access_token": format!("tok-{n}"), "expires_in": 3600, "token_type": "Bearer"}),
    )
    .into_response()
}

async fn protected(State(s): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer tok-"))
        .and_then(|n| n.parse::<usize>().ok());
    match given {
        Some(n) if n >= s.valid_from.load(Ordering::SeqCst) => {
            axum::Json(json!({"granted": n})).into_response()
        }
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn start() -> (String, Arc<Server>) {
    let state = Arc::new(Server::default());
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/status/{code}", any(status))
        .route(
            "/redirect",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "/echo?from=redirect")],
                )
            }),
        )
        .route("/text", get(|| async { "hello" }))
        .route(
            "/bytes",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    vec![0u8, 1, 2, 255],
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route("/oauth/token", post(token))
        .route("/protected", get(protected))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), state)
}

fn accounts(base: &str) -> Value {
    json!({
        "crm": {"type": "basic", "username": "sync", "password": "p4ss"},
        "erp": {"type": "bearer", "token": "erp-token"},
        "maps": {"type": "api-key", "key": "k-123"},
        "weather": {"type": "api-key", "key": "w-9", "query": "appid"},
        "idp": {"type": "oauth2-client-credentials", "tokenUrl": format!("{base}/oauth/token"),
                "clientId": "client", "clientSecret": "secret", "scope": "read"},
        "odd": {"type": "private-key", "key": "x"},
    })
}

async fn run(base: &str, steps: &str, input: Value) -> Result<Value, FlowError> {
    let yaml = format!("name: t\nsteps:\n{}", steps.replace("BASE", base));
    let catalog = sluice_connectors::catalog();
    let plan =
        load_str("t.yaml", &yaml, Format::Yaml, None, &catalog).unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        accounts: Arc::new(accounts(base)),
        ..RunOptions::default()
    };
    plan.execute(input, options).await.into_result()
}

async fn ok(base: &str, steps: &str, input: Value) -> Value {
    run(base, steps, input)
        .await
        .unwrap_or_else(|e| panic!("{}", e.to_value()))
}

async fn err(base: &str, steps: &str, input: Value) -> FlowError {
    match run(base, steps, input).await {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn get_with_query_and_headers_answers_status_headers_and_parsed_body() {
    let (base, _) = start().await;
    let out = ok(
        &base,
        r#"  - type: http-request
    url: "BASE/echo"
    query: { q: "{{ message.q }}", tag: [a, b], skip: null, n: 5 }
    headers: { X-Request-Id: "{{ message.id }}" }
"#,
        json!({"q": "café & co", "id": "r-1"}),
    )
    .await;
    assert_eq!(out["status"], 200);
    assert!(
        out["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body = &out["body"];
    assert_eq!(body["method"], "GET");
    assert_eq!(body["query"], "q=caf%C3%A9+%26+co&tag=a&tag=b&n=5");
    assert_eq!(body["headers"]["x-request-id"], "r-1");
    assert!(
        body["headers"]["user-agent"]
            .as_str()
            .unwrap()
            .starts_with("sluice/")
    );
}

#[tokio::test]
async fn bodies_go_as_json_form_text_and_binary() {
    let (base, _) = start().await;
    let send = |kind: &str, body: &str| {
        format!(
            "  - type: http-request\n    method: POST\n    url: BASE/echo\n    bodyType: {kind}\n    body: {body}\n"
        )
    };
    let out = ok(
        &base,
        &send("json", "{ id: \"{{ message.id }}\", n: 2 }"),
        json!({"id": "x"}),
    )
    .await;
    assert_eq!(out["body"]["headers"]["content-type"], "application/json");
    assert_eq!(out["body"]["body"], r#"{"id":"x","n":2}"#);
    let out = ok(&base, &send("form", "{ a: \"1 2\", b: \"é\" }"), json!({})).await;
    assert_eq!(
        out["body"]["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(out["body"]["body"], "a=1+2&b=%C3%A9");
    let out = ok(
        &base,
        &send("text", "\"plain {{ message.id }}\""),
        json!({"id": 7}),
    )
    .await;
    assert_eq!(
        out["body"]["headers"]["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(out["body"]["body"], "plain 7");
    let out = ok(&base, &send("binary", "aGk="), json!({})).await;
    assert_eq!(
        out["body"]["headers"]["content-type"],
        "application/octet-stream"
    );
    assert_eq!(out["body"]["body"], "hi");
    let put = ok(
        &base,
        "  - type: http-request\n    method: PUT\n    url: BASE/echo\n    body: { a: 1 }\n    headers: { Content-Type: application/merge-patch+json }\n    bodyType: text\n",
        json!({}),
    )
    .await;
    assert_eq!(put["body"]["method"], "PUT");
    assert_eq!(
        put["body"]["headers"]["content-type"],
        "application/merge-patch+json"
    );
}

#[tokio::test]
async fn accounts_give_basic_bearer_and_api_key_auth() {
    let (base, _) = start().await;
    let call = |account: &str| {
        format!("  - type: http-request\n    url: BASE/echo\n    account: {account}\n")
    };
    let out = ok(&base, &call("crm"), json!({})).await;
    assert_eq!(
        out["body"]["headers"]["authorization"],
        "Basic c3luYzpwNHNz"
    );
    let out = ok(&base, &call("erp"), json!({})).await;
    assert_eq!(out["body"]["headers"]["authorization"], "Bearer erp-token");
    let out = ok(&base, &call("maps"), json!({})).await;
    assert_eq!(out["body"]["headers"]["x-api-key"], "k-123");
    let out = ok(&base, &call("weather"), json!({})).await;
    assert_eq!(out["body"]["query"], "appid=w-9");
    let e = err(&base, &call("nobody"), json!({})).await;
    assert_eq!(e.status, 400);
    assert!(e.message.contains("no account 'nobody'"), "{}", e.message);
    let e = err(&base, &call("odd"), json!({})).await;
    assert!(e.message.contains("private-key"), "{}", e.message);
}

#[tokio::test]
async fn oauth2_tokens_are_cached_and_renewed_when_refused() {
    let (base, server) = start().await;
    let call = "  - type: http-request\n    url: BASE/protected\n    account: idp\n";
    let catalog = sluice_connectors::catalog();
    // One compiled step, as a deployment has: its token cache lives with it.
    let yaml = format!("name: t\nsteps:\n{}", call.replace("BASE", &base));
    let plan = load_str("t.yaml", &yaml, Format::Yaml, None, &catalog).unwrap();
    let options = RunOptions {
        accounts: Arc::new(accounts(&base)),
        ..RunOptions::default()
    };
    for _ in 0..3 {
        let out = plan
            .execute(json!({}), options.clone())
            .await
            .into_result()
            .unwrap();
        assert_eq!(out["body"], json!({"granted": 0}));
    }
    assert_eq!(
        server.token_calls.load(Ordering::SeqCst),
        1,
        "the token is reused"
    );
    // The identity provider revokes the token: one refusal, a new token, success.
    server.valid_from.store(1, Ordering::SeqCst);
    let out = plan
        .execute(json!({}), options.clone())
        .await
        .into_result()
        .unwrap();
    assert_eq!(out["body"], json!({"granted": 1}));
    assert_eq!(server.token_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_status_outside_2xx_is_an_error_unless_accepted() {
    let (base, _) = start().await;
    let e = err(
        &base,
        "  - type: http-request\n    url: BASE/status/404\n",
        json!({}),
    )
    .await;
    assert_eq!((e.code.as_ref(), e.status), ("http_status", 404));
    assert_eq!(e.message, "the server answered 404 Not Found");
    let details = e.to_value();
    assert_eq!(
        details["details"]["body"],
        json!({"code": 404}),
        "{details}"
    );
    let e = err(
        &base,
        "  - type: http-request\n    url: BASE/status/503\n",
        json!({}),
    )
    .await;
    assert_eq!(e.status, 503);
    let out = ok(
        &base,
        "  - type: http-request\n    url: BASE/status/404\n    acceptStatus: [404, \"5xx\"]\n",
        json!({}),
    )
    .await;
    assert_eq!(out["status"], 404);
    let out = ok(
        &base,
        "  - type: http-request\n    url: BASE/status/502\n    acceptStatus: [\"5xx\"]\n",
        json!({}),
    )
    .await;
    assert_eq!(out["body"]["code"], 502);
    // failOnError: false keeps the error as the output, as for any step.
    let out = ok(
        &base,
        "  - type: http-request\n    url: BASE/status/500\n    failOnError: false\n",
        json!({}),
    )
    .await;
    assert!(out.to_string().contains("500"), "{out}");
}

#[tokio::test]
async fn redirects_text_bytes_and_transport_failures() {
    let (base, _) = start().await;
    let out = ok(
        &base,
        "  - type: http-request\n    url: BASE/redirect\n",
        json!({}),
    )
    .await;
    assert_eq!(out["body"]["query"], "from=redirect");
    let e = err(
        &base,
        "  - type: http-request\n    url: BASE/redirect\n    followRedirects: false\n",
        json!({}),
    )
    .await;
    assert_eq!(e.status, 302);
    let out = ok(
        &base,
        "  - type: http-request\n    url: BASE/text\n",
        json!({}),
    )
    .await;
    assert_eq!(out["body"], "hello");
    let out = ok(
        &base,
        "  - type: http-request\n    url: BASE/bytes\n",
        json!({}),
    )
    .await;
    assert_eq!(out["body"], "AAEC/w==");
    // Nothing listens on port 9 of this machine.
    let e = err(
        &base,
        "  - type: http-request\n    url: http://127.0.0.1:9/x\n",
        json!({}),
    )
    .await;
    assert_eq!((e.code.as_ref(), e.status), ("http", 502));
    assert!(e.message.contains("request failed"), "{}", e.message);
    // TLS to a server that does not speak it fails the handshake, clearly.
    let https = base.replace("http://", "https://");
    let e = err(
        &https,
        "  - type: http-request\n    url: BASE/echo\n",
        json!({}),
    )
    .await;
    assert_eq!(e.status, 502, "{}", e.message);
    let e = err(
        &base,
        "  - type: http-request\n    url: \"{{ message.u }}\"\n",
        json!({"u": "ftp://x"}),
    )
    .await;
    assert_eq!(e.status, 400);
    let e = err(
        &base,
        "  - type: http-request\n    url: \"{{ message.u }}\"\n",
        json!({"u": "not a url"}),
    )
    .await;
    assert!(e.message.contains("is not a URL"), "{}", e.message);
}

#[tokio::test]
async fn the_step_timeout_cuts_a_slow_server() {
    let (base, _) = start().await;
    let started = std::time::Instant::now();
    let e = err(
        &base,
        "  - type: http-request\n    url: BASE/slow\n    timeout: 200ms\n",
        json!({}),
    )
    .await;
    assert_eq!(e.code, "timeout", "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn bad_configs_are_refused_at_load() {
    let catalog = sluice_connectors::catalog();
    for (steps, path) in [
        (
            "  - type: http-request\n    method: FETCH\n    url: x\n",
            "steps[0].method",
        ),
        (
            "  - type: http-request\n    url: x\n    acceptStatus: [\"4yy\"]\n",
            "steps[0].acceptStatus[0]",
        ),
        ("  - type: http-request\n    method: GET\n", "steps[0]"),
    ] {
        let yaml = format!("name: t\nsteps:\n{steps}");
        let e = load_str("t.yaml", &yaml, Format::Yaml, None, &catalog).unwrap_err();
        assert!(e.to_string().contains(path), "{path}: {e}");
    }
}

/// An HTTPS server with a self-signed certificate for `localhost`, answering
/// every request with a small JSON body.
async fn start_tls() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = cert.cert.der().clone();
    let key = rustls_key(cert.signing_key.serialize_der());
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"secure":true}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://localhost:{port}")
}

fn rustls_key(der: Vec<u8>) -> tokio_rustls::rustls::pki_types::PrivateKeyDer<'static> {
    tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(der.into())
}

#[tokio::test]
async fn tls_certificates_are_verified_unless_turned_off() {
    let base = start_tls().await;
    let e = err(
        &base,
        "  - type: http-request\n    url: BASE/x\n",
        json!({}),
    )
    .await;
    assert_eq!((e.code.as_ref(), e.status), ("http", 502), "{}", e.message);
    assert!(
        e.message.to_lowercase().contains("certificate"),
        "{}",
        e.message
    );
    let out = ok(
        &base,
        "  - type: http-request\n    url: BASE/x\n    verifyTls: false\n",
        json!({}),
    )
    .await;
    assert_eq!(out["body"], json!({"secure": true}));
}
