//! The two DKIM2 header fields (§9 Message-Instance, §10 DKIM2-Signature): parsing them from
//! a message and writing them.
//!
//! The writer is dkim2's own small tag writer (the DKIM/ARC one is being reshaped elsewhere;
//! the two can merge later). It may fold anywhere, even inside a base64 value, because the
//! signature input strips every whitespace character from these two fields (§12.8).

use super::error::Dkim2Error;
use super::recipe::Recipe;
use crate::tags::{TagList, strip_fws};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A Message-Instance hash algorithm (§3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashAlgo {
    /// `sha256`.
    Sha256,
    /// `sha512` (-07).
    Sha512,
    /// Any other name, kept to report it (-09: a permanent error for its group).
    Unknown(String),
}

impl HashAlgo {
    /// Parses a name; names are case-sensitive (§2).
    pub fn parse(name: &str) -> Self {
        match name {
            "sha256" => HashAlgo::Sha256,
            "sha512" => HashAlgo::Sha512,
            other => HashAlgo::Unknown(other.to_string()),
        }
    }

    /// The name as written in `h=`.
    pub fn as_str(&self) -> &str {
        match self {
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
            HashAlgo::Unknown(n) => n,
        }
    }

    /// The digest, or None for an unknown name.
    pub(crate) fn digest(&self) -> Option<&'static aws_lc_rs::digest::Algorithm> {
        match self {
            HashAlgo::Sha256 => Some(&aws_lc_rs::digest::SHA256),
            HashAlgo::Sha512 => Some(&aws_lc_rs::digest::SHA512),
            HashAlgo::Unknown(_) => None,
        }
    }
}

/// One `alg:header-hash:body-hash` item of a Message-Instance `h=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashEntry {
    /// The algorithm.
    pub algo: HashAlgo,
    /// The header fields hash (§6.2).
    pub header: Vec<u8>,
    /// The body hash (§6.1).
    pub body: Vec<u8>,
}

/// A parsed Message-Instance (§9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceField {
    /// `m=`: 1 for the originator, one more for each hop that changed the message.
    pub m: u32,
    /// `h=`: groups separated by `|` (any group may pass), items in a group by `,` (every
    /// item must pass, -09).
    pub hashes: Vec<Vec<HashEntry>>,
    /// `r=`: how to recreate instance `m-1` from this one.
    pub recipe: Option<Recipe>,
}

/// How a hop links to the next (§10.5 to §10.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBinding {
    /// `mf=` and `rt=`: the envelope the hop sent with, as RFC 5321 paths with brackets.
    Envelope {
        /// MAIL FROM (`<>` for the null path).
        mail_from: String,
        /// RCPT TO, one or more.
        rcpt_to: Vec<String>,
    },
    /// `nd=`: the domain that signs next, on the same system (an imaginary hop).
    NextDomain(String),
}

/// One `selector:algorithm:signature` item of `s=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigValue {
    /// The selector (`selector._domainkey.d`).
    pub selector: String,
    /// `rsa-sha256`, `ed25519-sha256`, or a name this verifier does not know.
    pub algorithm: String,
    /// The signature bytes (empty while signing).
    pub signature: Vec<u8>,
}

/// A parsed DKIM2-Signature (§10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureField {
    /// `i=`: the hop number, 1 for the originator.
    pub i: u32,
    /// `m=`: the newest Message-Instance this hop signed.
    pub m: u32,
    /// `t=`: when it signed (Unix seconds).
    pub t: u64,
    /// `d=`: the signing domain.
    pub d: String,
    /// `mf=`/`rt=` or `nd=`.
    pub chain: ChainBinding,
    /// `s=`: groups separated by `|`, items in a group by `,`.
    pub s: Vec<Vec<SigValue>>,
    /// `n=`: a nonce.
    pub n: Option<String>,
    /// `f=`: flags (`feedback`, `feedhere`, `exploded`, …).
    pub f: Vec<String>,
}

fn missing(i: u32, tag: &str) -> Dkim2Error {
    Dkim2Error::SignatureTagMissing {
        i,
        tag: tag.to_string(),
    }
}

fn number<T: std::str::FromStr>(value: &str) -> Option<T> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 19 {
        return None;
    }
    value.parse().ok()
}

