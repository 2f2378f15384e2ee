//! The Sluice server: control-plane API, gateway, runtime, triggers,
//! execution records, metrics — everything `sluice serve` runs in one
//! process over a [`Store`]. It owns HTTP and the wiring of the roles; it
//! must not reach into a store's tables (only the trait) nor into the
//! engine's internals (only plans and executions).

mod api;
mod auth;
mod config;
mod consumers;
mod error;
mod events;
mod gateway;
mod metrics;
mod retention;
mod routes;
mod runtime;
mod scheduler;
mod secrets;
mod state;
mod writer;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sluice_store::{Grant, Role, SqliteStore, Store, Token, User};

pub use api::openapi::ROUTES as API_ROUTES;
pub use config::ServerConfig;
pub use error::ApiError;
pub use metrics::Metrics;
pub use runtime::{Runtime, compile_definition};
pub use secrets::{MasterKey, SecretError, hash_secret};
pub use state::AppState;

/// What can stop a server from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] sluice_store::Error),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
}

/// The admin user made on first start.
pub const ADMIN_USER: &str = "admin";

/// A server built and ready to serve.
pub struct Server {
    pub state: AppState,
    /// The admin token when this start generated one (print it once).
    pub new_admin_token: Option<String>,
    writer_task: tokio::task::JoinHandle<()>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Opens the store in `config.data_dir` and builds the server on it.
    pub async fn open(config: ServerConfig) -> Result<Self, ServerError> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let store = SqliteStore::open(&dir.join("sluice.db")).await?;
        Self::build(config, Arc::new(store)).await
    }

    /// Builds the server on `store`: the admin, the master key, the
    /// runtime with every stored deployment serving, the background jobs.
    pub async fn build(config: ServerConfig, store: Arc<dyn Store>) -> Result<Self, ServerError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| ServerError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let master = MasterKey::load(config.master_key.as_deref(), &dir)?;
        let new_admin_token = bootstrap_admin(store.as_ref(), &config).await?;
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::default());
        let events = Arc::new(events::EventQueue::default());
        let (writer, writer_task) = writer::Writer::start(
            store.clone(),
            metrics.clone(),
            config.writer_memory,
            events.clone(),
        );
        let runtime = Runtime::new(
            store.clone(),
            sluice_connectors::catalog(),
            config.clone(),
            metrics,
            writer,
            events,
            master,
        );
        let state = AppState {
            store: store.clone(),
            runtime: runtime.clone(),
            config: config.clone(),
            keys: Arc::default(),
            limits: Arc::default(),
            ready: Arc::new(AtomicBool::new(false)),
        };
        load_deployments(&state).await?;
        store.release_event_leases(runtime::now_ms()).await?;
        let background = vec![
            tokio::spawn(events::dispatch(runtime.clone())),
            tokio::spawn(scheduler::run(runtime.clone())),
            tokio::spawn(consumers::run(runtime.clone())),
            tokio::spawn(retention::run(runtime.clone())),
        ];
        state.ready.store(true, Ordering::Release);
        Ok(Server {
            state,
            new_admin_token,
            writer_task,
            background,
        })
    }

    /// What answers every request: the gateway and the router of every role.
    pub fn router(&self) -> Front {
        Front {
            router: app(self.state.clone()),
            state: self.state.clone(),
        }
    }

    /// Serves on `listener` until `shutdown` resolves, then drains: no new
    /// executions, in-flight ones get `drain_timeout`, records are written.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let router = self.router();
        let runtime = self.state.runtime.clone();
        let drain = self.state.config.drain_timeout;
        let ready = self.state.ready.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        // Answers go out at once, not held back for a delayed ACK.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY could not be set");
            }
        });
        let served = tokio::spawn(async move {
            axum::serve(listener, axum::ServiceExt::into_make_service(router))
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await
        });
        shutdown.await;
        ready.store(false, Ordering::Release);
        tracing::info!(
            in_flight = runtime.in_flight(),
            "shutting down: draining executions"
        );
        // Connections stay open while executions drain, so their answers go out.
        runtime.begin_drain();
        if !runtime.drained(drain).await {
            tracing::warn!(
                in_flight = runtime.in_flight(),
                "drain time is up; stopping anyway"
            );
        }
        let _ = stop_tx.send(());
        let result = match tokio::time::timeout(drain, served).await {
            Ok(Ok(Ok(()))) | Err(_) => Ok(()),
            Ok(Ok(Err(e))) => Err(ServerError::Serve(e)),
            Ok(Err(e)) => Err(ServerError::Serve(std::io::Error::other(e))),
        };
        self.shutdown().await;
        result
    }

    /// Stops the background jobs and writes the queued execution records
    /// and acknowledgements.
    pub async fn shutdown(self) {
        for task in &self.background {
            task.abort();
        }
        self.state.runtime.writer.stop();
        let _ = self.writer_task.await;
    }
}

