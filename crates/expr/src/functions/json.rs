//! JSON functions: paths, arrays and objects.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

use super::{Args, FunctionDef, arg, array, integer, string, type_name};
use crate::EvalError;

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "JSONPATH",
        min_args: 2,
        max_args: Some(2),
        body: json_path,
    },
    FunctionDef {
        name: "TOJSON",
        min_args: 1,
        max_args: Some(1),
        body: parse_json,
    },
    FunctionDef {
        name: "PARSEJSON",
        min_args: 1,
        max_args: Some(1),
        body: parse_json,
    },
    FunctionDef {
        name: "SIZE",
        min_args: 1,
        max_args: Some(2),
        body: size,
    },
    FunctionDef {
        name: "GETELEMENTAT",
        min_args: 2,
        max_args: Some(2),
        body: get_element_at,
    },
    FunctionDef {
        name: "LASTELEMENT",
        min_args: 1,
        max_args: Some(1),
        body: last_element,
    },
    FunctionDef {
        name: "PUSH",
        min_args: 2,
        max_args: Some(2),
        body: push,
    },
    FunctionDef {
        name: "POP",
        min_args: 1,
        max_args: Some(1),
        body: pop,
    },
    FunctionDef {
        name: "REMOVEAT",
        min_args: 2,
        max_args: Some(2),
        body: remove_at,
    },
    FunctionDef {
        name: "KEYS",
        min_args: 1,
        max_args: Some(1),
        body: keys,
    },
    FunctionDef {
        name: "VALUES",
        min_args: 1,
        max_args: Some(1),
        body: values,
    },
    FunctionDef {
        name: "MERGE",
        min_args: 1,
        max_args: None,
        body: merge,
    },
    FunctionDef {
        name: "NEWEMPTYOBJECT",
        min_args: 0,
        max_args: Some(0),
        body: new_object,
    },
    FunctionDef {
        name: "NEWEMPTYARRAY",
        min_args: 0,
        max_args: Some(0),
        body: new_array,
    },
    FunctionDef {
        name: "CARDINALITYONE",
        min_args: 1,
        max_args: Some(1),
        body: cardinality_one,
    },
    FunctionDef {
        name: "CARDINALITYMANY",
        min_args: 1,
        max_args: Some(1),
        body: cardinality_many,
    },
];

fn json_path(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "JSONPATH";
    let expression = string(F, args, 1)?;
    let path = JsonPath::parse(expression)
        .map_err(|e| EvalError::function(F, format!("invalid JSONPath '{expression}': {e}")))?;
    Ok(Value::Array(
        path.query(arg(args, 0))
            .all()
            .into_iter()
            .cloned()
            .collect(),
    ))
}

fn parse_json(args: Args<'_, '_>) -> Result<Value, EvalError> {
    match arg(args, 0) {
        Value::String(s) => serde_json::from_str(s)
            .map_err(|e| EvalError::function("TOJSON", format!("not valid JSON: {e}"))),
        other => Ok(other.clone()),
    }
}

fn size(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let n = match arg(args, 0) {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        Value::Null if !matches!(arg(args, 1), Value::Bool(true)) => 0,
        other => {
            return Err(EvalError::function(
                "SIZE",
                format!(
                    "argument 1 must be a string, an array or an object, got {}",
                    type_name(other)
                ),
            ));
        }
    };
    Ok(Value::from(n))
}

fn position(function: &'static str, len: usize, i: i64) -> Option<usize> {
    let _ = function;
    let len = i64::try_from(len).ok()?;
    let at = if i < 0 { len + i } else { i };
    (0..len)
        .contains(&at)
        .then(|| usize::try_from(at).ok())
        .flatten()
}

fn get_element_at(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "GETELEMENTAT";
    let items = array(F, args, 0)?;
    let i = integer(F, args, 1)?;
    Ok(position(F, items.len(), i).map_or(Value::Null, |at| items[at].clone()))
}

fn last_element(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(array("LASTELEMENT", args, 0)?
        .last()
        .cloned()
        .unwrap_or(Value::Null))
}

fn push(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let mut items = match arg(args, 0) {
        Value::Null => Vec::new(),
        _ => array("PUSH", args, 0)?.clone(),
    };
    items.push(arg(args, 1).clone());
    Ok(Value::Array(items))
}

fn pop(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let mut items = array("POP", args, 0)?.clone();
    items.pop();
    Ok(Value::Array(items))
}

fn remove_at(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "REMOVEAT";
    let mut items = array(F, args, 0)?.clone();
    let i = integer(F, args, 1)?;
    if let Some(at) = position(F, items.len(), i) {
        items.remove(at);
    }
    Ok(Value::Array(items))
}

