//! Recipes (§5): how a hop that changed a message says what the message was before, so a
//! verifier can recreate each earlier instance and check the hashes that were signed on it.
//!
//! A Recipe is JSON: `{"h": {"name": [steps]}, "b": [steps] | null}`. A step has exactly one
//! key (-07): `{"c": [from, to]}` copies a range of the current fields or lines, `{"d":
//! [text]}` adds UTF-8 literals, `{"u": [base64]}` adds other octets. Header fields are
//! numbered per name from the bottom up; body lines from the top down. A name absent from
//! `h` is unchanged; an empty step list removes every field of that name. `"b": null` says
//! the earlier body cannot be recreated (-09 §13: a permanent error).

use super::error::Dkim2Error;
use super::is_unsigned_field;
use super::json::{self, Json};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::BTreeMap;

/// One Recipe step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `{"c": [start, end]}`: fields or lines `start..=end` of the current instance.
    Copy {
        /// First, from 1.
        start: u32,
        /// Last, at least `start`.
        end: u32,
    },
    /// `{"d": [...]}`: literal values or lines (UTF-8, no CR or LF).
    Data(Vec<String>),
    /// `{"u": [...]}`: literal octets that are not UTF-8 (base64 on the wire).
    Bytes(Vec<Vec<u8>>),
}

/// What a Recipe says about the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRecipe {
    /// No `b`: the body did not change.
    Unchanged,
    /// Steps that recreate the earlier body.
    Steps(Vec<Step>),
    /// `"b": null`: the earlier body cannot be recreated.
    Null,
}

/// A parsed Recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Per lower-cased field name, the steps that recreate that name's earlier fields.
    pub headers: Vec<(String, Vec<Step>)>,
    /// The body's steps.
    pub body: BodyRecipe,
}

fn key_is(k: &str, want: &str) -> bool {
    k.eq_ignore_ascii_case(want)
}

fn step_from(v: &Json) -> Result<Step, String> {
    let Json::Object(members) = v else {
        return Err("a step is not an object".into());
    };
    let [(key, value)] = members.as_slice() else {
        return Err("a step has not exactly one key".into());
    };
    let strings = |v: &Json| -> Result<Vec<String>, String> {
        match v {
            Json::Array(items) if !items.is_empty() => items
                .iter()
                .map(|x| match x {
                    Json::Str(s) => Ok(s.clone()),
                    _ => Err("a literal is not a string".to_string()),
                })
                .collect(),
            _ => Err("literals are not a non-empty array of strings".into()),
        }
    };
    let no_line_break = |b: &[u8]| !b.iter().any(|&c| c == b'\r' || c == b'\n');
    if key_is(key, "c") {
        match value {
            Json::Array(r) => match r.as_slice() {
                [Json::Int(a), Json::Int(b)] if *a >= 1 && b >= a && *b <= u32::MAX as i64 => {
                    Ok(Step::Copy {
                        start: *a as u32,
                        end: *b as u32,
                    })
                }
                _ => Err("\"c\" is not [from, to] with 1 <= from <= to".into()),
            },
            _ => Err("\"c\" is not an array".into()),
        }
    } else if key_is(key, "d") {
        let lines = strings(value)?;
        if !lines.iter().all(|l| no_line_break(l.as_bytes())) {
            return Err("a \"d\" literal holds CR or LF".into());
        }
        Ok(Step::Data(lines))
    } else if key_is(key, "u") {
        let mut out = Vec::new();
        for s in strings(value)? {
            let bytes = STANDARD
                .decode(&s)
                .map_err(|_| "a \"u\" literal is not base64".to_string())?;
            // Canonical only: one spelling per octet string (-07).
            if STANDARD.encode(&bytes) != s || !no_line_break(&bytes) {
                return Err("a \"u\" literal is not canonical base64 of a line".into());
            }
            out.push(bytes);
        }
        Ok(Step::Bytes(out))
    } else {
        Err(format!("unknown step key {key:?}"))
    }
}

fn steps_from(v: &Json) -> Result<Vec<Step>, String> {
    match v {
        Json::Array(items) => items.iter().map(step_from).collect(),
        _ => Err("steps are not an array".into()),
    }
}

