//! `object-store`: collections of JSON documents kept by the platform.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::StepKind;

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::services::ObjectOp;
use crate::{Context, FlowError, Message, StepCx};

/// What the step does.
#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Operation {
    /// Store `document` (an `_id` is generated when missing); output: the stored document.
    Insert,
    /// Store `document` under `documentId`, replacing any; output: the stored document.
    Upsert,
    /// Output: the document with `documentId`, or null.
    Get,
    /// Output: the documents containing `filter`, as an array.
    Find,
    /// Merge `set` into documents containing `filter`; output: `{"matched": n}`.
    Update,
    /// Delete documents containing `filter`; output: `{"deleted": n}`.
    Delete,
    /// Output: `{"count": n}` of documents containing `filter`.
    Count,
}

/// Fields of the `object-store` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectStoreConfig {
    /// The collection's name.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"))]
    collection: String,
    operation: Operation,
    /// `upsert`, `get`: the document's `_id`; may hold expressions.
    #[serde(default, rename = "documentId")]
    document_id: Option<String>,
    /// `insert`, `upsert`: the document (default: the message).
    #[serde(default)]
    document: Option<Value>,
    /// `find`, `update`, `delete`, `count`: documents containing this object match (default: all).
    #[serde(default)]
    filter: Option<Value>,
    /// `update`: the fields to write.
    #[serde(default)]
    set: Option<Value>,
    /// `update`, `delete`: every match instead of the first (default false).
    #[serde(default)]
    many: bool,
    /// `find`: most documents returned.
    #[serde(default)]
    limit: Option<usize>,
    /// `find`: documents skipped first.
    #[serde(default)]
    skip: usize,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "object-store",
        summary: "Insert, upsert, get, find, update, delete or count JSON documents in a collection.",
        schema: schema_of::<ObjectStoreConfig>,
    },
    compile,
};

struct ObjectStoreStep {
    collection: String,
    operation: Operation,
    id: Option<Template>,
    document: Option<ValueTemplate>,
    filter: Option<ValueTemplate>,
    set: Option<ValueTemplate>,
    many: bool,
    limit: Option<usize>,
    skip: usize,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: ObjectStoreConfig = cx.config()?;
    let needs_id = matches!(config.operation, Operation::Upsert | Operation::Get);
    if needs_id && config.document_id.is_none() {
        cx.problem(cx.path().clone(), "this operation needs a `documentId`");
        return None;
    }
    if config.operation == Operation::Update && config.set.is_none() {
        cx.problem(
            cx.path().clone(),
            "`update` needs `set`: the fields to write",
        );
        return None;
    }
    let id = match &config.document_id {
        Some(s) => Some(cx.template("documentId", s)?),
        None => None,
    };
    let tree = |cx: &mut StepCx<'_, '_>, field: &str, v: &Option<Value>| match v {
        Some(v) => cx.value_template(field, v).map(Some),
        None => Some(None),
    };
    let document = tree(cx, "document", &config.document)?;
    let filter = tree(cx, "filter", &config.filter)?;
    let set = tree(cx, "set", &config.set)?;
    Some(Box::new(ObjectStoreStep {
        collection: config.collection,
        operation: config.operation,
        id,
        document,
        filter,
        set,
        many: config.many,
        limit: config.limit,
        skip: config.skip,
    }))
}

impl ObjectStoreStep {
    fn op(&self, message: &Message, cx: &Context) -> Result<ObjectOp, FlowError> {
        let tree = |t: &Option<ValueTemplate>, default: &Value| match t {
            Some(t) => cx.eval_value(t, message),
            None => Ok(default.clone()),
        };
        let id = || -> Result<String, FlowError> {
            let t = self
                .id
                .as_ref()
                .ok_or_else(|| FlowError::new("validation", 400, "missing id"))?;
            let id = cx.render(t, message)?.into_owned();
            if id.is_empty() {
                return Err(FlowError::new(
                    "validation",
                    400,
                    "the document id is empty",
                ));
            }
            Ok(id)
        };
        let all = Value::Object(serde_json::Map::new());
        Ok(match self.operation {
            Operation::Insert => ObjectOp::Insert {
                document: tree(&self.document, message)?,
            },
            Operation::Upsert => ObjectOp::Upsert {
                id: id()?,
                document: tree(&self.document, message)?,
            },
            Operation::Get => ObjectOp::Get { id: id()? },
            Operation::Find => ObjectOp::Find {
                filter: tree(&self.filter, &all)?,
                limit: self.limit,
                skip: self.skip,
            },
            Operation::Update => ObjectOp::Update {
                filter: tree(&self.filter, &all)?,
                set: tree(&self.set, &all)?,
                many: self.many,
            },
            Operation::Delete => ObjectOp::Delete {
                filter: tree(&self.filter, &all)?,
                many: self.many,
            },
            Operation::Count => ObjectOp::Count {
                filter: tree(&self.filter, &all)?,
            },
        })
    }
}

impl Step for ObjectStoreStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let op = self.op(&message, cx)?;
            let store = cx.services().objects.clone();
            store.execute(&self.collection, op).await.map(Arc::new)
        })
    }
}
