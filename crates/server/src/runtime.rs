//! The runtime: every deployment compiled once and serving with
//! `replicas × concurrency` slots and a bounded queue; executions run
//! here whatever started them (gateway, schedule, event, call, by hand),
//! and each one leaves a record for the writer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use indexmap::{Equivalent, IndexMap};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use serde_json::{Map, Value, json};
use sluice_engine::services::{
    BoxFuture, CallRequest, EventPublisher, ObjectOp, ObjectStore, PipelineCaller, SessionStore,
};
use sluice_engine::{Catalog, Execution, FlowError, Plan, RunOptions, Services, compile_document};
use sluice_spec::{Document, Format, Problems, Trigger};
use sluice_store::{Deployment, EventTarget, ExecutionRecord, LogRecord, NewEvent, Scope, Store};
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

use crate::config::ServerConfig;
use crate::events::EventQueue;
use crate::metrics::{DeploymentLabels, ExecutionLabels, Metrics, StepLabels};
use crate::routes::RoutePattern;
use crate::secrets::MasterKey;
use crate::writer::Writer;

/// Deliveries of an event before it is dead-lettered, when the trigger sets none.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

/// Why an execution was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Every slot is busy and the queue is full.
    Overflow,
    /// Waited in the queue past the execution's time limit.
    QueueTimeout,
    /// The server is shutting down.
    Draining,
    /// A queue delivery lost its claim while it waited: the claim that
    /// holds it now runs it.
    Superseded,
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Overflow => "overflow",
            Rejection::QueueTimeout => "queue_timeout",
            Rejection::Draining => "draining",
            Rejection::Superseded => "superseded",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Rejection::Overflow => "every replica is busy and the queue is full; try again",
            Rejection::QueueTimeout => "no replica became free within the time limit",
            Rejection::Draining => "the server is shutting down",
            Rejection::Superseded => "the delivery was claimed again while it waited",
        }
    }
}

/// What a deployment is served under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DeploymentKey {
    realm: String,
    environment: String,
    pipeline: String,
    major: u32,
}

/// A [`DeploymentKey`] borrowed, to look one up on every request without
/// building it. Its derived hash equals the owned key's (the same fields,
/// `&str` hashing as `String`).
#[derive(Hash)]
struct DeploymentRef<'a> {
    realm: &'a str,
    environment: &'a str,
    pipeline: &'a str,
    major: u32,
}

impl Equivalent<DeploymentKey> for DeploymentRef<'_> {
    fn equivalent(&self, key: &DeploymentKey) -> bool {
        self.major == key.major
            && self.pipeline == key.pipeline
            && self.environment == key.environment
            && self.realm == key.realm
    }
}

/// A realm and environment borrowed, hashing as the owned pair.
#[derive(Hash)]
struct EnvRef<'a>(&'a str, &'a str);

