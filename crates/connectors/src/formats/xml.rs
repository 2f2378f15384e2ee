//! `xml-to-json` and `json-to-xml`, on the `quick-xml` crate.
//!
//! The mapping: a document is an object with one key, the root element's
//! name. An element with neither attributes nor child elements is its text
//! (null when it has none); otherwise it is an object of its attributes
//! (names with `attributePrefix`), its child elements by name (a repeated
//! name becomes an array) and its text under `textKey`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use quick_xml::Reader;
use quick_xml::encoding::Decoder;
use quick_xml::escape::{escape, partial_escape, resolve_predefined_entity};
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_engine::{Context, Message, Step, StepCx, StepFactory, StepFuture, ready, schema_of};
use sluice_spec::StepKind;

use super::{line_col, type_name, typed};
use crate::input::{Input, bad_input};

const XML_TO_JSON_NAME: &str = "xml-to-json";
const JSON_TO_XML_NAME: &str = "json-to-xml";

/// How deep elements may nest, both ways.
const MAX_DEPTH: usize = 512;

fn at_sign() -> String {
    "@".into()
}

fn hash_text() -> String {
    "#text".into()
}

fn yes() -> bool {
    true
}

/// Fields of the `xml-to-json` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct XmlToJsonConfig {
    /// The XML text (default: the message, which must then be a string);
    /// may hold expressions, e.g. `{{ message.body }}`.
    #[serde(default)]
    value: Option<Value>,
    /// What starts the keys of attributes (default `@`: `id="7"` becomes `"@id": "7"`).
    #[serde(default = "at_sign")]
    attribute_prefix: String,
    /// The key of an element's text when the element also has attributes
    /// or child elements (default `#text`).
    #[serde(default = "hash_text")]
    text_key: String,
    /// Element names that always become arrays, even when they occur once.
    #[serde(default)]
    arrays: Vec<String>,
    /// Drop namespace prefixes from element and attribute names, and drop
    /// the `xmlns` declarations.
    #[serde(default)]
    strip_namespaces: bool,
    /// Turn texts and attribute values that are integers or decimals into
    /// numbers, `true`/`false` into booleans and empty ones into null.
    #[serde(default)]
    types: bool,
}

pub(crate) const XML_TO_JSON: StepFactory = StepFactory {
    kind: StepKind {
        name: XML_TO_JSON_NAME,
        summary: "Parse XML text into JSON: elements as keys, attributes as @keys, text as #text.",
        schema: schema_of::<XmlToJsonConfig>,
    },
    compile: compile_xml_to_json,
};

struct XmlToJsonStep {
    input: Input,
    attribute_prefix: String,
    text_key: String,
    arrays: HashSet<String>,
    strip_namespaces: bool,
    types: bool,
}

fn compile_xml_to_json(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: XmlToJsonConfig = cx.config()?;
    let input = Input::compile(cx, config.value.as_ref())?;
    Some(Box::new(XmlToJsonStep {
        input,
        attribute_prefix: config.attribute_prefix,
        text_key: config.text_key,
        arrays: config.arrays.into_iter().collect(),
        strip_namespaces: config.strip_namespaces,
        types: config.types,
    }))
}

impl Step for XmlToJsonStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let result = self
            .input
            .value(cx, &message)
            .and_then(|value| match value {
                Value::String(text) => self
                    .parse(&text)
                    .map(Arc::new)
                    .map_err(|e| bad_input(XML_TO_JSON_NAME, e)),
                other => Err(bad_input(
                    XML_TO_JSON_NAME,
                    format!(
                        "xml-to-json needs XML text (a string), got {}",
                        type_name(&other)
                    ),
                )),
            });
        ready(result)
    }
}

/// An element being read.
struct Frame {
    name: String,
    /// Byte offset of its `<`.
    start: u64,
    /// Attributes and child elements.
    fields: Map<String, Value>,
    /// Its text: the runs that are not only whitespace, joined.
    text: String,
    /// The text read since the last child element.
    run: String,
}

impl Frame {
    /// Ends the current run of text: kept unless it is only whitespace.
    fn end_run(&mut self) {
        if !is_blank(&self.run) {
            self.text.push_str(&self.run);
        }
        self.run.clear();
    }
}

