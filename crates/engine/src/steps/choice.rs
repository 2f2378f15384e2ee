//! `choice`: run the first branch whose condition holds.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json_path::JsonPath;
use sluice_expr::Template;
use sluice_spec::{StepDef, StepKind};

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, Message, StepCx, StepList, run_steps};

/// One branch of a `choice`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct When {
    /// An expression; the branch runs when it is true.
    #[serde(default)]
    condition: Option<String>,
    /// An RFC 9535 JSONPath; the branch runs when it matches anything in the message.
    #[serde(default)]
    jsonpath: Option<String>,
    /// The branch's steps.
    steps: Vec<StepDef>,
}

/// Fields of the `choice` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChoiceConfig {
    /// Branches, tried in order.
    when: Vec<When>,
    /// Steps run when no branch matches (none: the message passes unchanged).
    #[serde(default)]
    otherwise: Vec<StepDef>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "choice",
        summary: "Run the first branch whose condition (expression or JSONPath) holds, else `otherwise`.",
        schema: schema_of::<ChoiceConfig>,
    },
    compile,
};

enum Test {
    Expression(Template),
    Path(JsonPath),
}

struct ChoiceStep {
    branches: Vec<(Test, StepList)>,
    otherwise: StepList,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: ChoiceConfig = cx.config()?;
    let mut branches = Vec::new();
    let mut ok = true;
    for (i, when) in config.when.iter().enumerate() {
        let at = cx.path().key("when").index(i);
        let test = match (&when.condition, &when.jsonpath) {
            (Some(c), None) => cx.template_at(at.key("condition"), c).map(Test::Expression),
            (None, Some(p)) => match JsonPath::parse(p) {
                Ok(path) => Some(Test::Path(path)),
                Err(e) => {
                    cx.problem(at.key("jsonpath"), format!("invalid JSONPath: {e}"));
                    None
                }
            },
            _ => {
                cx.problem(
                    at.clone(),
                    "a branch needs exactly one of `condition` or `jsonpath`",
                );
                None
            }
        };
        let steps = cx.steps(at.key("steps"), &when.steps);
        match (test, steps) {
            (Some(t), Some(s)) => branches.push((t, s)),
            _ => ok = false,
        }
    }
    let otherwise = cx.steps(cx.path().key("otherwise"), &config.otherwise);
    match (ok, otherwise) {
        (true, Some(otherwise)) => Some(Box::new(ChoiceStep {
            branches,
            otherwise,
        })),
        _ => None,
    }
}

impl Step for ChoiceStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let mut chosen = &self.otherwise;
            for (test, steps) in &self.branches {
                let hit = match test {
                    Test::Expression(t) => cx.condition(t, &message)?,
                    Test::Path(p) => !p.query(&message).is_empty(),
                };
                if hit {
                    chosen = steps;
                    break;
                }
            }
            run_steps(chosen, message, cx).await
        })
    }
}
