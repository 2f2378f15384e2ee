//! A compiled pipeline and how one execution of it runs.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_spec::{PipelineDef, Trigger};

use crate::context::{MetadataSource, Shared};
use crate::mask::Mask;
use crate::run::{handle, run_steps};
use crate::testing::Mocks;
use crate::trace::{Edit, materialize};
use crate::{Context, FlowError, LogLine, Message, Response, Services, StepList, TraceEntry};

/// Most trace entries one execution keeps (a long loop is cut, not unbounded).
const MAX_TRACE_ENTRIES: usize = 10_000;

/// The default execution timeout (DESIGN: http triggers default to 30s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A pipeline compiled once: expressions parsed, steps built.
pub struct Plan {
    /// The definition it was compiled from.
    pub definition: PipelineDef,
    /// Where it came from (file name).
    pub source: String,
    pub(crate) steps: StepList,
    pub(crate) on_exception: StepList,
    pub(crate) sensitive: Vec<Vec<String>>,
    /// The mask built for the accounts last seen, reused while executions
    /// get the same accounts (`Arc`) — the secrets are gathered and sorted
    /// once per version of the accounts, not once per execution. The
    /// `Weak` keeps their allocation, so a new version cannot take its
    /// address and be mistaken for it.
    pub(crate) masks: Mutex<Option<(Weak<Value>, Arc<Mask>)>>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("name", &self.definition.name)
            .field("steps", &self.steps)
            .finish()
    }
}

/// How one execution runs: what it can reach and what it records.
#[derive(Clone)]
pub struct RunOptions {
    pub services: Services,
    pub globals: Arc<Value>,
    pub accounts: Arc<Value>,
    pub realm: String,
    pub environment: String,
    pub major: u32,
    pub minor: u32,
    /// The execution key (a UUIDv7 is made when `None`).
    pub execution_key: Option<String>,
    pub attempt: u32,
    pub redelivery: bool,
    /// Record step inputs and outputs in the trace.
    pub trace_payloads: bool,
    /// Step outputs to use instead of running steps (tests).
    pub mocks: Option<Mocks>,
    /// Overall time limit (default: the trigger's, else 30s).
    pub timeout: Option<Duration>,
    pub call_depth: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            services: Services::default(),
            globals: Arc::new(json!({})),
            accounts: Arc::new(json!({})),
            realm: "local".into(),
            environment: "local".into(),
            major: 1,
            minor: 0,
            execution_key: None,
            attempt: 1,
            redelivery: false,
            trace_payloads: false,
            mocks: None,
            timeout: None,
            call_depth: 0,
        }
    }
}

/// What one execution produced.
#[derive(Debug, Clone)]
pub struct Execution {
    pub key: String,
    /// The output message, or the error that ended the execution. The
    /// message may be shared with the trace; [`Execution::into_result`]
    /// gives it owned.
    pub result: Result<Message, FlowError>,
    /// The answer set by a `response` step.
    pub response: Option<Response>,
    pub logs: Vec<LogLine>,
    pub duration: Duration,
    /// What this execution hides: use it on anything stored or shown.
    pub mask: Arc<Mask>,
    /// The trace as the steps left it: some inputs and outputs are only in
    /// the journal ([`Execution::trace`] puts them back).
    pub(crate) steps: Vec<TraceEntry>,
    pub(crate) journal: Vec<Edit>,
}

impl Execution {
    /// The output as an owned value, or the error. The trace is dropped
    /// first, so the output is copied only when something else shares it.
    pub fn into_result(self) -> Result<Value, FlowError> {
        drop(self.steps);
        drop(self.journal);
        self.result.map(Arc::unwrap_or_clone)
    }

    /// What a calling pipeline gets back: the body a `response` step
    /// answered with, else the output; or the error.
    pub fn into_answer(self) -> Result<Value, FlowError> {
        match self.response {
            Some(response) if self.result.is_ok() => {
                // The body may be the message itself, which the trace and
                // the result share: dropped first, so it is not copied.
                drop(self.steps);
                drop(self.journal);
                drop(self.result);
                Ok(Arc::unwrap_or_clone(response.body))
            }
            _ => self.into_result(),
        }
    }

    /// The per-step trace, every input and output in place (rebuilt from
    /// the journal of changes made in place, when there are any: ask only
    /// for a trace that is shown or stored).
    pub fn trace(&self) -> Cow<'_, [TraceEntry]> {
        if self.journal.is_empty() {
            Cow::Borrowed(&self.steps)
        } else {
            Cow::Owned(materialize(&self.steps, &self.journal))
        }
    }

    /// Each step run: its type and how long it took (without rebuilding
    /// the trace's payloads).
    pub fn step_timings(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.steps.iter().map(|e| (e.kind, e.duration_us))
    }

    /// The trace with this execution's mask applied, ready to serialize.
    pub fn masked_trace(&self) -> crate::MaskedTrace<'_> {
        crate::MaskedTrace {
            entries: self.trace(),
            mask: &self.mask,
        }
    }
}

