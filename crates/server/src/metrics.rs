//! Prometheus metrics, exposed at `/metrics`. Handles used per execution
//! are taken once per deployment, so the request path only bumps atomics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExecutionLabels {
    pub realm: String,
    pub environment: String,
    pub pipeline: String,
    pub major: String,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentLabels {
    pub realm: String,
    pub environment: String,
    pub pipeline: String,
    pub major: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    #[prometheus(flatten)]
    pub deployment: DeploymentLabels,
    pub r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    pub reason: &'static str,
}

fn latency_buckets() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0, 30.0,
    ])
}

fn step_buckets() -> Histogram {
    Histogram::new([
        0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
    ])
}

/// Every metric of the platform.
pub struct Metrics {
    registry: Registry,
    pub executions: Family<ExecutionLabels, Counter>,
    pub durations: Family<DeploymentLabels, Histogram, fn() -> Histogram>,
    pub steps: Family<StepLabels, Histogram, fn() -> Histogram>,
    pub queue_depth: Family<DeploymentLabels, Gauge>,
    pub in_flight: Gauge,
    pub rejections: Family<RejectionLabels, Counter>,
    pub writer_queue: Gauge,
    pub writer_written: Counter,
    pub writer_dropped: Counter,
    pub writer_waits: Counter,
    pub writer_batch_seconds: Histogram,
    pub events_delivered: Counter,
    pub events_retried: Counter,
    pub events_dead: Counter,
    pub deployments: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sluice");
        let executions = Family::<ExecutionLabels, Counter>::default();
        registry.register(
            "executions",
            "Executions by realm, environment, pipeline, major and status",
            executions.clone(),
        );
        let durations: Family<DeploymentLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_buckets);
        registry.register(
            "execution_duration_seconds",
            "Execution durations",
            durations.clone(),
        );
        let steps: Family<StepLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(step_buckets);
        registry.register(
            "step_duration_seconds",
            "Step latencies by step type",
            steps.clone(),
        );
        let queue_depth = Family::<DeploymentLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Executions waiting for a free slot",
            queue_depth.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "executions_in_flight",
            "Executions running now",
            in_flight.clone(),
        );
        let rejections = Family::<RejectionLabels, Counter>::default();
        registry.register(
            "rejections",
            "Requests refused (overflow, rate limit, auth, body size, timeout)",
            rejections.clone(),
        );
        let writer_queue = Gauge::default();
        registry.register(
            "execution_writer_queue",
            "Execution records waiting to be written (writer lag)",
            writer_queue.clone(),
        );
        let writer_written = Counter::default();
        registry.register(
            "execution_records_written",
            "Execution records written to the store",
            writer_written.clone(),
        );
        let writer_dropped = Counter::default();
        let writer_waits = Counter::default();
        registry.register(
            "execution_writer_waits",
            "Executions that waited for room because the writer was behind",
            writer_waits.clone(),
        );
        registry.register(
            "execution_records_dropped",
            "Execution records given up because the store failed to write them",
            writer_dropped.clone(),
        );
        let writer_batch_seconds = latency_buckets();
        registry.register(
            "execution_writer_batch_seconds",
            "Time to write one batch of execution records",
            writer_batch_seconds.clone(),
        );
        let events_delivered = Counter::default();
        registry.register(
            "events_delivered",
            "Event deliveries that ended well",
            events_delivered.clone(),
        );
        let events_retried = Counter::default();
        registry.register(
            "events_retried",
            "Event deliveries that failed and will be retried",
            events_retried.clone(),
        );
        let events_dead = Counter::default();
        registry.register(
            "events_dead_lettered",
            "Event deliveries moved to the dead-letter list",
            events_dead.clone(),
        );
        let deployments = Gauge::default();
        registry.register("deployments", "Deployments serving", deployments.clone());
        Metrics {
            registry,
            executions,
            durations,
            steps,
            queue_depth,
            in_flight,
            rejections,
            writer_queue,
            writer_written,
            writer_dropped,
            writer_waits,
            writer_batch_seconds,
            events_delivered,
            events_retried,
            events_dead,
            deployments,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Counts a refusal.
    pub fn reject(&self, reason: &'static str) {
        self.rejections
            .get_or_create(&RejectionLabels { reason })
            .inc();
    }
}
