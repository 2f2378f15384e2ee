//! The control-plane API under `/api/v1`: JSON in and out, bearer
//! tokens, a permission check on every route, an audit record for every
//! change, `limit`/`offset` pagination on every list.

mod consumers;
mod deployments;
mod executions;
pub mod openapi;
mod pipelines;
mod realms;
mod settings;
mod users;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_store::{AuditEntry, Page};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::runtime::now_ms;
use crate::state::AppState;

/// Largest JSON body the API reads (pipeline definitions included).
const API_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The API routes, relative to `/api/v1`.
pub fn router() -> Router<AppState> {
    let realm = "/realms/{realm}";
    let env = "/realms/{realm}/environments/{env}";
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/whoami", get(users::whoami))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{name}",
            get(users::get).put(users::update).delete(users::delete),
        )
        .route("/users/{name}/tokens", post(users::create_token))
        .route(
            "/users/{name}/tokens/{id}",
            axum::routing::delete(users::delete_token),
        )
        .route("/audit", get(realms::platform_audit))
        .route("/realms", get(realms::list).post(realms::create))
        .route(realm, get(realms::get))
        .route(&format!("{realm}/audit"), get(realms::audit))
        .route(
            &format!("{realm}/environments"),
            get(realms::environments).post(realms::create_environment),
        )
        .route(
            &format!("{realm}/pipelines"),
            get(pipelines::list).post(pipelines::save),
        )
        .route(
            &format!("{realm}/pipelines/{{name}}"),
            get(pipelines::get).put(pipelines::save_named),
        )
        .route(
            &format!("{realm}/pipelines/{{name}}/versions/{{version}}"),
            get(pipelines::version),
        )
        .route(
            &format!("{realm}/pipelines/{{name}}/versions/{{version}}/archive"),
            post(pipelines::archive),
        )
        .route(
            &format!("{realm}/pipelines/{{name}}/versions/{{version}}/restore"),
            post(pipelines::restore),
        )
        .route(
            &format!("{realm}/deployments"),
            get(deployments::list_realm),
        )
        .route(&format!("{realm}/promote"), post(deployments::promote))
        .route(
            &format!("{env}/deployments"),
            get(deployments::list).post(deployments::deploy),
        )
        .route(
            &format!("{env}/deployments/{{pipeline}}"),
            get(deployments::status).delete(deployments::remove),
        )
        .route(
            &format!("{env}/deployments/{{pipeline}}/history"),
            get(deployments::history),
        )
        .route(
            &format!("{env}/deployments/{{pipeline}}/rollback"),
            post(deployments::rollback),
        )
        .route(
            &format!("{env}/deployments/{{pipeline}}/run"),
            post(deployments::run),
        )
        .route(&format!("{env}/globals"), get(settings::list_globals))
        .route(
            &format!("{env}/globals/{{name}}"),
            put(settings::set_global).delete(settings::delete_global),
        )
        .route(&format!("{env}/accounts"), get(settings::list_accounts))
        .route(
            &format!("{env}/accounts/{{name}}"),
            put(settings::set_account).delete(settings::delete_account),
        )
        .route(
            &format!("{env}/consumers"),
            get(consumers::list).post(consumers::create),
        )
        .route(
            &format!("{env}/consumers/{{name}}"),
            get(consumers::get)
                .patch(consumers::update)
                .delete(consumers::delete),
        )
        .route(
            &format!("{env}/consumers/{{name}}/keys"),
            post(consumers::create_key),
        )
        .route(
            &format!("{env}/consumers/{{name}}/keys/{{id}}"),
            axum::routing::delete(consumers::delete_key),
        )
        .route(&format!("{realm}/consumers"), get(consumers::list_realm))
        .route(&format!("{realm}/executions"), get(executions::list))
        .route(&format!("{realm}/executions/{{key}}"), get(executions::get))
        .route(
            &format!("{realm}/executions/{{key}}/rerun"),
            post(executions::rerun),
        )
        .route(
            &format!("{realm}/dead-letters"),
            get(executions::dead_letters),
        )
        .route(
            &format!("{realm}/dead-letters/{{id}}/redrive"),
            post(executions::redrive),
        )
        .fallback(|| async {
            ApiError::not_found("no such API route; the routes are listed at /api/v1/openapi.json")
        })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "this API route does not take {method}; the routes are listed at /api/v1/openapi.json"
                ),
            )
        })
}

/// Query parameters; a wrong one is answered as a JSON 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Path parameters; a wrong one is answered as a JSON 400.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// A JSON body read with the path of the first wrong field in the error.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, ApiError> {
        let bytes = axum::body::to_bytes(req.into_body(), API_BODY_LIMIT)
            .await
            .map_err(|_| {
                ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {API_BODY_LIMIT} bytes"),
                )
            })?;
        let bytes = if bytes.is_empty() {
            &b"{}"[..]
        } else {
            &bytes[..]
        };
        parse_json(bytes).map(JsonBody)
    }
}

/// Reads JSON, naming the field that is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let place = if path == "." {
            String::new()
        } else {
            format!(" at '{path}'")
        };
        ApiError::bad_request(format!("invalid request body{place}: {inner}"))
            .with_details(json!({"path": path}))
    })
}

/// The raw body and its content type.
pub struct RawBody {
    pub content_type: String,
    pub bytes: axum::body::Bytes,
}

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = axum::body::to_bytes(req.into_body(), API_BODY_LIMIT)
            .await
            .map_err(|_| {
                ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {API_BODY_LIMIT} bytes"),
                )
            })?;
        Ok(RawBody {
            content_type,
            bytes,
        })
    }
}

/// `?limit=&offset=` on lists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

impl PageQuery {
    pub fn page(&self) -> ApiResult<Page> {
        let limit = self.limit.unwrap_or(50);
        if limit == 0 || limit > 1000 {
            return Err(ApiError::bad_request("limit must be between 1 and 1000"));
        }
        Ok(Page {
            limit,
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// A page of a list: the items and the offset of the next page, if any.
#[derive(Serialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next: Option<u32>,
}

impl<T> Listing<T> {
    pub fn new(items: Vec<T>, page: Page) -> Self {
        let next = (items.len() == page.limit as usize).then(|| page.offset + page.limit);
        Listing { items, next }
    }
}

/// Records a change in the audit trail. A failure to record is logged,
/// not answered: the change itself is done.
pub async fn audit(
    state: &AppState,
    who: &Principal,
    realm: Option<&str>,
    action: &str,
    resource: String,
    details: Value,
) {
    let entry = AuditEntry {
        id: 0,
        at: now_ms(),
        actor: who.user.name.clone(),
        realm: realm.map(str::to_owned),
        action: action.to_owned(),
        resource,
        details,
    };
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::error!(error = %e, action, "audit record not written");
    }
}

/// Checks a name against `[a-z0-9][a-z0-9-]{0,62}`.
pub fn check_name(kind: &str, name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{kind} name '{name}' must be 1-63 characters of a-z, 0-9 and '-', not starting with '-'"
        ))
        .with_details(json!({"path": "name"})))
    }
}

/// Checks that the environment exists in the realm (404 otherwise).
pub async fn environment_exists(state: &AppState, realm: &str, env: &str) -> ApiResult<()> {
    let envs = state.store.list_environments(realm).await?;
    if envs.iter().any(|e| e.name == env) {
        Ok(())
    } else {
        let names: Vec<&str> = envs.iter().map(|e| e.name.as_str()).collect();
        Err(ApiError::not_found(format!(
            "environment '{env}' not found in realm '{realm}'; it has {}",
            names.join(", ")
        )))
    }
}
