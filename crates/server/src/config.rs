//! Settings of a server, with the defaults of one machine.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// How a server runs; `Default` is `sluice serve` with no flags.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where state, keys and the admin token live.
    pub data_dir: PathBuf,
    /// The admin's API token on first start (else one is generated).
    pub admin_token: Option<String>,
    /// The master key text (base64 or hex); else `data_dir/master.key`.
    pub master_key: Option<String>,
    /// Stored input/output payloads are cut past this many bytes.
    pub payload_limit: usize,
    /// Share of successful executions whose full trace is kept, per
    /// environment (failures always keep theirs).
    pub trace_sample: HashMap<String, f64>,
    /// For environments not in `trace_sample`.
    pub default_trace_sample: f64,
    /// At most this many successful traces are kept per deployment and
    /// second, whatever the sample (failures always keep theirs).
    pub trace_budget: u32,
    /// How long execution records are kept, per environment.
    pub retention: HashMap<String, Duration>,
    /// For environments not in `retention`.
    pub default_retention: Duration,
    /// How often the retention job runs.
    pub retention_interval: Duration,
    /// Bytes of execution records waiting for the writer; when full, new
    /// executions wait for room (records are never dropped for speed).
    pub writer_memory: usize,
    /// How long shutdown waits for in-flight executions.
    pub drain_timeout: Duration,
    /// Largest request body when a trigger sets none.
    pub default_max_body: usize,
    /// Waiting executions allowed per deployment, as a multiple of its slots.
    pub queue_factor: usize,
    /// How often the event dispatcher looks for due deliveries when idle.
    pub event_poll: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let day = Duration::from_secs(24 * 3600);
        ServerConfig {
            data_dir: PathBuf::from("./sluice-data"),
            admin_token: None,
            master_key: None,
            payload_limit: 64 * 1024,
            trace_sample: HashMap::from([("test".to_owned(), 1.0)]),
            default_trace_sample: 0.1,
            trace_budget: 20,
            retention: HashMap::from([("test".to_owned(), 3 * day), ("prod".to_owned(), 10 * day)]),
            default_retention: 10 * day,
            retention_interval: Duration::from_secs(3600),
            writer_memory: 16 * 1024 * 1024,
            drain_timeout: Duration::from_secs(30),
            default_max_body: 5 * 1024 * 1024,
            queue_factor: 10,
            event_poll: Duration::from_millis(500),
        }
    }
}

impl ServerConfig {
    pub fn trace_sample_for(&self, environment: &str) -> f64 {
        self.trace_sample
            .get(environment)
            .copied()
            .unwrap_or(self.default_trace_sample)
    }

    pub fn retention_for(&self, environment: &str) -> Duration {
        self.retention
            .get(environment)
            .copied()
            .unwrap_or(self.default_retention)
    }
}
