use super::*;

/// The footed body as text, and the header fields changed.
type Footing = (String, Vec<(&'static str, String)>);

fn foot(m: &[u8], footer: &str) -> Result<Footing, FooterError> {
    let f = with_footer(&RawMessage::parse(m), footer)?;
    Ok((String::from_utf8_lossy(&f.body).into_owned(), f.fields))
}

#[test]
fn plain_text_gets_a_signature_separator() {
    let (body, fields) = foot(b"Subject: x\r\n\r\nhello", "list info").expect("added");
    assert_eq!(body, "hello\r\n-- \r\nlist info\r\n");
    assert!(fields.is_empty());
}

#[test]
fn quoted_printable_and_base64_text_are_decoded_footed_and_encoded_back() {
    let qp = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 ol=\r\ne\r\n";
    let (body, _) = foot(qp, "Unsubscribe: caf\u{e9}").expect("added");
    let decoded = String::from_utf8(encoding::qp_decode(body.as_bytes())).expect("utf-8");
    assert_eq!(
        decoded,
        "Caf\u{e9} ole\r\n-- \r\nUnsubscribe: caf\u{e9}\r\n"
    );
    let b64 = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8K\r\n";
    let (body, _) = foot(b64, "list").expect("added");
    let decoded = Encoding::Base64.decode(body.as_bytes()).expect("base64");
    assert_eq!(decoded, b"hello\n-- \r\nlist\r\n");
}

#[test]
fn a_non_ascii_footer_keeps_a_7bit_part_valid() {
    let (body, fields) = foot(b"Subject: x\r\n\r\nhi\r\n", "caf\u{e9}").expect("added");
    assert!(body.is_ascii(), "{body}");
    assert!(fields.contains(&("Content-Transfer-Encoding", "quoted-printable".into())));
    assert!(
        fields
            .iter()
            .any(|(n, v)| *n == "Content-Type" && v.contains("charset=utf-8"))
    );
    assert!(
        fields.contains(&("MIME-Version", "1.0".into())),
        "content fields need MIME-Version"
    );
    let latin = b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nhi\r\n";
    assert!(foot(latin, "caf\u{e9}").is_err());
}

#[test]
fn alternative_gets_the_footer_in_text_and_html_and_attachments_stay() {
    let m = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--outer--\r\n";
    let (body, _) = foot(m, "f").expect("mixed");
    assert!(
        body.contains("JVBERi0=\r\n--outer\r\nContent-Type: text/plain; charset=utf-8"),
        "{body}"
    );
    let alt = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body><p>hi</p></body></html>\r\n--b--\r\n";
    let (body, _) = foot(alt, "a <list> & caf\u{e9}").expect("alternative");
    // Both alternatives are quoted-printable now: the text one became so for the footer.
    assert!(
        body.contains(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
        ),
        "{body}"
    );
    let html = String::from_utf8(encoding::qp_decode(body.as_bytes())).expect("utf-8");
    assert!(html.contains("hi\r\n-- \r\na <list> & caf\u{e9}"), "{html}");
    assert!(
        html.contains("<hr>a &lt;list&gt; &amp; caf&#233;</div>\r\n</body>"),
        "{html}"
    );
    assert!(body.ends_with("\r\n--b--\r\n"), "{body}");
}

#[test]
fn signed_and_encrypted_posts_are_untouched() {
    let signed = b"Content-Type: multipart/signed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
    assert!(foot(signed, "f").is_err());
    let smime = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\nMIAG\r\n";
    assert!(foot(smime, "f").is_err());
}

#[test]
fn mixed_with_a_readable_first_part_gets_the_footer_inside_it() {
    let m = b"Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nhi\r\n--a\r\nContent-Type: text/html\r\n\r\n<html><body>hi</body></html>\r\n--a--\r\n\r\n--o\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--o--\r\n";
    let (body, _) = foot(m, "f").expect("footed");
    assert!(body.contains("hi\r\n-- \r\nf\r\n--a\r\n"), "{body}");
    assert!(
        body.contains("<hr>f</div>\r\n</body></html>\r\n--a--"),
        "the HTML alternative too: {body}"
    );
    assert!(
        !body.contains("Content-Disposition: inline"),
        "no footer part of its own: {body}"
    );
    assert!(
        body.contains("JVBERi0=\r\n--o--\r\n"),
        "the attachment stays: {body}"
    );
    // A first part that is an attachment: the footer gets a part of its own.
    let attached = b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\nnotes\r\n--o--\r\n";
    let (body, _) = foot(attached, "f").expect("footed");
    assert!(
        body.contains("notes\r\n--o\r\nContent-Type: text/plain; charset=utf-8"),
        "{body}"
    );
}

#[test]
fn a_footed_html_part_keeps_its_final_line_break() {
    let m = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<html><body>x</body></html>\r\n\r\n--b--\r\n";
    let (body, _) = foot(m, "f").expect("footed");
    assert!(body.contains("</body></html>\r\n\r\n--b--"), "{body}");
    let tight = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n";
    let (body, _) = foot(tight, "f").expect("footed");
    assert!(body.contains("x\r\n-- \r\nf\r\n--b--"), "{body}");
}
