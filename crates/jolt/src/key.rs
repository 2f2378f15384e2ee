//! Matching input keys against spec keys: literals, `*` wildcards (whole or
//! partial, like `rating-*`) and `|` alternatives, plus the order in which
//! Java JOLT tries wildcard keys.

use std::cmp::Ordering;

use crate::path::{split_top_level, unescape};

/// One matched level of a walk: the input key and what each `*` captured.
///
/// `group(0)` is the whole key; `group(n)` the text matched by the n-th `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matched {
    pub key: String,
    pub captures: Vec<String>,
}

impl Matched {
    pub fn literal(key: &str) -> Self {
        Matched {
            key: key.to_owned(),
            captures: Vec::new(),
        }
    }

    pub fn group(&self, group: usize) -> Option<&str> {
        if group == 0 {
            Some(&self.key)
        } else {
            self.captures.get(group - 1).map(String::as_str)
        }
    }
}

/// A spec key that input keys are matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyPattern {
    Literal(String),
    /// Literal segments with one `*` between each pair; every `*` matches at
    /// least one character, as few as possible.
    Star(Vec<String>),
    Or(Vec<KeyPattern>),
}

impl KeyPattern {
    /// Parses a spec key; `\` escapes `*`, `|` and itself.
    pub fn parse(raw: &str) -> Result<KeyPattern, String> {
        let alternatives = split_top_level(raw, '|')?;
        if alternatives.len() == 1 {
            return parse_simple(raw);
        }
        let mut patterns = Vec::with_capacity(alternatives.len());
        for alternative in &alternatives {
            if alternative.is_empty() {
                return Err(format!("empty alternative in `{raw}`"));
            }
            patterns.push(parse_simple(alternative)?);
        }
        Ok(KeyPattern::Or(patterns))
    }

    pub fn as_literal(&self) -> Option<&str> {
        match self {
            KeyPattern::Literal(text) => Some(text),
            _ => None,
        }
    }

    /// How many `*` captures a match can have (the most, for alternatives).
    pub fn capture_count(&self) -> usize {
        match self {
            KeyPattern::Literal(_) => 0,
            KeyPattern::Star(parts) => parts.len() - 1,
            KeyPattern::Or(patterns) => patterns.iter().map(Self::capture_count).max().unwrap_or(0),
        }
    }

    /// The captures when `key` matches.
    pub fn captures(&self, key: &str) -> Option<Vec<String>> {
        match self {
            KeyPattern::Literal(text) => (text == key).then(Vec::new),
            KeyPattern::Star(parts) => match_star(key, parts),
            KeyPattern::Or(patterns) => patterns.iter().find_map(|p| p.captures(key)),
        }
    }

    pub fn matches(&self, key: &str) -> Option<Matched> {
        self.captures(key).map(|captures| Matched {
            key: key.to_owned(),
            captures,
        })
    }
}

fn parse_simple(raw: &str) -> Result<KeyPattern, String> {
    let mut parts = vec![String::new()];
    let mut chars = raw.chars().peekable();
    let mut previous_star = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(escaped) = chars.next() {
                    push_char(&mut parts, escaped);
                }
                previous_star = false;
            }
            '*' => {
                if previous_star {
                    return Err(format!(
                        "bad wildcard `{raw}`: `**` is not allowed (a `*` must be followed by text or end the key)"
                    ));
                }
                parts.push(String::new());
                previous_star = true;
            }
            _ => {
                push_char(&mut parts, c);
                previous_star = false;
            }
        }
    }
    if parts.len() == 1 {
        Ok(KeyPattern::Literal(unescape(raw)))
    } else {
        Ok(KeyPattern::Star(parts))
    }
}

fn push_char(parts: &mut [String], c: char) {
    if let Some(last) = parts.last_mut() {
        last.push(c);
    }
}

fn match_star(key: &str, parts: &[String]) -> Option<Vec<String>> {
    let (first, rest) = parts.split_first()?;
    let remainder = key.strip_prefix(first.as_str())?;
    let mut captures = Vec::with_capacity(rest.len());
    match_rest(remainder, rest, &mut captures).then_some(captures)
}

/// Matches `*part*part...`: each star takes at least one character, the
/// shortest that lets the rest match.
fn match_rest(text: &str, parts: &[String], captures: &mut Vec<String>) -> bool {
    let Some((part, rest)) = parts.split_first() else {
        return text.is_empty();
    };
    if rest.is_empty() {
        // Last segment: the star takes everything before the suffix.
        if text.len() > part.len() && text.ends_with(part.as_str()) {
            captures.push(text[..text.len() - part.len()].to_owned());
            return true;
        }
        return false;
    }
    for (start, c) in text.char_indices() {
        let from = start + c.len_utf8();
        if text[from..].starts_with(part.as_str()) {
            captures.push(text[..from].to_owned());
            if match_rest(&text[from + part.len()..], rest, captures) {
                return true;
            }
            captures.pop();
        }
    }
    false
}

/// The order Java JOLT tries computed keys in: `&` keys first, then wildcards,
/// longer (more specific) spec keys before shorter ones, then alphabetically.
pub(crate) fn specificity(
    a_is_reference: bool,
    a_raw: &str,
    b_is_reference: bool,
    b_raw: &str,
) -> Ordering {
    b_is_reference
        .cmp(&a_is_reference)
        .then_with(|| b_raw.len().cmp(&a_raw.len()))
        .then_with(|| a_raw.cmp(b_raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(pattern: &str, key: &str) -> Option<Vec<String>> {
        KeyPattern::parse(pattern).unwrap().captures(key)
    }

    #[test]
    fn literal_and_escapes() {
        assert_eq!(
            KeyPattern::parse("a\\*b").unwrap(),
            KeyPattern::Literal("a*b".into())
        );
        assert_eq!(caps("rating", "rating"), Some(vec![]));
        assert_eq!(caps("rating", "ratings"), None);
    }

    #[test]
    fn whole_and_partial_stars() {
        assert_eq!(caps("*", "abc"), Some(vec!["abc".into()]));
        assert_eq!(
            caps("rating-*", "rating-quality"),
            Some(vec!["quality".into()])
        );
        assert_eq!(
            caps("rating-*", "rating-"),
            None,
            "a star matches at least one character"
        );
        assert_eq!(caps("*-*", "a-b-c"), Some(vec!["a".into(), "b-c".into()]));
        assert_eq!(caps("x*y*z", "xAyyBz"), Some(vec!["A".into(), "yB".into()]));
        assert_eq!(caps("*é", "café"), Some(vec!["caf".into()]));
    }

    #[test]
    fn alternatives_take_the_first_match() {
        assert_eq!(caps("a|b*", "bc"), Some(vec!["c".into()]));
        assert_eq!(caps("a|b*", "a"), Some(vec![]));
        assert!(KeyPattern::parse("a||b").is_err());
        assert!(KeyPattern::parse("a**").is_err());
    }

    #[test]
    fn more_specific_wildcards_first() {
        let mut keys = vec!["*", "rating-*", "rating-range-*", "b*"];
        keys.sort_by(|a, b| specificity(false, a, false, b));
        assert_eq!(keys, ["rating-range-*", "rating-*", "b*", "*"]);
        assert_eq!(specificity(true, "&", false, "rating-*"), Ordering::Less);
    }
}
