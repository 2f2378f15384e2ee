//! The reference server answers like the benchmark pipeline.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use sluice_bench::ceiling;
use tokio::net::TcpListener;

/// Starts the ceiling on a free port; it stops with the test's runtime.
async fn start(key: Option<&str>) -> String {
    sluice_bench::install_tls_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ceiling::serve(
        listener,
        key.map(String::from),
        std::future::pending(),
    ));
    format!("http://{addr}/echo")
}

async fn post(url: &str, apikey: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = apikey {
        request = request.header("apikey", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn answers_the_example_in_order() {
    let url = start(Some("secret")).await;
    let (status, body) = post(&url, Some("secret"), r#"{"n":42,"name":"order-1"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"n":42,"name":"order-1","greeting":"hello","branch":"gt10"}"#
    );
    let (_, body) = post(&url, Some("secret"), r#"{"n":10}"#).await;
    assert_eq!(
        body,
        json!({"n": 10, "greeting": "hello", "branch": "le10"})
    );
}

#[tokio::test]
async fn needs_the_key_when_one_is_set() {
    let url = start(Some("secret")).await;
    for apikey in [None, Some("wrong")] {
        let (status, body) = post(&url, apikey, r#"{"n":1}"#).await;
        assert_eq!(status, 401);
        assert_eq!(body["code"], "unauthorized");
    }
    let open = start(None).await;
    assert_eq!(post(&open, None, r#"{"n":1}"#).await.0, 200);
}

#[tokio::test]
async fn rejects_bad_json() {
    let url = start(None).await;
    let (status, body) = post(&url, None, r#"{"n":"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "bad_json");
    assert_eq!(post(&url, None, "[1,2]").await.0, 400);
}
