//! The `kafka` trigger: a consumer group on one or more topics, with
//! librdkafka's auto-commit off.
//!
//! Records of one consumer run concurrently (up to `prefetch` unsettled),
//! so a partition's records may end out of order. Offsets are therefore
//! committed per partition only up to the highest *contiguous* settled
//! record: a record still running (or handed back) holds the commit
//! position at itself, and a worker that dies leaves every record it had
//! not settled to be read again by the group. Kafka cannot hand a single
//! record back, so failures are retried in process (the shared loop holds
//! the record meanwhile) and dead letters go to Sluice's list.
//!
//! A driver task polls the consumer all the time, so rebalances and the
//! group's liveness checks are served even while every slot is busy; it
//! pauses the assigned partitions while `prefetch` records are unsettled.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use serde_json::{Map, Value};
use sluice_spec::{KafkaStart, KafkaTrigger};
use tokio::sync::{Notify, mpsc};

use crate::{Delivery, Names, Settings, Settle, Source, Subscription, TriggerError, put_body};

/// How long subscribing waits for the cluster to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The source of one `kafka` trigger.
pub(crate) fn source(
    trigger: &KafkaTrigger,
    settings: &Settings<'_>,
    names: &Names,
) -> Result<Arc<dyn Source>, TriggerError> {
    let brokers = settings
        .required(trigger.brokers.as_deref(), "brokers")?
        .trim();
    check_brokers(brokers).map_err(TriggerError::Config)?;
    if trigger.topics.is_empty() {
        return Err(TriggerError::Config(
            "trigger.topics is empty: name at least one topic".into(),
        ));
    }
    for topic in &trigger.topics {
        if topic.trim().is_empty() || topic.contains(char::is_whitespace) {
            return Err(TriggerError::Config(format!(
                "trigger.topics: '{topic}' is not a topic name"
            )));
        }
    }
    let group = match trigger.group.as_deref().map(str::trim) {
        Some("") => {
            return Err(TriggerError::Config(
                "trigger.group is empty: leave it out for one group per deployment".into(),
            ));
        }
        Some(g) => g.to_owned(),
        None => names.deployment.clone(),
    };
    let start = match trigger.start_from.unwrap_or(KafkaStart::Earliest) {
        KafkaStart::Earliest => "earliest",
        KafkaStart::Latest => "latest",
    };
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", &group)
        .set("client.id", "sluice")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", start)
        // A worker that dies without leaving the group hands its
        // partitions on after 10s (Kafka's default is 45s).
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000")
        // Records run a few at a time: 8 MB read ahead is plenty, and
        // many deployments share one process.
        .set("queued.max.messages.kbytes", "8192")
        .set("allow.auto.create.topics", "false");
    if let Some(mechanism) = settings.text("mechanism")?
        && !mechanism.eq_ignore_ascii_case("plain")
    {
        return Err(TriggerError::Config(format!(
            "the account's SASL mechanism '{mechanism}' is not supported (only PLAIN)"
        )));
    }
    match (settings.text("username")?, settings.text("password")?) {
        (Some(user), Some(password)) => {
            config
                .set("security.protocol", "sasl_plaintext")
                .set("sasl.mechanisms", "PLAIN")
                .set("sasl.username", user)
                .set("sasl.password", password);
        }
        (None, None) => {}
        _ => {
            return Err(TriggerError::Config(
                "the account needs both 'username' and 'password', or neither".into(),
            ));
        }
    }
    config
        .create_native_config()
        .map_err(|e| TriggerError::Config(format!("the Kafka settings do not work: {e}")))?;
    Ok(Arc::new(KafkaSource {
        config,
        topics: trigger.topics.iter().map(|t| t.trim().to_owned()).collect(),
        description: format!(
            "kafka {brokers} topics {} group {group}",
            trigger.topics.join(",")
        ),
    }))
}