/// XML whitespace only (or nothing).
fn is_blank(text: &str) -> bool {
    text.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// "at line L, column C" of byte `offset`.
fn place(text: &str, offset: u64) -> String {
    let (line, column) = line_col(text, usize::try_from(offset).unwrap_or(usize::MAX));
    format!("line {line}, column {column}")
}

/// An attribute error of the tag at byte `start`, placed where it is.
fn attribute_error(text: &str, start: u64, error: &AttrError) -> String {
    // Positions count from the byte after the tag's `<`.
    let at = |pos: usize| place(text, start + 1 + pos as u64);
    match error {
        AttrError::ExpectedEq(pos) => format!(
            "malformed XML at {}: an attribute name must be followed by `=`",
            at(*pos)
        ),
        AttrError::ExpectedValue(pos) => format!(
            "malformed XML at {}: `=` must be followed by an attribute value",
            at(*pos)
        ),
        AttrError::UnquotedValue(pos) => format!(
            "malformed XML at {}: an attribute value must be in quotes",
            at(*pos)
        ),
        AttrError::ExpectedQuote(pos, quote) => format!(
            "malformed XML at {}: an attribute value misses its closing quote {}",
            at(*pos),
            char::from(*quote)
        ),
        AttrError::Duplicated(pos, first) => format!(
            "malformed XML at {}: the attribute is given twice (first at {})",
            at(*pos),
            at(*first)
        ),
    }
}

/// Adds `value` under `key`: a key seen before becomes (or grows) an array.
fn insert(fields: &mut Map<String, Value>, key: String, value: Value, always_array: bool) {
    match fields.get_mut(&key) {
        None if always_array => {
            fields.insert(key, Value::Array(vec![value]));
        }
        None => {
            fields.insert(key, value);
        }
        Some(Value::Array(items)) => items.push(value),
        Some(first) => {
            let first = first.take();
            fields.insert(key, Value::Array(vec![first, value]));
        }
    }
}

impl XmlToJsonStep {
    fn value_of(&self, text: &str) -> Value {
        if self.types {
            typed(text)
        } else {
            Value::String(text.to_owned())
        }
    }

    /// A start tag as a frame: its name and attributes.
    fn open(
        &self,
        tag: &BytesStart<'_>,
        start: u64,
        text: &str,
        decoder: Decoder,
    ) -> Result<Frame, String> {
        let malformed =
            |e: &dyn std::fmt::Display| format!("malformed XML at {}: {e}", place(text, start));
        let name = if self.strip_namespaces {
            tag.local_name().into_inner()
        } else {
            tag.name().into_inner()
        };
        let name = std::str::from_utf8(name)
            .map_err(|e| malformed(&e))?
            .to_owned();
        let mut fields = Map::new();
        for attribute in tag.attributes() {
            let attribute = attribute.map_err(|e| attribute_error(text, start, &e))?;
            if self.strip_namespaces && attribute.key.as_namespace_binding().is_some() {
                continue;
            }
            let key = if self.strip_namespaces {
                attribute.key.local_name().into_inner()
            } else {
                attribute.key.into_inner()
            };
            let key = std::str::from_utf8(key).map_err(|e| malformed(&e))?;
            let value = attribute
                .decode_and_unescape_value(decoder)
                .map_err(|e| malformed(&format!("in attribute {key}: {e}")))?;
            let key = format!("{}{key}", self.attribute_prefix);
            insert(&mut fields, key, self.value_of(&value), false);
        }
        Ok(Frame {
            name,
            start,
            fields,
            text: String::new(),
            run: String::new(),
        })
    }

    /// The JSON of a finished element.
    fn close(&self, mut frame: Frame) -> (String, Value) {
        frame.end_run();
        let value = if frame.fields.is_empty() {
            if frame.text.is_empty() {
                Value::Null
            } else {
                self.value_of(&frame.text)
            }
        } else {
            if !frame.text.is_empty() {
                let text = self.value_of(&frame.text);
                insert(&mut frame.fields, self.text_key.clone(), text, false);
            }
            Value::Object(frame.fields)
        };
        (frame.name, value)
    }

    /// Hands a finished element to its parent, or makes it the root.
    fn finish(&self, frame: Frame, stack: &mut [Frame], root: &mut Option<(String, Value)>) {
        let (name, value) = self.close(frame);
        match stack.last_mut() {
            Some(parent) => {
                let always = self.arrays.contains(&name);
                insert(&mut parent.fields, name, value, always);
            }
            None => *root = Some((name, value)),
        }
    }

    /// A start tag (or an empty element, `empty`) read at byte `at`.
    #[allow(clippy::too_many_arguments)]
    fn element(
        &self,
        tag: &BytesStart<'_>,
        empty: bool,
        at: u64,
        text: &str,
        decoder: Decoder,
        stack: &mut Vec<Frame>,
        root: &mut Option<(String, Value)>,
    ) -> Result<(), String> {
        if stack.is_empty() && root.is_some() {
            return Err(format!(
                "malformed XML at {}: a second root element; a document has exactly one",
                place(text, at)
            ));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(format!(
                "XML at {} nests elements deeper than {MAX_DEPTH} levels",
                place(text, at)
            ));
        }
        if let Some(parent) = stack.last_mut() {
            parent.end_run();
        }
        let frame = self.open(tag, at, text, decoder)?;
        if empty {
            self.finish(frame, stack, root);
        } else {
            stack.push(frame);
        }
        Ok(())
    }

    fn parse(&self, text: &str) -> Result<Value, String> {
        let mut reader = Reader::from_str(text);
        reader.config_mut().check_comments = true;
        let mut stack: Vec<Frame> = Vec::new();
        let mut root: Option<(String, Value)> = None;
        loop {
            let at = reader.buffer_position();
            let event = reader.read_event().map_err(|e| {
                format!(
                    "malformed XML at {}: {e}",
                    place(text, reader.error_position())
                )
            })?;
            let outside = |what: &str| {
                format!(
                    "malformed XML at {}: {what} outside the root element",
                    place(text, at)
                )
            };
            match event {
                Event::Start(tag) => {
                    self.element(
                        &tag,
                        false,
                        at,
                        text,
                        reader.decoder(),
                        &mut stack,
                        &mut root,
                    )?;
                }
                Event::Empty(tag) => {
                    self.element(
                        &tag,
                        true,
                        at,
                        text,
                        reader.decoder(),
                        &mut stack,
                        &mut root,
                    )?;
                }
                Event::End(_) => {
                    // quick-xml checks that end tags match their start tags.
                    if let Some(frame) = stack.pop() {
                        self.finish(frame, &mut stack, &mut root);
                    }
                }
                Event::Text(t) => {
                    let content = t
                        .xml10_content()
                        .map_err(|e| format!("malformed XML at {}: {e}", place(text, at)))?;
                    match stack.last_mut() {
                        Some(frame) => frame.run.push_str(&content),
                        None if is_blank(&content) => {}
                        None => return Err(outside("text")),
                    }
                }
                Event::CData(c) => {
                    let content = c
                        .xml10_content()
                        .map_err(|e| format!("malformed XML at {}: {e}", place(text, at)))?;
                    match stack.last_mut() {
                        Some(frame) => frame.run.push_str(&content),
                        None => return Err(outside("CDATA")),
                    }
                }
                Event::GeneralRef(r) => {
                    let bad = |e: &dyn std::fmt::Display| {
                        format!("malformed XML at {}: {e}", place(text, at))
                    };
                    let resolved = match r.resolve_char_ref().map_err(|e| bad(&e))? {
                        Some(c) => c.to_string(),
                        None => {
                            let name = r.decode().map_err(|e| bad(&e))?;
                            match resolve_predefined_entity(&name) {
                                Some(s) => s.to_owned(),
                                None => return Err(bad(&format!("unknown entity &{name};"))),
                            }
                        }
                    };
                    match stack.last_mut() {
                        Some(frame) => frame.run.push_str(&resolved),
                        None => return Err(outside("text")),
                    }
                }
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(open) = stack.last() {
            return Err(format!(
                "malformed XML: the element <{}> opened at {} is never closed",
                open.name,
                place(text, open.start)
            ));
        }
        match root {
            Some((name, value)) => {
                let mut document = Map::new();
                document.insert(name, value);
                Ok(Value::Object(document))
            }
            None => Err("malformed XML: there is no root element".into()),
        }
    }
}

/// Fields of the `json-to-xml` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct JsonToXmlConfig {
    /// The JSON to write (default: the message): an object whose one key
    /// is the root element, or anything that `root` wraps; may hold
    /// expressions.
    #[serde(default)]
    value: Option<Value>,
    /// The root element's name; when given it always wraps the value.
    /// Needed when the value is not an object with exactly one key.
    #[serde(default)]
    root: Option<String>,
    /// Keys starting with this become attributes (default `@`; an empty
    /// prefix means no attributes).
    #[serde(default = "at_sign")]
    attribute_prefix: String,
    /// The key whose value becomes the element's text (default `#text`).
    #[serde(default = "hash_text")]
    text_key: String,
    /// Write `<?xml version="1.0" encoding="UTF-8"?>` first.
    #[serde(default = "yes")]
    declaration: bool,
    /// 0 (default): no whitespace between elements; n > 0: one element per
    /// line, nested ones indented by n more spaces.
    #[serde(default)]
    #[schemars(range(max = 16))]
    indent: u8,
}

pub(crate) const JSON_TO_XML: StepFactory = StepFactory {
    kind: StepKind {
        name: JSON_TO_XML_NAME,
        summary: "Write JSON as XML text: keys as elements, @keys as attributes, #text as text.",
        schema: schema_of::<JsonToXmlConfig>,
    },
    compile: compile_json_to_xml,
};

struct JsonToXmlStep {
    input: Input,
    root: Option<String>,
    attribute_prefix: String,
    text_key: String,
    declaration: bool,
    indent: usize,
}

fn compile_json_to_xml(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: JsonToXmlConfig = cx.config()?;
    let input = Input::compile(cx, config.value.as_ref())?;
    if let Some(root) = &config.root
        && !valid_name(root)
    {
        cx.problem(
            cx.path().key("root"),
            format!("{root:?} is not a valid XML element name"),
        );
        return None;
    }
    Some(Box::new(JsonToXmlStep {
        input,
        root: config.root,
        attribute_prefix: config.attribute_prefix,
        text_key: config.text_key,
        declaration: config.declaration,
        indent: usize::from(config.indent),
    }))
}

impl Step for JsonToXmlStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        let result = self
            .input
            .value(cx, &message)
            .and_then(|value| {
                self.write(&value)
                    .map_err(|e| bad_input(JSON_TO_XML_NAME, e))
            })
            .map(|text| Arc::new(Value::String(text)));
        ready(result)
    }
}

