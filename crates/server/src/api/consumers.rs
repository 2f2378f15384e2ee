//! Consumers of the gateway and their API keys (shown once, kept hashed).

use super::{Path, Query};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_spec::HumanDuration;
use sluice_store::{ApiKey, Consumer, RateLimit};

use super::{JsonBody, Listing, PageQuery, audit, check_name, environment_exists};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::runtime::now_ms;
use crate::secrets::{hash_secret, new_secret, secret_id};
use crate::state::AppState;

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RateLimitBody {
    requests: u32,
    per: HumanDuration,
}

impl RateLimitBody {
    fn limit(self) -> ApiResult<RateLimit> {
        if self.requests == 0 || self.per.0.is_zero() {
            return Err(
                ApiError::bad_request("rateLimit needs requests > 0 and per > 0s")
                    .with_details(json!({"path": "rateLimit"})),
            );
        }
        Ok(RateLimit {
            requests: self.requests,
            per_ms: u64::try_from(self.per.0.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewConsumer {
    name: String,
    /// Pipeline names it may call; `*` for all.
    pipelines: Vec<String>,
    rate_limit: Option<RateLimitBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsumerUpdate {
    pipelines: Option<Vec<String>>,
    /// `null` removes the limit.
    #[serde(default, with = "double_option")]
    rate_limit: Option<Option<RateLimitBody>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn check_pipelines(list: &[String]) -> ApiResult<()> {
    for (i, p) in list.iter().enumerate() {
        if p != "*" {
            check_name("pipeline", p)
                .map_err(|e| e.with_details(json!({"path": format!("pipelines[{i}]")})))?;
        }
    }
    Ok(())
}

fn consumer_view(c: &Consumer, keys: &[ApiKey]) -> Value {
    let mut out = serde_json::to_value(c).unwrap_or(Value::Null);
    out["keys"] = json!(
        keys.iter()
            .map(|k| json!({"id": k.id, "createdAt": k.created_at}))
            .collect::<Vec<_>>()
    );
    out
}

async fn issue_key(state: &AppState, c: &Consumer) -> ApiResult<(String, ApiKey)> {
    let secret = new_secret("slk_").map_err(ApiError::internal)?;
    let key = ApiKey {
        id: secret_id(&secret),
        realm: c.realm.clone(),
        environment: c.environment.clone(),
        consumer: c.name.clone(),
        hash: hash_secret(&secret),
        created_at: now_ms(),
    };
    state.store.add_api_key(&key).await?;
    state.keys.clear();
    Ok((secret, key))
}

pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env)): Path<(String, String)>,
    JsonBody(body): JsonBody<NewConsumer>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&realm, Some(&env), Permission::ConsumersWrite)?;
    environment_exists(&state, &realm, &env).await?;
    check_name("consumer", &body.name)?;
    check_pipelines(&body.pipelines)?;
    let consumer = Consumer {
        realm: realm.clone(),
        environment: env.clone(),
        name: body.name,
        pipelines: body.pipelines,
        rate_limit: body.rate_limit.map(RateLimitBody::limit).transpose()?,
        created_at: now_ms(),
    };
    state.store.create_consumer(&consumer).await?;
    let (secret, key) = issue_key(&state, &consumer).await?;
    audit(
        &state,
        &who,
        Some(&realm),
        "create",
        format!("environments/{env}/consumers/{}", consumer.name),
        json!({"pipelines": consumer.pipelines}),
    )
    .await;
    let mut view = consumer_view(&consumer, std::slice::from_ref(&key));
    view["key"] = json!(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Listing<Consumer>>> {
    who.require(&realm, Some(&env), Permission::Read)?;
    let page = q.page()?;
    Ok(Json(Listing::new(
        state.store.list_consumers(&realm, Some(&env), page).await?,
        page,
    )))
}

pub async fn list_realm(
    State(state): State<AppState>,
    who: Principal,
    Path(realm): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Listing<Consumer>>> {
    who.require(&realm, None, Permission::Read)?;
    let page = q.page()?;
    Ok(Json(Listing::new(
        state.store.list_consumers(&realm, None, page).await?,
        page,
    )))
}

async fn find(state: &AppState, realm: &str, env: &str, name: &str) -> ApiResult<Consumer> {
    state
        .store
        .get_consumer(realm, env, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("consumer '{name}' not found in '{env}'")))
}

pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    who.require(&realm, Some(&env), Permission::Read)?;
    let consumer = find(&state, &realm, &env, &name).await?;
    let keys = state.store.list_api_keys(&realm, &env, &name).await?;
    Ok(Json(consumer_view(&consumer, &keys)))
}

pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, name)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<ConsumerUpdate>,
) -> ApiResult<Json<Value>> {
    who.require(&realm, Some(&env), Permission::ConsumersWrite)?;
    let mut consumer = find(&state, &realm, &env, &name).await?;
    if let Some(pipelines) = body.pipelines {
        check_pipelines(&pipelines)?;
        consumer.pipelines = pipelines;
    }
    if let Some(limit) = body.rate_limit {
        consumer.rate_limit = limit.map(RateLimitBody::limit).transpose()?;
    }
    state.store.update_consumer(&consumer).await?;
    state.keys.clear();
    state.limits.clear();
    audit(
        &state,
        &who,
        Some(&realm),
        "update",
        format!("environments/{env}/consumers/{name}"),
        json!({"pipelines": consumer.pipelines}),
    )
    .await;
    let keys = state.store.list_api_keys(&realm, &env, &name).await?;
    Ok(Json(consumer_view(&consumer, &keys)))
}

pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    who.require(&realm, Some(&env), Permission::ConsumersWrite)?;
    state.store.delete_consumer(&realm, &env, &name).await?;
    state.keys.clear();
    audit(
        &state,
        &who,
        Some(&realm),
        "delete",
        format!("environments/{env}/consumers/{name}"),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a key; its text is in this answer only.
pub async fn create_key(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, name)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&realm, Some(&env), Permission::ConsumersWrite)?;
    let consumer = find(&state, &realm, &env, &name).await?;
    let (secret, key) = issue_key(&state, &consumer).await?;
    audit(
        &state,
        &who,
        Some(&realm),
        "create",
        format!("environments/{env}/consumers/{name}/keys/{}", key.id),
        json!({}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": key.id, "consumer": name, "key": secret})),
    ))
}

pub async fn delete_key(
    State(state): State<AppState>,
    who: Principal,
    Path((realm, env, name, id)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    who.require(&realm, Some(&env), Permission::ConsumersWrite)?;
    let keys = state.store.list_api_keys(&realm, &env, &name).await?;
    if !keys.iter().any(|k| k.id == id) {
        return Err(ApiError::not_found(format!(
            "key '{id}' of consumer '{name}' not found"
        )));
    }
    state.store.delete_api_key(&realm, &id).await?;
    state.keys.clear();
    audit(
        &state,
        &who,
        Some(&realm),
        "delete",
        format!("environments/{env}/consumers/{name}/keys/{id}"),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
