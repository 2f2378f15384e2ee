//! The execution record writer: executions hand their records over a
//! channel and go on; one task writes them in batches. The records waiting
//! are bounded in bytes: when that budget is spent, the next execution
//! waits for room (backpressure) instead of its record being dropped —
//! every execution keeps its record, and memory stays bounded.

use std::sync::Arc;

use sluice_store::{ExecutionRecord, Store};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::metrics::Metrics;

/// Most records written in one transaction.
const BATCH: usize = 512;

/// The shortest time between two batches while records keep coming: under
/// load, fewer and bigger transactions rewrite each index page once per
/// batch instead of once per handful of records. An idle writer writes the
/// first record at once.
const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// The budget is counted in KiB.
const UNIT: usize = 1024;

/// A record with the room it holds in the budget.
type Queued = (ExecutionRecord, OwnedSemaphorePermit);

/// Hands records to the writer task.
#[derive(Clone)]
pub struct ExecutionWriter {
    sender: mpsc::UnboundedSender<Queued>,
    room: Arc<Semaphore>,
    units: u32,
    metrics: Arc<Metrics>,
    flushed: Arc<Notify>,
    stop: Arc<Notify>,
}

impl ExecutionWriter {
    /// Starts the writer task.
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        memory: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let units = u32::try_from((memory / UNIT).max(64)).unwrap_or(u32::MAX >> 4);
        let room = Arc::new(Semaphore::new(units as usize));
        let stop = Arc::new(Notify::new());
        let flushed = Arc::new(Notify::new());
        let task = tokio::spawn(write_loop(
            store,
            metrics.clone(),
            receiver,
            stop.clone(),
            flushed.clone(),
        ));
        (
            ExecutionWriter {
                sender,
                room,
                units,
                metrics,
                flushed,
                stop,
            },
            task,
        )
    }

    /// Queues a record; waits for room when the writer is that far behind.
    pub async fn submit(&self, record: ExecutionRecord) {
        let units = u32::try_from(size_of(&record) / UNIT + 1)
            .unwrap_or(u32::MAX)
            .min(self.units);
        let permit = match self.room.clone().try_acquire_many_owned(units) {
            Ok(permit) => permit,
            Err(_) => {
                self.metrics.writer_waits.inc();
                match self.room.clone().acquire_many_owned(units).await {
                    Ok(permit) => permit,
                    Err(_) => {
                        self.metrics.writer_dropped.inc();
                        return;
                    }
                }
            }
        };
        self.metrics.writer_queue.inc();
        if self.sender.send((record, permit)).is_err() {
            // The writer has stopped (shutdown is over).
            self.metrics.writer_queue.dec();
            self.metrics.writer_dropped.inc();
        }
    }

    /// Waits until every record queued so far is written (tests, re-runs).
    pub async fn flush(&self) {
        while self.metrics.writer_queue.get() > 0 {
            let notified = self.flushed.notified();
            if self.metrics.writer_queue.get() == 0 {
                break;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(50), notified).await;
        }
    }

    /// Asks the task to write what is queued and end.
    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

/// About how many bytes a record holds.
fn size_of(r: &ExecutionRecord) -> usize {
    let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
    256 + text(&r.input)
        + text(&r.output)
        + text(&r.trace)
        + r.error.as_ref().map_or(0, |_| 256)
        + r.logs.iter().map(|l| 64 + l.message.len()).sum::<usize>()
}

async fn write_loop(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    mut receiver: mpsc::UnboundedReceiver<Queued>,
    stop: Arc<Notify>,
    flushed: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut permits = Vec::with_capacity(BATCH);
    let mut stopping = false;
    let mut last_batch = tokio::time::Instant::now();
    loop {
        if !stopping {
            tokio::select! {
                got = receiver.recv() => match got {
                    Some((record, permit)) => {
                        batch.push(record);
                        permits.push(permit);
                    }
                    None => stopping = true,
                },
                () = stop.notified() => stopping = true,
            }
            if !stopping {
                tokio::select! {
                    () = tokio::time::sleep_until(last_batch + LINGER) => {}
                    () = stop.notified() => stopping = true,
                }
            }
        }
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok((record, permit)) => {
                    batch.push(record);
                    permits.push(permit);
                }
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if stopping {
                return;
            }
            continue;
        }
        let started = std::time::Instant::now();
        last_batch = tokio::time::Instant::now();
        let mut result = store.insert_executions(&batch).await;
        for wait_ms in [100, 500, 2000] {
            if result.is_ok() {
                break;
            }
            // A busy or briefly failing database gets more chances before
            // the batch is given up (and counted as dropped).
            tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
            result = store.insert_executions(&batch).await;
        }
        let count = batch.len() as i64;
        match result {
            Ok(()) => {
                metrics.writer_written.inc_by(count as u64);
            }
            Err(e) => {
                tracing::error!(error = %e, records = count, "execution records could not be written");
                metrics.writer_dropped.inc_by(count as u64);
            }
        }
        metrics
            .writer_batch_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.writer_queue.dec_by(count);
        batch.clear();
        permits.clear();
        flushed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> ExecutionRecord {
        ExecutionRecord {
            key: format!("k{i}"),
            realm: "acme".into(),
            environment: "test".into(),
            pipeline: "p".into(),
            major: 1,
            minor: 0,
            status: "ok".into(),
            trigger: "http".into(),
            started_at: 1,
            duration_us: 1,
            input: Some("x".repeat(10 * 1024)),
            output: None,
            error: None,
            trace: None,
            logs: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_full_writer_makes_executions_wait_and_loses_nothing() {
        let store: Arc<dyn Store> = Arc::new(
            sluice_store::SqliteStore::in_memory()
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
        store
            .create_realm("acme")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let metrics = Arc::new(Metrics::default());
        // 64 KiB of room: six of these records.
        let (writer, task) = ExecutionWriter::start(store.clone(), metrics.clone(), 64 * 1024);
        for i in 0..200 {
            writer.submit(record(i)).await;
        }
        writer.flush().await;
        assert_eq!(metrics.writer_written.get(), 200);
        assert_eq!(metrics.writer_dropped.get(), 0);
        assert!(metrics.writer_waits.get() > 0, "no execution ever waited");
        writer.stop();
        let _ = task.await;
        let stored = store
            .get_execution("acme", "k199")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(stored.is_some());
    }
}