fn object<'a>(
    function: &'static str,
    args: Args<'a, '_>,
    index: usize,
) -> Result<&'a Map<String, Value>, EvalError> {
    match arg(args, index) {
        Value::Object(m) => Ok(m),
        other => Err(EvalError::function(
            function,
            format!(
                "argument {} must be an object, got {}",
                index + 1,
                type_name(other)
            ),
        )),
    }
}

fn keys(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Array(
        object("KEYS", args, 0)?
            .keys()
            .map(|k| Value::String(k.clone()))
            .collect(),
    ))
}

fn values(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Array(
        object("VALUES", args, 0)?.values().cloned().collect(),
    ))
}

fn merge(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let mut out = Map::new();
    for i in 0..args.len() {
        if arg(args, i).is_null() {
            continue;
        }
        for (k, v) in object("MERGE", args, i)? {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

fn new_object(_: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Object(Map::new()))
}

fn new_array(_: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Array(Vec::new()))
}

fn cardinality_one(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(match arg(args, 0) {
        Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    })
}

fn cardinality_many(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(match arg(args, 0) {
        Value::Array(items) => Value::Array(items.clone()),
        Value::Null => Value::Array(Vec::new()),
        other => Value::Array(vec![other.clone()]),
    })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    fn call(
        f: fn(Args<'_, '_>) -> Result<Value, EvalError>,
        args: &[Value],
    ) -> Result<Value, EvalError> {
        let args: Vec<Cow<'_, Value>> = args.iter().map(Cow::Borrowed).collect();
        f(&args)
    }

    #[test]
    fn paths_and_parsing() {
        let doc = json!({"items": [{"p": 1}, {"p": 5}]});
        assert_eq!(
            call(json_path, &[doc.clone(), json!("$.items[?@.p > 2].p")]).ok(),
            Some(json!([5]))
        );
        assert!(
            call(json_path, &[doc, json!("$[")])
                .expect_err("bad")
                .to_string()
                .starts_with("JSONPATH: invalid JSONPath")
        );
        assert_eq!(
            call(parse_json, &[json!("{\"a\":[1]}")]).ok(),
            Some(json!({"a": [1]}))
        );
        assert!(call(parse_json, &[json!("{oops")]).is_err());
    }

    #[test]
    fn arrays() {
        assert_eq!(call(size, &[json!("héllo")]).ok(), Some(json!(5)));
        assert_eq!(call(size, &[json!(null)]).ok(), Some(json!(0)));
        assert!(call(size, &[json!(null), json!(true)]).is_err());
        assert!(
            call(size, &[json!(3)])
                .expect_err("number")
                .to_string()
                .contains("SIZE")
        );
        assert_eq!(
            call(get_element_at, &[json!([1, 2, 3]), json!(-1)]).ok(),
            Some(json!(3))
        );
        assert_eq!(
            call(get_element_at, &[json!([1]), json!(4)]).ok(),
            Some(json!(null))
        );
        assert_eq!(
            call(push, &[json!([1]), json!(2)]).ok(),
            Some(json!([1, 2]))
        );
        assert_eq!(call(push, &[json!(null), json!(2)]).ok(), Some(json!([2])));
        assert_eq!(call(pop, &[json!([1, 2])]).ok(), Some(json!([1])));
        assert_eq!(
            call(remove_at, &[json!([1, 2, 3]), json!(1)]).ok(),
            Some(json!([1, 3]))
        );
        assert_eq!(call(last_element, &[json!([])]).ok(), Some(json!(null)));
        assert!(
            call(pop, &[json!("x")])
                .expect_err("type")
                .to_string()
                .contains("POP: argument 1 must be an array")
        );
    }

    #[test]
    fn objects() {
        let o = json!({"a": 1, "b": 2});
        assert_eq!(
            call(keys, std::slice::from_ref(&o)).ok(),
            Some(json!(["a", "b"]))
        );
        assert_eq!(
            call(values, std::slice::from_ref(&o)).ok(),
            Some(json!([1, 2]))
        );
        assert_eq!(
            call(merge, &[o, json!({"b": 3, "c": 4})]).ok(),
            Some(json!({"a": 1, "b": 3, "c": 4}))
        );
        assert!(call(merge, &[json!([1])]).is_err());
        assert_eq!(call(cardinality_one, &[json!([7, 8])]).ok(), Some(json!(7)));
        assert_eq!(call(cardinality_many, &[json!(7)]).ok(), Some(json!([7])));
    }
}
