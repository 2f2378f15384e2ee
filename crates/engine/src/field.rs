//! Dotted field paths into a message (`customer.address.city`, `items[0].sku`)
//! used by `into`, `set`, `remove` and masking; parsed once at load time.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    segments: Vec<Segment>,
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
        Ok(FieldRef { segments })
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
        let mut current = root;
        for segment in &self.segments {
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

    /// Removes the value at this path; returns it when it was there.
    pub fn remove(&self, root: &mut Value) -> Option<Value> {
        let (last, parents) = self.segments.split_last()?;
        let mut current = root;
        for segment in parents {
            current = match segment {
                Segment::Key(k) => current.get_mut(k.as_str())?,
                Segment::Index(i) => current.get_mut(*i)?,
            };
        }
        match (last, current) {
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
}
