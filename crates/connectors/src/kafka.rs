//! `kafka`: produce one record to a Kafka topic and wait until the cluster
//! has it (by default acknowledged by every in-sync replica, with an
//! idempotent producer so librdkafka's own retries never write twice).
//! One producer per broker set and compiled step (so per deployment);
//! librdkafka keeps its connections and reconnects by itself.
//!
//! The step never creates topics: a topic the cluster does not know is a
//! 404, found with one metadata request the first time a producer sees
//! the topic. TLS is not built in yet (librdkafka would need OpenSSL);
//! SASL/PLAIN over plaintext is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, schema_of,
};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::{HumanDuration, StepKind};

use crate::input::{self, Input, as_text, bad_input};

/// How long the cluster may take to have a record, unless the step says.
const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which brokers must have a record before it counts as written.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Acks {
    /// Every in-sync replica (default).
    #[default]
    All,
    /// The partition leader only.
    Leader,
    /// No acknowledgement: fire and forget.
    None,
}

impl Acks {
    fn setting(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }
}

/// Fields of the `kafka` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port…]`; may hold expressions.
    #[serde(default)]
    brokers: Option<String>,
    /// Instead of `brokers`: an account with a `brokers` field and,
    /// optionally, `username` and `password` (SASL/PLAIN).
    #[serde(default)]
    account: Option<String>,
    /// The topic; may hold expressions (`orders.{{ message.region }}`).
    topic: String,
    /// The record key (partitioning and compaction); may hold expressions.
    /// Strings as they are, anything else as JSON text; no key when empty.
    #[serde(default)]
    key: Option<Value>,
    /// The record value (default: the message); strings as they are,
    /// anything else as JSON text.
    #[serde(default)]
    value: Option<Value>,
    /// Record headers (an object); values may hold expressions. Strings
    /// as they are, anything else as JSON text; null values are left out.
    #[serde(default)]
    headers: Option<Value>,
    /// Write to this partition instead of the one the key hashes to.
    #[serde(default)]
    partition: Option<u32>,
    /// all (default: every in-sync replica), leader, or none.
    #[serde(default)]
    acks: Acks,
    /// Idempotent producer: retries never duplicate a record (default
    /// true; needs `acks: all`).
    #[serde(default)]
    idempotent: Option<bool>,
    /// How long the cluster may take to have the record, retries included
    /// (default 10s).
    #[serde(default)]
    delivery_timeout: Option<HumanDuration>,
}

pub(crate) const KAFKA: StepFactory = StepFactory {
    kind: StepKind {
        name: "kafka",
        summary: "Produce a record to a Kafka topic and wait for the cluster's acknowledgement.",
        schema: schema_of::<KafkaConfig>,
    },
    compile,
};

struct KafkaStep {
    brokers: Option<Template>,
    account: Option<String>,
    topic: Template,
    key: Option<ValueTemplate>,
    value: Input,
    headers: Option<ValueTemplate>,
    partition: Option<i32>,
    acks: Acks,
    idempotent: bool,
    delivery_timeout: Duration,
    /// One producer per broker set and credentials.
    producers: Mutex<HashMap<String, Arc<Producer>>>,
}

