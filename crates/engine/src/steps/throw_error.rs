//! `throw-error`: end the flow with an error of your choosing.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::StepKind;

use super::{Step, StepFuture, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, FlowError, Message, StepCx};

fn five_hundred() -> u16 {
    500
}

/// Fields of the `throw-error` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThrowErrorConfig {
    /// The error message; may hold expressions.
    message: String,
    /// HTTP-style status (default 500).
    #[serde(default = "five_hundred")]
    #[schemars(range(min = 100, max = 599))]
    status: u16,
    /// A stable machine word (default `thrown`).
    #[serde(default)]
    code: Option<String>,
    /// Anything more, as JSON (strings may hold expressions).
    #[serde(default)]
    details: Option<Value>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "throw-error",
        summary: "Fail with an error: message, status, code and details.",
        schema: schema_of::<ThrowErrorConfig>,
    },
    compile,
};

struct ThrowErrorStep {
    message: Template,
    status: u16,
    code: Cow<'static, str>,
    details: Option<ValueTemplate>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: ThrowErrorConfig = cx.config()?;
    if !(100..600).contains(&config.status) {
        cx.problem(
            cx.path().key("status"),
            format!("status {} is not an HTTP status (100-599)", config.status),
        );
        return None;
    }
    let message = cx.template("message", &config.message)?;
    let details = match &config.details {
        Some(d) => Some(cx.value_template("details", d)?),
        None => None,
    };
    Some(Box::new(ThrowErrorStep {
        message,
        status: config.status,
        code: config.code.map_or(Cow::Borrowed("thrown"), Cow::Owned),
        details,
    }))
}

impl Step for ThrowErrorStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let result = (|| {
            let text = cx.render(&self.message, &message)?.into_owned();
            let mut error = FlowError::new(self.code.clone(), self.status, text);
            if let Some(d) = &self.details {
                error = error.with_details(cx.eval_value(d, &message)?);
            }
            Err(error)
        })();
        ready(result)
    }
}
