//! `jq`: transform the message with a jq filter (jaq).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_lang::Jq;
use sluice_spec::StepKind;

use super::{LANGUAGE_VARIABLES, Step, StepFuture, language_error, language_values, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, Message, StepCx};

/// Fields of the `jq` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JqConfig {
    /// The jq filter, run on the message; `$item`, `$index`, `$error`, `$global`
    /// and `$metadata` are variables. Taken literally (no Double Braces).
    filter: String,
    /// Output every result as an array instead of the first.
    #[serde(default)]
    all: bool,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "jq",
        summary: "Transform the message with a jq filter: its first result (or all, as an array).",
        schema: schema_of::<JqConfig>,
    },
    compile,
};

struct JqStep {
    filter: Jq,
    all: bool,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: JqConfig = cx.config()?;
    match Jq::compile(&config.filter, LANGUAGE_VARIABLES) {
        Ok(filter) => Some(Box::new(JqStep {
            filter,
            all: config.all,
        })),
        Err(e) => {
            cx.problem(cx.path().key("filter"), e.to_string());
            None
        }
    }
}

impl Step for JqStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let vars = language_values(cx);
        let input = Arc::unwrap_or_clone(message);
        let result = if self.all {
            self.filter.all(input, vars).map(Value::Array)
        } else {
            self.filter.first(input, vars)
        };
        ready(result.map(Arc::new).map_err(language_error))
    }
}
