//! `delay`: wait, then pass the message on.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_spec::{HumanDuration, StepKind};

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, Message, StepCx};

/// Fields of the `delay` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelayConfig {
    /// How long to wait.
    duration: HumanDuration,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "delay",
        summary: "Wait for a duration; the message passes unchanged.",
        schema: schema_of::<DelayConfig>,
    },
    compile,
};

struct DelayStep(std::time::Duration);

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: DelayConfig = cx.config()?;
    Some(Box::new(DelayStep(config.duration.0)))
}

impl Step for DelayStep {
    fn run<'a>(&'a self, message: Message, _: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            Ok(message)
        })
    }
}
