//! Output paths of `shift` (the right-hand side) and writing data into the
//! output tree.
//!
//! A path is dot-separated; each segment is a key template (`&` references
//! allowed), an `@(n,path)` lookup whose value becomes the key, and/or array
//! steps `[n]`, `[&n]`, `[#n]`, `[@(n,path)]` or `[]` (append). When two
//! values land on one place they become an array, in arrival order.

use serde_json::{Map, Value};

use super::{Scope, Walk, check_ref, check_value_ref};
use crate::path::{
    Cursor, KeyRef, KeyTemplate, ValueRef, parse_key_ref, split_brackets, split_top_level,
};

/// The key the output tree hangs from, which `&` can reach as the root level.
pub(super) const ROOT: &str = "root";

#[derive(Debug, Clone)]
pub(super) struct OutputPath {
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    Key(KeyTemplate),
    /// The key is the value found by the reference.
    KeyFrom(ValueRef),
    Index(Index),
}

#[derive(Debug, Clone)]
enum Index {
    Fixed(usize),
    Key(KeyRef),
    /// `#n`: how many matches the level `n` up has had so far.
    MatchCount(usize),
    Value(ValueRef),
    Append,
}

/// A step once resolved against the walk.
enum Place {
    Key(String),
    Index(usize),
    Append,
}

const RHS_ONLY: &[(char, &str)] = &[
    (
        '*',
        "`*` is only valid on the left side; use `&` to reuse a matched key",
    ),
    ('$', "`$` is only valid on the left side"),
    ('@', "`@` must start a path segment, like `@(1,id)`"),
    ('#', "`#` is only valid on the left side or as `[#n]`"),
];

impl OutputPath {
    pub(super) fn parse(raw: &str, scope: &Scope) -> Result<OutputPath, String> {
        let mut steps = Vec::new();
        if raw.is_empty() {
            return Ok(OutputPath { steps });
        }
        for segment in split_top_level(raw, '.')? {
            let (base, brackets) = split_brackets(&segment)?;
            if base.is_empty() && brackets.is_empty() {
                return Err(format!("empty segment in output path `{raw}`"));
            }
            if base.starts_with('@') {
                let reference = ValueRef::parse(&base)?;
                check_value_ref(&reference, scope)?;
                steps.push(Step::KeyFrom(reference));
            } else if !base.is_empty() {
                let template = KeyTemplate::parse(&base, RHS_ONLY)?;
                for r in template.refs() {
                    check_ref(r, scope, '&')?;
                }
                steps.push(Step::Key(template));
            }
            for bracket in brackets {
                steps.push(Step::Index(parse_index(bracket.trim(), scope)?));
            }
        }
        Ok(OutputPath { steps })
    }

    /// Writes `data` at this path; paths whose references do not resolve, or
    /// that run into data of another shape, write nothing (as in Java JOLT).
    pub(super) fn write(&self, data: Value, walk: &Walk<'_>, out: &mut Value) {
        let mut places = Vec::with_capacity(self.steps.len() + 1);
        places.push(Place::Key(ROOT.to_owned()));
        for step in &self.steps {
            let place = match step {
                Step::Key(template) => template.resolve(walk).map(Place::Key),
                Step::KeyFrom(reference) => lookup(reference, walk)
                    .and_then(value_as_key)
                    .map(Place::Key),
                Step::Index(index) => resolve_index(index, walk),
            };
            match place {
                Some(place) => places.push(place),
                None => return,
            }
        }
        write_at(out, &places, data);
    }
}

fn parse_index(text: &str, scope: &Scope) -> Result<Index, String> {
    if text.is_empty() {
        return Ok(Index::Append);
    }
    if let Ok(index) = text.parse::<usize>() {
        return Ok(Index::Fixed(index));
    }
    let mut cursor = Cursor::new(text);
    let index = match cursor.next() {
        Some('&') => {
            let r = parse_key_ref(&mut cursor, '&')?;
            check_ref(&r, scope, '&')?;
            Index::Key(r)
        }
        Some('#') => {
            let r = parse_key_ref(&mut cursor, '#')?;
            if r.up >= scope.len() {
                return Err(format!("bad `#` reference: `[{text}]` goes above the root"));
            }
            Index::MatchCount(r.up)
        }
        Some('@') => {
            let reference = ValueRef::parse(text)?;
            check_value_ref(&reference, scope)?;
            return Ok(Index::Value(reference));
        }
        _ => {
            return Err(format!(
                "bad array index `[{text}]`: expected `[]`, `[n]`, `[&n]`, `[#n]` or `[@(n,path)]`"
            ));
        }
    };
    if !cursor.at_end() {
        return Err(format!("unexpected text in array index `[{text}]`"));
    }
    Ok(index)
}

