//! `publish`: send an event to the pipelines subscribed to its name.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_expr::ValueTemplate;
use sluice_spec::StepKind;

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, Message, StepCx};

/// Fields of the `publish` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishConfig {
    /// The event name (`event` triggers subscribe to it).
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"))]
    event: String,
    /// The payload (default: the message); strings may hold expressions.
    #[serde(default)]
    payload: Option<Value>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "publish",
        summary: "Publish an event for `event` triggers; the message passes unchanged.",
        schema: schema_of::<PublishConfig>,
    },
    compile,
};

struct PublishStep {
    event: String,
    payload: Option<ValueTemplate>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: PublishConfig = cx.config()?;
    let payload = match &config.payload {
        Some(p) => Some(cx.value_template("payload", p)?),
        None => None,
    };
    Some(Box::new(PublishStep {
        event: config.event,
        payload,
    }))
}

impl Step for PublishStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let payload = match &self.payload {
                Some(t) => cx.eval_value(t, &message)?,
                None => (*message).clone(),
            };
            cx.services().events.publish(&self.event, payload).await?;
            Ok(message)
        })
    }
}
