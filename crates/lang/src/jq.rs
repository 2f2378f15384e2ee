//! jq filters, run by jaq.

use std::time::{Duration, Instant};

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Native, Vars, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

use crate::LangError;

type Filter = jaq_core::compile::Filter<Native<JustLut<Val>>>;

/// Most results `all` collects before giving up.
const MAX_OUTPUTS: usize = 1_000_000;

/// Longest a filter may run.
const TIME_LIMIT: Duration = Duration::from_secs(1);

/// A compiled jq filter.
pub struct Jq {
    filter: Filter,
    vars: usize,
}

impl std::fmt::Debug for Jq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jq")
    }
}

fn compile_error(message: String) -> LangError {
    LangError::Compile {
        language: "jq filter",
        message,
    }
}

impl Jq {
    /// Compiles `filter`; `vars` are global variables (`item` → `$item`).
    pub fn compile(filter: &str, vars: &[&str]) -> Result<Jq, LangError> {
        let names: Vec<String> = vars.iter().map(|v| format!("${v}")).collect();
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(
                &arena,
                File {
                    code: filter,
                    path: (),
                },
            )
            .map_err(|errors| compile_error(describe_load(filter, &errors)))?;
        let compiled = Compiler::default()
            .with_funs(funs)
            .with_global_vars(names.iter().map(String::as_str))
            .compile(modules)
            .map_err(|errors| {
                let names: Vec<String> = errors
                    .iter()
                    .flat_map(|(_, errs)| errs.iter().map(|(name, _)| format!("undefined {name}")))
                    .collect();
                compile_error(names.join(", "))
            })?;
        Ok(Jq {
            filter: compiled,
            vars: vars.len(),
        })
    }

    fn run(
        &self,
        input: Value,
        vars: Vec<Value>,
        mut each: impl FnMut(Value) -> bool,
    ) -> Result<(), LangError> {
        let to_val = |v: Value| -> Result<Val, LangError> {
            serde_json::from_value(v).map_err(|e| LangError::Runtime {
                language: "jq filter",
                message: format!("cannot read the input: {e}"),
            })
        };
        let mut vals = Vec::with_capacity(self.vars);
        for v in vars.into_iter().take(self.vars) {
            vals.push(to_val(v)?);
        }
        while vals.len() < self.vars {
            vals.push(Val::Null);
        }
        let ctx = Ctx::<JustLut<Val>>::new(&self.filter.lut, Vars::new(vals));
        let started = Instant::now();
        for (count, out) in self
            .filter
            .id
            .run((ctx, to_val(input)?))
            .map(unwrap_valr)
            .enumerate()
        {
            if started.elapsed() > TIME_LIMIT {
                return Err(LangError::Timeout {
                    language: "jq filter",
                    limit: TIME_LIMIT,
                });
            }
            if count >= MAX_OUTPUTS {
                return Err(LangError::OutputTooLarge {
                    language: "jq filter",
                    limit: MAX_OUTPUTS,
                });
            }
            let val = out.map_err(|e| LangError::Runtime {
                language: "jq filter",
                message: e.to_string(),
            })?;
            let value = to_json(&val)?;
            if !each(value) {
                break;
            }
        }
        Ok(())
    }

    /// The first result (null when there is none).
    pub fn first(&self, input: Value, vars: Vec<Value>) -> Result<Value, LangError> {
        let mut first = Value::Null;
        self.run(input, vars, |v| {
            first = v;
            false
        })?;
        Ok(first)
    }

    /// Every result.
    pub fn all(&self, input: Value, vars: Vec<Value>) -> Result<Vec<Value>, LangError> {
        let mut out = Vec::new();
        self.run(input, vars, |v| {
            out.push(v);
            true
        })?;
        Ok(out)
    }
}

fn to_json(val: &Val) -> Result<Value, LangError> {
    serde_json::from_str(&val.to_string()).map_err(|e| LangError::Runtime {
        language: "jq filter",
        message: format!("the result is not JSON ({e}): {val}"),
    })
}

/// Lex and parse errors with their column in the filter.
fn describe_load(code: &str, errors: &jaq_core::load::Errors<&str, ()>) -> String {
    use jaq_core::load::Error;
    let column = |at: &str| {
        // Errors point into `code`: their offset gives the column.
        let offset = (at.as_ptr() as usize).saturating_sub(code.as_ptr() as usize);
        code.get(..offset.min(code.len()))
            .map_or(0, |s| s.chars().count())
            + 1
    };
    let mut parts = Vec::new();
    for (_, error) in errors {
        match error {
            Error::Io(items) => parts.extend(items.iter().map(|(_, m)| m.clone())),
            Error::Lex(items) => {
                for (expected, at) in items {
                    parts.push(format!(
                        "expected {} at column {}",
                        expected.as_str(),
                        column(at)
                    ));
                }
            }
            Error::Parse(items) => {
                for (expected, at) in items {
                    let found = if at.is_empty() {
                        "the end".to_owned()
                    } else {
                        format!("'{}'", at.chars().take(10).collect::<String>())
                    };
                    parts.push(format!(
                        "expected {} but found {found} at column {}",
                        expected.as_str(),
                        column(at)
                    ));
                }
            }
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn filters_with_variables() {
        let jq = Jq::compile(
            "{n: (.items | map(select(.qty > 0)) | length), who: $item}",
            &["item"],
        )
        .expect("valid");
        let out = jq
            .first(
                json!({"items": [{"qty": 1}, {"qty": 0}]}),
                vec![json!("ada")],
            )
            .expect("runs");
        assert_eq!(out, json!({"n": 1, "who": "ada"}));
    }

    #[test]
    fn first_and_all() {
        let jq = Jq::compile(".[] | . * 2", &[]).expect("valid");
        assert_eq!(
            jq.all(json!([1, 2, 3]), vec![]).expect("runs"),
            vec![json!(2), json!(4), json!(6)]
        );
        assert_eq!(jq.first(json!([5]), vec![]).expect("runs"), json!(10));
        assert_eq!(jq.first(json!([]), vec![]).expect("runs"), json!(null));
        let reduce = Jq::compile("reduce .[] as $x (0; . + $x)", &[]).expect("valid");
        assert_eq!(
            reduce.first(json!([1, 2, 3]), vec![]).expect("runs"),
            json!(6)
        );
        let text = Jq::compile(r#""id-\(.id)""#, &[]).expect("valid");
        assert_eq!(
            text.first(json!({"id": 7}), vec![]).expect("runs"),
            json!("id-7")
        );
    }

    #[test]
    fn errors() {
        let e = Jq::compile(".a | ]", &[]).expect_err("syntax");
        assert_eq!(e.code(), "compile");
        assert!(e.to_string().contains("column"), "{e}");
        let e = Jq::compile("$nope", &[]).expect_err("unknown var");
        assert!(e.to_string().contains("nope"), "{e}");
        let e = Jq::compile("error(\"boom\")", &[])
            .expect("valid")
            .first(json!(1), vec![])
            .expect_err("raises");
        assert_eq!(e.code(), "runtime");
        assert!(e.to_string().contains("boom"), "{e}");
    }

    #[test]
    fn endless_output_is_cut() {
        let jq = Jq::compile("repeat(1)", &[]).expect("valid");
        let e = jq.all(json!(null), vec![]).expect_err("too many");
        assert!(matches!(e.code(), "timeout" | "output_size"), "{e}");
    }
}
