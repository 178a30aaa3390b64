//! Records from RFC 1035 master files, for offline verification and for the loopback server.

use super::{DnsError, Mx, normalize_name};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// One resource record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneRecord {
    /// A TXT record, its character-strings kept apart as published.
    Txt(Vec<Vec<u8>>),
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A mail exchanger.
    Mx(Mx),
    /// A reverse-DNS pointer.
    Ptr(String),
}

/// A zone file line arclist could not read.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ZoneError {
    /// The file (or `<inline>`).
    pub file: String,
    /// 1-based line number of the record's first line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// An in-memory set of records, keyed by lower-case name without the trailing dot.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    records: HashMap<String, Vec<(u32, ZoneRecord)>>,
}

impl Zone {
    /// An empty zone: every name is NXDOMAIN.
    pub fn new() -> Self {
        Zone::default()
    }

    /// Adds one record with a TTL of an hour.
    pub fn add(&mut self, name: &str, record: ZoneRecord) {
        self.records
            .entry(normalize_name(name))
            .or_default()
            .push((3600, record));
    }

    /// Adds a TXT record, splitting it into 255-byte strings as a zone file must.
    pub fn add_txt(&mut self, name: &str, value: &str) {
        let strings = value.as_bytes().chunks(255).map(|c| c.to_vec()).collect();
        self.add(name, ZoneRecord::Txt(strings));
    }

