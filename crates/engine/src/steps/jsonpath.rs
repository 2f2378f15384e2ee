//! `jsonpath`: select parts of the message with an RFC 9535 JSONPath.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_lang::JsonPath;
use sluice_spec::StepKind;

use super::{Step, StepFuture, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, Message, StepCx};

/// Fields of the `jsonpath` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonPathConfig {
    /// An RFC 9535 JSONPath such as `$.items[?@.price > 10].sku`.
    path: String,
    /// Output the first match (or null) instead of the array of matches.
    #[serde(default)]
    single: bool,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "jsonpath",
        summary: "Select values with an RFC 9535 JSONPath: the array of matches, or the first.",
        schema: schema_of::<JsonPathConfig>,
    },
    compile,
};

struct JsonPathStep {
    path: JsonPath,
    single: bool,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: JsonPathConfig = cx.config()?;
    match JsonPath::compile(&config.path) {
        Ok(path) => Some(Box::new(JsonPathStep {
            path,
            single: config.single,
        })),
        Err(e) => {
            cx.problem(cx.path().key("path"), e.to_string());
            None
        }
    }
}

impl Step for JsonPathStep {
    fn run<'a>(&'a self, message: Message, _: &'a mut Context) -> StepFuture<'a> {
        let matches = self.path.query(&message);
        let out = if self.single {
            matches.first().map_or(Value::Null, |v| (*v).clone())
        } else {
            Value::Array(matches.into_iter().cloned().collect())
        };
        ready(Ok(Arc::new(out)))
    }
}