/// Whether `c` may start an XML name (XML 1.0, fifth edition).
fn name_start(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// Whether `c` may continue an XML name.
fn name_char(c: char) -> bool {
    name_start(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// An XML name with at most one `:`, neither first nor last (a namespace
/// prefix and a local name).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let starts = chars.next().is_some_and(|c| c != ':' && name_start(c));
    starts && chars.all(name_char) && !name.ends_with(':') && name.matches(':').count() <= 1
}

/// Whether XML 1.0 can hold `c` at all (even escaped).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Where a value stands in the input, for messages.
fn child_path(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

/// A scalar as XML text; `None` for null; an error for objects and arrays.
fn scalar_text<'v>(
    value: &'v Value,
    what: &str,
    path: &str,
) -> Result<Option<Cow<'v, str>>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(Cow::Borrowed(s))),
        Value::Bool(_) | Value::Number(_) => Ok(Some(Cow::Owned(value.to_string()))),
        other => Err(format!(
            "{what} at {path} must be a string, number, boolean or null, got {}",
            type_name(other)
        )),
    }
}

/// Checks that XML can hold `text`.
fn check_chars(text: &str, path: &str) -> Result<(), String> {
    match text.chars().find(|c| !xml_char(*c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "the text at {path} holds the character U+{:04X}, which XML cannot represent",
            u32::from(c)
        )),
    }
}

