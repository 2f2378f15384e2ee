//! Dotted field paths into a message (`customer.address.city`, `items[0].sku`)
//! used by `into`, `set`, `remove` and masking; parsed once at load time.

use std::sync::Arc;

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed field path (shared: an [`Undo`] keeps the path it undoes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    segments: Arc<[Segment]>,
}

impl FieldRef {
    /// Parses `a.b`, `a[0].b`, `a['odd key']`; says what is wrong otherwise.
    pub fn parse(text: &str) -> Result<FieldRef, String> {
        let mut segments = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        let mut expect_key = true;
        while i < chars.len() {
            match chars[i] {
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|c| *c == ']')
                        .map(|p| p + i)
                        .ok_or_else(|| format!("invalid field path '{text}': '[' is not closed"))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let inner = inner.trim();
                    if let Some(quoted) = inner
                        .strip_prefix('\'')
                        .and_then(|s| s.strip_suffix('\''))
                        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                    {
                        segments.push(Segment::Key(quoted.to_owned()));
                    } else {
                        let index = inner.parse::<usize>().map_err(|_| {
                            format!("invalid field path '{text}': '[{inner}]' is not an index or a quoted key")
                        })?;
                        segments.push(Segment::Index(index));
                    }
                    i = close + 1;
                    expect_key = false;
                }
                '.' => {
                    if expect_key {
                        return Err(format!("invalid field path '{text}': empty segment"));
                    }
                    expect_key = true;
                    i += 1;
                }
                _ => {
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    let key: String = chars[start..i].iter().collect();
                    if !expect_key {
                        return Err(format!(
                            "invalid field path '{text}': missing '.' before '{key}'"
                        ));
                    }
                    segments.push(Segment::Key(key.trim().to_owned()));
                    expect_key = false;
                }
            }
        }
        if segments.is_empty() || expect_key {
            return Err(format!("invalid field path '{text}': empty segment"));
        }
        Ok(FieldRef {
            segments: segments.into(),
        })
    }

    /// The value at this path, if any.
    pub fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.segments.iter().try_fold(value, |v, s| match s {
            Segment::Key(k) => v.get(k.as_str()),
            Segment::Index(i) => v.get(*i),
        })
    }

    /// Writes `new` at this path, creating objects (and padding arrays
    /// with nulls) on the way; a scalar in the way is replaced.
    pub fn set(&self, root: &mut Value, new: Value) {
        write(root, &self.segments, new);
    }

    /// Like [`FieldRef::set`], and says how to undo it: what was replaced
    /// is moved into the [`Undo`], not copied.
    pub(crate) fn set_keeping(&self, root: &mut Value, new: Value) -> Undo {
        let mut current = root;
        for (depth, segment) in self.segments.iter().enumerate() {
            let undo = match (segment, &mut *current) {
                (Segment::Key(k), Value::Object(map)) if map.contains_key(k.as_str()) => None,
                (Segment::Key(_), Value::Object(_)) => Some(Change::RemoveKey),
                (Segment::Index(i), Value::Array(items)) if *i < items.len() => None,
                (Segment::Index(_), Value::Array(items)) => Some(Change::Truncate(items.len())),
                _ => Some(Change::Put(std::mem::take(current))),
            };
            if let Some(change) = undo {
                write(current, &self.segments[depth..], new);
                return self.undo(depth, change);
            }
            current = match (segment, current) {
                (Segment::Key(k), Value::Object(map)) => match map.get_mut(k.as_str()) {
                    Some(next) => next,
                    None => unreachable_object(),
                },
                (Segment::Index(i), Value::Array(items)) => &mut items[*i],
                _ => unreachable_object(),
            };
        }
        let old = std::mem::replace(current, new);
        self.undo(self.segments.len(), Change::Put(old))
    }

    /// Like [`FieldRef::remove`], and says how to undo it (nothing to undo
    /// when nothing was there).
    pub(crate) fn remove_keeping(&self, root: &mut Value) -> Option<Undo> {
        let (last, parents) = self.segments.split_last()?;
        let change = match (last, walk_mut(root, parents)?) {
            (Segment::Key(k), Value::Object(map)) => {
                let index = map.keys().position(|key| key == k)?;
                let (key, value) = map.shift_remove_entry(k.as_str())?;
                Change::InsertKey(index, key, value)
            }
            (Segment::Index(i), Value::Array(items)) if *i < items.len() => {
                Change::InsertItem(*i, items.remove(*i))
            }
            _ => return None,
        };
        Some(self.undo(parents.len(), change))
    }

    fn undo(&self, depth: usize, change: Change) -> Undo {
        Undo {
            field: self.clone(),
            depth,
            change,
        }
    }

    /// Removes the value at this path; returns it when it was there.
    pub fn remove(&self, root: &mut Value) -> Option<Value> {
        let (last, parents) = self.segments.split_last()?;
        match (last, walk_mut(root, parents)?) {
            (Segment::Key(k), Value::Object(map)) => map.shift_remove(k.as_str()),
            (Segment::Index(i), Value::Array(items)) if *i < items.len() => Some(items.remove(*i)),
            _ => None,
        }
    }

    /// The keys of the path, in order (indices as text).
    pub(crate) fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.segments.iter().map(|s| match s {
            Segment::Key(k) => k.clone(),
            Segment::Index(i) => i.to_string(),
        })
    }
}

