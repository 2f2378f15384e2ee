//! `call`: run another pipeline, waiting for its output or not.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_expr::ValueTemplate;
use sluice_spec::StepKind;

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::services::CallRequest;
use crate::{Context, FlowError, Message, StepCx};

/// Calls deeper than this are refused (a pipeline calling itself forever).
pub(crate) const MAX_CALL_DEPTH: u32 = 16;

/// Whether to wait for the called pipeline.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Wait and take its output (default).
    #[default]
    Sync,
    /// Start it and go on with `{executionKey}`.
    Async,
}

/// Fields of the `call` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallConfig {
    /// The pipeline's name (`sluice run`/`test`: a file `<name>.yaml|.yml|.json` beside this one).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,62}$"))]
    pipeline: String,
    /// Its major version (default: the latest deployed).
    #[serde(default)]
    major: Option<u32>,
    /// sync (default) or async.
    #[serde(default)]
    mode: Mode,
    /// Its input (default: the message); strings may hold expressions.
    #[serde(default)]
    input: Option<Value>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "call",
        summary: "Run another pipeline (sync: its output; async: {executionKey}).",
        schema: schema_of::<CallConfig>,
    },
    compile,
};

struct CallStep {
    pipeline: String,
    major: Option<u32>,
    detached: bool,
    input: Option<ValueTemplate>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: CallConfig = cx.config()?;
    let input = match &config.input {
        Some(v) => Some(cx.value_template("input", v)?),
        None => None,
    };
    Some(Box::new(CallStep {
        pipeline: config.pipeline,
        major: config.major,
        detached: config.mode == Mode::Async,
        input,
    }))
}

impl Step for CallStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let depth = cx.shared.call_depth + 1;
            if depth > MAX_CALL_DEPTH {
                return Err(FlowError::new(
                    "call_depth",
                    508,
                    format!(
                        "calls nested deeper than {MAX_CALL_DEPTH} (a pipeline calling itself?)"
                    ),
                ));
            }
            let input = match &self.input {
                Some(t) => cx.eval_value(t, &message)?,
                None => Arc::unwrap_or_clone(message),
            };
            let request = CallRequest {
                pipeline: self.pipeline.clone(),
                major: self.major,
                input,
                detached: self.detached,
                depth,
                services: cx.shared.services.clone(),
                globals: cx.shared.globals.clone(),
                accounts: cx.shared.accounts.clone(),
            };
            cx.shared
                .services
                .pipelines
                .call(request)
                .await
                .map(Arc::new)
        })
    }
}
