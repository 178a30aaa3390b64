//! The viewer's input path: the bytes someone pasted in, a page out. A message over the limits
//! SMTP intake enforces is refused unparsed, with the limit named; the rest is verified with
//! every DNS question counted against a [`LookupBudget`].

use super::{MAX_MESSAGE, render, report};
use crate::auth::Authenticator;
use crate::auth::dns::LookupBudget;
use crate::auth::message::{HeaderOverLimit, header_over_limits, to_crlf};
use std::sync::Arc;

/// The limits a pasted message is held to: those of a message arriving by SMTP.
#[derive(Debug, Clone)]
pub struct PasteLimits {
    /// Header fields at most (`[limits]` `max_header_fields`).
    pub max_header_fields: usize,
    /// Bytes of header section at most (`[limits]` `max_header_bytes`).
    pub max_header_bytes: usize,
}

impl From<&crate::base::config::Limits> for PasteLimits {
    fn from(limits: &crate::base::config::Limits) -> Self {
        PasteLimits {
            max_header_fields: limits.max_header_fields,
            max_header_bytes: limits.max_header_bytes,
        }
    }
}

/// What one check came to: the answer and what the log line says of it.
#[derive(Debug)]
pub struct Checked {
    /// HTTP status: 200, or 413 for a message over a limit.
    pub status: u16,
    /// The page (an error names the template that failed).
    pub page: Result<String, super::super::pages::PageError>,
    /// One phrase for the log: `arc=fail`, the limit a message went over, `lookup budget
    /// exhausted`.
    pub outcome: String,
    /// ARC sets found.
    pub sets: u32,
    /// DKIM signatures checked.
    pub signatures: usize,
}

/// Why `message` (CRLF) is not checked at all, as the page and the log say it.
fn over_limits(message: &[u8], limits: &PasteLimits) -> Option<(String, String)> {
    if message.len() > MAX_MESSAGE {
        return Some((
            format!(
                "The message is larger than the viewer takes ({} MiB).",
                MAX_MESSAGE >> 20
            ),
            format!("over {MAX_MESSAGE} bytes"),
        ));
    }
    let over = header_over_limits(message, limits.max_header_fields, limits.max_header_bytes)?;
    let said = match over {
        HeaderOverLimit::Bytes(max) => format!(
            "Not checked: the message's header section is over {max} bytes, the most this \
             server's SMTP intake takes (max_header_bytes in [limits])."
        ),
        HeaderOverLimit::Fields(max) => format!(
            "Not checked: the message has more than {max} header fields, the most this \
             server's SMTP intake takes (max_header_fields in [limits])."
        ),
    };
    Some((said, over.to_string()))
}

