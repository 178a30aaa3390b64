//! Writing display names into From, Reply-To and friends (RFC 5322 §3.2.5, RFC 2047).

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
    fn encodes_non_ascii() {
        assert_eq!(
            mailbox("José via List", "l@x"),
            "=?UTF-8?B?Sm9zw6kgdmlhIExpc3Q=?= <l@x>"
        );
        let long = "é".repeat(40);
        assert!(encoded_word(&long).split(' ').all(|w| w.len() <= 75));
    }
}
