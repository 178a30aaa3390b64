//! Authentication-Results (RFC 8601): parsing others' fields and writing ours.

use serde::Serialize;

/// One `method=result` statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MethodResult {
    /// `dkim`, `spf`, `dmarc`, `arc`, ... (lower-case, without a `/version`).
    pub method: String,
    /// `pass`, `fail`, ... (lower-case).
    pub result: String,
    /// `reason="..."`, when given.
    pub reason: Option<String>,
    /// `ptype.property=value` pairs such as `header.d=example.org`, in order.
    pub properties: Vec<(String, String)>,
    /// A parenthesised comment after the result, when given.
    pub comment: Option<String>,
}

impl MethodResult {
    /// A result with no properties yet.
    pub fn new(method: &str, result: &str) -> Self {
        MethodResult {
            method: method.to_string(),
            result: result.to_string(),
            reason: None,
            properties: Vec::new(),
            comment: None,
        }
    }

    /// Adds a `ptype.property=value`.
    pub fn prop(mut self, key: &str, value: impl Into<String>) -> Self {
        self.properties.push((key.to_string(), value.into()));
        self
    }

    /// Sets the comment.
    pub fn comment(mut self, c: impl Into<String>) -> Self {
        self.comment = Some(c.into());
        self
    }

    /// A property's value.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// `method=result (comment) reason="..." p=v ...` as written in a field.
    pub fn render(&self) -> String {
        let mut s = format!("{}={}", self.method, self.result);
        if let Some(c) = &self.comment {
            s.push_str(&format!(" ({})", c.replace(['(', ')'], "")));
        }
        if let Some(r) = &self.reason {
            s.push_str(&format!(" reason=\"{}\"", r.replace(['"', '\\'], "")));
        }
        for (k, v) in &self.properties {
            s.push_str(&format!(" {k}={}", quote_if_needed(v)));
        }
        s
    }
}

fn quote_if_needed(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars().all(|c| {
            c.is_ascii_graphic() && !"()<>,;:\\\"[]?=".contains(c) || c == '@' || c == '.'
        });
    if plain {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace(['"', '\\'], ""))
    }
}

/// A parsed Authentication-Results (or the part of an ARC-Authentication-Results after `i=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthResults {
    /// Who made the statements.
    pub authserv_id: String,
    /// The optional version after the authserv-id (`mx.microsoft.com 1;`).
    pub version: Option<u32>,
    /// The statements, in order (empty for `none`).
    pub results: Vec<MethodResult>,
}

impl AuthResults {
    /// Parses a field value. Unknown or malformed statements are skipped, not fatal: a reader
    /// of foreign results takes what it can understand.
    pub fn parse(value: &str) -> Option<Self> {
        let parts = split_outside(value, ';');
        let mut head = tokens(parts.first()?);
        let authserv_id = head.next()?.text;
        let version = head.next().and_then(|t| t.text.parse().ok());
        let mut results = Vec::new();
        for part in parts.iter().skip(1) {
            let mut toks = tokens(part).peekable();
            let Some(first) = toks.next() else { continue };
            if first.text.eq_ignore_ascii_case("none") {
                continue;
            }
            let Some((method, result)) = first.text.split_once('=') else {
                continue;
            };
            let mut r = MethodResult::new(
                &method
                    .split('/')
                    .next()
                    .unwrap_or(method)
                    .to_ascii_lowercase(),
                &result.to_ascii_lowercase(),
            );
            r.comment = first.comment;
            // `result` may be empty when the value was split by spaces: `dkim = pass`.
            if r.result.is_empty()
                && let Some(t) = toks.next()
            {
                r.result = t.text.to_ascii_lowercase();
                r.comment = r.comment.or(t.comment);
            }
            for t in toks {
                if let Some((k, v)) = t.text.split_once('=') {
                    if k.eq_ignore_ascii_case("reason") {
                        r.reason = Some(v.to_string());
                    } else {
                        r.properties.push((k.to_ascii_lowercase(), v.to_string()));
                    }
                }
                if r.comment.is_none() {
                    r.comment = t.comment;
                }
            }
            results.push(r);
        }
        Some(AuthResults {
            authserv_id,
            version,
            results,
        })
    }

    /// The first result for `method`.
    pub fn get(&self, method: &str) -> Option<&MethodResult> {
        self.results.iter().find(|r| r.method == method)
    }

