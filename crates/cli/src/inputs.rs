//! Reading what the commands are given: JSON inputs, globals and accounts.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde_json::{Map, Value};
use sluice_spec::{Document, Format};

/// `JSON` or `@file.json` (`@-` reads standard input).
pub fn json_argument(text: &str) -> Result<Value> {
    let (source, content) = match text.strip_prefix('@') {
        Some("-") => {
            let mut buf = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)
                .context("cannot read the input from standard input")?;
            ("standard input".to_owned(), buf)
        }
        Some(path) => (
            path.to_owned(),
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
        ),
        None => ("--input".to_owned(), text.to_owned()),
    };
    serde_json::from_str(&content).with_context(|| format!("{source} is not valid JSON"))
}

/// A YAML or JSON file holding an object (accounts, globals).
pub fn object_file(path: &Path, what: &str) -> Result<Map<String, Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let document = Document::parse(&path.display().to_string(), &text, Format::from_path(path))
        .map_err(|problems| anyhow::anyhow!("{problems}"))?;
    match document.value {
        Value::Object(map) => Ok(map),
        _ => bail!(
            "{}: {what} must be an object of name: value",
            path.display()
        ),
    }
}

/// `name=value`: the value is read as JSON when it is JSON, else as text.
pub fn global_pair(text: &str) -> Result<(String, Value)> {
    let Some((name, value)) = text.split_once('=') else {
        bail!("--global takes NAME=VALUE, got '{text}'");
    };
    let name = name.trim();
    if name.is_empty() {
        bail!("--global takes NAME=VALUE, got an empty name in '{text}'");
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((name.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globals() {
        assert_eq!(
            global_pair("a=1").expect("ok"),
            ("a".into(), Value::from(1))
        );
        assert_eq!(
            global_pair("url=http://x/y").expect("ok").1,
            Value::from("http://x/y")
        );
        assert_eq!(global_pair("e=").expect("ok").1, Value::from(""));
        assert!(global_pair("novalue").is_err());
        assert!(global_pair("=1").is_err());
    }

    #[test]
    fn inline_json() {
        assert_eq!(json_argument(r#"{"a":1}"#).expect("ok")["a"], 1);
        let e = json_argument("{oops").expect_err("bad");
        assert!(format!("{e:#}").contains("--input is not valid JSON"));
    }
}
