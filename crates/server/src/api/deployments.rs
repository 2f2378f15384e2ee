//! Deployments: deploy (and redeploy), status, history, rollback,
//! promote, delete, and running a deployment by hand.

use std::time::Duration;

use super::{Path, Query};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_spec::HumanDuration;
use sluice_store::{Deployment, DeploymentEvent, PipelineVersion};

use super::pipelines::{invalid, parse_version};
use super::{JsonBody, Listing, PageQuery, audit, environment_exists};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::runtime::{RunRequest, compile_definition, now_ms};
use crate::state::AppState;

/// Longest execution time limit (DESIGN: 900s).
const MAX_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Replicas (default 1, or the current deployment's).
    replicas: Option<u32>,
    /// Executions in flight per replica (default 10, or the current deployment's).
    concurrency: Option<u32>,
    /// Execution time limit (default: the trigger's).
    timeout: Option<HumanDuration>,
    cluster: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pipeline: String,
    /// `MAJOR.MINOR`; default the newest version (of `major` when given).
    version: Option<String>,
    major: Option<u32>,
    #[serde(flatten)]
    settings: Settings,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MajorQuery {
    major: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    pipeline: String,
    from: String,
    to: String,
    major: Option<u32>,
    #[serde(flatten)]
    settings: Settings,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// A history entry id; default the entry before the current one.
    to: Option<i64>,
    major: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    #[serde(default)]
    input: Value,
    major: Option<u32>,
}

/// A deployment with what it is doing now.
pub fn view(state: &AppState, d: &Deployment) -> Value {
    let live = state
        .runtime
        .find(&d.realm, &d.environment, &d.pipeline, d.major);
    let status = match &live {
        Some(l) if l.deployment.minor == d.minor => json!({
            "state": "serving",
            "capacity": l.capacity(),
            "running": l.running(),
            "waiting": l.waiting(),
        }),
        _ => json!({"state": "stopped"}),
    };
    let mut out = serde_json::to_value(d).unwrap_or(Value::Null);
    out["version"] = json!(format!("{}.{}", d.major, d.minor));
    out["status"] = status;
    out
}

fn check_settings(s: &Settings) -> ApiResult<()> {
    if let Some(r) = s.replicas
        && !(1..=64).contains(&r)
    {
        return Err(ApiError::bad_request("replicas must be between 1 and 64")
            .with_details(json!({"path": "replicas"})));
    }
    if let Some(c) = s.concurrency
        && !(1..=10_000).contains(&c)
    {
        return Err(
            ApiError::bad_request("concurrency must be between 1 and 10000")
                .with_details(json!({"path": "concurrency"})),
        );
    }
    if let Some(t) = &s.timeout
        && (t.0 > MAX_TIMEOUT || t.0.is_zero())
    {
        return Err(
            ApiError::bad_request("timeout must be more than 0s and at most 900s")
                .with_details(json!({"path": "timeout"})),
        );
    }
    Ok(())
}

/// Makes `version` serve in `env` and records `action` in the history.
async fn deploy_version(
    state: &AppState,
    who: &Principal,
    env: &str,
    version: &PipelineVersion,
    settings: &Settings,
    action: &str,
) -> ApiResult<Deployment> {
    if version.archived {
        return Err(ApiError::conflict(format!(
            "version {}.{} of '{}' is archived; restore it to deploy it",
            version.major, version.minor, version.name
        )));
    }
    let previous = state
        .store
        .get_deployment(&version.realm, env, &version.name, version.major)
        .await?;
    let source = format!("{} {}.{}", version.name, version.major, version.minor);
    let plan = compile_definition(&source, &version.definition, &state.runtime.catalog)
        .map_err(|p| invalid(&p))?;
    let deployment = Deployment {
        realm: version.realm.clone(),
        environment: env.to_owned(),
        pipeline: version.name.clone(),
        major: version.major,
        minor: version.minor,
        replicas: settings
            .replicas
            .or(previous.as_ref().map(|p| p.replicas))
            .unwrap_or(1),
        concurrency: settings
            .concurrency
            .or(previous.as_ref().map(|p| p.concurrency))
            .unwrap_or(10),
        timeout_ms: settings
            .timeout
            .map(|t| u64::try_from(t.0.as_millis()).unwrap_or(u64::MAX))
            .or(previous.as_ref().and_then(|p| p.timeout_ms)),
        cluster: settings
            .cluster
            .clone()
            .or(previous.as_ref().map(|p| p.cluster.clone()))
            .unwrap_or_else(|| "default".to_owned()),
        deployed_at: now_ms(),
        deployed_by: who.user.name.clone(),
    };
    state.store.put_deployment(&deployment, action).await?;
    state.runtime.start(plan, deployment.clone());
    audit(
        state,
        who,
        Some(&deployment.realm),
        action,
        format!("environments/{env}/deployments/{}", deployment.pipeline),
        json!({
            "version": format!("{}.{}", deployment.major, deployment.minor),
            "replicas": deployment.replicas,
            "concurrency": deployment.concurrency,
        }),
    )
    .await;
    Ok(deployment)
}

async fn pick_version(
    state: &AppState,
    realm: &str,
    pipeline: &str,
    version: Option<&str>,
    major: Option<u32>,
) -> ApiResult<PipelineVersion> {
    let found = match version {
        Some(text) => {
            let (major, minor) = parse_version(text)?;
            state
                .store
                .get_version(realm, pipeline, major, minor)
                .await?
        }
        None => {
            // The newest version that is not archived.
            state
                .store
                .list_versions(realm, pipeline)
                .await?
                .into_iter()
                .filter(|v| major.is_none_or(|m| v.major == m))
                .find(|v| !v.archived)
        }
    };
    found.ok_or_else(|| {
        ApiError::not_found(match version {
            Some(v) => format!("version {v} of pipeline '{pipeline}' not found"),
            None => format!("pipeline '{pipeline}' has no deployable version in realm '{realm}'"),
        })
    })
}

pub async fn deploy(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env)): Path<(String, String)>,
    JsonBody(body): JsonBody<DeployRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&realm, Some(&env), Permission::DeploymentsWrite)?;
    environment_exists(&state, &realm, &env).await?;
    check_settings(&body.settings)?;
    let version = pick_version(
        &state,
        &realm,
        &body.pipeline,
        body.version.as_deref(),
        body.major,
    )
    .await?;
    let deployment = deploy_version(&state, &who, &env, &version, &body.settings, "deploy").await?;
    Ok((StatusCode::CREATED, Json(view(&state, &deployment))))
}

pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Listing<Value>>> {
    who.require(&realm, Some(&env), Permission::Read)?;
    let page = q.page()?;
    let items = state
        .store
        .list_deployments(&realm, Some(&env), page)
        .await?;
    let views = items.iter().map(|d| view(&state, d)).collect();
    Ok(Json(Listing::new(views, page)))
}

pub async fn list_realm(
    State(state): State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Listing<Value>>> {
    who.require(&realm, None, Permission::Read)?;
    let page = q.page()?;
    let items = state.store.list_deployments(&realm, None, page).await?;
    let views = items.iter().map(|d| view(&state, d)).collect();
    Ok(Json(Listing::new(views, page)))
}

async fn current(
    state: &AppState,
    realm: &str,
    env: &str,
    pipeline: &str,
    major: Option<u32>,
) -> ApiResult<Deployment> {
    let all = state
        .store
        .list_deployments(
            realm,
            Some(env),
            sluice_store::Page {
                limit: 1000,
                offset: 0,
            },
        )
        .await?;
    all.into_iter()
        .filter(|d| d.pipeline == pipeline && major.is_none_or(|m| d.major == m))
        .max_by_key(|d| d.major)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "pipeline '{pipeline}'{} is not deployed in '{env}'",
                major.map_or_else(String::new, |m| format!(" v{m}"))
            ))
        })
}

pub async fn status(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, pipeline)): Path<(String, String, String)>,
    Query(q): Query<MajorQuery>,
) -> ApiResult<Json<Value>> {
    who.require(&realm, Some(&env), Permission::Read)?;
    let d = current(&state, &realm, &env, &pipeline, q.major).await?;
    Ok(Json(view(&state, &d)))
}

