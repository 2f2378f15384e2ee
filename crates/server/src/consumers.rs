//! Broker and mailbox consumers: one per deployment whose trigger is
//! `rabbitmq`, `nats`, `mqtt`, `kafka` or `email`. Each consumes with the
//! deployment's `replicas × concurrency`, runs the pipeline for every
//! message, and settles it through `sluice-triggers` (ack after the
//! execution ended well, retries with backoff, dead letters after
//! `maxDeliveries`). Messages without a broker-side dead-letter target go
//! to the realm's dead-letter list, from where a redrive runs them again.
//! A consumer stops when its deployment is replaced or removed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use sluice_spec::Trigger;
use sluice_store::EventTarget;
use sluice_triggers::{Consumer, Handler, Names, Outcome, consume};
use tokio::sync::watch;

use crate::runtime::{Deployed, RunRequest, Runtime, now_ms};

/// The wait before the first retry of a failed message; it doubles.
const RETRY_BASE: Duration = Duration::from_secs(1);

/// How often a trigger whose settings cannot work yet (an account not set,
/// say) is tried again.
const SETTINGS_RETRY: Duration = Duration::from_secs(10);

/// Keeps one consumer per consuming deployment until aborted.
pub async fn run(runtime: Arc<Runtime>) {
    let mut running: HashMap<usize, watch::Sender<bool>> = HashMap::new();
    loop {
        let changed = runtime.schedules_changed.notified();
        // A draining process consumes nothing more: what a consumer holds
        // finishes, what it did not take stays with the broker.
        let deployed = if runtime.is_draining() {
            Vec::new()
        } else {
            runtime.all()
        };
        let current: Vec<Arc<Deployed>> = deployed
            .into_iter()
            .filter(|d| {
                d.plan
                    .definition
                    .trigger
                    .as_ref()
                    .is_some_and(sluice_triggers::is_consumer)
            })
            .collect();
        let ids: HashMap<usize, &Arc<Deployed>> = current
            .iter()
            .map(|d| (Arc::as_ptr(d) as usize, d))
            .collect();
        running.retain(|id, stop| {
            let keep = ids.contains_key(id);
            if !keep {
                stop.send_replace(true);
            }
            keep
        });
        for (id, deployed) in ids {
            if running.contains_key(&id) {
                continue;
            }
            let (stop, stopped) = watch::channel(false);
            running.insert(id, stop);
            tokio::spawn(serve(runtime.clone(), deployed.clone(), stopped));
        }
        changed.await;
    }
}