/// The value at `segments` under `root`, if there is one.
fn walk_mut<'v>(root: &'v mut Value, segments: &[Segment]) -> Option<&'v mut Value> {
    segments.iter().try_fold(root, |v, s| match s {
        Segment::Key(k) => v.get_mut(k.as_str()),
        Segment::Index(i) => v.get_mut(*i),
    })
}

/// Writes `new` at `segments` under `current`, creating what is missing.
fn write(mut current: &mut Value, segments: &[Segment], new: Value) {
    for segment in segments {
        current = match segment {
            Segment::Key(k) => {
                if !current.is_object() {
                    *current = Value::Object(Map::new());
                }
                match current {
                    Value::Object(map) => map.entry(k.clone()).or_insert(Value::Null),
                    _ => unreachable_object(),
                }
            }
            Segment::Index(i) => {
                if !current.is_array() {
                    *current = Value::Array(Vec::new());
                }
                match current {
                    Value::Array(items) => {
                        if items.len() <= *i {
                            items.resize(*i + 1, Value::Null);
                        }
                        &mut items[*i]
                    }
                    _ => unreachable_object(),
                }
            }
        };
    }
    *current = new;
}

/// How to take back one write or removal of a field: applied to the
/// message as the write left it, it gives the message as it was.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Undo {
    field: FieldRef,
    /// Where along the field's path the change was made.
    depth: usize,
    change: Change,
}

#[derive(Debug, Clone, PartialEq)]
enum Change {
    /// This value was there (a scalar in the way, or the old value).
    Put(Value),
    /// The key at `depth` was added to the object.
    RemoveKey,
    /// The array was this long before it was padded.
    Truncate(usize),
    /// This entry was removed from the object, at this position.
    InsertKey(usize, String, Value),
    /// This item was removed from the array.
    InsertItem(usize, Value),
}

impl Undo {
    /// Takes the change back in `root` (a copy of the message after it).
    pub(crate) fn apply(&self, root: &mut Value) {
        let path = &self.field.segments;
        let Some(target) = walk_mut(root, &path[..self.depth]) else {
            return;
        };
        match (&self.change, target) {
            (Change::Put(old), target) => *target = old.clone(),
            (Change::RemoveKey, Value::Object(map)) => {
                if let Some(Segment::Key(k)) = path.get(self.depth) {
                    map.shift_remove(k.as_str());
                }
            }
            (Change::Truncate(len), Value::Array(items)) => items.truncate(*len),
            (Change::InsertKey(at, key, value), Value::Object(map)) => {
                map.shift_insert(*at, key.clone(), value.clone());
            }
            (Change::InsertItem(at, value), Value::Array(items)) if *at <= items.len() => {
                items.insert(*at, value.clone());
            }
            _ => {}
        }
    }
}

