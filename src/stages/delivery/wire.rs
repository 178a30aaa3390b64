//! Message data as it travels inside SMTP's DATA command.

/// Dot-stuffs `message` (RFC 5321 §4.5.2) and appends the `.` line that ends DATA. A message
/// that does not end in CRLF gets one first, so the terminator stands on its own line.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    for &b in message {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn stuffs_leading_dots_and_terminates() {
        assert_eq!(
            super::dot_stuff(b".a\r\nb.\r\n..c\r\n"),
            b"..a\r\nb.\r\n...c\r\n.\r\n"
        );
        assert_eq!(super::dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
    }
}