/// Decodes one base64 `mf=`/`rt=` item into its path (`<a@b>`, `<>`).
pub fn decode_path(b64: &str) -> Option<String> {
    let bytes = STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

/// Encodes a path for `mf=`/`rt=`, adding the angle brackets RFC 5321 paths have.
pub fn encode_path(path: &str) -> String {
    let path = path.trim();
    if path.starts_with('<') && path.ends_with('>') {
        STANDARD.encode(path)
    } else {
        STANDARD.encode(format!("<{path}>"))
    }
}

impl SignatureField {
    /// Parses a DKIM2-Signature value (after the colon).
    pub fn parse(value: &str) -> Result<Self, Dkim2Error> {
        let syntax = |i: u32, detail: &str| Dkim2Error::SignatureSyntax {
            i,
            detail: detail.to_string(),
        };
        let tags = TagList::parse(value).map_err(|e| syntax(0, &e.to_string()))?;
        let i: u32 = tags
            .get("i")
            .ok_or_else(|| syntax(0, "no i= tag"))
            .and_then(|v| {
                number(v)
                    .filter(|&i| i >= 1)
                    .ok_or_else(|| syntax(0, "bad i="))
            })?;
        let required = |tag: &str| tags.get(tag).ok_or_else(|| missing(i, tag));
        let m = number(required("m")?)
            .filter(|&m| m >= 1)
            .ok_or_else(|| syntax(i, "bad m="))?;
        let t = number(required("t")?).ok_or_else(|| syntax(i, "bad t="))?;
        let d = required("d")?.to_ascii_lowercase();
        if d.is_empty() || d.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err(syntax(i, "bad d="));
        }
        let chain = match (tags.get("mf"), tags.get("rt"), tags.get("nd")) {
            (Some(mf), Some(rt), None) => {
                let mail_from =
                    decode_path(&strip_fws(mf)).ok_or_else(|| syntax(i, "mf= is not base64"))?;
                let rcpt_to = strip_fws(rt)
                    .split(',')
                    .map(decode_path)
                    .collect::<Option<Vec<_>>>()
                    .filter(|r| !r.is_empty())
                    .ok_or_else(|| syntax(i, "rt= is not base64"))?;
                let is_path = |p: &String| p.starts_with('<') && p.ends_with('>');
                if !is_path(&mail_from) || !rcpt_to.iter().all(is_path) {
                    return Err(syntax(i, "mf=/rt= are not <paths>"));
                }
                ChainBinding::Envelope { mail_from, rcpt_to }
            }
            (None, None, Some(nd)) if !nd.is_empty() => {
                ChainBinding::NextDomain(nd.to_ascii_lowercase())
            }
            (None, _, None) => return Err(missing(i, "mf")),
            (_, None, None) => return Err(missing(i, "rt")),
            _ => return Err(syntax(i, "nd= together with mf=/rt=")),
        };
        let s = parse_groups(&strip_fws(required("s")?), |item| {
            let mut parts = item.splitn(3, ':');
            let (Some(selector), Some(algorithm), Some(b64)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            if selector.is_empty() || algorithm.is_empty() {
                return None;
            }
            Some(SigValue {
                selector: selector.to_string(),
                algorithm: algorithm.to_string(),
                signature: STANDARD.decode(b64).ok()?,
            })
        })
        .ok_or_else(|| syntax(i, "bad s="))?;
        let all: Vec<&SigValue> = s.iter().flatten().collect();
        for (k, v) in all.iter().enumerate() {
            if all[k + 1..]
                .iter()
                .any(|o| o.selector.eq_ignore_ascii_case(&v.selector))
            {
                return Err(Dkim2Error::DuplicateSelector(i));
            }
        }
        Ok(SignatureField {
            i,
            m,
            t,
            d,
            chain,
            s,
            n: tags.get("n").map(str::to_string),
            f: tags
                .get("f")
                .map(|f| f.split(',').map(|x| x.trim().to_string()).collect())
                .unwrap_or_default(),
        })
    }

    /// Writes the field (`DKIM2-Signature: …` with CRLF), folded; with `empty_values` the
    /// `s=` items end after `selector:algorithm:`, the form that is signed.
    pub fn render(&self, empty_values: bool) -> String {
        let mut tags = vec![
            ("i", self.i.to_string()),
            ("m", self.m.to_string()),
            ("t", self.t.to_string()),
            ("d", self.d.clone()),
        ];
        match &self.chain {
            ChainBinding::Envelope { mail_from, rcpt_to } => {
                tags.push(("mf", encode_path(mail_from)));
                let rt: Vec<String> = rcpt_to.iter().map(|r| encode_path(r)).collect();
                tags.push(("rt", rt.join(",")));
            }
            ChainBinding::NextDomain(nd) => tags.push(("nd", nd.clone())),
        }
        // Written straight into one string: a list renders this twice for every member.
        let mut groups = String::with_capacity(64 + 350 * usize::from(!empty_values));
        for (n, g) in self.s.iter().enumerate() {
            if n > 0 {
                groups.push('|');
            }
            for (k, v) in g.iter().enumerate() {
                if k > 0 {
                    groups.push(',');
                }
                groups.push_str(&v.selector);
                groups.push(':');
                groups.push_str(&v.algorithm);
                groups.push(':');
                if !empty_values {
                    STANDARD.encode_string(&v.signature, &mut groups);
                }
            }
        }
        tags.push(("s", groups));
        if let Some(n) = &self.n {
            tags.push(("n", n.clone()));
        }
        if !self.f.is_empty() {
            tags.push(("f", self.f.join(",")));
        }
        write_field("DKIM2-Signature", &tags)
    }
}

impl InstanceField {
    /// Parses a Message-Instance value (after the colon).
    pub fn parse(value: &str) -> Result<Self, Dkim2Error> {
        let syntax = |m: u32, detail: &str| Dkim2Error::InstanceSyntax {
            m,
            detail: detail.to_string(),
        };
        let tags = TagList::parse(value).map_err(|e| syntax(0, &e.to_string()))?;
        let m: u32 = tags
            .get("m")
            .ok_or_else(|| syntax(0, "no m= tag"))
            .and_then(|v| {
                number(v)
                    .filter(|&m| m >= 1)
                    .ok_or_else(|| syntax(0, "bad m="))
            })?;
        let h = tags.get("h").ok_or_else(|| syntax(m, "no h= tag"))?;
        let hashes = parse_groups(&strip_fws(h), |item| {
            let mut parts = item.split(':');
            let (Some(name), Some(hh), Some(bh), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            Some(HashEntry {
                algo: HashAlgo::parse(name),
                header: STANDARD.decode(hh).ok()?,
                body: STANDARD.decode(bh).ok()?,
            })
        })
        .ok_or_else(|| syntax(m, "bad h="))?;
        let names: Vec<&str> = hashes.iter().flatten().map(|e| e.algo.as_str()).collect();
        if (1..names.len()).any(|k| names[..k].contains(&names[k])) {
            return Err(Dkim2Error::DuplicateHash(m));
        }
        let recipe = match tags.get("r") {
            None => None,
            Some(r) => {
                let json = STANDARD
                    .decode(strip_fws(r))
                    .map_err(|_| Dkim2Error::RecipeJson {
                        m,
                        detail: "r= is not base64".into(),
                    })?;
                Some(
                    Recipe::from_json(&json)
                        .map_err(|detail| Dkim2Error::RecipeJson { m, detail })?,
                )
            }
        };
        Ok(InstanceField { m, hashes, recipe })
    }

    /// Writes the field (`Message-Instance: …` with CRLF), folded.
    pub fn render(&self) -> String {
        let groups: Vec<String> = self
            .hashes
            .iter()
            .map(|g| {
                g.iter()
                    .map(|e| {
                        format!(
                            "{}:{}:{}",
                            e.algo.as_str(),
                            STANDARD.encode(&e.header),
                            STANDARD.encode(&e.body)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        let mut tags = vec![("m", self.m.to_string()), ("h", groups.join("|"))];
        if let Some(r) = &self.recipe {
            tags.push(("r", STANDARD.encode(r.to_json())));
        }
        write_field("Message-Instance", &tags)
    }
}

/// Splits `a,b|c` into groups of items, parsing each; None if any item fails.
fn parse_groups<T>(value: &str, item: impl Fn(&str) -> Option<T>) -> Option<Vec<Vec<T>>> {
    value
        .split('|')
        .map(|g| g.split(',').map(&item).collect::<Option<Vec<T>>>())
        .collect()
}

/// The longest line this writer makes, folding inside long values where it must.
const LINE: usize = 76;

/// `Name: t1=v1; t2=v2;` with CRLF, each tag ending in `;` (as the corpus and mail-auth
/// write them), folded before a tag that would pass [`LINE`] columns and inside a value longer
/// than a line.
fn write_field(name: &str, tags: &[(&str, String)]) -> String {
    // Sized once: a list renders three of these for every member's copy.
    let size: usize = tags.iter().map(|(t, v)| t.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(name.len() + 3 + size + 3 * (size / (LINE - 1) + 1));
    out.push_str(name);
    out.push(':');
    let mut col = out.len();
    for (tag, value) in tags {
        // `tag=value;`, written in pieces: wrapping them one after the other is wrapping
        // the whole.
        let piece = tag.len() + value.len() + 2;
        if col + 1 + piece > LINE && col > name.len() + 1 {
            out.push_str("\r\n\t");
            col = 1;
        } else {
            out.push(' ');
            col += 1;
        }
        for part in [tag, "=", value.as_str(), ";"] {
            col = push_wrapped(&mut out, part, col);
        }
    }
    out.push_str("\r\n");
    out
}

/// Appends `text` from column `col`, breaking the line (CRLF TAB) before a character that
/// would start at column [`LINE`]; returns the column after it.
fn push_wrapped(out: &mut String, text: &str, mut col: usize) -> usize {
    if !text.is_ascii() {
        for ch in text.chars() {
            if col >= LINE {
                out.push_str("\r\n\t");
                col = 1;
            }
            out.push(ch);
            col += 1;
        }
        return col;
    }
    // ASCII (base64, domains, numbers): whole runs up to the line's end at once.
    let mut rest = text;
    while !rest.is_empty() {
        if col >= LINE {
            out.push_str("\r\n\t");
            col = 1;
        }
        let (run, after) = rest.split_at((LINE - col).min(rest.len()));
        out.push_str(run);
        col += run.len();
        rest = after;
    }
    col
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trips_through_render() {
        let sig = SignatureField {
            i: 2,
            m: 2,
            t: 1_740_000_000,
            d: "list.example".into(),
            chain: ChainBinding::Envelope {
                mail_from: "<bounces@list.example>".into(),
                rcpt_to: vec!["<a@b.example>".into(), "<c@d.example>".into()],
            },
            s: vec![vec![SigValue {
                selector: "sel".into(),
                algorithm: "rsa-sha256".into(),
                signature: vec![7; 256],
            }]],
            n: None,
            f: vec!["exploded".into()],
        };
        let text = sig.render(false);
        assert!(text.lines().all(|l| l.len() <= LINE), "{text}");
        let value = text.split_once(':').map(|(_, v)| v).unwrap_or_default();
        assert_eq!(SignatureField::parse(value), Ok(sig));
    }

    #[test]
    fn refuses_what_the_draft_refuses() {
        let bad = [
            (
                "m=1; t=1; d=a.example; mf=PD4=; rt=PGFAYi5leGFtcGxlPg==; s=s:ed25519-sha256:AA==;",
                "i=",
            ),
            (
                "i=1; t=1; d=a.example; mf=PD4=; rt=PGFAYi5leGFtcGxlPg==; s=s:ed25519-sha256:AA==;",
                "tag=m",
            ),
            (
                "i=1; m=1; t=1; d=a.example; rt=PGFAYi5leGFtcGxlPg==; s=s:ed25519-sha256:AA==;",
                "tag=mf",
            ),
            (
                "i=1; m=1; t=x; d=a.example; mf=PD4=; rt=PGFAYi5leGFtcGxlPg==; s=s:ed25519-sha256:AA==;",
                "bad t=",
            ),
            (
                "i=1; m=1; t=1; d=a.example; mf=PD4=; rt=PGFAYi5leGFtcGxlPg==; s=s:x:AA==,S:y:AA==;",
                "duplicate selector",
            ),
        ];
        for (value, want) in bad {
            let err = SignatureField::parse(value).expect_err(value).to_string();
            assert!(err.contains(want), "{value}: {err}");
        }
        let err = InstanceField::parse("m=2; h=sha256:AA==:AA==,sha256:AA==:AA==;").unwrap_err();
        assert_eq!(err, Dkim2Error::DuplicateHash(2));
    }
}
