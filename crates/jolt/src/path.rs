//! The reference syntax shared by the operations: `&n`/`&(n,m)` and `$`
//! key references, `@n`/`@(n,path)` value references, key templates like
//! `rating-&1`, plus the low-level splitting that respects `\` escapes,
//! parentheses and brackets.

use serde_json::Value;

use crate::key::Matched;

/// Access to the matched keys of the levels walked so far; `up` counts from
/// the current level (0) towards the root.
pub(crate) trait Levels {
    fn matched(&self, up: usize) -> Option<&Matched>;
}

/// `&`, `&n`, `&(n,m)` (or the same after `$`): group `group` of the key
/// matched `up` levels above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyRef {
    pub up: usize,
    pub group: usize,
}

impl KeyRef {
    pub fn resolve<'l>(&self, levels: &'l impl Levels) -> Option<&'l str> {
        levels.matched(self.up)?.group(self.group)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Text(String),
    Ref(KeyRef),
}

/// A key made of literal text and `&` references, like `rating-&(1,2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyTemplate {
    parts: Vec<TemplatePart>,
}

impl KeyTemplate {
    /// Parses a template; `forbidden` lists unescaped characters that are
    /// errors here, each with its message.
    pub fn parse(raw: &str, forbidden: &[(char, &str)]) -> Result<KeyTemplate, String> {
        let mut cursor = Cursor::new(raw);
        let mut parts = Vec::new();
        let mut text = String::new();
        while let Some(c) = cursor.next() {
            match c {
                '\\' => {
                    if let Some(escaped) = cursor.next() {
                        text.push(escaped);
                    }
                }
                '&' => {
                    if !text.is_empty() {
                        parts.push(TemplatePart::Text(std::mem::take(&mut text)));
                    }
                    parts.push(TemplatePart::Ref(parse_key_ref(&mut cursor, '&')?));
                }
                _ => {
                    if let Some((_, message)) = forbidden.iter().find(|(f, _)| *f == c) {
                        return Err(format!("`{raw}`: {message}"));
                    }
                    text.push(c);
                }
            }
        }
        if !text.is_empty() {
            parts.push(TemplatePart::Text(text));
        }
        Ok(KeyTemplate { parts })
    }

    pub fn refs(&self) -> impl Iterator<Item = &KeyRef> {
        self.parts.iter().filter_map(|part| match part {
            TemplatePart::Ref(r) => Some(r),
            TemplatePart::Text(_) => None,
        })
    }

    /// The key this template produces at the current level.
    pub fn resolve(&self, levels: &impl Levels) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(text) => out.push_str(text),
                TemplatePart::Ref(r) => out.push_str(r.resolve(levels)?),
            }
        }
        Some(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SubStep {
    Key(KeyTemplate),
    Index(usize),
}

/// `@`, `@n`, `@(n,path)`: the data `up` levels above, then down `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueRef {
    pub up: usize,
    steps: Vec<SubStep>,
}

impl ValueRef {
    /// Parses a whole `@...` string.
    pub fn parse(raw: &str) -> Result<ValueRef, String> {
        let mut cursor = Cursor::new(raw);
        if cursor.next() != Some('@') {
            return Err(format!("`{raw}` is not an `@` reference"));
        }
        let reference = parse_value_ref(&mut cursor)?;
        if !cursor.at_end() {
            return Err(format!(
                "unexpected text after the `@` reference in `{raw}`"
            ));
        }
        Ok(reference)
    }

    pub fn key_refs(&self) -> impl Iterator<Item = &KeyRef> {
        self.steps
            .iter()
            .flat_map(|step| match step {
                SubStep::Key(template) => Some(template.refs()),
                SubStep::Index(_) => None,
            })
            .flatten()
    }

    /// Walks `path` down from `start` (the data `up` levels above).
    pub fn resolve<'v>(&self, start: &'v Value, levels: &impl Levels) -> Option<&'v Value> {
        let mut current = start;
        for step in &self.steps {
            current = match step {
                SubStep::Index(index) => current.as_array()?.get(*index)?,
                SubStep::Key(template) => {
                    let key = template.resolve(levels)?;
                    match current {
                        Value::Object(map) => map.get(&key)?,
                        Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                        _ => return None,
                    }
                }
            };
        }
        Some(current)
    }
}

