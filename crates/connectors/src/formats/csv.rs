//! `csv-to-json` and `json-to-csv`, on the `csv` crate.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use ::csv::{QuoteStyle, ReaderBuilder, StringRecord, Terminator, Trim, WriterBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, ready, schema_of,
};
use sluice_spec::StepKind;

use super::{single_byte, type_name, typed};
use crate::input::{Input, bad_input};

const CSV_TO_JSON_NAME: &str = "csv-to-json";
const JSON_TO_CSV_NAME: &str = "json-to-csv";

fn comma() -> String {
    ",".into()
}

fn double_quote() -> String {
    "\"".into()
}

fn yes() -> bool {
    true
}

/// Fields of the `csv-to-json` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CsvToJsonConfig {
    /// The CSV text (default: the message, which must then be a string);
    /// may hold expressions, e.g. `{{ message.body }}`.
    #[serde(default)]
    value: Option<Value>,
    /// The character between fields: exactly one ASCII character, e.g. `;`
    /// or a tab (default `,`).
    #[serde(default = "comma")]
    delimiter: String,
    /// The character that quotes fields: exactly one ASCII character
    /// (default `"`). Inside a quoted field it is written twice.
    #[serde(default = "double_quote")]
    quote: String,
    /// Whether the first row names the columns: each row then becomes an
    /// object with those keys, in column order. When false every row is an
    /// array of strings.
    #[serde(default = "yes")]
    header: bool,
    /// Trim spaces and tabs around every field (and header name).
    #[serde(default)]
    trim: bool,
    /// Turn cells that are integers or decimals into numbers, `true` and
    /// `false` into booleans and empty cells into null; otherwise every cell
    /// is a string.
    #[serde(default)]
    types: bool,
    /// Skip lines that are empty or hold only spaces and tabs. When false
    /// such a line becomes a row with every column empty (an empty array
    /// without a header).
    #[serde(default = "yes")]
    skip_empty_lines: bool,
    /// Accept rows with more or fewer fields than the header: missing
    /// columns are null and extra fields are dropped. When false such a row
    /// is an error naming its line.
    #[serde(default)]
    flexible: bool,
}

pub(crate) const CSV_TO_JSON: StepFactory = StepFactory {
    kind: StepKind {
        name: CSV_TO_JSON_NAME,
        summary: "Parse CSV text into an array of rows (objects keyed by the header, or arrays).",
        schema: schema_of::<CsvToJsonConfig>,
    },
    compile: compile_csv_to_json,
};

struct CsvToJsonStep {
    input: Input,
    delimiter: u8,
    quote: u8,
    header: bool,
    trim: bool,
    types: bool,
    skip_empty_lines: bool,
    flexible: bool,
}

fn compile_csv_to_json(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: CsvToJsonConfig = cx.config()?;
    let delimiter = single_byte(cx, "delimiter", &config.delimiter);
    let quote = single_byte(cx, "quote", &config.quote);
    let input = Input::compile(cx, config.value.as_ref());
    let (delimiter, quote, input) = (delimiter?, quote?, input?);
    if delimiter == quote {
        cx.problem(
            cx.path().key("quote"),
            "quote must differ from the delimiter",
        );
        return None;
    }
    Some(Box::new(CsvToJsonStep {
        input,
        delimiter,
        quote,
        header: config.header,
        trim: config.trim,
        types: config.types,
        skip_empty_lines: config.skip_empty_lines,
        flexible: config.flexible,
    }))
}

impl Step for CsvToJsonStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let result = self
            .input
            .value(cx, &message)
            .and_then(|value| match value {
                Value::String(text) => self
                    .parse(&text)
                    .map(|rows| Arc::new(Value::Array(rows)))
                    .map_err(|e| bad_input(CSV_TO_JSON_NAME, e)),
                other => Err(bad_input(
                    CSV_TO_JSON_NAME,
                    format!(
                        "csv-to-json needs CSV text (a string), got {}",
                        type_name(&other)
                    ),
                )),
            });
        ready(result)
    }
}

/// Counts lines up to increasing byte offsets of a text.
struct Lines<'t> {
    text: &'t [u8],
    at: usize,
    line: usize,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        Lines {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The 1-based line of byte `offset` (never before the last one asked).
    fn line_of(&mut self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        while self.at < end {
            let b = self.text[self.at];
            if b == b'\n' || (b == b'\r' && self.text.get(self.at + 1) != Some(&b'\n')) {
                self.line += 1;
            }
            self.at += 1;
        }
        self.line
    }
}

/// From `from`, the line breaks the reader skipped: where the next record
/// really starts and how many empty lines there were. `\r\n` is one break;
/// a `\n` right after the `\r` that ended the previous record is no line.
fn skip_breaks(text: &[u8], from: usize) -> (usize, usize) {
    let mut i = from;
    if text.get(i) == Some(&b'\n') && i > 0 && text[i - 1] == b'\r' {
        i += 1;
    }
    let mut empty = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'\r' => {
                empty += 1;
                i += if text.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'\n' => {
                empty += 1;
                i += 1;
            }
            _ => break,
        }
    }
    (i, empty)
}

