//! `parallel`: run named branches at the same time on the same message.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_spec::{StepDef, StepKind};

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, Message, StepCx, StepList, run_steps};

/// Fields of the `parallel` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParallelConfig {
    /// Branch name → its steps; every branch gets the same input.
    #[schemars(with = "BTreeMap<String, Vec<StepDef>>")]
    branches: Map<String, Value>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "parallel",
        summary: "Run named branches concurrently; output {name: branch output}.",
        schema: schema_of::<ParallelConfig>,
    },
    compile,
};

struct ParallelStep {
    branches: Vec<(String, StepList)>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: ParallelConfig = cx.config()?;
    if config.branches.is_empty() {
        cx.problem(
            cx.path().key("branches"),
            "a parallel step needs at least one branch",
        );
        return None;
    }
    let mut branches = Vec::new();
    let mut ok = true;
    for (name, steps) in &config.branches {
        let at = cx.path().key("branches").key(name);
        let defs: Vec<StepDef> = match serde_json::from_value(steps.clone()) {
            Ok(d) => d,
            Err(e) => {
                cx.problem(at, format!("a branch is a list of steps: {e}"));
                ok = false;
                continue;
            }
        };
        match cx.steps(at, &defs) {
            Some(list) => branches.push((name.clone(), list)),
            None => ok = false,
        }
    }
    ok.then(|| Box::new(ParallelStep { branches }) as Box<dyn Step>)
}

impl Step for ParallelStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let parent: &Context = cx;
            let runs = self.branches.iter().map(|(name, steps)| {
                let mut child = parent.fork();
                let input = message.clone();
                async move {
                    let r = run_steps(steps, input, &mut child).await;
                    (name, r, child)
                }
            });
            let results = futures_util::future::join_all(runs).await;
            let mut output = Map::new();
            let mut first_error = None;
            for (name, result, child) in results {
                cx.join(child);
                match result {
                    Ok(out) => {
                        output.insert(name.clone(), Arc::unwrap_or_clone(out));
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(Arc::new(Value::Object(output))),
            }
        })
    }
}