impl Equivalent<(String, String)> for EnvRef<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// Metric handles of one deployment, taken once.
struct DeployedMetrics {
    ok: Counter,
    error: Counter,
    timeout: Counter,
    rejected: Counter,
    duration: Histogram,
    queue: Gauge,
    labels: DeploymentLabels,
    /// This deployment's step-duration histograms by step type, found
    /// without building labels: a deployment has a few step types.
    steps: RwLock<Vec<(&'static str, Histogram)>>,
}

impl DeployedMetrics {
    /// Records how long a step of type `kind` took.
    fn observe_step(&self, metrics: &Metrics, kind: &'static str, seconds: f64) {
        if let Some((_, h)) = read(&self.steps).iter().find(|(k, _)| *k == kind) {
            h.observe(seconds);
            return;
        }
        let h = metrics
            .steps
            .get_or_create(&StepLabels {
                deployment: self.labels.clone(),
                r#type: kind,
            })
            .clone();
        h.observe(seconds);
        let mut steps = write(&self.steps);
        if !steps.iter().any(|(k, _)| *k == kind) {
            steps.push((kind, h));
        }
    }
}

/// A deployment compiled and serving.
pub struct Deployed {
    pub deployment: Deployment,
    pub plan: Plan,
    /// The trigger's extra routes (http).
    pub routes: Vec<RoutePattern>,
    slots: Semaphore,
    waiting: AtomicUsize,
    queue_limit: usize,
    metrics: DeployedMetrics,
    /// Successful executions whose trace is kept, per second.
    trace_budget: PerSecond,
}

/// A count per wall-clock second, taken without a lock: the second in
/// the high 32 bits, the count in the low ones.
#[derive(Default)]
struct PerSecond(std::sync::atomic::AtomicU64);

impl PerSecond {
    /// Counts one more in this second when fewer than `limit` were.
    fn take(&self, limit: u32) -> bool {
        let second = (now_ms() / 1000) as u64 & 0xffff_ffff;
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let (at, count) = (current >> 32, current & 0xffff_ffff);
            let next = if at == second {
                if count >= u64::from(limit) {
                    return false;
                }
                current + 1
            } else {
                (second << 32) | 1
            };
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

impl Deployed {
    /// Slots in total (`replicas × concurrency`).
    pub fn capacity(&self) -> usize {
        let d = &self.deployment;
        (d.replicas.max(1) as usize).saturating_mul(d.concurrency.max(1) as usize)
    }

    /// Executions running now.
    pub fn running(&self) -> usize {
        self.capacity() - self.slots.available_permits()
    }

    /// Executions waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The execution time limit: the deployment's, else the trigger's.
    pub fn timeout(&self) -> Duration {
        self.deployment
            .timeout_ms
            .map_or_else(|| self.plan.trigger_timeout(), Duration::from_millis)
    }

    /// Takes a slot, waiting in the bounded queue when all are busy.
    async fn admit(&self, wait: bool) -> Result<SemaphorePermit<'_>, Rejection> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        if wait {
            return self.slots.acquire().await.map_err(|_| Rejection::Draining);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue_limit {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejection::Overflow);
        }
        self.metrics.queue.inc();
        let acquired = tokio::time::timeout(self.timeout(), self.slots.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.metrics.queue.dec();
        match acquired {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Rejection::Draining),
            Err(_) => Err(Rejection::QueueTimeout),
        }
    }
}

/// What one execution is asked to do.
pub struct RunRequest {
    pub input: Value,
    /// What started it: `http`, `scheduler`, `event`, `manual`, `call`, `rerun`.
    pub trigger: &'static str,
    pub execution_key: Option<String>,
    pub attempt: u32,
    pub redelivery: bool,
    pub call_depth: u32,
    /// Wait for a free slot however long it takes (queue-backed triggers,
    /// whose queue is the store), instead of the bounded in-memory queue.
    pub wait: bool,
    /// Awaited once a slot is taken, right before the execution starts;
    /// `false` drops the run (`Rejection::Superseded`).
    pub before_start: Option<Pin<Box<dyn Future<Output = bool> + Send>>>,
}

impl RunRequest {
    pub fn new(input: Value, trigger: &'static str) -> Self {
        RunRequest {
            input,
            trigger,
            execution_key: None,
            attempt: 1,
            redelivery: false,
            call_depth: 0,
            wait: false,
            before_start: None,
        }
    }
}

/// Globals, opened accounts and services of one realm and environment.
pub struct EnvData {
    pub globals: Arc<Value>,
    pub accounts: Arc<Value>,
    pub services: Services,
}

/// Every deployment of this process and what they share.
pub struct Runtime {
    pub store: Arc<dyn Store>,
    pub catalog: Catalog,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    pub writer: Writer,
    pub master: MasterKey,
    deployments: RwLock<IndexMap<DeploymentKey, Arc<Deployed>>>,
    envs: RwLock<IndexMap<(String, String), Arc<EnvData>>>,
    in_flight: AtomicUsize,
    idle: Notify,
    draining: std::sync::atomic::AtomicBool,
    /// Deliveries claimed at publish; wakes the dispatcher.
    pub events: Arc<EventQueue>,
    /// Wakes the scheduler when deployments changed.
    pub schedules_changed: Notify,
    /// Wakes broker consumers when globals or accounts changed.
    pub settings_changed: Notify,
    me: Weak<Runtime>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A poisoned map only means a writer panicked between whole-entry
    // inserts; the entries are still sound.
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `d` in milliseconds, for adding to or taking from `now_ms()`.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Compiles a stored definition.
pub fn compile_definition(
    source: &str,
    definition: &Value,
    catalog: &Catalog,
) -> Result<Plan, Problems> {
    let document = Document {
        source: source.to_owned(),
        format: Format::Json,
        value: definition.clone(),
        map: sluice_spec::SourceMap::default(),
    };
    compile_document(&document, catalog, None)
}

impl Runtime {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Catalog,
        config: Arc<ServerConfig>,
        metrics: Arc<Metrics>,
        writer: Writer,
        events: Arc<EventQueue>,
        master: MasterKey,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Runtime {
            store,
            catalog,
            config,
            metrics,
            writer,
            master,
            deployments: RwLock::default(),
            envs: RwLock::default(),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            events,
            schedules_changed: Notify::new(),
            settings_changed: Notify::new(),
            me: me.clone(),
        })
    }

