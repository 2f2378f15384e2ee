//! The consume loop every source shares.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use crate::{Delivery, Settle, Source, Subscription};

/// What the pipeline made of one message.
#[derive(Debug)]
pub enum Outcome {
    /// The execution ended well: acknowledge.
    Done,
    /// The execution failed with this error (masked): retry or dead-letter.
    Failed(Value),
    /// The message was not run (the deployment stops or the process
    /// drains): give it back without counting a delivery.
    Refused,
}

/// Runs messages and keeps the ones that used up their deliveries.
#[async_trait]
pub trait Handler: Send + Sync {
    /// Runs the pipeline on one message.
    async fn run(&self, message: Value, attempt: u32, redelivered: bool) -> Outcome;

    /// Stores a message that used up its deliveries in Sluice's
    /// dead-letter list (for brokers without a dead-letter target).
    async fn dead_letter(
        &self,
        message: &Value,
        error: &Value,
        attempts: u32,
    ) -> Result<(), String>;
}

/// One deployment's consumer.
pub struct Consumer {
    /// Names the consumer in logs: the deployment and the source.
    pub name: String,
    pub source: Arc<dyn Source>,
    /// Messages run at once (the deployment's `replicas × concurrency`).
    pub concurrency: usize,
    /// Deliveries before a message is dead-lettered.
    pub max_deliveries: u32,
    /// The wait before the first retry; it doubles for each next one.
    pub retry_base: Duration,
    pub handler: Arc<dyn Handler>,
}

/// The wait before retry number `attempt` (1-based): `base · 2^(attempt-1)`,
/// at most 5 minutes.
pub fn retry_delay(base: Duration, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    base.saturating_mul(1 << exp).min(Duration::from_secs(300))
}

/// The wait before reconnection number `failures`: 100 ms doubling up to 10 s.
pub fn reconnect_delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(10);
    Duration::from_millis(100u64 << exp).min(Duration::from_secs(10))
}

/// Consumes until `stop` turns true, then waits for the messages in hand
/// to be settled. Connection losses are logged and retried forever.
pub async fn consume(consumer: Consumer, mut stop: watch::Receiver<bool>) {
    let consumer = Arc::new(consumer);
    let concurrency = consumer.concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut failures: u32 = 0;
    // Kept until the messages in hand are settled: some brokers settle
    // through the subscription's connection.
    let mut subscription: Option<Box<dyn Subscription>> = None;
    'connect: loop {
        if *stop.borrow() {
            break;
        }
        if subscription.is_none() {
            let subscribed = tokio::select! {
                s = consumer.source.subscribe(concurrency) => s,
                _ = stop.changed() => break,
            };
            match subscribed {
                Ok(s) => {
                    tracing::info!(consumer = %consumer.name, source = %consumer.source.describe(), "consuming");
                    subscription = Some(s);
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = reconnect_delay(failures);
                    tracing::warn!(consumer = %consumer.name, source = %consumer.source.describe(), error = %e, retry_in_ms = wait.as_millis() as u64, "cannot subscribe");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                    continue 'connect;
                }
            }
        }
        let Some(current) = subscription.as_mut() else {
            continue;
        };
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p,
                _ = stop.changed() => break 'connect,
            };
            let Ok(permit) = permit else {
                break 'connect;
            };
            let next = tokio::select! {
                d = current.next() => d,
                _ = stop.changed() => break 'connect,
            };
            match next {
                Ok(delivery) => {
                    failures = 0;
                    let consumer = consumer.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        handle(&consumer, delivery, stop).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    drop(permit);
                    failures = failures.saturating_add(1);
                    let wait = reconnect_delay(failures);
                    tracing::warn!(consumer = %consumer.name, source = %consumer.source.describe(), error = %e, retry_in_ms = wait.as_millis() as u64, "connection lost");
                    subscription = None;
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                    continue 'connect;
                }
            }
        }
    }
    // Let the messages in hand finish and settle before the connection goes.
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    drop(subscription);
    tracing::info!(consumer = %consumer.name, "stopped consuming");
}

/// Runs one delivery to its end: acked, handed back, or dead-lettered.
async fn handle(consumer: &Consumer, delivery: Delivery, mut stop: watch::Receiver<bool>) {
    let Delivery {
        message,
        attempt,
        redelivered,
        mut settle,
    } = delivery;
    let mut attempt = attempt.max(1);
    loop {
        let outcome = {
            let run = consumer
                .handler
                .run(message.clone(), attempt, redelivered || attempt > 1);
            held(run, settle.as_mut()).await
        };
        let error = match outcome {
            Outcome::Done => {
                if let Err(e) = settle.ack().await {
                    tracing::warn!(consumer = %consumer.name, error = %e, "an acknowledgement failed; the broker will deliver the message again");
                }
                return;
            }
            Outcome::Refused => {
                let _ = settle.release().await;
                return;
            }
            Outcome::Failed(error) => error,
        };
        if attempt >= consumer.max_deliveries {
            dead_letter(consumer, settle, &message, &error, attempt).await;
            return;
        }
        let wait = retry_delay(consumer.retry_base, attempt);
        if settle.redelivers() {
            if let Err(e) = settle.retry(wait).await {
                tracing::warn!(consumer = %consumer.name, error = %e, "a retry could not be scheduled; the broker will deliver the message again");
            }
            return;
        }
        // Keep the message unacknowledged while waiting: a worker that
        // dies now still has it redelivered.
        let waited = held(
            async {
                tokio::select! {
                    () = tokio::time::sleep(wait) => true,
                    _ = stop.wait_for(|stopped| *stopped) => false,
                }
            },
            settle.as_mut(),
        )
        .await;
        if !waited {
            let _ = settle.release().await;
            return;
        }
        attempt += 1;
    }
}

async fn dead_letter(
    consumer: &Consumer,
    settle: Box<dyn Settle>,
    message: &Value,
    error: &Value,
    attempts: u32,
) {
    tracing::warn!(consumer = %consumer.name, attempts, "a message used up its deliveries and is dead-lettered");
    if settle.dead_letters() {
        if let Err(e) = settle.reject().await {
            tracing::warn!(consumer = %consumer.name, error = %e, "a message could not be rejected; the broker will deliver it again");
        }
        return;
    }
    match consumer.handler.dead_letter(message, error, attempts).await {
        Ok(()) => {
            if let Err(e) = settle.ack().await {
                tracing::warn!(consumer = %consumer.name, error = %e, "a dead-lettered message could not be acknowledged; it may come again");
            }
        }
        Err(e) => {
            // Never acknowledged without a copy kept somewhere.
            tracing::error!(consumer = %consumer.name, error = %e, "a message could not be dead-lettered; it is handed back");
            let _ = settle.release().await;
        }
    }
}

/// Awaits `work` while telling the broker, as often as it asks, that the
/// message is still held.
async fn held<F: std::future::Future>(work: F, settle: &mut dyn Settle) -> F::Output {
    let Some(every) = settle.keepalive() else {
        return work.await;
    };
    tokio::pin!(work);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => settle.touch().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stop_growing() {
        let base = Duration::from_secs(1);
        assert_eq!(retry_delay(base, 1), Duration::from_secs(1));
        assert_eq!(retry_delay(base, 4), Duration::from_secs(8));
        assert_eq!(retry_delay(base, 99), Duration::from_secs(300));
        assert_eq!(reconnect_delay(1), Duration::from_millis(100));
        assert_eq!(reconnect_delay(50), Duration::from_secs(10));
    }
}
