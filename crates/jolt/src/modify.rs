//! `modify-overwrite-beta`, `modify-default-beta` and `modify-define-beta`:
//! compute values in place. The spec mirrors the input; a leaf is a literal
//! value, an `@(n,path)` copy, or a function call `=name(args)` (`=name` alone
//! applies the function to the value already there). Overwrite always
//! writes; default writes only where the value is missing or null; define
//! only where the key is missing. A function whose input does not fit (say
//! `=toUpper` on a number) writes nothing, as in Java JOLT.

use serde_json::{Map, Number, Value};

use crate::error::{JoltError, child_path};
use crate::key::{KeyPattern, Matched, specificity};
use crate::path::{Levels, ValueRef, split_top_level};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    Overwrite,
    Default,
    Define,
}

#[derive(Debug, Clone)]
pub(crate) struct Modify {
    root: Node,
    mode: WriteMode,
}

#[derive(Debug, Clone)]
struct Node {
    literals: Vec<(String, Child)>,
    patterns: Vec<(KeyPattern, Child)>,
}

#[derive(Debug, Clone)]
enum Child {
    Node(Node),
    Leaf(Rhs),
}

#[derive(Debug, Clone)]
enum Rhs {
    Literal(Value),
    Copy(ValueRef),
    Call {
        function: &'static Function,
        args: Option<Vec<Arg>>,
    },
}

#[derive(Debug, Clone)]
enum Arg {
    Literal(Value),
    Ref(ValueRef),
}

/// A modify function: the arguments in, the value to write out (or nothing).
struct Function {
    name: &'static str,
    body: fn(&[Value]) -> Option<Value>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "={}", self.name)
    }
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Modify {
    pub fn compile(spec: &Value, path: &str, mode: WriteMode) -> Result<Modify, JoltError> {
        let Value::Object(map) = spec else {
            return Err(JoltError::spec(path, "a modify spec must be an object"));
        };
        Ok(Modify {
            root: compile_node(map, path)?,
            mode,
        })
    }

    pub fn apply(&self, mut value: Value) -> Value {
        let mut path = Vec::new();
        let mut matched = vec![Matched::literal("root")];
        self.apply_node(&self.root, &mut value, &mut path, &mut matched);
        value
    }

    fn apply_node(
        &self,
        node: &Node,
        root: &mut Value,
        path: &mut Vec<Seg>,
        matched: &mut Vec<Matched>,
    ) {
        let Some(here) = get(root, path) else { return };
        // Which spec child each key gets: literals first, then the most
        // specific wildcard that matches an existing key.
        let mut work: Vec<(Seg, Matched, &Child)> = Vec::new();
        match here {
            Value::Object(map) => {
                for (key, child) in &node.literals {
                    work.push((Seg::Key(key.clone()), Matched::literal(key), child));
                }
                for key in map.keys() {
                    if node.literals.iter().any(|(k, _)| k == key) {
                        continue;
                    }
                    if let Some((m, child)) = first_pattern(node, key) {
                        work.push((Seg::Key(key.clone()), m, child));
                    }
                }
            }
            Value::Array(items) => {
                for (key, child) in &node.literals {
                    if let Ok(index) = key.parse::<usize>() {
                        work.push((Seg::Index(index), Matched::literal(key), child));
                    }
                }
                for index in 0..items.len() {
                    let key = index.to_string();
                    if node.literals.iter().any(|(k, _)| *k == key) {
                        continue;
                    }
                    if let Some((m, child)) = first_pattern(node, &key) {
                        work.push((Seg::Index(index), m, child));
                    }
                }
            }
            _ => return,
        }
        for (seg, m, child) in work {
            path.push(seg);
            matched.push(m);
            match child {
                Child::Node(inner) => self.descend(inner, root, path, matched),
                Child::Leaf(rhs) => self.write_leaf(rhs, root, path, matched),
            }
            matched.pop();
            path.pop();
        }
    }

    fn descend(
        &self,
        node: &Node,
        root: &mut Value,
        path: &mut Vec<Seg>,
        matched: &mut Vec<Matched>,
    ) {
        let created = match get(root, path) {
            Some(Value::Object(_) | Value::Array(_)) => false,
            Some(Value::Null) | None if !node.literals.is_empty() => {
                set(root, path, Value::Object(Map::new()));
                true
            }
            _ => return,
        };
        self.apply_node(node, root, path, matched);
        if created && matches!(get(root, path), Some(Value::Object(map)) if map.is_empty()) {
            remove(root, path);
        }
    }

    fn write_leaf(&self, rhs: &Rhs, root: &mut Value, path: &[Seg], matched: &[Matched]) {
        let current = get(root, path);
        let allowed = match self.mode {
            WriteMode::Overwrite => true,
            WriteMode::Default => current.is_none_or(Value::is_null),
            WriteMode::Define => current.is_none(),
        };
        if !allowed {
            return;
        }
        let levels = Stack(matched);
        let data_at = |up: usize| -> Option<&Value> {
            let keep = path.len().checked_sub(up)?;
            get(root, &path[..keep])
        };
        let resolve = |r: &ValueRef| {
            data_at(r.up)
                .and_then(|start| r.resolve(start, &levels))
                .cloned()
        };
        let result = match rhs {
            Rhs::Literal(value) => Some(value.clone()),
            Rhs::Copy(reference) => resolve(reference),
            Rhs::Call {
                function,
                args: None,
            } => match current {
                Some(value) => (function.body)(std::slice::from_ref(value)),
                None => (function.body)(&[]),
            },
            Rhs::Call {
                function,
                args: Some(args),
            } => {
                let values: Vec<Value> = args
                    .iter()
                    .map(|arg| match arg {
                        Arg::Literal(value) => value.clone(),
                        Arg::Ref(reference) => resolve(reference).unwrap_or(Value::Null),
                    })
                    .collect();
                (function.body)(&values)
            }
        };
        if let Some(value) = result {
            set(root, path, value);
        }
    }
}

