//! Stage 3, 4 and 7 of a post's way through arclist: who really sent it (SPF, DKIM, DMARC and
//! the upstream ARC chain, with a verdict for every hop), and signing (DKIM and the next ARC
//! set). The project owns this engine; `docs/architecture.md` says why.
//!
//! A crate of its own: it knows nothing of the server around it (which re-exports it as its
//! `auth` module), and tells what it counts to an [`observe::Observer`] the embedder installs.
//!
//! The flow of [`Authenticator::verify`]: split the message's exact bytes, fetch every key the
//! signatures name at once, hash each body canonicalization once, verify DKIM and ARC from
//! those, then SPF and DMARC. Signing lives in [`dkim::DkimSigner`] and [`arc::ArcSealer`].

// Every public item says why it exists; keep it so.
#![warn(missing_docs)]

pub mod arc;
pub mod canon;
pub mod dkim;
pub mod dkim2;
pub mod dmarc;
pub mod dmarc_report;
pub mod dns;
pub mod header_format;
pub mod key_lookup;
pub mod key_record;
mod legacy_rsa;
pub mod message;
pub mod observe;
pub mod results;
pub mod signing_key;
pub mod spf;
pub mod tags;
pub mod trust;

use arc::{ArcReport, ArcVerdict};
use canon::BodyHashCache;
use dkim::DkimOutcome;
use dmarc::{DmarcOutcome, DmarcVerdict};
use dns::Resolver;
use key_lookup::KeyStore;
use message::RawMessage;
use results::{AuthResults, MethodResult};
use serde::{Deserialize, Serialize};
use spf::{SpfEvaluator, SpfOutcome};
use std::net::IpAddr;

/// The SMTP envelope a message arrived with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The client's address.
    pub ip: IpAddr,
    /// The EHLO/HELO name.
    pub helo: String,
    /// The MAIL FROM address (empty for the null sender).
    pub mail_from: String,
}

/// Everything arclist concluded about one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    /// One outcome per DKIM-Signature, top first.
    pub dkim: Vec<DkimOutcome>,
    /// SPF, when the envelope was known.
    pub spf: Option<SpfOutcome>,
    /// DMARC for the RFC5322.From domain.
    pub dmarc: DmarcOutcome,
    /// The upstream ARC chain.
    pub arc: ArcReport,
    /// The DKIM2 chain, checked against the envelope the message arrived with
    /// ([`Authenticator::verify_dkim2`]); `None` when the message has no DKIM2 fields, so a
    /// message without them gets no `dkim2=none` in our results. Spooled verdicts written
    /// before DKIM2 read as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim2: Option<dkim2::Dkim2Report>,
}

impl Verification {
    /// True when a temporary DNS error leaves the outcome open (the ARC chain, or DMARC with an
    /// aligned identifier unchecked): the message should be retried, not judged or sealed.
    pub fn has_temporary_error(&self) -> bool {
        // A temporary error on an unaligned signature, or on SPF for another domain, cannot
        // change the outcome: it is recorded as temperror and the message goes on. DMARC says
        // temperror itself when an aligned identifier could not be checked.
        self.arc.verdict == ArcVerdict::Temperror || self.dmarc.verdict == DmarcVerdict::Temperror
    }

    /// Our Authentication-Results for this message (also the payload of the AAR we seal).
    pub fn auth_results(&self, authserv_id: &str, envelope: Option<&Envelope>) -> AuthResults {
        let mut results = Vec::new();
        if let Some(spf) = &self.spf {
            let r = MethodResult::new("spf", spf.mail_from.as_str());
            results.push(if envelope.is_some_and(|e| e.mail_from.is_empty()) {
                r.prop("smtp.helo", spf.helo_domain.clone())
            } else {
                r.prop("smtp.mailfrom", spf.mail_from_domain.clone())
            });
        }
        if self.dkim.is_empty() {
            results.push(MethodResult::new("dkim", "none"));
        }
        for d in &self.dkim {
            let mut r = MethodResult::new("dkim", d.verdict.as_str());
            if let Some(bits) = d.key_bits {
                r = r.comment(format!("{bits}-bit key"));
            }
            if !d.reason.is_empty() {
                r.reason = Some(d.reason.clone());
            }
            if !d.domain.is_empty() {
                r = r
                    .prop("header.d", d.domain.clone())
                    .prop("header.s", d.selector.clone());
            }
            if !d.auid.is_empty() {
                r = r.prop("header.i", d.auid.clone());
            }
            if !d.header_b.is_empty() {
                r = r.prop("header.b", d.header_b.clone());
            }
            results.push(r);
        }
        let mut arc = MethodResult::new("arc", self.arc.verdict.as_str());
        if self.arc.instances > 0 {
            let sealers: Vec<String> = self
                .arc
                .hops
                .iter()
                .map(|h| format!("i={} d={}", h.instance, h.domain))
                .collect();
            arc = arc.comment(sealers.join(", "));
        }
        if !self.arc.reason.is_empty() {
            arc.reason = Some(self.arc.reason.clone());
        }
        if let Some(op) = self.arc.oldest_pass {
            arc = arc.prop("header.oldest-pass", op.to_string());
        }
        if let Some(e) = envelope {
            arc = arc.prop("smtp.remote-ip", e.ip.to_string());
        }
        results.push(arc);
        let mut dmarc = MethodResult::new("dmarc", self.dmarc.verdict.as_str());
        if let Some(record) = &self.dmarc.record {
            // Which record applied: with the tree walk it need not be the author domain's.
            dmarc = dmarc.comment(format!(
                "p={} dis={}{} record={}",
                self.dmarc.policy.as_str(),
                self.dmarc.disposition.as_str(),
                if record.testing { " t=y" } else { "" },
                record.domain
            ));
        }
        if !self.dmarc.from_domain.is_empty() {
            dmarc = dmarc.prop("header.from", self.dmarc.from_domain.clone());
        }
        if self.dmarc.record.is_some() {
            // The policy that applied (RFC 9989 discovery), for the next hop's ARC reader.
            dmarc = dmarc.prop("policy.dmarc", self.dmarc.policy.as_str().to_string());
        }
        results.push(dmarc);
        if let Some(report) = &self.dkim2 {
            results.push(dkim2_result(report));
        }
        AuthResults {
            authserv_id: authserv_id.to_string(),
            version: None,
            results,
        }
    }
}

