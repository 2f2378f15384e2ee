//! Jinja templates (minijinja), bounded in work, depth and output size.

use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value;

use crate::{LangError, Limits};

/// Work budget of one render: about this many instructions per second of
/// the time limit.
const FUEL_PER_SECOND: u64 = 50_000_000;

/// Deepest nesting of includes, macros and loops.
const RECURSION_LIMIT: usize = 64;

/// A compiled Jinja template.
pub struct Jinja {
    env: Environment<'static>,
    limits: Limits,
}

impl std::fmt::Debug for Jinja {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jinja")
    }
}

const NAME: &str = "template";

fn describe(e: &minijinja::Error) -> String {
    let mut out = e.kind().to_string();
    if let Some(detail) = e.detail() {
        out.push_str(": ");
        out.push_str(detail);
    }
    if let Some(line) = e.line() {
        out.push_str(&format!(" (line {line})"));
    }
    out
}

impl Jinja {
    /// Compiles `source`; syntax errors name the line.
    pub fn compile(source: &str, limits: Limits) -> Result<Jinja, LangError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_recursion_limit(RECURSION_LIMIT);
        let seconds = limits.time.as_secs_f64().max(0.001);
        // Rounded budget from a positive, bounded float.
        env.set_fuel(Some((FUEL_PER_SECOND as f64 * seconds) as u64));
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|e| LangError::Compile {
                language: "template",
                message: describe(&e),
            })?;
        Ok(Jinja { env, limits })
    }

    /// Renders with the keys of `context` (an object) as variables.
    pub fn render(&self, context: &Value) -> Result<String, LangError> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| LangError::Runtime {
                language: "template",
                message: describe(&e),
            })?;
        let text = template
            .render(minijinja::Value::from(minijinja::value::Serde(context)))
            .map_err(|e| match e.kind() {
                ErrorKind::OutOfFuel => LangError::Timeout {
                    language: "template",
                    limit: self.limits.time,
                },
                _ => LangError::Runtime {
                    language: "template",
                    message: describe(&e),
                },
            })?;
        if text.len() > self.limits.output {
            return Err(LangError::OutputTooLarge {
                language: "template",
                limit: self.limits.output,
            });
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn loops_conditions_filters() {
        let t = Jinja::compile(
            "{% for i in message.items -%}{{ i.name | upper }}{% if not loop.last %}, {% endif %}{%- endfor %}|{{ missing }}|{{ message | tojson }}",
            Limits::default(),
        )
        .expect("valid");
        let out = t
            .render(&json!({"message": {"items": [{"name": "a"}, {"name": "b"}]}}))
            .expect("renders");
        assert_eq!(out, r#"A, B||{"items": [{"name": "a"}, {"name": "b"}]}"#);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = Jinja::compile("line one\n{% for x in %}", Limits::default()).expect_err("bad");
        assert_eq!(e.code(), "compile");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn runaway_templates_stop() {
        let limits = Limits {
            time: std::time::Duration::from_millis(10),
            ..Limits::default()
        };
        let t = Jinja::compile(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            limits,
        )
        .expect("valid");
        let e = t.render(&json!({})).expect_err("stops");
        assert!(matches!(e.code(), "timeout" | "runtime"), "{e}");

        let small = Limits {
            output: 10,
            ..Limits::default()
        };
        let t = Jinja::compile("{% for i in range(50) %}x{% endfor %}", small).expect("valid");
        assert_eq!(
            t.render(&json!({})).expect_err("too big").code(),
            "output_size"
        );
    }
}