fn lookup<'a>(reference: &ValueRef, walk: &Walk<'a>) -> Option<&'a Value> {
    reference.resolve(walk.data(reference.up)?, walk)
}

/// A looked-up value used as a key: strings as they are, numbers as integers
/// (Java JOLT takes their `intValue`), booleans as text.
fn value_as_key(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
            .map(|i| i.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn resolve_index(index: &Index, walk: &Walk<'_>) -> Option<Place> {
    let position = match index {
        Index::Append => return Some(Place::Append),
        Index::Fixed(i) => *i,
        Index::MatchCount(up) => walk.hash_count(*up)?,
        Index::Key(r) => r.resolve(walk)?.parse().ok()?,
        Index::Value(reference) => value_as_key(lookup(reference, walk)?)?.parse().ok()?,
    };
    Some(Place::Index(position))
}

/// Writes `data` at `places` under `container`, creating objects and arrays
/// on the way.
fn write_at(container: &mut Value, places: &[Place], data: Value) {
    let Some((place, rest)) = places.split_first() else {
        return;
    };
    let slot = match (place, container) {
        (Place::Key(key), Value::Object(map)) => map.entry(key.clone()).or_insert(Value::Null),
        (Place::Index(index), Value::Array(items)) => {
            if items.len() <= *index {
                items.resize(index + 1, Value::Null);
            }
            &mut items[*index]
        }
        (Place::Append, Value::Array(items)) => {
            if rest.is_empty() {
                items.push(data);
                return;
            }
            items.push(Value::Null);
            match items.last_mut() {
                Some(slot) => slot,
                None => return,
            }
        }
        // The output already holds something of another shape here.
        _ => return,
    };
    match rest.first() {
        None => merge(slot, data),
        Some(next) => {
            if slot.is_null() {
                *slot = match next {
                    Place::Key(_) => Value::Object(Map::new()),
                    Place::Index(_) | Place::Append => Value::Array(Vec::new()),
                };
            }
            write_at(slot, rest, data);
        }
    }
}

/// Sets a value; a second value at the same place turns it into an array.
fn merge(slot: &mut Value, data: Value) {
    match slot {
        Value::Null => *slot = data,
        Value::Array(items) => items.push(data),
        other => {
            let first = std::mem::take(other);
            *other = Value::Array(vec![first, data]);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn places(steps: Vec<Place>) -> Vec<Place> {
        let mut all = vec![Place::Key(ROOT.into())];
        all.extend(steps);
        all
    }

    #[test]
    fn writing_creates_containers_and_collects_repeats() {
        let mut out = json!({});
        write_at(
            &mut out,
            &places(vec![
                Place::Key("a".into()),
                Place::Index(2),
                Place::Key("b".into()),
            ]),
            json!(1),
        );
        assert_eq!(out, json!({"root": {"a": [null, null, {"b": 1}]}}));
        write_at(
            &mut out,
            &places(vec![
                Place::Key("a".into()),
                Place::Index(2),
                Place::Key("b".into()),
            ]),
            json!(2),
        );
        write_at(
            &mut out,
            &places(vec![
                Place::Key("a".into()),
                Place::Index(2),
                Place::Key("b".into()),
            ]),
            json!(3),
        );
        assert_eq!(out, json!({"root": {"a": [null, null, {"b": [1, 2, 3]}]}}));
    }

    #[test]
    fn append_and_shape_conflicts() {
        let mut out = json!({});
        write_at(
            &mut out,
            &places(vec![Place::Key("l".into()), Place::Append]),
            json!([1]),
        );
        write_at(
            &mut out,
            &places(vec![Place::Key("l".into()), Place::Append]),
            json!(2),
        );
        assert_eq!(out, json!({"root": {"l": [[1], 2]}}));
        // `l` is an array, so a key step below it is skipped.
        write_at(
            &mut out,
            &places(vec![Place::Key("l".into()), Place::Key("x".into())]),
            json!(3),
        );
        assert_eq!(out, json!({"root": {"l": [[1], 2]}}));
    }

    #[test]
    fn parse_rejects_left_side_syntax() {
        let scope = vec![1, 0];
        assert!(
            OutputPath::parse("a.*", &scope)
                .unwrap_err()
                .contains("only valid on the left")
        );
        assert!(
            OutputPath::parse("a[&1", &scope)
                .unwrap_err()
                .contains("unbalanced")
        );
        assert!(OutputPath::parse("a[x]", &scope).is_err());
        assert!(OutputPath::parse("a[&(1,1)].@(1,id).b[#1][]", &scope).is_ok());
    }
}
