//! Realms, their environments and their audit trail.

use super::{Path, Query};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use sluice_store::{AuditEntry, Environment, Realm};

use super::{JsonBody, Listing, PageQuery, audit as record, check_name};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRealm {
    name: String,
}

pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Listing<Realm>>> {
    let page = q.page()?;
    if who.is_platform_admin() {
        return Ok(Json(Listing::new(
            state.store.list_realms(page).await?,
            page,
        )));
    }
    // Only the realms the caller has a grant in, paged over those.
    let mut visible = Vec::new();
    for grant in &who.user.grants {
        if let Some(realm) = state.store.get_realm(&grant.realm).await?
            && !visible.iter().any(|r: &Realm| r.name == realm.name)
        {
            visible.push(realm);
        }
    }
    visible.sort_by(|a, b| a.name.cmp(&b.name));
    let items: Vec<Realm> = visible
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .collect();
    Ok(Json(Listing::new(items, page)))
}

pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(body): JsonBody<NewRealm>,
) -> ApiResult<(StatusCode, Json<Realm>)> {
    who.require_admin()?;
    check_name("realm", &body.name)?;
    let realm = state.store.create_realm(&body.name).await?;
    record(
        &state,
        &who,
        Some(&realm.name),
        "create",
        format!("realms/{}", realm.name),
        json!({}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(realm)))
}

pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
) -> ApiResult<Json<Realm>> {
    who.require(&realm, None, Permission::Read)?;
    state
        .store
        .get_realm(&realm)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("realm '{realm}' not found")))
}

pub async fn environments(
    State(state): State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
) -> ApiResult<Json<Listing<Environment>>> {
    who.require(&realm, None, Permission::Read)?;
    let items = state.store.list_environments(&realm).await?;
    Ok(Json(Listing { items, next: None }))
}

pub async fn create_environment(
    State(state): State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
    JsonBody(body): JsonBody<NewRealm>,
) -> ApiResult<(StatusCode, Json<Environment>)> {
    who.require(&realm, None, Permission::Admin)?;
    check_name("environment", &body.name)?;
    let env = state.store.create_environment(&realm, &body.name).await?;
    record(
        &state,
        &who,
        Some(&realm),
        "create",
        format!("environments/{}", env.name),
        json!({}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(env)))
}

pub async fn audit(
    State(state): State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Listing<AuditEntry>>> {
    who.require(&realm, None, Permission::Read)?;
    let page = q.page()?;
    Ok(Json(Listing::new(
        state.store.list_audit(Some(&realm), page).await?,
        page,
    )))
}

pub async fn platform_audit(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Listing<AuditEntry>>> {
    who.require_admin()?;
    let page = q.page()?;
    Ok(Json(Listing::new(
        state.store.list_audit(None, page).await?,
        page,
    )))
}
