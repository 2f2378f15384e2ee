//! The event queue's dispatcher. Publishing is a group commit done by
//! the store writer (`writer.rs`): every event published while the
//! previous batch was being written goes into the store in one
//! transaction, and each publisher gets its answer only once its event is
//! stored. The deliveries of a batch are stored already claimed by this
//! process and handed straight to the dispatcher (no second write to claim
//! them); retries, deliveries left from before a restart, redrives and
//! events published while too many waited in memory are claimed from the
//! store in large batches and join the same in-memory queue. A delivery
//! is acknowledged only after its execution ended well, and
//! acknowledgements are written with the writer's next batch: one lost in
//! a crash makes the delivery come again after the restart (at least
//! once). Failures come back with exponential backoff until the trigger's
//! `maxDeliveries`, then go to the dead letters.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_store::QueuedEvent;
use tokio::sync::{Notify, Semaphore, mpsc};

use crate::runtime::{Rejection, RunRequest, Runtime, ms, now_ms};

/// A claimed delivery and when its lease began.
type Claimed = (QueuedEvent, Instant);

/// Deliveries running at once, over every deployment.
const MAX_DELIVERIES_IN_FLIGHT: usize = 256;

/// How long a claimed delivery stays hidden: longer than the longest
/// execution (900s), so a running delivery is never handed out twice.
pub const LEASE: Duration = Duration::from_secs(930);

/// A delivery that starts later than this after its claim (it waited in
/// memory, or for a slot of its deployment) renews its lease first: the
/// lease outlasts the longest execution (900 s) only from its claim.
const RENEW_AFTER: Duration = Duration::from_secs(30);

/// Claimed deliveries waiting in memory, at most (a poll may go
/// `CLAIM_MIN` beyond it); beyond that, new events wait in the store
/// unclaimed (memory stays bounded).
const LOCAL_LIMIT: usize = 4096;

/// Deliveries claimed from the store at once, at least and at most: the
/// claimed wait in memory with those claimed at publish, so a backlog is
/// taken in a few large transactions rather than one per free slot.
const CLAIM_MIN: usize = 64;
const CLAIM_MAX: usize = 1024;

/// The wait before the n-th retry: 1s, 2s, 4s, … at most 5 minutes (the
/// same schedule as the broker triggers').
pub fn backoff(attempts: u32) -> Duration {
    sluice_triggers::retry_delay(Duration::from_secs(1), attempts)
}

/// The in-process side of the event queue: deliveries claimed at publish
/// on their way from the writer to the dispatcher.
pub struct EventQueue {
    local_tx: mpsc::UnboundedSender<Claimed>,
    local_rx: Mutex<Option<mpsc::UnboundedReceiver<Claimed>>>,
    /// Claimed deliveries in `local_rx`, not yet started.
    local_pending: AtomicUsize,
    /// Wakes the dispatcher when deliveries wait in the store.
    pub ready: Notify,
}

