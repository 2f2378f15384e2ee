//! `set`: write values at dotted keys of the message, remove others.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_expr::ValueTemplate;
use sluice_spec::StepKind;

use super::{Step, StepFuture, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, FieldRef, FlowError, Message, StepCx, Writes};

/// Fields of the `set` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetConfig {
    /// Dotted key → value; strings may hold expressions, evaluated on the incoming message.
    #[serde(default)]
    values: Map<String, Value>,
    /// Dotted keys to remove (after the values are set).
    #[serde(default)]
    remove: Vec<String>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "set",
        summary: "Set values at dotted keys of the message and remove keys.",
        schema: schema_of::<SetConfig>,
    },
    compile,
};

struct SetStep {
    values: Vec<(FieldRef, ValueTemplate)>,
    remove: Vec<FieldRef>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: SetConfig = cx.config()?;
    let mut values = Vec::with_capacity(config.values.len());
    let mut ok = true;
    for (key, value) in &config.values {
        let path = cx.path().key("values").key(key);
        let field = cx.field_ref(path.clone(), key);
        let template = cx.value_template_at(path, value);
        match (field, template) {
            (Some(f), Some(t)) => values.push((f, t)),
            _ => ok = false,
        }
    }
    let mut remove = Vec::with_capacity(config.remove.len());
    for (i, key) in config.remove.iter().enumerate() {
        let path = cx.path().key("remove").index(i);
        match cx.field_ref(path, key) {
            Some(f) => remove.push(f),
            None => ok = false,
        }
    }
    ok.then(|| Box::new(SetStep { values, remove }) as Box<dyn Step>)
}

impl Step for SetStep {
    fn run<'a>(&'a self, mut message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let result = self.writes_over(&message, cx).map(|writes| {
            writes.apply(Arc::make_mut(&mut message));
            message
        });
        ready(result)
    }

    fn writes<'a>(
        &'a self,
        message: &Value,
        cx: &Context,
    ) -> Option<Result<Writes<'a>, FlowError>> {
        Some(self.writes_over(message, cx))
    }
}

impl SetStep {
    /// Every value is computed over the incoming message before any is
    /// written.
    fn writes_over(&self, message: &Value, cx: &Context) -> Result<Writes<'_>, FlowError> {
        let mut set = Vec::with_capacity(self.values.len());
        for (field, template) in &self.values {
            set.push((field, cx.eval_value(template, message)?));
        }
        Ok(Writes::new(set, &self.remove))
    }
}