/// The page for `pasted` (as pasted or uploaded; line endings made CRLF here), verified now
/// over `auth`'s resolver within `budget`. `now` is the Unix time for `x=` checks.
pub async fn check(
    auth: &Authenticator,
    pasted: &[u8],
    limits: &PasteLimits,
    budget: Arc<LookupBudget>,
    now: u64,
) -> Checked {
    let message = to_crlf(pasted);
    if let Some((page_text, outcome)) = over_limits(&message, limits) {
        return Checked {
            status: 413,
            page: render(None, Some(page_text)),
            outcome: format!("refused: {outcome}"),
            sets: 0,
            signatures: 0,
        };
    }
    let budgeted = Authenticator::new(auth.resolver().budgeted(budget.clone()), None);
    let mut v = budgeted.verify(&message, None, now).await;
    // No envelope: a pasted message arrived in no transaction, so the replay check is skipped.
    v.dkim2 = budgeted.verify_dkim2(&message, None, now).await;
    let mut report = report(&message, &v);
    let mut outcome = format!("arc={}", report.verdict());
    if let Some(dkim2) = report.dkim2_verdict() {
        outcome = format!("{outcome}, dkim2={dkim2}");
    }
    if budget.exhausted() {
        report.budget_exhausted(format!(
            "Lookup budget exhausted: this check could ask DNS {} question(s) within {} s; {} \
             more were not asked or not answered in time, so the verdicts that needed them say \
             temperror.",
            budget.allowed(),
            budget.time().as_secs(),
            budget.refused() + budget.timed_out(),
        ));
        outcome = format!("{outcome}, {}", crate::auth::dns::budget::EXHAUSTED);
    }
    Checked {
        status: 200,
        outcome,
        sets: report.sets(),
        signatures: report.signatures(),
        page: render(Some(report), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::dns::{Resolver, Zone};
    use proptest::prelude::*;
    use std::time::Duration;

    fn offline() -> Authenticator {
        Authenticator::new(Resolver::Zone(Arc::new(Zone::new())), None)
    }

    fn run(pasted: &[u8], lookups: usize) -> (Checked, Arc<LookupBudget>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let budget = Arc::new(LookupBudget::new(lookups, Duration::from_secs(5)));
        let limits = PasteLimits::from(&crate::base::config::Limits::default());
        let checked = rt.block_on(check(&offline(), pasted, &limits, budget.clone(), 0));
        (checked, budget)
    }

    #[test]
    fn a_message_over_the_field_limit_is_refused_with_the_limit_named() {
        let mut m = "X-A: b\n".repeat(1001).into_bytes();
        m.extend_from_slice(b"\nbody\n");
        let (checked, budget) = run(&m, 50);
        assert_eq!(checked.status, 413);
        let page = checked.page.expect("page");
        assert!(page.contains("more than 1000 header fields"), "{page}");
        assert!(page.contains("max_header_fields"), "{page}");
        assert_eq!(budget.asked(), 0, "nothing was looked up");
    }

    #[test]
    fn signatures_past_the_budget_are_not_asked_and_the_page_says_so() {
        let mut m = String::new();
        for n in 0..8 {
            m.push_str(&format!(
                "DKIM-Signature: v=1; a=rsa-sha256; d=d{n}.test; s=s; h=from; bh=AAAA; b=AAAA\r\n"
            ));
        }
        m.push_str("From: a@a.test\r\n\r\nbody\r\n");
        let (checked, budget) = run(m.as_bytes(), 3);
        assert_eq!(budget.asked(), 3);
        assert!(budget.refused() > 0);
        let page = checked.page.expect("page");
        assert!(page.contains("Lookup budget exhausted"), "{page}");
        assert!(checked.outcome.contains("lookup budget exhausted"));
        assert_eq!(checked.signatures, 8);
    }

    /// Header-like lines: signature and ARC fields with tags drawn from a small alphabet, so
    /// that the cases reach the tag readers, the set collector and the page, not only the
    /// "this is no message" exit.
    fn messageish() -> impl Strategy<Value = Vec<u8>> {
        let name = prop_oneof![
            Just("DKIM-Signature"),
            Just("ARC-Seal"),
            Just("ARC-Message-Signature"),
            Just("ARC-Authentication-Results"),
            Just("From"),
            Just("X"),
        ];
        let value = proptest::string::string_regex("[ a-z0-9=;:@.\\t\\r\\n-]{0,80}").expect("re");
        proptest::collection::vec((name, value), 0..40).prop_map(|fields| {
            let mut m = Vec::new();
            for (n, v) in fields {
                m.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
            }
            m.extend_from_slice(b"\r\nbody\r\n");
            m
        })
    }

    /// The page grows at most linearly with what was pasted: every piece of the message it
    /// shows is shown a bounded number of times, each byte escaped to at most six.
    fn bounded(pasted: &[u8], checked: &Checked) -> bool {
        checked
            .page
            .as_ref()
            .is_ok_and(|p| p.len() <= 16 * 1024 + 64 * pasted.len())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_make_a_bounded_page(pasted in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let (checked, budget) = run(&pasted, 50);
            prop_assert!(bounded(&pasted, &checked));
            prop_assert!(budget.asked() <= 50);
        }

        #[test]
        fn signature_shaped_fields_make_a_bounded_page(pasted in messageish()) {
            let (checked, budget) = run(&pasted, 5);
            prop_assert!(bounded(&pasted, &checked));
            prop_assert!(budget.asked() <= 5);
        }
    }
}