/// Checks a bootstrap list: `host:port` entries, comma-separated, no
/// scheme (TLS listeners are not supported yet).
fn check_brokers(brokers: &str) -> Result<(), String> {
    let entries: Vec<&str> = brokers.split(',').map(str::trim).collect();
    if entries.iter().all(|e| e.is_empty()) {
        return Err("trigger.brokers is empty: give `host:port[,host:port…]`".into());
    }
    for entry in entries {
        if entry.is_empty() || entry.contains(char::is_whitespace) {
            return Err(format!(
                "trigger.brokers: '{brokers}' is not a broker list: give `host:port[,host:port…]`"
            ));
        }
        if let Some((scheme, _)) = entry.split_once("://") {
            let why = if scheme.to_ascii_lowercase().contains("ssl") {
                "Kafka over TLS is not supported yet"
            } else {
                "give brokers as `host:port`, without a scheme"
            };
            return Err(format!("trigger.brokers: '{entry}': {why}"));
        }
    }
    Ok(())
}

struct KafkaSource {
    config: ClientConfig,
    topics: Vec<String>,
    description: String,
}

type GroupConsumer = StreamConsumer<GroupContext>;

#[async_trait]
impl Source for KafkaSource {
    fn describe(&self) -> String {
        self.description.clone()
    }

    async fn subscribe(&self, prefetch: usize) -> Result<Box<dyn Subscription>, TriggerError> {
        let state = Arc::new(GroupState::default());
        let context = GroupContext {
            state: state.clone(),
            name: self.description.clone(),
        };
        let consumer: GroupConsumer = self
            .config
            .create_with_context(context)
            .map_err(|e| TriggerError::Config(format!("cannot make a Kafka consumer: {e}")))?;
        let consumer = Arc::new(consumer);
        if let Err(e) = reachable(&consumer, &self.topics).await {
            close(consumer);
            return Err(e);
        }
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        if let Err(e) = consumer.subscribe(&topics) {
            close(consumer);
            return Err(TriggerError::Config(format!(
                "cannot subscribe to {}: {e}",
                self.topics.join(",")
            )));
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(drive(
            consumer.clone(),
            state.clone(),
            sender,
            prefetch.max(1),
            self.description.clone(),
        ));
        Ok(Box::new(KafkaSubscription { receiver, state }))
    }
}

/// Asks the cluster about the topics: an error when it cannot be reached,
/// a warning for a topic it does not have (yet).
async fn reachable(consumer: &Arc<GroupConsumer>, topics: &[String]) -> Result<(), TriggerError> {
    let consumer = consumer.clone();
    let topics = topics.to_vec();
    let missing = tokio::task::spawn_blocking(move || {
        let mut missing = Vec::new();
        for topic in &topics {
            let metadata = consumer.fetch_metadata(Some(topic), CONNECT_TIMEOUT)?;
            if metadata
                .topics()
                .first()
                .is_none_or(|t| t.error().is_some())
            {
                missing.push(topic.clone());
            }
        }
        Ok::<_, KafkaError>(missing)
    })
    .await
    .map_err(|e| TriggerError::Connection(format!("the metadata request failed: {e}")))?
    .map_err(|e| TriggerError::Connection(format!("cannot reach the Kafka cluster: {e}")))?;
    if !missing.is_empty() {
        tracing::warn!(topics = %missing.join(","), "the Kafka cluster has no such topic yet; consuming starts when it has");
    }
    Ok(())
}

/// Closes a consumer (leaving its group) off the async threads: closing
/// waits for the group coordinator.
fn close(consumer: Arc<GroupConsumer>) {
    let closing = move || drop(consumer);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn_blocking(closing)),
        Err(_) => closing(),
    }
}

/// A record taken from the consumer, not yet handed to the loop.
struct Taken {
    message: Value,
    settle: KafkaSettle,
}

