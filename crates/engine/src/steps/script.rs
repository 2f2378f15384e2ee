//! `script`: run JavaScript (QuickJS) with time and memory limits, off the
//! I/O threads.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_lang::{Limits, Script};
use sluice_spec::{ByteSize, HumanDuration, StepKind};

use super::{LANGUAGE_VARIABLES, Step, StepFuture, language_error, language_values};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, FlowError, Message, StepCx};

/// Fields of the `script` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ScriptConfig {
    /// A JavaScript function body; `message`, `item`, `index`, `error`, `global`
    /// and `metadata` are in scope. What it returns is the output (`undefined`:
    /// the message unchanged). Taken literally (no Double Braces).
    code: String,
    /// Longest run (default 1s); past it the step fails with `timeout`.
    #[serde(default)]
    time_limit: Option<HumanDuration>,
    /// Most memory the script may use (default 32MiB).
    #[serde(default)]
    memory_limit: Option<ByteSize>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "script",
        summary: "Run a JavaScript function body with time and memory limits; its return value is the output.",
        schema: schema_of::<ScriptConfig>,
    },
    compile,
};

struct ScriptStep {
    script: Arc<Script>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: ScriptConfig = cx.config()?;
    let mut limits = Limits::default();
    if let Some(t) = config.time_limit {
        limits.time = t.0.min(Duration::from_secs(60));
    }
    if let Some(m) = config.memory_limit {
        limits.memory = usize::try_from(m.0).unwrap_or(usize::MAX);
    }
    let mut params = vec!["message"];
    params.extend_from_slice(LANGUAGE_VARIABLES);
    match Script::compile(&config.code, &params, limits) {
        Ok(script) => Some(Box::new(ScriptStep {
            script: Arc::new(script),
        })),
        Err(e) => {
            cx.problem(cx.path().key("code"), e.to_string());
            None
        }
    }
}

impl Step for ScriptStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let mut args = vec![(*message).clone()];
        args.extend(language_values(cx));
        let script = self.script.clone();
        Box::pin(async move {
            let ran = tokio::task::spawn_blocking(move || script.run(args))
                .await
                .map_err(|e| FlowError::new("script", 500, format!("the script stopped: {e}")))?;
            match ran.map_err(language_error)? {
                Some(out) => Ok(Arc::new(out)),
                None => Ok(message),
            }
        })
    }
}
