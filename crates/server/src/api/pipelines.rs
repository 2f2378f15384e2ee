//! Pipelines and their versions.

use super::{Path, Query};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_engine::{LoadError, load_str};
use sluice_spec::{FieldPath, Format, Problem, Problems, Trigger};
use sluice_store::{PipelineSummary, PipelineVersion, SaveMode};

use super::{Listing, PageQuery, RawBody, audit};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::scheduler::Schedule;
use crate::state::AppState;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SaveQuery {
    /// `new` starts a new major.
    major: Option<String>,
    /// The file name to use in problems.
    source: Option<String>,
}

/// `1.2` → (1, 2).
pub fn parse_version(text: &str) -> ApiResult<(u32, u32)> {
    let parsed = text
        .trim_start_matches('v')
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    parsed.ok_or_else(|| {
        ApiError::bad_request(format!(
            "'{text}' is not a version: write MAJOR.MINOR, like 1.2"
        ))
    })
}

/// The problems of a pipeline as a 400 answer.
pub fn invalid(problems: &Problems) -> ApiError {
    let items: Vec<Value> = problems
        .items
        .iter()
        .map(|p| {
            let mut item = json!({"path": p.path.to_string(), "message": p.message});
            if let Some(pos) = p.position {
                item["line"] = json!(pos.line);
                item["column"] = json!(pos.column);
            }
            item
        })
        .collect();
    let first = problems
        .items
        .first()
        .map_or_else(String::new, |p| format!(": {}: {}", p.path, p.message));
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid",
        format!("the pipeline has {} problem(s){first}", items.len()),
    )
    .with_details(json!({"file": problems.file, "problems": items}))
}

fn version_view(v: &PipelineVersion) -> Value {
    json!({
        "name": v.name,
        "version": format!("{}.{}", v.major, v.minor),
        "major": v.major,
        "minor": v.minor,
        "archived": v.archived,
        "createdAt": v.created_at,
        "createdBy": v.created_by,
    })
}

pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Listing<PipelineSummary>>> {
    who.require(&realm, None, Permission::Read)?;
    let page = q.page()?;
    Ok(Json(Listing::new(
        state.store.list_pipelines(&realm, page).await?,
        page,
    )))
}

pub async fn save(
    state: State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
    query: Query<SaveQuery>,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    save_version(state, who, realm, None, query, body).await
}

pub async fn save_named(
    state: State<AppState>,
    who: Principal,
    Path((realm, name)): Path<(String, String)>,
    query: Query<SaveQuery>,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    save_version(state, who, realm, Some(name), query, body).await
}

