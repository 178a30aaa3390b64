//! Bounces and complaints coming back to `LIST-bounces[+TOKEN]@`.
//!
//! A VERP token names the member and the message for certain; without one, the DSN's
//! Final-Recipient is used, but only to score, never to unsubscribe (anyone can write a DSN).
//! Refusals that are the receiver's policy (spam filters, DMARC: 5.7.1, 5.7.26, 5.7.509,
//! 5.7.515) are counted apart and never disable a member: the address works, the receiver did
//! not like one message. ARF complaints (RFC 5965) unsubscribe the complainer.

use super::ListRuntime;
use super::tokens;
use crate::auth::message::RawMessage;
use crate::base::metrics::BounceKind;
use crate::state::store::{SpoolMeta, SpoolState, Store, StoreError};

/// Score at which delivery to a member stops.
pub const DISABLE_AT: f32 = 5.0;
/// A week without bounces wipes the score.
const STALE_AFTER: u64 = 7 * 86_400;

/// What a returned message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A permanent failure of the address (5.x.x).
    Hard,
    /// A temporary failure given up on (4.x.x).
    Soft,
    /// The receiver refused the message, not the address.
    Policy,
    /// Still trying: ignored.
    Delayed,
    /// The member reported the message as spam.
    Complaint,
    /// An out-of-office or other automatic reply, not a delivery report: never scored.
    AutoReply,
}

/// A returned message, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Its kind.
    pub kind: Kind,
    /// The Final-Recipient (or Original-Rcpt-To) it names, lower-case.
    pub recipient: Option<String>,
    /// The status code, such as `5.1.1`.
    pub status: Option<String>,
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn status_code(text: &str) -> Option<String> {
    // The first d.d.d with a 2, 4 or 5 class, as DSNs and most non-standard bounces write it.
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "4" | "5")
                && parts[1..].iter().all(|p| !p.is_empty() && p.len() <= 3)
        })
        .map(str::to_string)
}

/// An automatic reply that is not a delivery report: marked as one (RFC 3834
/// `Auto-Submitted: auto-replied`, `X-Autoreply`, `X-Autorespond`, `Precedence: auto_reply`)
/// or titled like one, with nothing of a delivery report about it (no `delivery-status` part,
/// no `Status:` or `Action:` field, no `X-Failed-Recipients`). Bounces are automatic too, so
/// the marks alone do not decide.
fn is_auto_reply(parsed: &RawMessage<'_>, content_type: &str, body: &str) -> bool {
    let report = content_type.contains("delivery-status")
        || field(body, "Status").is_some()
        || field(body, "Action").is_some()
        || parsed.fields("X-Failed-Recipients").next().is_some();
    if report {
        return false;
    }
    let value = |name: &str| {
        parsed
            .fields(name)
            .next()
            .map(|f| f.unfolded_value().trim().to_ascii_lowercase())
    };
    let marked = value("Auto-Submitted").is_some_and(|v| v.starts_with("auto-replied"))
        || value("X-Autoreply").is_some()
        || value("X-Autorespond").is_some()
        || value("Precedence").as_deref() == Some("auto_reply");
    let subject = value("Subject").unwrap_or_default();
    let titled = [
        "out of office",
        "automatic reply",
        "auto:",
        "autoreply",
        "vacation",
        "abwesenheit",
    ]
    .iter()
    .any(|w| subject.contains(w));
    marked || titled
}

