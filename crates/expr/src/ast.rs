//! The compiled form of an expression.

use regex::Regex;
use serde_json::Value;

use crate::functions::FunctionDef;

/// The roots an expression may start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Message,
    Steps,
    Global,
    Account,
    Metadata,
    Item,
    Index,
    Error,
}

impl Root {
    pub(crate) const NAMES: &'static str =
        "message, steps, global, account, metadata, item, index, error";

    pub(crate) fn parse(name: &str) -> Option<Root> {
        Some(match name {
            "message" => Root::Message,
            "steps" => Root::Steps,
            "global" => Root::Global,
            "account" => Root::Account,
            "metadata" => Root::Metadata,
            "item" => Root::Item,
            "index" => Root::Index,
            "error" => Root::Error,
            _ => return None,
        })
    }
}

/// One step of a path after its root.
#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Key(String),
    Index(i64),
    Computed(Box<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Functions the evaluator runs itself because they evaluate lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lazy {
    If,
    And,
    Or,
    SwitchCase,
    Default,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Literal(Value),
    Path {
        root: Root,
        segments: Vec<Segment>,
    },
    /// A path into a computed value.
    Index(Box<Node>, Vec<Segment>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Coalesce(Box<Node>, Box<Node>),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
    Lazy(Lazy, Vec<Node>),
    Call {
        function: &'static FunctionDef,
        args: Vec<Node>,
        /// A literal regex argument compiled once, for functions that take one.
        regex: Option<Regex>,
    },
}
