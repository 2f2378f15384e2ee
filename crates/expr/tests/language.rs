//! The language end to end through the public API: compile errors with
//! columns, types kept or rendered, laziness, borrowing and step references.

use std::borrow::Cow;

use serde_json::{Map, Value, json};
use sluice_expr::{LazyRoot, Scope, StepOutputs, Template, ValueTemplate, truthy};

fn eval(src: &str, message: &Value) -> Result<Value, String> {
    let template = Template::compile(src).map_err(|e| e.to_string())?;
    template
        .eval(&Scope::new(message))
        .map(Cow::into_owned)
        .map_err(|e| e.to_string())
}

fn compile_error(src: &str) -> String {
    match Template::compile(src) {
        Ok(_) => panic!("`{src}` compiled"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn compile_errors_name_the_problem_and_column() {
    assert_eq!(
        compile_error("{{ message.total > }}"),
        "expected a value, found the end of the expression (column 20)"
    );
    assert!(compile_error("ab {{ message.x").contains("'{{' is not closed by '}}' (column 4)"));
    assert!(compile_error("{{ NOSUCH(1) }}").contains("unknown function NOSUCH"));
    assert!(compile_error("{{ uppercse('x') }}").contains("did you mean UPPERCASE?"));
    assert!(compile_error("{{ SUBSTRING() }}").contains("SUBSTRING"));
    assert!(compile_error("{{ IF(true) }}").contains("IF"));
    assert!(compile_error("{{ mesage.x }}").contains("mesage"));
    assert!(compile_error("{{ message..x }}").contains("column"));
    assert!(compile_error("{{ 'open }}").contains("column"));
    assert!(compile_error("{{ message.x ) }}").contains("column"));
    assert!(
        compile_error("{{ REPLACE('x', '(', '') }}")
            .contains("REPLACE: invalid regular expression")
    );
}

#[test]
fn a_whole_field_keeps_its_type_and_mixed_text_is_a_string() {
    let m = json!({"n": 42, "f": 1.5, "b": true, "o": {"a": [1]}, "s": "x", "z": null});
    assert_eq!(eval("{{ message.n }}", &m).unwrap(), json!(42));
    assert_eq!(eval("  {{ message.b }}  ", &m).unwrap(), json!("  true  "));
    assert_eq!(eval("{{ message.o }}", &m).unwrap(), json!({"a": [1]}));
    assert_eq!(eval("{{message.z}}", &m).unwrap(), Value::Null);
    assert_eq!(
        eval(
            "n={{ message.n }}, f={{ message.f }}, o={{ message.o }}, z={{ message.z }}",
            &m
        )
        .unwrap(),
        json!("n=42, f=1.5, o={\"a\":[1]}, z=")
    );
    assert_eq!(eval("plain", &m).unwrap(), json!("plain"));
    assert_eq!(eval("", &m).unwrap(), json!(""));
}

#[test]
fn literals_and_operators() {
    let m = json!({});
    assert_eq!(
        eval("{{ [1, 'a', true, null, {k: 2, 'q r': 3}] }}", &m).unwrap(),
        json!([1, "a", true, null, {"k": 2, "q r": 3}])
    );
    assert_eq!(eval(r#"{{ "dq" + 'sq' }}"#, &m).unwrap(), json!("dqsq"));
    assert_eq!(eval("{{ 2e3 + 0.5 }}", &m).unwrap(), json!(2000.5));
    assert_eq!(
        eval("{{ 9223372036854775807 + 1 }}", &m).unwrap(),
        json!(9.223372036854776e18)
    );
    assert_eq!(eval("{{ 1 + 'x' }}", &m).unwrap(), json!("1x"));
    assert_eq!(eval("{{ 3 - 5 }}", &m).unwrap(), json!(-2));
    assert_eq!(eval("{{ 2 * 3.5 }}", &m).unwrap(), json!(7.0));
    assert_eq!(
        eval("{{ 1 != 2 && 2 <= 2 && 3 >= 4 == false }}", &m).unwrap(),
        json!(true)
    );
    assert_eq!(eval("{{ 'b' > 'a' }}", &m).unwrap(), json!(true));
    assert_eq!(eval("{{ null < 1 }}", &m).unwrap(), json!(false));
    assert_eq!(eval("{{ 0 ?? 5 }}", &m).unwrap(), json!(0));
    assert_eq!(eval("{{ false || 'x' }}", &m).unwrap(), json!(true));
    assert!(eval("{{ 5 % 0 }}", &m).unwrap_err().contains("zero"));
    assert!(eval("{{ [1] - 1 }}", &m).is_err());
}

#[test]
fn if_and_the_logic_functions_are_lazy() {
    let m = json!({"ok": true});
    assert_eq!(
        eval("{{ IF(message.ok, 1, 1 / 0) }}", &m).unwrap(),
        json!(1)
    );
    assert_eq!(eval("{{ AND(false, 1 / 0) }}", &m).unwrap(), json!(false));
    assert_eq!(eval("{{ OR(true, 1 / 0) }}", &m).unwrap(), json!(true));
    assert_eq!(eval("{{ false && 1 / 0 }}", &m).unwrap(), json!(false));
    assert_eq!(eval("{{ message.ok ?? 1 / 0 }}", &m).unwrap(), json!(true));
    assert!(
        eval("{{ IF(false, 1, 1 / 0) }}", &m)
            .unwrap_err()
            .contains("zero")
    );
}

#[test]
fn paths_borrow_from_the_message() {
    let m = json!({"order": {"lines": [{"sku": "A"}]}});
    let t = Template::compile("{{ message.order.lines[0] }}").unwrap();
    let scope = Scope::new(&m);
    assert!(
        matches!(t.eval(&scope).unwrap(), Cow::Borrowed(_)),
        "a path result is borrowed, not copied"
    );
    let t = Template::compile("{{ message.order.lines[0].sku == 'A' }}").unwrap();
    assert_eq!(*t.eval(&scope).unwrap(), json!(true));
}

#[test]
fn roots_and_step_references() {
    let mut steps = Map::new();
    steps.insert("lookup".into(), json!({"price": 3}));
    let global = json!({"rate": 2});
    let account = json!({"erp": {"user": "u"}});
    let metadata = json!({"pipeline": {"name": "p"}});
    let m = json!({"qty": 4});
    let scope = Scope {
        message: &m,
        steps: Some(&steps as &dyn StepOutputs),
        global: Some(&global),
        account: Some(&account),
        metadata: Some(&metadata as &dyn LazyRoot),
        item: None,
        index: None,
        error: None,
    };
    let t = Template::compile("{{ steps.lookup.price * message.qty * global.rate }} {{ account.erp.user }} {{ metadata.pipeline.name }} {{ item }}").unwrap();
    assert_eq!(*t.eval(&scope).unwrap(), json!("24 u p "));
    let refs: Vec<&str> = t.step_refs().collect();
    assert_eq!(refs, ["lookup"]);
}

#[test]
fn value_templates_compile_every_string_in_a_tree() {
    let tree = json!({"a": "{{ message.x }}", "b": ["n={{ message.x }}", 5], "c": {"d": "{{ message.y ?? 'none' }}"}});
    let t = ValueTemplate::compile(&tree).unwrap();
    let m = json!({"x": 1});
    assert_eq!(
        t.eval(&Scope::new(&m)).unwrap(),
        json!({"a": 1, "b": ["n=1", 5], "c": {"d": "none"}})
    );
    let (path, error) = ValueTemplate::compile(&json!({"a": [1, "{{ ) }}"]})).unwrap_err();
    assert!(path.contains('a') && path.contains('1'), "{path}");
    assert!(error.to_string().contains("column"));
}

#[test]
fn truthiness() {
    for falsy in [
        json!(null),
        json!(false),
        json!(0),
        json!(0.0),
        json!(""),
        json!([]),
        json!({}),
    ] {
        assert!(!truthy(&falsy), "{falsy} should be false");
    }
    for true_ in [
        json!(true),
        json!(1),
        json!(-0.5),
        json!("0"),
        json!([0]),
        json!({"a": null}),
    ] {
        assert!(truthy(&true_), "{true_} should be true");
    }
}
