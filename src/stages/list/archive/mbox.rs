//! mboxrd (the `From `-quoting variant that round-trips): what the archive's month files and
//! `arclist archive export` write, and what `arclist archive import` reads (Mailman 2
//! pipermail, Mailman 3 HyperKitty and Google Takeout files are all mbox).

/// Appends one message to an mboxrd file: the `From ` separator line, the message with LF line
/// ends and every line matching `>*From ` quoted with one more `>`, and a blank line.
pub fn append(out: &mut Vec<u8>, sender: &str, date: u64, message: &[u8]) {
    let sender = sender
        .split_whitespace()
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("MAILER-DAEMON");
    out.extend_from_slice(format!("From {sender} {}\n", asctime(date)).as_bytes());
    for line in message.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let unquoted = line.iter().position(|b| *b != b'>').unwrap_or(line.len());
        if line[unquoted..].starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    // `split` gives an empty last line for a message ending in a line end: one blank line
    // written already; the separator needs one more only when the message had no final end.
    if !message.ends_with(b"\n") {
        out.push(b'\n');
    }
}

/// The `asctime` date a `From ` line carries (UTC).
fn asctime(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let (y, m, d) = crate::state::store::archive::civil(days);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1).clamp(0, 11) as usize];
    let s = t % 86_400;
    format!(
        "{weekday} {month} {d:2} {:02}:{:02}:{:02} {y}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The messages of an mbox file, each with CRLF line ends and its `>From ` quoting undone
/// (mboxrd; a `>From ` line an mboxo writer left loses one `>` too, the usual reading).
/// Text before the first `From ` line is not a message and is skipped.
pub fn split(file: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in file.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"From ") && previous_blank {
            if let Some(done) = current.take() {
                out.push(finish(done));
            }
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        previous_blank = line.is_empty();
        let Some(message) = current.as_mut() else {
            continue;
        };
        let quotes = line.iter().position(|b| *b != b'>').unwrap_or(line.len());
        let line = if quotes > 0 && line[quotes..].starts_with(b"From ") {
            &line[1..]
        } else {
            line
        };
        message.extend_from_slice(line);
        message.extend_from_slice(b"\r\n");
    }
    if let Some(done) = current {
        out.push(finish(done));
    }
    out
}

/// A message read from an mbox, without the blank line that separated it from the next.
fn finish(mut message: Vec<u8>) -> Vec<u8> {
    while message.ends_with(b"\r\n\r\n") {
        message.truncate(message.len() - 2);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines_round_trip() {
        let one = b"Subject: a\r\n\r\nFrom here\r\n>From there\r\nend\r\n".to_vec();
        let two = b"Subject: b\r\n\r\nsecond\r\n".to_vec();
        let mut file = Vec::new();
        append(&mut file, "a@x", 0, &one);
        append(&mut file, "b@x", 86_400 * 365, &two);
        let text = String::from_utf8_lossy(&file);
        assert!(text.starts_with("From a@x Thu Jan  1 00:00:00 1970\n"));
        assert!(text.contains("\n>From here\n>>From there\n"));
        assert!(text.contains("From b@x Fri Jan  1 00:00:00 1971\n"));
        assert_eq!(split(&file), vec![one, two]);
    }
}
