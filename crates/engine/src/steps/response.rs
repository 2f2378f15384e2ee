//! `response`: set the HTTP answer of the execution.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::StepKind;

use super::{Step, StepFuture, ready};
use crate::catalog::{StepFactory, schema_of};
use crate::{Context, FlowError, Message, Response, StepCx};

/// A status: a number, or an expression giving one.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum StatusField {
    Fixed(u16),
    Expression(String),
}

/// Fields of the `response` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResponseConfig {
    /// HTTP status (default 200); a number or an expression.
    #[serde(default)]
    status: Option<StatusField>,
    /// Header name → value (may hold expressions).
    #[serde(default)]
    headers: Map<String, Value>,
    /// The body (default: the message); strings may hold expressions.
    #[serde(default)]
    body: Option<Value>,
}

pub(crate) const FACTORY: StepFactory = StepFactory {
    kind: StepKind {
        name: "response",
        summary: "Set the HTTP answer (status, headers, body); the message passes unchanged.",
        schema: schema_of::<ResponseConfig>,
    },
    compile,
};

enum Status {
    Fixed(u16),
    Expression(Template),
}

struct ResponseStep {
    status: Status,
    headers: Vec<(String, Template)>,
    body: Option<ValueTemplate>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: ResponseConfig = cx.config()?;
    let status = match config.status {
        None => Status::Fixed(200),
        Some(StatusField::Fixed(s)) if (100..600).contains(&s) => Status::Fixed(s),
        Some(StatusField::Fixed(s)) => {
            cx.problem(
                cx.path().key("status"),
                format!("status {s} is not an HTTP status (100-599)"),
            );
            return None;
        }
        Some(StatusField::Expression(src)) => Status::Expression(cx.template("status", &src)?),
    };
    let mut headers = Vec::new();
    for (name, value) in &config.headers {
        let path = cx.path().key("headers").key(name);
        let Value::String(src) = value else {
            cx.problem(path, "a header value must be a string");
            return None;
        };
        headers.push((name.clone(), cx.template_at(path, src)?));
    }
    let body = match &config.body {
        Some(b) => Some(cx.value_template("body", b)?),
        None => None,
    };
    Some(Box::new(ResponseStep {
        status,
        headers,
        body,
    }))
}

impl ResponseStep {
    fn answer(&self, message: &Message, cx: &Context) -> Result<Response, FlowError> {
        let status = match &self.status {
            Status::Fixed(s) => *s,
            Status::Expression(t) => {
                let v = cx.eval(t, message)?;
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (100..600).contains(s))
                    .ok_or_else(|| {
                        FlowError::new(
                            "expression",
                            500,
                            format!("response status {v} is not an HTTP status"),
                        )
                    })?
            }
        };
        let mut headers = Map::new();
        for (name, template) in &self.headers {
            headers.insert(
                name.clone(),
                Value::String(cx.render(template, message)?.into_owned()),
            );
        }
        let body = match &self.body {
            Some(t) => Message::new(cx.eval_value(t, message)?),
            None => Arc::clone(message),
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

impl Step for ResponseStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let result = self.answer(&message, cx).map(|r| {
            cx.set_response(r);
            message
        });
        ready(result)
    }
}
