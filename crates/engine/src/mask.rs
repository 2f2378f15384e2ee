//! Masking of sensitive data: `sensitiveFields` paths and account secrets
//! never reach a log line or a trace in clear.

use std::borrow::Cow;

use serde_json::Value;

/// What to hide, built once per pipeline (paths) and execution (secrets).
#[derive(Debug, Clone, Default)]
pub struct Mask {
    /// Each sensitive field as its keys; a path matches at any depth.
    paths: Vec<Vec<String>>,
    /// Secret strings (account values) to hide wherever they appear.
    secrets: Vec<String>,
}

/// What hidden data is replaced with.
pub const MASKED: &str = "***";

impl Mask {
    /// A mask for these sensitive field paths (as keys) and secret strings.
    pub fn new(paths: Vec<Vec<String>>, secrets: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 3).collect();
        // Longest first, so a secret containing another is hidden whole;
        // equal ones next to each other, so each is kept once.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Mask { paths, secrets }
    }

    /// The string values of every account field (but `type`), as secrets.
    pub fn account_secrets(accounts: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if let Value::Object(accounts) = accounts {
            for account in accounts.values() {
                collect_strings(account, &mut out, true);
            }
        }
        out
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.secrets.is_empty()
    }

    /// `text` with every secret and every sensitive value of `message` hidden.
    pub fn text<'a>(&self, text: &'a str, message: &Value) -> Cow<'a, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut found = Vec::new();
        if !self.paths.is_empty() {
            self.sensitive_values(message, &mut Vec::new(), &mut found);
        }
        // Borrowed, not copied: a log line of an environment with accounts
        // copied every secret of it.
        let mut hidden: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        if !found.is_empty() {
            hidden.extend(found.iter().map(String::as_str));
            hidden.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
        let mut out = Cow::Borrowed(text);
        for secret in hidden.into_iter().filter(|s| s.len() >= 3) {
            if out.contains(secret) {
                out = Cow::Owned(out.replace(secret, MASKED));
            }
        }
        out
    }

    /// A copy of `value` with sensitive fields and secrets hidden.
    pub fn value(&self, value: &Value) -> Value {
        let mut out = value.clone();
        if !self.is_empty() {
            self.mask_in_place(&mut out, &mut Vec::new());
        }
        out
    }

    /// `value`, serializing with sensitive fields and secrets hidden, as
    /// [`Mask::value`] would give it but without copying it first.
    pub fn masked<'a>(&'a self, value: &'a Value) -> Masked<'a> {
        Masked {
            mask: self,
            value,
            keys: None,
        }
    }

    /// `value` as JSON text with sensitive fields and secrets hidden, as
    /// [`Mask::value`] would give it, without a copy.
    pub fn value_json(&self, value: &Value) -> String {
        let text = if self.is_empty() {
            serde_json::to_string(value)
        } else {
            serde_json::to_string(&self.masked(value))
        };
        text.unwrap_or_else(|_| "null".to_owned())
    }

    /// A `response` step's answer (`{status, headers, body}`) as JSON text,
    /// masked as the whole answer would be, without copying the body.
    pub fn response_json(&self, response: &crate::Response) -> String {
        let text = if self.is_empty() {
            serde_json::to_string(response)
        } else {
            serde_json::to_string(&MaskedResponse {
                mask: self,
                response,
            })
        };
        text.unwrap_or_else(|_| "null".to_owned())
    }

    /// Whether the keys from the root down to here end with a sensitive path.
    fn matches_keys(&self, keys: Option<&Keys<'_>>) -> bool {
        self.paths.iter().any(|path| ends_with(keys, path))
    }

    /// `text` with every secret hidden.
    fn hide<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASKED));
            }
        }
        out
    }

    fn matches(&self, keys: &[String]) -> bool {
        self.paths.iter().any(|p| keys.ends_with(p))
    }

    fn mask_in_place(&self, value: &mut Value, keys: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    keys.push(k.clone());
                    if self.matches(keys) {
                        *v = Value::String(MASKED.into());
                    } else {
                        self.mask_in_place(v, keys);
                    }
                    keys.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    keys.push(i.to_string());
                    if self.matches(keys) {
                        *v = Value::String(MASKED.into());
                    } else {
                        self.mask_in_place(v, keys);
                    }
                    keys.pop();
                }
            }
            Value::String(s) => {
                if let Cow::Owned(hidden) = self.hide(s) {
                    *s = hidden;
                }
            }
            _ => {}
        }
    }

    fn sensitive_values(&self, value: &Value, keys: &mut Vec<String>, out: &mut Vec<String>) {
        let children: Box<dyn Iterator<Item = (String, &Value)>> = match value {
            Value::Object(map) => Box::new(map.iter().map(|(k, v)| (k.clone(), v))),
            Value::Array(items) => {
                Box::new(items.iter().enumerate().map(|(i, v)| (i.to_string(), v)))
            }
            _ => return,
        };
        for (k, v) in children {
            keys.push(k);
            if self.matches(keys) {
                collect_strings(v, out, false);
            } else {
                self.sensitive_values(v, keys, out);
            }
            keys.pop();
        }
    }
}

