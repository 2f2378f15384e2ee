//! `retry`: run steps again after a failure, with fixed or exponential backoff.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_spec::{HumanDuration, StepDef, StepKind};

use super::{Step, StepFuture};
use crate::catalog::{StepFactory, schema_of};
use crate::run::handle;
use crate::{Context, Message, StepCx, StepList, run_steps};

fn three() -> u32 {
    3
}

fn one_second() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

/// How the wait between attempts grows.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backoff {
    /// The same `delay` every time.
    #[default]
    Fixed,
    /// `delay`, then twice as long each time, up to `maxDelay`.
    Exponential,
}

/// Fields of the `retry` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RetryConfig {
    /// Tries in all, the first included (default 3).
    #[serde(default = "three")]
    #[schemars(range(min = 1, max = 100))]
    attempts: u32,
    /// Wait before the second try (default 1s).
    #[serde(default = "one_second")]
    delay: HumanDuration,
    /// fixed (default) or exponential.
    #[serde(default)]
    backoff: Backoff,
    /// Longest wait between tries with exponential backoff.
    #[serde(default)]
    max_delay: Option<HumanDuration>,
    /// The steps to try; each try starts from the retry's input.
    steps: Vec<StepDef>,
    /// Run when every try failed, with the last error at `{{ error }}`.
    #[serde(default)]
    on_exception: Vec<StepDef>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "retry",
        summary: "Run steps and try again on failure (fixed or exponential backoff).",
        schema: schema_of::<RetryConfig>,
    },
    compile,
};

struct RetryStep {
    attempts: u32,
    delay: Duration,
    backoff: Backoff,
    max_delay: Option<Duration>,
    steps: StepList,
    on_exception: StepList,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: RetryConfig = cx.config()?;
    let steps = cx.steps(cx.path().key("steps"), &config.steps);
    let on_exception = cx.steps(cx.path().key("onException"), &config.on_exception);
    if config.attempts == 0 {
        cx.problem(cx.path().key("attempts"), "attempts must be at least 1");
        return None;
    }
    Some(Box::new(RetryStep {
        attempts: config.attempts,
        delay: config.delay.0,
        backoff: config.backoff,
        max_delay: config.max_delay.map(|d| d.0),
        steps: steps?,
        on_exception: on_exception?,
    }))
}

impl RetryStep {
    /// The wait after failed try number `attempt` (1-based).
    fn wait(&self, attempt: u32) -> Duration {
        let wait = match self.backoff {
            Backoff::Fixed => self.delay,
            Backoff::Exponential => self
                .delay
                .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))),
        };
        self.max_delay.map_or(wait, |max| wait.min(max))
    }
}

impl Step for RetryStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let mut attempt = 1;
            loop {
                match run_steps(&self.steps, message.clone(), cx).await {
                    Ok(out) => return Ok(out),
                    Err(error) if attempt < self.attempts => {
                        tokio::time::sleep(self.wait(attempt)).await;
                        attempt += 1;
                        drop(error);
                    }
                    Err(error) => {
                        let error = error.with_attempts(self.attempts);
                        return if self.on_exception.is_empty() {
                            Err(error)
                        } else {
                            handle(&self.on_exception, error, message, cx).await
                        };
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(backoff: Backoff, max: Option<u64>) -> RetryStep {
        RetryStep {
            attempts: 5,
            delay: Duration::from_millis(100),
            backoff,
            max_delay: max.map(Duration::from_millis),
            steps: StepList::default(),
            on_exception: StepList::default(),
        }
    }

    #[test]
    fn backoff_waits() {
        let fixed = step(Backoff::Fixed, None);
        assert_eq!(fixed.wait(3), Duration::from_millis(100));
        let exp = step(Backoff::Exponential, Some(350));
        let waits: Vec<u128> = (1..5).map(|a| exp.wait(a).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 350, 350]);
    }
}