/// Text content, escaped (a carriage return as a reference so that it is
/// not read back as a line break).
fn escape_text(text: &str, path: &str) -> Result<String, String> {
    check_chars(text, path)?;
    Ok(partial_escape(text).replace('\r', "&#13;"))
}

/// An attribute value, escaped (tabs and line breaks as references so that
/// they are not read back as spaces).
fn escape_attribute(text: &str, path: &str) -> Result<String, String> {
    check_chars(text, path)?;
    Ok(escape(text)
        .replace('\t', "&#9;")
        .replace('\n', "&#10;")
        .replace('\r', "&#13;"))
}

impl JsonToXmlStep {
    fn write(&self, value: &Value) -> Result<String, String> {
        let (name, content) = match (&self.root, value) {
            (Some(root), Value::Array(_)) => {
                return Err(format!(
                    "json-to-xml cannot write an array as the content of <{root}>: \
                     put it under a key that names its elements, e.g. {{item: [...]}}"
                ));
            }
            (Some(root), content) => (root.as_str(), content),
            (None, Value::Object(map)) if map.len() == 1 => match map.iter().next() {
                Some((name, content)) => (name.as_str(), content),
                None => return Err("json-to-xml got an empty object".into()),
            },
            (None, Value::Object(map)) => {
                return Err(format!(
                    "json-to-xml needs an object with exactly one key (the root element), \
                     got an object with {} keys; set `root` to wrap it",
                    map.len()
                ));
            }
            (None, other) => {
                return Err(format!(
                    "json-to-xml needs an object with exactly one key (the root element), \
                     got {}; set `root` to wrap it",
                    type_name(other)
                ));
            }
        };
        if content.is_array() {
            return Err(format!(
                "the root element <{name}> cannot be an array (a document has one root); \
                 set `root` to wrap the items"
            ));
        }
        let mut out = String::new();
        if self.declaration {
            out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
            if self.indent > 0 {
                out.push('\n');
            }
        }
        self.element(&mut out, name, content, name, 0, self.indent > 0)?;
        Ok(out)
    }