/// Distinct DKIM2 keys ([`Authenticator::verify_dkim2`]) looked up for one message: a chain
/// of ten hops with two selectors each. A hop whose key is past it fails ("does not exist").
pub const MAX_DKIM2_KEYS: usize = 20;

/// Verifies messages against one resolver (and SPF evaluator, when envelopes are known).
#[derive(Clone)]
pub struct Authenticator {
    resolver: Resolver,
    spf: Option<SpfEvaluator>,
    /// Key names that failed lately, shared by every clone.
    silent: key_lookup::SilentKeys,
}

/// How long a key whose lookup failed temporarily is not asked again, unless configured.
pub const SILENT_KEY_DEFAULT: std::time::Duration = std::time::Duration::from_secs(60);

impl Authenticator {
    /// An authenticator; without an SPF evaluator, SPF is not checked.
    pub fn new(resolver: Resolver, spf: Option<SpfEvaluator>) -> Self {
        Authenticator {
            resolver,
            spf,
            silent: key_lookup::SilentKeys::new(SILENT_KEY_DEFAULT),
        }
    }

    /// A key whose lookup failed temporarily is a temporary error at once for `period`
    /// after (zero: asked every time), so a silent key costs one timeout per period.
    pub fn with_silent_key_period(mut self, period: std::time::Duration) -> Self {
        self.silent = key_lookup::SilentKeys::new(period);
        self
    }

    /// The resolver in use.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// Verifies `message` (CRLF wire form). `now` is the Unix time for `x=` checks.
    pub async fn verify(
        &self,
        message: &[u8],
        envelope: Option<&Envelope>,
        now: u64,
    ) -> Verification {
        let parsed = RawMessage::parse(message);
        let mut wanted = dkim::wanted_keys(&parsed);
        wanted.extend(arc::wanted_keys(&parsed));
        // SPF and the key lookups run side by side, inside this future: dropping it (a
        // stopping server) ends both, where a spawned SPF task would run on alone.
        let spf = async {
            match (envelope, &self.spf) {
                (Some(e), Some(spf)) => Some(spf.check(e.ip, &e.helo, &e.mail_from).await),
                _ => None,
            }
        };
        let (spf, keys) = tokio::join!(
            spf,
            KeyStore::fetch_remembering(&self.resolver, &self.silent, wanted)
        );
        let (dkim, arc) = verify_with_keys(&parsed, &keys, now);
        let from = dmarc::author_domain(message).ok();
        let dmarc = dmarc::evaluate(&self.resolver, from.as_deref(), &dkim, spf.as_ref()).await;
        Verification {
            dkim,
            spf,
            dmarc,
            arc,
            dkim2: None,
        }
    }

