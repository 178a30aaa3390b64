//! Delivery status notifications (RFC 3464) for forwarded mail: the original sender got our
//! `250`, so when a target refuses the message for good, or retries give up, the sender is
//! told, as Postfix with postsrsd would tell them. One notification per message and delivery
//! round names every target that failed in it.
//!
//! Never for a message that came with the null sender (a bounce must not bounce), never to an
//! address at one of our own forwarding or SRS domains (it would come straight back), never to
//! a sender its domain did not vouch for (SPF or DKIM: to a forged address it would be
//! backscatter), and always from the null sender itself, so a failing notification ends there.

use super::Forwarding;
use crate::base::metrics::ForwardOutcome;
use crate::stages::delivery::Owner;
use crate::stages::outbound::{Mail, Multipart, Part};
use crate::state::store::{
    Delivery, DeliveryState, Facts, QueueEntry, QueueHead, SpoolEnvelope, SpoolId, SpoolMeta,
    SpoolState, Store,
};

/// The most of the failed message's header that goes back (RFC 3462 `text/rfc822-headers`).
const HEADER_LIMIT: usize = 64 * 1024;

/// One target that will not get the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The target's address.
    pub target: String,
    /// Its server's last reply, or why delivery gave up.
    pub reply: String,
    /// Retries ran out (rather than a permanent refusal).
    pub gave_up: bool,
}

impl Failure {
    /// The targets of `round` that ended bounced.
    pub fn of_round(round: &[Delivery]) -> Vec<Failure> {
        round
            .iter()
            .filter(|d| d.state == DeliveryState::Bounced)
            .map(|d| Failure {
                target: d.address.clone(),
                reply: d.last_reply.clone(),
                gave_up: d.last_reply.starts_with("gave up after"),
            })
            .collect()
    }

    /// The RFC 3463 status: the one the reply carries, else 5.4.7 (delivery time expired)
    /// for a retry limit and 5.0.0 for a bare refusal.
    fn status(&self) -> String {
        let found = self.reply.split_whitespace().find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        });
        match (found, self.gave_up) {
            // A failure is reported as permanent even if the last reply was a deferral.
            (Some(s), _) => format!("5{}", &s[1..]),
            (None, true) => "5.4.7".into(),
            (None, false) => "5.0.0".into(),
        }
    }
}

/// What a notification needs to know of the forwarded message.
pub struct Failed<'a> {
    /// The host named as the reporting MTA.
    pub hostname: &'a str,
    /// The forwarding domain (the notification's From).
    pub domain: &'a str,
    /// The original envelope sender, who gets the notification.
    pub sender: &'a str,
    /// The forwarded copy as it was queued.
    pub copy: &'a [u8],
    /// Unix time the message arrived.
    pub arrival: u64,
    /// The targets that failed.
    pub failures: &'a [Failure],
}

/// The longest reply quoted, so a field stays well under SMTP's 998-character lines.
const REPLY_LIMIT: usize = 800;

/// Keeps a reply printable ASCII on one line of at most [`REPLY_LIMIT`] characters, as the
/// report's fields must be.
fn one_line(text: &str) -> String {
    let mut line = text
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if line.len() > REPLY_LIMIT {
        line.truncate(REPLY_LIMIT);
        line.push_str(" ...");
    }
    line
}

/// The `Diagnostic-Code` value: `smtp; REPLY` for a server's reply, `X-Arclist; WHY` for
/// what arclist itself saw (a connection refused, a timeout).
fn diagnostic(reply: &str) -> String {
    let text = one_line(reply);
    let is_reply = text.len() >= 3 && text.as_bytes()[..3].iter().all(u8::is_ascii_digit);
    match is_reply {
        true => format!("smtp; {text}"),
        false => format!("X-Arclist; {text}"),
    }
}

/// The copy's header, cut at a field boundary within [`HEADER_LIMIT`].
fn header_of(copy: &[u8]) -> &[u8] {
    let end = memchr::memmem::find(copy, b"\r\n\r\n").map_or(copy.len(), |p| p + 2);
    let head = &copy[..end];
    if head.len() <= HEADER_LIMIT {
        return head;
    }
    let cut = head[..HEADER_LIMIT]
        .windows(2)
        .rposition(|w| w == b"\r\n")
        .map_or(0, |p| p + 2);
    &head[..cut]
}

/// The aliases the copy was forwarded for, from the Delivered-To fields arclist added.
fn aliases_of(head: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("delivered-to")
                .then(|| value.trim().to_string())
        })
        .collect()
}

