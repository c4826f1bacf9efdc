//! The template parser: text and `{...}` actions into a flat list of segments, each action a list
//! of nodes, following client-go's `util/jsonpath/parser.go` grammar and error wording.

use crate::Error;

/// One bound of a slice `[start:end:step]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Param {
    /// Whether the bound was given (or derived).
    pub(crate) known: bool,
    /// The bound as written (before negative indexes are resolved).
    pub(crate) value: i64,
    /// The end bound of a plain index `[n]`, derived as `n + 1`.
    pub(crate) derived: bool,
}

/// A filter `[?(left op right)]`; `op` is `exists` for `[?(left)]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    pub(crate) left: Vec<Node>,
    pub(crate) right: Vec<Node>,
    pub(crate) op: String,
}

/// One step inside an action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Field(String),
    Array([Param; 3]),
    Filter(Box<Filter>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Wildcard,
    Recursive,
    Union(Vec<Vec<Node>>),
    Identifier(String),
}

/// A top-level piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Text(String),
    Action(Vec<Node>),
}

/// Parses a whole template.
pub(crate) fn parse_template(text: &str) -> Result<Vec<Segment>, Error> {
    Parser { input: text, pos: 0 }.template()
}

/// Parses `text` as the inside of one action (upstream's `parseAction`).
fn parse_action(text: &str) -> Result<Vec<Node>, Error> {
    let wrapped = format!("{{{text}}}");
    let segments = parse_template(&wrapped)?;
    match segments.into_iter().next() {
        Some(Segment::Action(nodes)) => Ok(nodes),
        _ => Ok(Vec::new()),
    }
}