struct Stack<'a>(&'a [Matched]);

impl Levels for Stack<'_> {
    fn matched(&self, up: usize) -> Option<&Matched> {
        self.0.len().checked_sub(up + 1).and_then(|i| self.0.get(i))
    }
}

fn first_pattern<'n>(node: &'n Node, key: &str) -> Option<(Matched, &'n Child)> {
    node.patterns
        .iter()
        .find_map(|(pattern, child)| pattern.matches(key).map(|m| (m, child)))
}

fn get<'v>(root: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    path.iter().try_fold(root, |value, seg| match (seg, value) {
        (Seg::Key(key), Value::Object(map)) => map.get(key),
        (Seg::Index(index), Value::Array(items)) => items.get(*index),
        _ => None,
    })
}

/// Sets the value at `path`; the parent must already exist.
fn set(root: &mut Value, path: &[Seg], value: Value) {
    let Some((last, parent)) = path.split_last() else {
        *root = value;
        return;
    };
    let mut container = root;
    for seg in parent {
        let next = match (seg, container) {
            (Seg::Key(key), Value::Object(map)) => map.get_mut(key),
            (Seg::Index(index), Value::Array(items)) => items.get_mut(*index),
            _ => None,
        };
        match next {
            Some(next) => container = next,
            None => return,
        }
    }
    match (last, container) {
        (Seg::Key(key), Value::Object(map)) => {
            map.insert(key.clone(), value);
        }
        (Seg::Index(index), Value::Array(items)) => {
            if items.len() <= *index {
                items.resize(index + 1, Value::Null);
            }
            items[*index] = value;
        }
        _ => {}
    }
}

