//! `json`: build the output from a JSON template.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_expr::ValueTemplate;
use sluice_spec::StepKind;

use super::{Step, StepFuture, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, Message, StepCx};

/// Fields of the `json` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonConfig {
    /// Any JSON; strings may hold expressions. It becomes the output.
    value: Value,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "json",
        summary: "Build the output from a JSON template.",
        schema: schema_of::<JsonConfig>,
    },
    compile,
};

struct JsonStep {
    value: ValueTemplate,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: JsonConfig = cx.config()?;
    let value = cx.value_template("value", &config.value)?;
    Some(Box::new(JsonStep { value }))
}

impl Step for JsonStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        ready(cx.eval_value(&self.value, &message).map(Arc::new))
    }
}