    /// Verifies the DKIM2 chain of `message` against the transaction it arrived in (the top
    /// hop's `mf=`/`rt=` must name it, so a copy replayed to other recipients fails; `None`
    /// for a message seen outside a transaction, as pasted into the chain viewer), with
    /// timestamps judged at `received_at`. `None` when the message has no DKIM2 fields: no
    /// DNS is asked then.
    pub async fn verify_dkim2(
        &self,
        message: &[u8],
        envelope: Option<&dkim2::Dkim2Envelope>,
        received_at: u64,
    ) -> Option<dkim2::Dkim2Report> {
        let parsed = RawMessage::parse(message);
        let has_fields = parsed
            .headers
            .iter()
            .any(|h| h.is("DKIM2-Signature") || h.is("Message-Instance"));
        if !has_fields {
            return None;
        }
        // Anyone who reaches the SMTP listener chooses these names: at most MAX_DKIM2_KEYS
        // distinct keys are asked, in the message's order; a hop whose key was not asked fails.
        let mut wanted: Vec<(String, String)> = Vec::new();
        for key in dkim2::wanted_keys(&parsed) {
            if wanted.len() < MAX_DKIM2_KEYS && !wanted.contains(&key) {
                wanted.push(key);
            }
        }
        let keys = KeyStore::fetch_remembering(&self.resolver, &self.silent, wanted).await;
        let time = dkim2::TimeCheck::At(received_at);
        Some(dkim2::verify_dkim2_with_keys(
            &parsed, &keys, envelope, time,
        ))
    }
}

/// The `dkim2` statement of our Authentication-Results. No authres method is registered for
/// DKIM2 yet; this follows the spelling the dkim2 working group's implementations share
/// (draft-ietf-dkim-dkim2-spec-09 results; Stalwart's mail-auth 0.15.1 writes the same):
/// `dkim2=RESULT header.d=D header.i=I`, naming the originator's hop (`i=1`) when the chain
/// passed and the first hop that did not otherwise. The reason (§14's words) goes in the
/// comment, once, as the other implementations put it.
fn dkim2_result(report: &dkim2::Dkim2Report) -> MethodResult {
    let mut r = MethodResult::new("dkim2", report.verdict.as_str());
    // Hops are reported newest first; the originator's is the last.
    let hop = if report.verdict == dkim2::Dkim2Verdict::Pass {
        report.hops.last()
    } else {
        (report.hops.iter().rev())
            .find(|h| h.verdict != dkim2::Dkim2Verdict::Pass)
            .or(report.hops.last())
    };
    let n = report.hops.len();
    let mut comment = format!("{n} hop{}", if n == 1 { "" } else { "s" });
    if report.original_verified {
        comment.push_str(", original verified");
    }
    if !report.reason.is_empty() {
        comment = format!("{}; {comment}", report.reason);
    }
    r = r.comment(comment);
    if let Some(h) = hop {
        r = r
            .prop("header.d", h.domain.clone())
            .prop("header.i", h.i.to_string());
    }
    r
}

/// The synchronous heart of verification: DKIM and ARC given the keys. Unit tests and benches
/// call it with injected keys.
pub fn verify_with_keys(
    parsed: &RawMessage<'_>,
    keys: &KeyStore,
    now: u64,
) -> (Vec<DkimOutcome>, ArcReport) {
    let mut bodies = BodyHashCache::new(parsed.body);
    let dkim = dkim::verify_dkim_signatures(parsed, &mut bodies, keys, now);
    let arc = arc::verify_arc(parsed, &mut bodies, keys);
    (dkim, arc)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod dkim2_intake_tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// 25 hops, each under a selector of its own: only the first MAX_DKIM2_KEYS keys are
    /// asked, and a message without DKIM2 fields asks nothing.
    #[tokio::test]
    async fn at_most_max_dkim2_keys_are_looked_up_per_message() {
        let (key, _) = signing_key::SigningKey::generate_ed25519().expect("key");
        let key = Arc::new(key);
        let hop = dkim2::Dkim2Envelope {
            mail_from: "<a@x.test>".into(),
            rcpt_to: vec!["<b@x.test>".into()],
        };
        let mut message = b"From: a@x.test\r\nSubject: s\r\n\r\nbody\r\n".to_vec();
        for n in 0..25 {
            let signer = dkim2::Dkim2Signer::new("x.test", &format!("s{n}"), key.clone())
                .with_out_of_band_arrangement();
            let signed = signer
                .sign(
                    &message,
                    &hop,
                    dkim2::NewInstance::Unchanged,
                    None,
                    unix_now(),
                )
                .expect("signs");
            message = signed.prepend_to(&message);
        }
        let budget = Arc::new(dns::LookupBudget::new(1000, Duration::from_secs(10)));
        let resolver = Resolver::Zone(Arc::new(dns::Zone::new())).budgeted(budget.clone());
        let auth = Authenticator::new(resolver, None);
        let report = auth.verify_dkim2(&message, None, unix_now()).await;
        assert!(report.is_some_and(|r| r.verdict != dkim2::Dkim2Verdict::Pass));
        assert_eq!(budget.asked(), MAX_DKIM2_KEYS);
        let plain = auth
            .verify_dkim2(b"From: a@x.test\r\n\r\nhi\r\n", None, 0)
            .await;
        assert!(plain.is_none());
        assert_eq!(budget.asked(), MAX_DKIM2_KEYS);
    }
}
