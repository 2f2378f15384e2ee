//! `do-while`: run steps, then again while a condition on their output holds.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sluice_expr::Template;
use sluice_spec::{StepDef, StepKind};

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, FlowError, Message, StepCx, StepList, run_steps};

fn ten() -> u32 {
    10
}

/// Fields of the `do-while` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DoWhileConfig {
    /// The steps of one pass; each pass gets the previous pass's output.
    steps: Vec<StepDef>,
    /// Checked after each pass, on its output (`{{ index }}` is the pass number from 0).
    condition: String,
    /// Most passes (default 10); a condition still true after them is an error `max_iterations`.
    #[serde(default = "ten")]
    #[schemars(range(min = 1))]
    max_iterations: u32,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "do-while",
        summary: "Run steps at least once and again while the condition holds on their output.",
        schema: schema_of::<DoWhileConfig>,
    },
    compile,
};

struct DoWhileStep {
    steps: StepList,
    condition: Template,
    max: u32,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: DoWhileConfig = cx.config()?;
    let steps = cx.steps(cx.path().key("steps"), &config.steps);
    let condition = cx.template("condition", &config.condition);
    if config.max_iterations == 0 {
        cx.problem(
            cx.path().key("maxIterations"),
            "maxIterations must be at least 1",
        );
        return None;
    }
    Some(Box::new(DoWhileStep {
        steps: steps?,
        condition: condition?,
        max: config.max_iterations,
    }))
}

impl Step for DoWhileStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let mut current = message;
            let item = cx.item.clone();
            let error = cx.error.clone();
            for pass in 0..self.max {
                let saved = cx.with_frame(item.clone(), Some(Value::from(pass)), error.clone());
                let result = run_steps(&self.steps, current, cx).await;
                let again = match &result {
                    Ok(out) => cx.condition(&self.condition, out),
                    Err(_) => Ok(false),
                };
                cx.restore_frame(saved);
                current = result?;
                if !again? {
                    return Ok(current);
                }
            }
            Err(FlowError::new(
                "max_iterations",
                500,
                format!(
                    "the condition still held after {} passes (maxIterations)",
                    self.max
                ),
            )
            .with_details(serde_json::json!({"lastOutput": Arc::unwrap_or_clone(current)})))
        })
    }
}
