//! The store writer: executions hand over their records, publishers
//! their events and deliveries their acknowledgements, and one task writes
//! whatever has gathered in one transaction (a group commit). The store's
//! one write connection is then held by one task at a time, each batch
//! costs one commit, and nothing waits for the connection to change hands.
//!
//! Records and acknowledgements wait for more to gather (at least
//! [`LINGER`] between batches while they keep coming); a publisher waiting
//! for its answer ends that wait. The records waiting are bounded in bytes:
//! when that budget is spent, the next execution waits for room
//! (backpressure) instead of its record being dropped — every execution
//! keeps its record, and memory stays bounded. When a batch cannot be
//! written, each of its parts is written again on its own, so a bad record
//! never fails a publish, nor the other way round.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_store::{ExecutionRecord, NewEvent, QueuedEvent, Store, WriteBatch};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::events::{EventQueue, LEASE};
use crate::metrics::Metrics;
use crate::runtime::now_ms;

/// Most records written in one transaction.
const RECORDS: usize = 2048;

/// Most events queued in one transaction.
const EVENTS: usize = 2048;

/// Most acknowledgements written in one transaction.
const ACKS: usize = 4096;

/// The shortest time between two batches while records keep coming and no
/// publisher waits: under load, fewer and bigger transactions rewrite each
/// index page once per batch instead of once per handful of records. An
/// idle writer writes the first record at once.
const LINGER: Duration = Duration::from_millis(10);

/// The waits before a batch of records that could not be written is tried
/// again; after the last it is given up (and counted as dropped).
const RETRIES: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_millis(2000),
];

/// The budget is counted in KiB.
const UNIT: usize = 1024;

/// A publisher's event and where its answer goes.
type Publish = (NewEvent, oneshot::Sender<Result<(), String>>);

/// What an execution or a delivery hands over.
enum Work {
    /// A record with the room it holds in the budget (boxed: an
    /// acknowledgement is small).
    Record(Box<ExecutionRecord>, OwnedSemaphorePermit),
    /// A delivery that succeeded.
    Ack(i64),
}

/// Hands records, events and acknowledgements to the writer task.
#[derive(Clone)]
pub struct Writer {
    work: mpsc::UnboundedSender<Work>,
    publishes: mpsc::UnboundedSender<Publish>,
    room: Arc<Semaphore>,
    units: u32,
    metrics: Arc<Metrics>,
    flushed: Arc<Notify>,
    stop: Arc<Notify>,
}

impl Writer {
    /// Starts the writer task; deliveries it claims at publish go to `events`.
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        memory: usize,
        events: Arc<EventQueue>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (work, work_rx) = mpsc::unbounded_channel();
        let (publishes, publish_rx) = mpsc::unbounded_channel();
        let units = u32::try_from((memory / UNIT).max(64)).unwrap_or(u32::MAX >> 4);
        let room = Arc::new(Semaphore::new(units as usize));
        let stop = Arc::new(Notify::new());
        let flushed = Arc::new(Notify::new());
        let task = Task {
            store,
            metrics: metrics.clone(),
            events,
            work: work_rx,
            publishes: publish_rx,
            stop: stop.clone(),
            flushed: flushed.clone(),
        };
        let task = spawn_on_own_thread(task.run());
        (
            Writer {
                work,
                publishes,
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
        if self
            .work
            .send(Work::Record(Box::new(record), permit))
            .is_err()
        {
            // The writer has stopped (shutdown is over).
            self.metrics.writer_queue.dec();
            self.metrics.writer_dropped.inc();
        }
    }

    /// Queues an event; answers once it is stored.
    pub async fn publish(&self, event: NewEvent) -> Result<(), sluice_store::Error> {
        let (answer, answered) = oneshot::channel();
        self.publishes
            .send((event, answer))
            .map_err(|_| sluice_store::Error::Unavailable("the event queue is stopped".into()))?;
        match answered.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(sluice_store::Error::Unavailable(message)),
            Err(_) => Err(sluice_store::Error::Unavailable(
                "the event queue stopped before the event was stored".into(),
            )),
        }
    }