/// Polls the consumer until the subscription is dropped: hands records
/// out, serves rebalances, pauses while `prefetch` records are unsettled.
async fn drive(
    consumer: Arc<GroupConsumer>,
    state: Arc<GroupState>,
    sender: mpsc::UnboundedSender<Result<Taken, TriggerError>>,
    prefetch: usize,
    name: String,
) {
    let mut paused: Option<u64> = None;
    let mut last_error = String::new();
    loop {
        if state.fatal.load(Ordering::Relaxed) {
            let _ = sender.send(Err(TriggerError::Connection(
                "the Kafka consumer failed for good; making a new one".into(),
            )));
            break;
        }
        let (unsettled, assignments) = {
            let tracker = state.tracker();
            (tracker.unsettled, tracker.assignments)
        };
        if unsettled >= prefetch {
            if paused != Some(assignments) {
                match consumer.assignment() {
                    Ok(assigned) => {
                        if let Err(e) = consumer.pause(&assigned) {
                            tracing::warn!(source = %name, error = %e, "cannot pause the Kafka partitions");
                        }
                        paused = Some(assignments);
                    }
                    Err(e) => {
                        tracing::warn!(source = %name, error = %e, "cannot read the Kafka assignment");
                    }
                }
            }
        } else if paused.take().is_some()
            && let Ok(assigned) = consumer.assignment()
            && let Err(e) = consumer.resume(&assigned)
        {
            tracing::warn!(source = %name, error = %e, "cannot resume the Kafka partitions");
        }
        tokio::select! {
            () = sender.closed() => break,
            () = state.wake.notified() => {}
            received = consumer.recv() => match received {
                Ok(record) => {
                    last_error.clear();
                    let taken = take(&consumer, &state, &record);
                    if sender.send(Ok(taken)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    // librdkafka reconnects and refetches by itself; say
                    // so once per kind of error, not on every poll.
                    let said = e.to_string();
                    if said != last_error {
                        tracing::warn!(source = %name, error = %said, "kafka consumer error");
                        last_error = said;
                    }
                }
            },
        }
    }
    close(consumer);
}

/// Tracks a record and makes its message.
fn take(
    consumer: &Arc<GroupConsumer>,
    state: &Arc<GroupState>,
    record: &BorrowedMessage<'_>,
) -> Taken {
    let topic = record.topic().to_owned();
    let partition = record.partition();
    let offset = record.offset();
    let epoch = state.tracker().hand_out(&topic, partition, offset);
    Taken {
        message: message_of(record),
        settle: KafkaSettle {
            consumer: consumer.clone(),
            state: state.clone(),
            topic,
            partition,
            offset,
            epoch,
        },
    }
}

/// What the pipeline receives: `{body, key, headers, topic, partition,
/// offset, timestamp}` (`body` null for a tombstone).
fn message_of(record: &BorrowedMessage<'_>) -> Value {
    let mut message = Map::new();
    match record.payload() {
        Some(bytes) => put_body(&mut message, bytes),
        None => {
            message.insert("body".into(), Value::Null);
        }
    }
    let key = match record.key() {
        None => Value::Null,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Value::String(text.to_owned()),
            Err(_) => {
                message.insert("keyEncoding".into(), Value::String("base64".into()));
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        },
    };
    message.insert("key".into(), key);
    let mut headers = Map::new();
    if let Some(all) = record.headers() {
        for header in all.iter() {
            let value = header.value.map_or(Value::Null, |bytes| {
                Value::String(match std::str::from_utf8(bytes) {
                    Ok(text) => text.to_owned(),
                    Err(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
                })
            });
            // A repeated header keeps its values in order, comma-joined.
            match (headers.get_mut(header.key), &value) {
                (Some(Value::String(first)), Value::String(next)) => {
                    first.push_str(", ");
                    first.push_str(next);
                }
                _ => {
                    headers.insert(header.key.to_owned(), value);
                }
            }
        }
    }
    message.insert("headers".into(), Value::Object(headers));
    message.insert("topic".into(), Value::String(record.topic().to_owned()));
    message.insert("partition".into(), Value::from(record.partition()));
    message.insert("offset".into(), Value::from(record.offset()));
    message.insert(
        "timestamp".into(),
        record
            .timestamp()
            .to_millis()
            .map_or(Value::Null, Value::from),
    );
    Value::Object(message)
}

/// Dropping it closes the channel, and the driver then closes the
/// consumer once the records in hand let go of it.
struct KafkaSubscription {
    receiver: mpsc::UnboundedReceiver<Result<Taken, TriggerError>>,
    state: Arc<GroupState>,
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<Delivery, TriggerError> {
        loop {
            let Some(taken) = self.receiver.recv().await else {
                return Err(TriggerError::Connection(
                    "the Kafka consumer stopped".into(),
                ));
            };
            let taken = taken?;
            // A record of a partition revoked while it waited here is
            // the new owner's now.
            if !self.state.tracker().is_current(&taken.settle) {
                continue;
            }
            return Ok(Delivery {
                message: taken.message,
                attempt: 1,
                redelivered: false,
                settle: Box::new(taken.settle),
            });
        }
    }
}

/// One record's place in its partition.
struct KafkaSettle {
    consumer: Arc<GroupConsumer>,
    state: Arc<GroupState>,
    topic: String,
    partition: i32,
    offset: i64,
    /// The assignment the record was read under.
    epoch: u64,
}

#[async_trait]
impl Settle for KafkaSettle {
    async fn ack(self: Box<Self>) -> Result<(), TriggerError> {
        let committed = {
            let mut tracker = self.state.tracker();
            match tracker.settle(&self.topic, self.partition, self.offset, self.epoch) {
                Some(next) => {
                    // Under the lock, so a rebalance cannot revoke the
                    // partition between the check and the commit.
                    let mut offsets = TopicPartitionList::new();
                    offsets
                        .add_partition_offset(&self.topic, self.partition, Offset::Offset(next))
                        .and_then(|()| self.consumer.commit(&offsets, CommitMode::Async))
                }
                None => Ok(()),
            }
        };
        self.state.wake.notify_one();
        committed.map_err(|e| {
            TriggerError::Connection(format!(
                "cannot commit {}/{} up to offset {}: {e}",
                self.topic, self.partition, self.offset
            ))
        })
    }

    async fn release(self: Box<Self>) -> Result<(), TriggerError> {
        self.state
            .tracker()
            .release(&self.topic, self.partition, self.offset, self.epoch);
        self.state.wake.notify_one();
        Ok(())
    }
}

/// What the driver, the settles and the rebalance callbacks share.
#[derive(Default)]
struct GroupState {
    tracker: Mutex<Tracker>,
    /// Wakes the driver when records are settled (it may resume).
    wake: Notify,
    /// The consumer hit a fatal error and must be made again.
    fatal: AtomicBool,
}

impl GroupState {
    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where each assigned partition's handed-out records stand.
#[derive(Default)]
struct Tracker {
    partitions: HashMap<(String, i32), PartitionRecords>,
    /// Records handed out and neither settled nor handed back.
    unsettled: usize,
    /// Counts assignments, so each one has its own epoch.
    assignments: u64,
}

#[derive(Default)]
struct PartitionRecords {
    epoch: u64,
    records: BTreeMap<i64, RecordState>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RecordState {
    Running,
    Settled,
    /// Handed back unprocessed: holds the commit position until the
    /// partition is read again (after a rebalance or a restart).
    Released,
}

impl Tracker {
    fn assign(&mut self, topic: &str, partition: i32) {
        self.assignments += 1;
        let epoch = self.assignments;
        if let Some(old) = self.partitions.insert(
            (topic.to_owned(), partition),
            PartitionRecords {
                epoch,
                records: BTreeMap::new(),
            },
        ) {
            self.forget(&old);
        }
    }

    fn revoke(&mut self, topic: &str, partition: i32) {
        self.assignments += 1;
        if let Some(old) = self.partitions.remove(&(topic.to_owned(), partition)) {
            self.forget(&old);
        }
    }

    fn forget(&mut self, old: &PartitionRecords) {
        let running = old
            .records
            .values()
            .filter(|s| **s == RecordState::Running)
            .count();
        self.unsettled = self.unsettled.saturating_sub(running);
    }

    /// Records `offset` as running; its epoch.
    fn hand_out(&mut self, topic: &str, partition: i32, offset: i64) -> u64 {
        let key = (topic.to_owned(), partition);
        if !self.partitions.contains_key(&key) {
            // A record before its assignment was seen: track it anyway,
            // so nothing is committed past it.
            self.assign(topic, partition);
        }
        let Some(records) = self.partitions.get_mut(&key) else {
            return 0;
        };
        if records.records.insert(offset, RecordState::Running) != Some(RecordState::Running) {
            self.unsettled += 1;
        }
        records.epoch
    }

    fn is_current(&self, settle: &KafkaSettle) -> bool {
        self.partitions
            .get(&(settle.topic.clone(), settle.partition))
            .is_some_and(|p| p.epoch == settle.epoch)
    }

    /// Marks `offset` settled; the offset to commit when the contiguous
    /// settled run from the start of the partition's records grew.
    fn settle(&mut self, topic: &str, partition: i32, offset: i64, epoch: u64) -> Option<i64> {
        let records = self
            .partitions
            .get_mut(&(topic.to_owned(), partition))
            .filter(|p| p.epoch == epoch)?;
        let state = records.records.get_mut(&offset)?;
        if *state == RecordState::Running {
            self.unsettled = self.unsettled.saturating_sub(1);
        }
        *state = RecordState::Settled;
        let mut done = None;
        while let Some(entry) = records.records.first_entry() {
            if *entry.get() != RecordState::Settled {
                break;
            }
            done = Some(entry.remove_entry().0);
        }
        done.map(|last| last + 1)
    }

    fn release(&mut self, topic: &str, partition: i32, offset: i64, epoch: u64) {
        let Some(state) = self
            .partitions
            .get_mut(&(topic.to_owned(), partition))
            .filter(|p| p.epoch == epoch)
            .and_then(|p| p.records.get_mut(&offset))
        else {
            return;
        };
        if *state == RecordState::Running {
            self.unsettled = self.unsettled.saturating_sub(1);
        }
        *state = RecordState::Released;
    }
}

/// Tracks assignments for the consumer; logs librdkafka's errors.
struct GroupContext {
    state: Arc<GroupState>,
    name: String,
}

impl ClientContext for GroupContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            self.state.fatal.store(true, Ordering::Relaxed);
            self.state.wake.notify_one();
        }
        tracing::warn!(source = %self.name, error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut tracker = self.state.tracker();
        match rebalance {
            Rebalance::Assign(partitions) => {
                for p in partitions.elements() {
                    tracker.assign(p.topic(), p.partition());
                }
                tracing::info!(source = %self.name, partitions = partitions.count(), "kafka partitions assigned");
            }
            Rebalance::Revoke(partitions) => {
                // Records still running keep running, but their acks no
                // longer commit: the partition's next owner reads them again.
                for p in partitions.elements() {
                    tracker.revoke(p.topic(), p.partition());
                }
                tracing::info!(source = %self.name, partitions = partitions.count(), "kafka partitions revoked");
            }
            Rebalance::Error(e) => {
                tracing::warn!(source = %self.name, error = %e, "kafka rebalance failed");
            }
        }
        drop(tracker);
        self.state.wake.notify_one();
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            let at: Vec<String> = offsets
                .elements()
                .iter()
                .map(|p| format!("{}/{}@{:?}", p.topic(), p.partition(), p.offset()))
                .collect();
            tracing::warn!(source = %self.name, error = %e, offsets = %at.join(","), "an offset commit failed; those records will be read again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_stop_at_the_first_record_not_settled() {
        let mut t = Tracker::default();
        t.assign("t", 0);
        let epoch = t.hand_out("t", 0, 10);
        for offset in [11, 12, 14] {
            t.hand_out("t", 0, offset);
        }
        assert_eq!(t.unsettled, 4);
        assert_eq!(t.settle("t", 0, 11, epoch), None, "10 still runs");
        assert_eq!(t.settle("t", 0, 12, epoch), None);
        assert_eq!(t.settle("t", 0, 10, epoch), Some(13), "10..=12 done");
        t.release("t", 0, 14, epoch);
        assert_eq!(t.unsettled, 0);
        assert_eq!(t.settle("t", 0, 99, epoch), None, "never handed out");
        t.hand_out("t", 0, 15);
        assert_eq!(t.settle("t", 0, 15, epoch), None, "14 was handed back");
    }

    #[test]
    fn a_revoked_partition_forgets_its_records() {
        let mut t = Tracker::default();
        t.assign("t", 0);
        let old = t.hand_out("t", 0, 1);
        t.hand_out("t", 0, 2);
        t.revoke("t", 0);
        assert_eq!(t.unsettled, 0);
        assert_eq!(t.settle("t", 0, 1, old), None);
        t.assign("t", 0);
        let new = t.hand_out("t", 0, 1);
        assert_ne!(old, new);
        assert_eq!(
            t.settle("t", 0, 1, old),
            None,
            "an ack from before the rebalance"
        );
        assert_eq!(t.settle("t", 0, 1, new), Some(2));
    }
}