    /// The serving deployment of (realm, environment, pipeline, major).
    pub fn find(
        &self,
        realm: &str,
        environment: &str,
        pipeline: &str,
        major: u32,
    ) -> Option<Arc<Deployed>> {
        read(&self.deployments)
            .get(&DeploymentRef {
                realm,
                environment,
                pipeline,
                major,
            })
            .cloned()
    }

    /// The serving deployment of `pipeline` with the highest major.
    pub fn find_latest(
        &self,
        realm: &str,
        environment: &str,
        pipeline: &str,
    ) -> Option<Arc<Deployed>> {
        self.deployed_in(realm, environment)
            .into_iter()
            .filter(|d| d.deployment.pipeline == pipeline)
            .max_by_key(|d| d.deployment.major)
    }

    /// Every serving deployment of a realm and environment.
    pub fn deployed_in(&self, realm: &str, environment: &str) -> Vec<Arc<Deployed>> {
        read(&self.deployments)
            .values()
            .filter(|d| d.deployment.realm == realm && d.deployment.environment == environment)
            .cloned()
            .collect()
    }

    /// Every serving deployment.
    pub fn all(&self) -> Vec<Arc<Deployed>> {
        read(&self.deployments).values().cloned().collect()
    }

    /// Whether `deployed` is still the one serving its key.
    pub fn is_current(&self, deployed: &Arc<Deployed>) -> bool {
        let d = &deployed.deployment;
        self.find(&d.realm, &d.environment, &d.pipeline, d.major)
            .is_some_and(|current| Arc::ptr_eq(&current, deployed))
    }

