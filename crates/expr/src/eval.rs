//! Evaluating the compiled form over a scope, borrowing wherever the result
//! is already in the scope or in the expression.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::ast::{BinaryOp, Lazy, Node, Root, Segment};
use crate::functions;
use crate::{EvalError, Scope};

static NULL: Value = Value::Null;

type Out<'a> = Result<Cow<'a, Value>, EvalError>;

/// Whether a value counts as true: `false`, `null`, `0`, `""`, `[]` and
/// `{}` are false, everything else is true.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

pub(crate) fn eval<'a>(node: &'a Node, scope: &Scope<'a>) -> Out<'a> {
    match node {
        Node::Literal(v) => Ok(Cow::Borrowed(v)),
        Node::Path { root, segments } => path(*root, segments, scope),
        Node::Index(base, segments) => {
            let base = eval(base, scope)?;
            match base {
                Cow::Borrowed(v) => walk(v, segments, scope),
                Cow::Owned(v) => {
                    let found = walk(&v, segments, scope)?.into_owned();
                    Ok(Cow::Owned(found))
                }
            }
        }
        Node::Not(_) | Node::And(..) | Node::Or(..) => truth(node, scope).map(bool_value),
        Node::Neg(inner) => {
            let v = eval(inner, scope)?;
            arithmetic(BinaryOp::Sub, &Value::from(0), &v).map(Cow::Owned)
        }
        Node::Coalesce(l, r) => {
            let left = eval(l, scope)?;
            if left.is_null() {
                eval(r, scope)
            } else {
                Ok(left)
            }
        }
        Node::Binary(op, l, r) => {
            let (left, right) = (eval(l, scope)?, eval(r, scope)?);
            binary(*op, &left, &right)
        }
        Node::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(eval(item, scope)?.into_owned());
            }
            Ok(Cow::Owned(Value::Array(out)))
        }
        Node::Object(members) => {
            let mut out = Map::new();
            for (k, v) in members {
                out.insert(k.clone(), eval(v, scope)?.into_owned());
            }
            Ok(Cow::Owned(Value::Object(out)))
        }
        Node::Lazy(kind, args) => lazy(*kind, args, scope),
        Node::Call {
            function,
            args,
            regex,
        } => {
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                values.push(eval(a, scope)?);
            }
            let out = match regex {
                Some(re) => functions::call_with_regex(function, &values, re)?,
                None => (function.body)(&values)?,
            };
            Ok(Cow::Owned(out))
        }
    }
}

/// The truth of `node`: logic and comparisons are decided without building
/// a JSON value for each intermediate result.
pub(crate) fn truth(node: &Node, scope: &Scope<'_>) -> Result<bool, EvalError> {
    match node {
        Node::And(l, r) => Ok(truth(l, scope)? && truth(r, scope)?),
        Node::Or(l, r) => Ok(truth(l, scope)? || truth(r, scope)?),
        Node::Not(inner) => Ok(!truth(inner, scope)?),
        Node::Binary(op, l, r) => {
            let (left, right) = (eval(l, scope)?, eval(r, scope)?);
            match comparison(*op, &left, &right) {
                Some(result) => Ok(result),
                None => Ok(truthy(&*binary(*op, &left, &right)?)),
            }
        }
        other => Ok(truthy(&*eval(other, scope)?)),
    }
}

/// The result of a comparison operator; `None` for arithmetic ones.
fn comparison(op: BinaryOp, l: &Value, r: &Value) -> Option<bool> {
    Some(match op {
        BinaryOp::Eq => equal(l, r),
        BinaryOp::Ne => !equal(l, r),
        BinaryOp::Lt => compare(l, r) == Some(Ordering::Less),
        BinaryOp::Le => matches!(compare(l, r), Some(Ordering::Less | Ordering::Equal)),
        BinaryOp::Gt => compare(l, r) == Some(Ordering::Greater),
        BinaryOp::Ge => matches!(compare(l, r), Some(Ordering::Greater | Ordering::Equal)),
        _ => return None,
    })
}

fn bool_value<'a>(b: bool) -> Cow<'a, Value> {
    Cow::Owned(Value::Bool(b))
}

fn path<'a>(root: Root, segments: &'a [Segment], scope: &Scope<'a>) -> Out<'a> {
    let (base, rest): (Option<&'a Value>, &'a [Segment]) = match root {
        Root::Message => (Some(scope.message), segments),
        Root::Steps => match segments.split_first() {
            None => return Ok(Cow::Borrowed(&NULL)),
            Some((first, rest)) => {
                let id = match first {
                    Segment::Key(k) => Cow::Borrowed(k.as_str()),
                    Segment::Index(i) => Cow::Owned(i.to_string()),
                    Segment::Computed(n) => Cow::Owned(key_text(&*eval(n, scope)?)),
                };
                (scope.steps.and_then(|s| s.get(&id)), rest)
            }
        },
        Root::Global => (scope.global, segments),
        Root::Account => (scope.account, segments),
        Root::Metadata => (scope.metadata.map(|m| m.value()), segments),
        Root::Item => (scope.item, segments),
        Root::Index => (scope.index, segments),
        Root::Error => (scope.error, segments),
    };
    match base {
        Some(v) => walk(v, rest, scope),
        None => Ok(Cow::Borrowed(&NULL)),
    }
}

fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn walk<'a>(mut current: &'a Value, segments: &'a [Segment], scope: &Scope<'a>) -> Out<'a> {
    for segment in segments {
        let next = match segment {
            Segment::Key(k) => match current {
                Value::Object(m) => m.get(k.as_str()),
                Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            },
            Segment::Index(i) => index(current, *i),
            Segment::Computed(node) => {
                let key = eval(node, scope)?;
                match (&*key, current) {
                    (Value::Number(n), _) => n.as_i64().and_then(|i| index(current, i)),
                    (Value::String(s), Value::Object(m)) => m.get(s.as_str()),
                    (Value::String(s), Value::Array(_)) => {
                        s.parse::<i64>().ok().and_then(|i| index(current, i))
                    }
                    _ => None,
                }
            }
        };
        match next {
            Some(v) => current = v,
            None => return Ok(Cow::Borrowed(&NULL)),
        }
    }
    Ok(Cow::Borrowed(current))
}

fn index(value: &Value, i: i64) -> Option<&Value> {
    let Value::Array(items) = value else {
        return None;
    };
    let len = i64::try_from(items.len()).ok()?;
    let at = if i < 0 { len + i } else { i };
    usize::try_from(at).ok().and_then(|at| items.get(at))
}

fn lazy<'a>(kind: Lazy, args: &'a [Node], scope: &Scope<'a>) -> Out<'a> {
    match kind {
        Lazy::If => {
            if truthy(&*eval(&args[0], scope)?) {
                eval(&args[1], scope)
            } else {
                args.get(2)
                    .map_or(Ok(Cow::Borrowed(&NULL)), |n| eval(n, scope))
            }
        }
        Lazy::And => {
            for a in args {
                if !truthy(&*eval(a, scope)?) {
                    return Ok(bool_value(false));
                }
            }
            Ok(bool_value(true))
        }
        Lazy::Or => {
            for a in args {
                if truthy(&*eval(a, scope)?) {
                    return Ok(bool_value(true));
                }
            }
            Ok(bool_value(false))
        }
        Lazy::SwitchCase => {
            let mut pairs = args[1..].chunks(2);
            for pair in pairs.by_ref() {
                if let [condition, result] = pair
                    && truthy(&*eval(condition, scope)?)
                {
                    return eval(result, scope);
                }
            }
            eval(&args[0], scope)
        }
        Lazy::Default => {
            let value = eval(&args[0], scope)?;
            let empty = match &*value {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                _ => false,
            };
            if empty {
                eval(&args[1], scope)
            } else {
                Ok(value)
            }
        }
    }
}

/// Deep equality where numbers compare by value (1 == 1.0).
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

fn number_cmp(x: &Number, y: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return Some(a.cmp(&b));
    }
    x.as_f64()?.partial_cmp(&y.as_f64()?)
}

/// Ordering of two values of the same kind (numbers or strings); `None`
/// for mismatched types, which makes every comparison false.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn binary<'a>(op: BinaryOp, l: &Value, r: &Value) -> Out<'a> {
    match comparison(op, l, r) {
        Some(result) => Ok(bool_value(result)),
        None => arithmetic(op, l, r).map(Cow::Owned),
    }
}

fn symbol(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        BinaryOp::Rem => "%",
        _ => "?",
    }
}

pub(crate) fn arithmetic(op: BinaryOp, l: &Value, r: &Value) -> Result<Value, EvalError> {
    if op == BinaryOp::Add && (l.is_string() || r.is_string()) {
        let mut s = String::new();
        crate::render_text(l, &mut s);
        crate::render_text(r, &mut s);
        return Ok(Value::String(s));
    }
    let (Value::Number(x), Value::Number(y)) = (l, r) else {
        return Err(EvalError::Operator(format!(
            "cannot apply '{}' to {} and {}",
            symbol(op),
            functions::type_name(l),
            functions::type_name(r)
        )));
    };
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        let exact = match op {
            BinaryOp::Add => a.checked_add(b),
            BinaryOp::Sub => a.checked_sub(b),
            BinaryOp::Mul => a.checked_mul(b),
            BinaryOp::Div if b == 0 => return Err(EvalError::Operator("division by zero".into())),
            BinaryOp::Div if a % b == 0 => a.checked_div(b),
            BinaryOp::Div => None,
            BinaryOp::Rem if b == 0 => return Err(EvalError::Operator("remainder by zero".into())),
            BinaryOp::Rem => a.checked_rem(b),
            _ => None,
        };
        if let Some(v) = exact {
            return Ok(Value::from(v));
        }
    }
    let (a, b) = (
        x.as_f64().unwrap_or(f64::NAN),
        y.as_f64().unwrap_or(f64::NAN),
    );
    let f = match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div if b == 0.0 => return Err(EvalError::Operator("division by zero".into())),
        BinaryOp::Div => a / b,
        BinaryOp::Rem if b == 0.0 => return Err(EvalError::Operator("remainder by zero".into())),
        BinaryOp::Rem => a % b,
        _ => f64::NAN,
    };
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| EvalError::Operator(format!("'{}' gave a number out of range", symbol(op))))
}