impl Recipe {
    /// Parses the decoded `r=` JSON; the error says what is wrong (§14: "invalid JSON").
    pub fn from_json(text: &[u8]) -> Result<Self, String> {
        let Json::Object(top) = json::parse(text)? else {
            return Err("the Recipe is not an object".into());
        };
        let mut recipe = Recipe {
            headers: Vec::new(),
            body: BodyRecipe::Unchanged,
        };
        let mut seen = false;
        for (key, value) in &top {
            if key_is(key, "h") {
                seen = true;
                let Json::Object(fields) = value else {
                    return Err("\"h\" is not an object".into());
                };
                if fields.is_empty() {
                    return Err("\"h\" is empty".into());
                }
                for (name, steps) in fields {
                    let valid =
                        !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                    if !valid {
                        return Err(format!("{name:?} is not a field name"));
                    }
                    recipe
                        .headers
                        .push((name.to_ascii_lowercase(), steps_from(steps)?));
                }
            } else if key_is(key, "b") {
                seen = true;
                recipe.body = match value {
                    Json::Null => BodyRecipe::Null,
                    v => BodyRecipe::Steps(steps_from(v)?),
                };
            }
            // Other keys are for later drafts: they cannot change what is recreated.
        }
        if !seen {
            return Err("the Recipe has neither \"h\" nor \"b\"".into());
        }
        Ok(recipe)
    }

    /// The canonical JSON (lower-case keys, no spaces).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = String::from("{");
        if !self.headers.is_empty() {
            out.push_str("\"h\":{");
            for (k, (name, steps)) in self.headers.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                json::write_str(&name.to_ascii_lowercase(), &mut out);
                out.push(':');
                write_steps(steps, &mut out);
            }
            out.push('}');
        }
        match &self.body {
            BodyRecipe::Unchanged => {}
            BodyRecipe::Null => out.push_str(if self.headers.is_empty() {
                "\"b\":null"
            } else {
                ",\"b\":null"
            }),
            BodyRecipe::Steps(steps) => {
                if !self.headers.is_empty() {
                    out.push(',');
                }
                out.push_str("\"b\":");
                write_steps(steps, &mut out);
            }
        }
        out.push('}');
        out.into_bytes()
    }

    /// A short account for reports: which fields and whether the body are recreated.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .headers
            .iter()
            .map(|(n, s)| {
                if s.is_empty() {
                    format!("{n} removed")
                } else {
                    format!("{n} {} step(s)", s.len())
                }
            })
            .collect();
        match &self.body {
            BodyRecipe::Unchanged => {}
            BodyRecipe::Null => parts.push("body not recreatable (null)".into()),
            BodyRecipe::Steps(s) => parts.push(format!("body {} step(s)", s.len())),
        }
        parts.join(", ")
    }

    /// Recreates the earlier signed fields from `fields` (lower-cased name → values, top
    /// first). Recipes for unsigned fields are accepted and ignored: they cannot change a
    /// hash (the corpus's multihop-dup-headers has them; -05 says SHOULD NOT, not MUST NOT).
    pub(crate) fn apply_headers(
        &self,
        m: u32,
        fields: &BTreeMap<String, Vec<Vec<u8>>>,
    ) -> Result<BTreeMap<String, Vec<Vec<u8>>>, Dkim2Error> {
        let mut out = fields.clone();
        for (name, steps) in &self.headers {
            if is_unsigned_field(name.as_bytes()) {
                continue;
            }
            let current = fields.get(name).map(Vec::as_slice).unwrap_or_default();
            // Numbered from the bottom: field k is current[len - k].
            let bottom_up: Vec<&[u8]> = current.iter().rev().map(Vec::as_slice).collect();
            let mut made: Vec<Vec<u8>> = apply_steps(m, steps, &bottom_up)?;
            made.reverse();
            if made.is_empty() {
                out.remove(name);
            } else {
                out.insert(name.clone(), made);
            }
        }
        Ok(out)
    }

    /// Recreates the earlier body from `body`, or None for `"b": null`.
    pub(crate) fn apply_body(&self, m: u32, body: &[u8]) -> Result<Option<Vec<u8>>, Dkim2Error> {
        match &self.body {
            BodyRecipe::Unchanged => Ok(Some(body.to_vec())),
            BodyRecipe::Null => Ok(None),
            BodyRecipe::Steps(steps) => {
                let lines = body_lines(body);
                let mut out = Vec::with_capacity(body.len());
                for line in apply_steps(m, steps, &lines)? {
                    out.extend_from_slice(&line);
                    out.extend_from_slice(b"\r\n");
                }
                Ok(Some(out))
            }
        }
    }
}

