//! Writing tag-list header fields (DKIM-Signature, ARC-Message-Signature, ARC-Seal): the one
//! writer both DKIM signing and ARC sealing use, so the `k=v; ` layout, the folding and the
//! empty `b=` that the signature covers are written in one place.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// How tags are laid out in a field we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagLayout {
    /// Tags in the order given, folded between tags so no line passes 78 columns where avoidable.
    Folded,
    /// Tags in alphabetical order, one line, `; ` between: the open ARC test suite's layout,
    /// under which its expected signatures reproduce.
    SuiteCompatible,
}

/// A signature field being written: its tags in order, and `b=` last, empty until
/// [`TagList::signed`] fills it. The signed data always covers the field as
/// [`TagList::unsigned`] writes it (RFC 6376 §3.7, RFC 8617 §4.1.3), so `b=` can only be last
/// and only be empty there: the type leaves no other way.
#[derive(Debug, Clone)]
pub struct TagList {
    name: &'static str,
    layout: TagLayout,
    tags: Vec<(&'static str, String)>,
}

/// What a DKIM-Signature and an ARC-Message-Signature both carry after their first tag.
pub struct SignatureTags<'a> {
    /// `a=`, the key's algorithm (`rsa-sha256`, `ed25519-sha256`).
    pub algorithm: &'a str,
    /// `d=`, the signing domain.
    pub domain: &'a str,
    /// `s=`, the selector.
    pub selector: &'a str,
    /// `t=`, the signing time.
    pub time: u64,
    /// `h=`, the signed fields.
    pub headers: &'a [String],
    /// `bh=`, the body hash (raw bytes, written in base64).
    pub body_hash: &'a [u8],
}

impl TagList {
    /// An empty field `name` (tags are added with [`TagList::tag`]).
    pub fn new(name: &'static str, layout: TagLayout) -> Self {
        TagList {
            name,
            layout,
            tags: Vec::with_capacity(10),
        }
    }

    /// A DKIM-Signature or ARC-Message-Signature: `first` (`v=1`, or the ARC instance `i=N`),
    /// then `a c d s t h bh` as both write them, relaxed/relaxed.
    pub fn signature(
        name: &'static str,
        layout: TagLayout,
        first: (&'static str, String),
        s: &SignatureTags<'_>,
    ) -> Self {
        TagList::new(name, layout)
            .tag(first.0, first.1)
            .tag("a", s.algorithm)
            .tag("c", "relaxed/relaxed")
            .tag("d", s.domain)
            .tag("s", s.selector)
            .tag("t", s.time.to_string())
            .tag("h", s.headers.join(":"))
            .tag("bh", STANDARD.encode(s.body_hash))
    }

    /// Adds `tag=value` after the tags already there (`b` is added by the writer, never here).
    pub fn tag(mut self, tag: &'static str, value: impl Into<String>) -> Self {
        debug_assert_ne!(tag, "b", "b= is the writer's own");
        self.tags.push((tag, value.into()));
        self
    }

    /// The field with `b=` empty, with CRLF: what the signature covers.
    pub fn unsigned(&self) -> String {
        self.render("")
    }

    /// The finished field with `b=` the base64 of `signature`, with CRLF.
    pub fn signed(&self, signature: &[u8]) -> String {
        self.render(&STANDARD.encode(signature))
    }

    /// Renders `Name: t1=v1; t2=v2; b=B` with CRLF.
    fn render(&self, b: &str) -> String {
        let mut ordered: Vec<(&str, &str)> = self
            .tags
            .iter()
            .map(|(t, v)| (*t, v.as_str()))
            .chain([("b", b)])
            .collect();
        if self.layout == TagLayout::SuiteCompatible {
            ordered.sort_by(|a, b| a.0.cmp(b.0));
        }
        // Written in place, no string per tag: a fan-out renders two of these per member.
        let size: usize = ordered.iter().map(|(t, v)| t.len() + v.len() + 5).sum();
        let mut out = String::with_capacity(self.name.len() + size + ordered.len() + 3);
        out.push_str(self.name);
        out.push(':');
        let mut line_len = out.len();
        for (i, (tag, value)) in ordered.iter().enumerate() {
            let last = i + 1 == ordered.len();
            let piece_len = tag.len() + 1 + value.len() + usize::from(!last);
            if self.layout == TagLayout::Folded && i > 0 && line_len + 1 + piece_len > 78 {
                out.push_str("\r\n\t");
                line_len = 1;
            } else {
                out.push(' ');
                line_len += 1;
            }
            out.push_str(tag);
            out.push('=');
            out.push_str(value);
            if !last {
                out.push(';');
            }
            line_len += piece_len;
        }
        out.push_str("\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b_comes_last_empty_then_filled_and_long_lists_fold() {
        let t = TagList::new("ARC-Seal", TagLayout::Folded)
            .tag("i", "1")
            .tag("cv", "none")
            .tag("d", "x".repeat(70));
        assert_eq!(
            t.unsigned(),
            format!("ARC-Seal: i=1; cv=none;\r\n\td={}; b=\r\n", "x".repeat(70))
        );
        assert!(t.signed(b"\x01\x02").ends_with("\tb=AQI=\r\n"));
        let suite = TagList::new("ARC-Seal", TagLayout::SuiteCompatible)
            .tag("i", "1")
            .tag("a", "rsa-sha256");
        assert_eq!(suite.unsigned(), "ARC-Seal: a=rsa-sha256; b=; i=1\r\n");
    }
}