/// The notification's text, unsigned: a human part, the `message/delivery-status` part and
/// the failed message's header.
pub fn compose(f: &Failed<'_>, now: u64, unique: &str) -> Vec<u8> {
    let head = header_of(f.copy);
    let aliases = aliases_of(head);
    let date = crate::stages::trace::rfc5322_date;
    let mut words = format!(
        "This is the mail system at {host}.\r\n\r\n\
         Your message{for_aliases} was forwarded, but it could not be delivered to\r\n\
         the address(es) below. This is a permanent error; it will not be tried again.\r\n\r\n",
        host = f.hostname,
        for_aliases = if aliases.is_empty() {
            String::new()
        } else {
            format!(" to {}", aliases.join(", "))
        },
    );
    for failure in f.failures {
        words.push_str(&format!(
            "<{}>: {}\r\n",
            failure.target,
            one_line(&failure.reply)
        ));
    }
    words.push_str("\r\n");
    let mut status = format!(
        "Reporting-MTA: dns; {}\r\nArrival-Date: {}\r\n",
        f.hostname,
        date(f.arrival)
    );
    for failure in f.failures {
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\n\
             Diagnostic-Code: {}\r\nLast-Attempt-Date: {}\r\n",
            failure.target,
            failure.status(),
            diagnostic(&failure.reply),
            date(now)
        ));
    }
    status.push_str("\r\n");
    let body = Multipart::new(
        "report; report-type=delivery-status",
        &format!("=_arclist_dsn_{unique}"),
    )
    .preamble("This is a MIME-encapsulated message.\r\n\r\n")
    .part(Part::new("text/plain; charset=us-ascii", words))
    .part(Part::new("message/delivery-status", status))
    .part(Part::new("text/rfc822-headers", [head, b"\r\n"].concat()))
    .finish();
    Mail::new()
        .field(
            "From",
            &format!("Mail Delivery System <MAILER-DAEMON@{}>", f.domain),
        )
        .field("To", &format!("<{}>", f.sender))
        .field("Subject", "Undelivered Mail Returned to Sender")
        .date(now)
        .message_id(&format!("dsn.{unique}"), f.hostname)
        .field("Auto-Submitted", "auto-replied")
        .finish(body)
}

/// Tells the original sender of message `head`, forwarded by `domain`, which targets of this
/// `round` will not get it, queued as a message of its own; `None` when nobody is to be told.
/// Errors name the message and the forwarding domain.
pub fn notify(
    store: &Store,
    forwarding: &Forwarding,
    hostname: &str,
    domain: &str,
    head: &QueueHead,
    round: &[Delivery],
) -> Result<Option<SpoolId>, String> {
    let failures = Failure::of_round(round);
    if failures.is_empty() || head.mail_from.is_empty() {
        return Ok(None);
    }
    let now = crate::auth::unix_now();
    let sender = match forwarding.srs_return(&head.mail_from, now) {
        Some(Ok(original)) => original,
        Some(Err(e)) => {
            return Err(format!(
                "forwarded message {}: its SRS sender {} does not decode ({e}); no notification",
                head.id, head.mail_from
            ));
        }
        // Mail from our own domain kept its sender.
        None => head.mail_from.clone(),
    };
    let sender_domain = sender.rsplit_once('@').map_or("", |(_, d)| d);
    if sender.is_empty() || forwarding.is_ours(sender_domain) {
        // It would come straight back to us.
        return Ok(None);
    }
    // Backscatter is worse than silence: a sender nobody vouched for may be forged.
    let verified = crate::state::store::wait(store.get(head.id))
        .map_err(|e| e.to_string())?
        .is_some_and(|(meta, _)| meta.facts.sender_verified);
    if !verified {
        tracing::info!(id = head.id, to = %sender, "no delivery status notification: the envelope sender was not verified (no SPF pass or DKIM signature of its domain), it may be forged");
        return Ok(None);
    }
    let Some(d) = forwarding.domain(domain) else {
        return Err(format!(
            "forwarded message {}: domain {domain} is no longer configured; no notification to {sender}",
            head.id
        ));
    };
    let copy = crate::state::store::wait(store.queued(head.id))
        .map_err(|e| e.to_string())?
        .map(|(_, bytes)| bytes)
        .unwrap_or_default();
    let copy = super::dkim2::unmark(&copy).1;
    // From the domain that signs it, so the sender's DMARC check of it aligns.
    let from_domain = d.config.signing_domain().to_string();
    let failed = Failed {
        hostname,
        domain: &from_domain,
        sender: &sender,
        copy,
        arrival: head.queued_at,
        failures: &failures,
    };
    let text = compose(&failed, now, &format!("{}.{now}", head.id));
    let signed = d.sign_own(&text, now);
    // One recipient, so the DKIM2 hop can be signed for its transaction here, as it is queued.
    let signed = super::dkim2::sign_own(d, signed, &sender, now);
    let id = queue(store, &d.config.domain, &sender, &signed, head.id).map_err(|e| {
        format!(
            "forwarded message {}: cannot queue its notification: {e}",
            head.id
        )
    })?;
    crate::base::metrics::forward(ForwardOutcome::DsnSent);
    tracing::info!(id = head.id, dsn = id, to = %sender, failed = failures.len(), "delivery status notification queued");
    Ok(Some(id))
}

