//! The load generator keeps its rate and measures a live server.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sluice_bench::{ceiling, load};
use tokio::net::TcpListener;

async fn start_ceiling(key: Option<&str>) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_second_at_200_per_second() {
    let url = start_ceiling(Some("k")).await;
    let mut config = load::LoadConfig::new(url.clone(), 200.0, Duration::from_secs(1));
    config.warmup = Duration::from_millis(200);
    config.connections = 8;
    config.headers = vec![load::parse_header("apikey: k").unwrap()];

    let report = load::run(&config).await.unwrap();

    assert_eq!(report.url, url);
    assert_eq!(report.requests, 200);
    assert_eq!(report.errors, 0);
    assert!(
        (150.0..=210.0).contains(&report.achieved_rate),
        "achieved {}",
        report.achieved_rate
    );
    let l = report.latency;
    assert!(l.p50_ms > 0.0 && l.p50_ms < 50.0, "{l:?}");
    assert!(l.p50_ms <= l.p90_ms && l.p90_ms <= l.p99_ms, "{l:?}");
    assert!(l.p99_ms <= l.p999_ms && l.p999_ms <= l.max_ms, "{l:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_refusals_and_unreachable_servers_as_errors() {
    let url = start_ceiling(Some("k")).await;
    let mut config = load::LoadConfig::new(url, 100.0, Duration::from_millis(200));
    config.warmup = Duration::ZERO;
    let report = load::run(&config).await.unwrap();
    assert_eq!((report.requests, report.errors), (20, 20), "401 answers");

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    config.url = format!("http://{}/echo", closed.local_addr().unwrap());
    drop(closed);
    let report = load::run(&config).await.unwrap();
    assert_eq!((report.requests, report.errors), (20, 20), "no server");
}

#[test]
fn parses_headers_and_rejects_malformed_ones() {
    let (name, value) = load::parse_header("X-Api-Key:  abc ").unwrap();
    assert_eq!(name, "x-api-key");
    assert_eq!(value, "abc");
    assert!(load::parse_header("no colon").is_err());
    assert!(load::parse_header("bad name: x").is_err());
}
