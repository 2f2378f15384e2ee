//! An open-loop, fixed-rate HTTP load generator for latency.
//!
//! Requests are due at `start + i / rate` whatever the server answers, and
//! each latency runs from the request's *due* time to its last response
//! byte: time spent waiting for a free connection, or behind a late pacer,
//! counts. A server that stalls therefore shows its stall in every request
//! that should have been sent meanwhile (no coordinated omission).

mod schedule;
mod summary;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Url};
use serde::Serialize;
use tokio::runtime::Handle;
use tokio::sync::{Semaphore, mpsc};

pub use schedule::Schedule;
pub use summary::{LatencySummary, percentile};

/// The body sent when none is given: the benchmark pipeline's example input.
pub const DEFAULT_BODY: &str = r#"{"n":42,"name":"order-1"}"#;

/// What to send, how fast and for how long.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The URL every request is POSTed to.
    pub url: String,
    /// Requests per second.
    pub rate: f64,
    /// How long the measured part runs.
    pub duration: Duration,
    /// How long to send at the same rate before measuring.
    pub warmup: Duration,
    /// The most connections (and so requests) in flight at once.
    pub connections: usize,
    /// Extra request headers; `content-type` defaults to `application/json`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The request body.
    pub body: Bytes,
    /// How long one request may take before it counts as an error.
    pub timeout: Duration,
}

impl LoadConfig {
    /// A run against `url` at `rate` per second for `duration`, with the defaults.
    pub fn new(url: impl Into<String>, rate: f64, duration: Duration) -> Self {
        Self {
            url: url.into(),
            rate,
            duration,
            warmup: Duration::from_secs(1),
            connections: 64,
            headers: Vec::new(),
            body: Bytes::from_static(DEFAULT_BODY.as_bytes()),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The outcome of a run, printed as one JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub url: String,
    /// The target rate (requests per second).
    pub rate: f64,
    pub duration_s: f64,
    /// Measured requests (warmup excluded).
    pub requests: u64,
    /// Measured requests that got no answer or a non-2xx answer.
    pub errors: u64,
    /// Measured requests per second from the first due time to the last answer.
    pub achieved_rate: f64,
    /// Percentiles over all measured requests, errors included.
    #[serde(flatten)]
    pub latency: LatencySummary,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("invalid load settings: {0}")]
    Settings(String),
    #[error("invalid URL '{url}': {reason}")]
    Url { url: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("the request pacer stopped: {0}")]
    Pacer(String),
}

/// Parses a `name: value` header as given on the command line.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("invalid header '{text}': expected 'name: value'"))?;
    let name = HeaderName::try_from(name.trim())
        .map_err(|e| format!("invalid header name in '{text}': {e}"))?;
    let value = HeaderValue::try_from(value.trim())
        .map_err(|e| format!("invalid header value in '{text}': {e}"))?;
    Ok((name, value))
}

/// Runs the warmup and the measured load, and reports the measured part.
///
/// Must be called inside a Tokio runtime: requests run on it, while a
/// blocking thread paces them.
pub async fn run(config: &LoadConfig) -> Result<LoadReport, LoadError> {
    crate::install_tls_provider();
    if config.connections == 0 {
        return Err(LoadError::Settings("connections must be at least 1".into()));
    }
    let schedule =
        Schedule::new(config.rate, config.warmup, config.duration).map_err(LoadError::Settings)?;
    let target = Arc::new(Target::new(config)?);
    let permits = Arc::new(Semaphore::new(config.connections));
    let (samples_tx, mut samples) = mpsc::unbounded_channel();

    let start = Instant::now();
    let runtime = Handle::current();
    let pacer = tokio::task::spawn_blocking(move || {
        for index in 0..schedule.total() {
            let due = start + schedule.offset(index);
            // A thread sleep wakes within tens of microseconds; Tokio timers
            // round up to whole milliseconds, which would add up to 1 ms of
            // the generator's own delay to every latency.
            if let Some(ahead) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(ahead);
            }
            let request = Request {
                due,
                measured: schedule.is_measured(index),
            };
            runtime.spawn(request.send(
                Arc::clone(&target),
                Arc::clone(&permits),
                samples_tx.clone(),
            ));
        }
        // The channel closes once the pacer and every request are done.
    });

    let capacity = usize::try_from(schedule.measured_requests()).unwrap_or(0);
    let mut latencies = Vec::with_capacity(capacity);
    let mut errors = 0;
    let measured_start = start + schedule.measured_start();
    let mut last_answer = measured_start;
    while let Some(sample) = samples.recv().await {
        if !sample.measured {
            continue;
        }
        latencies.push(sample.latency_us);
        errors += u64::from(!sample.ok);
        last_answer = last_answer.max(sample.done);
    }
    pacer.await.map_err(|e| LoadError::Pacer(e.to_string()))?;

    let requests = latencies.len() as u64;
    let window = last_answer.duration_since(measured_start).as_secs_f64();
    let achieved_rate = if window > 0.0 {
        (requests as f64 / window * 10.0).round() / 10.0
    } else {
        0.0
    };
    Ok(LoadReport {
        url: config.url.clone(),
        rate: config.rate,
        duration_s: config.duration.as_secs_f64(),
        requests,
        errors,
        achieved_rate,
        latency: LatencySummary::from_micros(&mut latencies),
    })
}

/// Where and what every request sends.
struct Target {
    client: Client,
    url: Url,
    body: Bytes,
}

impl Target {
    fn new(config: &LoadConfig) -> Result<Self, LoadError> {
        let url = Url::parse(&config.url).map_err(|e| LoadError::Url {
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
        let mut headers = HeaderMap::new();
        if !config.headers.iter().any(|(name, _)| name == CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in &config.headers {
            headers.append(name.clone(), value.clone());
        }
        let client = Client::builder()
            .pool_max_idle_per_host(config.connections)
            .default_headers(headers)
            .timeout(config.timeout)
            // A proxy from the environment would measure the proxy.
            .no_proxy()
            .build()
            .map_err(LoadError::Client)?;
        Ok(Self {
            client,
            url,
            body: config.body.clone(),
        })
    }

    /// Sends one request and reads the whole answer; true on a 2xx.
    async fn exchange(&self) -> bool {
        let sent = self
            .client
            .post(self.url.clone())
            .body(self.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let success = response.status().is_success();
                response.bytes().await.is_ok() && success
            }
            Err(_) => false,
        }
    }
}

/// One scheduled request.
struct Request {
    due: Instant,
    measured: bool,
}

impl Request {
    async fn send(
        self,
        target: Arc<Target>,
        permits: Arc<Semaphore>,
        samples: mpsc::UnboundedSender<Sample>,
    ) {
        // The permit is held until the answer is read, so at most
        // `connections` requests (and so connections) are busy at once.
        let ok = match permits.acquire().await {
            Ok(_permit) => target.exchange().await,
            Err(_) => false,
        };
        let done = Instant::now();
        let latency = done.saturating_duration_since(self.due);
        let _ = samples.send(Sample {
            measured: self.measured,
            ok,
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            done,
        });
    }
}

/// What one request measured.
struct Sample {
    measured: bool,
    ok: bool,
    latency_us: u64,
    done: Instant,
}
