//! The gateway: keys, limits, timeouts, overflow, CORS, routes, and a
//! redeploy under steady load.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use serde_json::{Value, json};

use crate::harness::{ECHO, Harness};

async fn echo_harness() -> (Harness, String) {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save("acme", ECHO).await;
    h.deploy("acme", "test", "echo", json!({})).await;
    let key = h.consumer("acme", "test", "shop", &["echo"]).await;
    (h, key)
}

#[tokio::test]
async fn a_call_with_a_key_runs_the_pipeline_and_is_recorded_with_logs_and_trace() {
    let (h, key) = echo_harness().await;
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/echo",
            Some(&key),
            Some(json!({"n": 42})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        r.body,
        json!({"n": 42, "greeting": "hello", "branch": "gt10"})
    );
    let exec = r.header("x-execution-key").unwrap().to_owned();
    let items = h.executions("acme", &format!("key={exec}")).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "ok");
    assert_eq!(items[0]["trigger"], "http");
    assert_eq!(items[0]["input"]["body"]["n"], 42);
    let one = h
        .admin(
            Method::GET,
            &format!("/realms/acme/executions/{exec}"),
            None,
        )
        .await;
    assert_eq!(one.body["logs"][0]["message"], "echo 42 gt10", "{one:?}");
    assert!(one.body["trace"].as_array().unwrap().len() >= 4, "{one:?}");
    // The key never reaches the pipeline's message.
    assert!(!one.body.to_string().contains(&key));
    // Text search finds the log line; a key that never ran is absent.
    assert_eq!(h.executions("acme", "q=gt10").await.len(), 1);
    assert_eq!(h.executions("acme", "q=nothing-like-this").await.len(), 0);
    assert_eq!(h.executions("acme", "status=error").await.len(), 0);
    assert_eq!(
        h.executions("acme", "pipeline=echo&environment=test")
            .await
            .len(),
        1
    );
    assert_eq!(
        h.executions("acme", "from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z")
            .await
            .len(),
        0
    );
    // Re-run makes a new execution of the same input.
    let r = h
        .admin(
            Method::POST,
            &format!("/realms/acme/executions/{exec}/rerun"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(h.executions("acme", "pipeline=echo").await.len(), 2);
}

#[tokio::test]
async fn a_missing_wrong_or_unallowed_key_is_refused() {
    let (h, key) = echo_harness().await;
    let path = "/test/pipeline/acme/v1/echo";
    let r = h
        .call(Method::POST, path, None, Some(json!({"n": 1})))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("x-execution-key").is_some());
    let r = h
        .call(Method::POST, path, Some("slk_wrong"), Some(json!({"n": 1})))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    h.save("acme", &ECHO.replace("name: echo", "name: other"))
        .await;
    h.deploy("acme", "test", "other", json!({})).await;
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/other",
            Some(&key),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    // A test key does not open prod.
    h.deploy("acme", "prod", "echo", json!({})).await;
    let r = h
        .call(
            Method::POST,
            "/prod/pipeline/acme/v1/echo",
            Some(&key),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    // The key in the query works too, and is not passed on.
    let r = h
        .call(
            Method::POST,
            &format!("{path}?apikey={key}&x=1"),
            None,
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    // A deleted consumer's key stops working at once.
    let r = h
        .admin(
            Method::DELETE,
            "/realms/acme/environments/test/consumers/shop",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    let r = h
        .call(Method::POST, path, Some(&key), Some(json!({"n": 1})))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn basic_auth_and_auth_none() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save(
        "acme",
        &ECHO.replace("methods: [POST]", "methods: [POST]\n  auth: basic"),
    )
    .await;
    h.deploy("acme", "test", "echo", json!({})).await;
    let key = h.consumer("acme", "test", "shop", &["echo"]).await;
    let basic = |user: &str, pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    };
    let call = |auth: String| {
        Request::builder()
            .method(Method::POST)
            .uri("/test/pipeline/acme/v1/echo")
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"n": 3}"#))
            .unwrap()
    };
    assert_eq!(
        h.send(call(basic("shop", &key))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.send(call(basic("shop", "nope"))).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.send(call(basic("other", &key))).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/echo",
            None,
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.header("www-authenticate")
            .unwrap_or("")
            .starts_with("Basic"),
        "{r:?}"
    );
    h.save(
        "acme",
        &ECHO
            .replace("name: echo", "name: open")
            .replace("methods: [POST]", "methods: [POST]\n  auth: none"),
    )
    .await;
    h.deploy("acme", "test", "open", json!({})).await;
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/open",
            None,
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save(
        "acme",
        &ECHO.replace("methods: [POST]", "methods: [POST]\n  maxBodySize: 1KB"),
    )
    .await;
    h.deploy("acme", "test", "echo", json!({})).await;
    let key = h.consumer("acme", "test", "shop", &["echo"]).await;
    let big = json!({"n": 1, "pad": "x".repeat(4096)});
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/echo",
            Some(&key),
            Some(big),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{r:?}");
    assert_eq!(r.body["code"], "payload_too_large");
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/echo",
            Some(&key),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

const SLOW: &str = r#"
name: slow
trigger:
  type: http
  timeout: 300ms
steps:
  - type: delay
    duration: 2s
"#;

#[tokio::test]
async fn an_execution_past_its_timeout_is_504_and_recorded_as_timeout() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save("acme", SLOW).await;
    h.deploy("acme", "test", "slow", json!({})).await;
    let key = h.consumer("acme", "test", "shop", &["slow"]).await;
    let started = std::time::Instant::now();
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/slow",
            Some(&key),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{r:?}");
    assert!(started.elapsed() < Duration::from_millis(1500));
    let exec = r.header("x-execution-key").unwrap().to_owned();
    assert_eq!(r.body["executionKey"], exec.as_str(), "{r:?}");
    let items = h.executions("acme", &format!("key={exec}")).await;
    assert_eq!(items[0]["status"], "timeout", "{items:?}");
}

#[tokio::test]
async fn a_consumer_over_its_rate_limit_gets_429_with_retry_after() {
    let (h, _) = echo_harness().await;
    let key = h
        .consumer_with(
            "acme",
            "test",
            json!({"name": "limited", "pipelines": ["echo"], "rateLimit": {"requests": 2, "per": "1m"}}),
        )
        .await;
    for _ in 0..2 {
        let r = h
            .call(
                Method::POST,
                "/test/pipeline/acme/v1/echo",
                Some(&key),
                Some(json!({"n": 1})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
    }
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/echo",
            Some(&key),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
}

#[tokio::test]
async fn overflow_beyond_slots_and_queue_is_503_at_once() {
    // As many waiting places as slots (the default is ten times as many).
    let h = Harness::with(|c| c.queue_factor = 1).await;
    h.realm("acme").await;
    h.save(
        "acme",
        "name: slow\ntrigger:\n  type: http\n  timeout: 10s\nsteps:\n  - type: delay\n    duration: 600ms\n",
    )
    .await;
    // One slot, one waiting place.
    h.deploy(
        "acme",
        "test",
        "slow",
        json!({"replicas": 1, "concurrency": 1}),
    )
    .await;
    let key = h.consumer("acme", "test", "shop", &["slow"]).await;
    let h = Arc::new(h);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let h = h.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let r = h
                .call(
                    Method::POST,
                    "/test/pipeline/acme/v1/slow",
                    Some(&key),
                    Some(json!({})),
                )
                .await;
            (
                r.status,
                r.header("retry-after").map(str::to_owned),
                started.elapsed(),
            )
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut ok = 0;
    let mut rejected = 0;
    for task in tasks {
        let (status, retry, took) = task.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                rejected += 1;
                assert!(
                    took < Duration::from_millis(300),
                    "503 must be at once: {took:?}"
                );
                assert!(retry.is_some());
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, rejected), (2, 2));
    let metrics = h
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let text = metrics.body.as_str().unwrap();
    assert!(text.contains("sluice_rejections_total"), "{text}");
}

#[tokio::test]
async fn routes_params_405_404_and_cors() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save(
        "acme",
        r#"
name: orders
trigger:
  type: http
  methods: [GET, POST]
  routes: ["/orders/:id", "/files/*rest"]
  cors: ["https://shop.example"]
  auth: none
steps:
  - type: response
    body:
      id: "{{ message.params.id }}"
      rest: "{{ message.params.rest }}"
      path: "{{ message.path }}"
      q: "{{ message.query.x }}"
"#,
    )
    .await;
    h.deploy("acme", "test", "orders", json!({})).await;
    let r = h
        .call(
            Method::GET,
            "/test/pipeline/acme/v1/orders/orders/17?x=y",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["id"], "17");
    assert_eq!(r.body["path"], "/orders/17");
    assert_eq!(r.body["q"], "y");
    let r = h
        .call(
            Method::GET,
            "/test/pipeline/acme/v1/orders/files/a/b.txt",
            None,
            None,
        )
        .await;
    assert_eq!(r.body["rest"], "a/b.txt", "{r:?}");
    let r = h
        .call(
            Method::DELETE,
            "/test/pipeline/acme/v1/orders/orders/17",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    let r = h
        .call(
            Method::GET,
            "/test/pipeline/acme/v1/orders/elsewhere",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.body["message"].as_str().unwrap().contains("/orders/:id"),
        "{r:?}"
    );
    let r = h
        .call(
            Method::GET,
            "/test/pipeline/acme/v9/orders/orders/1",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(Method::GET, "/test/pipeline/acme/v1/nothing", None, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/test/pipeline/acme/v1/orders/orders/1")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let r = h.send(preflight).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let cross = Request::builder()
        .method(Method::GET)
        .uri("/test/pipeline/acme/v1/orders/orders/1")
        .header("origin", "https://shop.example")
        .body(Body::empty())
        .unwrap();
    let r = h.send(cross).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let other = Request::builder()
        .method(Method::GET)
        .uri("/test/pipeline/acme/v1/orders/orders/1")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let r = h.send(other).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_failing_pipeline_answers_its_error_with_the_execution_key() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save(
        "acme",
        "name: broken\ntrigger:\n  type: http\n  auth: none\nsteps:\n  - type: throw-error\n    message: it broke\n    status: 422\n    code: nope\n",
    )
    .await;
    h.deploy("acme", "test", "broken", json!({})).await;
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/broken",
            None,
            Some(json!({})),
        )
        .await;
    assert!(
        r.status.is_server_error() || r.status.is_client_error(),
        "{r:?}"
    );
    assert_eq!(
        r.body["executionKey"],
        r.header("x-execution-key").unwrap(),
        "{r:?}"
    );
    let items = h.executions("acme", "status=error").await;
    assert_eq!(items.len(), 1);
    let one = h
        .admin(
            Method::GET,
            &format!(
                "/realms/acme/executions/{}",
                items[0]["key"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert!(
        one.body["trace"].is_array(),
        "failures keep their trace: {one:?}"
    );
}

/// Steady load while the pipeline is redeployed five times: every
/// request is answered 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeploy_under_load_fails_no_request() {
    let (h, key) = echo_harness().await;
    let h = Arc::new(h);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<(StatusCode, Value)>::new()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (h, key, stop, ok, failed) = (
            h.clone(),
            key.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = h
                    .call(
                        Method::POST,
                        "/test/pipeline/acme/v1/echo",
                        Some(&key),
                        Some(json!({"n": 11})),
                    )
                    .await;
                // In-process calls never wait on a socket: yield so the
                // redeploys get a turn.
                tokio::task::yield_now().await;
                if r.status == StatusCode::OK {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.lock().unwrap().push((r.status, r.body));
                }
            }
        }));
    }
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        h.save(
            "acme",
            &ECHO.replace("greeting: hello", &format!("greeting: hello{i}")),
        )
        .await;
        h.deploy("acme", "test", "echo", json!({})).await;
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let failed = std::mem::take(&mut *failed.lock().unwrap());
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "{}",
        ok.load(Ordering::Relaxed)
    );
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/echo",
            Some(&key),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.body["greeting"], "hello4");
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let (h, key) = echo_harness().await;
    h.call(
        Method::POST,
        "/test/pipeline/acme/v1/echo",
        Some(&key),
        Some(json!({"n": 42})),
    )
    .await;
    h.call(
        Method::POST,
        "/test/pipeline/acme/v1/echo",
        None,
        Some(json!({"n": 42})),
    )
    .await;
    h.flush().await;
    let r = h
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap();
    for wanted in [
        r#"sluice_executions_total{realm="acme",environment="test",pipeline="echo",major="1",status="ok"} 1"#,
        "sluice_execution_duration_seconds_bucket{",
        r#"sluice_step_duration_seconds_count{realm="acme",environment="test",pipeline="echo",major="1",type="set"}"#,
        "sluice_executions_in_flight 0",
        "sluice_queue_depth{",
        r#"sluice_rejections_total{reason="auth"} 1"#,
        "sluice_execution_writer_queue 0",
        "sluice_execution_records_written_total 1",
        "sluice_execution_records_dropped_total 0",
        "sluice_deployments 1",
    ] {
        assert!(text.contains(wanted), "{wanted} missing from:\n{text}");
    }
    // The step histograms count the steps run (the echo has two `set`s).
    let sets = r#"sluice_step_duration_seconds_count{realm="acme",environment="test",pipeline="echo",major="1",type="set"} "#;
    let counted = text
        .lines()
        .find_map(|l| l.strip_prefix(sets))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert_eq!(counted, Some(2), "{text}");
    let r = h
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn headers_reach_the_message_with_repeated_ones_joined_and_the_key_left_out() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save(
        "acme",
        r#"
name: headers
trigger: { type: http, methods: [POST] }
steps:
  - type: response
    body: "{{ message.headers }}"
"#,
    )
    .await;
    h.deploy("acme", "test", "headers", json!({})).await;
    let key = h.consumer("acme", "test", "shop", &["headers"]).await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/test/pipeline/acme/v1/headers")
        .header("apikey", &key)
        .header("x-tag", "first")
        .header("accept", "application/json")
        .header("x-tag", "second")
        .header("x-tag", "third")
        .body(Body::empty())
        .unwrap();
    let r = h.send(request).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        r.body,
        json!({"x-tag": "first, second, third", "accept": "application/json"})
    );
}