async fn save_version(
    State(state): State<AppState>,
    who: Principal,
    realm: String,
    expected_name: Option<String>,
    Query(q): Query<SaveQuery>,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&realm, None, Permission::PipelinesWrite)?;
    let mode = match q.major.as_deref() {
        None => SaveMode::NextMinor,
        Some("new") => SaveMode::NewMajor,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "major={other} is not understood; use major=new to start a new major"
            )));
        }
    };
    let text = std::str::from_utf8(&body.bytes)
        .map_err(|_| ApiError::bad_request("the pipeline must be UTF-8 text (YAML or JSON)"))?;
    let format = if body.content_type.contains("json") {
        Format::Json
    } else {
        Format::Yaml
    };
    let source = q.source.unwrap_or_else(|| "request body".to_owned());
    let plan = match load_str(&source, text, format, None, &state.runtime.catalog) {
        Ok(plan) => plan,
        Err(LoadError::Invalid(problems)) => return Err(invalid(&problems)),
        Err(other) => return Err(ApiError::bad_request(other.to_string())),
    };
    if let Some(Trigger::Scheduler(trigger)) = &plan.definition.trigger
        && let Err((path, message)) = Schedule::parse(trigger)
    {
        let mut problems = Problems::new(source.clone());
        problems.push(Problem::new(
            FieldPath::from_pointer(&format!("/{}", path.replace('.', "/"))),
            message,
        ));
        return Err(invalid(&problems));
    }
    if let Some(trigger) = &plan.definition.trigger
        && let Some((path, message)) = consumer_problem(trigger)
    {
        let mut problems = Problems::new(source.clone());
        problems.push(Problem::new(
            FieldPath::from_pointer(&format!("/{}", path.replace('.', "/"))),
            message,
        ));
        return Err(invalid(&problems));
    }
    let name = plan.definition.name.clone();
    if let Some(expected) = expected_name
        && expected != name
    {
        return Err(ApiError::bad_request(format!(
            "the URL names pipeline '{expected}' but the definition is '{name}'"
        ))
        .with_details(json!({"path": "name"})));
    }
    let definition = serde_json::to_value(&plan.definition).map_err(ApiError::internal)?;
    let saved = state
        .store
        .save_version(&realm, &name, &definition, mode, &who.user.name)
        .await?;
    let v = &saved.version;
    if saved.created {
        audit(
            &state,
            &who,
            Some(&realm),
            "create",
            format!("pipelines/{name}/versions/{}.{}", v.major, v.minor),
            json!({}),
        )
        .await;
    }
    let mut view = version_view(v);
    view["created"] = json!(saved.created);
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    who.require(&realm, None, Permission::Read)?;
    let versions = state.store.list_versions(&realm, &name).await?;
    let Some(latest) = versions.first() else {
        return Err(ApiError::not_found(format!(
            "pipeline '{name}' not found in realm '{realm}'"
        )));
    };
    Ok(Json(json!({
        "name": name,
        "latest": format!("{}.{}", latest.major, latest.minor),
        "definition": latest.definition,
        "versions": versions.iter().map(version_view).collect::<Vec<_>>(),
    })))
}

async fn find_version(
    state: &AppState,
    realm: &str,
    name: &str,
    version: &str,
) -> ApiResult<PipelineVersion> {
    let (major, minor) = parse_version(version)?;
    state
        .store
        .get_version(realm, name, major, minor)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "version {major}.{minor} of pipeline '{name}' not found"
            ))
        })
}

pub async fn version(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, name, version)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    who.require(&realm, None, Permission::Read)?;
    let v = find_version(&state, &realm, &name, &version).await?;
    let mut view = version_view(&v);
    view["definition"] = v.definition;
    Ok(Json(view))
}

async fn set_archived(
    state: AppState,
    who: Principal,
    (realm, name, version): (String, String, String),
    archived: bool,
) -> ApiResult<Json<Value>> {
    who.require(&realm, None, Permission::PipelinesWrite)?;
    let (major, minor) = parse_version(&version)?;
    let v = state
        .store
        .set_archived(&realm, &name, major, minor, archived)
        .await?;
    let action = if archived { "archive" } else { "restore" };
    audit(
        &state,
        &who,
        Some(&realm),
        action,
        format!("pipelines/{name}/versions/{major}.{minor}"),
        json!({}),
    )
    .await;
    Ok(Json(version_view(&v)))
}

pub async fn archive(
    State(state): State<AppState>,
    who: Principal,
    Path(path): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    set_archived(state, who, path, true).await
}

pub async fn restore(
    State(state): State<AppState>,
    who: Principal,
    Path(path): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    set_archived(state, who, path, false).await
}

/// What is wrong with a broker or mailbox trigger that names no account
/// (one that does is checked when its deployment starts, with the
/// account): the field path and the message.
fn consumer_problem(trigger: &Trigger) -> Option<(String, String)> {
    if !sluice_triggers::is_consumer(trigger) || sluice_triggers::account_name(trigger).is_some() {
        return None;
    }
    let names = sluice_triggers::Names::new("r", "e", "p", 1);
    let message = match sluice_triggers::source(trigger, None, &names) {
        Ok(_) => return None,
        Err(e) => e.to_string(),
    };
    let path = message
        .split([' ', ':'])
        .next()
        .filter(|p| p.starts_with("trigger."))
        .unwrap_or("trigger")
        .to_owned();
    Some((path, message))
}
