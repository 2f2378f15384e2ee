//! The reference server: the benchmark pipeline's work (`POST /echo`) written
//! by hand on axum, with nothing of the platform around it.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The header that carries the API key, as the benchmark pipeline's gateway expects it.
const API_KEY_HEADER: &str = "apikey";

/// The router with `POST /echo`; requests must carry `apikey: KEY` when `key` is set.
pub fn router(key: Option<String>) -> Router {
    Router::new()
        .route("/echo", post(echo))
        .with_state(Arc::new(EchoState { key }))
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then lets open
/// requests finish.
pub async fn serve(
    listener: TcpListener,
    key: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(key))
        .with_graceful_shutdown(shutdown)
        .await
}

struct EchoState {
    key: Option<String>,
}

async fn echo(State(state): State<Arc<EchoState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(key) = &state.key {
        let given = headers.get(API_KEY_HEADER).map(|v| v.as_bytes());
        if given != Some(key.as_bytes()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong apikey header",
            );
        }
    }
    let mut message: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_json",
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    let Some(object) = message.as_object_mut() else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "the body must be a JSON object",
        );
    };
    object.insert("greeting".into(), Value::from("hello"));
    let above = object
        .get("n")
        .and_then(Value::as_f64)
        .is_some_and(|n| n > 10.0);
    object.insert(
        "branch".into(),
        Value::from(if above { "gt10" } else { "le10" }),
    );
    axum::Json(message).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}
