//! Building the list's copy of a post from the original's exact bytes: drop some fields, change
//! some, add ours on top; every untouched field keeps its bytes, so signatures over them survive.

use crate::auth::message::RawMessage;
use crate::base::header::field;

/// A set of header edits applied in one pass.
#[derive(Debug, Default)]
pub struct Rewrite {
    remove: Vec<String>,
    replace: Vec<(String, String)>,
    prepend: Vec<String>,
    body: Option<Vec<u8>>,
}

impl Rewrite {
    /// No edits yet.
    pub fn new() -> Self {
        Rewrite::default()
    }

    /// Drops every field named `name`.
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.remove.push(name.to_ascii_lowercase());
        self
    }

    /// Replaces the first field named `name` with `Name: value` in place (or adds it on top
    /// when absent) and drops any further ones.
    pub fn replace(&mut self, name: &str, value: &str) -> &mut Self {
        self.replace.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds `Name: value` above all original fields (in the order added).
    pub fn prepend(&mut self, name: &str, value: &str) -> &mut Self {
        self.prepend.push(field(name, value));
        self
    }

    /// Replaces the body.
    pub fn body(&mut self, body: Vec<u8>) -> &mut Self {
        self.body = Some(body);
        self
    }

    /// Applies the edits to `message` (CRLF wire form).
    pub fn apply(&self, message: &[u8]) -> Vec<u8> {
        let parsed = RawMessage::parse(message);
        let mut out = Vec::with_capacity(message.len() + 1024);
        for f in &self.prepend {
            out.extend_from_slice(f.as_bytes());
        }
        let mut replaced = vec![false; self.replace.len()];
        for h in &parsed.headers {
            let name = String::from_utf8_lossy(h.name).to_ascii_lowercase();
            if self.remove.contains(&name) {
                continue;
            }
            if let Some(i) = self
                .replace
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(&name))
            {
                if !replaced[i] {
                    replaced[i] = true;
                    out.extend_from_slice(field(&self.replace[i].0, &self.replace[i].1).as_bytes());
                }
                continue;
            }
            out.extend_from_slice(h.raw);
        }
        for (i, (n, v)) in self.replace.iter().enumerate() {
            if !replaced[i] {
                out.extend_from_slice(field(n, v).as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body.as_deref().unwrap_or(parsed.body));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_untouched_bytes() {
        let msg =
            b"From: a@b\r\nSubject:  odd   spacing\r\nReturn-Path: <x>\r\nX: 1\r\n\r\nbody\r\n";
        let out = Rewrite::new()
            .remove("return-path")
            .replace("From", "list@l")
            .prepend("List-Id", "<l>")
            .apply(msg);
        assert_eq!(
            out,
            b"List-Id: <l>\r\nFrom: list@l\r\nSubject:  odd   spacing\r\nX: 1\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn values_cannot_inject_headers() {
        assert_eq!(
            field("Reply-To", "a@b\r\nBcc: victim@x"),
            "Reply-To: a@b  Bcc: victim@x\r\n"
        );
    }
}
