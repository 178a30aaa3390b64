//! Reading DATA (RFC 5321 §4.1.1.4, §4.5.2): dot-unstuffing, and an end only at CRLF.CRLF.
//!
//! smtp-proto's receiver also ended data at `CRLF . CR CR LF` (a second message, with a forged
//! From, could be smuggled inside the first) and did not see `.` right after the 354 as the
//! end of an empty message (the client then waited for ever). This one starts at the beginning
//! of a line, and only CR LF . CR LF, exactly, ends the data.
//!
//! Only CR LF starts a line. A bare LF does not, not even for dot-unstuffing: once it did, and
//! `LF . CR LF` (or `CR LF LF . CR LF`) ended the data, so a second transaction with a forged
//! author rode inside the first (the 2023 SMTP smuggling shape). Messages with a bare CR or LF
//! are refused after the end anyway, so what they store does not matter; where the end is,
//! does.

/// Where the reader is within the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// The beginning of a line: the very first byte, or just after CR LF.
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
                    At::Inside
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
            // A bare LF is not a line end (see the module's note).
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
            // Not an end: . CR CR LF, bare LF . LF, . LF, CR . CR LF, and every bare LF before
            // a . CR LF (the SEC Consult shapes).
            for smuggle in [
                &b"a\r\n.\r\r\nb"[..],
                b"a\n.\nb",
                b"a\r\n.\nb",
                b"a\r.\r\nb",
                b"a\n.\r\nb",
                b"a\r\n\n.\r\nb",
                b"a\r\n.\n.\r\nb",
                b"\n.\r\nb",
                b".\n.\r\nb",
                b"a\r\r\n\n.\r\nb",
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

    /// Where the data ends by RFC 5321: the first `. CR LF` that opens the data or follows
    /// CR LF; the index just after it.
    fn rfc_end(input: &[u8]) -> Option<usize> {
        if input.starts_with(b".\r\n") {
            return Some(3);
        }
        input
            .windows(5)
            .position(|w| w == b"\r\n.\r\n")
            .map(|i| i + 5)
    }

    /// Every string of up to 8 bytes of CR, LF, dot and text, whole and byte by byte.
    #[test]
    fn ends_exactly_where_the_rfc_does_for_every_short_input() {
        let alphabet = b"\r\n.a";
        for len in 0..=8u32 {
            for n in 0..4usize.pow(len) {
                let input: Vec<u8> = (0..len).map(|k| alphabet[n / 4usize.pow(k) % 4]).collect();
                for step in [1, 8] {
                    let (_, rest) = read(&input, step);
                    let ended_at = rest.map(|r| input.len() - r.len());
                    assert_eq!(ended_at, rfc_end(&input), "{input:?} step {step}");
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Over every mix of CR, LF, dots and text, in any split, the reader ends exactly
        /// where RFC 5321 ends the data, and nowhere else: no second transaction can start
        /// inside a message.
        #[test]
        fn ends_exactly_where_the_rfc_does(
            input in proptest::collection::vec(
                proptest::sample::select(&b"\r\n.a"[..]), 0..40),
            step in 1usize..9,
        ) {
            let (_, rest) = read(&input, step);
            let ended_at = rest.map(|r| input.len() - r.len());
            proptest::prop_assert_eq!(ended_at, rfc_end(&input));
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