fn remove(root: &mut Value, path: &[Seg]) {
    let Some((Seg::Key(key), parent)) = path.split_last() else {
        return;
    };
    let mut container = root;
    for seg in parent {
        let next = match (seg, container) {
            (Seg::Key(k), Value::Object(map)) => map.get_mut(k),
            (Seg::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => container = next,
            None => return,
        }
    }
    if let Value::Object(map) = container {
        map.shift_remove(key);
    }
}

fn compile_node(map: &Map<String, Value>, path: &str) -> Result<Node, JoltError> {
    let mut literals = Vec::new();
    let mut patterns: Vec<(&str, KeyPattern, Child)> = Vec::new();
    for (raw, value) in map {
        let key_path = child_path(path, raw);
        let child = match value {
            Value::Object(inner) => Child::Node(compile_node(inner, &key_path)?),
            Value::String(text) => {
                Child::Leaf(compile_rhs(text).map_err(|m| JoltError::spec(&key_path, m))?)
            }
            other => Child::Leaf(Rhs::Literal(other.clone())),
        };
        match KeyPattern::parse(raw).map_err(|m| JoltError::spec(&key_path, m))? {
            KeyPattern::Literal(key) => literals.push((key, child)),
            pattern => patterns.push((raw, pattern, child)),
        }
    }
    patterns.sort_by(|a, b| specificity(false, a.0, false, b.0));
    Ok(Node {
        literals,
        patterns: patterns.into_iter().map(|(_, p, c)| (p, c)).collect(),
    })
}

fn compile_rhs(text: &str) -> Result<Rhs, String> {
    if let Some(call) = text.strip_prefix('=') {
        let (name, args) = match call.find('(') {
            None => (call.trim(), None),
            Some(open) => {
                let inner = call[open + 1..]
                    .trim_end()
                    .strip_suffix(')')
                    .ok_or_else(|| format!("`{text}`: missing `)` at the end of the call"))?;
                let args = if inner.trim().is_empty() {
                    Vec::new()
                } else {
                    split_top_level(inner, ',')?
                        .iter()
                        .map(|a| compile_arg(a.trim()))
                        .collect::<Result<_, _>>()?
                };
                (call[..open].trim(), Some(args))
            }
        };
        let function = FUNCTIONS.iter().find(|f| f.name == name).ok_or_else(|| {
            let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
            format!(
                "unknown modify function `{name}` (known: {})",
                names.join(", ")
            )
        })?;
        return Ok(Rhs::Call { function, args });
    }
    if text.starts_with('@') {
        return Ok(Rhs::Copy(ValueRef::parse(text)?));
    }
    Ok(Rhs::Literal(Value::String(text.to_owned())))
}

fn compile_arg(text: &str) -> Result<Arg, String> {
    if text.starts_with('@') {
        return ValueRef::parse(text).map(Arg::Ref);
    }
    if let Some(inner) = text.strip_prefix('\'') {
        let inner = inner
            .strip_suffix('\'')
            .ok_or_else(|| format!("unterminated `'` in `{text}`"))?;
        return Ok(Arg::Literal(Value::String(inner.to_owned())));
    }
    // Numbers, booleans and null as JSON; anything else is text.
    Ok(Arg::Literal(match serde_json::from_str::<Value>(text) {
        Ok(value @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => value,
        _ => Value::String(text.to_owned()),
    }))
}

macro_rules! functions {
    ($($name:literal => $body:expr),* $(,)?) => {
        static FUNCTIONS: &[Function] = &[$(Function { name: $name, body: $body }),*];
    };
}

functions! {
    "toUpper" => |a| Some(Value::String(text(a.first()?)?.to_uppercase())),
    "toLower" => |a| Some(Value::String(text(a.first()?)?.to_lowercase())),
    "trim" => |a| Some(Value::String(text(a.first()?)?.trim().to_owned())),
    "concat" => concat,
    "join" => join,
    "split" => split,
    "substring" => substring,
    "leftPad" => |a| pad(a, true),
    "rightPad" => |a| pad(a, false),
    "toString" => |a| a.first().map(|v| Value::String(display(v))),
    "toInteger" => |a| to_integer(a.first()?),
    "toLong" => |a| to_integer(a.first()?),
    "toDouble" => |a| float(number(a.first()?)?),
    "toBoolean" => |a| match a.first()? {
        Value::Bool(b) => Some(Value::Bool(*b)),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
        _ => None,
    },
    "abs" => |a| match a.first()? {
        Value::Number(n) if n.as_i64().is_some() => n.as_i64().and_then(i64::checked_abs).map(Value::from),
        other => float(number(other)?.abs()),
    },
    "min" => |a| extreme(a, |x, y| x < y),
    "max" => |a| extreme(a, |x, y| x > y),
    "avg" => |a| {
        let numbers = numbers(a)?;
        if numbers.is_empty() { return None; }
        float(numbers.iter().sum::<f64>() / numbers.len() as f64)
    },
    "intSum" => |a| int_sum(a),
    "longSum" => |a| int_sum(a),
    "doubleSum" => |a| float(numbers(a)?.iter().sum()),
    "intSubtract" => |a| int_subtract(a),
    "longSubtract" => |a| int_subtract(a),
    "doubleSubtract" => |a| float(number(a.first()?)? - number(a.get(1)?)?),
    "divide" => |a| {
        let divisor = number(a.get(1)?)?;
        if divisor == 0.0 { return None; }
        float(number(a.first()?)? / divisor)
    },
    "divideAndRound" => |a| {
        let digits = i32::try_from(to_integer(a.first()?)?.as_i64()?).ok()?;
        let divisor = number(a.get(2)?)?;
        if divisor == 0.0 { return None; }
        let scale = 10f64.powi(digits);
        float((number(a.get(1)?)? / divisor * scale).round() / scale)
    },
    "size" => |a| match a.first()? {
        Value::String(s) => Some(Value::from(s.chars().count())),
        Value::Array(items) => Some(Value::from(items.len())),
        Value::Object(map) => Some(Value::from(map.len())),
        _ => None,
    },
    "firstElement" => |a| a.first()?.as_array()?.first().cloned(),
    "lastElement" => |a| a.first()?.as_array()?.last().cloned(),
    "elementAt" => element_at,
    "toList" => |a| Some(match a {
        [Value::Array(items)] => Value::Array(items.clone()),
        [single] => Value::Array(vec![single.clone()]),
        many => Value::Array(many.to_vec()),
    }),
    "sort" => |a| match a.first()? {
        Value::Array(items) => {
            let mut items = items.clone();
            items.sort_by(compare);
            Some(Value::Array(items))
        }
        Value::Object(_) => Some(crate::sort::apply(a.first()?.clone())),
        _ => None,
    },
    "squashNulls" => |a| Some(squash(a.first()?, false)),
    "recursivelySquashNulls" => |a| Some(squash(a.first()?, true)),
    "squashDuplicates" => |a| {
        let items = a.first()?.as_array()?;
        let mut unique: Vec<Value> = Vec::with_capacity(items.len());
        for item in items {
            if !unique.contains(item) { unique.push(item.clone()); }
        }
        Some(Value::Array(unique))
    },
    "noop" => |_| None,
    "isPresent" => |a| a.first().cloned(),
    "notNull" => |a| a.first().filter(|v| !v.is_null()).cloned(),
    "isNull" => |a| a.first().filter(|v| v.is_null()).cloned(),
    "isString" => |a| a.first().filter(|v| v.is_string()).cloned(),
    "isInteger" => |a| a.first().filter(|v| v.is_i64() || v.is_u64()).cloned(),
    "isLong" => |a| a.first().filter(|v| v.is_i64() || v.is_u64()).cloned(),
    "isDouble" => |a| a.first().filter(|v| v.is_f64()).cloned(),
    "isBoolean" => |a| a.first().filter(|v| v.is_boolean()).cloned(),
    "isList" => |a| a.first().filter(|v| v.is_array()).cloned(),
    "isMap" => |a| a.first().filter(|v| v.is_object()).cloned(),
}

fn text(value: &Value) -> Option<&str> {
    value.as_str()
}

/// The text of a value as Java's `toString` would give for scalars; JSON for
/// arrays and objects.
fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Arguments, with one array argument standing for its elements.
fn flatten(args: &[Value]) -> &[Value] {
    match args {
        [Value::Array(items)] => items,
        _ => args,
    }
}

fn concat(args: &[Value]) -> Option<Value> {
    let mut out = String::new();
    for value in flatten(args) {
        if !value.is_null() {
            out.push_str(&display(value));
        }
    }
    Some(Value::String(out))
}

fn join(args: &[Value]) -> Option<Value> {
    let (separator, rest) = args.split_first()?;
    let separator = text(separator)?;
    let mut parts = Vec::new();
    for value in rest {
        match value {
            Value::Array(items) => parts.extend(items.iter().filter(|v| !v.is_null()).map(display)),
            Value::Null => {}
            other => parts.push(display(other)),
        }
    }
    Some(Value::String(parts.join(separator)))
}

fn split(args: &[Value]) -> Option<Value> {
    let separator = text(args.first()?)?;
    let subject = text(args.get(1)?)?;
    // Java's String.split takes a regex and drops trailing empty strings.
    let regex = regex::Regex::new(separator).ok()?;
    let mut parts: Vec<&str> = regex.split(subject).collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    Some(Value::Array(
        parts
            .into_iter()
            .map(|p| Value::String(p.to_owned()))
            .collect(),
    ))
}

fn substring(args: &[Value]) -> Option<Value> {
    let subject: Vec<char> = text(args.first()?)?.chars().collect();
    let start = usize::try_from(to_integer(args.get(1)?)?.as_i64()?).ok()?;
    let end = usize::try_from(to_integer(args.get(2)?)?.as_i64()?).ok()?;
    (start <= end && end <= subject.len())
        .then(|| Value::String(subject[start..end].iter().collect()))
}

fn pad(args: &[Value], left: bool) -> Option<Value> {
    let subject = display(args.first()?);
    let width = usize::try_from(to_integer(args.get(1)?)?.as_i64()?).ok()?;
    let mut fill = text(args.get(2)?)?.chars();
    let (Some(fill), None) = (fill.next(), fill.next()) else {
        return None;
    };
    let count = width.saturating_sub(subject.chars().count());
    let padding: String = std::iter::repeat_n(fill, count).collect();
    Some(Value::String(if left {
        padding + &subject
    } else {
        subject + &padding
    }))
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn numbers(args: &[Value]) -> Option<Vec<f64>> {
    flatten(args).iter().map(number).collect()
}

fn float(f: f64) -> Option<Value> {
    Number::from_f64(f).map(Value::Number)
}

fn to_integer(value: &Value) -> Option<Value> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(value.clone()),
        other => {
            let f = number(other)?.trunc();
            (f.abs() < 9.2e18).then(|| Value::from(f as i64))
        }
    }
}

fn int_sum(args: &[Value]) -> Option<Value> {
    flatten(args)
        .iter()
        .map(|v| to_integer(v)?.as_i64())
        .try_fold(0i64, |sum, v| sum.checked_add(v?))
        .map(Value::from)
}

fn int_subtract(args: &[Value]) -> Option<Value> {
    let a = to_integer(args.first()?)?.as_i64()?;
    let b = to_integer(args.get(1)?)?.as_i64()?;
    a.checked_sub(b).map(Value::from)
}

fn extreme(args: &[Value], better: fn(f64, f64) -> bool) -> Option<Value> {
    let mut best: Option<(&Value, f64)> = None;
    for value in flatten(args) {
        let Some(n) = number(value) else { continue };
        if best.is_none_or(|(_, b)| better(n, b)) {
            best = Some((value, n));
        }
    }
    best.map(|(value, n)| match value {
        Value::Number(_) => value.clone(),
        _ => float(n).unwrap_or(Value::Null),
    })
}

fn element_at(args: &[Value]) -> Option<Value> {
    // Accept both `(list, index)` and `(index, list)`.
    let (list, index) = match args {
        [Value::Array(list), index] | [index, Value::Array(list)] => (list, index),
        _ => return None,
    };
    let index = usize::try_from(to_integer(index)?.as_i64()?).ok()?;
    list.get(index).cloned()
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => display(a).cmp(&display(b)),
    }
}

