//! Bad pipelines give every problem, each with its field path and place.

mod common;

use common::problems;
use sluice_engine::{Catalog, LoadError, load_str};
use sluice_spec::Format;

#[test]
fn every_problem_is_reported_with_path_line_and_column() {
    let yaml = r#"name: broken
steps:
  - type: sett
    values: { a: 1 }
  - id: twice
    type: log
    message: hi
  - id: twice
    type: delay
    duration: 3x
  - type: choice
    when:
      - condition: "{{ message.total > }}"
        steps: []
  - type: json
    value: "{{ steps.nothere.x }}"
  - type: log
    message: ok
    colour: red
  - type: retry
    steps: []
    attempts: "three"
"#;
    let text = problems(yaml);
    let lines: Vec<&str> = text.lines().collect();
    let expect = [
        "test.yaml:3:5: steps[0].type: unknown step type 'sett' (did you mean 'set'?)",
        "test.yaml:8:5: steps[2].id: duplicate step id 'twice' (first used at steps[1])",
        "test.yaml:10:5: steps[2].duration: invalid duration",
        "test.yaml:13:9: steps[3].when[0].condition: invalid expression",
        "test.yaml:16:5: steps[4].value: no step has the id 'nothere'",
        "test.yaml:17:5: steps[5]",
        "test.yaml:22:5: steps[6].attempts:",
    ];
    for wanted in expect {
        assert!(
            lines.iter().any(|l| l.starts_with(wanted)),
            "missing a line starting with {wanted:?} in:\n{text}"
        );
    }
    assert!(text.contains("unknown field 'colour'"), "{text}");
}

#[test]
fn expression_errors_name_the_column() {
    let text = problems(
        r#"name: t
steps:
  - type: set
    values:
      a: "{{ NOSUCH(1) }}"
      b: "{{ SUBSTRING() }}"
"#,
    );
    assert!(
        text.contains("steps[0].values.a: invalid expression"),
        "{text}"
    );
    assert!(text.contains("NOSUCH"), "{text}");
    assert!(
        text.contains("steps[0].values.b: invalid expression"),
        "{text}"
    );
    assert!(text.contains("SUBSTRING"), "{text}");
    assert!(text.contains("column"), "{text}");
}

#[test]
fn envelope_problems() {
    let text =
        problems("name: Not Valid\nsteps: []\nextra: 1\ntrigger: { type: http, timeout: soon }\n");
    assert!(text.contains("name"), "{text}");
    assert!(text.contains("unknown field 'extra'"), "{text}");
    assert!(text.contains("trigger.timeout"), "{text}");

    let text = problems("description: no name and no steps\n");
    assert!(text.contains("missing required field \"name\""), "{text}");
    assert!(text.contains("missing required field \"steps\""), "{text}");
}

#[test]
fn yaml_syntax_errors_have_a_line() {
    let text = problems("name: t\nsteps:\n  - type: log\n    message: [unclosed\n");
    assert!(text.starts_with("test.yaml:"), "{text}");
    assert!(text.contains("invalid YAML"), "{text}");
    let text = problems("name: t\nname: again\nsteps: []\n");
    assert!(
        text.contains("test.yaml:2:1: (root): duplicate key 'name'"),
        "{text}"
    );
}

#[test]
fn json_files_are_checked_the_same_way() {
    let json = r#"{
  "name": "j",
  "steps": [
    {"type": "log", "message": "a"},
    {"type": "log", "mesage": "b"}
  ]
}"#;
    let err = load_str("p.json", json, Format::Json, None, &Catalog::core()).err();
    let Some(LoadError::Invalid(problems)) = err else {
        panic!("should be invalid");
    };
    let text = problems.to_string();
    assert!(text.contains("p.json:5:5: steps[1]"), "{text}");
    assert!(text.contains("unknown field 'mesage'"), "{text}");

    let err = load_str(
        "p.json",
        "{\"name\": \"j\",, }",
        Format::Json,
        None,
        &Catalog::core(),
    )
    .err();
    let Some(LoadError::Invalid(problems)) = err else {
        panic!("should be invalid");
    };
    assert!(problems.to_string().starts_with("p.json:1:"), "{problems}");
}

#[test]
fn languages_are_checked_at_load_time() {
    let text = problems(
        r#"name: t
steps:
  - type: jq
    filter: ".a | ]"
  - type: jsonpath
    path: "$[?"
  - type: template
    template: "{% for x in %}"
  - type: script
    code: "return (;"
  - type: validate
    schema: { type: nonsense }
  - type: jolt
    spec: [{ operation: nope, spec: {} }]
"#,
    );
    for path in [
        "steps[0].filter",
        "steps[1].path",
        "steps[2].template",
        "steps[3].code",
        "steps[4].schema",
        "steps[5].spec",
    ] {
        assert!(text.contains(path), "no problem at {path}:\n{text}");
    }
}

#[test]
fn test_mocks_must_name_existing_steps() {
    let text = problems(
        r#"name: t
steps:
  - { id: real, type: log, message: x }
tests:
  - name: case
    mocks: { fake: 1 }
"#,
    );
    assert!(
        text.contains("tests[0].mocks.fake: no step has the id 'fake' to mock"),
        "{text}"
    );
}

#[test]
fn schema_lists_every_step_type() {
    let catalog = Catalog::core();
    let schema = catalog.schema();
    let names = schema["$defs"]["Step"]["properties"]["type"]["enum"]
        .as_array()
        .expect("enum of step types");
    for kind in [
        "choice",
        "block",
        "for-each",
        "do-while",
        "parallel",
        "retry",
        "throw-error",
        "assert",
        "delay",
        "call",
        "set",
        "json",
        "jq",
        "jsonpath",
        "jolt",
        "template",
        "script",
        "validate",
        "log",
        "response",
        "session",
        "object-store",
        "publish",
    ] {
        assert!(
            names.iter().any(|n| n == kind),
            "{kind} missing from the schema"
        );
        assert!(
            schema["$defs"][format!("step-{kind}")].is_object(),
            "no definition for {kind}"
        );
    }
}
