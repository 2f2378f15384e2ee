//! The OpenAPI document of the control-plane API, built from the route
//! table below (a test checks that every listed route answers).

use axum::Json;
use serde_json::{Map, Value, json};

/// Every API route: method, path under `/api/v1`, summary, tag, whether
/// it takes a JSON body.
pub const ROUTES: &[(&str, &str, &str, &str, bool)] = &[
    (
        "get",
        "/whoami",
        "The calling user and their grants",
        "users",
        false,
    ),
    ("get", "/users", "List users", "users", false),
    (
        "post",
        "/users",
        "Create a user with grants ({name, grants: [{realm, role, environment?}]})",
        "users",
        true,
    ),
    ("get", "/users/{name}", "Get a user", "users", false),
    (
        "put",
        "/users/{name}",
        "Replace a user's grants",
        "users",
        true,
    ),
    ("delete", "/users/{name}", "Delete a user", "users", false),
    (
        "post",
        "/users/{name}/tokens",
        "Create an API token (shown once)",
        "users",
        true,
    ),
    (
        "delete",
        "/users/{name}/tokens/{id}",
        "Revoke a token",
        "users",
        false,
    ),
    (
        "get",
        "/audit",
        "The platform-wide audit trail",
        "audit",
        false,
    ),
    (
        "get",
        "/realms",
        "List the realms you can see",
        "realms",
        false,
    ),
    (
        "post",
        "/realms",
        "Create a realm (with environments test and prod)",
        "realms",
        true,
    ),
    ("get", "/realms/{realm}", "Get a realm", "realms", false),
    (
        "get",
        "/realms/{realm}/audit",
        "The realm's audit trail",
        "audit",
        false,
    ),
    (
        "get",
        "/realms/{realm}/environments",
        "List environments",
        "realms",
        false,
    ),
    (
        "post",
        "/realms/{realm}/environments",
        "Create an environment",
        "realms",
        true,
    ),
    (
        "get",
        "/realms/{realm}/pipelines",
        "List pipelines with their newest version",
        "pipelines",
        false,
    ),
    (
        "post",
        "/realms/{realm}/pipelines",
        "Save a pipeline (YAML or JSON body; ?major=new starts a major)",
        "pipelines",
        true,
    ),
    (
        "get",
        "/realms/{realm}/pipelines/{name}",
        "A pipeline's versions and newest definition",
        "pipelines",
        false,
    ),
    (
        "put",
        "/realms/{realm}/pipelines/{name}",
        "Save a pipeline under this name",
        "pipelines",
        true,
    ),
    (
        "get",
        "/realms/{realm}/pipelines/{name}/versions/{version}",
        "One version (MAJOR.MINOR) with its definition",
        "pipelines",
        false,
    ),
    (
        "post",
        "/realms/{realm}/pipelines/{name}/versions/{version}/archive",
        "Archive a version (no longer deployable)",
        "pipelines",
        false,
    ),
    (
        "post",
        "/realms/{realm}/pipelines/{name}/versions/{version}/restore",
        "Restore an archived version",
        "pipelines",
        false,
    ),
    (
        "get",
        "/realms/{realm}/deployments",
        "Deployments of every environment",
        "deployments",
        false,
    ),
    (
        "post",
        "/realms/{realm}/promote",
        "Deploy what runs in one environment to another",
        "deployments",
        true,
    ),
    (
        "get",
        "/realms/{realm}/environments/{env}/deployments",
        "Deployments of an environment with their status",
        "deployments",
        false,
    ),
    (
        "post",
        "/realms/{realm}/environments/{env}/deployments",
        "Deploy or redeploy ({pipeline, version?, replicas?, concurrency?, timeout?})",
        "deployments",
        true,
    ),
    (
        "get",
        "/realms/{realm}/environments/{env}/deployments/{pipeline}",
        "Status of a deployment (?major=)",
        "deployments",
        false,
    ),
    (
        "delete",
        "/realms/{realm}/environments/{env}/deployments/{pipeline}",
        "Stop and delete a deployment (?major=)",
        "deployments",
        false,
    ),
    (
        "get",
        "/realms/{realm}/environments/{env}/deployments/{pipeline}/history",
        "Deployment history, newest first",
        "deployments",
        false,
    ),
    (
        "post",
        "/realms/{realm}/environments/{env}/deployments/{pipeline}/rollback",
        "Redeploy an earlier history entry ({to?, major?})",
        "deployments",
        true,
    ),
    (
        "post",
        "/realms/{realm}/environments/{env}/deployments/{pipeline}/run",
        "Run a deployment once ({input, major?})",
        "executions",
        true,
    ),
    (
        "get",
        "/realms/{realm}/environments/{env}/globals",
        "List globals",
        "settings",
        false,
    ),
    (
        "put",
        "/realms/{realm}/environments/{env}/globals/{name}",
        "Set a global ({value})",
        "settings",
        true,
    ),
    (
        "delete",
        "/realms/{realm}/environments/{env}/globals/{name}",
        "Delete a global",
        "settings",
        false,
    ),
    (
        "get",
        "/realms/{realm}/environments/{env}/accounts",
        "List accounts (names, types and field names only)",
        "settings",
        false,
    ),
    (
        "put",
        "/realms/{realm}/environments/{env}/accounts/{name}",
        "Set an account ({type, fields}); values are write-only",
        "settings",
        true,
    ),
    (
        "delete",
        "/realms/{realm}/environments/{env}/accounts/{name}",
        "Delete an account",
        "settings",
        false,
    ),
    (
        "get",
        "/realms/{realm}/consumers",
        "Consumers of every environment",
        "consumers",
        false,
    ),
    (
        "get",
        "/realms/{realm}/environments/{env}/consumers",
        "List consumers",
        "consumers",
        false,
    ),
    (
        "post",
        "/realms/{realm}/environments/{env}/consumers",
        "Create a consumer and its first key (shown once)",
        "consumers",
        true,
    ),
    (
        "get",
        "/realms/{realm}/environments/{env}/consumers/{name}",
        "Get a consumer and its key ids",
        "consumers",
        false,
    ),
    (
        "patch",
        "/realms/{realm}/environments/{env}/consumers/{name}",
        "Change pipelines or rate limit",
        "consumers",
        true,
    ),
    (
        "delete",
        "/realms/{realm}/environments/{env}/consumers/{name}",
        "Delete a consumer and its keys",
        "consumers",
        false,
    ),
    (
        "post",
        "/realms/{realm}/environments/{env}/consumers/{name}/keys",
        "Add a key (shown once)",
        "consumers",
        false,
    ),
    (
        "delete",
        "/realms/{realm}/environments/{env}/consumers/{name}/keys/{id}",
        "Revoke a key",
        "consumers",
        false,
    ),
    (
        "get",
        "/realms/{realm}/executions",
        "Search executions (environment, pipeline, status, key, q, from, to)",
        "executions",
        false,
    ),
    (
        "get",
        "/realms/{realm}/executions/{key}",
        "One execution with its log lines and trace",
        "executions",
        false,
    ),
    (
        "post",
        "/realms/{realm}/executions/{key}/rerun",
        "Run an execution's input again",
        "executions",
        false,
    ),
    (
        "get",
        "/realms/{realm}/dead-letters",
        "Event deliveries that ran out of attempts",
        "executions",
        false,
    ),
    (
        "post",
        "/realms/{realm}/dead-letters/{id}/redrive",
        "Put a dead letter back in the queue",
        "executions",
        false,
    ),
];

fn parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(build())
}

/// The document.
pub fn build() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, tag, body) in ROUTES {
        let entry = paths.entry((*path).to_owned()).or_insert_with(|| json!({}));
        let mut op = json!({
            "summary": summary,
            "tags": [tag],
            "parameters": parameters(path),
            "responses": {
                "200": {"description": "Done", "content": {"application/json": {}}},
                "4XX": {"description": "The request was refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if *body {
            op["requestBody"] =
                json!({"content": {"application/json": {"schema": {"type": "object"}}}});
        }
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sluice control-plane API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Realms, pipelines, deployments, settings, consumers and executions. Send `Authorization: Bearer <token>`. Lists take `limit` (1-1000, default 50) and `offset` and answer `{items, next}`.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {},
                    },
                },
            },
        },
    })
}