/// A producer and the topics it has seen on the cluster.
struct Producer {
    producer: FutureProducer,
    brokers: String,
    /// Topic name to partition count.
    known_topics: Mutex<HashMap<String, usize>>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: KafkaConfig = cx.config()?;
    if config.brokers.is_some() == config.account.is_some() {
        let path = cx.path().clone();
        cx.problem(
            path,
            "give the brokers as `brokers` or `account` (one of them)",
        );
        return None;
    }
    if let Some(brokers) = config.brokers.as_deref().filter(|b| !b.contains("{{"))
        && let Err(e) = check_brokers(brokers)
    {
        let path = cx.path().key("brokers");
        cx.problem(path, e);
        return None;
    }
    if config.topic.trim().is_empty() {
        let path = cx.path().key("topic");
        cx.problem(path, "the topic is empty");
        return None;
    }
    if !crate::input::check_headers(cx, config.headers.as_ref()) {
        return None;
    }
    let partition = match config.partition.map(i32::try_from) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => {
            let path = cx.path().key("partition");
            cx.problem(path, "partition is too large");
            return None;
        }
    };
    let idempotent = config.idempotent.unwrap_or(config.acks == Acks::All);
    if idempotent && config.acks != Acks::All {
        let path = cx.path().key("idempotent");
        cx.problem(path, "an idempotent producer needs `acks: all`");
        return None;
    }
    let delivery_timeout = config
        .delivery_timeout
        .map_or(DEFAULT_DELIVERY_TIMEOUT, |d| d.0);
    if delivery_timeout < Duration::from_millis(1) {
        let path = cx.path().key("deliveryTimeout");
        cx.problem(path, "deliveryTimeout must be at least 1ms");
        return None;
    }
    let brokers = match &config.brokers {
        Some(b) => Some(cx.template("brokers", b)?),
        None => None,
    };
    let topic = cx.template("topic", &config.topic)?;
    let key = match &config.key {
        Some(v) => Some(cx.value_template("key", v)?),
        None => None,
    };
    let value = Input::compile(cx, config.value.as_ref())?;
    let headers = match &config.headers {
        Some(v) => Some(cx.value_template("headers", v)?),
        None => None,
    };
    Some(Box::new(KafkaStep {
        brokers,
        account: config.account,
        topic,
        key,
        value,
        headers,
        partition,
        acks: config.acks,
        idempotent,
        delivery_timeout,
        producers: Mutex::new(HashMap::new()),
    }))
}

fn kafka_error(status: u16, message: impl Into<String>) -> FlowError {
    FlowError::new("kafka", status, message)
}

/// Checks a bootstrap list: `host:port` entries, comma-separated, no
/// scheme (TLS listeners are not supported yet).
fn check_brokers(brokers: &str) -> Result<(), String> {
    let entries: Vec<&str> = brokers.split(',').map(str::trim).collect();
    if entries.iter().all(|e| e.is_empty()) {
        return Err("the broker list is empty: give `host:port[,host:port…]`".into());
    }
    for entry in entries {
        if entry.is_empty() || entry.contains(char::is_whitespace) {
            return Err(format!(
                "'{brokers}' is not a broker list: give `host:port[,host:port…]`"
            ));
        }
        if let Some((scheme, _)) = entry.split_once("://") {
            let why = if scheme.to_ascii_lowercase().contains("ssl") {
                "Kafka over TLS is not supported yet"
            } else {
                "give brokers as `host:port`, without a scheme"
            };
            return Err(format!("'{entry}': {why}"));
        }
    }
    Ok(())
}

/// Where to connect and how to log in.
struct Cluster {
    brokers: String,
    /// SASL/PLAIN username and password.
    login: Option<(String, String)>,
}

impl Cluster {
    fn key(&self) -> String {
        match &self.login {
            Some((user, password)) => format!("{}\u{0}{user}\u{0}{password}", self.brokers),
            None => self.brokers.clone(),
        }
    }
}

impl KafkaStep {
    fn cluster(&self, cx: &Context, message: &Value) -> Result<Cluster, FlowError> {
        if let Some(t) = &self.brokers {
            let brokers = cx.render(t, message)?.trim().to_owned();
            check_brokers(&brokers).map_err(|e| bad_input("kafka", e))?;
            return Ok(Cluster {
                brokers,
                login: None,
            });
        }
        let name = self.account.as_deref().unwrap_or_default();
        let account = input::account("kafka", cx, name)?;
        let brokers = input::account_field("kafka", name, account, "brokers")?
            .trim()
            .to_owned();
        check_brokers(&brokers)
            .map_err(|e| bad_input("kafka", format!("account '{name}': {e}")))?;
        if let Some(mechanism) = input::account_text(account, "mechanism")
            && !mechanism.eq_ignore_ascii_case("plain")
        {
            return Err(bad_input(
                "kafka",
                format!(
                    "account '{name}': SASL mechanism '{mechanism}' is not supported (only PLAIN)"
                ),
            ));
        }
        let username = input::account_text(account, "username");
        let password = input::account_text(account, "password");
        let login = match (username, password) {
            (Some(u), Some(p)) => Some((u.to_owned(), p.to_owned())),
            (None, None) => None,
            _ => {
                return Err(bad_input(
                    "kafka",
                    format!("account '{name}' needs both 'username' and 'password', or neither"),
                ));
            }
        };
        Ok(Cluster { brokers, login })
    }

