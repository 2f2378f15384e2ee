//! `jolt`: reshape the message with a JOLT chain.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_jolt::Chain;
use sluice_spec::StepKind;

use super::{Step, StepFuture, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, FlowError, Message, StepCx};

/// Fields of the `jolt` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoltConfig {
    /// A JOLT chain: operations (shift, default, remove, modify-overwrite-beta,
    /// modify-default-beta, cardinality, sort) with their specs. Taken literally.
    spec: Value,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "jolt",
        summary: "Transform the message with a JOLT chain.",
        schema: schema_of::<JoltConfig>,
    },
    compile,
};

struct JoltStep(Chain);

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: JoltConfig = cx.config()?;
    match Chain::compile(&config.spec) {
        Ok(chain) => Some(Box::new(JoltStep(chain))),
        Err(e) => {
            cx.problem(cx.path().key("spec"), format!("invalid JOLT spec: {e}"));
            None
        }
    }
}

impl Step for JoltStep {
    fn run<'a>(&'a self, message: Message, _: &'a mut Context) -> StepFuture<'a> {
        let input = Arc::unwrap_or_clone(message);
        ready(
            self.0
                .apply(input)
                .map(Arc::new)
                .map_err(|e| FlowError::new("transform", 500, format!("JOLT: {e}"))),
        )
    }
}