fn squash(value: &Value, deep: bool) -> Value {
    let inner = |v: &Value| if deep { squash(v, true) } else { v.clone() };
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().filter(|v| !v.is_null()).map(inner).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), inner(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(mode: WriteMode, spec: Value, input: Value) -> Value {
        Modify::compile(&spec, "spec", mode).unwrap().apply(input)
    }

    #[test]
    fn overwrite_with_functions_and_references() {
        let out = run(
            WriteMode::Overwrite,
            json!({
                "name": "=toUpper",
                "full": "=concat(@(1,first),' ',@(1,last))",
                "total": "=intSum(@(1,a), 5)",
                "tags": "=join(',', @(1,list))",
                "copy": "@(1,first)",
                "fixed": 7,
                "items": {"*": {"price": "=toDouble"}}
            }),
            json!({"name": "ana", "first": "Ana", "last": "Lima", "a": 2, "list": ["x", "y"], "items": [{"price": "1.5"}, {"price": 2}]}),
        );
        assert_eq!(out["name"], "ANA");
        assert_eq!(out["full"], "Ana Lima");
        assert_eq!(out["total"], 7);
        assert_eq!(out["tags"], "x,y");
        assert_eq!(out["copy"], "Ana");
        assert_eq!(out["fixed"], 7);
        assert_eq!(out["items"], json!([{"price": 1.5}, {"price": 2.0}]));
    }

    #[test]
    fn default_and_define_do_not_overwrite() {
        let spec = json!({"a": 1, "b": 2, "c": 3});
        let input = json!({"a": 0, "b": null});
        assert_eq!(
            run(WriteMode::Default, spec.clone(), input.clone()),
            json!({"a": 0, "b": 2, "c": 3})
        );
        assert_eq!(
            run(WriteMode::Define, spec, input),
            json!({"a": 0, "b": null, "c": 3})
        );
    }

    #[test]
    fn functions_that_do_not_fit_write_nothing() {
        let out = run(
            WriteMode::Overwrite,
            json!({"n": "=toUpper", "missing": "=toUpper", "d": "=divide(1, 0)"}),
            json!({"n": 5}),
        );
        assert_eq!(out, json!({"n": 5}));
    }

    #[test]
    fn nested_literal_keys_are_created() {
        let out = run(
            WriteMode::Overwrite,
            json!({"meta": {"source": "crm"}}),
            json!({}),
        );
        assert_eq!(out, json!({"meta": {"source": "crm"}}));
    }

    #[test]
    fn list_and_math_functions() {
        let out = run(
            WriteMode::Overwrite,
            json!({
                "first": "=firstElement(@(1,l))", "at": "=elementAt(@(1,l), 1)", "size": "=size(@(1,l))",
                "max": "=max(@(1,l))", "avg": "=avg(@(1,l))", "sorted": "=sort(@(1,u))",
                "round": "=divideAndRound(2, 10, 3)", "pad": "=leftPad(@(1,id), 5, '0')",
                "parts": "=split(',', @(1,csv))", "sub": "=substring(@(1,csv), 0, 3)",
                "squashed": "=squashNulls(@(1,n))"
            }),
            json!({"l": [3, 9, 6], "u": ["b", "a"], "id": "42", "csv": "a,b,c", "n": [1, null, 2]}),
        );
        assert_eq!(out["first"], 3);
        assert_eq!(out["at"], 9);
        assert_eq!(out["size"], 3);
        assert_eq!(out["max"], 9);
        assert_eq!(out["avg"], 6.0);
        assert_eq!(out["sorted"], json!(["a", "b"]));
        assert_eq!(out["round"], 3.33);
        assert_eq!(out["pad"], "00042");
        assert_eq!(out["parts"], json!(["a", "b", "c"]));
        assert_eq!(out["sub"], "a,b");
        assert_eq!(out["squashed"], json!([1, 2]));
    }

    #[test]
    fn unknown_function_is_a_spec_error() {
        let err = Modify::compile(
            &json!({"a": {"b": "=shout"}}),
            "[1].spec",
            WriteMode::Overwrite,
        )
        .unwrap_err();
        assert_eq!(err.path(), "[1].spec.a.b");
        assert!(
            err.to_string().contains("unknown modify function `shout`"),
            "{err}"
        );
    }
}
