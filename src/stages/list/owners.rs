//! Mail for a list's owners (`NAME-owner@`, `postmaster@` the list domain, bare `postmaster`).
//!
//! What the list DKIM-signs, a receiver reads as the list domain's word. Mail that
//! authenticated on arrival as the list domain itself (DMARC pass for a From in that domain)
//! goes on as it came with the list's signature on top, so the owners see it as sent. Anything
//! else is wrapped: a new message from `NAME-owner@` saying what arrived and how it
//! authenticated, with the original attached (`message/rfc822`). Signed as it was, a From
//! forged in the list domain (or in a domain aligned with it) would reach the owners with an
//! aligned DMARC pass for mail the list never sent; and relayed unsigned, the envelope sender
//! `NAME-bounces@` would align through SPF instead. Wrapped, the only author the list vouches
//! for is itself.

use super::ListRuntime;
use crate::auth::Verification;
use crate::auth::dmarc::DmarcVerdict;
use crate::base::header::mailbox;
use crate::stages::outbound::{Mail, Multipart, Part};
use crate::state::store::{QueueEntry, SpoolMeta, SpoolState, Store, StoreError};

/// The longest piece of the original's Subject repeated in the wrapper's.
const SUBJECT_LIMIT: usize = 200;

/// Passes mail for the owners on to them: as it came and signed by the list when it
/// authenticated as the list domain, else wrapped ([the module](self)). `v` is its arrival
/// verdict; `hostname` names us in the wrapped original's Received field.
pub fn to_owners(
    store: &Store,
    list: &ListRuntime,
    mut meta: SpoolMeta,
    message: &[u8],
    (v, hostname): (&Verification, &str),
) -> Result<(), StoreError> {
    let cfg = &list.config;
    meta.state = SpoolState::Done;
    if cfg.owners.is_empty() {
        meta.note = Some("mail for the owners, but the list names none; kept here".into());
        return crate::state::store::wait(store.update(&meta));
    }
    let own = v.dmarc.verdict == DmarcVerdict::Pass
        && v.dmarc.from_domain.eq_ignore_ascii_case(cfg.domain());
    let (outgoing, how) = match own {
        true => (message.to_vec(), "as it came"),
        false => (
            wrap(list, &meta, message, (v, hostname)),
            "wrapped, as an attachment",
        ),
    };
    let signed = match list.sign(&outgoing) {
        Ok(s) => s,
        Err(e) => {
            meta.note = Some(format!("mail for the owners not passed on: {e}"));
            return crate::state::store::wait(store.update(&meta));
        }
    };
    meta.note = Some(format!("passed on to {} {how}", cfg.owners.join(", ")));
    tracing::info!(id = meta.id, list = %cfg.address, from = %v.dmarc.from_domain, dmarc = v.dmarc.verdict.as_str(), wrapped = !own, "mail for the owners passed on");
    meta.state = SpoolState::Queued;
    let entry = QueueEntry {
        id: meta.id,
        list: cfg.address.clone(),
        mail_from: format!("{}-bounces@{}", cfg.local_part(), cfg.domain()),
        recipients: cfg.owners.clone(),
        queued_at: crate::auth::unix_now(),
        summary: None,
        plain: true,
    };
    crate::state::store::wait(store.enqueue(&meta, &entry, &signed))
}

/// The original's Subject as the wrapper repeats it: one line, no controls, at most
/// [`SUBJECT_LIMIT`] characters.
fn original_subject(message: &[u8]) -> String {
    let parsed = crate::auth::message::RawMessage::parse(message);
    let subject = parsed
        .fields("Subject")
        .next()
        .map(|f| f.unfolded_value())
        .unwrap_or_default();
    let clean: String = subject.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    match clean.char_indices().nth(SUBJECT_LIMIT) {
        Some((cut, _)) => format!("{} ...", &clean[..cut]),
        None => clean,
    }
}

/// The wrapper: the list's own words about what arrived, and the original (with our
/// Received field on top) attached.
fn wrap(
    list: &ListRuntime,
    meta: &SpoolMeta,
    message: &[u8],
    (v, hostname): (&Verification, &str),
) -> Vec<u8> {
    let cfg = &list.config;
    let now = crate::auth::unix_now();
    let owner = format!("{}-owner@{}", cfg.local_part(), cfg.domain());
    let subject = format!("Mail for the owners: {}", original_subject(message));
    let received = crate::base::header::field(
        "Received",
        &crate::stages::trace::received(meta, hostname, &owner),
    );
    let attached = [received.as_bytes(), message].concat();
    let cte = if attached.is_ascii() { "7bit" } else { "8bit" };
    let author =
        crate::auth::dmarc::single_author(message).map_or_else(|e| format!("({e})"), |(_, a)| a);
    let to: Vec<String> = cfg.owners.iter().map(|a| format!("<{a}>")).collect();
    let mut words = format!(
        "This message came for the owners of {list} ({rcpt}) and is attached as it arrived.\r\n\r\n\
         It did not authenticate as {domain} (DMARC {dmarc} for the From domain {from}), so the\r\n\
         list passes it on as an attachment rather than under its own signature: its From\r\n\
         ({author}) and everything else in it are what the sender claims, unverified.\r\n\r\n\
         Envelope sender: <{sender}>\r\nClient: [{ip}]\r\n",
        list = cfg.address,
        rcpt = meta.envelope.rcpt_to.join(", "),
        domain = cfg.domain(),
        dmarc = v.dmarc.verdict.as_str(),
        from = v.dmarc.from_domain,
        sender = meta.envelope.mail_from,
        ip = meta.envelope.client_ip,
    );
    if let Some(results) = &meta.auth_results {
        words.push_str(&format!("Authentication-Results: {results}\r\n"));
    }
    words.push_str("\r\n");
    let body = Multipart::new("mixed", &format!("=_arclist_owners_{}", meta.id))
        .preamble("This is a MIME-encapsulated message.\r\n\r\n")
        .part(Part::new("text/plain; charset=utf-8", words))
        .part(
            Part::new("message/rfc822", attached)
                .field("Content-Transfer-Encoding", cte)
                .field("Content-Disposition", "inline"),
        )
        .finish();
    Mail::new()
        .field("From", &mailbox(cfg.display_name(), &owner))
        .field("To", &to.join(", "))
        .text("Subject", &subject)
        .date(now)
        .message_id(&format!("owners.{}.{now}", meta.id), cfg.domain())
        .field("Auto-Submitted", "auto-generated")
        .finish(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_one_short_line() {
        let long = format!("Subject: a\r\n\tb  {}\r\n\r\n", "x".repeat(500));
        let s = original_subject(long.as_bytes());
        assert!(!s.contains(['\r', '\n', '\t']), "{s:?}");
        assert!(
            s.contains("b x") && s.ends_with(" ...") && s.len() < 210,
            "{s}"
        );
        assert_eq!(original_subject(b"Subject: \x07bell\r\n\r\n"), "bell");
    }
}
