//! String fields with `{{ … }}` inside, and JSON trees of them.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::ast::{Node, Root, Segment};
use crate::eval::eval;
use crate::parser::parse;
use crate::{EvalError, ParseError, Scope};

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Expr(Node),
}

#[derive(Debug, Clone)]
enum Form {
    /// No expression: the text itself.
    Literal(Value),
    /// Exactly one expression: its value, JSON type kept.
    Single(Node),
    /// Text and expressions: always a string.
    Mixed(Vec<Part>),
}

/// A compiled string field: plain text, exactly one `{{ expr }}` (which
/// keeps its JSON type), or text mixed with expressions (a string).
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    form: Form,
}

impl Template {
    /// Compiles `src`; errors give the 1-based column in `src`.
    pub fn compile(src: &str) -> Result<Template, ParseError> {
        let chars: Vec<char> = src.chars().collect();
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '\\' && chars.get(i + 1) == Some(&'{') && chars.get(i + 2) == Some(&'{')
            {
                text.push_str("{{");
                i += 3;
                continue;
            }
            if chars[i] == '{' && chars.get(i + 1) == Some(&'{') {
                let start = i + 2;
                let end = closing(&chars, start).ok_or(ParseError {
                    message: "'{{' is not closed by '}}'".into(),
                    column: i + 1,
                })?;
                let inner: String = chars[start..end].iter().collect();
                let node = parse(&inner, start)?;
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Expr(node));
                i = end + 2;
                continue;
            }
            text.push(chars[i]);
            i += 1;
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        let form = match parts.len() {
            0 => Form::Literal(Value::String(String::new())),
            1 => match parts.pop() {
                Some(Part::Expr(node)) => Form::Single(node),
                Some(Part::Text(t)) => Form::Literal(Value::String(t)),
                None => Form::Literal(Value::String(String::new())),
            },
            _ => Form::Mixed(parts),
        };
        Ok(Template {
            source: src.to_owned(),
            form,
        })
    }

    /// Whether there is no expression inside.
    pub fn is_literal(&self) -> bool {
        matches!(self.form, Form::Literal(_))
    }

    /// The field as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The value: a whole-field expression keeps its type; text gives a string.
    pub fn eval<'a>(&'a self, scope: &Scope<'a>) -> Result<Cow<'a, Value>, EvalError> {
        match &self.form {
            Form::Literal(v) => Ok(Cow::Borrowed(v)),
            Form::Single(node) => eval(node, scope),
            Form::Mixed(parts) => Ok(Cow::Owned(Value::String(render_parts(parts, scope)?))),
        }
    }

    /// Whether the template's value is true (see [`crate::truthy`]); a
    /// condition made of comparisons and logic builds no JSON on the way.
    pub fn is_true(&self, scope: &Scope<'_>) -> Result<bool, EvalError> {
        match &self.form {
            Form::Single(node) => crate::eval::truth(node, scope),
            _ => self.eval(scope).map(|v| crate::truthy(&v)),
        }
    }

    /// The value as text (see [`crate::render_text`]).
    pub fn render<'a>(&'a self, scope: &Scope<'a>) -> Result<Cow<'a, str>, EvalError> {
        match &self.form {
            Form::Literal(Value::String(s)) => Ok(Cow::Borrowed(s)),
            Form::Literal(v) => Ok(Cow::Owned(v.to_string())),
            Form::Single(node) => match eval(node, scope)? {
                Cow::Borrowed(Value::String(s)) => Ok(Cow::Borrowed(s)),
                other => {
                    let mut out = String::new();
                    crate::render_text(&other, &mut out);
                    Ok(Cow::Owned(out))
                }
            },
            Form::Mixed(parts) => Ok(Cow::Owned(render_parts(parts, scope)?)),
        }
    }

    /// Every step id read as `steps.<id>`.
    pub fn step_refs(&self) -> impl Iterator<Item = &str> {
        let mut out = Vec::new();
        match &self.form {
            Form::Literal(_) => {}
            Form::Single(n) => collect_refs(n, &mut out),
            Form::Mixed(parts) => {
                for p in parts {
                    if let Part::Expr(n) = p {
                        collect_refs(n, &mut out);
                    }
                }
            }
        }
        out.into_iter()
    }
}

/// Where the `}}` closing an expression starting at `from` is, skipping
/// strings and nested braces.
fn closing(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut i = from;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) => {
                if c == '\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '{' => depth += 1,
                '}' if depth == 0 && chars.get(i + 1) == Some(&'}') => return Some(i),
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        i += 1;
    }
    None
}

