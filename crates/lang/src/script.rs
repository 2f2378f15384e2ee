//! JavaScript function bodies run by QuickJS, each run in a fresh runtime
//! with a memory limit, a stack limit and a deadline.

use std::time::Instant;

use rquickjs::function::Args;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Runtime};
use serde_json::Value;

use crate::{LangError, Limits};

/// Deepest JavaScript stack, in bytes.
const STACK_LIMIT: usize = 512 * 1024;

/// A compiled script: a function body and the names of its parameters.
#[derive(Debug, Clone)]
pub struct Script {
    /// `(function(params…) { body })`, checked to parse.
    source: String,
    params: usize,
    limits: Limits,
}

fn runtime_error(message: String) -> LangError {
    LangError::Runtime {
        language: "script",
        message,
    }
}

/// What an error thrown in QuickJS means for the caller.
fn caught(error: CaughtError<'_>, limits: &Limits, deadline: Instant) -> LangError {
    if Instant::now() >= deadline {
        return LangError::Timeout {
            language: "script",
            limit: limits.time,
        };
    }
    let message = match &error {
        CaughtError::Exception(e) => {
            let mut m = e.message().unwrap_or_else(|| "exception".into());
            if let Some(stack) = e.stack()
                && let Some(line) = stack.lines().find(|l| l.contains("<script>"))
            {
                m.push_str(&format!(" ({})", line.trim()));
            }
            m
        }
        CaughtError::Value(v) => format!("threw {v:?}"),
        CaughtError::Error(e) => e.to_string(),
    };
    if message.contains("out of memory")
        || matches!(error, CaughtError::Error(rquickjs::Error::Allocation))
    {
        return LangError::Memory {
            language: "script",
            limit: limits.memory,
        };
    }
    runtime_error(message)
}

impl Script {
    /// Checks that `code` parses as the body of a function with `params`.
    pub fn compile(code: &str, params: &[&str], limits: Limits) -> Result<Script, LangError> {
        let source = format!("(function({}) {{\n{code}\n}})", params.join(", "));
        let script = Script {
            source,
            params: params.len(),
            limits,
        };
        script
            .with_context(|ctx, deadline| {
                ctx.eval::<Function, _>(script.source.as_bytes())
                    .catch(&ctx)
                    .map(|_| ())
                    .map_err(|e| match caught(e, &script.limits, deadline) {
                        LangError::Runtime { message, .. } => LangError::Compile {
                            language: "script",
                            message,
                        },
                        other => other,
                    })
            })
            .map(|()| script.clone())
    }

    fn with_context<R>(
        &self,
        f: impl FnOnce(Ctx<'_>, Instant) -> Result<R, LangError>,
    ) -> Result<R, LangError> {
        let runtime =
            Runtime::new().map_err(|e| runtime_error(format!("cannot start QuickJS: {e}")))?;
        runtime.set_memory_limit(self.limits.memory);
        runtime.set_max_stack_size(STACK_LIMIT);
        let deadline = Instant::now() + self.limits.time;
        runtime.set_interrupt_handler(Some(Box::new(move || Instant::now() >= deadline)));
        let context = Context::full(&runtime).map_err(|_| LangError::Memory {
            language: "script",
            limit: self.limits.memory,
        })?;
        context.with(|ctx| f(ctx, deadline))
    }

    /// Runs the body with `args` (in parameter order); `None` when it returns `undefined`.
    pub fn run(&self, args: Vec<Value>) -> Result<Option<Value>, LangError> {
        let limits = self.limits;
        self.with_context(|ctx, deadline| {
            let fail = |e: CaughtError<'_>| caught(e, &limits, deadline);
            let function: Function = ctx.eval(self.source.as_bytes()).catch(&ctx).map_err(fail)?;
            let mut call = Args::new(ctx.clone(), self.params);
            for (i, value) in args
                .into_iter()
                .chain(std::iter::repeat(Value::Null))
                .take(self.params)
                .enumerate()
            {
                let text = serde_json::to_string(&value)
                    .map_err(|e| runtime_error(format!("argument {i}: {e}")))?;
                let js = ctx.json_parse(text).catch(&ctx).map_err(fail)?;
                call.push_arg(js)
                    .map_err(|e| runtime_error(e.to_string()))?;
            }
            let result: rquickjs::Value = function.call_arg(call).catch(&ctx).map_err(fail)?;
            if result.is_undefined() {
                return Ok(None);
            }
            if result.is_function() || result.is_symbol() {
                return Err(runtime_error(
                    "the script returned a function or a symbol, not JSON".into(),
                ));
            }
            let text = ctx.json_stringify(result).catch(&ctx).map_err(fail)?;
            let Some(text) = text else {
                return Ok(None);
            };
            let text = text.to_string().map_err(|e| runtime_error(e.to_string()))?;
            if text.len() > limits.output {
                return Err(LangError::OutputTooLarge {
                    language: "script",
                    limit: limits.output,
                });
            }
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| runtime_error(format!("the result is not JSON: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    fn script(code: &str) -> Script {
        Script::compile(code, &["message", "item"], Limits::default()).expect("compiles")
    }

    #[test]
    fn values_cross_as_json() {
        let s = script(
            "return { total: message.a + message.b, tags: [item, null, true], d: new Date(0).toISOString() };",
        );
        let out = s
            .run(vec![json!({"a": 1, "b": 2.5}), json!("x")])
            .expect("runs");
        assert_eq!(
            out,
            Some(json!({"total": 3.5, "tags": ["x", null, true], "d": "1970-01-01T00:00:00.000Z"}))
        );
        assert_eq!(
            script("message.seen = true;")
                .run(vec![json!({})])
                .expect("runs"),
            None
        );
    }

    #[test]
    fn exceptions_and_syntax_errors() {
        let e = script("throw new Error('no stock');")
            .run(vec![json!({})])
            .expect_err("throws");
        assert_eq!(e.code(), "runtime");
        assert!(e.to_string().contains("no stock"), "{e}");
        let e = Script::compile("return (;", &["message"], Limits::default()).expect_err("syntax");
        assert_eq!(e.code(), "compile");
        let e = script("return () => 1;").run(vec![]).expect_err("function");
        assert!(e.to_string().contains("function"), "{e}");
    }

    #[test]
    fn endless_loops_time_out() {
        let limits = Limits {
            time: Duration::from_millis(100),
            ..Limits::default()
        };
        let s = Script::compile("while (true) {}", &[], limits).expect("compiles");
        let started = Instant::now();
        let e = s.run(vec![]).expect_err("stops");
        assert_eq!(e.code(), "timeout");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn memory_and_stack_are_bounded() {
        let limits = Limits {
            memory: 8 * 1024 * 1024,
            ..Limits::default()
        };
        let s = Script::compile(
            "const a = []; while (true) { a.push(new Array(100000).fill(1)); }",
            &[],
            limits,
        )
        .expect("compiles");
        assert_eq!(s.run(vec![]).expect_err("too much").code(), "memory");
        let deep = script("function f(n) { return f(n + 1) + 1; } return f(0);");
        assert_eq!(deep.run(vec![]).expect_err("overflow").code(), "runtime");
    }
}