fn err(msg: impl Into<String>) -> Error {
    Error::Parse(msg.into())
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

fn is_terminator(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
        ),
    }
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// Go's `%#U`: `U+0041 'A'`, or just `U+0009` for a character that does not print.
fn go_unicode(c: char) -> String {
    let printable = !c.is_control() && (c == ' ' || !c.is_whitespace());
    if printable {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn template(mut self) -> Result<Vec<Segment>, Error> {
        let mut segments = Vec::new();
        loop {
            match self.rest().find('{') {
                None => {
                    if !self.rest().is_empty() {
                        segments.push(Segment::Text(self.rest().to_string()));
                    }
                    return Ok(segments);
                }
                Some(i) => {
                    if i > 0 {
                        segments.push(Segment::Text(self.rest()[..i].to_string()));
                    }
                    self.pos += i + 1;
                    segments.push(Segment::Action(self.inside_action()?));
                }
            }
        }
    }

    fn inside_action(&mut self) -> Result<Vec<Node>, Error> {
        let mut cur = Vec::new();
        loop {
            let rest = self.rest();
            if rest.starts_with('}') {
                self.pos += 1;
                return Ok(cur);
            }
            if rest.starts_with("[?(") {
                self.filter(&mut cur)?;
                continue;
            }
            if rest.starts_with("..") {
                self.recursive(&mut cur)?;
                continue;
            }
            match self.peek() {
                None | Some('\r' | '\n') => return Err(err("unclosed action")),
                Some(' ' | '@' | '$') => self.pos += 1,
                Some('[') => {
                    self.pos += 1;
                    self.array(&mut cur)?;
                }
                Some(q @ ('"' | '\'')) => self.quote(&mut cur, q)?,
                Some('.') => {
                    self.pos += 1;
                    self.field(&mut cur);
                }
                Some(c) if c == '+' || c == '-' || c.is_numeric() => self.number(&mut cur)?,
                Some(c) if is_alphanumeric(c) => self.identifier(&mut cur),
                Some(c) => {
                    return Err(err(format!("unrecognized character in action: {}", go_unicode(c))));
                }
            }
        }
    }

    fn recursive(&mut self, cur: &mut Vec<Node>) -> Result<(), Error> {
        if cur.last() == Some(&Node::Recursive) {
            return Err(err("invalid multiple recursive descent"));
        }
        self.pos += 2;
        cur.push(Node::Recursive);
        if self.peek().is_some_and(is_alphanumeric) {
            self.field(cur);
        }
        Ok(())
    }

    /// A field name up to the next unescaped terminator; `\` escapes the next character.
    fn field(&mut self, cur: &mut Vec<Node>) {
        let start = self.pos;
        loop {
            let c = self.peek();
            if c == Some('\\') {
                self.next();
                self.next();
            } else if is_terminator(c) {
                break;
            } else {
                self.next();
            }
        }
        let value = &self.input[start..self.pos];
        if value == "*" {
            cur.push(Node::Wildcard);
        } else {
            cur.push(Node::Field(value.replace('\\', "")));
        }
    }

    fn identifier(&mut self, cur: &mut Vec<Node>) {
        let start = self.pos;
        while !is_terminator(self.peek()) {
            self.next();
        }
        let value = &self.input[start..self.pos];
        match value {
            "true" => cur.push(Node::Bool(true)),
            "false" => cur.push(Node::Bool(false)),
            _ => cur.push(Node::Identifier(value.to_string())),
        }
    }

    fn number(&mut self, cur: &mut Vec<Node>) -> Result<(), Error> {
        let start = self.pos;
        if matches!(self.peek(), Some('+' | '-')) {
            self.next();
        }
        while self.peek().is_some_and(|c| c == '.' || c.is_numeric()) {
            self.next();
        }
        let value = &self.input[start..self.pos];
        if let Ok(i) = value.parse::<i64>() {
            cur.push(Node::Int(i));
        } else if let Ok(f) = value.parse::<f64>() {
            cur.push(Node::Float(f));
        } else {
            return Err(err(format!("cannot parse number {value}")));
        }
        Ok(())
    }

    /// After `[`: a union, a `'quoted'` key, or an index / slice.
    fn array(&mut self, cur: &mut Vec<Node>) -> Result<(), Error> {
        let start = self.pos;
        loop {
            match self.next() {
                None | Some('\n') => return Err(err("unterminated array")),
                Some(']') => break,
                Some(_) => {}
            }
        }
        let mut text = &self.input[start..self.pos - 1];
        if text == "*" {
            text = ":";
        }

        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() > 1 {
            let mut union = Vec::with_capacity(parts.len());
            for part in parts {
                union.push(parse_action(&format!("[{}]", part.trim_matches(' ')))?);
            }
            cur.push(Node::Union(union));
            return Ok(());
        }

        if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') && !text[1..text.len() - 1].contains('\'')
        {
            cur.extend(parse_action(&format!(".{}", &text[1..text.len() - 1]))?);
            return Ok(());
        }

        cur.push(Node::Array(parse_slice(text)?));
        Ok(())
    }

    fn filter(&mut self, cur: &mut Vec<Node>) -> Result<(), Error> {
        self.pos += 3;
        let start = self.pos;
        let mut begin = false;
        let mut end = false;
        let mut pair = '"';
        loop {
            let Some(c) = self.next() else {
                return Err(err("unterminated filter"));
            };
            match c {
                '\n' => return Err(err("unterminated filter")),
                '"' | '\'' => {
                    if !begin {
                        begin = true;
                        pair = c;
                        continue;
                    }
                    if self.input.as_bytes()[self.pos - 2] != b'\\' && c == pair {
                        end = true;
                    }
                }
                ')' if begin == end => break,
                _ => {}
            }
        }
        if self.next() != Some(']') {
            return Err(err("unclosed array expect ]"));
        }
        let text = &self.input[start..self.pos - 2];
        let filter = match split_comparison(text) {
            None => Filter {
                left: parse_action(text)?,
                right: Vec::new(),
                op: "exists".to_string(),
            },
            Some((left, op, right)) => Filter {
                left: parse_action(left)?,
                right: parse_action(right)?,
                op: op.to_string(),
            },
        };
        cur.push(Node::Filter(Box::new(filter)));
        Ok(())
    }

    fn quote(&mut self, cur: &mut Vec<Node>, quote: char) -> Result<(), Error> {
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.next() {
                None | Some('\n') => return Err(err("unterminated quoted string")),
                Some(c) if c == quote && self.input.as_bytes()[self.pos - 2] != b'\\' => break,
                Some(_) => {}
            }
        }
        let value = &self.input[start..self.pos];
        let text = unquote_extend(value).ok_or_else(|| err(format!("unquote string {value} error invalid syntax")))?;
        cur.push(Node::Text(text));
        Ok(())
    }
}

fn is_op_char(c: char) -> bool {
    matches!(c, '!' | '<' | '>' | '=')
}

/// Splits `left op right` the way upstream's `^([^!<>=]+)([!<>=]+)(.+?)$` does.
fn split_comparison(text: &str) -> Option<(&str, &str, &str)> {
    let op_start = text.find(is_op_char)?;
    if op_start == 0 {
        return None;
    }
    let after = &text[op_start..];
    let mut op_len = after.find(|c| !is_op_char(c)).unwrap_or(after.len());
    if op_len == after.len() {
        // The right side needs at least one character: the regexp backtracks one.
        if op_len < 2 {
            return None;
        }
        op_len -= 1;
    }
    Some((&text[..op_start], &after[..op_len], &after[op_len..]))
}

