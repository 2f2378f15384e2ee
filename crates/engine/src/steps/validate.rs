//! `validate`: check the message against a JSON Schema.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_lang::SchemaValidator;
use sluice_spec::StepKind;

use super::{Step, StepFuture, language_error, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, Message, StepCx};

/// Fields of the `validate` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateConfig {
    /// A JSON Schema (2020-12 unless `$schema` says otherwise; no remote `$ref`).
    /// Taken literally (no Double Braces).
    schema: Value,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "validate",
        summary: "Check the message against a JSON Schema; error `validation` (400) lists every violation.",
        schema: schema_of::<ValidateConfig>,
    },
    compile,
};

struct ValidateStep(SchemaValidator);

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: ValidateConfig = cx.config()?;
    match SchemaValidator::compile(&config.schema) {
        Ok(v) => Some(Box::new(ValidateStep(v))),
        Err(e) => {
            cx.problem(cx.path().key("schema"), e.to_string());
            None
        }
    }
}

impl Step for ValidateStep {
    fn run<'a>(&'a self, message: Message, _: &'a mut Context) -> StepFuture<'a> {
        ready(
            self.0
                .validate(&message)
                .map(|()| message)
                .map_err(language_error),
        )
    }
}
