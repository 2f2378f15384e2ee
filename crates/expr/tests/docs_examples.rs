//! Runs every ```expr-example block of `docs/expressions.md`, and checks that
//! every function of the library is shown there.
//!
//! Block lines: `root: {json}` sets a root (`message`, `steps`, `global`,
//! `account`, `metadata`, `item`, `index`, `error`) for the lines after it;
//! `TEMPLATE => json` expects that exact value; `TEMPLATE =>! text` expects an
//! error (at compile or evaluation) containing `text`; `TEMPLATE =>~ regex`
//! expects the rendered text to match.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde_json::{Map, Value};
use sluice_expr::{LazyRoot, Scope, StepOutputs, Template, function_names};

const ROOTS: &[&str] = &[
    "message", "steps", "global", "account", "metadata", "item", "index", "error",
];

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/expressions.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The example lines with their line numbers in the file.
fn blocks(text: &str) -> Vec<Vec<(usize, String)>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<(usize, String)>> = None;
    for (number, line) in text.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```expr-example") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(lines), l) if !l.trim().is_empty() => lines.push((number + 1, l.to_owned())),
            _ => {}
        }
    }
    assert!(current.is_none(), "an expr-example block is not closed");
    blocks
}

enum Expect {
    Value(Value),
    Error(String),
    Matches(Regex),
}

fn parse_line(line: &str) -> (&str, Expect) {
    if let Some((template, text)) = line.split_once(" =>! ") {
        return (template, Expect::Error(text.to_owned()));
    }
    if let Some((template, pattern)) = line.split_once(" =>~ ") {
        let regex = Regex::new(pattern).unwrap_or_else(|e| panic!("bad regex in `{line}`: {e}"));
        return (template, Expect::Matches(regex));
    }
    let (template, json) = line
        .rsplit_once(" => ")
        .unwrap_or_else(|| panic!("no `=>` in `{line}`"));
    let value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("bad JSON after => in `{line}`: {e}"));
    (template, Expect::Value(value))
}

fn check(template: &str, expect: &Expect, roots: &BTreeMap<&str, Value>) -> Result<(), String> {
    let null = Value::Null;
    let steps: Option<&Map<String, Value>> = roots.get("steps").and_then(Value::as_object);
    let scope = Scope {
        message: roots.get("message").unwrap_or(&null),
        steps: steps.map(|s| s as &dyn StepOutputs),
        global: roots.get("global"),
        account: roots.get("account"),
        metadata: roots.get("metadata").map(|m| m as &dyn LazyRoot),
        item: roots.get("item"),
        index: roots.get("index"),
        error: roots.get("error"),
    };
    let result = Template::compile(template)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            t.eval(&scope)
                .map(|v| v.into_owned())
                .map_err(|e| e.to_string())
        });
    match (expect, result) {
        (Expect::Value(want), Ok(got)) if *want == got && same_number_kind(want, &got) => Ok(()),
        (Expect::Value(want), Ok(got)) => Err(format!("expected {want}, got {got}")),
        (Expect::Value(want), Err(e)) => Err(format!("expected {want}, got the error `{e}`")),
        (Expect::Error(text), Err(e)) if e.contains(text.as_str()) => Ok(()),
        (Expect::Error(text), Err(e)) => {
            Err(format!("expected an error containing `{text}`, got `{e}`"))
        }
        (Expect::Error(text), Ok(got)) => {
            Err(format!("expected an error containing `{text}`, got {got}"))
        }
        (Expect::Matches(regex), Ok(got)) => {
            let mut text = String::new();
            sluice_expr::render_text(&got, &mut text);
            if regex.is_match(&text) {
                Ok(())
            } else {
                Err(format!("`{text}` does not match /{regex}/"))
            }
        }
        (Expect::Matches(_), Err(e)) => Err(format!("unexpected error `{e}`")),
    }
}

/// `3` and `3.0` are equal JSON values; the docs promise which one comes out.
fn same_number_kind(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.is_f64() == y.is_f64(),
        (Value::Array(x), Value::Array(y)) => x.iter().zip(y).all(|(a, b)| same_number_kind(a, b)),
        (Value::Object(x), Value::Object(y)) => x
            .iter()
            .all(|(k, v)| y.get(k).is_some_and(|w| same_number_kind(v, w))),
        _ => true,
    }
}

#[test]
fn every_documented_example_holds() {
    let text = doc();
    let blocks = blocks(&text);
    assert!(
        blocks.len() >= 10,
        "expected the example blocks of docs/expressions.md"
    );
    let mut failures = Vec::new();
    let mut count = 0;
    for block in &blocks {
        let mut roots: BTreeMap<&str, Value> = BTreeMap::new();
        for (number, line) in block {
            if let Some((root, json)) = line.split_once(": ")
                && let Some(root) = ROOTS.iter().find(|r| **r == root)
            {
                let value = serde_json::from_str(json)
                    .unwrap_or_else(|e| panic!("line {number}: bad JSON: {e}"));
                roots.insert(root, value);
                continue;
            }
            let (template, expect) = parse_line(line);
            count += 1;
            if let Err(problem) = check(template, &expect, &roots) {
                failures.push(format!(
                    "docs/expressions.md:{number}: {template}\n    {problem}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} examples failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_function_has_an_example() {
    let text = doc();
    let examples: String = blocks(&text)
        .into_iter()
        .flatten()
        .map(|(_, l)| l.to_uppercase() + "\n")
        .collect();
    let missing: Vec<&str> = function_names()
        .filter(|name| !examples.contains(&format!("{name}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "functions without an example in docs/expressions.md: {missing:?}"
    );
}
