//! A bounded reader of protocol-buffer text format (`.pbtxt`), as
//! TensorFlow writes `saved_model.pbtxt` and GraphDef `.pbtxt` files.
//!
//! Grammar from the protobuf "Text Format Language Specification"
//! (protobuf.dev/reference/protobuf/textformat-spec): a message is a list
//! of fields; a field is `name: scalar`, `name: [scalars]`, `name { ... }`,
//! `name: { ... }`, `name < ... >` or `name [ {..}, {..} ]`, with optional
//! `,`/`;` separators, `#` comments, extension and `Any` names in brackets
//! (`[type.googleapis.com/x.Y]`), and strings in single or double quotes
//! with C escapes, adjacent strings concatenated. No schema is needed:
//! the tree keeps field names and raw scalars.
//!
//! Bounds: nesting depth ([`MAX_DEPTH`], so recursion cannot exhaust the
//! stack) and field count ([`MAX_FIELDS`]); the tree is never larger than
//! a small multiple of the input, which the caller bounds.

/// Deepest message nesting accepted.
pub const MAX_DEPTH: usize = 100;
/// Most fields (scalars and messages) in one document.
pub const MAX_FIELDS: usize = 5_000_000;

/// A field value.
#[derive(Debug, Clone, PartialEq)]
pub enum TextValue {
    /// A scalar: a string's decoded bytes, or the token of a number,
    /// identifier or enum value.
    Scalar(Vec<u8>),
    /// A nested message.
    Message(Vec<(String, TextValue)>),
}

impl TextValue {
    /// The fields of a message (empty for a scalar).
    pub fn fields(&self) -> &[(String, TextValue)] {
        match self {
            TextValue::Message(f) => f,
            TextValue::Scalar(_) => &[],
        }
    }

