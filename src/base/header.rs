//! Header fields arclist writes itself (notices, the list's copy, reports, DSNs): one encoder,
//! so that no value (a list name an owner typed, a subject a poster chose, a reply a remote
//! server gave) can end a field early and add fields or body text of its own. Whatever goes
//! in, a field comes out as one `Name: value CR LF` with no other CR or LF in it.

/// `Name: value\r\n`. CR and LF in `value` become spaces and other control characters are
/// dropped, so no value can smuggle in a field of its own; non-ASCII text is kept as it is
/// (for fields copied from a post that came with it).
pub fn field(name: &str, value: &str) -> String {
    format!("{name}: {}\r\n", clean(value))
}

/// `Name: text\r\n` for unstructured text arclist composes (a notice's Subject): as
/// [`field`], with non-ASCII text written as RFC 2047 encoded words, so the field is 7-bit.
pub fn text_field(name: &str, text: &str) -> String {
    let text = clean(text);
    if text.is_ascii() {
        format!("{name}: {text}\r\n")
    } else {
        format!("{name}: {}\r\n", encoded_word(text.trim()))
    }
}

/// `value` on one line: CR and LF turned into spaces, every other control character (tab
/// aside) dropped.
fn clean(value: &str) -> String {
    value
        .chars()
        .filter_map(|c| match c {
            '\r' | '\n' => Some(' '),
            '\t' => Some(c),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// `"Name" <address>` with the name quoted as RFC 5322 requires, or RFC 2047 encoded when it
/// is not ASCII. Control characters are dropped, so a name can never break the header.
pub fn mailbox(name: &str, address: &str) -> String {
    let shown = phrase(name);
    if shown.is_empty() {
        format!("<{address}>")
    } else {
        format!("{shown} <{address}>")
    }
}

/// A display name as a quoted string, or encoded words when it is not ASCII; empty for an
/// empty name.
pub fn phrase(name: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    if name.is_empty() {
        String::new()
    } else if name.is_ascii() {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        encoded_word(name)
    }
}

/// RFC 2047 B-encoding in UTF-8, split so no encoded word exceeds 75 characters.
pub fn encoded_word(text: &str) -> String {
    use base64::Engine;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        // 45 bytes of UTF-8 make 60 base64 characters, plus 12 for `=?UTF-8?B??=`.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_commas_and_quotes() {
        assert_eq!(mailbox("Doe, \"JJ\"", "l@x"), "\"Doe, \\\"JJ\\\"\" <l@x>");
        assert_eq!(mailbox("", "l@x"), "<l@x>");
        assert_eq!(mailbox("Evil\r\nBcc: v@x", "l@x"), "\"EvilBcc: v@x\" <l@x>");
    }

    #[test]
    fn no_value_can_add_a_field() {
        for hostile in [
            "Evil\r\nBcc: v@x",
            "a\rb",
            "a\nb",
            "a\u{0}\u{1b}b",
            "x\r\n\r\nbody",
        ] {
            for f in [field("Subject", hostile), text_field("Subject", hostile)] {
                assert!(f.ends_with("\r\n"), "{f:?}");
                let inner = &f[..f.len() - 2];
                assert!(!inner.contains(['\r', '\n']), "{f:?}");
                assert!(!inner.chars().any(|c| c.is_control() && c != '\t'), "{f:?}");
            }
        }
        assert_eq!(
            text_field("Subject", "Caf\u{e9}"),
            "Subject: =?UTF-8?B?Q2Fmw6k=?=\r\n"
        );
        assert_eq!(field("Subject", "Caf\u{e9}"), "Subject: Caf\u{e9}\r\n");
    }

    #[test]
    fn encodes_non_ascii() {
        assert_eq!(
            mailbox("José via List", "l@x"),
            "=?UTF-8?B?Sm9zw6kgdmlhIExpc3Q=?= <l@x>"
        );
        let long = "é".repeat(40);
        assert!(encoded_word(&long).split(' ').all(|w| w.len() <= 75));
    }
}