/// `-?\d*` and the number it holds (`None` for an empty part).
fn slice_part(part: &str) -> Result<Option<i64>, Option<()>> {
    let digits = part.strip_prefix('-').unwrap_or(part);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(None);
    }
    if part.is_empty() {
        return Ok(None);
    }
    part.parse::<i64>().map(Some).map_err(|_| Some(()))
}

fn parse_slice(text: &str) -> Result<[Param; 3], Error> {
    let parts: Vec<&str> = text.split(':').collect();
    let invalid = || err(format!("invalid array index {text}"));
    if parts.len() > 3 {
        return Err(invalid());
    }
    let mut params = [Param {
        known: false,
        value: 0,
        derived: false,
    }; 3];
    for i in 0..3 {
        match parts.get(i) {
            Some(part) => match slice_part(part) {
                Ok(Some(v)) => {
                    params[i].known = true;
                    params[i].value = v;
                }
                Ok(None) => {}
                Err(None) => return Err(invalid()),
                Err(Some(())) => {
                    return Err(err(format!("array index {part} is not a number")));
                }
            },
            None if i == 1 => {
                params[1] = Param {
                    known: true,
                    value: params[0].value + 1,
                    derived: true,
                };
            }
            None => {}
        }
    }
    Ok(params)
}

fn hex_value(s: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(s).ok()?;
    u32::from_str_radix(text, 16).ok()
}

/// Go's `strconv.Unquote`, extended to single-quoted strings of any length; `None` is Go's
/// `invalid syntax`.
fn unquote_extend(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let n = bytes.len();
    if n < 2 {
        return None;
    }
    let quote = bytes[0];
    if quote != bytes[n - 1] || (quote != b'"' && quote != b'\'') {
        return None;
    }
    let body = &bytes[1..n - 1];
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c == quote {
            return None;
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let esc = *body.get(i + 1)?;
        i += 2;
        match esc {
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\\' => out.push(b'\\'),
            b'\'' | b'"' => {
                if esc != quote {
                    return None;
                }
                out.push(esc);
            }
            b'x' => {
                let v = hex_value(body.get(i..i + 2)?)?;
                out.push(v as u8);
                i += 2;
            }
            b'u' | b'U' => {
                let len = if esc == b'u' { 4 } else { 8 };
                let v = hex_value(body.get(i..i + len)?)?;
                let ch = char::from_u32(v)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += len;
            }
            b'0'..=b'7' => {
                let digits = body.get(i - 1..i + 2)?;
                let mut v: u32 = 0;
                for d in digits {
                    if !(b'0'..=b'7').contains(d) {
                        return None;
                    }
                    v = v * 8 + u32::from(d - b'0');
                }
                if v > 255 {
                    return None;
                }
                out.push(v as u8);
                i += 2;
            }
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_comparisons_like_the_upstream_regexp() {
        assert_eq!(split_comparison("@.a==\"x\""), Some(("@.a", "==", "\"x\"")));
        assert_eq!(split_comparison("@.a<>10"), Some(("@.a", "<>", "10")));
        assert_eq!(split_comparison("@.a=="), Some(("@.a", "=", "=")));
        assert_eq!(split_comparison("@.z"), None);
        assert_eq!(split_comparison("==1"), None);
    }

    #[test]
    fn unquotes_go_escapes() {
        assert_eq!(unquote_extend(r#""\n""#).as_deref(), Some("\n"));
        assert_eq!(unquote_extend(r"'\t'").as_deref(), Some("\t"));
        assert_eq!(unquote_extend(r#""\u00e9\x41\101""#).as_deref(), Some("éAA"));
        assert_eq!(unquote_extend(r#""\'""#), None);
        assert_eq!(unquote_extend(r#""\q""#), None);
    }

    #[test]
    fn parses_slices_with_derived_end() {
        let p = parse_slice("-1").unwrap();
        assert_eq!(
            p[1],
            Param {
                known: true,
                value: 0,
                derived: true
            }
        );
        assert!(!parse_slice("1:").unwrap()[1].known);
        assert!(parse_slice("a").is_err());
        assert_eq!(
            parse_slice("-:1").unwrap_err(),
            Error::Parse("array index - is not a number".into())
        );
    }
}
