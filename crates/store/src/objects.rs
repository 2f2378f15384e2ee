//! `object-store` operations on the `objects` table: documents keyed by
//! `_id`, kept in insertion order; filters are subset matches done here,
//! so every backend answers them the same way.

use serde_json::{Value, json};
use sluice_engine::services::{ObjectOp, subset_match};
use sqlx::{Row, Sqlite, Transaction};

use crate::{Error, Result, Scope};

/// The `_id` of a document, generated (UUIDv7) when missing.
fn document_id(document: &mut Value) -> Result<String> {
    let Value::Object(map) = document else {
        return Err(Error::Invalid("a document must be a JSON object".into()));
    };
    Ok(match map.get("_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(Error::Invalid("_id must be a string or a number".into())),
        None => {
            let id = uuid::Uuid::now_v7().to_string();
            map.insert("_id".into(), Value::String(id.clone()));
            id
        }
    })
}

async fn all(
    tx: &mut Transaction<'_, Sqlite>,
    scope: &Scope,
    collection: &str,
) -> Result<Vec<(String, Value)>> {
    let rows = sqlx::query(
        "SELECT id, document FROM objects WHERE realm = ? AND environment = ? AND collection = ? ORDER BY seq",
    )
    .bind(&scope.realm)
    .bind(&scope.environment)
    .bind(collection)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("id")?;
            let doc: Value = serde_json::from_str(r.try_get::<&str, _>("document")?)?;
            Ok((id, doc))
        })
        .collect()
}

async fn write(
    tx: &mut Transaction<'_, Sqlite>,
    scope: &Scope,
    collection: &str,
    id: &str,
    document: &Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO objects (realm, environment, collection, id, seq, document) VALUES (?, ?, ?, ?, \
            (SELECT COALESCE(MAX(seq), 0) + 1 FROM objects WHERE realm = ? AND environment = ? AND collection = ?), ?) \
         ON CONFLICT (realm, environment, collection, id) DO UPDATE SET document = excluded.document",
    )
    .bind(&scope.realm)
    .bind(&scope.environment)
    .bind(collection)
    .bind(id)
    .bind(&scope.realm)
    .bind(&scope.environment)
    .bind(collection)
    .bind(serde_json::to_string(document)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn get(
    tx: &mut Transaction<'_, Sqlite>,
    scope: &Scope,
    collection: &str,
    id: &str,
) -> Result<Option<Value>> {
    let row = sqlx::query(
        "SELECT document FROM objects WHERE realm = ? AND environment = ? AND collection = ? AND id = ?",
    )
    .bind(&scope.realm)
    .bind(&scope.environment)
    .bind(collection)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| Ok(serde_json::from_str(r.try_get::<&str, _>("document")?)?))
        .transpose()
}

/// Runs one operation inside `tx`.
pub(crate) async fn execute(
    tx: &mut Transaction<'_, Sqlite>,
    scope: &Scope,
    collection: &str,
    op: ObjectOp,
) -> Result<Value> {
    Ok(match op {
        ObjectOp::Insert { mut document } => {
            let id = document_id(&mut document)?;
            if get(tx, scope, collection, &id).await?.is_some() {
                return Err(Error::Conflict(format!(
                    "a document with _id '{id}' already exists"
                )));
            }
            write(tx, scope, collection, &id, &document).await?;
            document
        }
        ObjectOp::Upsert { id, mut document } => {
            if let Value::Object(map) = &mut document {
                map.insert("_id".into(), Value::String(id.clone()));
            } else {
                return Err(Error::Invalid("a document must be a JSON object".into()));
            }
            write(tx, scope, collection, &id, &document).await?;
            document
        }
        ObjectOp::Get { id } => get(tx, scope, collection, &id)
            .await?
            .unwrap_or(Value::Null),
        ObjectOp::Find {
            filter,
            limit,
            skip,
        } => Value::Array(
            all(tx, scope, collection)
                .await?
                .into_iter()
                .filter(|(_, d)| subset_match(d, &filter))
                .skip(skip)
                .take(limit.unwrap_or(usize::MAX))
                .map(|(_, d)| d)
                .collect(),
        ),
        ObjectOp::Update { filter, set, many } => {
            let mut matched = 0u64;
            for (id, mut doc) in all(tx, scope, collection).await? {
                if !subset_match(&doc, &filter) {
                    continue;
                }
                matched += 1;
                if let (Value::Object(d), Value::Object(s)) = (&mut doc, &set) {
                    for (k, v) in s {
                        if k != "_id" {
                            d.insert(k.clone(), v.clone());
                        }
                    }
                }
                write(tx, scope, collection, &id, &doc).await?;
                if !many {
                    break;
                }
            }
            json!({"matched": matched})
        }
        ObjectOp::Delete { filter, many } => {
            let mut deleted = 0u64;
            for (id, doc) in all(tx, scope, collection).await? {
                if !subset_match(&doc, &filter) {
                    continue;
                }
                sqlx::query(
                    "DELETE FROM objects WHERE realm = ? AND environment = ? AND collection = ? AND id = ?",
                )
                .bind(&scope.realm)
                .bind(&scope.environment)
                .bind(collection)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
                deleted += 1;
                if !many {
                    break;
                }
            }
            json!({"deleted": deleted})
        }
        ObjectOp::Count { filter } => {
            let count = all(tx, scope, collection)
                .await?
                .iter()
                .filter(|(_, d)| subset_match(d, &filter))
                .count();
            json!({"count": count})
        }
    })
}
