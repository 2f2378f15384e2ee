//! `log`: write a (masked) line to the execution's log.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_expr::Template;
use sluice_spec::StepKind;

use super::{Step, StepFuture, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, Message, StepCx};

/// Log levels.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

/// Fields of the `log` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogConfig {
    /// The text; may hold expressions. Sensitive fields and secrets are masked.
    message: String,
    /// debug, info (default), warn or error.
    #[serde(default)]
    level: Level,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "log",
        summary: "Write a line to the execution log; the message passes unchanged.",
        schema: schema_of::<LogConfig>,
    },
    compile,
};

struct LogStep {
    label: std::sync::Arc<str>,
    message: Template,
    level: &'static str,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: LogConfig = cx.config()?;
    let message = cx.template("message", &config.message)?;
    let level = match config.level {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    };
    Some(Box::new(LogStep {
        label: cx.label().into(),
        message,
        level,
    }))
}

impl Step for LogStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let text = match cx.render(&self.message, &message) {
            Ok(t) => t.into_owned(),
            Err(e) => return ready(Err(e)),
        };
        cx.log(self.level, &self.label, &text, &message);
        ready(Ok(message))
    }
}