impl Default for EventQueue {
    fn default() -> Self {
        let (local_tx, local_rx) = mpsc::unbounded_channel();
        EventQueue {
            local_tx,
            local_rx: Mutex::new(Some(local_rx)),
            local_pending: AtomicUsize::new(0),
            ready: Notify::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EventQueue {
    /// Whether `count` more deliveries may be claimed at publish and wait
    /// in memory.
    pub fn may_claim(&self, count: usize) -> bool {
        self.local_pending.load(Ordering::Acquire) + count <= LOCAL_LIMIT
    }

    /// Hands claimed deliveries to the dispatcher; `claimed` is when
    /// their leases began (at the latest).
    pub fn hand_over(&self, deliveries: Vec<QueuedEvent>, claimed: Instant) {
        self.local_pending
            .fetch_add(deliveries.len(), Ordering::AcqRel);
        for delivery in deliveries {
            // The receiver lives as long as the dispatcher; without it the
            // deliveries stay claimed in the store and come back after
            // their lease or the next start.
            let _ = self.local_tx.send((delivery, claimed));
        }
    }
}

/// Runs the dispatcher until the task is aborted.
pub async fn dispatch(runtime: Arc<Runtime>) {
    let Some(local_rx) = lock(&runtime.events.local_rx).take() else {
        tracing::error!("the event dispatcher was started twice");
        return;
    };
    deliver_loop(&runtime, local_rx).await;
}

async fn deliver_loop(runtime: &Arc<Runtime>, mut local: mpsc::UnboundedReceiver<Claimed>) {
    let queue = &runtime.events;
    let slots = Arc::new(Semaphore::new(MAX_DELIVERIES_IN_FLIGHT));
    // The store is looked at every poll interval (and when woken), so
    // retries and redrives are never starved by a stream of new events.
    let mut last_poll = tokio::time::Instant::now();
    // Whether the last look at the store left deliveries there: then it is
    // looked at again as soon as the deliveries in memory run low.
    let mut store_has_some = false;
    loop {
        let pending = queue.local_pending.load(Ordering::Acquire);
        let next_poll = last_poll + runtime.config.event_poll;
        // At a poll some are claimed even when memory is full, so retries
        // get their turn behind a stream of new events; never more than
        // `CLAIM_MIN` beyond the limit, so deliveries stuck behind slow
        // executions do not pile up in memory poll after poll.
        let limit = LOCAL_LIMIT
            .saturating_sub(pending)
            .clamp(CLAIM_MIN, CLAIM_MAX)
            .min((LOCAL_LIMIT + CLAIM_MIN).saturating_sub(pending));
        let poll = tokio::time::Instant::now() >= next_poll;
        if poll && limit == 0 {
            last_poll = tokio::time::Instant::now();
        } else if poll || (store_has_some && pending < LOCAL_LIMIT / 2) {
            last_poll = tokio::time::Instant::now();
            let claimed = Instant::now();
            match runtime
                .store
                .claim_events(u32::try_from(limit).unwrap_or(u32::MAX), now_ms(), LEASE)
                .await
            {
                Ok(due) => {
                    // Fewer than asked: none are left due.
                    store_has_some = due.len() == limit;
                    queue.hand_over(due, claimed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "the event queue cannot be read");
                    store_has_some = false;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            continue;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        tokio::select! {
            // Deliveries in memory first.
            biased;
            got = local.recv() => {
                // The sender lives in the runtime: never closed.
                let Some((event, claimed)) = got else { return };
                queue.local_pending.fetch_sub(1, Ordering::AcqRel);
                let runtime = runtime.clone();
                tokio::spawn(async move {
                    deliver(&runtime, event, claimed).await;
                    drop(permit);
                });
            }
            () = queue.ready.notified() => store_has_some = true,
            () = tokio::time::sleep_until(last_poll + runtime.config.event_poll) => {}
        }
    }
}

async fn deliver(runtime: &Runtime, event: QueuedEvent, claimed: Instant) {
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
    let (leases, id, attempts) = (store.clone(), event.id, event.attempts);
    request.before_start = Some(Box::pin(async move {
        if claimed.elapsed() < RENEW_AFTER {
            return true;
        }
        let until = now_ms().saturating_add(ms(LEASE));
        match leases.renew_event_lease(id, attempts, until).await {
            Ok(held) => held,
            Err(e) => {
                // At least once: run it, even if it may run twice.
                tracing::warn!(error = %e, id, "a delivery's lease could not be renewed");
                true
            }
        }
    }));
    let error = match runtime.run(&deployed, request).await {
        Ok(execution) => match execution.result {
            Ok(_) => None,
            Err(e) => Some(execution.mask.value(&e.to_value())),
        },
        // The process stops: the delivery stays claimed, and the next start
        // hands it out again without counting this as a failed attempt.
        Err(Rejection::Draining) => return,
        // Claimed again after its lease ran out: that claim runs it.
        Err(Rejection::Superseded) => return,
        Err(rejection) => Some(json!({"code": "unavailable", "message": rejection.message()})),
    };
    let outcome = match error {
        None => {
            runtime.metrics.events_delivered.inc();
            runtime.writer.ack(event.id);
            Ok(())
        }
        Some(error) if event.attempts >= event.max_deliveries => {
            runtime.metrics.events_dead.inc();
            tracing::warn!(event = %event.name, pipeline = %event.pipeline, attempts = event.attempts, "an event was dead-lettered");
            store.fail_event(event.id, &error, None).await
        }
        Some(error) => {
            runtime.metrics.events_retried.inc();
            let retry_at = now_ms().saturating_add(ms(backoff(event.attempts)));
            store.fail_event(event.id, &error, Some(retry_at)).await
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
