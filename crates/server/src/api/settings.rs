//! Globals and accounts of an environment. Account values are sealed
//! with the master key and never answered; only their field names are.

use super::Path;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sluice_store::{AccountRecord, Global};

use super::{JsonBody, Listing, audit, environment_exists};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::runtime::now_ms;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalValue {
    value: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountValue {
    r#type: String,
    fields: Map<String, Value>,
}

/// Account types and the fields each must have.
const ACCOUNT_TYPES: &[(&str, &[&str])] = &[
    ("basic", &["username", "password"]),
    ("api-key", &["key"]),
    ("bearer", &["token"]),
    (
        "oauth2-client-credentials",
        &["tokenUrl", "clientId", "clientSecret"],
    ),
    ("private-key", &["key"]),
    ("generic", &[]),
];

fn check_setting_name(kind: &str, name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{kind} name '{name}' must be 1-128 characters of letters, digits, '-', '_', '.'"
        )))
    }
}

pub async fn list_globals(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env)): Path<(String, String)>,
) -> ApiResult<Json<Listing<Global>>> {
    who.require(&realm, Some(&env), Permission::Read)?;
    environment_exists(&state, &realm, &env).await?;
    let items = state.store.list_globals(&realm, &env).await?;
    Ok(Json(Listing { items, next: None }))
}

pub async fn set_global(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, name)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<GlobalValue>,
) -> ApiResult<Json<Global>> {
    who.require(&realm, Some(&env), Permission::SettingsWrite)?;
    check_setting_name("global", &name)?;
    let global = state
        .store
        .set_global(&realm, &env, &name, &body.value)
        .await?;
    state.runtime.invalidate_env(&realm, &env);
    audit(
        &state,
        &who,
        Some(&realm),
        "update",
        format!("environments/{env}/globals/{name}"),
        json!({"value": body.value}),
    )
    .await;
    Ok(Json(global))
}

pub async fn delete_global(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    who.require(&realm, Some(&env), Permission::SettingsWrite)?;
    state.store.delete_global(&realm, &env, &name).await?;
    state.runtime.invalidate_env(&realm, &env);
    audit(
        &state,
        &who,
        Some(&realm),
        "delete",
        format!("environments/{env}/globals/{name}"),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

fn account_view(state: &AppState, a: &AccountRecord) -> Value {
    let fields: Vec<String> = match state.runtime.open_account(&a.kind, &a.sealed) {
        Ok(Value::Object(map)) => map.keys().filter(|k| *k != "type").cloned().collect(),
        _ => Vec::new(),
    };
    json!({
        "name": a.name,
        "type": a.kind,
        "environment": a.environment,
        "fields": fields,
        "updatedAt": a.updated_at,
    })
}

pub async fn list_accounts(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env)): Path<(String, String)>,
) -> ApiResult<Json<Listing<Value>>> {
    who.require(&realm, Some(&env), Permission::Read)?;
    environment_exists(&state, &realm, &env).await?;
    let items = state.store.list_accounts(&realm, &env).await?;
    Ok(Json(Listing {
        items: items.iter().map(|a| account_view(&state, a)).collect(),
        next: None,
    }))
}

pub async fn set_account(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, name)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<AccountValue>,
) -> ApiResult<Json<Value>> {
    who.require(&realm, Some(&env), Permission::SettingsWrite)?;
    check_setting_name("account", &name)?;
    let Some((_, required)) = ACCOUNT_TYPES.iter().find(|(t, _)| *t == body.r#type) else {
        let types: Vec<&str> = ACCOUNT_TYPES.iter().map(|(t, _)| *t).collect();
        return Err(ApiError::bad_request(format!(
            "account type '{}' is not known; use one of {}",
            body.r#type,
            types.join(", ")
        ))
        .with_details(json!({"path": "type"})));
    };
    if let Some(missing) = required.iter().find(|f| !body.fields.contains_key(**f)) {
        return Err(ApiError::bad_request(format!(
            "a {} account needs the field '{missing}'",
            body.r#type
        ))
        .with_details(json!({"path": format!("fields.{missing}")})));
    }
    if body.fields.contains_key("type") {
        return Err(
            ApiError::bad_request("'type' is set beside the fields, not among them")
                .with_details(json!({"path": "fields.type"})),
        );
    }
    let plain = serde_json::to_vec(&body.fields).map_err(ApiError::internal)?;
    let sealed = state
        .runtime
        .master
        .seal(&plain)
        .map_err(ApiError::internal)?;
    let record = AccountRecord {
        realm: realm.clone(),
        environment: env.clone(),
        name: name.clone(),
        kind: body.r#type.clone(),
        sealed,
        updated_at: now_ms(),
    };
    state.store.put_account(&record).await?;
    state.runtime.invalidate_env(&realm, &env);
    let names: Vec<&String> = body.fields.keys().collect();
    audit(
        &state,
        &who,
        Some(&realm),
        "update",
        format!("environments/{env}/accounts/{name}"),
        json!({"type": body.r#type, "fields": names}),
    )
    .await;
    Ok(Json(account_view(&state, &record)))
}

pub async fn delete_account(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    who.require(&realm, Some(&env), Permission::SettingsWrite)?;
    state.store.delete_account(&realm, &env, &name).await?;
    state.runtime.invalidate_env(&realm, &env);
    audit(
        &state,
        &who,
        Some(&realm),
        "delete",
        format!("environments/{env}/accounts/{name}"),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