    /// Reads a master file and adds its records.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ZoneError> {
        let text = std::fs::read_to_string(path).map_err(|e| ZoneError {
            file: path.display().to_string(),
            line: 0,
            message: format!("cannot read zone file: {e}"),
        })?;
        self.load_str(&text, &path.display().to_string())
    }

    /// Parses master-file text: `$ORIGIN`, `$TTL`, `@`, relative names, parentheses,
    /// quoted strings and comments; record types TXT, A, AAAA, MX and PTR (others are skipped).
    pub fn load_str(&mut self, text: &str, file: &str) -> Result<(), ZoneError> {
        let mut origin = String::new();
        let mut default_ttl = 3600u32;
        let mut last_name: Option<String> = None;
        for (line_no, tokens, starts_blank) in
            logical_lines(text).map_err(|(line, message)| ZoneError {
                file: file.to_string(),
                line,
                message,
            })?
        {
            let err = |message: String| ZoneError {
                file: file.to_string(),
                line: line_no,
                message,
            };
            let mut it = tokens.into_iter().peekable();
            let Some(first) = it.peek().cloned() else {
                continue;
            };
            if !first.quoted && first.text.eq_ignore_ascii_case("$ORIGIN") {
                it.next();
                origin = it
                    .next()
                    .map(|t| normalize_name(&t.text))
                    .ok_or_else(|| err("$ORIGIN needs a name".into()))?;
                continue;
            }
            if !first.quoted && first.text.eq_ignore_ascii_case("$TTL") {
                it.next();
                default_ttl = it
                    .next()
                    .and_then(|t| t.text.parse().ok())
                    .ok_or_else(|| err("$TTL needs a number of seconds".into()))?;
                continue;
            }
            let name = if starts_blank {
                last_name
                    .clone()
                    .ok_or_else(|| err("record with no owner name".into()))?
            } else {
                let raw = it.next().map(|t| t.text).unwrap_or_default();
                absolute(&raw, &origin)
            };
            last_name = Some(name.clone());
            let mut ttl = default_ttl;
            let rtype = loop {
                let tok = it.next().ok_or_else(|| err("record has no type".into()))?;
                let word = tok.text.to_ascii_uppercase();
                if let Ok(n) = word.parse::<u32>() {
                    ttl = n;
                } else if word == "IN" || word == "CH" {
                    continue;
                } else {
                    break word;
                }
            };
            let rest: Vec<Token> = it.collect();
            let one = |i: usize| {
                rest.get(i)
                    .map(|t| t.text.clone())
                    .ok_or_else(|| err(format!("{rtype} record is missing data")))
            };
            let record = match rtype.as_str() {
                "TXT" | "SPF" => {
                    if rest.is_empty() {
                        return Err(err("TXT record has no strings".into()));
                    }
                    ZoneRecord::Txt(rest.iter().map(|t| t.bytes.clone()).collect())
                }
                "A" => ZoneRecord::A(
                    one(0)?
                        .parse()
                        .map_err(|_| err("bad IPv4 address".into()))?,
                ),
                "AAAA" => ZoneRecord::Aaaa(
                    one(0)?
                        .parse()
                        .map_err(|_| err("bad IPv6 address".into()))?,
                ),
                "MX" => ZoneRecord::Mx(Mx {
                    preference: one(0)?
                        .parse()
                        .map_err(|_| err("bad MX preference".into()))?,
                    exchange: absolute(&one(1)?, &origin),
                }),
                "PTR" => ZoneRecord::Ptr(absolute(&one(0)?, &origin)),
                _ => continue,
            };
            self.records.entry(name).or_default().push((ttl, record));
        }
        Ok(())
    }

    /// Every record at `name`, with its TTL.
    pub fn records(&self, name: &str) -> Option<&[(u32, ZoneRecord)]> {
        self.records
            .get(&normalize_name(name))
            .map(|v| v.as_slice())
    }

    fn select<T>(
        &self,
        name: &str,
        rtype: &'static str,
        pick: impl Fn(&ZoneRecord) -> Option<T>,
    ) -> Result<Vec<T>, DnsError> {
        let found: Vec<T> = self
            .records(name)
            .unwrap_or_default()
            .iter()
            .filter_map(|(_, r)| pick(r))
            .collect();
        if found.is_empty() {
            Err(DnsError::NotFound {
                name: name.to_string(),
                rtype,
            })
        } else {
            Ok(found)
        }
    }

    pub(super) fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
        self.select(name, "TXT", |r| match r {
            ZoneRecord::Txt(parts) => Some(parts.concat()),
            _ => None,
        })
    }

    pub(super) fn mx(&self, name: &str) -> Result<Vec<Mx>, DnsError> {
        self.select(name, "MX", |r| match r {
            ZoneRecord::Mx(mx) => Some(mx.clone()),
            _ => None,
        })
    }

    pub(super) fn ptr(&self, name: &str) -> Result<Vec<String>, DnsError> {
        self.select(name, "PTR", |r| match r {
            ZoneRecord::Ptr(p) => Some(p.clone()),
            _ => None,
        })
    }

    pub(super) fn ips(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        self.select(name, "A/AAAA", |r| match r {
            ZoneRecord::A(a) => Some(IpAddr::V4(*a)),
            ZoneRecord::Aaaa(a) => Some(IpAddr::V6(*a)),
            _ => None,
        })
    }
}

fn absolute(name: &str, origin: &str) -> String {
    if name == "@" {
        origin.to_string()
    } else if name.ends_with('.') || origin.is_empty() {
        normalize_name(name)
    } else {
        format!("{}.{}", normalize_name(name), origin)
    }
}

#[derive(Debug, Clone)]
struct Token {
    text: String,
    bytes: Vec<u8>,
    quoted: bool,
}

type LogicalLine = (usize, Vec<Token>, bool);