    /// The producer for `cluster`, made on first use.
    fn producer(&self, cluster: &Cluster) -> Result<Arc<Producer>, FlowError> {
        let key = cluster.key();
        let mut producers = self
            .producers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = producers.get(&key) {
            return Ok(p.clone());
        }
        let millis = |d: Duration| d.as_millis().clamp(1, i32::MAX as u128).to_string();
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &cluster.brokers)
            .set("client.id", "sluice")
            .set("acks", self.acks.setting())
            .set("enable.idempotence", self.idempotent.to_string())
            .set("message.timeout.ms", millis(self.delivery_timeout))
            .set(
                "socket.connection.setup.timeout.ms",
                millis(self.delivery_timeout.max(Duration::from_secs(1))),
            )
            .set("allow.auto.create.topics", "false");
        if let Some((user, password)) = &cluster.login {
            config
                .set("security.protocol", "sasl_plaintext")
                .set("sasl.mechanisms", "PLAIN")
                .set("sasl.username", user)
                .set("sasl.password", password);
        }
        let producer: FutureProducer = config.create().map_err(|e| {
            bad_input(
                "kafka",
                format!("cannot make a producer for {}: {e}", cluster.brokers),
            )
        })?;
        let producer = Arc::new(Producer {
            producer,
            brokers: cluster.brokers.clone(),
            known_topics: Mutex::new(HashMap::new()),
        });
        producers.insert(key, producer.clone());
        Ok(producer)
    }

    /// Drops the producer of `cluster` (after a fatal error), so the next
    /// record gets a new one.
    fn forget(&self, cluster: &Cluster) {
        self.producers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&cluster.key());
    }

    fn key(&self, cx: &Context, message: &Value) -> Result<Option<String>, FlowError> {
        let Some(t) = &self.key else {
            return Ok(None);
        };
        let key = cx.eval_value(t, message)?;
        if key.is_null() {
            return Ok(None);
        }
        Ok(Some(as_text(key)).filter(|k| !k.is_empty()))
    }

    fn headers(&self, cx: &Context, message: &Value) -> Result<Option<OwnedHeaders>, FlowError> {
        let Some(t) = &self.headers else {
            return Ok(None);
        };
        let pairs = crate::input::header_pairs("kafka", cx, t, message)?;
        let mut headers = OwnedHeaders::new_with_capacity(pairs.len());
        for (name, value) in pairs {
            let value = as_text(value);
            headers = headers.insert(Header {
                key: &name,
                value: Some(&value),
            });
        }
        Ok(Some(headers))
    }
}

impl Producer {
    /// Checks once per producer that the cluster has `topic` (and
    /// `partition`): a 404 at once instead of a record that waits for a
    /// topic that never comes.
    async fn check_topic(
        self: &Arc<Self>,
        topic: &str,
        partition: Option<i32>,
        wait: Duration,
    ) -> Result<(), FlowError> {
        let known = self
            .known_topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .copied();
        let beyond = |partitions: usize| {
            partition.is_some_and(|p| usize::try_from(p).is_ok_and(|p| p >= partitions))
        };
        let partitions = match known {
            // A topic may have gained partitions since: ask again.
            Some(partitions) if !beyond(partitions) => partitions,
            _ => self.fetch_partitions(topic, wait).await?,
        };
        if let Some(p) = partition
            && beyond(partitions)
        {
            return Err(bad_input(
                "kafka",
                format!("topic '{topic}' has {partitions} partition(s): there is no partition {p}"),
            ));
        }
        Ok(())
    }