/// Whether the line starting at `start` holds only spaces and tabs.
fn blank_line(text: &[u8], start: usize) -> bool {
    text[start.min(text.len())..]
        .iter()
        .take_while(|b| **b != b'\n' && **b != b'\r')
        .all(|b| *b == b' ' || *b == b'\t')
}

impl CsvToJsonStep {
    fn cell(&self, text: &str) -> Value {
        if self.types {
            typed(text)
        } else {
            Value::String(text.to_owned())
        }
    }

    /// An empty line kept as a row (`skipEmptyLines: false`).
    fn empty_row(&self, columns: Option<&[String]>) -> Value {
        match columns {
            Some(columns) => Value::Object(
                columns
                    .iter()
                    .map(|name| (name.clone(), self.cell("")))
                    .collect(),
            ),
            None => Value::Array(Vec::new()),
        }
    }

    fn parse(&self, text: &str) -> Result<Vec<Value>, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let bytes = text.as_bytes();
        let mut reader = ReaderBuilder::new()
            .delimiter(self.delimiter)
            .quote(self.quote)
            .has_headers(false)
            .flexible(true)
            .trim(if self.trim { Trim::All } else { Trim::None })
            .from_reader(bytes);
        let mut lines = Lines::new(text);
        // The header's names and line (when `header`), or the first row's
        // width and line (without).
        let mut columns: Option<(Vec<String>, usize)> = None;
        let mut width: Option<(usize, usize)> = None;
        let mut rows = Vec::new();
        let mut record = StringRecord::new();
        loop {
            let more = reader
                .read_record(&mut record)
                .map_err(|e| format!("invalid CSV: {e}"))?;
            let read_from = record
                .position()
                .and_then(|p| usize::try_from(p.byte()).ok())
                .unwrap_or(0);
            let (start, empty_lines) = skip_breaks(bytes, read_from);
            let started = columns.is_some() || (!self.header && !rows.is_empty());
            if !self.skip_empty_lines && started {
                let names = columns.as_ref().map(|(names, _)| names.as_slice());
                for _ in 0..empty_lines {
                    rows.push(self.empty_row(names));
                }
            }
            if !more {
                break;
            }
            let line = lines.line_of(start);
            if record.len() == 1 && blank_line(bytes, start) {
                if !self.skip_empty_lines && (columns.is_some() || !rows.is_empty()) {
                    let names = columns.as_ref().map(|(names, _)| names.as_slice());
                    rows.push(self.empty_row(names));
                }
                continue;
            }
            if self.header {
                let Some((names, header_line)) = &columns else {
                    columns = Some((header_names(&record, line)?, line));
                    continue;
                };
                if record.len() != names.len() && !self.flexible {
                    return Err(format!(
                        "line {line} has {} fields, but the header (line {header_line}) has {}; \
                         set `flexible: true` to accept rows of other lengths",
                        record.len(),
                        names.len()
                    ));
                }
                let row: Map<String, Value> = names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let cell = record.get(i).map_or(Value::Null, |c| self.cell(c));
                        (name.clone(), cell)
                    })
                    .collect();
                rows.push(Value::Object(row));
            } else {
                match width {
                    None => width = Some((record.len(), line)),
                    Some((expected, first_line)) => {
                        if record.len() != expected && !self.flexible {
                            return Err(format!(
                                "line {line} has {} fields, but the first row (line {first_line}) \
                                 has {expected}; set `flexible: true` to accept rows of other lengths",
                                record.len()
                            ));
                        }
                    }
                }
                rows.push(Value::Array(record.iter().map(|c| self.cell(c)).collect()));
            }
        }
        Ok(rows)
    }
}

/// The header's column names; a name used twice is an error.
fn header_names(record: &StringRecord, line: usize) -> Result<Vec<String>, String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in record.iter().enumerate() {
        if let Some(first) = seen.insert(name, i) {
            return Err(format!(
                "the header (line {line}) names column {name:?} twice (columns {} and {})",
                first + 1,
                i + 1
            ));
        }
    }
    Ok(record.iter().map(str::to_owned).collect())
}

/// Line endings of written CSV: `lf` (`\n`) or `crlf` (`\r\n`).
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LineEnding {
    #[default]
    Lf,
    Crlf,
}

/// Fields of the `json-to-csv` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct JsonToCsvConfig {
    /// The rows: an array of objects or an array of arrays (default: the
    /// message); may hold expressions, e.g. `{{ message.items }}`.
    #[serde(default)]
    value: Option<Value>,
    /// The character between fields: exactly one ASCII character (default `,`).
    #[serde(default = "comma")]
    delimiter: String,
    /// Write a header line first: the column names (for rows that are
    /// arrays, only when `columns` is given).
    #[serde(default = "yes")]
    header: bool,
    /// Which object fields become columns, in this order (default: the keys
    /// of all objects, in the order they are first seen). For rows that are
    /// arrays, the names of the header line.
    #[serde(default)]
    columns: Option<Vec<String>>,
    /// Quote every field; by default only fields holding the delimiter, a
    /// quote or a line break are quoted.
    #[serde(default)]
    quote_all: bool,
    /// `lf` (default) or `crlf`: what ends each line.
    #[serde(default)]
    line_ending: LineEnding,
}

