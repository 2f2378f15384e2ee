//! Parsing tokens into the compiled form: precedence climbing, with arity
//! checked against the function table.

use serde_json::{Map, Value};

use crate::ParseError;
use crate::ast::{BinaryOp, Lazy, Node, Root, Segment};
use crate::functions;
use crate::lexer::{Tok, Token, tokenize};

/// Parses the expression `src` (the text between the braces); `offset` is
/// where it starts in the field, for columns.
pub(crate) fn parse(src: &str, offset: usize) -> Result<Node, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let tokens = tokenize(&chars, offset)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        offset,
    };
    if parser.peek() == &Tok::End {
        return Err(parser.error_here("empty expression"));
    }
    let node = parser.expression(0)?;
    if parser.peek() != &Tok::End {
        return Err(parser.error_here(&format!("unexpected {}", describe(parser.peek()))));
    }
    Ok(node)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    offset: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Int(n) => format!("number {n}"),
        Tok::Float(n) => format!("number {n}"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::End => "end of expression".into(),
        other => format!("'{}'", symbol(other)),
    }
}

fn symbol(tok: &Tok) -> &'static str {
    match tok {
        Tok::Dot => ".",
        Tok::Comma => ",",
        Tok::Colon => ":",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::Not => "!",
        Tok::And => "&&",
        Tok::Or => "||",
        Tok::Coalesce => "??",
        Tok::Eq => "==",
        Tok::Ne => "!=",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Dollar => "$",
        _ => "?",
    }
}

