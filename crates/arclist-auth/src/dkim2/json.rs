//! The little JSON a Recipe is written in (RFC 8259), read strictly: -07 makes a duplicate
//! key (compared without regard to case) and any malformed text a permanent error, which a
//! general JSON library would quietly accept (last key wins). Recipes are small and shallow,
//! so the reader bounds depth and size instead of streaming.

/// A JSON value. Objects keep their keys in order, as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// Integers only: a Recipe has no use for fractions, and `1.0` is not a line number.
    Int(i64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Deeper than any Recipe (object → object → array → object → array).
const MAX_DEPTH: usize = 8;

/// Parses `text` as one JSON value, nothing but whitespace around it.
pub(crate) fn parse(text: &[u8]) -> Result<Json, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_string())?;
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    let value = p.value(0)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(format!("text after the value at byte {}", p.pos));
    }
    Ok(value)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.pos))
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return self.err("nested too deep");
        }
        self.ws();
        match self.s.get(self.pos) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::Str),
            Some(b'-' | b'0'..=b'9') => self.int(),
            _ if self.eat(b"null") => Ok(Json::Null),
            _ if self.eat(b"true") => Ok(Json::Bool(true)),
            _ if self.eat(b"false") => Ok(Json::Bool(false)),
            _ => self.err("expected a value"),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, String> {
        self.pos += 1;
        let mut members: Vec<(String, Json)> = Vec::new();
        self.ws();
        if self.eat(b"}") {
            return Ok(Json::Object(members));
        }
        loop {
            self.ws();
            if self.s.get(self.pos) != Some(&b'"') {
                return self.err("expected a key");
            }
            let key = self.string()?;
            if members.iter().any(|(k, _)| k.eq_ignore_ascii_case(&key)) {
                return self.err(&format!("duplicate key {key:?}"));
            }
            self.ws();
            if !self.eat(b":") {
                return self.err("expected ':'");
            }
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.ws();
            if self.eat(b"}") {
                return Ok(Json::Object(members));
            }
            if !self.eat(b",") {
                return self.err("expected ',' or '}'");
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, String> {
        self.pos += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat(b"]") {
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.ws();
            if self.eat(b"]") {
                return Ok(Json::Array(items));
            }
            if !self.eat(b",") {
                return self.err("expected ',' or ']'");
            }
        }
    }

    fn int(&mut self) -> Result<Json, String> {
        let start = self.pos;
        if self.s.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let digits = self.pos;
        while matches!(self.s.get(self.pos), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let n = &self.s[digits..self.pos];
        if n.is_empty() || n.len() > 1 && n[0] == b'0' {
            return self.err("bad number");
        }
        if matches!(self.s.get(self.pos), Some(b'.' | b'e' | b'E')) {
            return self.err("not an integer");
        }
        std::str::from_utf8(&self.s[start..self.pos])
            .ok()
            .and_then(|t| t.parse().ok())
            .map(Json::Int)
            .ok_or_else(|| format!("number out of range at byte {start}"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.pos..self.pos + 4).unwrap_or_default();
        let v = std::str::from_utf8(h)
            .ok()
            .filter(|t| t.len() == 4)
            .and_then(|t| u32::from_str_radix(t, 16).ok());
        match v {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => self.err("bad \\u escape"),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while !matches!(self.s.get(self.pos), None | Some(b'"' | b'\\' | 0..=0x1f)) {
                self.pos += 1;
            }
            // The input is a &str and the run stops at ASCII bytes, so this is whole chars.
            out.push_str(std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default());
            match self.s.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self.s.get(self.pos).copied();
                    self.pos += 1;
                    let ch = match esc {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode()?,
                        _ => return self.err("bad escape"),
                    };
                    out.push(ch);
                }
                _ => return self.err("unterminated string or control character"),
            }
        }
    }

    fn unicode(&mut self) -> Result<char, String> {
        let hi = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&hi) {
            if !self.eat(b"\\u") {
                return self.err("lone surrogate");
            }
            let lo = self.hex4()?;
            if !(0xdc00..0xe000).contains(&lo) {
                return self.err("bad surrogate pair");
            }
            0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
        } else {
            hi
        };
        match char::from_u32(code) {
            Some(c) => Ok(c),
            None => self.err("lone surrogate"),
        }
    }
}

/// Writes `s` as a JSON string.
pub(crate) fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_recipes_and_refuses_the_rest() {
        let v =
            parse(br#" {"h":{"subject":[{"d":[" Hi \u00e9\ud83d\ude00"]}]},"b":[{"c":[1,2]}]} "#);
        let Ok(Json::Object(m)) = v else {
            panic!("{v:?}")
        };
        assert_eq!(m.len(), 2);
        for bad in [
            &br#"{"h":1,"H":2}"#[..],
            br#"{"a":1.5}"#,
            br#"{"a":01}"#,
            br#"{"a":1} x"#,
            br#"{"a":"\ud800"}"#,
            br#"[[[[[[[[[[1]]]]]]]]]]"#,
            b"{\"a\":\"\x01\"}",
            b"\xff",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let mut s = String::new();
        write_str("a\"b\\c\u{1}", &mut s);
        assert_eq!(parse(s.as_bytes()), Ok(Json::Str("a\"b\\c\u{1}".into())));
    }
}
