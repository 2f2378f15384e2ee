//! What the trigger tests share: a handler that records what it runs and
//! fails or hangs on command, a worker that can be killed like a process
//! (its runtime and every socket dropped at once), and a TCP proxy that
//! can block a broker and let it through again.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use sluice_triggers::{Consumer, Handler, Outcome, Source, consume};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// The URL of a service the tests need, or `None` after printing why the
/// test is skipped.
pub fn service_url(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipped: set {variable}");
            None
        }
    }
}

/// A unique name for queues, subjects and topics of one test.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

/// One run of the pipeline as the handler saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub message: Value,
    pub attempt: u32,
    pub redelivered: bool,
}

/// What the handler does with a message: pick by the message body.
pub type Behaviour = dyn Fn(&Value) -> Act + Send + Sync;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Succeed,
    Fail,
    /// Never finishes (the worker is killed meanwhile).
    Hang,
}

/// Records every run and every dead letter.
pub struct Recorder {
    pub seen: Mutex<Vec<Seen>>,
    pub dead: Mutex<Vec<(Value, Value, u32)>>,
    behaviour: Box<Behaviour>,
    pub started: Notify,
    pub dead_letter_fails: AtomicBool,
}

impl Recorder {
    pub fn new(behaviour: impl Fn(&Value) -> Act + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            dead: Mutex::new(Vec::new()),
            behaviour: Box::new(behaviour),
            started: Notify::new(),
            dead_letter_fails: AtomicBool::new(false),
        })
    }

    pub fn succeeding() -> Arc<Self> {
        Self::new(|_| Act::Succeed)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn dead(&self) -> Vec<(Value, Value, u32)> {
        self.dead.lock().expect("lock").clone()
    }

    /// How many runs ended well per body (bodies must be distinct).
    pub fn done_bodies(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for s in self.seen() {
            if (self.behaviour)(&s.message) == Act::Succeed {
                *counts.entry(s.message["body"].to_string()).or_insert(0) += 1;
            }
        }
        counts
    }
}

#[async_trait]
impl Handler for Recorder {
    async fn run(&self, message: Value, attempt: u32, redelivered: bool) -> Outcome {
        let act = (self.behaviour)(&message);
        self.seen.lock().expect("lock").push(Seen {
            message,
            attempt,
            redelivered,
        });
        self.started.notify_waiters();
        match act {
            Act::Succeed => Outcome::Done,
            Act::Fail => {
                Outcome::Failed(json!({"code": "thrown", "message": "it failed", "status": 500}))
            }
            Act::Hang => std::future::pending().await,
        }
    }

    async fn dead_letter(
        &self,
        message: &Value,
        error: &Value,
        attempts: u32,
    ) -> Result<(), String> {
        if self.dead_letter_fails.load(Ordering::Relaxed) {
            return Err("the store is down".into());
        }
        self.dead
            .lock()
            .expect("lock")
            .push((message.clone(), error.clone(), attempts));
        Ok(())
    }
}

/// A consumer running on its own runtime and thread, so that killing it
/// drops every task and socket at once, as a killed process would.
pub struct Worker {
    stop: watch::Sender<bool>,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    pub fn start(
        source: Arc<dyn Source>,
        handler: Arc<dyn Handler>,
        concurrency: usize,
        max_deliveries: u32,
    ) -> Worker {
        let (stop, stop_rx) = watch::channel(false);
        let (kill, kill_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let consumer = Consumer {
                name: "test".into(),
                source,
                concurrency,
                max_deliveries,
                retry_base: Duration::from_millis(50),
                handler,
            };
            let consuming = rt.spawn(consume(consumer, stop_rx));
            // Either the consumer ends (stopped) or the worker is killed.
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            rt.spawn(async move {
                let _ = consuming.await;
                let _ = done_tx.send(());
            });
            loop {
                if kill_rx.try_recv().is_ok() || done_rx.try_recv().is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            rt.shutdown_background();
        });
        Worker {
            stop,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// Drops the worker's runtime with everything in it, unsettled
    /// messages included.
    pub fn kill(mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Asks the consumer to stop and waits until it settled what it had.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy in front of a broker: `block` closes every connection and
/// refuses new ones (a broker that went away), `open` lets them through.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<watch::Sender<bool>>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (open, _) = watch::channel(true);
        let open = Arc::new(open);
        let target = target.to_owned();
        let state = open.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !*state.borrow() {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let mut closed = state.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = closed.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Proxy { addr, open }
    }

    pub fn block(&self) {
        self.open.send_replace(false);
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }
}