/// Binding power of infix operators (higher binds tighter).
fn infix(tok: &Tok) -> Option<u8> {
    Some(match tok {
        Tok::Coalesce => 1,
        Tok::Or => 2,
        Tok::And => 3,
        Tok::Eq | Tok::Ne => 4,
        Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge => 5,
        Tok::Plus | Tok::Minus => 6,
        Tok::Star | Tok::Slash | Tok::Percent => 7,
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].kind
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn error_at(&self, at: usize, message: &str) -> ParseError {
        ParseError {
            message: message.to_owned(),
            column: self.offset + at + 1,
        }
    }

    fn error_here(&self, message: &str) -> ParseError {
        self.error_at(self.tokens[self.pos].at, message)
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ParseError> {
        if *self.peek() == tok {
            self.next();
            Ok(())
        } else {
            Err(self.error_here(&format!("expected {what}, found {}", describe(self.peek()))))
        }
    }

    fn expression(&mut self, min: u8) -> Result<Node, ParseError> {
        let mut left = self.unary()?;
        while let Some(power) = infix(self.peek()) {
            if power < min {
                break;
            }
            let op = self.next().kind;
            // `??` is right-associative; the others left.
            let next_min = if op == Tok::Coalesce {
                power
            } else {
                power + 1
            };
            let right = self.expression(next_min)?;
            let (l, r) = (Box::new(left), Box::new(right));
            left = match op {
                Tok::And => Node::And(l, r),
                Tok::Or => Node::Or(l, r),
                Tok::Coalesce => Node::Coalesce(l, r),
                Tok::Eq => Node::Binary(BinaryOp::Eq, l, r),
                Tok::Ne => Node::Binary(BinaryOp::Ne, l, r),
                Tok::Lt => Node::Binary(BinaryOp::Lt, l, r),
                Tok::Le => Node::Binary(BinaryOp::Le, l, r),
                Tok::Gt => Node::Binary(BinaryOp::Gt, l, r),
                Tok::Ge => Node::Binary(BinaryOp::Ge, l, r),
                Tok::Plus => Node::Binary(BinaryOp::Add, l, r),
                Tok::Minus => Node::Binary(BinaryOp::Sub, l, r),
                Tok::Star => Node::Binary(BinaryOp::Mul, l, r),
                Tok::Slash => Node::Binary(BinaryOp::Div, l, r),
                _ => Node::Binary(BinaryOp::Rem, l, r),
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        match self.peek() {
            Tok::Not => {
                self.next();
                Ok(Node::Not(Box::new(self.unary()?)))
            }
            Tok::Minus => {
                self.next();
                match self.unary()? {
                    Node::Literal(Value::Number(n)) => Ok(Node::Literal(negate(&n))),
                    other => Ok(Node::Neg(Box::new(other))),
                }
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Node, ParseError> {
        let primary = self.primary()?;
        // Paths may follow any value: `PARSEJSON(x).a`, `[1,2][0]`.
        let mut segments = Vec::new();
        self.segments(&mut segments)?;
        if segments.is_empty() {
            return Ok(primary);
        }
        match primary {
            Node::Path {
                root,
                segments: mut first,
            } => {
                first.extend(segments);
                Ok(Node::Path {
                    root,
                    segments: first,
                })
            }
            // Reading into a computed value: `PARSEJSON(x).a`, `[1, 2][0]`.
            other => Ok(Node::Index(Box::new(other), segments)),
        }
    }

    fn segments(&mut self, out: &mut Vec<Segment>) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.next();
                    let t = self.next();
                    match t.kind {
                        Tok::Ident(name) => out.push(Segment::Key(name)),
                        Tok::Int(n) => out.push(Segment::Key(n.to_string())),
                        // Digibee's `message.$.a`: the `$` is the root itself.
                        Tok::Dollar => {}
                        Tok::Str(s) => out.push(Segment::Key(s)),
                        other => {
                            return Err(self.error_at(
                                t.at,
                                &format!("expected a key after '.', found {}", describe(&other)),
                            ));
                        }
                    }
                }
                Tok::LBracket => {
                    self.next();
                    let segment = match self.peek().clone() {
                        Tok::Str(s) if self.tokens[self.pos + 1].kind == Tok::RBracket => {
                            self.next();
                            Segment::Key(s)
                        }
                        Tok::Int(n) if self.tokens[self.pos + 1].kind == Tok::RBracket => {
                            self.next();
                            Segment::Index(n)
                        }
                        Tok::Minus
                            if matches!(self.tokens[self.pos + 1].kind, Tok::Int(_))
                                && self.tokens[self.pos + 2].kind == Tok::RBracket =>
                        {
                            self.next();
                            let Tok::Int(n) = self.next().kind else {
                                unreachable_int()
                            };
                            Segment::Index(-n)
                        }
                        _ => Segment::Computed(Box::new(self.expression(0)?)),
                    };
                    self.expect(Tok::RBracket, "']'")?;
                    out.push(segment);
                }
                _ => return Ok(()),
            }
        }
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let t = self.next();
        match t.kind {
            Tok::Int(n) => Ok(Node::Literal(Value::from(n))),
            Tok::Float(f) => Ok(Node::Literal(
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            )),
            Tok::Str(s) => Ok(Node::Literal(Value::String(s))),
            Tok::LParen => {
                let inner = self.expression(0)?;
                self.expect(Tok::RParen, "')'")?;
                Ok(inner)
            }
            Tok::LBracket => {
                let mut items = Vec::new();
                if *self.peek() != Tok::RBracket {
                    loop {
                        items.push(self.expression(0)?);
                        if *self.peek() == Tok::Comma {
                            self.next();
                            continue;
                        }
                        break;
                    }
                }
                self.expect(Tok::RBracket, "',' or ']'")?;
                Ok(fold_array(items))
            }
            Tok::LBrace => {
                let mut members = Vec::new();
                if *self.peek() != Tok::RBrace {
                    loop {
                        let key = self.next();
                        let key = match key.kind {
                            Tok::Ident(k) | Tok::Str(k) => k,
                            Tok::Int(n) => n.to_string(),
                            other => {
                                return Err(self.error_at(
                                    key.at,
                                    &format!("expected a key, found {}", describe(&other)),
                                ));
                            }
                        };
                        self.expect(Tok::Colon, "':'")?;
                        members.push((key, self.expression(0)?));
                        if *self.peek() == Tok::Comma {
                            self.next();
                            continue;
                        }
                        break;
                    }
                }
                self.expect(Tok::RBrace, "',' or '}'")?;
                Ok(fold_object(members))
            }
            Tok::Ident(name) if *self.peek() == Tok::LParen => self.call(&name, t.at),
            Tok::Ident(name) => match name.as_str() {
                "true" => Ok(Node::Literal(Value::Bool(true))),
                "false" => Ok(Node::Literal(Value::Bool(false))),
                "null" => Ok(Node::Literal(Value::Null)),
                _ => match Root::parse(&name) {
                    Some(root) => Ok(Node::Path {
                        root,
                        segments: Vec::new(),
                    }),
                    None => Err(self.error_at(
                        t.at,
                        &format!(
                            "unknown name '{name}': expressions start from {}",
                            Root::NAMES
                        ),
                    )),
                },
            },
            Tok::End => {
                Err(self.error_at(t.at, "expected a value, found the end of the expression"))
            }
            other => Err(self.error_at(
                t.at,
                &format!("expected a value, found {}", describe(&other)),
            )),
        }
    }

    fn call(&mut self, name: &str, at: usize) -> Result<Node, ParseError> {
        self.expect(Tok::LParen, "'('")?;
        let mut args = Vec::new();
        if *self.peek() != Tok::RParen {
            loop {
                args.push(self.expression(0)?);
                if *self.peek() == Tok::Comma {
                    self.next();
                    continue;
                }
                break;
            }
        }
        self.expect(Tok::RParen, "',' or ')'")?;
        let upper = name.to_ascii_uppercase();
        let Some(function) = functions::lookup(&upper) else {
            let hint = functions::closest(&upper)
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default();
            return Err(self.error_at(at, &format!("unknown function {name}{hint}")));
        };
        let count = args.len();
        let ok = count >= function.min_args && function.max_args.is_none_or(|max| count <= max);
        if !ok {
            let expected = match function.max_args {
                Some(max) if max == function.min_args => format!("{max}"),
                Some(max) => format!("{} to {max}", function.min_args),
                None => format!("at least {}", function.min_args),
            };
            return Err(self.error_at(
                at,
                &format!(
                    "{} takes {expected} argument{}, got {count}",
                    function.name,
                    if expected == "1" { "" } else { "s" }
                ),
            ));
        }
        let lazy = match function.name {
            "IF" => Some(Lazy::If),
            "AND" => Some(Lazy::And),
            "OR" => Some(Lazy::Or),
            "SWITCHCASE" => Some(Lazy::SwitchCase),
            "DEFAULT" => Some(Lazy::Default),
            _ => None,
        };
        if let Some(lazy) = lazy {
            return Ok(Node::Lazy(lazy, args));
        }
        // STRINGMATCHES with flags compiles its pattern with them, per call.
        let flags = function.name == "STRINGMATCHES" && args.len() > 2;
        let regex = match (functions::regex_argument(function.name), &args[..]) {
            (Some(i), args) if !flags => match args.get(i) {
                Some(Node::Literal(Value::String(pattern))) => Some(
                    functions::build_regex(function.name, pattern)
                        .map_err(|e| self.error_at(at, &e.to_string()))?,
                ),
                _ => None,
            },
            _ => None,
        };
        Ok(Node::Call {
            function,
            args,
            regex,
        })
    }
}

/// `[1, 2]` of literals is one literal.
fn fold_array(items: Vec<Node>) -> Node {
    if items.iter().all(|n| matches!(n, Node::Literal(_))) {
        let values = items
            .into_iter()
            .map(|n| match n {
                Node::Literal(v) => v,
                _ => Value::Null,
            })
            .collect();
        Node::Literal(Value::Array(values))
    } else {
        Node::Array(items)
    }
}

fn fold_object(members: Vec<(String, Node)>) -> Node {
    if members.iter().all(|(_, n)| matches!(n, Node::Literal(_))) {
        let mut map = Map::new();
        for (k, n) in members {
            if let Node::Literal(v) = n {
                map.insert(k, v);
            }
        }
        Node::Literal(Value::Object(map))
    } else {
        Node::Object(members)
    }
}

fn negate(n: &serde_json::Number) -> Value {
    if let Some(v) = n.as_i64().and_then(i64::checked_neg) {
        return Value::from(v);
    }
    n.as_f64()
        .and_then(|f| serde_json::Number::from_f64(-f))
        .map_or(Value::Null, Value::Number)
}

#[cold]
fn unreachable_int() -> ! {
    unreachable!("checked to be an integer token just before")
}
