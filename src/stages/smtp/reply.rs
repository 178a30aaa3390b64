//! The replies arclist sends, with RFC 3463 enhanced status codes.

/// A reply line: code, enhanced status, text.
pub fn line(code: u16, status: &str, text: &str) -> String {
    format!("{code} {status} {text}\r\n")
}

/// The EHLO/LHLO reply advertising our extensions.
pub fn ehlo(
    hostname: &str,
    peer: &str,
    max_size: usize,
    starttls: bool,
    trusted_relay: bool,
) -> String {
    let mut caps = vec![
        format!("{hostname} greets {peer}"),
        "PIPELINING".to_string(),
        format!("SIZE {max_size}"),
        "8BITMIME".to_string(),
        "SMTPUTF8".to_string(),
        "ENHANCEDSTATUSCODES".to_string(),
        "CHUNKING".to_string(),
    ];
    if starttls {
        caps.push("STARTTLS".to_string());
    }
    if trusted_relay {
        // Offered to `trusted_relays` only (src/stages/smtp/forwarded.rs).
        caps.push("XCLIENT NAME ADDR PROTO HELO".to_string());
        caps.push("XFORWARD NAME ADDR PROTO HELO SOURCE".to_string());
    }
    let last = caps.len() - 1;
    caps.iter()
        .enumerate()
        .map(|(i, c)| format!("250{}{c}\r\n", if i == last { ' ' } else { '-' }))
        .collect()
}