/// Parses what follows `&` or `$`: nothing, digits, or `(n)` / `(n,m)`.
pub(crate) fn parse_key_ref(cursor: &mut Cursor, sigil: char) -> Result<KeyRef, String> {
    match cursor.peek() {
        Some(c) if c.is_ascii_digit() => Ok(KeyRef {
            up: cursor.number().unwrap_or(0),
            group: 0,
        }),
        Some('(') => {
            cursor.next();
            cursor.skip_spaces();
            let up = cursor.number().ok_or_else(|| {
                format!("bad `{sigil}` reference: expected a level number after `{sigil}(`")
            })?;
            cursor.skip_spaces();
            let mut group = 0;
            if cursor.peek() == Some(',') {
                cursor.next();
                cursor.skip_spaces();
                group = cursor.number().ok_or_else(|| {
                    format!("bad `{sigil}` reference: expected a capture group number after `,`")
                })?;
                cursor.skip_spaces();
            }
            if cursor.next() != Some(')') {
                return Err(format!(
                    "bad `{sigil}` reference: unbalanced `(`, expected `{sigil}(n)` or `{sigil}(n,m)`"
                ));
            }
            Ok(KeyRef { up, group })
        }
        _ => Ok(KeyRef { up: 0, group: 0 }),
    }
}

/// Parses what follows `@`: nothing, digits, or `(n,path)` / `(path)`.
pub(crate) fn parse_value_ref(cursor: &mut Cursor) -> Result<ValueRef, String> {
    match cursor.peek() {
        Some(c) if c.is_ascii_digit() => Ok(ValueRef {
            up: cursor.number().unwrap_or(0),
            steps: Vec::new(),
        }),
        Some('(') => {
            cursor.next();
            let inner = cursor.until_closing(')')?;
            let pieces = split_top_level(&inner, ',')?;
            let (up, path) = match pieces.as_slice() {
                [single] => match single.trim().parse::<usize>() {
                    Ok(up) => (up, String::new()),
                    Err(_) => (0, single.trim().to_owned()),
                },
                [level, path] => {
                    let up = level.trim().parse::<usize>().map_err(|_| {
                        format!(
                            "bad `@` reference: `{}` is not a level number in `@({inner})`",
                            level.trim()
                        )
                    })?;
                    (up, path.trim().to_owned())
                }
                _ => {
                    return Err(format!(
                        "bad `@` reference `@({inner})`: expected `@(n,path)`"
                    ));
                }
            };
            Ok(ValueRef {
                up,
                steps: parse_sub_path(&path)?,
            })
        }
        _ => Ok(ValueRef {
            up: 0,
            steps: Vec::new(),
        }),
    }
}

fn parse_sub_path(path: &str) -> Result<Vec<SubStep>, String> {
    let mut steps = Vec::new();
    if path.is_empty() {
        return Ok(steps);
    }
    for segment in split_top_level(path, '.')? {
        let (base, brackets) = split_brackets(&segment)?;
        if base.is_empty() && brackets.is_empty() {
            return Err(format!("empty segment in path `{path}`"));
        }
        if !base.is_empty() {
            steps.push(SubStep::Key(KeyTemplate::parse(&base, &[])?));
        }
        for bracket in brackets {
            let index = bracket
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("`[{bracket}]` in `{path}` must be an array index"))?;
            steps.push(SubStep::Index(index));
        }
    }
    Ok(steps)
}

/// Splits `name[a][b]` into `name` and the bracket contents `a`, `b`.
pub(crate) fn split_brackets(segment: &str) -> Result<(String, Vec<String>), String> {
    let mut cursor = Cursor::new(segment);
    let mut base = String::new();
    let mut brackets = Vec::new();
    let mut depth = 0usize;
    while let Some(c) = cursor.peek() {
        match c {
            '\\' => {
                cursor.next();
                base.push('\\');
                if let Some(escaped) = cursor.next() {
                    base.push(escaped);
                }
                continue;
            }
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '[' if depth == 0 => break,
            ']' if depth == 0 => return Err(format!("unbalanced `]` in `{segment}`")),
            _ => {}
        }
        base.push(c);
        cursor.next();
    }
    while let Some(c) = cursor.next() {
        if c != '[' {
            return Err(format!("unexpected text after `]` in `{segment}`"));
        }
        brackets.push(cursor.until_closing(']')?);
    }
    Ok((base, brackets))
}