    /// The field value, folded one statement per line: `id;\r\n\tspf=pass ...`.
    pub fn render(&self) -> String {
        let mut s = self.authserv_id.clone();
        if self.results.is_empty() {
            s.push_str("; none");
        }
        for r in &self.results {
            s.push_str(";\r\n\t");
            s.push_str(&r.render());
        }
        s
    }

    /// The statements joined by `"; "` on one line, as the open ARC test suite writes AARs.
    pub fn render_flat(&self) -> String {
        let mut s = self.authserv_id.clone();
        if self.results.is_empty() {
            s.push_str("; none");
        }
        for r in &self.results {
            s.push_str("; ");
            s.push_str(&r.render());
        }
        s
    }
}

struct Token {
    text: String,
    comment: Option<String>,
}

/// Splits on `sep` outside quoted strings and comments (shared by readers of foreign results).
pub fn split_outside(value: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if quoted {
            quoted = c != '"';
        } else if c == '"' {
            quoted = true;
        } else if c == '(' {
            depth += 1;
        } else if c == ')' {
            depth = depth.saturating_sub(1);
        } else if c == sep && depth == 0 {
            out.push(String::new());
            continue;
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// Whitespace-separated tokens with comments peeled off and attached to the token before them;
/// quotes removed from quoted values.
fn tokens(part: &str) -> impl Iterator<Item = Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut cur = String::new();
    let mut comment = String::new();
    let (mut depth, mut quoted) = (0usize, false);
    let flush = |cur: &mut String, out: &mut Vec<Token>| {
        if !cur.is_empty() {
            out.push(Token {
                text: std::mem::take(cur),
                comment: None,
            });
        }
    };
    for c in part.chars() {
        if depth > 0 {
            if c == '(' {
                depth += 1;
            } else if c == ')' {
                depth -= 1;
                if depth == 0 {
                    let text = std::mem::take(&mut comment).trim().to_string();
                    match out.last_mut() {
                        Some(t) if t.comment.is_none() => t.comment = Some(text),
                        _ => {}
                    }
                    continue;
                }
            }
            comment.push(c);
        } else if quoted {
            if c == '"' {
                quoted = false;
            } else {
                cur.push(c);
            }
        } else if c == '"' {
            quoted = true;
        } else if c == '(' {
            flush(&mut cur, &mut out);
            depth = 1;
        } else if c.is_whitespace() {
            flush(&mut cur, &mut out);
        } else {
            cur.push(c);
        }
    }
    flush(&mut cur, &mut out);
    // Join `a = b` written with spaces around '='.
    let mut joined: Vec<Token> = Vec::new();
    for t in out {
        let glue = joined.last().is_some_and(|p| p.text.ends_with('=')) || t.text.starts_with('=');
        match joined.last_mut() {
            Some(p) if glue => {
                p.text.push_str(&t.text);
                if p.comment.is_none() {
                    p.comment = t.comment;
                }
            }
            _ => joined.push(t),
        }
    }
    joined.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_comments_and_properties() {
        let ar = AuthResults::parse(
            "mx.microsoft.com 1; spf=pass (sender ip is 1.2.3.4) smtp.mailfrom=a.example;\r\n dkim=pass (signature was verified)\r\n header.d=a.example; dmarc = fail reason=\"p=reject\" header.from=a.example",
        )
        .expect("parses");
        assert_eq!(ar.authserv_id, "mx.microsoft.com");
        assert_eq!(ar.version, Some(1));
        assert_eq!(
            ar.get("spf").and_then(|r| r.property("smtp.mailfrom")),
            Some("a.example")
        );
        assert_eq!(
            ar.get("spf").and_then(|r| r.comment.clone()).as_deref(),
            Some("sender ip is 1.2.3.4")
        );
        assert_eq!(
            ar.get("dkim").and_then(|r| r.property("header.d")),
            Some("a.example")
        );
        let dmarc = ar.get("dmarc").expect("dmarc");
        assert_eq!(
            (dmarc.result.as_str(), dmarc.reason.as_deref()),
            ("fail", Some("p=reject"))
        );
    }

    #[test]
    fn round_trips() {
        let ar = AuthResults {
            authserv_id: "lists.example.org".into(),
            version: None,
            results: vec![
                MethodResult::new("dkim", "pass")
                    .prop("header.d", "a.example")
                    .comment("2048-bit key"),
            ],
        };
        assert_eq!(AuthResults::parse(&ar.render()), Some(ar));
    }
}
