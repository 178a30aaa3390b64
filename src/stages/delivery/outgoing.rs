//! The bytes of one copy as it goes out: header fields of its recipient's own (a member's
//! one-click fields and DKIM signature, a DKIM2 signature) in front of bytes every recipient
//! shares (the queued copy, from some offset on).
//!
//! Why two parts: a list of 10,000 members with one-click made each member's 4 KB copy twice
//! (the fields and the whole post into a buffer, then into a shared one) only to write it to
//! a socket once; the SMTP client writes the two parts with one vectored write instead (BDAT,
//! which Gmail, Microsoft and Postfix offer), or dot-stuffs them one after the other into its
//! DATA buffer. A copy made whole (a forwarding target's DKIM2-signed copy) is the
//! shared part alone.

use std::sync::Arc;

/// One copy: `own` (whole header fields, each ending in CRLF, or nothing) followed by
/// `shared[skip..]`.
#[derive(Debug, Clone)]
pub struct Outgoing {
    own: Box<[u8]>,
    shared: Arc<[u8]>,
    skip: usize,
}

impl Outgoing {
    /// The shared bytes as they are.
    pub fn shared(shared: Arc<[u8]>) -> Self {
        Outgoing {
            own: Box::default(),
            shared,
            skip: 0,
        }
    }

    /// `own` header fields in front of `shared` from `skip` on (clamped to its length).
    pub fn personal(own: Vec<u8>, shared: Arc<[u8]>, skip: usize) -> Self {
        let skip = skip.min(shared.len());
        Outgoing {
            own: own.into_boxed_slice(),
            shared,
            skip,
        }
    }

    /// The two parts, in order; either may be empty.
    pub fn parts(&self) -> [&[u8]; 2] {
        [&self.own, &self.shared[self.skip..]]
    }

    /// Bytes in all.
    pub fn len(&self) -> usize {
        self.own.len() + self.shared.len() - self.skip
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every byte is 7-bit.
    pub fn is_ascii(&self) -> bool {
        self.parts().iter().all(|p| p.is_ascii())
    }

    /// Whether the header (everything before the first empty line) is 7-bit. `own` is whole
    /// fields, so the empty line is in the shared part (or, with no header there, its start).
    pub fn header_is_ascii(&self) -> bool {
        let [own, shared] = self.parts();
        let end = if shared.starts_with(b"\r\n") {
            0
        } else {
            memchr::memmem::find(shared, b"\r\n\r\n").unwrap_or(shared.len())
        };
        own.is_ascii() && shared[..end].is_ascii()
    }
}

#[cfg(test)]
mod tests {
    use super::Outgoing;
    use std::sync::Arc;

    #[test]
    fn the_parts_read_as_one_copy() {
        let shared: Arc<[u8]> =
            Arc::from(&b"Instance: x\r\nSubject: hi\r\n\r\nK\xc3\xb6ln\r\n"[..]);
        let copy = Outgoing::personal(b"DKIM-Signature: a\r\n".to_vec(), shared.clone(), 13);
        assert_eq!(
            copy.parts().concat(),
            b"DKIM-Signature: a\r\nSubject: hi\r\n\r\nK\xc3\xb6ln\r\n"
        );
        assert_eq!(copy.len(), copy.parts().concat().len());
        assert!(!copy.is_ascii());
        assert!(copy.header_is_ascii());
        let utf8 = Outgoing::personal("X: \u{fc}\r\n".as_bytes().to_vec(), shared.clone(), 13);
        assert!(!utf8.header_is_ascii());
        let bodyless = Outgoing::personal(b"A: b\r\n".to_vec(), Arc::from(&b"\r\n\xc3"[..]), 0);
        assert!(bodyless.header_is_ascii());
        let whole = Outgoing::shared(shared.clone());
        assert_eq!(whole.parts().concat(), &shared[..]);
        assert!(
            whole.header_is_ascii(),
            "an 8-bit body is not an 8-bit header"
        );
        assert!(Outgoing::personal(Vec::new(), shared, 1000).is_empty());
    }
}
