//! What steps reach outside the engine through: sessions, object
//! collections, events and other pipelines. The CLI uses the in-memory
//! versions here; the server backs them with its store and bus.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::FlowError;

/// A boxed future, for object-safe async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Key-value session data with time-to-live and locks.
pub trait SessionStore: Send + Sync {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Value>, FlowError>>;
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), FlowError>>;
    /// Whether the key was there.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, FlowError>>;
    /// Takes the lock `key` for `owner` unless another owner holds it; true when taken.
    fn lock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, FlowError>>;
    /// Releases the lock if `owner` holds it; true when released.
    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str)
    -> BoxFuture<'a, Result<bool, FlowError>>;
}

/// One operation on an object collection.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectOp {
    /// Stores a new document (its `_id` is generated when missing); conflict if the id exists.
    Insert {
        document: Value,
    },
    /// Stores the document under `id`, replacing any.
    Upsert {
        id: String,
        document: Value,
    },
    Get {
        id: String,
    },
    /// Documents containing `filter` (a subset match), in insertion order.
    Find {
        filter: Value,
        limit: Option<usize>,
        skip: usize,
    },
    /// Merges `set` into matching documents (the first, or all when `many`).
    Update {
        filter: Value,
        set: Value,
        many: bool,
    },
    Delete {
        filter: Value,
        many: bool,
    },
    Count {
        filter: Value,
    },
}

/// Collections of JSON documents.
pub trait ObjectStore: Send + Sync {
    /// Runs `op` on `collection`; the result is as documented for the `object-store` step.
    fn execute<'a>(
        &'a self,
        collection: &'a str,
        op: ObjectOp,
    ) -> BoxFuture<'a, Result<Value, FlowError>>;
}

/// Where `publish` steps send events.
pub trait EventPublisher: Send + Sync {
    fn publish<'a>(&'a self, name: &'a str, payload: Value)
    -> BoxFuture<'a, Result<(), FlowError>>;
}

/// A request to run another pipeline.
#[derive(Clone)]
pub struct CallRequest {
    pub pipeline: String,
    pub major: Option<u32>,
    pub input: Value,
    /// Fire and forget: answer `{executionKey}` at once.
    pub detached: bool,
    /// How many calls deep this one is (loops are cut off).
    pub depth: u32,
    pub services: Services,
    pub globals: Arc<Value>,
    pub accounts: Arc<Value>,
}

/// Runs other pipelines for `call` steps.
pub trait PipelineCaller: Send + Sync {
    fn call(&self, request: CallRequest) -> BoxFuture<'static, Result<Value, FlowError>>;
}

/// Everything steps can reach outside the message.
#[derive(Clone)]
pub struct Services {
    pub sessions: Arc<dyn SessionStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub events: Arc<dyn EventPublisher>,
    pub pipelines: Arc<dyn PipelineCaller>,
}

impl Services {
    /// In-memory sessions and objects, events printed by `events`, no calls.
    pub fn in_memory(events: Arc<dyn EventPublisher>) -> Self {
        Services {
            sessions: Arc::new(MemorySessions::default()),
            objects: Arc::new(MemoryObjects::default()),
            events,
            pipelines: Arc::new(NoPipelines),
        }
    }
}

