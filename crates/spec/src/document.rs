//! A parsed pipeline file: its JSON value and where each field stands.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::{FieldPath, Problem, Problems, yaml};

/// The text format of a pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// The format a file name implies: `.json` is JSON, anything else YAML.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// A line and column in a file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Where each field of a document stands in its file.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// Per path: the position of the key (for object members) and of the value.
    entries: HashMap<FieldPath, (Option<Position>, Position)>,
}

impl SourceMap {
    pub(crate) fn insert(&mut self, path: FieldPath, key: Option<Position>, value: Position) {
        self.entries.insert(path, (key, value));
    }

    /// The position to show for a problem at `path`: the member's key when
    /// it has one, else the value; for a path that does not exist (a missing
    /// field), the nearest existing parent.
    pub fn locate(&self, path: &FieldPath) -> Option<Position> {
        let mut text = path.as_str().to_owned();
        loop {
            if let Some((key, value)) = self.entries.get(&FieldPath::from_text(&text)) {
                return Some(key.unwrap_or(*value));
            }
            let cut = text.rfind(['.', '['])?;
            text.truncate(cut);
        }
    }

    /// The position of the value at `path` (for columns inside a string).
    pub fn value_position(&self, path: &FieldPath) -> Option<Position> {
        self.entries.get(path).map(|(_, v)| *v)
    }
}

/// A pipeline file parsed into JSON, with positions.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file name (or other source name) used in messages.
    pub source: String,
    pub format: Format,
    pub value: Value,
    pub map: SourceMap,
}

impl Document {
    /// Parses `text`. A syntax error is returned as a problem with its
    /// line and column.
    pub fn parse(source: &str, text: &str, format: Format) -> Result<Document, Problems> {
        let fail = |message: String, position: Option<Position>| {
            let mut problems = Problems::new(source);
            problems.push(Problem {
                path: FieldPath::root(),
                message,
                position,
            });
            problems
        };
        let (value, map) = match format {
            Format::Yaml => yaml::parse(text).map_err(|e| fail(e.message, Some(e.position)))?,
            Format::Json => {
                let value: Value = serde_json::from_str(text).map_err(|e| {
                    let position = Position {
                        line: e.line(),
                        column: e.column(),
                    };
                    fail(format!("invalid JSON: {e}"), Some(position))
                })?;
                // JSON is YAML too: reading it once more gives the positions.
                let map = yaml::parse(text).map(|(_, map)| map).unwrap_or_default();
                (value, map)
            }
        };
        Ok(Document {
            source: source.to_owned(),
            format,
            value,
            map,
        })
    }

    /// A problem at `path` with its position filled in.
    pub fn problem(&self, path: FieldPath, message: impl Into<String>) -> Problem {
        let position = self.map.locate(&path);
        Problem {
            path,
            message: message.into(),
            position,
        }
    }
}