/// Spools and queues notification `signed` to `sender`, from the null sender.
fn queue(
    store: &Store,
    domain: &str,
    sender: &str,
    signed: &[u8],
    about: SpoolId,
) -> Result<SpoolId, crate::state::store::StoreError> {
    let now = crate::auth::unix_now();
    let meta = SpoolMeta {
        id: 0,
        envelope: SpoolEnvelope::local(vec![sender.to_string()], domain, now),
        state: SpoolState::Queued,
        size: signed.len(),
        auth_results: None,
        attempts: 0,
        note: Some(format!(
            "delivery status notification for forwarded message {about}"
        )),
        facts: Facts {
            forwarded_by: Some(domain.to_string()),
            bounce: Some("dsn".into()),
            ..Default::default()
        },
    };
    let entry = QueueEntry {
        id: 0,
        list: Owner::Dsn(domain.to_string()).to_string(),
        mail_from: String::new(),
        recipients: vec![sender.to_string()],
        queued_at: now,
        summary: None,
        plain: true,
    };
    crate::state::store::wait(store.enqueue_local(meta, entry, signed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(reply: &str) -> Failure {
        Failure {
            target: "ann@gmail.test".into(),
            reply: reply.into(),
            gave_up: reply.starts_with("gave up after"),
        }
    }

    #[test]
    fn status_comes_from_the_reply_and_is_always_permanent() {
        assert_eq!(failure("550 5.1.1 no such user").status(), "5.1.1");
        assert_eq!(
            failure("gave up after 120 hours: 451 4.7.1 try later").status(),
            "5.7.1"
        );
        assert_eq!(
            failure("gave up after 120 hours: connection refused").status(),
            "5.4.7"
        );
        assert_eq!(failure("554 no").status(), "5.0.0");
        assert_eq!(failure("550 see 1.2.3.4 for why").status(), "5.0.0");
    }

    #[test]
    fn diagnostics_say_whose_words_they_are_and_stay_short() {
        assert_eq!(diagnostic("550 5.1.1 no"), "smtp; 550 5.1.1 no");
        assert_eq!(
            diagnostic("gave up after 120 hours: connection refused"),
            "X-Arclist; gave up after 120 hours: connection refused"
        );
        let long = format!("550 {}", "x".repeat(5000));
        assert!(diagnostic(&long).len() < 900);
    }

    #[test]
    fn the_notification_names_each_target_and_carries_the_header_only() {
        let copy = b"Delivered-To: sales@corp.test\r\nFrom: a@bank.test\r\nSubject: hi\r\n\r\nsecret body\r\n";
        let failures = [
            failure("550 5.1.1 <ann@gmail.test>: no\r\n such user"),
            Failure {
                target: "bob@outlook.test".into(),
                reply: "gave up after 120 hours: connection refused".into(),
                gave_up: true,
            },
        ];
        let f = Failed {
            hostname: "mx.corp.test",
            domain: "corp.test",
            sender: "alice@bank.test",
            copy,
            arrival: 1_800_000_000,
            failures: &failures,
        };
        let text = String::from_utf8(compose(&f, 1_800_000_100, "7.1")).expect("ascii");
        assert!(text.contains("To: <alice@bank.test>\r\n"));
        assert!(text.contains("report-type=delivery-status"));
        assert!(text.contains("to sales@corp.test was forwarded"));
        assert!(text.contains(
            "Final-Recipient: rfc822; ann@gmail.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
        assert!(
            text.contains("Diagnostic-Code: smtp; 550 5.1.1 <ann@gmail.test>: no such user\r\n")
        );
        assert!(text.contains(
            "Final-Recipient: rfc822; bob@outlook.test\r\nAction: failed\r\nStatus: 5.4.7\r\n"
        ));
        assert!(text.contains(
            "Content-Type: text/rfc822-headers\r\n\r\nDelivered-To: sales@corp.test\r\n"
        ));
        assert!(!text.contains("secret body"), "only the header goes back");
        assert!(text.ends_with("--=_arclist_dsn_7.1--\r\n"));
    }

    #[test]
    fn a_huge_header_is_cut_at_a_field_boundary() {
        let mut copy = Vec::new();
        while copy.len() < 2 * HEADER_LIMIT {
            copy.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        copy.extend_from_slice(b"\r\nbody");
        let head = header_of(&copy);
        assert!(head.len() <= HEADER_LIMIT);
        assert!(head.ends_with(b"\r\n"));
    }
}