impl Default for Services {
    fn default() -> Self {
        Services::in_memory(Arc::new(CollectedEvents::default()))
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

/// A poisoned lock only means another step panicked mid-update of a map
/// whose entries are each written whole; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sessions in memory, with expiry.
#[derive(Default)]
pub struct MemorySessions {
    entries: Mutex<HashMap<String, (Value, Option<Instant>)>>,
    locks: Mutex<HashMap<String, (String, Instant)>>,
}

impl SessionStore for MemorySessions {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Value>, FlowError>> {
        let mut entries = lock(&self.entries);
        let now = Instant::now();
        let value = match entries.get(key) {
            Some((_, Some(expiry))) if *expiry <= now => {
                entries.remove(key);
                None
            }
            Some((v, _)) => Some(v.clone()),
            None => None,
        };
        ready(Ok(value))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), FlowError>> {
        let expiry = ttl.map(|t| Instant::now() + t);
        lock(&self.entries).insert(key.to_owned(), (value, expiry));
        ready(Ok(()))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, FlowError>> {
        ready(Ok(lock(&self.entries).remove(key).is_some()))
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, FlowError>> {
        let mut locks = lock(&self.locks);
        let now = Instant::now();
        let taken = match locks.get(key) {
            Some((holder, expiry)) if *expiry > now && holder != owner => false,
            _ => {
                locks.insert(key.to_owned(), (owner.to_owned(), now + ttl));
                true
            }
        };
        ready(Ok(taken))
    }

    fn unlock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<bool, FlowError>> {
        let mut locks = lock(&self.locks);
        let released = match locks.get(key) {
            Some((holder, _)) if holder == owner => {
                locks.remove(key);
                true
            }
            _ => false,
        };
        ready(Ok(released))
    }
}

/// Object collections in memory.
#[derive(Default)]
pub struct MemoryObjects {
    collections: Mutex<HashMap<String, Vec<(String, Value)>>>,
}

/// Whether `document` contains `filter`: every key of an object filter is
/// present with a matching value, arrays and scalars compare equal.
pub fn subset_match(document: &Value, filter: &Value) -> bool {
    match (document, filter) {
        (Value::Object(d), Value::Object(f)) => f
            .iter()
            .all(|(k, fv)| d.get(k).is_some_and(|dv| subset_match(dv, fv))),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => document == filter,
    }
}

fn conflict(id: &str) -> FlowError {
    FlowError::new(
        "conflict",
        409,
        format!("a document with _id '{id}' already exists"),
    )
}

impl MemoryObjects {
    fn run(&self, collection: &str, op: ObjectOp) -> Result<Value, FlowError> {
        let mut collections = lock(&self.collections);
        let docs = collections.entry(collection.to_owned()).or_default();
        Ok(match op {
            ObjectOp::Insert { mut document } => {
                let id = document_id(&mut document)?;
                if docs.iter().any(|(k, _)| *k == id) {
                    return Err(conflict(&id));
                }
                docs.push((id, document.clone()));
                document
            }
            ObjectOp::Upsert { id, mut document } => {
                if let Value::Object(map) = &mut document {
                    map.insert("_id".into(), Value::String(id.clone()));
                }
                match docs.iter_mut().find(|(k, _)| *k == id) {
                    Some(slot) => slot.1 = document.clone(),
                    None => docs.push((id, document.clone())),
                }
                document
            }
            ObjectOp::Get { id } => docs
                .iter()
                .find(|(k, _)| *k == id)
                .map_or(Value::Null, |(_, d)| d.clone()),
            ObjectOp::Find {
                filter,
                limit,
                skip,
            } => Value::Array(
                docs.iter()
                    .filter(|(_, d)| subset_match(d, &filter))
                    .skip(skip)
                    .take(limit.unwrap_or(usize::MAX))
                    .map(|(_, d)| d.clone())
                    .collect(),
            ),
            ObjectOp::Update { filter, set, many } => {
                let mut matched = 0u64;
                for (_, doc) in docs.iter_mut().filter(|(_, d)| subset_match(d, &filter)) {
                    matched += 1;
                    if let (Value::Object(d), Value::Object(s)) = (doc, &set) {
                        for (k, v) in s {
                            if k != "_id" {
                                d.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    if !many {
                        break;
                    }
                }
                serde_json::json!({"matched": matched})
            }
            ObjectOp::Delete { filter, many } => {
                let before = docs.len();
                let mut removed = 0usize;
                docs.retain(|(_, d)| {
                    if (many || removed == 0) && subset_match(d, &filter) {
                        removed += 1;
                        false
                    } else {
                        true
                    }
                });
                serde_json::json!({"deleted": before - docs.len()})
            }
            ObjectOp::Count { filter } => {
                serde_json::json!({"count": docs.iter().filter(|(_, d)| subset_match(d, &filter)).count()})
            }
        })
    }
}

/// The `_id` of a document, generated (UUIDv7) when missing.
fn document_id(document: &mut Value) -> Result<String, FlowError> {
    let Value::Object(map) = document else {
        return Err(FlowError::new(
            "validation",
            400,
            "a document must be a JSON object",
        ));
    };
    Ok(match map.get("_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(FlowError::new(
                "validation",
                400,
                "_id must be a string or a number",
            ));
        }
        None => {
            let id = uuid::Uuid::now_v7().to_string();
            map.insert("_id".into(), Value::String(id.clone()));
            id
        }
    })
}

impl ObjectStore for MemoryObjects {
    fn execute<'a>(
        &'a self,
        collection: &'a str,
        op: ObjectOp,
    ) -> BoxFuture<'a, Result<Value, FlowError>> {
        ready(self.run(collection, op))
    }
}

/// Keeps published events in memory (for tests and `sluice run`).
#[derive(Default)]
pub struct CollectedEvents {
    events: Mutex<Vec<(String, Value)>>,
}

impl CollectedEvents {
    /// The events published so far, as `(name, payload)`.
    pub fn take(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut *lock(&self.events))
    }
}

impl EventPublisher for CollectedEvents {
    fn publish<'a>(
        &'a self,
        name: &'a str,
        payload: Value,
    ) -> BoxFuture<'a, Result<(), FlowError>> {
        lock(&self.events).push((name.to_owned(), payload));
        ready(Ok(()))
    }
}

/// A caller for contexts where no other pipeline can be reached.
pub struct NoPipelines;

impl PipelineCaller for NoPipelines {
    fn call(&self, request: CallRequest) -> BoxFuture<'static, Result<Value, FlowError>> {
        ready(Err(FlowError::new(
            "not_found",
            404,
            format!("pipeline '{}' cannot be called here", request.pipeline),
        )))
    }
}