/// Reads a DSN (RFC 3464), an ARF report (RFC 5965), or a non-standard bounce.
pub fn classify(message: &[u8]) -> Report {
    let parsed = RawMessage::parse(message);
    let content_type = parsed
        .fields("Content-Type")
        .next()
        .map(|f| f.unfolded_value().to_ascii_lowercase())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(parsed.body);
    let recipient = field(&body, "Final-Recipient")
        .or_else(|| field(&body, "Original-Rcpt-To"))
        .or_else(|| field(&body, "Original-Recipient"))
        .map(|v| {
            v.rsplit(';')
                .next()
                .unwrap_or(v)
                .trim()
                .trim_matches(|c| c == '<' || c == '>')
                .to_ascii_lowercase()
        })
        // Exim names the failed addresses in a header of the bounce itself.
        .or_else(|| {
            parsed.fields("X-Failed-Recipients").next().map(|f| {
                f.unfolded_value()
                    .split(',')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
        });
    if content_type.contains("report-type=feedback-report")
        || content_type.contains("report-type=\"feedback-report\"")
    {
        return Report {
            kind: Kind::Complaint,
            recipient,
            status: None,
        };
    }
    if is_auto_reply(&parsed, &content_type, &body) {
        return Report {
            kind: Kind::AutoReply,
            recipient,
            status: None,
        };
    }
    let action = field(&body, "Action").map(str::to_ascii_lowercase);
    let status = field(&body, "Status")
        .and_then(status_code)
        .or_else(|| status_code(&body));
    let diagnostic = field(&body, "Diagnostic-Code")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let kind = if action.as_deref() == Some("delayed") {
        Kind::Delayed
    } else if is_policy(status.as_deref(), &diagnostic) {
        Kind::Policy
    } else if status.as_deref().is_some_and(|s| s.starts_with('4')) {
        Kind::Soft
    } else {
        Kind::Hard
    };
    Report {
        kind,
        recipient,
        status,
    }
}

/// Applies a returned message to the member it is about and records the outcome.
pub fn handle(
    store: &Store,
    list: &ListRuntime,
    mut meta: SpoolMeta,
    message: &[u8],
    token: Option<&str>,
) -> Result<(), StoreError> {
    let address = &list.config.address;
    let report = classify(message);
    let kind = match report.kind {
        Kind::Hard => BounceKind::Hard,
        Kind::Soft => BounceKind::Soft,
        Kind::Policy => BounceKind::Policy,
        Kind::Delayed => BounceKind::Delayed,
        Kind::Complaint => BounceKind::Complaint,
        Kind::AutoReply => BounceKind::AutoReply,
    };
    crate::base::metrics::bounce(kind);
    let kind = kind.as_str();
    meta.facts.list = Some(address.clone());
    meta.facts.bounce = Some(kind.to_string());
    let secret = crate::state::store::wait(store.token_secret())?;
    // Who is it about? A genuine VERP token settles it; otherwise the report's own word.
    let verified = verp_recipient(store, &secret, token, &report)?;
    // Only a bounce of the member's own copy, proven by its VERP token, counts: anyone can
    // send a delivery report naming a member to the untokened -bounces address.
    let who = verified.clone();
    let mut disabled = None;
    meta.facts.bounce_for = who.clone();
    let note = match who {
        None if token.is_none() => match &report.recipient {
            Some(named) => format!(
                "bounce naming {named} without a VERP token; not counted (only bounces of a member's own copy count)"
            ),
            None => "bounce without a VERP token that names nobody; ignored".to_string(),
        },
        None => "bounce that names no member of this list (or a forged token); ignored".to_string(),
        Some(who) => {
            let found = crate::state::store::wait(store.member(address, &who))?;
            match (found, report.kind) {
                (None, _) => format!("bounce for {who}, who is not a member; ignored"),
                (Some(_), Kind::Delayed) => format!("delay notice for {who}; ignored"),
                (Some(_), Kind::Complaint) if verified.is_some() => {
                    crate::state::store::wait(store.remove_member(
                        address,
                        &who,
                        crate::state::store::Departure::now(
                            crate::state::store::DepartureReason::Complaint,
                        ),
                    ))?;
                    format!("spam complaint from {who}: unsubscribed")
                }
                (Some(_), Kind::Complaint) => {
                    format!("complaint naming {who} without a VERP token; not acted on")
                }
                (Some(_), Kind::AutoReply) => {
                    format!("automatic reply (out of office) from {who}; not a bounce, ignored")
                }
                (Some(member), kind) => {
                    let status = report.status.clone().unwrap_or_else(|| "no status".into());
                    let (note, now_disabled) = score(store, address, member, kind, &status)?;
                    if now_disabled {
                        disabled = Some((who.clone(), status));
                    }
                    note
                }
            }
        }
    };
    tracing::info!(id = meta.id, list = %address, %note, "bounce");
    meta.state = SpoolState::Done;
    meta.note = Some(note);
    match disabled {
        Some((who, status)) => notify_owners(store, list, meta, &who, &status),
        None => crate::state::store::wait(store.update(&meta)),
    }
}

/// Counts a bounce of `kind` against `member` of list `address` and records it; returns the
/// note and whether this bounce disabled delivery. Policy refusals are counted apart, never
/// scored.
fn score(
    store: &Store,
    address: &str,
    mut member: crate::state::store::Member,
    kind: Kind,
    status: &str,
) -> Result<(String, bool), StoreError> {
    let who = member.address.clone();
    let now = crate::auth::unix_now();
    let mut disabled = false;
    let note = if kind == Kind::Policy {
        member.policy_rejections += 1;
        format!("policy rejection for {who} ({status}); counted, not scored")
    } else {
        if now.saturating_sub(member.last_bounce) > STALE_AFTER {
            member.bounce_score = 0.0;
        }
        member.bounce_score += if kind == Kind::Hard { 1.0 } else { 0.5 };
        member.last_bounce = now;
        if member.bounce_score >= DISABLE_AT && !member.disabled {
            member.disabled = true;
            disabled = true;
            format!(
                "{who} bounced ({status}); score {:.1}: delivery disabled",
                member.bounce_score
            )
        } else {
            format!("{who} bounced ({status}); score {:.1}", member.bounce_score)
        }
    };
    crate::state::store::wait(store.put_member(address, &member))?;
    Ok((note, disabled))
}

/// A member's server refused their copy during delivery (`reply`, a 5xx, or deferrals given up
/// on): counted like a delivery report for that copy, which no receiver will send now. A
/// refusal of the message rather than the address (any x.7.x, a message fault such as 5.3.4
/// or 5.6.x, a refusal of MAIL or of the data, marked `message_refused`) is counted apart as
/// a policy rejection, never scored. Returns the note, `None` when `address` is not a member.
pub fn refused_in_delivery(
    store: &Store,
    list: &ListRuntime,
    address: &str,
    reply: &str,
    gave_up: bool,
    message_refused: bool,
) -> Result<Option<String>, StoreError> {
    let Some(member) = crate::state::store::wait(store.member(&list.config.address, address))?
    else {
        return Ok(None);
    };
    let status = status_code(reply).unwrap_or_else(|| "5.0.0".into());
    let lower = reply.to_ascii_lowercase();
    let about_the_message = message_refused
        || status
            .split('.')
            .nth(1)
            .is_some_and(|subject| matches!(subject, "3" | "6" | "7"));
    let kind = if gave_up {
        Kind::Soft
    } else if about_the_message || is_policy(Some(&status), &lower) {
        Kind::Policy
    } else {
        Kind::Hard
    };
    crate::base::metrics::bounce(match kind {
        Kind::Policy => BounceKind::Policy,
        Kind::Soft => BounceKind::Soft,
        _ => BounceKind::Hard,
    });
    let (note, disabled) = score(store, &list.config.address, member, kind, &status)?;
    if disabled && let Err(e) = notify_owners_new(store, list, address, &status) {
        tracing::error!(list = %list.config.address, %address, error = %e, "cannot tell the owners");
    }
    Ok(Some(note))
}

/// Whether a status and diagnostic say the receiver refused the message, not the address.
fn is_policy(status: Option<&str>, diagnostic: &str) -> bool {
    matches!(
        status,
        Some("5.7.1" | "5.7.26" | "5.7.509" | "5.7.515" | "5.7.27")
    ) || ["dmarc", "spam", "policy", "blocked"]
        .iter()
        .any(|w| diagnostic.contains(w))
}

/// The recipient a VERP `token` was made for: the address the report names if the token
/// fits it, else whichever recipient of the post it fits. `None` for a forged token.
fn verp_recipient(
    store: &Store,
    secret: &[u8],
    token: Option<&str>,
    report: &Report,
) -> Result<Option<String>, StoreError> {
    Ok(
        match token.and_then(|t| tokens::verp_id(t).map(|id| (t, id))) {
            // The address the report names, if its token fits; else whichever recipient's does.
            Some((t, id)) => match report
                .recipient
                .clone()
                .filter(|r| tokens::check_verp(secret, t, id, r))
            {
                Some(named) => Some(named),
                None => crate::state::store::wait(store.outcomes(id))?
                    .into_iter()
                    .map(|d| d.address)
                    .find(|a| tokens::check_verp(secret, t, id, a)),
            },
            None => None,
        },
    )
}

/// Tells the owners that `who` no longer receives posts, and how to undo it: the address may
/// come back, and only a person can tell a dead mailbox from a passing outage.
/// [`notify_owners`] for a refusal during delivery, with no returned message to file it under.
fn notify_owners_new(
    store: &Store,
    list: &ListRuntime,
    who: &str,
    status: &str,
) -> Result<(), String> {
    let (subject, body) = disabled_notice(list, who, status);
    super::notice::send_new(
        store,
        list,
        super::notice::Notice {
            to: list.config.owners.clone(),
            subject: &subject,
            body: &body,
            reply_to: None,
        },
        &format!("delivery to {who} disabled"),
    )
    .map(|_| ())
}

/// The owners' notice that delivery to `who` stopped.
fn disabled_notice(list: &ListRuntime, who: &str, status: &str) -> (String, String) {
    let cfg = &list.config;
    let subject = format!("{}: delivery to {who} disabled", cfg.display_name());
    let body = format!(
        "Mail to {who}, a member of {} ({}), kept bouncing (last status {status}),\r\n\
         so arclist stopped sending posts to that address. The member stays subscribed.\r\n\r\n\
         To see the bounce record:   arclist member ls {}\r\n\
         To resume delivery:          arclist member enable {} {who}\r\n",
        cfg.display_name(),
        cfg.address,
        cfg.address,
        cfg.address
    );
    (subject, body)
}

fn notify_owners(
    store: &Store,
    list: &ListRuntime,
    meta: SpoolMeta,
    who: &str,
    status: &str,
) -> Result<(), StoreError> {
    let (subject, body) = disabled_notice(list, who, status);
    super::notice::send(
        store,
        list,
        meta,
        super::notice::Notice {
            to: list.config.owners.clone(),
            subject: &subject,
            body: &body,
            reply_to: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dsn(status: &str, diag: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@mx.example\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nUndeliverable.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; Ann@Example.com\r\nAction: failed\r\nStatus: {status}\r\n\
             Diagnostic-Code: smtp; {diag}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn classifies_real_world_shapes() {
        // Exim: plain text, the address in X-Failed-Recipients.
        let exim = b"X-Failed-Recipients: ann@example.com\r\nSubject: Mail delivery failed: returning message to sender\r\n\r\n\
This message was created automatically by mail delivery software.\r\n\r\nA message that you sent could not be delivered to one or more of its\r\n\
recipients. This is a permanent error. The following address(es) failed:\r\n\r\n  ann@example.com\r\n\
    SMTP error from remote mail server after RCPT TO:<ann@example.com>:\r\n    550 5.1.1 <ann@example.com>: Recipient address rejected: User unknown\r\n";
        assert_eq!(
            classify(exim),
            Report {
                kind: Kind::Hard,
                recipient: Some("ann@example.com".into()),
                status: Some("5.1.1".into())
            }
        );
        // Gmail: the DSN part names the recipient; the text says why.
        let gmail = dsn(
            "5.1.1",
            "550-5.1.1 The email account that you tried to reach does not exist.",
        );
        assert_eq!(classify(&gmail).kind, Kind::Hard);
        let gmail_dmarc = dsn(
            "5.7.26",
            "550-5.7.26 Unauthenticated email from example.org is not accepted due to domain's DMARC policy.",
        );
        assert_eq!(classify(&gmail_dmarc).kind, Kind::Policy);
        // Microsoft 365: DMARC refusal in the NDR text, no DSN fields.
        let microsoft = b"Subject: Undeliverable: hello\r\n\r\nDelivery has failed to these recipients or groups:\r\n\r\nann@example.com\r\n\
Remote Server returned '550 5.7.509 Access denied, sending domain example.org does not pass DMARC verification and has a DMARC policy of reject.'\r\n";
        assert_eq!(classify(microsoft).kind, Kind::Policy);
        let microsoft_full = b"Subject: Undeliverable\r\n\r\nRemote Server returned '554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException'\r\n";
        assert_eq!(classify(microsoft_full).kind, Kind::Hard);
        // Postfix, temporary: a delay notice is ignored.
        let delayed = dsn("4.4.1", "connect to mx.example.com: Connection timed out")
            .into_iter()
            .collect::<Vec<u8>>();
        let delayed = String::from_utf8(delayed)
            .unwrap_or_default()
            .replace("Action: failed", "Action: delayed");
        assert_eq!(classify(delayed.as_bytes()).kind, Kind::Delayed);
    }

    #[test]
    fn classifies_dsns() {
        assert_eq!(
            classify(&dsn("5.1.1", "550 5.1.1 user unknown")),
            Report {
                kind: Kind::Hard,
                recipient: Some("ann@example.com".into()),
                status: Some("5.1.1".into())
            }
        );
        assert_eq!(classify(&dsn("4.2.2", "452 mailbox full")).kind, Kind::Soft);
        assert_eq!(classify(&dsn("5.7.26", "550 5.7.26 unauthenticated email from x is not accepted due to domain's DMARC policy")).kind, Kind::Policy);
        assert_eq!(
            classify(&dsn("5.7.1", "550 5.7.1 message rejected as spam")).kind,
            Kind::Policy
        );
        let arf = b"Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nOriginal-Rcpt-To: <bob@example.com>\r\n--b--\r\n";
        assert_eq!(
            classify(arf),
            Report {
                kind: Kind::Complaint,
                recipient: Some("bob@example.com".into()),
                status: None
            }
        );
        let plain = b"Subject: failure\r\n\r\nThe following address failed: x@y\r\n  550-5.1.1 The email account does not exist\r\n";
        assert_eq!(classify(plain).status.as_deref(), Some("5.1.1"));
    }
}
