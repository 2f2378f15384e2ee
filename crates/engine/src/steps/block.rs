//! `block`: a group of steps with its own exception handler (try/catch).

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_spec::{StepDef, StepKind};

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::run::run_guarded;
use crate::{Context, Message, StepCx, StepList};

/// Fields of the `block` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct BlockConfig {
    /// The steps of the block.
    steps: Vec<StepDef>,
    /// Run when a step fails, with `{{ error }}` and the block's input as the message; their output is the block's.
    #[serde(default)]
    on_exception: Vec<StepDef>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "block",
        summary: "Run steps as a group; `onException` handles their errors.",
        schema: schema_of::<BlockConfig>,
    },
    compile,
};

struct BlockStep {
    steps: StepList,
    on_exception: StepList,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: BlockConfig = cx.config()?;
    let steps = cx.steps(cx.path().key("steps"), &config.steps);
    let on_exception = cx.steps(cx.path().key("onException"), &config.on_exception);
    Some(Box::new(BlockStep {
        steps: steps?,
        on_exception: on_exception?,
    }))
}

impl Step for BlockStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(run_guarded(&self.steps, &self.on_exception, message, cx))
    }
}