/// A value serializing with a mask applied (see [`Mask::masked`]).
pub struct Masked<'a> {
    mask: &'a Mask,
    value: &'a Value,
    keys: Option<&'a Keys<'a>>,
}

/// The keys from the root down to a value, innermost last.
struct Keys<'a> {
    parent: Option<&'a Keys<'a>>,
    key: Key<'a>,
}

#[derive(Clone, Copy)]
enum Key<'a> {
    Name(&'a str),
    Index(usize),
}

impl Key<'_> {
    /// The same test as comparing the key's text (an index as digits).
    fn is(self, text: &str) -> bool {
        match self {
            Key::Name(name) => name == text,
            Key::Index(i) => {
                text.parse::<usize>() == Ok(i) && (text == "0" || !text.starts_with(['0', '+']))
            }
        }
    }
}

fn ends_with(mut keys: Option<&Keys<'_>>, path: &[String]) -> bool {
    for want in path.iter().rev() {
        match keys {
            Some(k) if k.key.is(want) => keys = k.parent,
            _ => return false,
        }
    }
    true
}

impl Masked<'_> {
    /// The value at `key` under these keys, masked whole when its path is
    /// sensitive.
    fn entry<'k>(
        &'k self,
        key: Key<'k>,
        value: &'k Value,
        keys: &'k mut Option<Keys<'k>>,
    ) -> Entry<'k> {
        let node = keys.insert(Keys {
            parent: self.keys,
            key,
        });
        if self.mask.matches_keys(Some(node)) {
            Entry::Hidden
        } else {
            Entry::Shown(Masked {
                mask: self.mask,
                value,
                keys: Some(node),
            })
        }
    }
}

/// A response serializing with a mask applied.
struct MaskedResponse<'a> {
    mask: &'a Mask,
    response: &'a crate::Response,
}

impl serde::Serialize for MaskedResponse<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // The status and the headers are small: shown as values.
        let status = Value::from(self.response.status);
        let headers = Value::Object(self.response.headers.clone());
        let root = Masked {
            mask: self.mask,
            value: &Value::Null,
            keys: None,
        };
        let mut out = serializer.serialize_map(Some(3))?;
        for (name, value) in [
            ("status", &status),
            ("headers", &headers),
            ("body", &self.response.body),
        ] {
            let mut keys = None;
            out.serialize_entry(name, &root.entry(Key::Name(name), value, &mut keys))?;
        }
        out.end()
    }
}

/// A child value, masked or hidden.
enum Entry<'a> {
    Hidden,
    Shown(Masked<'a>),
}

impl serde::Serialize for Entry<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Hidden => serializer.serialize_str(MASKED),
            Entry::Shown(masked) => masked.serialize(serializer),
        }
    }
}