fn render_parts(parts: &[Part], scope: &Scope<'_>) -> Result<String, EvalError> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Expr(n) => crate::render_text(&*eval(n, scope)?, &mut out),
        }
    }
    Ok(out)
}

fn collect_refs<'a>(node: &'a Node, out: &mut Vec<&'a str>) {
    match node {
        Node::Path { root, segments } => {
            if *root == Root::Steps
                && let Some(Segment::Key(id)) = segments.first()
            {
                out.push(id);
            }
            for s in segments {
                if let Segment::Computed(n) = s {
                    collect_refs(n, out);
                }
            }
        }
        Node::Index(base, segments) => {
            collect_refs(base, out);
            for s in segments {
                if let Segment::Computed(n) = s {
                    collect_refs(n, out);
                }
            }
        }
        Node::Not(n) | Node::Neg(n) => collect_refs(n, out),
        Node::Binary(_, l, r) | Node::And(l, r) | Node::Or(l, r) | Node::Coalesce(l, r) => {
            collect_refs(l, out);
            collect_refs(r, out);
        }
        Node::Array(items) | Node::Lazy(_, items) | Node::Call { args: items, .. } => {
            items.iter().for_each(|n| collect_refs(n, out));
        }
        Node::Object(members) => members.iter().for_each(|(_, n)| collect_refs(n, out)),
        Node::Literal(_) => {}
    }
}

#[derive(Debug, Clone)]
enum Tree {
    Literal(Value),
    Template(Template),
    Array(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

/// A JSON tree whose strings may hold templates.
#[derive(Debug, Clone)]
pub struct ValueTemplate {
    tree: Tree,
}

impl ValueTemplate {
    /// Compiles every string of `value`; an error names the path of the bad
    /// string (`.a.b[2]`).
    pub fn compile(value: &Value) -> Result<ValueTemplate, (String, ParseError)> {
        Ok(ValueTemplate {
            tree: tree(value, &mut String::new())?,
        })
    }

    /// Whether the tree holds no expression.
    pub fn is_literal(&self) -> bool {
        matches!(self.tree, Tree::Literal(_))
    }

    /// The tree with every template evaluated.
    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        eval_tree(&self.tree, scope)
    }

    /// Every step id read as `steps.<id>`.
    pub fn step_refs(&self) -> impl Iterator<Item = &str> {
        let mut out = Vec::new();
        tree_refs(&self.tree, &mut out);
        out.into_iter()
    }
}

fn tree(value: &Value, path: &mut String) -> Result<Tree, (String, ParseError)> {
    Ok(match value {
        Value::String(s) if s.contains("{{") => {
            let t = Template::compile(s).map_err(|e| (path.clone(), e))?;
            if let Form::Literal(v) = t.form {
                Tree::Literal(v)
            } else {
                Tree::Template(t)
            }
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(tree(item, path)?);
                path.truncate(len);
            }
            if out.iter().all(|t| matches!(t, Tree::Literal(_))) {
                Tree::Literal(value.clone())
            } else {
                Tree::Array(out)
            }
        }
        Value::Object(map) => {
            let mut out = Vec::with_capacity(map.len());
            for (k, v) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                out.push((k.clone(), tree(v, path)?));
                path.truncate(len);
            }
            if out.iter().all(|(_, t)| matches!(t, Tree::Literal(_))) {
                Tree::Literal(value.clone())
            } else {
                Tree::Object(out)
            }
        }
        other => Tree::Literal(other.clone()),
    })
}

fn eval_tree(tree: &Tree, scope: &Scope<'_>) -> Result<Value, EvalError> {
    Ok(match tree {
        Tree::Literal(v) => v.clone(),
        Tree::Template(t) => t.eval(scope)?.into_owned(),
        Tree::Array(items) => Value::Array(
            items
                .iter()
                .map(|t| eval_tree(t, scope))
                .collect::<Result<_, _>>()?,
        ),
        Tree::Object(members) => {
            let mut map = Map::with_capacity(members.len());
            for (k, t) in members {
                map.insert(k.clone(), eval_tree(t, scope)?);
            }
            Value::Object(map)
        }
    })
}

fn tree_refs<'a>(tree: &'a Tree, out: &mut Vec<&'a str>) {
    match tree {
        Tree::Literal(_) => {}
        Tree::Template(t) => out.extend(t.step_refs()),
        Tree::Array(items) => items.iter().for_each(|t| tree_refs(t, out)),
        Tree::Object(members) => members.iter().for_each(|(_, t)| tree_refs(t, out)),
    }
}
