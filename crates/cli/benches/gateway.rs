//! The gateway path of `sluice serve`, measured from outside: the release
//! binary on a fresh data directory with default settings (execution
//! records and metrics on), the 5-step pipeline behind an API key, driven
//! over real sockets by closed-loop clients. Prints requests per second,
//! latency percentiles, the server's RSS idle, its peak under load, and the
//! RSS that 200 deployed pipelines add.
//!
//! `cargo bench -p sluice-cli --bench gateway` (`SLUICE_BENCH_SECONDS`
//! sets the length of each load run; default 5).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "slt_bench-admin-token";

const ECHO: &str = r#"
name: echo
trigger: { type: http, methods: [POST] }
steps:
  - type: set
    values: { greeting: hello }
  - type: choice
    when:
      - condition: "{{ message.body.n > 10 }}"
        steps: [{ type: set, values: { branch: gt10 } }]
    otherwise:
      - { type: set, values: { branch: le10 } }
  - type: log
    level: debug
    message: "order {{ message.body.name }} went {{ message.branch }}"
  - type: response
    status: 200
    body:
      n: "{{ message.body.n }}"
      greeting: "{{ message.greeting }}"
      branch: "{{ message.branch }}"
"#;

struct Server {
    child: Child,
    url: String,
    dir: PathBuf,
    ready_after: Duration,
}

impl Server {
    async fn start(tag: &str) -> Server {
        let dir = std::env::temp_dir().join(format!("sluice-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--data"])
            .arg(dir.join("data"))
            .args(["--listen", &addr])
            .env("SLUICE_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://{addr}");
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{url}/readyz")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "not ready");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Server {
            child,
            url,
            dir,
            ready_after: started.elapsed(),
        }
    }

    /// Resident memory now and at its peak, in MiB.
    fn rss(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(f64::NAN, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, String)>,
    ) -> Value {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}/api/v1{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some((content_type, text)) = body {
            request = request.header("content-type", content_type).body(text);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let value: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    async fn deploy(&self, yaml: &str, name: &str) {
        self.api(
            reqwest::Method::POST,
            "/realms/acme/pipelines",
            Some(("application/yaml", yaml.to_owned())),
        )
        .await;
        self.api(
            reqwest::Method::POST,
            "/realms/acme/environments/test/deployments",
            Some(("application/json", json!({"pipeline": name}).to_string())),
        )
        .await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Run {
    connections: usize,
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
}

impl Run {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// `connections` clients, each sending its next request when the last
/// is answered, for `length`.
async fn closed_loop(url: &str, key: &str, connections: usize, length: Duration) -> Run {
    let body = json!({"n": 42, "name": "order-1"}).to_string();
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let (url, key, body) = (url.to_owned(), key.to_owned(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while start.elapsed() < length {
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .header("apikey", &key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let ok = match answer {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                latencies.push(sent.elapsed().as_micros() as u64);
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.unwrap();
        latencies_us.extend(l);
        errors += e;
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    Run {
        connections,
        requests: latencies_us.len(),
        errors,
        seconds,
        latencies_us,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that is not ours skips the run.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.iter().any(|a| !"gateway".contains(a.as_str())) {
        return;
    }
    let seconds: u64 = std::env::var("SLUICE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    sluice_connectors::install_tls_provider();
    // The load generator on one thread, so the server keeps the other core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(Duration::from_secs(seconds)));
}

async fn bench(length: Duration) {
    let server = Server::start("load").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle, _) = server.rss();
    server
        .api(
            reqwest::Method::POST,
            "/realms",
            Some(("application/json", json!({"name": "acme"}).to_string())),
        )
        .await;
    server.deploy(ECHO, "echo").await;
    let consumer = server
        .api(
            reqwest::Method::POST,
            "/realms/acme/environments/test/consumers",
            Some((
                "application/json",
                json!({"name": "bench", "pipelines": ["echo"]}).to_string(),
            )),
        )
        .await;
    let key = consumer["key"].as_str().unwrap().to_owned();
    let url = format!("{}/test/pipeline/acme/v1/echo", server.url);
    // Warm up.
    closed_loop(&url, &key, 4, Duration::from_secs(1)).await;
    let mut runs = Vec::new();
    for connections in [1, 32] {
        runs.push(closed_loop(&url, &key, connections, length).await);
    }
    let (after, peak) = server.rss();
    // The writer stores records in batches off the request path.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let written = metric(&server.url, "sluice_execution_records_written_total").await;
    let dropped = metric(&server.url, "sluice_execution_records_dropped_total").await;
    drop(server);

    // RSS that 200 deployed pipelines add, on a fresh server.
    let many = Server::start("many").await;
    many.api(
        reqwest::Method::POST,
        "/realms",
        Some(("application/json", json!({"name": "acme"}).to_string())),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (before_many, _) = many.rss();
    for i in 0..200 {
        many.deploy(
            &ECHO.replace("name: echo", &format!("name: echo-{i}")),
            &format!("echo-{i}"),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (with_many, _) = many.rss();
    let ready = many.ready_after;
    drop(many);

    println!(
        "gateway: POST /test/pipeline/acme/v1/echo with an API key, records on ({}s per run)",
        length.as_secs()
    );
    println!("| connections | req/s | p50 ms | p99 ms | p99.9 ms | errors |");
    println!("|---|---|---|---|---|---|");
    let mut json_runs = Vec::new();
    for run in &runs {
        let rate = run.requests as f64 / run.seconds;
        println!(
            "| {} | {:.0} | {:.3} | {:.3} | {:.3} | {} |",
            run.connections,
            rate,
            run.percentile(0.5),
            run.percentile(0.99),
            run.percentile(0.999),
            run.errors
        );
        json_runs.push(json!({
            "connections": run.connections,
            "requestsPerSecond": rate,
            "p50Ms": run.percentile(0.5),
            "p99Ms": run.percentile(0.99),
            "p999Ms": run.percentile(0.999),
            "errors": run.errors,
        }));
    }
    println!("records written {written}, dropped {dropped}");
    println!("RSS idle {idle:.1} MiB; after load {after:.1} MiB; peak {peak:.1} MiB");
    println!(
        "RSS with 200 pipelines deployed {with_many:.1} MiB ({:+.1} MiB for 200)",
        with_many - before_many
    );
    println!("serve → ready {:.0} ms", ready.as_secs_f64() * 1000.0);
    let report = json!({
        "runs": json_runs,
        "recordsWritten": written,
        "recordsDropped": dropped,
        "rssIdleMiB": idle,
        "rssAfterLoadMiB": after,
        "rssPeakMiB": peak,
        "rssWith200PipelinesMiB": with_many,
        "rssAddedBy200PipelinesMiB": with_many - before_many,
        "serveToReadyMs": ready.as_secs_f64() * 1000.0,
    });
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-gateway.json");
    if std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).is_ok() {
        println!("written to {}", out.display());
    }
}

/// A counter's value from `/metrics` (summed over its labels).
async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