    /// Compiles the deployment's version and makes it serve; the deployment
    /// it replaces finishes what it runs and is dropped after.
    pub fn start(&self, plan: Plan, deployment: Deployment) -> Arc<Deployed> {
        let labels = DeploymentLabels {
            realm: deployment.realm.clone(),
            environment: deployment.environment.clone(),
            pipeline: deployment.pipeline.clone(),
            major: deployment.major.to_string(),
        };
        let counter = |status: &'static str| {
            self.metrics
                .executions
                .get_or_create(&ExecutionLabels {
                    realm: labels.realm.clone(),
                    environment: labels.environment.clone(),
                    pipeline: labels.pipeline.clone(),
                    major: labels.major.clone(),
                    status,
                })
                .clone()
        };
        let metrics = DeployedMetrics {
            ok: counter("ok"),
            error: counter("error"),
            timeout: counter("timeout"),
            rejected: counter("rejected"),
            duration: self.metrics.durations.get_or_create(&labels).clone(),
            queue: self.metrics.queue_depth.get_or_create(&labels).clone(),
            labels,
            steps: RwLock::default(),
        };
        let routes = match &plan.definition.trigger {
            Some(Trigger::Http(http)) => http
                .routes
                .iter()
                .filter_map(|r| RoutePattern::parse(r).ok())
                .collect(),
            _ => Vec::new(),
        };
        let capacity = (deployment.replicas.max(1) as usize)
            .saturating_mul(deployment.concurrency.max(1) as usize);
        let deployed = Arc::new(Deployed {
            plan,
            routes,
            slots: Semaphore::new(capacity),
            waiting: AtomicUsize::new(0),
            queue_limit: capacity.saturating_mul(self.config.queue_factor),
            metrics,
            trace_budget: PerSecond::default(),
            deployment,
        });
        let d = &deployed.deployment;
        let key = DeploymentKey {
            realm: d.realm.clone(),
            environment: d.environment.clone(),
            pipeline: d.pipeline.clone(),
            major: d.major,
        };
        let count = {
            let mut map = write(&self.deployments);
            map.insert(key, deployed.clone());
            map.len()
        };
        self.metrics.deployments.set(count as i64);
        self.schedules_changed.notify_waiters();
        deployed
    }

    /// Stops serving a deployment; running executions finish.
    pub fn stop(&self, realm: &str, environment: &str, pipeline: &str, major: u32) {
        let count = {
            let mut map = write(&self.deployments);
            map.swap_remove(&DeploymentRef {
                realm,
                environment,
                pipeline,
                major,
            });
            map.len()
        };
        self.metrics.deployments.set(count as i64);
        self.schedules_changed.notify_waiters();
    }

    /// Forgets the cached globals and accounts of a realm and environment.
    pub fn invalidate_env(&self, realm: &str, environment: &str) {
        write(&self.envs).swap_remove(&EnvRef(realm, environment));
        self.settings_changed.notify_waiters();
    }

    /// Globals, accounts and services of a realm and environment.
    pub async fn env_data(&self, realm: &str, environment: &str) -> Arc<EnvData> {
        if let Some(data) = read(&self.envs).get(&EnvRef(realm, environment)) {
            return data.clone();
        }
        let data = Arc::new(self.load_env(realm, environment).await);
        write(&self.envs).insert((realm.to_owned(), environment.to_owned()), data.clone());
        data
    }

    async fn load_env(&self, realm: &str, environment: &str) -> EnvData {
        let mut globals = Map::new();
        match self.store.list_globals(realm, environment).await {
            Ok(list) => {
                for g in list {
                    globals.insert(g.name, g.value);
                }
            }
            Err(e) => tracing::error!(realm, environment, error = %e, "globals cannot be read"),
        }
        let mut accounts = Map::new();
        match self.store.list_accounts(realm, environment).await {
            Ok(list) => {
                for account in list {
                    match self.open_account(&account.kind, &account.sealed) {
                        Ok(value) => {
                            accounts.insert(account.name, value);
                        }
                        Err(e) => tracing::error!(
                            realm, environment, account = %account.name, error = %e,
                            "an account cannot be opened"
                        ),
                    }
                }
            }
            Err(e) => tracing::error!(realm, environment, error = %e, "accounts cannot be read"),
        }
        let scope = Scope {
            realm: realm.to_owned(),
            environment: environment.to_owned(),
        };
        let services = Services {
            sessions: Arc::new(StoreSessions {
                store: self.store.clone(),
                scope: scope.clone(),
            }),
            objects: Arc::new(StoreObjects {
                store: self.store.clone(),
                scope: scope.clone(),
            }),
            events: Arc::new(RuntimeEvents {
                runtime: self.me.clone(),
                scope: scope.clone(),
            }),
            pipelines: Arc::new(RuntimeCaller {
                runtime: self.me.clone(),
                scope,
            }),
        };
        EnvData {
            globals: Arc::new(Value::Object(globals)),
            accounts: Arc::new(Value::Object(accounts)),
            services,
        }
    }

    /// An account's fields with its `type`, as `{{ account.x }}` reads it.
    pub fn open_account(&self, kind: &str, sealed: &[u8]) -> Result<Value, String> {
        let plain = self.master.open(sealed).map_err(|e| e.to_string())?;
        let mut fields: Map<String, Value> =
            serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
        fields.insert("type".into(), Value::String(kind.to_owned()));
        Ok(Value::Object(fields))
    }

    /// Runs one execution of `deployed` and hands its record to the writer.
    pub async fn run(
        &self,
        deployed: &Arc<Deployed>,
        mut request: RunRequest,
    ) -> Result<Execution, Rejection> {
        if self.draining.load(Ordering::Acquire) {
            self.metrics.reject(Rejection::Draining.reason());
            return Err(Rejection::Draining);
        }
        let permit = match deployed.admit(request.wait).await {
            Ok(permit) => permit,
            Err(rejection) => {
                self.metrics.reject(rejection.reason());
                deployed.metrics.rejected.inc();
                return Err(rejection);
            }
        };
        if let Some(check) = request.before_start.take()
            && !check.await
        {
            self.metrics.reject(Rejection::Superseded.reason());
            return Err(Rejection::Superseded);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.metrics.in_flight.inc();
        let _done = InFlight(self);
        let d = &deployed.deployment;
        let env = self.env_data(&d.realm, &d.environment).await;
        let started_at = now_ms();
        // The record shows the input as it came: written out now, so the
        // execution holds the only copy and its first writing step changes
        // it in place.
        let mask = deployed.plan.mask_for(&env.accounts);
        let input = cut(mask.value_json(&request.input), self.config.payload_limit);
        let options = RunOptions {
            services: env.services.clone(),
            globals: env.globals.clone(),
            accounts: env.accounts.clone(),
            realm: d.realm.clone(),
            environment: d.environment.clone(),
            major: d.major,
            minor: d.minor,
            execution_key: request.execution_key,
            attempt: request.attempt,
            redelivery: request.redelivery,
            trace_payloads: true,
            mocks: None,
            timeout: Some(deployed.timeout()),
            call_depth: request.call_depth,
        };
        let execution = deployed.plan.execute(request.input, options).await;
        drop(permit);
        self.observe(deployed, &execution);
        let record = self.record(deployed, request.trigger, started_at, input, &execution);
        self.writer.submit(record).await;
        Ok(execution)
    }

    fn observe(&self, deployed: &Deployed, execution: &Execution) {
        let m = &deployed.metrics;
        match &execution.result {
            Ok(_) => m.ok.inc(),
            Err(e) if e.code == "timeout" => m.timeout.inc(),
            Err(_) => m.error.inc(),
        };
        m.duration.observe(execution.duration.as_secs_f64());
        for (kind, duration_us) in execution.step_timings() {
            m.observe_step(&self.metrics, kind, duration_us as f64 / 1e6);
        }
    }

    fn record(
        &self,
        deployed: &Deployed,
        trigger: &str,
        started_at: i64,
        input: String,
        execution: &Execution,
    ) -> ExecutionRecord {
        let d = &deployed.deployment;
        let limit = self.config.payload_limit;
        let (status, output, error) = match &execution.result {
            Ok(output) => {
                // What a `response` step answered: `{status, headers, body}`.
                let shown = match &execution.response {
                    Some(r) => execution.mask.response_json(r),
                    None => execution.mask.value_json(output),
                };
                ("ok", Some(cut(shown, limit)), None)
            }
            Err(e) => {
                let status = if e.code == "timeout" {
                    "timeout"
                } else {
                    "error"
                };
                (status, None, Some(execution.mask.value(&e.to_value())))
            }
        };
        let keep_trace = status != "ok"
            || (fastrand::f64() < self.config.trace_sample_for(&d.environment)
                && deployed.trace_budget.take(self.config.trace_budget));
        let trace = keep_trace.then(|| execution.masked_trace().to_json());
        ExecutionRecord {
            key: execution.key.clone(),
            realm: d.realm.clone(),
            environment: d.environment.clone(),
            pipeline: d.pipeline.clone(),
            major: d.major,
            minor: d.minor,
            status: status.to_owned(),
            trigger: trigger.to_owned(),
            started_at,
            duration_us: u64::try_from(execution.duration.as_micros()).unwrap_or(u64::MAX),
            input: Some(input),
            output,
            error,
            trace,
            logs: execution
                .logs
                .iter()
                .map(|l| LogRecord {
                    at: l.at,
                    level: l.level.to_owned(),
                    step: l.step.to_string(),
                    message: l.message.clone(),
                })
                .collect(),
        }
    }

    /// Queues an event for every deployment of the realm and environment
    /// subscribed to `name`.
    pub async fn publish(
        &self,
        realm: &str,
        environment: &str,
        name: &str,
        payload: &Value,
    ) -> Result<usize, sluice_store::Error> {
        let targets: Vec<EventTarget> = self
            .deployed_in(realm, environment)
            .iter()
            .filter_map(|d| match &d.plan.definition.trigger {
                Some(Trigger::Event(e)) if e.name == name => Some(EventTarget {
                    pipeline: d.deployment.pipeline.clone(),
                    major: d.deployment.major,
                    max_deliveries: d
                        .plan
                        .definition
                        .trigger
                        .as_ref()
                        .map_or(DEFAULT_MAX_DELIVERIES, Trigger::max_deliveries),
                }),
                _ => None,
            })
            .collect();
        if targets.is_empty() {
            return Ok(0);
        }
        let count = targets.len();
        self.writer
            .publish(NewEvent {
                realm: realm.to_owned(),
                environment: environment.to_owned(),
                name: name.to_owned(),
                payload: payload.clone(),
                targets,
            })
            .await?;
        Ok(count)
    }

    /// Refuses new executions from now on.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
        // Broker consumers stop taking messages.
        self.schedules_changed.notify_waiters();
    }

    /// Whether the process drains (no new executions).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Waits until no execution runs, at most `limit`; whether it got there.
    pub async fn drained(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.idle.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.in_flight.load(Ordering::Acquire) == 0;
            }
        }
    }

    /// Executions running now, over every deployment.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// Counts an execution out when it ends, however it ends.