    fn newline(&self, out: &mut String, depth: usize) {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', self.indent * depth));
    }

    /// Writes element `name` holding `value`; `path` names it in errors;
    /// `pretty` puts child elements on their own indented lines.
    fn element(
        &self,
        out: &mut String,
        name: &str,
        value: &Value,
        path: &str,
        depth: usize,
        pretty: bool,
    ) -> Result<(), String> {
        if !valid_name(name) {
            return Err(format!(
                "the key {name:?} (at {path}) is not a valid XML element name"
            ));
        }
        if depth >= MAX_DEPTH {
            return Err(format!(
                "the value at {path} nests deeper than {MAX_DEPTH} levels"
            ));
        }
        let fields = match value {
            Value::Object(fields) => fields,
            Value::Array(_) => {
                return Err(format!(
                    "an array inside an array (at {path}) cannot be written as XML elements"
                ));
            }
            scalar => {
                out.push('<');
                out.push_str(name);
                match scalar_text(scalar, "the value", path)? {
                    None => out.push_str("/>"),
                    Some(text) => {
                        out.push('>');
                        out.push_str(&escape_text(&text, path)?);
                        out.push_str("</");
                        out.push_str(name);
                        out.push('>');
                    }
                }
                return Ok(());
            }
        };
        out.push('<');
        out.push_str(name);
        let mut text = None;
        let mut children = Vec::new();
        for (key, field) in fields {
            let at = child_path(path, key);
            if *key == self.text_key {
                if let Some(t) = scalar_text(field, "the text", &at)? {
                    text = Some(escape_text(&t, &at)?);
                }
            } else if let Some(attribute) = key
                .strip_prefix(self.attribute_prefix.as_str())
                .filter(|_| !self.attribute_prefix.is_empty())
            {
                if !valid_name(attribute) {
                    return Err(format!(
                        "the key {key:?} (at {path}) is not a valid XML attribute name"
                    ));
                }
                if let Some(v) = scalar_text(field, "the attribute", &at)? {
                    out.push(' ');
                    out.push_str(attribute);
                    out.push_str("=\"");
                    out.push_str(&escape_attribute(&v, &at)?);
                    out.push('"');
                }
            } else if !matches!(field, Value::Array(items) if items.is_empty()) {
                children.push((key, field, at));
            }
        }
        if text.is_none() && children.is_empty() {
            out.push_str("/>");
            return Ok(());
        }
        out.push('>');
        // Whitespace around the children of an element with text would
        // change its text: only elements without text are indented.
        let pretty = pretty && text.is_none();
        if let Some(text) = text {
            out.push_str(&text);
        }
        for (key, field, at) in children {
            match field {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if pretty {
                            self.newline(out, depth + 1);
                        }
                        self.element(out, key, item, &format!("{at}[{i}]"), depth + 1, pretty)?;
                    }
                }
                _ => {
                    if pretty {
                        self.newline(out, depth + 1);
                    }
                    self.element(out, key, field, &at, depth + 1, pretty)?;
                }
            }
        }
        if pretty {
            self.newline(out, depth);
        }
        out.push_str("</");
        out.push_str(name);
        out.push('>');
        Ok(())
    }
}
