//! `session`: keep values between steps or executions, with expiry and locks.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::{HumanDuration, StepKind};

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, FlowError, Message, StepCx};

/// What the step does.
#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Operation {
    /// Output: the stored value, or null.
    Get,
    /// Store `value` (default: the message); output: the message unchanged.
    Put,
    /// Output: `{"deleted": bool}`.
    Delete,
    /// Take a lock held until `ttl` or `unlock`; output: `{"locked": bool}`.
    Lock,
    /// Release a lock this execution holds; output: `{"unlocked": bool}`.
    Unlock,
}

/// Who sees the key.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scope {
    /// Only this execution (default).
    #[default]
    Execution,
    /// Every execution of the realm and environment.
    Global,
}

/// Fields of the `session` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionConfig {
    operation: Operation,
    /// The key; may hold expressions.
    key: String,
    /// `put`: the value (default: the message); strings may hold expressions.
    #[serde(default)]
    value: Option<Value>,
    /// execution (default) or global.
    #[serde(default)]
    scope: Scope,
    /// `put`: expiry (default: none); `lock`: how long the lock holds (default 30s).
    #[serde(default)]
    ttl: Option<HumanDuration>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "session",
        summary: "Get, put or delete session values (per execution or global) and take locks.",
        schema: schema_of::<SessionConfig>,
    },
    compile,
};

struct SessionStep {
    operation: Operation,
    key: Template,
    value: Option<ValueTemplate>,
    scope: Scope,
    ttl: Option<Duration>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: SessionConfig = cx.config()?;
    let key = cx.template("key", &config.key)?;
    let value = match &config.value {
        Some(v) => Some(cx.value_template("value", v)?),
        None => None,
    };
    Some(Box::new(SessionStep {
        operation: config.operation,
        key,
        value,
        scope: config.scope,
        ttl: config.ttl.map(|t| t.0),
    }))
}

impl Step for SessionStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let key = cx.render(&self.key, &message)?;
            if key.is_empty() {
                return Err(FlowError::new(
                    "validation",
                    400,
                    "the session key is empty",
                ));
            }
            let key = match self.scope {
                Scope::Execution => format!("execution:{}:{key}", cx.execution_key()),
                Scope::Global => format!("global:{key}"),
            };
            let owner = cx.execution_key().to_owned();
            let store = cx.services().sessions.clone();
            let out = match self.operation {
                Operation::Get => store.get(&key).await?.unwrap_or(Value::Null),
                Operation::Put => {
                    let value = match &self.value {
                        Some(t) => cx.eval_value(t, &message)?,
                        None => (*message).clone(),
                    };
                    store.put(&key, value, self.ttl).await?;
                    return Ok(message);
                }
                Operation::Delete => json!({"deleted": store.delete(&key).await?}),
                Operation::Lock => {
                    let ttl = self.ttl.unwrap_or(Duration::from_secs(30));
                    json!({"locked": store.lock(&key, &owner, ttl).await?})
                }
                Operation::Unlock => json!({"unlocked": store.unlock(&key, &owner).await?}),
            };
            Ok(Arc::new(out))
        })
    }
}