    /// Asks the cluster how many partitions `topic` has.
    async fn fetch_partitions(
        self: &Arc<Self>,
        topic: &str,
        wait: Duration,
    ) -> Result<usize, FlowError> {
        let this = self.clone();
        let name = topic.to_owned();
        let metadata = tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer as _;
            this.producer
                .client()
                .fetch_metadata(Some(&name), wait)
                .map(|m| {
                    m.topics()
                        .first()
                        .map(|t| (t.error(), t.partitions().len()))
                })
        })
        .await
        .map_err(|e| kafka_error(500, format!("the metadata request failed: {e}")))?;
        let found = match metadata {
            Ok(found) => found,
            Err(e) => {
                return Err(kafka_error(
                    502,
                    format!(
                        "cannot reach Kafka at {} within {}: {e}",
                        self.brokers,
                        HumanDuration(wait)
                    ),
                ));
            }
        };
        let partitions = match found {
            Some((None, partitions)) => partitions,
            Some((Some(code), _)) => {
                let code = RDKafkaErrorCode::from(code);
                return Err(refused(&code, topic, &self.brokers));
            }
            None => {
                return Err(refused(
                    &RDKafkaErrorCode::UnknownTopic,
                    topic,
                    &self.brokers,
                ));
            }
        };
        self.known_topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), partitions);
        Ok(partitions)
    }
}

/// The error of a record or topic the cluster refused.
fn refused(code: &RDKafkaErrorCode, topic: &str, brokers: &str) -> FlowError {
    use RDKafkaErrorCode as C;
    match code {
        C::UnknownTopicOrPartition | C::UnknownTopic => kafka_error(
            404,
            format!("there is no topic '{topic}' on the Kafka cluster at {brokers}"),
        ),
        C::UnknownPartition => kafka_error(400, format!("topic '{topic}' has no such partition")),
        C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed => kafka_error(
            403,
            format!("the cluster does not allow writing to topic '{topic}'"),
        ),
        C::Authentication | C::SaslAuthenticationFailed => kafka_error(
            401,
            format!("the Kafka cluster at {brokers} refused the login"),
        ),
        C::MessageSizeTooLarge | C::InvalidMessageSize => kafka_error(
            413,
            format!("the record is larger than topic '{topic}' takes"),
        ),
        C::MessageTimedOut | C::RequestTimedOut | C::OperationTimedOut => kafka_error(
            504,
            format!("the Kafka cluster at {brokers} did not take the record in time"),
        ),
        other => kafka_error(502, format!("producing to '{topic}' failed: {other}")),
    }
}

impl Step for KafkaStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let cluster = self.cluster(cx, &message)?;
            let topic = cx.render(&self.topic, &message)?.trim().to_owned();
            if topic.is_empty() || topic.contains(char::is_whitespace) {
                return Err(bad_input("kafka", format!("'{topic}' is not a topic name")));
            }
            let key = self.key(cx, &message)?;
            let value = self.value.text(cx, &message)?;
            let headers = self.headers(cx, &message)?;
            let producer = self.producer(&cluster)?;
            let checked = producer
                .check_topic(&topic, self.partition, self.delivery_timeout)
                .await;
            if let Err(e) = checked {
                if e.status == 502 {
                    // A producer that never reached its cluster starts
                    // afresh next time (the brokers may have moved).
                    self.forget(&cluster);
                }
                return Err(e);
            }
            let mut record = FutureRecord::<str, str>::to(&topic).payload(value.as_str());
            if let Some(key) = &key {
                record = record.key(key.as_str());
            }
            if let Some(headers) = headers {
                record = record.headers(headers);
            }
            if let Some(p) = self.partition {
                record = record.partition(p);
            }
            match producer.producer.send(record, self.delivery_timeout).await {
                Ok(delivery) => Ok(Arc::new(json!({
                    "topic": topic,
                    "partition": delivery.partition,
                    // With `acks: none` the cluster never says.
                    "offset": (delivery.offset >= 0).then_some(delivery.offset),
                }))),
                Err((e, _)) => {
                    if let Some(code) = e.rdkafka_error_code() {
                        if matches!(
                            code,
                            RDKafkaErrorCode::UnknownTopicOrPartition
                                | RDKafkaErrorCode::UnknownTopic
                        ) {
                            producer
                                .known_topics
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .remove(&topic);
                        }
                        if code == RDKafkaErrorCode::Fatal {
                            self.forget(&cluster);
                        }
                        return Err(refused(&code, &topic, &cluster.brokers));
                    }
                    Err(send_error(&e, &topic))
                }
            }
        })
    }
}

fn send_error(e: &KafkaError, topic: &str) -> FlowError {
    kafka_error(502, format!("producing to '{topic}' failed: {e}"))
}
