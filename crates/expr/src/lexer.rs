//! Splitting an expression into tokens, with the column of each.

use crate::ParseError;

/// One token and where it starts (0-based char offset in the expression).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    Dot,
    Comma,
    Colon,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Not,
    And,
    Or,
    Coalesce,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Dollar,
    End,
}

pub(crate) fn tokenize(src: &[char], offset: usize) -> Result<Vec<Token>, ParseError> {
    let err = |at: usize, message: String| ParseError {
        message,
        column: offset + at + 1,
    };
    let mut out = Vec::new();
    let mut i = 0;
    // Whether the previous token ends a value, so a `-` after a dotted key
    // continues the key (`global.crm-url`).
    while i < src.len() {
        let c = src[i];
        let start = i;
        let kind = match c {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '.' if src.get(i + 1).is_some_and(char::is_ascii_digit)
                && !matches!(
                    out.last(),
                    Some(Token {
                        kind: Tok::Ident(_) | Tok::RParen | Tok::RBracket | Tok::Dollar,
                        ..
                    })
                ) =>
            {
                let (tok, len) = number(&src[i..]).map_err(|m| err(i, m))?;
                i += len;
                tok
            }
            '.' => {
                i += 1;
                Tok::Dot
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            ':' => {
                i += 1;
                Tok::Colon
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '[' => {
                i += 1;
                Tok::LBracket
            }
            ']' => {
                i += 1;
                Tok::RBracket
            }
            '{' => {
                i += 1;
                Tok::LBrace
            }
            '}' => {
                i += 1;
                Tok::RBrace
            }
            '+' => {
                i += 1;
                Tok::Plus
            }
            '-' => {
                i += 1;
                Tok::Minus
            }
            '*' => {
                i += 1;
                Tok::Star
            }
            '/' => {
                i += 1;
                Tok::Slash
            }
            '%' => {
                i += 1;
                Tok::Percent
            }
            '$' => {
                i += 1;
                Tok::Dollar
            }
            '!' if src.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Ne
            }
            '!' => {
                i += 1;
                Tok::Not
            }
            '=' if src.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Eq
            }
            '=' => return Err(err(i, "unexpected '=' (use '==' to compare)".into())),
            '<' if src.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Le
            }
            '<' => {
                i += 1;
                Tok::Lt
            }
            '>' if src.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Ge
            }
            '>' => {
                i += 1;
                Tok::Gt
            }
            '&' if src.get(i + 1) == Some(&'&') => {
                i += 2;
                Tok::And
            }
            '|' if src.get(i + 1) == Some(&'|') => {
                i += 2;
                Tok::Or
            }
            '?' if src.get(i + 1) == Some(&'?') => {
                i += 2;
                Tok::Coalesce
            }
            '\'' | '"' => {
                let (s, len) = string(&src[i..]).map_err(|(at, m)| err(i + at, m))?;
                i += len;
                Tok::Str(s)
            }
            c if c.is_ascii_digit() => {
                let (tok, len) = number(&src[i..]).map_err(|m| err(i, m))?;
                i += len;
                tok
            }
            c if c.is_alphabetic() || c == '_' || c == '@' => {
                let after_dot = matches!(out.last(), Some(Token { kind: Tok::Dot, .. }));
                let mut j = i + 1;
                while j < src.len() {
                    let d = src[j];
                    let dash_in_key = after_dot
                        && d == '-'
                        && src
                            .get(j + 1)
                            .is_some_and(|n| n.is_alphanumeric() || *n == '_');
                    if d.is_alphanumeric() || d == '_' || d == '@' || dash_in_key {
                        j += 1;
                    } else {
                        break;
                    }
                }
                let word: String = src[i..j].iter().collect();
                i = j;
                Tok::Ident(word)
            }
            other => return Err(err(i, format!("unexpected character '{other}'"))),
        };
        out.push(Token { kind, at: start });
    }
    out.push(Token {
        kind: Tok::End,
        at: src.len(),
    });
    Ok(out)
}

fn number(src: &[char]) -> Result<(Tok, usize), String> {
    let mut i = 0;
    let mut float = false;
    while i < src.len() && src[i].is_ascii_digit() {
        i += 1;
    }
    if i < src.len() && src[i] == '.' && src.get(i + 1).is_some_and(char::is_ascii_digit) {
        float = true;
        i += 1;
        while i < src.len() && src[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < src.len() && (src[i] == 'e' || src[i] == 'E') {
        let mut j = i + 1;
        if j < src.len() && (src[j] == '+' || src[j] == '-') {
            j += 1;
        }
        if j < src.len() && src[j].is_ascii_digit() {
            float = true;
            i = j;
            while i < src.len() && src[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    let text: String = src[..i].iter().collect();
    if !float && let Ok(n) = text.parse::<i64>() {
        return Ok((Tok::Int(n), i));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| (Tok::Float(f), i))
        .ok_or_else(|| format!("invalid number '{text}'"))
}

fn string(src: &[char]) -> Result<(String, usize), (usize, String)> {
    let quote = src[0];
    let mut out = String::new();
    let mut i = 1;
    while i < src.len() {
        match src[i] {
            c if c == quote => return Ok((out, i + 1)),
            '\\' => {
                let Some(&e) = src.get(i + 1) else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    '\\' | '\'' | '"' | '/' => out.push(e),
                    'u' => {
                        let hex: String = src
                            .get(i + 2..i + 6)
                            .map(|h| h.iter().collect())
                            .unwrap_or_default();
                        let c = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or((i, format!("invalid escape '\\u{hex}'")))?;
                        out.push(c);
                        i += 4;
                    }
                    // Kept as written, so regular expressions read naturally:
                    // '\d+' is the regex \d+.
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err((0, "unterminated string".into()))
}
