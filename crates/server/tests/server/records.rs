//! Execution records: cut payloads, sampled traces, retention, masking.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{ECHO, Harness, eventually};

async fn echo_everywhere(h: &Harness) -> String {
    h.realm("acme").await;
    h.save("acme", ECHO).await;
    h.deploy("acme", "test", "echo", json!({})).await;
    h.deploy("acme", "prod", "echo", json!({})).await;
    let key = h.consumer("acme", "test", "t", &["echo"]).await;
    let prod = h.consumer("acme", "prod", "p", &["echo"]).await;
    format!("{key} {prod}")
}

#[tokio::test]
async fn payloads_past_the_limit_are_cut_with_a_marker_and_cannot_be_rerun() {
    let h = Harness::with(|c| c.payload_limit = 200).await;
    let keys = echo_everywhere(&h).await;
    let key = keys.split(' ').next().unwrap();
    let big = json!({"n": 1, "pad": "x".repeat(1000)});
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/echo",
            Some(key),
            Some(big),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let exec = r.header("x-execution-key").unwrap().to_owned();
    let items = h.executions("acme", &format!("key={exec}")).await;
    let input = items[0]["input"].as_str().expect("a cut input is text");
    assert!(input.len() < 300, "{input}");
    assert!(input.contains("…[truncated"), "{input}");
    let r = h
        .admin(
            Method::POST,
            &format!("/realms/acme/executions/{exec}/rerun"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
}

#[tokio::test]
async fn successes_keep_their_trace_by_sample_and_failures_always() {
    let h = Harness::with(|c| {
        c.trace_sample = HashMap::from([("test".to_owned(), 1.0), ("prod".to_owned(), 0.0)]);
    })
    .await;
    let keys = echo_everywhere(&h).await;
    let (test_key, prod_key) = keys.split_once(' ').unwrap();
    h.call(
        Method::POST,
        "/test/pipeline/acme/v1/echo",
        Some(test_key),
        Some(json!({"n": 1})),
    )
    .await;
    h.call(
        Method::POST,
        "/prod/pipeline/acme/v1/echo",
        Some(prod_key),
        Some(json!({"n": 1})),
    )
    .await;
    h.save(
        "acme",
        "name: broken\ntrigger:\n  type: http\n  auth: none\nsteps:\n  - type: throw-error\n    message: no\n    status: 502\n",
    )
    .await;
    h.deploy("acme", "prod", "broken", json!({})).await;
    let r = h
        .call(
            Method::POST,
            "/prod/pipeline/acme/v1/broken",
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{r:?}");
    let failed = r.header("x-execution-key").unwrap().to_owned();
    h.flush().await;
    let trace_of = |env: &'static str, status: &'static str| {
        let h = &h;
        async move {
            let items = h
                .executions(
                    "acme",
                    &format!("environment={env}&status={status}&pipeline=echo"),
                )
                .await;
            let key = items[0]["key"].as_str().unwrap().to_owned();
            h.admin(Method::GET, &format!("/realms/acme/executions/{key}"), None)
                .await
                .body["trace"]
                .clone()
        }
    };
    assert!(trace_of("test", "ok").await.is_array());
    assert!(
        trace_of("prod", "ok").await.is_null(),
        "prod successes are not sampled here"
    );
    let one = h
        .admin(
            Method::GET,
            &format!("/realms/acme/executions/{failed}"),
            None,
        )
        .await;
    assert!(one.body["trace"].is_array(), "{one:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_past_their_environment_retention_are_deleted() {
    let h = Harness::with(|c| {
        c.retention = HashMap::from([
            ("test".to_owned(), Duration::from_millis(300)),
            ("prod".to_owned(), Duration::from_secs(3600)),
        ]);
        c.retention_interval = Duration::from_millis(100);
    })
    .await;
    let keys = echo_everywhere(&h).await;
    let (test_key, prod_key) = keys.split_once(' ').unwrap();
    h.call(
        Method::POST,
        "/test/pipeline/acme/v1/echo",
        Some(test_key),
        Some(json!({"n": 1})),
    )
    .await;
    h.call(
        Method::POST,
        "/prod/pipeline/acme/v1/echo",
        Some(prod_key),
        Some(json!({"n": 1})),
    )
    .await;
    assert_eq!(h.executions("acme", "").await.len(), 2);
    assert!(
        eventually(Duration::from_secs(3), || async {
            h.executions("acme", "environment=test").await.is_empty()
        })
        .await,
        "the test record outlived its retention"
    );
    assert_eq!(h.executions("acme", "environment=prod").await.len(), 1);
}

#[tokio::test]
async fn account_values_never_reach_records() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.admin(
        Method::PUT,
        "/realms/acme/environments/test/accounts/crm",
        Some(json!({"type": "bearer", "fields": {"token": "tok-very-secret-123"}})),
    )
    .await;
    h.save(
        "acme",
        "name: leak\ntrigger:\n  type: http\n  auth: none\nsteps:\n  - type: set\n    values:\n      auth: \"Bearer {{ account.crm.token }}\"\n  - type: log\n    message: \"using {{ account.crm.token }}\"\n",
    )
    .await;
    h.deploy("acme", "test", "leak", json!({})).await;
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/leak",
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let exec = r.header("x-execution-key").unwrap().to_owned();
    h.flush().await;
    let one = h
        .admin(
            Method::GET,
            &format!("/realms/acme/executions/{exec}"),
            None,
        )
        .await;
    let text = one.body.to_string();
    assert!(one.body["trace"].is_array());
    assert!(!text.contains("tok-very-secret-123"), "{text}");
    assert!(text.contains("using ***"), "{text}");
    assert!(h.executions("acme", "q=tok-very-secret").await.is_empty());
}

/// A connector step with an account: the secret goes to the remote system
/// (which here echoes it back), yet no record, log line or trace holds it.
#[tokio::test]
async fn connector_secrets_never_reach_records_even_when_echoed() {
    use axum::http::HeaderMap;
    let echo = axum::Router::new().route(
        "/echo",
        axum::routing::get(|headers: HeaderMap| async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            axum::Json(json!({"youSent": auth}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, echo).await });

    let h = Harness::new().await;
    h.realm("acme").await;
    h.admin(
        Method::PUT,
        "/realms/acme/environments/test/accounts/erp",
        Some(json!({"type": "bearer", "fields": {"token": "erp-secret-token-777"}})),
    )
    .await;
    h.save(
        "acme",
        &format!(
            "name: erp-call\ntrigger:\n  type: http\n  auth: none\nsteps:\n  - type: http-request\n    url: http://{addr}/echo\n    account: erp\n    into: erp\n  - type: log\n    message: \"erp said {{{{ message.erp.body.youSent }}}}\"\n"
        ),
    )
    .await;
    h.deploy("acme", "test", "erp-call", json!({})).await;
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/erp-call",
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let exec = r.header("x-execution-key").unwrap().to_owned();
    h.flush().await;
    let one = h
        .admin(
            Method::GET,
            &format!("/realms/acme/executions/{exec}"),
            None,
        )
        .await;
    let text = one.body.to_string();
    assert!(one.body["trace"].is_array(), "{text}");
    assert!(
        !text.contains("erp-secret-token-777"),
        "a secret reached the record: {text}"
    );
    assert!(text.contains("erp said Bearer ***"), "{text}");
}
