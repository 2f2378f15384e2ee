//! The HTTP client of the control-plane API, and how answers are shown:
//! tables for people, JSON for scripts.

use anyhow::{Result, anyhow, bail};
use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::Value;

/// Where the server is and who is asking.
#[derive(Args, Clone)]
pub struct Remote {
    /// The server's address.
    #[arg(
        long,
        env = "SLUICE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// An API token (the admin's is in DATA/admin-token on first start).
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// How an answer is printed.
#[derive(Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns.
    #[default]
    Table,
    /// The API's JSON.
    Json,
}

/// A client of one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(remote: &Remote) -> Result<Self> {
        let Some(token) = remote.token.clone().filter(|t| !t.is_empty()) else {
            bail!(
                "no API token: set SLUICE_TOKEN or pass --token (the admin's token is in DATA/admin-token after the first `sluice serve`)"
            );
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(Client {
            http,
            base: format!("{}/api/v1", remote.url.trim_end_matches('/')),
            token,
        })
    }

    /// Sends a request and reads the JSON answer; an error answer becomes
    /// an error with the server's message and details.
    pub async fn send(&self, method: Method, path: &str, body: Option<Body>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        match body {
            Some(Body::Json(value)) => request = request.json(&value),
            Some(Body::Text { text, content_type }) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(text);
            }
            None => {}
        }
        let response = request.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the server at {}: {e}",
                self.base.trim_end_matches("/api/v1")
            )
        })?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        Err(anyhow!(describe_error(status.as_u16(), &value)))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.send(Method::POST, path, Some(Body::Json(body))).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Result<Value> {
        self.send(Method::PUT, path, Some(Body::Json(body))).await
    }
}

/// A request body.
pub enum Body {
    Json(Value),
    Text {
        text: String,
        content_type: &'static str,
    },
}

/// The server's `{code, message, details}` as one readable text.
fn describe_error(status: u16, value: &Value) -> String {
    let Some(message) = value.get("message").and_then(Value::as_str) else {
        return format!("the server answered {status}: {value}");
    };
    let mut out = format!("{message} ({status})");
    let details = value.get("details").unwrap_or(&Value::Null);
    if let Some(problems) = details.get("problems").and_then(Value::as_array) {
        let file = details.get("file").and_then(Value::as_str).unwrap_or("");
        for p in problems {
            let path = p.get("path").and_then(Value::as_str).unwrap_or("");
            let text = p.get("message").and_then(Value::as_str).unwrap_or("");
            match (p.get("line"), p.get("column")) {
                (Some(line), Some(column)) => {
                    out.push_str(&format!("\n  {file}:{line}:{column}: {path}: {text}"));
                }
                _ => out.push_str(&format!("\n  {file}: {path}: {text}")),
            }
        }
    } else if let Some(path) = details.get("path").and_then(Value::as_str) {
        out.push_str(&format!("\n  at {path}"));
    }
    out
}

/// Escapes one path segment.
pub fn seg(text: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SET).to_string()
}

/// Writes to standard output; a closed pipe (`| head`) ends the output
/// quietly instead of failing.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Prints rows as aligned columns under `headers`.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_owned()
    };
    let mut text = line(headers.to_vec());
    text.push('\n');
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
        text.push('\n');
    }
    emit(&text);
}

/// Prints JSON, pretty.
pub fn print_json(value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    emit(&text);
    Ok(())
}

/// A field as table text: strings bare (first line, at most 60
/// characters), null empty, the rest as JSON.
pub fn cell(value: &Value, field: &str) -> String {
    match value.get(field) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => {
            let first = s.lines().next().unwrap_or_default();
            if first.chars().count() > 60 || first.len() < s.trim_end().len() {
                let cut: String = first.chars().take(59).collect();
                format!("{cut}…")
            } else {
                first.to_owned()
            }
        }
        Some(other) => other.to_string(),
    }
}

/// Unix milliseconds as an RFC 3339 time.
pub fn time_cell(value: &Value, field: &str) -> String {
    match value.get(field) {
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or_else(
                || n.to_string(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        _ => cell(value, field),
    }
}
