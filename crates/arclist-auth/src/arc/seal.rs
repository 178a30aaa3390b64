//! Adding the next ARC set (RFC 8617 §5.1).

use super::chain::{MAX_SETS, collect_sets};
use super::seal_data;
use super::verify::{ArcReport, ArcVerdict};
use crate::canon::{Canon, HashAlg, body_hash};
use crate::dkim::{DkimSigner, append_unsigned, sign_field};
use crate::header_format::{SignatureTags, TagLayout, TagList};
use crate::message::RawMessage;
use crate::signing_key::SigningKey;
use std::sync::Arc;

/// Why no set was added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealRefusal {
    /// Verification hit a DNS failure: sealing now would record a guess (RFC 8617 §5.2).
    #[error("not sealing: ARC verification had a temporary DNS error ({0}); retry later")]
    Temporary(String),
    /// The newest seal already says cv=fail; the chain must not be extended (§5.1.2).
    #[error("not sealing: the newest ARC-Seal already says cv=fail")]
    ChainAlreadyFailed,
    /// The chain already has 50 sets.
    #[error("not sealing: the chain already has {MAX_SETS} sets")]
    TooManySets,
    /// Signing itself failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The three fields of a new set, each a complete field with CRLF.
#[derive(Debug, Clone)]
pub struct SealedSet {
    /// The instance written.
    pub instance: u32,
    /// `ARC-Seal: ...`.
    pub seal: String,
    /// `ARC-Message-Signature: ...`.
    pub ams: String,
    /// `ARC-Authentication-Results: ...`.
    pub aar: String,
}

impl SealedSet {
    /// The message with the set prepended (seal on top).
    pub fn prepend_to(&self, message: &[u8]) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(message.len() + self.seal.len() + self.ams.len() + self.aar.len());
        out.extend_from_slice(self.seal.as_bytes());
        out.extend_from_slice(self.ams.as_bytes());
        out.extend_from_slice(self.aar.as_bytes());
        out.extend_from_slice(message);
        out
    }
}

/// Seals messages as one ADMD.
#[derive(Clone)]
pub struct ArcSealer {
    key: Arc<SigningKey>,
    domain: String,
    selector: String,
    layout: TagLayout,
    signed_headers: Option<Vec<String>>,
}

impl ArcSealer {
    /// A sealer for `domain` with `selector`.
    pub fn new(key: Arc<SigningKey>, domain: &str, selector: &str) -> Self {
        ArcSealer {
            key,
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_string(),
            layout: TagLayout::Folded,
            signed_headers: None,
        }
    }

    /// Writes tags the open ARC test suite's way (alphabetical, unfolded).
    pub fn with_layout(mut self, layout: TagLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Signs exactly these fields in the AMS instead of the recommended set.
    pub fn with_signed_headers(mut self, h: Vec<String>) -> Self {
        self.signed_headers = Some(h);
        self
    }

    /// Adds the next set to `message` given its verification `report`. `aar_payload` is the
    /// AAR after `i=N; `: an authserv-id and our results (`lists.example.org; spf=pass ...`).
    pub fn seal(
        &self,
        message: &[u8],
        report: &ArcReport,
        aar_payload: &str,
        now: u64,
    ) -> Result<SealedSet, SealRefusal> {
        let cv = match report.verdict {
            ArcVerdict::Temperror => return Err(SealRefusal::Temporary(report.reason.clone())),
            ArcVerdict::None => "none",
            ArcVerdict::Pass => "pass",
            ArcVerdict::Fail => "fail",
        };
        let set = self.seal_with_cv(message, report, cv, aar_payload, now)?;
        crate::observe::observer().arc_sealed();
        Ok(set)
    }

    /// As [`ArcSealer::seal`] but with the chain verdict given (the open ARC test suite takes it
    /// from the message's own Authentication-Results).
    pub fn seal_with_cv(
        &self,
        message: &[u8],
        report: &ArcReport,
        cv: &str,
        aar_payload: &str,
        now: u64,
    ) -> Result<SealedSet, SealRefusal> {
        if report.newest_cv.as_deref() == Some("fail") {
            return Err(SealRefusal::ChainAlreadyFailed);
        }
        let parsed = RawMessage::parse(message);
        let existing = match collect_sets(&parsed) {
            Ok(s) => s.len() as u32,
            // A structurally broken chain: the new set (cv=fail) takes the next number after
            // the seals present, and its seal covers only itself.
            Err(_) => parsed.fields("ARC-Seal").count() as u32,
        };
        if existing >= MAX_SETS {
            return Err(SealRefusal::TooManySets);
        }
        let instance = existing + 1;
        let aar = format!("ARC-Authentication-Results: i={instance}; {aar_payload}\r\n");
        let h = self
            .signed_headers
            .clone()
            .unwrap_or_else(|| DkimSigner::header_list(&parsed));
        let (bh, _) = body_hash(HashAlg::Sha256, Canon::Relaxed, parsed.body, None);
        let alg = self.key.algorithm().as_str();
        let ams_tags = TagList::signature(
            "ARC-Message-Signature",
            self.layout,
            ("i", instance.to_string()),
            &SignatureTags {
                algorithm: alg,
                domain: &self.domain,
                selector: &self.selector,
                time: now,
                headers: &h,
                body_hash: &bh,
            },
        );
        let ams =
            sign_field(&ams_tags, &parsed.headers, &h, &self.key).map_err(SealRefusal::Signing)?;

        let seal_tags = TagList::new("ARC-Seal", self.layout)
            .tag("i", instance.to_string())
            .tag("a", alg)
            .tag("t", now.to_string())
            .tag("cv", cv)
            .tag("d", self.domain.as_str())
            .tag("s", self.selector.as_str());
        let unsigned_seal = seal_tags.unsigned();
        // Re-parse the message with the new AAR and AMS in place to collect all sets in order.
        let mut with_set = Vec::with_capacity(message.len() + 4096);
        with_set.extend_from_slice(unsigned_seal.as_bytes());
        with_set.extend_from_slice(ams.as_bytes());
        with_set.extend_from_slice(aar.as_bytes());
        with_set.extend_from_slice(&message[..parsed.header_len(message)]);
        let reparsed = RawMessage::parse(&with_set);
        let sets = collect_sets(&reparsed).unwrap_or_default();
        let only_own = cv == "fail" || sets.len() != instance as usize;
        let data = if only_own {
            own_set_data(&aar, &ams, &unsigned_seal)
        } else {
            seal_data(&sets, instance as usize, unsigned_seal.as_bytes(), false)
        };
        let sig = self.key.sign(&data).map_err(SealRefusal::Signing)?;
        let seal = seal_tags.signed(&sig);
        Ok(SealedSet {
            instance,
            seal,
            ams,
            aar,
        })
    }
}

/// Seal data for a set whose seal covers only itself (cv=fail, §5.1.2).
fn own_set_data(aar: &str, ams: &str, unsigned_seal: &str) -> Vec<u8> {
    let mut data = Vec::new();
    crate::canon::header(Canon::Relaxed, aar.as_bytes(), &mut data);
    crate::canon::header(Canon::Relaxed, ams.as_bytes(), &mut data);
    append_unsigned(Canon::Relaxed, unsigned_seal.as_bytes(), &mut data);
    data
}
