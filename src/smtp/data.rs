//! Reading DATA (RFC 5321 §4.1.1.4, §4.5.2): dot-unstuffing, and an end only at CRLF.CRLF.
//!
//! smtp-proto's receiver also ended data at `CRLF . CR CR LF` (a second message, with a forged
//! From, could be smuggled inside the first) and did not see `.` right after the 354 as the
//! end of an empty message (the client then waited for ever). This one starts at the beginning
//! of a line, and only CR LF . CR LF, exactly, ends the data.

/// Where the reader is within the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// The beginning of a line (also the very first byte).
    LineStart,
    /// Inside a line.
    Inside,
    /// Just after a CR inside a line.
    Cr,
    /// Just after a `.` at the beginning of a line.
    Dot,
    /// Just after `.` CR at the beginning of a line.
    DotCr,
}

/// A DATA reader: feed it what arrives; it says when the data has ended.
#[derive(Debug)]
pub struct DataReader {
    at: At,
}

impl Default for DataReader {
    fn default() -> Self {
        DataReader { at: At::LineStart }
    }
}

impl DataReader {
    /// A reader at the start of the data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes bytes from `bytes` into `sink` (dot-unstuffed; nothing is kept when `sink` is
    /// `None`) up to the end of the data; true when the end was reached, with `bytes` left at
    /// the first byte after it (a pipelined command).
    pub fn ingest(
        &mut self,
        bytes: &mut std::slice::Iter<'_, u8>,
        mut sink: Option<&mut Vec<u8>>,
    ) -> bool {
        let mut push = |b: &[u8]| {
            if let Some(s) = sink.as_deref_mut() {
                s.extend_from_slice(b);
            }
        };
        for &b in bytes.by_ref() {
            self.at = match (self.at, b) {
                (At::LineStart, b'.') => At::Dot,
                (At::Dot, b'\r') => At::DotCr,
                (At::DotCr, b'\n') => {
                    self.at = At::LineStart;
                    return true;
                }
                // ". CR" then anything but LF: the dot was stuffing; keep the CR, go on.
                (At::DotCr, other) => {
                    push(b"\r");
                    self.step(other, &mut push)
                }
                // A leading dot is removed: ".." keeps one, ".x" keeps "x" (§4.5.2).
                (At::Dot, other) => {
                    push(&[other]);
                    if other == b'\n' {
                        At::LineStart
                    } else {
                        At::Inside
                    }
                }
                (_, other) => self.step(other, &mut push),
            };
        }
        false
    }

    /// An ordinary byte: stored, and the position after it.
    fn step(&self, b: u8, push: &mut impl FnMut(&[u8])) -> At {
        push(&[b]);
        match (self.at, b) {
            (At::Cr | At::DotCr, b'\n') => At::LineStart,
            (_, b'\r') => At::Cr,
            // A bare LF also starts a line for dot-unstuffing, but never for the end: only
            // CR LF . CR LF ends the data. Messages with bare LF are refused after the end.
            (_, b'\n') => At::LineStart,
            _ => At::Inside,
        }
    }
}

/// Whether `message` has a CR not followed by LF, or an LF not preceded by CR.
pub fn has_bare_newline(message: &[u8]) -> bool {
    memchr::memchr2_iter(b'\r', b'\n', message).any(|i| match message[i] {
        b'\r' => message.get(i + 1) != Some(&b'\n'),
        _ => i == 0 || message[i - 1] != b'\r',
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; the stored data, and the bytes left after
    /// the end (None when the end never came).
    fn read(input: &[u8], step: usize) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut r = DataReader::new();
        let mut out = Vec::new();
        for (n, chunk) in input.chunks(step.max(1)).enumerate() {
            let mut it = chunk.iter();
            if r.ingest(&mut it, Some(&mut out)) {
                let mut rest: Vec<u8> = it.as_slice().to_vec();
                for later in input.chunks(step.max(1)).skip(n + 1) {
                    rest.extend_from_slice(later);
                }
                return (out, Some(rest));
            }
        }
        (out, None)
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf_in_any_split() {
        for step in [1, 2, 3, 7, 1000] {
            let (data, rest) = read(b"a\r\n..b\r\n.c\r\n.\r\nQUIT\r\n", step);
            assert_eq!(data, b"a\r\n.b\r\nc\r\n", "step {step}");
            assert_eq!(rest.as_deref(), Some(&b"QUIT\r\n"[..]), "step {step}");
            // Empty data: the end right after the 354.
            assert_eq!(
                read(b".\r\nNOOP\r\n", step),
                (Vec::new(), Some(b"NOOP\r\n".to_vec()))
            );
            // Not an end: . CR CR LF, bare LF . LF, . LF, CR . CR LF.
            for smuggle in [
                &b"a\r\n.\r\r\nb"[..],
                b"a\n.\nb",
                b"a\r\n.\nb",
                b"a\r.\r\nb",
            ] {
                let (_, rest) = read(smuggle, step);
                assert_eq!(
                    rest,
                    None,
                    "{:?} step {step}",
                    String::from_utf8_lossy(smuggle)
                );
            }
        }
    }

    #[test]
    fn bare_newlines_are_found() {
        assert!(!has_bare_newline(b"a\r\nb\r\n"));
        assert!(has_bare_newline(b"a\nb\r\n"));
        assert!(has_bare_newline(b"a\r.\r\n"));
        assert!(has_bare_newline(b"\n"));
        assert!(has_bare_newline(b"a\r"));
    }
}
