//! The execution record writer: executions hand their records over a
//! bounded channel and go on; one task writes them in batches. When the
//! channel is full the record is dropped and counted — the request never
//! waits on the store.

use std::sync::Arc;

use sluice_store::{ExecutionRecord, Store};
use tokio::sync::{Notify, mpsc};

use crate::metrics::Metrics;

/// Most records written in one transaction.
const BATCH: usize = 512;

/// Hands records to the writer task.
#[derive(Clone)]
pub struct ExecutionWriter {
    sender: mpsc::Sender<ExecutionRecord>,
    metrics: Arc<Metrics>,
    flushed: Arc<Notify>,
    stop: Arc<Notify>,
}

impl ExecutionWriter {
    /// Starts the writer task.
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        capacity: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
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
                metrics,
                flushed,
                stop,
            },
            task,
        )
    }

    /// Queues a record, or drops and counts it when the writer is behind.
    pub fn submit(&self, record: ExecutionRecord) {
        match self.sender.try_send(record) {
            Ok(()) => {
                self.metrics.writer_queue.inc();
            }
            Err(_) => {
                self.metrics.writer_dropped.inc();
            }
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

async fn write_loop(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    mut receiver: mpsc::Receiver<ExecutionRecord>,
    stop: Arc<Notify>,
    flushed: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut stopping = false;
    loop {
        if !stopping {
            tokio::select! {
                got = receiver.recv() => match got {
                    Some(record) => batch.push(record),
                    None => stopping = true,
                },
                () = stop.notified() => stopping = true,
            }
        }
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(record) => batch.push(record),
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
        let mut result = store.insert_executions(&batch).await;
        if result.is_err() {
            // A busy database gets one more chance before the batch is lost.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
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
        flushed.notify_waiters();
    }
}