/// Makes the admin user on first start, and registers `SLUICE_ADMIN_TOKEN`
/// when given; the generated token, when one was made.
async fn bootstrap_admin(
    store: &dyn Store,
    config: &ServerConfig,
) -> Result<Option<String>, ServerError> {
    let now = runtime::now_ms();
    let first_start = store.get_user(ADMIN_USER).await?.is_none()
        && store
            .list_users(sluice_store::Page {
                limit: 1,
                offset: 0,
            })
            .await?
            .is_empty();
    if first_start {
        store
            .create_user(&User {
                name: ADMIN_USER.into(),
                grants: vec![Grant {
                    realm: "*".into(),
                    role: Role::Admin,
                    environment: None,
                }],
                created_at: now,
            })
            .await?;
    }
    let (secret, generated) = match &config.admin_token {
        Some(token) => (token.clone(), false),
        None if first_start => (secrets::new_secret("slt_")?, true),
        None => return Ok(None),
    };
    let hash = hash_secret(&secret);
    if store.find_token(&hash).await?.is_none() && store.get_user(ADMIN_USER).await?.is_some() {
        store
            .add_token(&Token {
                id: secrets::secret_id(&secret),
                user: ADMIN_USER.into(),
                hash,
                description: "admin token".into(),
                created_at: now,
            })
            .await?;
    }
    if generated {
        let path = config.data_dir.join("admin-token");
        secrets::write_private(&path, &secret).map_err(|source| ServerError::DataDir {
            path: path.display().to_string(),
            source,
        })?;
        return Ok(Some(secret));
    }
    Ok(None)
}

/// Starts every stored deployment again. One that no longer compiles is
/// logged and skipped, so the others serve.
async fn load_deployments(state: &AppState) -> Result<(), ServerError> {
    for deployment in state.store.all_deployments().await? {
        let version = state
            .store
            .get_version(
                &deployment.realm,
                &deployment.pipeline,
                deployment.major,
                deployment.minor,
            )
            .await?;
        let Some(version) = version else {
            tracing::error!(pipeline = %deployment.pipeline, "a deployed version is missing");
            continue;
        };
        let source = format!("{} {}.{}", version.name, version.major, version.minor);
        match compile_definition(&source, &version.definition, &state.runtime.catalog) {
            Ok(plan) => {
                state.runtime.start(plan, deployment);
            }
            Err(problems) => {
                tracing::error!(pipeline = %deployment.pipeline, problems = %problems, "a deployment no longer compiles");
            }
        }
    }
    Ok(())
}

/// The server's front: a pipeline call goes straight to the gateway,
/// anything else through the router. (Through the router, a pipeline call
/// was matched against every route, then went to the fallback with a
/// catch-all parameter copied into its extensions: about 2% of a call's
/// instructions.)
#[derive(Clone)]
pub struct Front {
    router: Router,
    state: AppState,
}

type Answer = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<axum::response::Response, Infallible>> + Send>,
>;

impl tower::Service<axum::extract::Request> for Front {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<axum::extract::Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Answer {
        if gateway::is_gateway_path(request.uri().path()) {
            let state = self.state.clone();
            return Box::pin(async move { Ok(gateway::handle_request(state, request).await) });
        }
        Box::pin(tower::Service::call(&mut self.router, request))
    }
}

/// The router over `state`: API, gateway, health and metrics.
pub fn app(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        // Pipelines: /{env}/pipeline/{realm}/v{major}/{name}[/{route…}],
        // read by the gateway itself (it answers "no such route" to the rest).
        .fallback(gateway::handle)
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting or stopping").into_response();
    }
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the store does not answer").into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.runtime.metrics.render(),
    )
}
