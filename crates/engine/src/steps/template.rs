//! `template`: render Jinja text (minijinja), bounded in work and size.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_lang::{Jinja, Limits};
use sluice_spec::StepKind;

use super::{LANGUAGE_VARIABLES, Step, StepFuture, language_error, language_values, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, FlowError, Message, StepCx};

/// What the step outputs.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Output {
    /// The rendered text as a string (default).
    #[default]
    Text,
    /// The rendered text parsed as JSON.
    Json,
}

/// Fields of the `template` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateConfig {
    /// Jinja source; `message`, `item`, `index`, `error`, `global` and `metadata`
    /// are variables. Taken literally (no Double Braces).
    template: String,
    /// text (default) or json.
    #[serde(default)]
    output: Output,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "template",
        summary: "Render a Jinja template: the text, or the text parsed as JSON.",
        schema: schema_of::<TemplateConfig>,
    },
    compile,
};

struct TemplateStep {
    template: Jinja,
    output: Output,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: TemplateConfig = cx.config()?;
    match Jinja::compile(&config.template, Limits::default()) {
        Ok(template) => Some(Box::new(TemplateStep {
            template,
            output: config.output,
        })),
        Err(e) => {
            cx.problem(cx.path().key("template"), e.to_string());
            None
        }
    }
}

impl Step for TemplateStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let mut vars = Map::new();
        vars.insert("message".into(), (*message).clone());
        for (name, value) in LANGUAGE_VARIABLES.iter().zip(language_values(cx)) {
            vars.insert((*name).into(), value);
        }
        let result = self
            .template
            .render(&Value::Object(vars))
            .map_err(language_error)
            .and_then(|text| match self.output {
                Output::Text => Ok(Value::String(text)),
                Output::Json => serde_json::from_str(&text).map_err(|e| {
                    FlowError::new(
                        "transform",
                        500,
                        format!("the rendered template is not JSON: {e}"),
                    )
                }),
            });
        ready(result.map(Arc::new))
    }
}