/// Builds the deployment's source (again and again while its settings
/// cannot work) and consumes until stopped; a changed account makes it
/// connect again with the new settings.
async fn serve(runtime: Arc<Runtime>, deployed: Arc<Deployed>, mut stop: watch::Receiver<bool>) {
    let Some(trigger) = deployed.plan.definition.trigger.clone() else {
        return;
    };
    let d = &deployed.deployment;
    let label = format!("{}/{}/{} v{}", d.realm, d.environment, d.pipeline, d.major);
    let names = Names::new(&d.realm, &d.environment, &d.pipeline, d.major);
    let handler: Arc<dyn Handler> = Arc::new(Runner {
        dead_letter_name: dead_letter_name(&trigger),
        runtime: runtime.clone(),
        deployed: deployed.clone(),
        trigger: trigger.clone(),
    });
    loop {
        let (account, source) = loop {
            let account = account_of(&runtime, &deployed, &trigger).await;
            let built = account.as_ref().map_err(Clone::clone).and_then(|fields| {
                sluice_triggers::source(&trigger, fields.as_ref(), &names)
                    .map_err(|e| e.to_string())
            });
            match built {
                Ok(source) => break (account, source),
                Err(e) => {
                    tracing::error!(deployment = %label, trigger = trigger.kind(), error = %e, "the trigger cannot consume yet");
                    tokio::select! {
                        () = tokio::time::sleep(SETTINGS_RETRY) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        };
        let consumer = Consumer {
            name: label.clone(),
            source,
            concurrency: deployed.capacity(),
            max_deliveries: trigger.max_deliveries(),
            retry_base: RETRY_BASE,
            handler: handler.clone(),
        };
        let (restart, restarted) = watch::channel(false);
        let mut outer = stop.clone();
        let consuming = tokio::spawn(consume(consumer, restarted));
        let stopped = loop {
            let changed = runtime.settings_changed.notified();
            let stopping = async {
                let _ = outer.wait_for(|stopped| *stopped).await;
            };
            let settings_changed = tokio::select! {
                () = stopping => false,
                () = changed => true,
            };
            if !settings_changed {
                break true;
            }
            if account_of(&runtime, &deployed, &trigger).await != account {
                tracing::info!(deployment = %label, "the trigger's account changed: connecting again");
                break false;
            }
        };
        restart.send_replace(true);
        let _ = consuming.await;
        let stop_now = stopped || *stop.borrow();
        if stop_now {
            return;
        }
    }
}

/// The fields of the account the trigger names (none when it names none).
async fn account_of(
    runtime: &Runtime,
    deployed: &Deployed,
    trigger: &Trigger,
) -> Result<Option<Map<String, Value>>, String> {
    let Some(name) = sluice_triggers::account_name(trigger) else {
        return Ok(None);
    };
    let d = &deployed.deployment;
    let env = runtime.env_data(&d.realm, &d.environment).await;
    match env.accounts.get(name).and_then(Value::as_object) {
        Some(fields) => Ok(Some(fields.clone())),
        None => Err(format!(
            "trigger.account: no account '{name}' in '{}'",
            d.environment
        )),
    }
}

/// How a broker's dead letters are named in the list: the trigger type
/// and where the messages came from.
fn dead_letter_name(trigger: &Trigger) -> String {
    let from = match trigger {
        Trigger::Rabbitmq(t) => t.queue.clone(),
        Trigger::Nats(t) => t.stream.clone().unwrap_or_else(|| t.subject.clone()),
        Trigger::Mqtt(t) => t.topic.clone(),
        Trigger::Kafka(t) => t.topics.join(","),
        Trigger::Email(t) => t.mailbox.clone().unwrap_or_else(|| "INBOX".into()),
        _ => String::new(),
    };
    format!("{}:{from}", trigger.kind())
}

/// Runs a deployment's pipeline for the consumer.
struct Runner {
    runtime: Arc<Runtime>,
    deployed: Arc<Deployed>,
    trigger: Trigger,
    dead_letter_name: String,
}

#[async_trait]
impl Handler for Runner {
    async fn run(&self, message: Value, attempt: u32, redelivered: bool) -> Outcome {
        let mut request = RunRequest::new(message, self.trigger.kind());
        request.attempt = attempt;
        request.redelivery = redelivered;
        request.wait = true;
        match self.runtime.run(&self.deployed, request).await {
            Ok(execution) => match execution.result {
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::Failed(execution.mask.value(&e.to_value())),
            },
            Err(_) => Outcome::Refused,
        }
    }

    async fn dead_letter(
        &self,
        message: &Value,
        error: &Value,
        attempts: u32,
    ) -> Result<(), String> {
        let d = &self.deployed.deployment;
        let target = EventTarget {
            pipeline: d.pipeline.clone(),
            major: d.major,
            max_deliveries: self.trigger.max_deliveries(),
        };
        let error = if error.is_object() {
            error.clone()
        } else {
            json!({"message": error})
        };
        self.runtime
            .store
            .dead_letter_event(
                &d.realm,
                &d.environment,
                &self.dead_letter_name,
                message,
                &target,
                attempts,
                &error,
                now_ms(),
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string())?;
        self.runtime.metrics.events_dead.inc();
        Ok(())
    }
}
