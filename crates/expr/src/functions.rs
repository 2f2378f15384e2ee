//! The function library: one table of every function, with arity checked at
//! compile time and argument types checked at run time.
//!
//! A function receives its already evaluated arguments (borrowed from the
//! scope where possible) and returns an owned result. Lazy functions (`IF`,
//! `AND`, `OR`, `SWITCHCASE`, `DEFAULT`) are run by the evaluator and only
//! listed here for their arity.

use std::borrow::Cow;

use regex::Regex;
use serde_json::Value;

use crate::EvalError;

mod args;
mod date;
mod json;
mod logic;
mod math;
mod number;
mod string;
mod util;

pub(crate) use args::*;

/// The evaluated arguments of one call.
pub(crate) type Args<'a, 'b> = &'a [Cow<'b, Value>];

/// A native function body.
pub(crate) type NativeFn = fn(Args<'_, '_>) -> Result<Value, EvalError>;

/// One entry of the function table.
pub(crate) struct FunctionDef {
    /// Upper-case name; lookups are case-insensitive.
    pub name: &'static str,
    /// Fewest arguments accepted.
    pub min_args: usize,
    /// Most arguments accepted; `None` for variadic functions.
    pub max_args: Option<usize>,
    pub body: NativeFn,
}

impl std::fmt::Debug for FunctionDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every function of the library, in one explicit list.
pub(crate) fn table() -> impl Iterator<Item = &'static FunctionDef> {
    logic::FUNCTIONS
        .iter()
        .chain(string::FUNCTIONS)
        .chain(json::FUNCTIONS)
        .chain(util::FUNCTIONS)
        .chain(date::FUNCTIONS)
        .chain(number::FUNCTIONS)
        .chain(math::FUNCTIONS)
}

/// The function named `upper` (already upper-case).
pub(crate) fn lookup(upper: &str) -> Option<&'static FunctionDef> {
    table().find(|f| f.name == upper)
}

/// The known name nearest to a misspelt one.
pub(crate) fn closest(upper: &str) -> Option<&'static str> {
    table()
        .map(|f| (distance(upper, f.name), f.name))
        .filter(|(d, name)| *d <= 2.max(name.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Which argument of a function is a regular expression (compiled once when
/// it is a literal).
pub(crate) fn regex_argument(name: &str) -> Option<usize> {
    match name {
        "REPLACE" | "SPLIT" | "MATCHES" | "STRINGMATCHES" => Some(1),
        _ => None,
    }
}

/// Largest compiled regex accepted (a guard against patterns that explode).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a pattern for `function`, bounded in size.
pub(crate) fn build_regex(function: &'static str, pattern: &str) -> Result<Regex, EvalError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            EvalError::function(
                function,
                format!("invalid regular expression '{pattern}': {e}"),
            )
        })
}

/// Runs a regex function with its pattern compiled already.
pub(crate) fn call_with_regex(
    function: &FunctionDef,
    args: Args<'_, '_>,
    regex: &Regex,
) -> Result<Value, EvalError> {
    string::with_regex(function.name, args, regex)
}
