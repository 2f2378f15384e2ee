//! A server in the test's process: the router answers requests through
//! `oneshot`, on an in-memory store and a fresh data directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use sluice_server::{AppState, Server, ServerConfig};
use sluice_store::SqliteStore;
use tower::ServiceExt;

pub const ADMIN: &str = "slt_test-admin-token";

/// A fresh directory under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "sluice-server-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub struct Harness {
    pub state: AppState,
    pub router: sluice_server::Front,
    /// Kept so its background jobs and data directory outlive the test.
    pub _server: Option<Server>,
    pub _dir: TempDir,
}

/// An answer: status, headers and the body as JSON (or a JSON string of
/// the text when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn test_config(dir: &TempDir) -> ServerConfig {
    ServerConfig {
        data_dir: dir.0.clone(),
        admin_token: Some(ADMIN.to_owned()),
        event_poll: Duration::from_millis(50),
        drain_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    }
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = TempDir::new("h");
        let mut config = test_config(&dir);
        adjust(&mut config);
        let store = SqliteStore::in_memory().await.expect("store");
        let server = Server::build(config, Arc::new(store))
            .await
            .expect("server");
        Harness {
            state: server.state.clone(),
            router: server.router(),
            _server: Some(server),
            _dir: dir,
        }
    }

    /// Stops this server (background jobs, writer) and starts a new one on
    /// the same store and data directory, as a process restart would.
    pub async fn restart(mut self) -> Harness {
        let store = self.state.store.clone();
        if let Some(server) = self._server.take() {
            server.shutdown().await;
        }
        let config = test_config(&self._dir);
        let server = Server::build(config, store).await.expect("server");
        Harness {
            state: server.state.clone(),
            router: server.router(),
            _server: Some(server),
            _dir: std::mem::replace(&mut self._dir, TempDir(PathBuf::new())),
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// An API call with a bearer token and an optional JSON body.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.expect("request")).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.api(method, path, Some(ADMIN), body).await
    }

    /// A gateway call with an optional `apikey` header and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("apikey", key);
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.expect("request")).await
    }

    pub async fn realm(&self, name: &str) {
        let r = self
            .admin(Method::POST, "/realms", Some(json!({"name": name})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    }

    /// Saves a pipeline from YAML text as `token`; the answer.
    pub async fn save_as(&self, token: &str, realm: &str, yaml: &str) -> Reply {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/v1/realms/{realm}/pipelines"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/yaml")
            .body(Body::from(yaml.to_owned()))
            .expect("request");
        self.send(request).await
    }

    /// Saves a pipeline as the admin and checks it was accepted.
    pub async fn save(&self, realm: &str, yaml: &str) -> Value {
        let r = self.save_as(ADMIN, realm, yaml).await;
        assert!(r.status.is_success(), "{r:?}");
        r.body
    }

    /// Deploys the newest version with extra settings.
    pub async fn deploy(&self, realm: &str, env: &str, pipeline: &str, extra: Value) -> Value {
        let mut body = json!({"pipeline": pipeline});
        if let Value::Object(map) = extra {
            for (k, v) in map {
                body[k] = v;
            }
        }
        let r = self
            .admin(
                Method::POST,
                &format!("/realms/{realm}/environments/{env}/deployments"),
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        r.body
    }

    /// Makes a consumer allowed to call `pipelines`; its key.
    pub async fn consumer(&self, realm: &str, env: &str, name: &str, pipelines: &[&str]) -> String {
        self.consumer_with(realm, env, json!({"name": name, "pipelines": pipelines}))
            .await
    }

    pub async fn consumer_with(&self, realm: &str, env: &str, body: Value) -> String {
        let r = self
            .admin(
                Method::POST,
                &format!("/realms/{realm}/environments/{env}/consumers"),
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        r.body["key"].as_str().expect("key").to_owned()
    }

    /// Makes a user with `grants`; their token.
    pub async fn user(&self, name: &str, grants: Value) -> String {
        let r = self
            .admin(
                Method::POST,
                "/users",
                Some(json!({"name": name, "grants": grants})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        let r = self
            .admin(
                Method::POST,
                &format!("/users/{name}/tokens"),
                Some(json!({"description": "test"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        r.body["token"].as_str().expect("token").to_owned()
    }

    /// Waits until the writer stored every record handed to it.
    pub async fn flush(&self) {
        self.state.runtime.writer.flush().await;
    }

    /// The realm's executions matching `query` (e.g. `pipeline=echo`).
    pub async fn executions(&self, realm: &str, query: &str) -> Vec<Value> {
        self.flush().await;
        let r = self
            .admin(
                Method::GET,
                &format!("/realms/{realm}/executions?{query}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        r.body["items"].as_array().cloned().unwrap_or_default()
    }
}

/// Polls `check` every 20 ms until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The echo pipeline of the engine's benchmark: five steps answering the
/// message with a greeting and a branch.
pub const ECHO: &str = r#"
name: echo
trigger:
  type: http
  methods: [POST]
steps:
  - type: set
    values:
      greeting: hello
  - type: choice
    when:
      - condition: "{{ message.body.n > 10 }}"
        steps:
          - type: set
            values: { branch: gt10 }
    otherwise:
      - type: set
        values: { branch: le10 }
  - type: log
    message: "echo {{ message.body.n }} {{ message.branch }}"
  - type: response
    status: 200
    body:
      n: "{{ message.body.n }}"
      greeting: "{{ message.greeting }}"
      branch: "{{ message.branch }}"
"#;
