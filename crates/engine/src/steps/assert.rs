//! `assert`: fail with an `assertion` error unless a condition holds.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_expr::Template;
use sluice_spec::StepKind;

use super::{Step, StepFuture, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, FlowError, Message, StepCx};

fn four_hundred() -> u16 {
    400
}

/// Fields of the `assert` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssertConfig {
    /// The expression that must be true.
    condition: String,
    /// The error message when it is not (may hold expressions).
    #[serde(default)]
    message: Option<String>,
    /// The error's status (default 400).
    #[serde(default = "four_hundred")]
    #[schemars(range(min = 100, max = 599))]
    status: u16,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "assert",
        summary: "Fail with an `assertion` error (400) unless the condition holds.",
        schema: schema_of::<AssertConfig>,
    },
    compile,
};

struct AssertStep {
    condition: Template,
    message: Option<Template>,
    status: u16,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: AssertConfig = cx.config()?;
    if !(100..600).contains(&config.status) {
        cx.problem(
            cx.path().key("status"),
            format!("status {} is not an HTTP status (100-599)", config.status),
        );
        return None;
    }
    let condition = cx.template("condition", &config.condition);
    let message = match &config.message {
        Some(m) => Some(cx.template("message", m)?),
        None => None,
    };
    Some(Box::new(AssertStep {
        condition: condition?,
        message,
        status: config.status,
    }))
}

impl Step for AssertStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let result = (|| {
            if cx.condition(&self.condition, &message)? {
                return Ok(message);
            }
            let text = match &self.message {
                Some(t) => cx.render(t, &message)?.into_owned(),
                None => format!("assertion failed: {}", self.condition.source()),
            };
            Err(FlowError::new("assertion", self.status, text))
        })();
        ready(result)
    }
}