impl Plan {
    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// The execution time limit the trigger asks for.
    pub fn trigger_timeout(&self) -> Duration {
        self.definition
            .trigger
            .as_ref()
            .and_then(Trigger::timeout)
            .unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The mask of executions with these accounts (kept while they stay
    /// the same).
    pub fn mask_for(&self, accounts: &Arc<Value>) -> Arc<Mask> {
        let mut cached = self.masks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, mask)) = cached.as_ref()
            && std::ptr::eq(seen.as_ptr(), Arc::as_ptr(accounts))
        {
            return mask.clone();
        }
        let secrets = Mask::account_secrets(accounts);
        let mask = Arc::new(Mask::new(self.sensitive.clone(), secrets));
        *cached = Some((Arc::downgrade(accounts), mask.clone()));
        mask
    }

    /// Runs one execution over `input`.
    /// The input may be shared (`Arc<Value>`) with a caller that keeps it.
    pub async fn execute(&self, input: impl Into<Arc<Value>>, options: RunOptions) -> Execution {
        let started = Instant::now();
        let key = options
            .execution_key
            .clone()
            .unwrap_or_else(new_execution_key);
        let metadata_source = MetadataSource {
            pipeline: self.definition.name.clone(),
            major: options.major,
            minor: options.minor,
            realm: options.realm,
            environment: options.environment,
            key: key.clone(),
            started_at: chrono::Utc::now(),
            attempt: options.attempt,
            redelivery: options.redelivery,
        };
        let mask = self.mask_for(&options.accounts);
        let limit = options.timeout.unwrap_or_else(|| self.trigger_timeout());
        let shared = Arc::new(Shared {
            globals: options.globals,
            accounts: options.accounts,
            metadata_source,
            metadata: std::sync::OnceLock::new(),
            services: options.services,
            mocks: options.mocks,
            mask: mask.clone(),
            trace_payloads: options.trace_payloads,
            max_trace_entries: MAX_TRACE_ENTRIES,
            call_depth: options.call_depth,
            started,
        });
        let mut cx = Context::new(shared);
        let input: Arc<Value> = input.into();
        // The handlers see the input; keep it only when there are handlers,
        // so the first writing step need not copy a shared message.
        let kept = (!self.on_exception.is_empty()).then(|| input.clone());
        let run = async {
            match (run_steps(&self.steps, input, &mut cx).await, kept) {
                (Err(error), Some(input)) => {
                    handle(&self.on_exception, error, input, &mut cx).await
                }
                (result, _) => result,
            }
        };
        let result = match tokio::time::timeout(limit, run).await {
            Ok(result) => result,
            Err(_) => Err(FlowError::timeout(limit)),
        };
        Execution {
            key,
            result,
            response: cx.response,
            logs: cx.logs,
            duration: started.elapsed(),
            mask,
            steps: cx.trace,
            journal: cx.journal,
        }
    }
}

/// A UUIDv7 execution key: time-ordered, with random bits from a fast
/// non-cryptographic generator (a key is an identifier, not a secret, and
/// asking the kernel for randomness on every execution costs a system call).
pub fn new_execution_key() -> String {
    let millis = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    let mut random = [0u8; 10];
    fastrand::fill(&mut random);
    let key = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    // Written straight into its string, without the formatting machinery.
    let mut text = uuid::Uuid::encode_buffer();
    (*key.hyphenated().encode_lower(&mut text)).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_mask_is_kept_while_the_accounts_stay_and_rebuilt_when_they_change() {
        let plan = crate::load_str(
            "p.yaml",
            "name: p\nsteps:\n  - type: set\n    values: { seen: true }\n",
            sluice_spec::Format::Yaml,
            None,
            &crate::Catalog::core(),
        )
        .expect("compiles");
        let with = |accounts: &Arc<Value>| RunOptions {
            accounts: accounts.clone(),
            ..RunOptions::default()
        };
        let first = Arc::new(json!({"crm": {"type": "basic", "password": "first-secret"}}));
        let a = plan.execute(json!({}), with(&first)).await;
        let b = plan.execute(json!({}), with(&first)).await;
        assert!(Arc::ptr_eq(&a.mask, &b.mask), "same accounts, same mask");
        assert_eq!(b.mask.text("first-secret", &Value::Null), "***");
        drop(first);
        let second = Arc::new(json!({"crm": {"type": "basic", "password": "other-secret"}}));
        let c = plan.execute(json!({}), with(&second)).await;
        assert!(!Arc::ptr_eq(&b.mask, &c.mask), "new accounts, new mask");
        assert_eq!(c.mask.text("other-secret", &Value::Null), "***");
        assert_eq!(c.mask.text("first-secret", &Value::Null), "first-secret");
    }

    #[test]
    fn execution_keys_are_hyphenated_uuid_v7_in_time_order() {
        let first = new_execution_key();
        std::thread::sleep(Duration::from_millis(2));
        let second = new_execution_key();
        for key in [&first, &second] {
            let parsed = uuid::Uuid::parse_str(key).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 7, "{key}");
            assert_eq!(
                *key,
                parsed.hyphenated().to_string(),
                "lower-case, hyphenated"
            );
        }
        assert!(first < second, "{first} then {second}");
    }
}
