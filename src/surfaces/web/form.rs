//! HTML form bodies, as RFC 8058 receivers send them: `application/x-www-form-urlencoded`
//! and `multipart/form-data` (RFC 7578). Bodies here are a few hundred bytes, read whole and
//! bounded before they reach this parser, so it works on the whole body at once.

/// The fields of a form body of `content_type`; empty when the type is neither form type or
/// the body does not parse.
pub fn fields(content_type: &str, body: &[u8]) -> Vec<(String, String)> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-www-form-urlencoded" => urlencoded(body),
        "multipart/form-data" => match parameter(content_type, "boundary") {
            Some(boundary) => multipart(&boundary, body),
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Percent-encodes `value` for a query string or a path segment.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the first field called `name`, if any.
pub fn value<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// As [`fields`], with each value's bytes as sent: an uploaded message in Latin-1 must reach
/// the verifier unchanged, or its body hash would not match.
pub fn raw_fields(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    match parameter(content_type, "boundary") {
        Some(boundary)
            if content_type
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data") =>
        {
            multipart_raw(&boundary, body)
        }
        _ => fields(content_type, body)
            .into_iter()
            .map(|(n, v)| (n, v.into_bytes()))
            .collect(),
    }
}

/// `name=value&...`, with `+` for space and percent escapes.
pub fn urlencoded(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            (decode(name, true), decode(value, true))
        })
        .collect()
}

/// Percent-decodes `raw` (and `+` as space when `plus` is set); bad escapes stay as they are,
/// bytes that are not UTF-8 become U+FFFD.
pub fn decode(raw: &[u8], plus: bool) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' if plus => out.push(b' '),
            b'%' => match (hex(raw.get(i + 1)), hex(raw.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    (*b? as char)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// A parameter of a header value such as `multipart/form-data; boundary="x"`.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The text fields of a multipart body: each part's `Content-Disposition` name and content.
fn multipart(boundary: &str, body: &[u8]) -> Vec<(String, String)> {
    multipart_raw(boundary, body)
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

/// Each part of a multipart body: its `Content-Disposition` name and its bytes.
fn multipart_raw(boundary: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    // RFC 2046 §5.1.1: at most 70 characters, never empty.
    if boundary.is_empty() || boundary.len() > 70 {
        return Vec::new();
    }
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    let mut parts = split(body, delimiter.as_bytes()).into_iter().skip(1);
    for part in parts.by_ref() {
        // The close delimiter is the boundary followed by "--".
        if part.starts_with(b"--") {
            break;
        }
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(end) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..end]);
        let name = head.split("\r\n").find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field
                .trim()
                .eq_ignore_ascii_case("content-disposition")
                .then(|| parameter(value, "name"))
                .flatten()
        });
        if let Some(name) = name {
            out.push((name, part[end + 4..].to_vec()));
        }
    }
    out
}

/// `haystack` cut at every `needle`.
fn split<'a>(haystack: &'a [u8], needle: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = haystack;
    while let Some(i) = find(rest, needle) {
        out.push(&rest[..i]);
        rest = &rest[i + needle.len()..];
    }
    out.push(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uploaded_file_keeps_its_bytes() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.eml\"\r\n\
                     Content-Type: message/rfc822\r\n\r\nSubject: caf\xe9\r\n\r\nbody\r\n--b--\r\n";
        let raw = raw_fields("multipart/form-data; boundary=b", body);
        assert_eq!(
            raw,
            vec![("file".to_string(), b"Subject: caf\xe9\r\n\r\nbody".to_vec())]
        );
        // The text form of the same field is lossy, which is why the viewer does not use it.
        assert!(
            fields("multipart/form-data; boundary=b", body)[0]
                .1
                .contains('\u{fffd}')
        );
        assert_eq!(
            raw_fields("application/x-www-form-urlencoded", b"message=a%20b"),
            vec![("message".to_string(), b"a b".to_vec())]
        );
    }

    #[test]
    fn one_click_in_both_encodings() {
        let want = vec![("List-Unsubscribe".to_string(), "One-Click".to_string())];
        assert_eq!(
            fields(
                "application/x-www-form-urlencoded",
                b"List-Unsubscribe=One-Click"
            ),
            want
        );
        // What curl -F sends.
        let body = b"--------------------------abc123\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--------------------------abc123--\r\n";
        assert_eq!(
            fields(
                "multipart/form-data; boundary=------------------------abc123",
                body
            ),
            want
        );
    }

    #[test]
    fn percent_and_plus() {
        assert_eq!(decode(b"a%40b.test+x%2", true), "a@b.test x%2");
        assert_eq!(decode(b"a+b%zz%", false), "a+b%zz%");
    }

    /// Bytes that mean something to the parsers, mixed with any byte at all.
    fn hostile_bytes(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let special = proptest::sample::select(&b"&=%+0aF\r\n-\"; :bB"[..]);
        proptest::collection::vec(prop_oneof![3 => special, 1 => any::<u8>()], 0..max)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever a client sends, the parsers do not panic, and what they return is no
        /// larger than what was sent: no field from nothing, no value longer than its bytes.
        #[test]
        fn any_body_parses_within_its_bounds(
            body in hostile_bytes(300),
            boundary in proptest::sample::select(vec!["b", "--b", "", "\"b\"", "x;y"]),
            kind in 0..4usize,
        ) {
            let content_type = match kind {
                0 => "application/x-www-form-urlencoded".to_string(),
                1 => format!("multipart/form-data; boundary={boundary}"),
                2 => format!("Multipart/Form-Data;boundary={boundary};charset=x"),
                _ => String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned(),
            };
            let text = fields(&content_type, &body);
            let raw = raw_fields(&content_type, &body);
            proptest::prop_assert!(text.len() <= body.len() / 2 + 1);
            proptest::prop_assert!(raw.len() <= body.len() / 2 + 1);
            let raw_bytes: usize = raw.iter().map(|(n, v)| n.len() + v.len()).sum();
            proptest::prop_assert!(raw_bytes <= 3 * body.len());
            for (name, value) in &text {
                // A lossy U+FFFD takes 3 bytes for each byte it replaces, at most.
                proptest::prop_assert!(name.len() + value.len() <= 3 * body.len());
            }
            // Percent-decoding never makes a character out of nothing.
            proptest::prop_assert!(decode(&body, true).chars().count() <= body.len());
        }

        /// Fields encoded as a browser encodes them come back as they were, in both encodings.
        #[test]
        fn encoded_fields_come_back_whole(
            pairs in proptest::collection::vec(("[a-z]{1,8}", "\\PC{0,20}"), 0..6),
        ) {
            let percent = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
            let body: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={}", percent(v))).collect();
            let want: Vec<(String, String)> = pairs.clone();
            proptest::prop_assert_eq!(urlencoded(body.join("&").as_bytes()), want.clone());
            let mut multi = String::new();
            for (n, v) in &pairs {
                multi.push_str(&format!(
                    "--XyZzY\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n"
                ));
            }
            multi.push_str("--XyZzY--\r\n");
            let got = fields("multipart/form-data; boundary=XyZzY", multi.as_bytes());
            // A value holding the delimiter itself would end its part: not a browser's form.
            if !pairs.iter().any(|(_, v)| v.contains("--XyZzY")) {
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
