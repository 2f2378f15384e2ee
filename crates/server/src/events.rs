//! The event dispatcher: takes due deliveries from the store-backed
//! queue, runs the subscribed deployment, and acknowledges only when the
//! execution ended well. Failures come back with exponential backoff until
//! the trigger's `maxDeliveries`, then go to the dead letters.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sluice_store::QueuedEvent;
use tokio::sync::Semaphore;

use crate::runtime::{RunRequest, Runtime, now_ms};

/// Deliveries running at once, over every deployment.
const MAX_DELIVERIES_IN_FLIGHT: usize = 256;

/// How long a claimed delivery stays hidden: longer than the longest
/// execution (900s), so a running delivery is never handed out twice.
const LEASE: Duration = Duration::from_secs(930);

/// The wait before the n-th retry: 1s, 2s, 4s, … at most 5 minutes (the
/// same schedule as the broker triggers').
pub fn backoff(attempts: u32) -> Duration {
    sluice_triggers::retry_delay(Duration::from_secs(1), attempts)
}

/// Runs until the task is aborted.
pub async fn dispatch(runtime: Arc<Runtime>) {
    let slots = Arc::new(Semaphore::new(MAX_DELIVERIES_IN_FLIGHT));
    loop {
        let free = slots.available_permits().min(64);
        if free == 0 {
            // Wait for one delivery to end before claiming more.
            if let Ok(permit) = slots.clone().acquire_owned().await {
                drop(permit);
            }
            continue;
        }
        let due = match runtime
            .store
            .claim_events(u32::try_from(free).unwrap_or(64), now_ms(), LEASE)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "the event queue cannot be read");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if due.is_empty() {
            tokio::select! {
                () = runtime.events_ready.notified() => {}
                () = tokio::time::sleep(runtime.config.event_poll) => {}
            }
            continue;
        }
        for event in due {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let runtime = runtime.clone();
            tokio::spawn(async move {
                deliver(&runtime, event).await;
                drop(permit);
            });
        }
    }
}

async fn deliver(runtime: &Runtime, event: QueuedEvent) {
    let store = &runtime.store;
    let Some(deployed) = runtime.find(
        &event.realm,
        &event.environment,
        &event.pipeline,
        event.major,
    ) else {
        let error = json!({
            "code": "not_deployed",
            "message": format!("'{}' v{} is not deployed in '{}'", event.pipeline, event.major, event.environment),
        });
        if let Err(e) = store.fail_event(event.id, &error, None).await {
            tracing::error!(error = %e, "a delivery could not be dead-lettered");
        }
        runtime.metrics.events_dead.inc();
        return;
    };
    let mut request = RunRequest::new(event.payload.clone(), "event");
    request.attempt = event.attempts;
    request.redelivery = event.attempts > 1;
    request.wait = true;
    let error = match runtime.run(&deployed, request).await {
        Ok(execution) => match execution.result {
            Ok(_) => None,
            Err(e) => Some(execution.mask.value(&e.to_value())),
        },
        Err(rejection) => Some(json!({"code": "unavailable", "message": rejection.message()})),
    };
    let outcome = match error {
        None => {
            runtime.metrics.events_delivered.inc();
            store.ack_event(event.id).await
        }
        Some(error) if event.attempts >= event.max_deliveries => {
            runtime.metrics.events_dead.inc();
            tracing::warn!(event = %event.name, pipeline = %event.pipeline, attempts = event.attempts, "an event was dead-lettered");
            store.fail_event(event.id, &error, None).await
        }
        Some(error) => {
            runtime.metrics.events_retried.inc();
            let wait = i64::try_from(backoff(event.attempts).as_millis()).unwrap_or(i64::MAX);
            store
                .fail_event(event.id, &error, Some(now_ms().saturating_add(wait)))
                .await
        }
    };
    if let Err(e) = outcome {
        // The lease runs out and the delivery comes back: at least once.
        tracing::error!(error = %e, id = event.id, "a delivery outcome could not be stored");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(300));
    }
}