/// Splits on `separator` outside `\` escapes, parentheses and brackets;
/// escapes are kept for the next parsing stage.
pub(crate) fn split_top_level(text: &str, separator: char) -> Result<Vec<String>, String> {
    let mut pieces = vec![String::new()];
    let mut stack: Vec<char> = Vec::new();
    let mut chars = text.chars();
    let mut in_quote = false;
    while let Some(c) = chars.next() {
        let current = pieces.last_mut().ok_or("empty split")?;
        match c {
            '\\' => {
                current.push(c);
                if let Some(escaped) = chars.next() {
                    current.push(escaped);
                }
                continue;
            }
            '\'' if separator == ',' => in_quote = !in_quote,
            _ if in_quote => {}
            '(' => stack.push(')'),
            '[' => stack.push(']'),
            ')' | ']' if stack.pop() != Some(c) => {
                return Err(format!("unbalanced `{c}` in `{text}`"));
            }
            ')' | ']' => {}
            _ if c == separator && stack.is_empty() => {
                pieces.push(String::new());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if let Some(open) = stack.last() {
        let open = if *open == ')' { '(' } else { '[' };
        return Err(format!("unbalanced `{open}` in `{text}`"));
    }
    if in_quote {
        return Err(format!("unterminated `'` in `{text}`"));
    }
    Ok(pieces)
}

/// Removes `\` escapes.
pub(crate) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(escaped) = chars.next() {
                out.push(escaped);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A character cursor for the small parsers above.
pub(crate) struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    pub fn new(text: &str) -> Self {
        Cursor {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    pub fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
    }

    fn number(&mut self) -> Option<usize> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.chars[start..self.pos]
            .iter()
            .collect::<String>()
            .parse()
            .ok()
    }

    /// The text up to the `close` that balances an already consumed opener.
    fn until_closing(&mut self, close: char) -> Result<String, String> {
        let open = if close == ')' { '(' } else { '[' };
        let mut depth = 0usize;
        let mut out = String::new();
        while let Some(c) = self.next() {
            if c == '\\' {
                out.push(c);
                if let Some(escaped) = self.next() {
                    out.push(escaped);
                }
                continue;
            }
            if c == open {
                depth += 1;
            } else if c == close {
                if depth == 0 {
                    return Ok(out);
                }
                depth -= 1;
            }
            out.push(c);
        }
        Err(format!("unbalanced `{open}`: missing `{close}`"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Stack(Vec<Matched>);

    impl Levels for Stack {
        fn matched(&self, up: usize) -> Option<&Matched> {
            self.0.len().checked_sub(up + 1).and_then(|i| self.0.get(i))
        }
    }

    fn stack() -> Stack {
        Stack(vec![
            Matched::literal("root"),
            Matched {
                key: "rating-quality".into(),
                captures: vec!["quality".into()],
            },
            Matched::literal("value"),
        ])
    }

    #[test]
    fn key_references_resolve_by_level_and_group() {
        let levels = stack();
        let template = KeyTemplate::parse("x.&1-&(1,1)-&", &[]).unwrap();
        assert_eq!(
            template.resolve(&levels).unwrap(),
            "x.rating-quality-quality-value"
        );
        assert_eq!(
            KeyTemplate::parse("&5", &[]).unwrap().resolve(&levels),
            None
        );
        assert_eq!(
            KeyTemplate::parse("a\\&b", &[])
                .unwrap()
                .resolve(&levels)
                .unwrap(),
            "a&b"
        );
        assert!(KeyTemplate::parse("&(1", &[]).is_err());
        assert!(KeyTemplate::parse("&(x)", &[]).is_err());
    }

    #[test]
    fn value_references_walk_down_from_a_level() {
        let levels = stack();
        let data = json!({"a": [{"b": 1}, {"value": 2}], "rating-quality": 3});
        let r = ValueRef::parse("@(2,a[1].&0)").unwrap();
        assert_eq!(r.up, 2);
        assert_eq!(r.resolve(&data, &levels), Some(&json!(2)));
        assert_eq!(
            ValueRef::parse("@(a.0.b)").unwrap().resolve(&data, &levels),
            Some(&json!(1))
        );
        assert_eq!(
            ValueRef::parse("@(0,&1)").unwrap().resolve(&data, &levels),
            Some(&json!(3))
        );
        assert_eq!(ValueRef::parse("@3").unwrap().up, 3);
        assert!(ValueRef::parse("@(1,a").is_err());
        assert!(ValueRef::parse("@(x,a)").is_err());
    }

    #[test]
    fn splitting_respects_escapes_and_nesting() {
        assert_eq!(
            split_top_level("a.@(1,b.c).d\\.e", '.').unwrap(),
            ["a", "@(1,b.c)", "d\\.e"]
        );
        assert_eq!(split_top_level("x[a.b].c", '.').unwrap(), ["x[a.b]", "c"]);
        assert!(split_top_level("a[0", '.').is_err());
        assert!(split_top_level("a)", '.').is_err());
        assert_eq!(
            split_brackets("photos[&1][]").unwrap(),
            ("photos".into(), vec!["&1".into(), String::new()])
        );
    }
}