pub async fn remove(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, pipeline)): Path<(String, String, String)>,
    Query(q): Query<MajorQuery>,
) -> ApiResult<StatusCode> {
    who.require(&realm, Some(&env), Permission::DeploymentsWrite)?;
    let d = current(&state, &realm, &env, &pipeline, q.major).await?;
    state
        .store
        .delete_deployment(&realm, &env, &pipeline, d.major, &who.user.name)
        .await?;
    state.runtime.stop(&realm, &env, &pipeline, d.major);
    audit(
        &state,
        &who,
        Some(&realm),
        "delete",
        format!("environments/{env}/deployments/{pipeline}"),
        json!({"major": d.major}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn history(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, pipeline)): Path<(String, String, String)>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Listing<DeploymentEvent>>> {
    who.require(&realm, Some(&env), Permission::Read)?;
    let page = q.page()?;
    Ok(Json(Listing::new(
        state
            .store
            .deployment_history(&realm, &env, &pipeline, page)
            .await?,
        page,
    )))
}

pub async fn rollback(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, pipeline)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<RollbackRequest>,
) -> ApiResult<Json<Value>> {
    who.require(&realm, Some(&env), Permission::DeploymentsWrite)?;
    let now = current(&state, &realm, &env, &pipeline, body.major).await?;
    let entries = state
        .store
        .deployment_history(
            &realm,
            &env,
            &pipeline,
            sluice_store::Page {
                limit: 1000,
                offset: 0,
            },
        )
        .await?;
    let same = |a: &Deployment, b: &Deployment| {
        a.minor == b.minor
            && a.replicas == b.replicas
            && a.concurrency == b.concurrency
            && a.timeout_ms == b.timeout_ms
    };
    let target = match body.to {
        Some(id) => entries
            .into_iter()
            .find(|e| e.id == id && e.action != "delete")
            .ok_or_else(|| ApiError::not_found(format!("history entry {id} not found")))?,
        None => entries
            .into_iter()
            .filter(|e| e.deployment.major == now.major && e.action != "delete")
            .find(|e| !same(&e.deployment, &now))
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "'{pipeline}' v{} has no earlier deployment in '{env}' to roll back to",
                    now.major
                ))
            })?,
    };
    let t = &target.deployment;
    let version = state
        .store
        .get_version(&realm, &pipeline, t.major, t.minor)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("version {}.{} is gone", t.major, t.minor)))?;
    let settings = Settings {
        replicas: Some(t.replicas),
        concurrency: Some(t.concurrency),
        timeout: t
            .timeout_ms
            .map(|ms| HumanDuration(Duration::from_millis(ms))),
        cluster: Some(t.cluster.clone()),
    };
    let deployment = deploy_version(&state, &who, &env, &version, &settings, "rollback").await?;
    Ok(Json(view(&state, &deployment)))
}

pub async fn promote(
    State(state): State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
    JsonBody(body): JsonBody<PromoteRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&realm, Some(&body.from), Permission::Read)?;
    who.require(&realm, Some(&body.to), Permission::DeploymentsWrite)?;
    environment_exists(&state, &realm, &body.to).await?;
    check_settings(&body.settings)?;
    let source = current(&state, &realm, &body.from, &body.pipeline, body.major).await?;
    let version = state
        .store
        .get_version(&realm, &body.pipeline, source.major, source.minor)
        .await?
        .ok_or_else(|| ApiError::not_found("the deployed version is gone"))?;
    let settings = Settings {
        replicas: body.settings.replicas,
        concurrency: body.settings.concurrency,
        timeout: body.settings.timeout.or(source
            .timeout_ms
            .map(|ms| HumanDuration(Duration::from_millis(ms)))),
        cluster: body.settings.cluster.clone(),
    };
    let deployment = deploy_version(&state, &who, &body.to, &version, &settings, "promote").await?;
    Ok((StatusCode::CREATED, Json(view(&state, &deployment))))
}

/// Runs a deployment once with the given input (the `manual` trigger).
pub async fn run(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, pipeline)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<RunBody>,
) -> ApiResult<Json<Value>> {
    who.require(&realm, Some(&env), Permission::ExecutionsRun)?;
    let d = current(&state, &realm, &env, &pipeline, body.major).await?;
    let Some(deployed) = state.runtime.find(&realm, &env, &pipeline, d.major) else {
        return Err(ApiError::not_found(format!(
            "'{pipeline}' is not serving in '{env}'"
        )));
    };
    let execution = state
        .runtime
        .run(&deployed, RunRequest::new(body.input, "manual"))
        .await
        .map_err(|r| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", r.message()))?;
    Ok(Json(super::executions::outcome(&execution)))
}