fn write_steps(steps: &[Step], out: &mut String) {
    out.push('[');
    for (k, step) in steps.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        match step {
            Step::Copy { start, end } => out.push_str(&format!("{{\"c\":[{start},{end}]}}")),
            Step::Data(lines) => {
                out.push_str("{\"d\":[");
                for (j, l) in lines.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    json::write_str(l, out);
                }
                out.push_str("]}");
            }
            Step::Bytes(lines) => {
                out.push_str("{\"u\":[");
                for (j, l) in lines.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    json::write_str(&STANDARD.encode(l), out);
                }
                out.push_str("]}");
            }
        }
    }
    out.push(']');
}

/// Runs `steps` over `items` (numbered from 1). A copy range past the end, out of order or
/// overlapping cannot recreate anything and is refused (-07).
fn apply_steps(m: u32, steps: &[Step], items: &[&[u8]]) -> Result<Vec<Vec<u8>>, Dkim2Error> {
    let mut out = Vec::new();
    let mut next = 1u64;
    for step in steps {
        match step {
            Step::Copy { start, end } => {
                let (s, e) = (u64::from(*start), u64::from(*end));
                if s < next || e > items.len() as u64 || e < s {
                    return Err(Dkim2Error::RecipeInvalid {
                        m,
                        value: format!(
                            "{{\"c\":[{start},{end}]}} (of {} available, next {next})",
                            items.len()
                        ),
                    });
                }
                out.extend(
                    items[(s - 1) as usize..e as usize]
                        .iter()
                        .map(|i| i.to_vec()),
                );
                next = e + 1;
            }
            Step::Data(lines) => out.extend(lines.iter().map(|l| l.as_bytes().to_vec())),
            Step::Bytes(lines) => out.extend(lines.iter().cloned()),
        }
    }
    Ok(out)
}

/// The body's lines without their line ends; a final line end does not start another line.
pub(crate) fn body_lines(body: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = body
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_strictness() {
        let text =
            br#"{"h":{"subject":[{"d":[" Old"]}],"list-id":[]},"b":[{"c":[1,2]},{"u":["/w=="]}]}"#;
        let r = Recipe::from_json(text).expect("valid");
        assert_eq!(r.to_json(), text.to_vec());
        assert_eq!(
            Recipe::from_json(br#"{"H":{"Subject":[{"D":["x"]}]}}"#).map(|r| r.headers),
            Ok(vec![(
                "subject".to_string(),
                vec![Step::Data(vec!["x".into()])]
            )])
        );
        for bad in [
            &br#"{}"#[..],
            br#"{"h":{}}"#,
            br#"{"h":null}"#,
            br#"{"b":[{"c":[1,2],"d":["x"]}]}"#,
            br#"{"b":[{"b":["x"]}]}"#,
            br#"{"b":[{"c":[2,1]}]}"#,
            br#"{"b":[{"c":[0,1]}]}"#,
            br#"{"b":[{"d":["a\r\nb"]}]}"#,
            br#"{"b":[{"u":["/w"]}]}"#,
            br#"{"b":[["c",1]]}"#,
            br#"{"h":{"a":[]},"H":{"b":[]}}"#,
        ] {
            assert!(
                Recipe::from_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn undoes_a_list_hop() {
        // The list added "[list] " to the subject, one header line and a footer.
        let recipe = Recipe::from_json(
            br#"{"h":{"subject":[{"d":[" Hello"]}],"list-id":[]},"b":[{"c":[2,3]}]}"#,
        )
        .expect("valid");
        let mut now = BTreeMap::new();
        now.insert("subject".to_string(), vec![b" [list] Hello".to_vec()]);
        now.insert("list-id".to_string(), vec![b" <l.example>".to_vec()]);
        now.insert("from".to_string(), vec![b" a@b.example".to_vec()]);
        let before = recipe.apply_headers(2, &now).expect("applies");
        assert_eq!(before.get("subject"), Some(&vec![b" Hello".to_vec()]));
        assert!(!before.contains_key("list-id"));
        assert_eq!(before.get("from"), now.get("from"));
        let body = recipe
            .apply_body(2, b"[list header]\r\nline 1\r\nline 2\r\n-- \r\nfooter\r\n")
            .expect("applies");
        assert_eq!(body, Some(b"line 1\r\nline 2\r\n".to_vec()));
        let past_end = Recipe::from_json(br#"{"b":[{"c":[1,9]}]}"#).expect("parses");
        assert!(matches!(
            past_end.apply_body(2, b"a\r\n"),
            Err(Dkim2Error::RecipeInvalid { m: 2, .. })
        ));
    }
}
