//! The extra routes of an http trigger: `/orders/:id` matches
//! `/orders/42` with `id = "42"`; a last segment `*name` takes the rest.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest(String),
}

/// One route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    pub text: String,
    segments: Vec<Segment>,
}

impl RoutePattern {
    /// Parses `/a/:b/*c`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim_matches('/');
        let mut segments = Vec::new();
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() {
                    return Err(format!("route '{text}': ':' needs a parameter name"));
                }
                segments.push(Segment::Param(name.to_owned()));
            } else if let Some(name) = part.strip_prefix('*') {
                if i + 1 != parts.len() || name.is_empty() {
                    return Err(format!("route '{text}': '*name' must be the last segment"));
                }
                segments.push(Segment::Rest(name.to_owned()));
            } else if part.is_empty() {
                return Err(format!("route '{text}' has an empty segment"));
            } else {
                segments.push(Segment::Literal((*part).to_owned()));
            }
        }
        Ok(RoutePattern {
            text: format!("/{trimmed}"),
            segments,
        })
    }

    /// The parameters when `path` (below the pipeline URL) matches.
    pub fn matches(&self, path: &str) -> Option<Map<String, Value>> {
        let trimmed = path.trim_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let mut params = Map::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let part = parts.get(i)?;
                    params.insert(name.clone(), Value::String(decode(part)));
                }
                Segment::Rest(name) => {
                    let rest = parts.get(i..).unwrap_or_default().join("/");
                    params.insert(name.clone(), Value::String(decode(&rest)));
                    return Some(params);
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }
}

fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_and_rest_are_captured() {
        let route = RoutePattern::parse("/orders/:id").unwrap();
        assert_eq!(
            Value::Object(route.matches("/orders/4%202").unwrap()),
            json!({"id": "4 2"})
        );
        assert!(route.matches("/orders").is_none());
        assert!(route.matches("/orders/1/x").is_none());
        let rest = RoutePattern::parse("files/*path").unwrap();
        assert_eq!(
            Value::Object(rest.matches("files/a/b.txt").unwrap()),
            json!({"path": "a/b.txt"})
        );
        assert!(RoutePattern::parse("/a/*b/c").is_err());
        assert!(RoutePattern::parse("/a/:").is_err());
    }
}