    /// The first scalar field `name` of a message, as text.
    pub fn scalar(&self, name: &str) -> Option<String> {
        self.fields().iter().find_map(|(k, v)| match v {
            TextValue::Scalar(b) if k == name => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
    }

    /// Every message field `name` of a message.
    pub fn messages<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s TextValue> + 's {
        self.fields()
            .iter()
            .filter(move |(k, v)| k == name && matches!(v, TextValue::Message(_)))
            .map(|(_, v)| v)
    }
}

/// Why a text-format document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("text-format protobuf, line {line}: {reason}")]
pub struct TextError {
    /// 1-based line of the problem.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
    fields: usize,
}

/// Parses a whole document into its top-level message.
pub fn parse(text: &[u8]) -> Result<TextValue, TextError> {
    let mut p = Parser {
        b: text,
        pos: 0,
        fields: 0,
    };
    let fields = p.message(0, None)?;
    Ok(TextValue::Message(fields))
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> TextError {
        let line = 1 + self.b[..self.pos.min(self.b.len())]
            .iter()
            .filter(|&&c| c == b'\n')
            .count();
        TextError {
            line,
            reason: reason.into(),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if c == b'#' {
                while self.b.get(self.pos).is_some_and(|&c| c != b'\n') {
                    self.pos += 1;
                }
            } else if c.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.b.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Fields up to `close` (or the end of input when `None`).
    fn message(
        &mut self,
        depth: usize,
        close: Option<u8>,
    ) -> Result<Vec<(String, TextValue)>, TextError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("messages nest deeper than {MAX_DEPTH}")));
        }
        let mut out = Vec::new();
        loop {
            match (self.peek(), close) {
                (None, None) => return Ok(out),
                (None, Some(c)) => return Err(self.err(format!("missing '{}'", c as char))),
                (Some(c), Some(cl)) if c == cl => {
                    self.pos += 1;
                    return Ok(out);
                }
                _ => {}
            }
            let name = self.field_name()?;
            let colon = self.eat(b':');
            match self.peek() {
                Some(b'{') | Some(b'<') => {
                    let cl = if self.eat(b'{') {
                        b'}'
                    } else {
                        self.pos += 1;
                        b'>'
                    };
                    let m = self.message(depth + 1, Some(cl))?;
                    self.push(&mut out, name, TextValue::Message(m))?;
                }
                Some(b'[') => {
                    self.pos += 1;
                    if self.eat(b']') {
                        // empty list
                    } else {
                        loop {
                            let v = self.value(depth)?;
                            self.push(&mut out, name.clone(), v)?;
                            if self.eat(b']') {
                                break;
                            }
                            if !self.eat(b',') {
                                return Err(self.err("expected ',' or ']' in a list"));
                            }
                        }
                    }
                }
                _ if colon => {
                    let v = self.scalar()?;
                    self.push(&mut out, name, TextValue::Scalar(v))?;
                }
                _ => return Err(self.err(format!("field '{name}' has no value"))),
            }
            if !self.eat(b',') {
                self.eat(b';');
            }
        }
    }

    fn push(
        &mut self,
        out: &mut Vec<(String, TextValue)>,
        name: String,
        v: TextValue,
    ) -> Result<(), TextError> {
        self.fields += 1;
        if self.fields > MAX_FIELDS {
            return Err(self.err(format!("more than {MAX_FIELDS} fields")));
        }
        out.push((name, v));
        Ok(())
    }

    /// A list element: a message or a scalar.
    fn value(&mut self, depth: usize) -> Result<TextValue, TextError> {
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                Ok(TextValue::Message(self.message(depth + 1, Some(b'}'))?))
            }
            Some(b'<') => {
                self.pos += 1;
                Ok(TextValue::Message(self.message(depth + 1, Some(b'>'))?))
            }
            _ => Ok(TextValue::Scalar(self.scalar()?)),
        }
    }

    fn field_name(&mut self) -> Result<String, TextError> {
        if self.eat(b'[') {
            // Extension or Any type URL: everything up to ']'.
            let start = self.pos;
            while self.b.get(self.pos).is_some_and(|&c| c != b']') {
                self.pos += 1;
            }
            if self.pos >= self.b.len() {
                return Err(self.err("unterminated '[' in a field name"));
            }
            let n = String::from_utf8_lossy(&self.b[start..self.pos]).into_owned();
            self.pos += 1;
            return Ok(format!("[{}]", n.trim()));
        }
        let t = self.token();
        if t.is_empty() {
            let c = self.b.get(self.pos).map_or("end of input".into(), |c| {
                format!("'{}'", (*c as char).escape_default())
            });
            return Err(self.err(format!("expected a field name, found {c}")));
        }
        Ok(String::from_utf8_lossy(t).into_owned())
    }

    /// An identifier or number token.
    fn token(&mut self) -> &[u8] {
        self.skip_ws();
        let start = self.pos;
        while self
            .b
            .get(self.pos)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'+'))
        {
            self.pos += 1;
        }
        &self.b[start..self.pos]
    }

    fn scalar(&mut self) -> Result<Vec<u8>, TextError> {
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => {
                let mut out = Vec::new();
                // Adjacent strings concatenate.
                while self.peek() == Some(q) || matches!(self.peek(), Some(b'"' | b'\'')) {
                    let q = self.b[self.pos];
                    self.pos += 1;
                    self.string_body(q, &mut out)?;
                }
                let _ = q;
                Ok(out)
            }
            _ => {
                let t = self.token().to_vec();
                if t.is_empty() {
                    return Err(self.err("expected a value"));
                }
                Ok(t)
            }
        }
    }

    fn string_body(&mut self, q: u8, out: &mut Vec<u8>) -> Result<(), TextError> {
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            match c {
                b'\n' => return Err(self.err("newline inside a string")),
                _ if c == q => return Ok(()),
                b'\\' => {
                    let Some(&e) = self.b.get(self.pos) else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'a' => out.push(7),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'v' => out.push(11),
                        b'?' => out.push(b'?'),
                        b'0'..=b'7' => {
                            let mut v: u32 = (e - b'0') as u32;
                            for _ in 0..2 {
                                match self.b.get(self.pos) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + (d - b'0') as u32;
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xff) as u8);
                        }
                        b'x' | b'X' => {
                            let mut v: u32 = 0;
                            let mut n = 0;
                            while n < 2 {
                                match self.b.get(self.pos).and_then(|&d| (d as char).to_digit(16)) {
                                    Some(d) => {
                                        v = v * 16 + d;
                                        self.pos += 1;
                                        n += 1;
                                    }
                                    None => break,
                                }
                            }
                            if n == 0 {
                                return Err(self.err("\\x without hex digits"));
                            }
                            out.push(v as u8);
                        }
                        b'u' | b'U' => {
                            let len = if e == b'u' { 4 } else { 8 };
                            let hex = self
                                .b
                                .get(self.pos..self.pos + len)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.err("bad unicode escape"))?;
                            self.pos += len;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(hex.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_tensorflow_writes() {
        let t = br#"
# comment
saved_model_schema_version: 1
meta_graphs {
  graph_def {
    node { name: "a" op: "Const" attr { key: "value" value { s: "x\001\x41\n" 'y' } } }
    node: < name: 'b', op: "WriteFile"; >
    versions { producer: 1205 }
  }
  [type.googleapis.com/x.Y] { v: [1, 2, -3.5e2] }
  tags: ["serve", "gpu"]
}
"#;
        let v = parse(t).unwrap();
        assert_eq!(v.scalar("saved_model_schema_version").as_deref(), Some("1"));
        let mg = v.messages("meta_graphs").next().unwrap();
        let gd = mg.messages("graph_def").next().unwrap();
        let nodes: Vec<_> = gd.messages("node").collect();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].scalar("op").as_deref(), Some("WriteFile"));
        let attr = nodes[0].messages("attr").next().unwrap();
        let val = attr.messages("value").next().unwrap();
        assert_eq!(val.fields()[0].1, TextValue::Scalar(b"x\x01A\ny".to_vec()));
        assert_eq!(mg.fields().iter().filter(|(k, _)| k == "tags").count(), 2);
        assert!(mg
            .fields()
            .iter()
            .any(|(k, _)| k == "[type.googleapis.com/x.Y]"));
    }

    #[test]
    fn bounds_and_errors() {
        let deep = "a {".repeat(MAX_DEPTH + 5);
        let e = parse(deep.as_bytes()).unwrap_err();
        assert!(e.reason.contains("nest"), "{e}");
        for bad in [&b"a: \"x"[..], b"a {", b"a", b"a: [1 2]", b"}"] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"").unwrap(), TextValue::Message(vec![]));
    }
}