struct InFlight<'a>(&'a Runtime);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.metrics.in_flight.dec();
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// JSON text cut past `limit` bytes, with a marker saying how much is gone.
pub fn cut(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}…[truncated {} of {} bytes]",
        &text[..end],
        text.len() - end,
        text.len()
    )
}

fn store_error(e: sluice_store::Error) -> FlowError {
    match e {
        sluice_store::Error::Conflict(m) => FlowError::new("conflict", 409, m),
        sluice_store::Error::Invalid(m) => FlowError::new("validation", 400, m),
        sluice_store::Error::NotFound(m) => {
            FlowError::new("not_found", 404, format!("{m} not found"))
        }
        other => FlowError::new("store", 500, other.to_string()),
    }
}

struct StoreSessions {
    store: Arc<dyn Store>,
    scope: Scope,
}

impl SessionStore for StoreSessions {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Value>, FlowError>> {
        Box::pin(async move {
            self.store
                .session_get(&self.scope, key, now_ms())
                .await
                .map_err(store_error)
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), FlowError>> {
        Box::pin(async move {
            self.store
                .session_put(&self.scope, key, &value, ttl, now_ms())
                .await
                .map_err(store_error)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, FlowError>> {
        Box::pin(async move {
            self.store
                .session_delete(&self.scope, key)
                .await
                .map_err(store_error)
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, FlowError>> {
        Box::pin(async move {
            self.store
                .session_lock(&self.scope, key, owner, ttl, now_ms())
                .await
                .map_err(store_error)
        })
    }

    fn unlock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<bool, FlowError>> {
        Box::pin(async move {
            self.store
                .session_unlock(&self.scope, key, owner)
                .await
                .map_err(store_error)
        })
    }
}

struct StoreObjects {
    store: Arc<dyn Store>,
    scope: Scope,
}

impl ObjectStore for StoreObjects {
    fn execute<'a>(
        &'a self,
        collection: &'a str,
        op: ObjectOp,
    ) -> BoxFuture<'a, Result<Value, FlowError>> {
        Box::pin(async move {
            self.store
                .object_execute(&self.scope, collection, op)
                .await
                .map_err(store_error)
        })
    }
}

struct RuntimeEvents {
    runtime: Weak<Runtime>,
    scope: Scope,
}

impl EventPublisher for RuntimeEvents {
    fn publish<'a>(
        &'a self,
        name: &'a str,
        payload: Value,
    ) -> BoxFuture<'a, Result<(), FlowError>> {
        Box::pin(async move {
            let Some(runtime) = self.runtime.upgrade() else {
                return Err(FlowError::new("unavailable", 503, "the server is stopping"));
            };
            runtime
                .publish(&self.scope.realm, &self.scope.environment, name, &payload)
                .await
                .map(|_| ())
                .map_err(store_error)
        })
    }
}

/// Most nested `call`s before the chain is cut.
const MAX_CALL_DEPTH: u32 = 16;

struct RuntimeCaller {
    runtime: Weak<Runtime>,
    scope: Scope,
}

impl PipelineCaller for RuntimeCaller {
    fn call(&self, request: CallRequest) -> BoxFuture<'static, Result<Value, FlowError>> {
        let runtime = self.runtime.clone();
        let scope = self.scope.clone();
        Box::pin(async move {
            let Some(runtime) = runtime.upgrade() else {
                return Err(FlowError::new("unavailable", 503, "the server is stopping"));
            };
            if request.depth > MAX_CALL_DEPTH {
                return Err(FlowError::new(
                    "call_depth",
                    508,
                    format!("calls nest deeper than {MAX_CALL_DEPTH}: is there a loop?"),
                ));
            }
            let deployed = match request.major {
                Some(major) => {
                    runtime.find(&scope.realm, &scope.environment, &request.pipeline, major)
                }
                None => runtime.find_latest(&scope.realm, &scope.environment, &request.pipeline),
            };
            let Some(deployed) = deployed else {
                let major = request.major.map_or_else(String::new, |m| format!(" v{m}"));
                return Err(FlowError::new(
                    "not_found",
                    404,
                    format!(
                        "pipeline '{}'{major} is not deployed in '{}'",
                        request.pipeline, scope.environment
                    ),
                ));
            };
            let mut run = RunRequest::new(request.input, "call");
            run.call_depth = request.depth;
            if request.detached {
                let key = uuid::Uuid::now_v7().to_string();
                run.execution_key = Some(key.clone());
                tokio::spawn(async move {
                    let _ = runtime.run(&deployed, run).await;
                });
                return Ok(json!({"executionKey": key}));
            }
            match runtime.run(&deployed, run).await {
                Ok(execution) => execution.into_answer(),
                Err(rejection) => Err(FlowError::new("unavailable", 503, rejection.message())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_keys_find_what_owned_keys_stored() {
        let mut deployments = IndexMap::new();
        let key = DeploymentKey {
            realm: "acme".into(),
            environment: "test".into(),
            pipeline: "orders".into(),
            major: 2,
        };
        deployments.insert(key, 1);
        let find = |realm, environment, pipeline, major| {
            deployments
                .get(&DeploymentRef {
                    realm,
                    environment,
                    pipeline,
                    major,
                })
                .copied()
        };
        assert_eq!(find("acme", "test", "orders", 2), Some(1));
        assert_eq!(find("acme", "test", "orders", 1), None);
        assert_eq!(find("acme", "prod", "orders", 2), None);
        // Field boundaries count: the same letters split otherwise are another key.
        assert_eq!(find("acm", "etest", "orders", 2), None);
        let mut envs = IndexMap::new();
        envs.insert(("acme".to_owned(), "test".to_owned()), 1);
        assert_eq!(envs.get(&EnvRef("acme", "test")), Some(&1));
        assert_eq!(envs.get(&EnvRef("acme", "prod")), None);
    }

    #[test]
    fn long_payloads_are_cut_with_a_marker() {
        let value = json!({"text": "é".repeat(100)});
        let text = cut(value.to_string(), 20);
        assert!(text.contains("…[truncated"), "{text}");
        assert!(text.ends_with(&format!("of {} bytes]", value.to_string().len())));
        assert_eq!(cut(json!({"a": 1}).to_string(), 20), r#"{"a":1}"#);
    }
}
