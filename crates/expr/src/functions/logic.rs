//! Comparison and conditional functions.

use std::cmp::Ordering;

use serde_json::Value;

use super::{Args, FunctionDef, arg};
use crate::EvalError;
use crate::eval::{compare, equal, truthy};

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "AND",
        min_args: 1,
        max_args: None,
        body: unreachable_lazy,
    },
    FunctionDef {
        name: "OR",
        min_args: 1,
        max_args: None,
        body: unreachable_lazy,
    },
    FunctionDef {
        name: "IF",
        min_args: 2,
        max_args: Some(3),
        body: unreachable_lazy,
    },
    FunctionDef {
        name: "SWITCHCASE",
        min_args: 1,
        max_args: None,
        body: unreachable_lazy,
    },
    FunctionDef {
        name: "DEFAULT",
        min_args: 2,
        max_args: Some(2),
        body: unreachable_lazy,
    },
    FunctionDef {
        name: "NOT",
        min_args: 1,
        max_args: Some(1),
        body: not,
    },
    FunctionDef {
        name: "XOR",
        min_args: 1,
        max_args: None,
        body: xor,
    },
    FunctionDef {
        name: "EQUALTO",
        min_args: 2,
        max_args: Some(2),
        body: equal_to,
    },
    FunctionDef {
        name: "GREATERTHAN",
        min_args: 2,
        max_args: Some(2),
        body: greater_than,
    },
    FunctionDef {
        name: "GREATERTHANEQUAL",
        min_args: 2,
        max_args: Some(2),
        body: greater_than_equal,
    },
    FunctionDef {
        name: "LESSTHAN",
        min_args: 2,
        max_args: Some(2),
        body: less_than,
    },
    FunctionDef {
        name: "LESSTHANEQUAL",
        min_args: 2,
        max_args: Some(2),
        body: less_than_equal,
    },
    FunctionDef {
        name: "ISNULL",
        min_args: 1,
        max_args: Some(1),
        body: is_null,
    },
    FunctionDef {
        name: "ISOBJECT",
        min_args: 1,
        max_args: Some(1),
        body: is_object,
    },
    FunctionDef {
        name: "ISARRAY",
        min_args: 1,
        max_args: Some(1),
        body: is_array,
    },
    FunctionDef {
        name: "ISSTRING",
        min_args: 1,
        max_args: Some(1),
        body: is_string,
    },
    FunctionDef {
        name: "ISNUMBER",
        min_args: 1,
        max_args: Some(1),
        body: is_number,
    },
    FunctionDef {
        name: "ISBOOLEAN",
        min_args: 1,
        max_args: Some(1),
        body: is_boolean,
    },
];

/// The evaluator runs lazy functions itself; this body is never reached.
fn unreachable_lazy(_: Args<'_, '_>) -> Result<Value, EvalError> {
    Err(EvalError::Operator("lazy function called eagerly".into()))
}

fn not(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(!truthy(arg(args, 0))))
}

fn xor(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(
        args.iter().filter(|a| truthy(a)).count() % 2 == 1,
    ))
}

fn equal_to(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(equal(arg(args, 0), arg(args, 1))))
}

fn order(args: Args<'_, '_>) -> Option<Ordering> {
    compare(arg(args, 0), arg(args, 1))
}

fn greater_than(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(order(args) == Some(Ordering::Greater)))
}

fn greater_than_equal(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(matches!(
        order(args),
        Some(Ordering::Greater | Ordering::Equal)
    )))
}

fn less_than(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(order(args) == Some(Ordering::Less)))
}

fn less_than_equal(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(matches!(
        order(args),
        Some(Ordering::Less | Ordering::Equal)
    )))
}

fn is_null(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(arg(args, 0).is_null()))
}

fn is_object(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(arg(args, 0).is_object()))
}

fn is_array(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(arg(args, 0).is_array()))
}

fn is_string(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(arg(args, 0).is_string()))
}

fn is_number(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(arg(args, 0).is_number()))
}

fn is_boolean(args: Args<'_, '_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(arg(args, 0).is_boolean()))
}