/// The quoted string whose text starts at `bytes[i]` (after the opening quote) on `line`:
/// the token, where reading goes on, and how many newlines it held.
fn quoted(
    bytes: &[u8],
    mut i: usize,
    line: usize,
) -> Result<(Token, usize, usize), (usize, String)> {
    let mut lines = 0;
    let mut s = Vec::new();
    loop {
        match bytes.get(i) {
            None => return Err((line + lines, "unterminated quoted string".into())),
            Some(b'"') => {
                i += 1;
                break;
            }
            Some(b'\\') => {
                // \DDD is a decimal byte; \X is X itself.
                let digits = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(u8::is_ascii_digit));
                if let Some(d) = digits {
                    let v: u32 = std::str::from_utf8(d)
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .unwrap_or(256);
                    s.push(
                        u8::try_from(v)
                            .map_err(|_| (line + lines, "bad \\DDD escape".to_string()))?,
                    );
                    i += 4;
                } else if let Some(&b) = bytes.get(i + 1) {
                    s.push(b);
                    i += 2;
                } else {
                    return Err((line + lines, "dangling backslash".into()));
                }
            }
            Some(&b) => {
                if b == b'\n' {
                    lines += 1;
                }
                s.push(b);
                i += 1;
            }
        }
    }
    Ok((
        Token {
            text: String::from_utf8_lossy(&s).into_owned(),
            bytes: s,
            quoted: true,
        },
        i,
        lines,
    ))
}

/// Splits master-file text into logical lines (joining parenthesised continuations) of tokens.
fn logical_lines(text: &str) -> Result<Vec<LogicalLine>, (usize, String)> {
    let mut out = Vec::new();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut start_line = 1;
    let mut starts_blank = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut line = 1;
    let mut at_line_start = true;
    while i < bytes.len() {
        let c = bytes[i];
        if at_line_start && depth == 0 {
            start_line = line;
            starts_blank = c == b' ' || c == b'\t';
            at_line_start = false;
        }
        match c {
            b'\n' => {
                line += 1;
                i += 1;
                if depth == 0 {
                    if !tokens.is_empty() {
                        out.push((start_line, std::mem::take(&mut tokens), starts_blank));
                    }
                    at_line_start = true;
                }
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b';' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or((line, "unbalanced ')'".to_string()))?;
                i += 1;
            }
            b'"' => {
                let (token, next, lines) = quoted(bytes, i + 1, line)?;
                tokens.push(token);
                i = next;
                line += lines;
            }
            _ => {
                let begin = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"'
                    )
                {
                    i += 1;
                }
                let s = bytes[begin..i].to_vec();
                tokens.push(Token {
                    text: String::from_utf8_lossy(&s).into_owned(),
                    bytes: s,
                    quoted: false,
                });
            }
        }
    }
    if depth != 0 {
        return Err((line, "unbalanced '('".into()));
    }
    if !tokens.is_empty() {
        out.push((start_line, tokens, starts_blank));
    }
    Ok(out)
}

/// A master-file TXT line with the value split into 255-byte strings.
pub fn zone_line(name: &str, value: &str) -> String {
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!("{name} IN TXT ( {} )", strings.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_split_txt_origin_and_parentheses() {
        let mut zone = Zone::new();
        zone.load_str(
            "$ORIGIN example.org.\n$TTL 300\nsel._domainkey IN TXT \"v=DKIM1; \" \"p=AB\" ; comment\n\
             @ 60 IN MX 10 mx ; main\nmx IN A 127.0.0.2\nmulti IN TXT ( \"a\"\n  \"b\" )\n",
            "t",
        )
        .expect("zone parses");
        assert_eq!(
            zone.txt("SEL._domainkey.example.org.").expect("txt"),
            vec![b"v=DKIM1; p=AB".to_vec()]
        );
        assert_eq!(
            zone.mx("example.org").expect("mx")[0].exchange,
            "mx.example.org"
        );
        assert_eq!(
            zone.txt("multi.example.org").expect("txt"),
            vec![b"ab".to_vec()]
        );
        assert!(matches!(
            zone.txt("nope.example.org"),
            Err(DnsError::NotFound { .. })
        ));
    }

    #[test]
    fn reports_file_and_line() {
        let err = Zone::new()
            .load_str("a. IN TXT \"x\"\nb. IN A notanip\n", "z.zone")
            .expect_err("bad A");
        assert_eq!((err.file.as_str(), err.line), ("z.zone", 2));
    }
}