    /// Marks a delivery done; written with the next batch. One lost in a
    /// crash makes the delivery come again after the restart (at least once).
    pub fn ack(&self, id: i64) {
        // After shutdown the lease runs out and the delivery comes again.
        let _ = self.work.send(Work::Ack(id));
    }

    /// Waits until every record queued so far is written (tests, re-runs).
    pub async fn flush(&self) {
        while self.metrics.writer_queue.get() > 0 {
            let notified = self.flushed.notified();
            if self.metrics.writer_queue.get() == 0 {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    /// Asks the task to write everything queued and end.
    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

/// Runs the writer on a thread of its own: each of its round trips to the
/// database wakes it at once, instead of putting it back in the queue of
/// the runtime's busy workers (where it waited behind every execution).
/// Falls back to the runtime when no thread can be started.
fn spawn_on_own_thread(
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!(error = %e, "the writer runs on the shared runtime");
            return tokio::spawn(task);
        }
    };
    let spawner = runtime.handle().clone();
    let (done, finished) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("sluice-writer".into())
        .spawn(move || {
            runtime.block_on(async move {
                let _ = finished.await;
                // A pooled connection used last goes back to its pool in a
                // task of this runtime: give it the moment that takes.
                tokio::time::sleep(Duration::from_millis(100)).await;
            });
        });
    match thread {
        Ok(_) => spawner.spawn(async move {
            task.await;
            drop(done);
        }),
        Err(e) => {
            tracing::warn!(error = %e, "the writer runs on the shared runtime");
            tokio::spawn(task)
        }
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

/// What one transaction writes.
#[derive(Default)]
struct Batch {
    records: Vec<ExecutionRecord>,
    permits: Vec<OwnedSemaphorePermit>,
    events: Vec<NewEvent>,
    answers: Vec<oneshot::Sender<Result<(), String>>>,
    acks: Vec<i64>,
}

impl Batch {
    fn add(&mut self, work: Work) {
        match work {
            Work::Record(record, permit) => {
                self.records.push(*record);
                self.permits.push(permit);
            }
            Work::Ack(id) => self.acks.push(id),
        }
    }

    fn publish(&mut self, (event, answer): Publish) {
        self.events.push(event);
        self.answers.push(answer);
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.events.is_empty() && self.acks.is_empty()
    }
}

/// The writer task and what it owns.
struct Task {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    events: Arc<EventQueue>,
    work: mpsc::UnboundedReceiver<Work>,
    publishes: mpsc::UnboundedReceiver<Publish>,
    stop: Arc<Notify>,
    flushed: Arc<Notify>,
}

impl Task {
    async fn run(mut self) {
        let mut batch = Batch::default();
        let mut stopping = false;
        let mut last_batch = tokio::time::Instant::now();
        loop {
            if !stopping {
                stopping = self.gather(&mut batch, last_batch).await;
            }
            while batch.events.len() < EVENTS {
                match self.publishes.try_recv() {
                    Ok(publish) => batch.publish(publish),
                    Err(_) => break,
                }
            }
            while batch.records.len() < RECORDS && batch.acks.len() < ACKS {
                match self.work.try_recv() {
                    Ok(work) => batch.add(work),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                if stopping {
                    return;
                }
                continue;
            }
            last_batch = tokio::time::Instant::now();
            self.write(&mut batch).await;
        }
    }

    /// Waits for the first work of a batch, then for more to gather until
    /// `LINGER` after the last batch, until a publisher waits, or not at
    /// all when a full batch is already waiting; whether the writer is
    /// asked to stop.
    async fn gather(&mut self, batch: &mut Batch, last_batch: tokio::time::Instant) -> bool {
        tokio::select! {
            biased;
            () = self.stop.notified() => return true,
            got = self.publishes.recv() => match got {
                Some(publish) => {
                    batch.publish(publish);
                    return false;
                }
                None => return true,
            },
            got = self.work.recv() => match got {
                Some(work) => batch.add(work),
                None => return true,
            },
        }
        // A writer behind has nothing to wait for: a full batch is there.
        if self.work.len() >= RECORDS {
            return false;
        }
        tokio::select! {
            biased;
            () = self.stop.notified() => true,
            got = self.publishes.recv() => match got {
                Some(publish) => {
                    batch.publish(publish);
                    false
                }
                None => true,
            },
            () = tokio::time::sleep_until(last_batch + LINGER) => false,
        }
    }

    async fn write(&self, batch: &mut Batch) {
        let started = Instant::now();
        let deliveries: usize = batch.events.iter().map(|e| e.targets.len()).sum();
        let claim = (deliveries > 0 && self.events.may_claim(deliveries)).then_some(LEASE);
        let written = self
            .store
            .write(&WriteBatch {
                now: now_ms(),
                events: &batch.events,
                claim,
                acks: &batch.acks,
                executions: &batch.records,
            })
            .await;
        match written {
            Ok(claimed) => {
                self.queued(batch, claim.map(|_| started), Ok(claimed));
                self.written(batch, Ok(()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "a write batch failed; its parts are written one by one");
                self.write_apart(batch, claim).await;
            }
        }
        self.metrics
            .writer_batch_seconds
            .observe(started.elapsed().as_secs_f64());
        batch.acks.clear();
        self.flushed.notify_waiters();
    }

    /// Writes the events, the acknowledgements and the records of a failed
    /// batch each in a transaction of its own.
    async fn write_apart(&self, batch: &mut Batch, claim: Option<Duration>) {
        if !batch.events.is_empty() {
            let started = Instant::now();
            let queued = self
                .store
                .enqueue_events(&batch.events, now_ms(), claim)
                .await;
            self.queued(batch, claim.map(|_| started), queued);
        }
        if !batch.acks.is_empty() {
            if let Err(e) = self.store.ack_events(&batch.acks).await {
                // Their leases run out and they come again: at least once.
                tracing::error!(error = %e, deliveries = batch.acks.len(), "acknowledgements could not be stored");
            }
        }
        if !batch.records.is_empty() {
            let mut result = self.store.insert_executions(&batch.records).await;
            for wait in RETRIES {
                if result.is_ok() {
                    break;
                }
                // A busy or briefly failing database gets more chances.
                tokio::time::sleep(wait).await;
                result = self.store.insert_executions(&batch.records).await;
            }
            self.written(batch, result);
        }
    }

    /// Answers the publishers and hands the deliveries claimed (when the
    /// write that claimed them began) to the dispatcher.
    fn queued(
        &self,
        batch: &mut Batch,
        claimed: Option<Instant>,
        result: sluice_store::Result<Vec<QueuedEvent>>,
    ) {
        let answer = match result {
            Ok(deliveries) => {
                if let Some(claimed) = claimed {
                    self.events.hand_over(deliveries, claimed);
                } else if !batch.events.is_empty() {
                    self.events.ready.notify_one();
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        batch.events.clear();
        for publisher in batch.answers.drain(..) {
            let _ = publisher.send(answer.clone());
        }
    }

    /// Counts the batch's records written (or dropped) and frees their room.
    fn written(&self, batch: &mut Batch, result: sluice_store::Result<()>) {
        let count = batch.records.len();
        if count == 0 {
            return;
        }
        match result {
            Ok(()) => {
                self.metrics.writer_written.inc_by(count as u64);
            }
            Err(e) => {
                tracing::error!(error = %e, records = count, "execution records could not be written");
                self.metrics.writer_dropped.inc_by(count as u64);
            }
        }
        self.metrics.writer_queue.dec_by(count as i64);
        batch.records.clear();
        batch.permits.clear();
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
        let (writer, task) =
            Writer::start(store.clone(), metrics.clone(), 64 * 1024, Arc::default());
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
