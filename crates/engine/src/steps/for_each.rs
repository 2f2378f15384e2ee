//! `for-each`: run steps for every element of an array, optionally in parallel.

use std::sync::Arc;

use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_expr::Template;
use sluice_spec::{StepDef, StepKind};

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::run::handle;
use crate::{Context, FlowError, Message, StepCx, StepList, run_steps};

fn one() -> usize {
    1
}

/// Fields of the `for-each` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ForEachConfig {
    /// An expression giving the array to walk.
    items: String,
    /// How many elements run at once (default 1: in order).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1024))]
    parallel: usize,
    /// Steps run with the element as the message (`{{ item }}`, `{{ index }}`).
    steps: Vec<StepDef>,
    /// Add `results` (each element's output, in element order) to the output.
    #[serde(default)]
    collect: bool,
    /// Run for an element that failed; the element counts as failed and the loop goes on.
    /// Without handlers, the first failure ends the step.
    #[serde(default)]
    on_exception: Vec<StepDef>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "for-each",
        summary: "Run steps for each element of an array; output {total, success, failed, results?}.",
        schema: schema_of::<ForEachConfig>,
    },
    compile,
};

struct ForEachStep {
    items: Template,
    parallel: usize,
    steps: StepList,
    collect: bool,
    on_exception: StepList,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: ForEachConfig = cx.config()?;
    let items = cx.template("items", &config.items);
    let steps = cx.steps(cx.path().key("steps"), &config.steps);
    let on_exception = cx.steps(cx.path().key("onException"), &config.on_exception);
    if config.parallel == 0 {
        cx.problem(cx.path().key("parallel"), "parallel must be at least 1");
        return None;
    }
    Some(Box::new(ForEachStep {
        items: items?,
        parallel: config.parallel,
        steps: steps?,
        collect: config.collect,
        on_exception: on_exception?,
    }))
}

/// One element's outcome: its output, and whether it failed (and was handled).
type ItemResult = Result<(Message, bool), FlowError>;

impl ForEachStep {
    async fn one(&self, element: Value, index: usize, cx: &mut Context) -> ItemResult {
        let item = Arc::new(element);
        let saved = cx.with_frame(Some(item.clone()), Some(Value::from(index)), None);
        let result = match run_steps(&self.steps, item.clone(), cx).await {
            Ok(out) => Ok((out, false)),
            Err(e) if !self.on_exception.is_empty() => handle(&self.on_exception, e, item, cx)
                .await
                .map(|out| (out, true)),
            Err(e) => Err(e),
        };
        cx.restore_frame(saved);
        result
    }
}

impl Step for ForEachStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let items = match cx.eval(&self.items, &message)?.into_owned() {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                other => {
                    return Err(FlowError::new(
                        "validation",
                        400,
                        format!("for-each items must be an array, got {}", type_name(&other)),
                    ));
                }
            };
            let total = items.len();
            let mut outcomes: Vec<ItemResult> = Vec::with_capacity(total);
            if self.parallel <= 1 {
                for (i, element) in items.into_iter().enumerate() {
                    let r = self.one(element, i, cx).await;
                    let stop = r.is_err();
                    outcomes.push(r);
                    if stop {
                        break;
                    }
                }
            } else {
                let parent: &Context = cx;
                let runs = futures_util::stream::iter(items.into_iter().enumerate())
                    .map(|(i, element)| {
                        let mut child = parent.fork();
                        async move {
                            let r = self.one(element, i, &mut child).await;
                            (r, child)
                        }
                    })
                    .buffered(self.parallel)
                    .collect::<Vec<_>>()
                    .await;
                for (r, child) in runs {
                    cx.join(child);
                    outcomes.push(r);
                }
            }
            let mut results = Vec::new();
            let mut failed = 0usize;
            for outcome in outcomes {
                let (out, item_failed) = outcome?;
                failed += usize::from(item_failed);
                if self.collect {
                    results.push(Arc::unwrap_or_clone(out));
                }
            }
            let mut output = Map::new();
            output.insert("total".into(), Value::from(total));
            output.insert("success".into(), Value::from(total - failed));
            output.insert("failed".into(), Value::from(failed));
            if self.collect {
                output.insert("results".into(), Value::Array(results));
            }
            Ok(Arc::new(Value::Object(output)))
        })
    }
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
