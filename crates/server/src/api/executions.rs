//! Executions: search, one with its log lines and trace, re-run; and the
//! dead letters of the event queue.

use super::{Path, Query};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_engine::Execution;
use sluice_store::{ExecutionFilter, ExecutionRecord, QueuedEvent};

use super::{Listing, PageQuery, audit};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::runtime::{RunRequest, now_ms};
use crate::state::AppState;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExecutionQuery {
    environment: Option<String>,
    pipeline: Option<String>,
    status: Option<String>,
    key: Option<String>,
    /// Text in the input, output, error or a log line.
    q: Option<String>,
    /// RFC 3339 time or Unix milliseconds.
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeadQuery {
    environment: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

fn time(name: &str, text: &str) -> ApiResult<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name}='{text}' is not a time: use RFC 3339 (2026-01-31T12:00:00Z) or Unix milliseconds"
            ))
        })
}

/// A stored payload as JSON when it is whole, else as the cut text.
fn payload(text: &Option<String>) -> Value {
    match text {
        None => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
    }
}

/// An execution record as the API shows it.
pub fn record_view(r: &ExecutionRecord) -> Value {
    json!({
        "key": r.key,
        "realm": r.realm,
        "environment": r.environment,
        "pipeline": r.pipeline,
        "version": format!("{}.{}", r.major, r.minor),
        "status": r.status,
        "trigger": r.trigger,
        "startedAt": chrono::DateTime::from_timestamp_millis(r.started_at).map(|t| t.to_rfc3339()),
        "durationMs": r.duration_us as f64 / 1000.0,
        "input": payload(&r.input),
        "output": payload(&r.output),
        "error": r.error,
    })
}

/// What a run by hand answers.
pub fn outcome(execution: &Execution) -> Value {
    let mut out = json!({
        "executionKey": execution.key,
        "durationMs": execution.duration.as_secs_f64() * 1000.0,
        "logs": execution.logs,
    });
    match (&execution.result, &execution.response) {
        (Ok(_), Some(r)) => {
            out["status"] = json!("ok");
            out["output"] = execution
                .mask
                .value(&json!({"status": r.status, "headers": r.headers, "body": r.body}));
        }
        (Ok(o), None) => {
            out["status"] = json!("ok");
            out["output"] = execution.mask.value(o);
        }
        (Err(e), _) => {
            out["status"] = json!(if e.code == "timeout" {
                "timeout"
            } else {
                "error"
            });
            out["error"] = execution.mask.value(&e.to_value());
        }
    }
    out
}

pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
    Query(q): Query<ExecutionQuery>,
) -> ApiResult<Json<Listing<Value>>> {
    who.require(&realm, q.environment.as_deref(), Permission::Read)?;
    let page = PageQuery {
        limit: q.limit,
        offset: q.offset,
    }
    .page()?;
    if let Some(status) = &q.status
        && !["ok", "error", "timeout", "rejected"].contains(&status.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "status '{status}' is not one of ok, error, timeout, rejected"
        )));
    }
    let filter = ExecutionFilter {
        realm,
        environment: q.environment,
        pipeline: q.pipeline,
        status: q.status,
        key: q.key,
        text: q.q.filter(|t| !t.is_empty()),
        from: q.from.as_deref().map(|t| time("from", t)).transpose()?,
        to: q.to.as_deref().map(|t| time("to", t)).transpose()?,
        page,
    };
    let items = state.store.list_executions(&filter).await?;
    Ok(Json(Listing::new(
        items.iter().map(record_view).collect(),
        page,
    )))
}

pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    who.require(&realm, None, Permission::Read)?;
    let Some(record) = state.store.get_execution(&realm, &key).await? else {
        return Err(ApiError::not_found(format!(
            "execution '{key}' not found in realm '{realm}' (records are written within a second, and kept for the environment's retention)"
        )));
    };
    let mut view = record_view(&record);
    view["logs"] = json!(record.logs);
    view["trace"] = record
        .trace
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    Ok(Json(view))
}

pub async fn rerun(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    who.require(&realm, None, Permission::Read)?;
    let Some(record) = state.store.get_execution(&realm, &key).await? else {
        return Err(ApiError::not_found(format!(
            "execution '{key}' not found in realm '{realm}'"
        )));
    };
    who.require(&realm, Some(&record.environment), Permission::ExecutionsRun)?;
    let input: Value = record
        .input
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| {
            ApiError::conflict(
                "the stored input was cut (too large) or masked; it cannot be re-run",
            )
        })?;
    let Some(deployed) =
        state
            .runtime
            .find(&realm, &record.environment, &record.pipeline, record.major)
    else {
        return Err(ApiError::not_found(format!(
            "'{}' v{} is no longer deployed in '{}'",
            record.pipeline, record.major, record.environment
        )));
    };
    let execution = state
        .runtime
        .run(&deployed, RunRequest::new(input, "rerun"))
        .await
        .map_err(|r| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", r.message()))?;
    audit(
        &state,
        &who,
        Some(&realm),
        "rerun",
        format!("executions/{key}"),
        json!({"executionKey": execution.key}),
    )
    .await;
    Ok(Json(outcome(&execution)))
}

pub async fn dead_letters(
    State(state): State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
    Query(q): Query<DeadQuery>,
) -> ApiResult<Json<Listing<QueuedEvent>>> {
    who.require(&realm, q.environment.as_deref(), Permission::Read)?;
    let page = PageQuery {
        limit: q.limit,
        offset: q.offset,
    }
    .page()?;
    Ok(Json(Listing::new(
        state
            .store
            .list_dead_events(&realm, q.environment.as_deref(), page)
            .await?,
        page,
    )))
}

pub async fn redrive(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    who.require(&realm, None, Permission::ExecutionsRun)?;
    state.store.redrive_event(&realm, id, now_ms()).await?;
    state.runtime.events.ready.notify_one();
    audit(
        &state,
        &who,
        Some(&realm),
        "redrive",
        format!("dead-letters/{id}"),
        json!({}),
    )
    .await;
    Ok(StatusCode::ACCEPTED)
}
