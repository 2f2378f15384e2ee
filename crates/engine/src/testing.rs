//! `tests:` cases of pipeline files: mocks by step id, and the subset
//! match of expectations. Used by `sluice test`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use sluice_spec::TestCase;

use crate::{FlowError, Plan, RunOptions};

/// Step outputs to use instead of running the steps.
#[derive(Clone, Default)]
pub struct Mocks {
    entries: Arc<HashMap<String, Value>>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

impl Mocks {
    /// Mocks from `{step id: output}`; see [`TestCase::mocks`] for `$error` and `$sequence`.
    pub fn new(entries: Map<String, Value>) -> Self {
        Mocks {
            entries: Arc::new(entries.into_iter().collect()),
            calls: Arc::default(),
        }
    }

    /// The mocked result of the next call of step `id`, if it is mocked.
    pub(crate) fn next(&self, id: &str) -> Option<Result<Value, FlowError>> {
        let entry = self.entries.get(id)?;
        let entry = match entry.get("$sequence").and_then(Value::as_array) {
            Some(sequence) if !sequence.is_empty() => {
                let mut calls = self
                    .calls
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let n = calls.entry(id.to_owned()).or_insert(0);
                let pick = &sequence[(*n).min(sequence.len() - 1)];
                *n += 1;
                pick
            }
            _ => entry,
        };
        Some(match entry.get("$error") {
            Some(error) => Err(FlowError::from_value(error)),
            None => Ok(entry.clone()),
        })
    }
}

/// How one test case ended.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    pub name: String,
    /// `None` when it passed; else what differed.
    pub failure: Option<String>,
    pub duration: Duration,
}

/// Runs every test case of `plan` with `base` options (services, accounts).
pub async fn run_cases(plan: &Plan, base: &RunOptions) -> Vec<CaseOutcome> {
    let mut outcomes = Vec::new();
    for case in &plan.definition.tests {
        outcomes.push(run_case(plan, case, base).await);
    }
    outcomes
}

async fn run_case(plan: &Plan, case: &TestCase, base: &RunOptions) -> CaseOutcome {
    let mut options = base.clone();
    options.mocks = Some(Mocks::new(case.mocks.clone()));
    if !case.globals.is_empty() {
        let mut globals = match base.globals.as_ref() {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        globals.extend(case.globals.clone());
        options.globals = Arc::new(Value::Object(globals));
    }
    if !case.accounts.is_empty() {
        let mut accounts = match base.accounts.as_ref() {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        accounts.extend(case.accounts.clone());
        options.accounts = Arc::new(Value::Object(accounts));
    }
    let execution = plan.execute(case.input.clone(), options).await;
    let mut failures = Vec::new();
    match (&execution.result, &case.expect_error) {
        (Ok(output), None) => {
            if let Some(expected) = &case.expect {
                let actual = match &execution.response {
                    Some(r) => json!({"status": r.status, "headers": r.headers, "body": r.body}),
                    None => (**output).clone(),
                };
                if let Some(diff) = subset_difference(&actual, expected, "") {
                    failures.push(diff);
                }
            }
        }
        (Ok(output), Some(_)) => {
            failures.push(format!("expected an error, got the output {output}"))
        }
        (Err(error), None) => failures.push(format!("failed: {}", error.to_value())),
        (Err(error), Some(expected)) => {
            if let Some(diff) = subset_difference(&error.to_value(), expected, "error") {
                failures.push(diff);
            }
        }
    }
    let mut from = 0;
    for wanted in &case.expect_logs {
        match execution.logs[from..]
            .iter()
            .position(|l| l.message.contains(wanted.as_str()))
        {
            Some(i) => from += i + 1,
            None => failures.push(format!("no log line containing '{wanted}' (in order)")),
        }
    }
    CaseOutcome {
        name: case.name.clone(),
        failure: (!failures.is_empty()).then(|| failures.join("; ")),
        duration: execution.duration,
    }
}

/// Where `actual` does not contain `expected`: objects need the expected
/// keys (recursively), arrays the same length and matching elements,
/// numbers compare by value, everything else by equality.
pub fn subset_difference(actual: &Value, expected: &Value, path: &str) -> Option<String> {
    let at = if path.is_empty() { "(root)" } else { path };
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e.iter().find_map(|(k, ev)| {
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match a.get(k) {
                Some(av) => subset_difference(av, ev, &child),
                None if ev.is_null() => None,
                None => Some(format!("at {child}: expected {ev}, but it is missing")),
            }
        }),
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                return Some(format!(
                    "at {at}: expected {} items, got {}: {actual}",
                    e.len(),
                    a.len()
                ));
            }
            a.iter()
                .zip(e)
                .enumerate()
                .find_map(|(i, (av, ev))| subset_difference(av, ev, &format!("{path}[{i}]")))
        }
        (Value::Number(a), Value::Number(e)) if a.as_f64() == e.as_f64() => None,
        _ if actual == expected => None,
        _ => Some(format!("at {at}: expected {expected}, got {actual}")),
    }
}

/// Every Markdown file under `dir`, sorted, recursively (docs tests).
pub fn markdown_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<std::path::PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// `(line, text)` of every fenced block whose info string starts with
/// `yaml pipeline` (the pipelines a page shows, run by docs tests).
pub fn pipeline_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match current.take() {
            None if line.trim_start().starts_with("```yaml pipeline") => {
                current = Some((i + 1, String::new()));
            }
            None => {}
            Some(block) if fence => blocks.push(block),
            Some((start, mut text)) => {
                text.push_str(line);
                text.push('\n');
                current = Some((start, text));
            }
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_matching() {
        let actual = json!({"status": 201, "body": {"a": 1, "b": [1, {"c": 2, "d": 3}]}});
        assert_eq!(
            subset_difference(&actual, &json!({"body": {"b": [1, {"c": 2}]}}), ""),
            None
        );
        assert_eq!(
            subset_difference(&actual, &json!({"status": 201.0}), ""),
            None
        );
        assert_eq!(
            subset_difference(&actual, &json!({"body": {"a": 2}}), ""),
            Some("at body.a: expected 2, got 1".into())
        );
        assert!(
            subset_difference(&actual, &json!({"body": {"z": 1}}), "")
                .is_some_and(|d| d.contains("missing"))
        );
        assert!(
            subset_difference(&actual, &json!({"body": {"b": [1]}}), "")
                .is_some_and(|d| d.contains("expected 1 items"))
        );
    }

    #[test]
    fn mock_sequences_and_errors() {
        let mocks = Mocks::new(
            json!({"flaky": {"$sequence": [{"$error": {"message": "down", "status": 503}}, {"ok": true}]}, "plain": 5})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let first = mocks
            .next("flaky")
            .expect("mocked")
            .expect_err("fails first");
        assert_eq!((first.status, first.message.as_str()), (503, "down"));
        assert_eq!(
            mocks.next("flaky").expect("mocked").expect("ok"),
            json!({"ok": true})
        );
        assert_eq!(
            mocks.next("flaky").expect("mocked").expect("repeats"),
            json!({"ok": true})
        );
        assert_eq!(mocks.next("plain").expect("mocked").expect("ok"), json!(5));
        assert!(mocks.next("other").is_none());
    }
}