pub(crate) const JSON_TO_CSV: StepFactory = StepFactory {
    kind: StepKind {
        name: JSON_TO_CSV_NAME,
        summary: "Write an array of objects or arrays as CSV text.",
        schema: schema_of::<JsonToCsvConfig>,
    },
    compile: compile_json_to_csv,
};

struct JsonToCsvStep {
    input: Input,
    delimiter: u8,
    header: bool,
    columns: Option<Vec<String>>,
    quote_all: bool,
    line_ending: LineEnding,
}

fn compile_json_to_csv(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: JsonToCsvConfig = cx.config()?;
    let delimiter = single_byte(cx, "delimiter", &config.delimiter);
    let input = Input::compile(cx, config.value.as_ref());
    let (delimiter, input) = (delimiter?, input?);
    if delimiter == b'"' {
        cx.problem(
            cx.path().key("delimiter"),
            "delimiter cannot be the quote character '\"'",
        );
        return None;
    }
    Some(Box::new(JsonToCsvStep {
        input,
        delimiter,
        header: config.header,
        columns: config.columns,
        quote_all: config.quote_all,
        line_ending: config.line_ending,
    }))
}

impl Step for JsonToCsvStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let result = self
            .input
            .value(cx, &message)
            .and_then(|value| self.write(&value))
            .map(|text| Arc::new(Value::String(text)));
        ready(result)
    }
}

/// A cell's text: strings as they are, null as empty, other JSON as its
/// compact text.
fn cell_text(value: Option<&Value>) -> Cow<'_, str> {
    match value {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

impl JsonToCsvStep {
    fn write(&self, value: &Value) -> Result<String, FlowError> {
        let Value::Array(rows) = value else {
            return Err(bad_input(
                JSON_TO_CSV_NAME,
                format!(
                    "json-to-csv needs an array of rows, got {}",
                    type_name(value)
                ),
            ));
        };
        let objects = matches!(rows.first(), Some(Value::Object(_)));
        for (i, row) in rows.iter().enumerate() {
            let fits = match row {
                Value::Object(_) => objects,
                Value::Array(_) => !objects,
                _ => false,
            };
            if !fits {
                let wanted = if i == 0 {
                    "rows must be objects or arrays"
                } else if objects {
                    "the rows before it are objects"
                } else {
                    "the rows before it are arrays"
                };
                return Err(bad_input(
                    JSON_TO_CSV_NAME,
                    format!("row [{i}] is {}, but {wanted}", type_name(row)),
                ));
            }
        }
        let mut writer = WriterBuilder::new()
            .delimiter(self.delimiter)
            .quote_style(if self.quote_all {
                QuoteStyle::Always
            } else {
                QuoteStyle::Necessary
            })
            .terminator(match self.line_ending {
                LineEnding::Lf => Terminator::Any(b'\n'),
                LineEnding::Crlf => Terminator::CRLF,
            })
            .flexible(true)
            .from_writer(Vec::new());
        let failed = |e: ::csv::Error| FlowError::new(JSON_TO_CSV_NAME, 500, e.to_string());
        if objects {
            let columns = match &self.columns {
                Some(columns) => columns.clone(),
                None => {
                    let mut seen = Map::new();
                    for row in rows.iter().filter_map(Value::as_object) {
                        for key in row.keys() {
                            if !seen.contains_key(key) {
                                seen.insert(key.clone(), Value::Null);
                            }
                        }
                    }
                    seen.into_iter().map(|(k, _)| k).collect()
                }
            };
            if self.header && !columns.is_empty() {
                writer.write_record(&columns).map_err(failed)?;
            }
            for row in rows.iter().filter_map(Value::as_object) {
                let cells = columns.iter().map(|c| cell_text(row.get(c)));
                writer
                    .write_record(cells.map(|c| c.into_owned()))
                    .map_err(failed)?;
            }
        } else {
            if let Some(columns) = self.columns.as_ref().filter(|_| self.header) {
                writer.write_record(columns).map_err(failed)?;
            }
            for row in rows.iter().filter_map(Value::as_array) {
                let cells = row.iter().map(|c| cell_text(Some(c)).into_owned());
                writer.write_record(cells).map_err(failed)?;
            }
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| FlowError::new(JSON_TO_CSV_NAME, 500, e.to_string()))?;
        String::from_utf8(bytes).map_err(|e| FlowError::new(JSON_TO_CSV_NAME, 500, e.to_string()))
    }
}
