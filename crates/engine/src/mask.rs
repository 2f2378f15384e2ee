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
        let mut hidden: Vec<String> = self.secrets.clone();
        if !self.paths.is_empty() {
            self.sensitive_values(message, &mut Vec::new(), &mut hidden);
            hidden.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
        let mut out = Cow::Borrowed(text);
        for secret in hidden.iter().filter(|s| s.len() >= 3) {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASKED));
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

    /// `value` as JSON text with sensitive fields and secrets hidden; with
    /// nothing to hide it is written straight out, without a copy.
    pub fn json<T: serde::Serialize + ?Sized>(&self, value: &T) -> String {
        if self.is_empty() {
            return serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
        }
        let mut out = serde_json::to_value(value).unwrap_or(Value::Null);
        self.mask_in_place(&mut out, &mut Vec::new());
        out.to_string()
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
                for secret in &self.secrets {
                    if s.contains(secret.as_str()) {
                        *s = s.replace(secret.as_str(), MASKED);
                    }
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
        assert_eq!(mask().json(&v), mask().value(&v).to_string());
        assert_eq!(Mask::default().json(&v), v.to_string());
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
}