/// The branch above has just made the value an object or array.
#[cold]
fn unreachable_object() -> ! {
    unreachable!("value was just replaced by a container")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_and_reads() {
        let v = json!({"a": {"b": [1, {"c": 2}]}, "odd key": 3});
        assert_eq!(
            FieldRef::parse("a.b[1].c").expect("ok").get(&v),
            Some(&json!(2))
        );
        assert_eq!(
            FieldRef::parse("['odd key']").expect("ok").get(&v),
            Some(&json!(3))
        );
        assert_eq!(FieldRef::parse("a.x").expect("ok").get(&v), None);
        for bad in ["", "a..b", "a.", "a[x]", "a[1", ".a"] {
            assert!(FieldRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sets_creating_parents() {
        let mut v = json!({"a": 1});
        FieldRef::parse("b.c").expect("ok").set(&mut v, json!(true));
        FieldRef::parse("list[2]")
            .expect("ok")
            .set(&mut v, json!("x"));
        FieldRef::parse("a.z").expect("ok").set(&mut v, json!(0));
        assert_eq!(
            v,
            json!({"a": {"z": 0}, "b": {"c": true}, "list": [null, null, "x"]})
        );
    }

    #[test]
    fn removes() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        assert_eq!(
            FieldRef::parse("a.b").expect("ok").remove(&mut v),
            Some(json!(1))
        );
        assert_eq!(
            FieldRef::parse("l[0]").expect("ok").remove(&mut v),
            Some(json!(1))
        );
        assert_eq!(FieldRef::parse("nope.x").expect("ok").remove(&mut v), None);
        assert_eq!(v, json!({"a": {"c": 2}, "l": [2]}));
    }

    #[test]
    fn every_write_and_removal_is_undone_exactly_key_order_included() {
        let start = json!({
            "a": 1, "b": {"c": 2, "d": [1, 2, 3]}, "s": "text", "l": [{"k": 1}], "z": null
        });
        let writes = [
            ("a", json!("new")),
            ("b.c", json!({"deep": true})),
            ("b.e", json!(5)),
            ("b.d[1]", json!("two")),
            ("b.d[6]", json!("far")),
            ("s.inner", json!(1)),
            ("a[2]", json!(1)),
            ("new.path[1].x", json!(true)),
            ("l[0].k", json!(2)),
            ("l[0].m", json!(3)),
            ("z.y", json!(0)),
        ];
        let removals = ["a", "b.c", "b.d[0]", "l[0].k", "nope", "b.d[9]", "s.x"];
        // Each alone, then all of them one after the other, undone in
        // reverse order.
        for (path, value) in &writes {
            let mut v = start.clone();
            let undo = FieldRef::parse(path)
                .unwrap()
                .set_keeping(&mut v, value.clone());
            let mut plain = start.clone();
            FieldRef::parse(path)
                .unwrap()
                .set(&mut plain, value.clone());
            assert_eq!(
                v.to_string(),
                plain.to_string(),
                "{path}: the same write as set"
            );
            undo.apply(&mut v);
            assert_eq!(v.to_string(), start.to_string(), "{path}");
        }
        for path in removals {
            let mut v = start.clone();
            let undo = FieldRef::parse(path).unwrap().remove_keeping(&mut v);
            let mut plain = start.clone();
            let removed = FieldRef::parse(path).unwrap().remove(&mut plain);
            assert_eq!(undo.is_some(), removed.is_some(), "{path}");
            assert_eq!(
                v.to_string(),
                plain.to_string(),
                "{path}: the same removal as remove"
            );
            if let Some(undo) = undo {
                undo.apply(&mut v);
            }
            assert_eq!(v.to_string(), start.to_string(), "{path}");
        }
        let mut v = start.clone();
        let mut undos: Vec<Undo> = writes
            .iter()
            .map(|(path, value)| {
                FieldRef::parse(path)
                    .unwrap()
                    .set_keeping(&mut v, value.clone())
            })
            .collect();
        undos.extend(
            removals
                .iter()
                .filter_map(|path| FieldRef::parse(path).unwrap().remove_keeping(&mut v)),
        );
        for undo in undos.iter().rev() {
            undo.apply(&mut v);
        }
        assert_eq!(v.to_string(), start.to_string());
    }
}