impl serde::Serialize for Masked<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.value {
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    let mut keys = None;
                    out.serialize_entry(k, &self.entry(Key::Name(k), v, &mut keys))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for (i, v) in items.iter().enumerate() {
                    let mut keys = None;
                    out.serialize_element(&self.entry(Key::Index(i), v, &mut keys))?;
                }
                out.end()
            }
            Value::String(text) => serializer.serialize_str(&self.mask.hide(text)),
            other => other.serialize(serializer),
        }
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>, skip_type: bool) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out, false)),
        Value::Object(map) => {
            for (k, v) in map {
                if !(skip_type && k == "type") {
                    collect_strings(v, out, false);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mask() -> Mask {
        Mask::new(
            vec![
                vec!["card".into(), "number".into()],
                vec!["password".into()],
            ],
            Mask::account_secrets(
                &json!({"crm": {"type": "basic", "user": "ada", "password": "s3cret!"}}),
            ),
        )
    }

    #[test]
    fn a_secret_found_in_several_accounts_is_kept_once() {
        let mask = Mask::new(
            Vec::new(),
            vec!["abc".into(), "xyz".into(), "abc".into(), "longer".into()],
        );
        assert_eq!(mask.secrets, ["longer", "abc", "xyz"]);
    }

    #[test]
    fn hides_fields_at_any_depth_and_secrets() {
        let v = json!({"card": {"number": "4111", "exp": "12/30"}, "user": {"password": "pw123"}, "note": "key s3cret! here"});
        assert_eq!(
            mask().value(&v),
            json!({"card": {"number": "***", "exp": "12/30"}, "user": {"password": "***"}, "note": "key *** here"})
        );
    }

    #[test]
    fn json_hides_like_value() {
        let v = json!({"card": {"number": "4111"}, "note": "s3cret!"});
        assert_eq!(mask().value_json(&v), mask().value(&v).to_string());
        assert_eq!(Mask::default().value_json(&v), v.to_string());
    }

    #[test]
    fn hides_values_inside_text() {
        let message = json!({"card": {"number": "4111111111111111"}});
        let text = mask().text("paid with 4111111111111111 using s3cret!", &message);
        assert_eq!(text, "paid with *** using ***");
        assert!(matches!(
            Mask::default().text("plain", &message),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn masking_while_serializing_gives_what_masking_a_copy_gives() {
        let mask = Mask::new(
            vec![
                vec!["card".into(), "number".into()],
                vec!["password".into()],
                vec!["items".into(), "1".into()],
                vec!["token".into()],
            ],
            vec!["s3cret!".into(), "s3cret!-and-more".into(), "abc".into()],
        );
        let values = [
            json!({"card": {"number": "4111", "exp": "12/30"}, "user": {"password": {"deep": [1, 2]}}}),
            json!({"items": ["a", "b s3cret!", "c"], "nested": {"items": {"0": "x", "1": "y"}}}),
            json!([{"token": 42}, {"note": "s3cret!-and-more abc abcabc"}, null, true, 1.5]),
            json!({"0": {"password": null}, "list": [[{"card": {"number": 1}}]], "k": "plain"}),
            json!("just s3cret! text"),
            json!(7),
            json!({"items": {"01": "not index one", "1": "index one"}}),
        ];
        for v in &values {
            assert_eq!(mask.value_json(v), mask.value(v).to_string(), "{v}");
            assert_eq!(
                serde_json::to_value(mask.masked(v)).unwrap(),
                mask.value(v),
                "{v}"
            );
        }
        let response = crate::Response {
            status: 201,
            headers: serde_json::Map::from_iter([("x-token".to_owned(), json!("abc"))]),
            body: crate::Message::new(values[0].clone()),
        };
        let copied = |mask: &Mask| {
            mask.value(&serde_json::to_value(&response).unwrap())
                .to_string()
        };
        assert_eq!(mask.response_json(&response), copied(&mask));
        let whole = Mask::new(vec![vec!["status".into()], vec!["headers".into()]], vec![]);
        assert_eq!(whole.response_json(&response), copied(&whole));
        assert_eq!(
            Mask::default().response_json(&response),
            serde_json::to_string(&response).unwrap()
        );
        assert_eq!(
            Mask::default().value_json(&values[0]),
            values[0].to_string()
        );
    }
}
