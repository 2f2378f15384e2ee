//! Users, their roles and their API tokens.

use super::{Path, Query};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_store::{Grant, Token, User};

use super::{JsonBody, Listing, PageQuery, audit};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::runtime::now_ms;
use crate::secrets::{hash_secret, new_secret, secret_id};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    grants: Vec<Grant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    grants: Vec<Grant>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    description: String,
}

fn check_user_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "user name '{name}' must be 1-64 characters of letters, digits, '-', '_', '.', '@'"
        )))
    }
}

pub async fn whoami(who: Principal) -> Json<User> {
    Json(who.user)
}

pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Listing<User>>> {
    who.require_admin()?;
    let page = q.page()?;
    Ok(Json(Listing::new(
        state.store.list_users(page).await?,
        page,
    )))
}

pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(body): JsonBody<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    who.require_admin()?;
    check_user_name(&body.name)?;
    let user = User {
        name: body.name,
        grants: body.grants,
        created_at: now_ms(),
    };
    state.store.create_user(&user).await?;
    audit(
        &state,
        &who,
        None,
        "create",
        format!("users/{}", user.name),
        json!({"grants": user.grants}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<User>> {
    if who.user.name != name {
        who.require_admin()?;
    }
    state
        .store
        .get_user(&name)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("user '{name}' not found")))
}

pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<UserUpdate>,
) -> ApiResult<Json<User>> {
    who.require_admin()?;
    let Some(mut user) = state.store.get_user(&name).await? else {
        return Err(ApiError::not_found(format!("user '{name}' not found")));
    };
    user.grants = body.grants;
    state.store.update_user(&user).await?;
    audit(
        &state,
        &who,
        None,
        "update",
        format!("users/{name}"),
        json!({"grants": user.grants}),
    )
    .await;
    Ok(Json(user))
}

pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    who.require_admin()?;
    if who.user.name == name {
        return Err(ApiError::conflict("you cannot delete yourself"));
    }
    state.store.delete_user(&name).await?;
    audit(
        &state,
        &who,
        None,
        "delete",
        format!("users/{name}"),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a token; its text is in this answer only.
pub async fn create_token(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if who.user.name != name {
        who.require_admin()?;
    }
    let secret = new_secret("slt_").map_err(ApiError::internal)?;
    let token = Token {
        id: secret_id(&secret),
        user: name.clone(),
        hash: hash_secret(&secret),
        description: body.description,
        created_at: now_ms(),
    };
    state.store.add_token(&token).await?;
    audit(
        &state,
        &who,
        None,
        "create",
        format!("users/{name}/tokens/{}", token.id),
        json!({}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": token.id, "user": name, "token": secret})),
    ))
}

pub async fn delete_token(
    State(state): State<AppState>,
    who: Principal,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if who.user.name != name {
        who.require_admin()?;
    }
    state.store.delete_token(&name, &id).await?;
    audit(
        &state,
        &who,
        None,
        "delete",
        format!("users/{name}/tokens/{id}"),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
