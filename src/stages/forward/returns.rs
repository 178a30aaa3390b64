//! What an SRS address may carry back to the original sender, and how much of it.
//!
//! An SRS address decodes to whoever sent mail through an alias, and anyone who can see one
//! (or mint one, by sending to an alias with a victim's address as MAIL FROM) can send to it.
//! So the return path takes only what RFC 5321 §4.5.5 and RFC 3834 §3.3 send to an envelope
//! sender, a delivery report or an auto-reply, and only a few of those an hour per original
//! sender: enough for the bounces and vacation notices of real mail, too few for a spam run.

use crate::auth::message::RawMessage;
use std::collections::HashMap;
use std::sync::Mutex;

/// The kinds of message an SRS address relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnKind {
    /// RFC 3464 (or RFC 6533) `multipart/report; report-type=delivery-status`.
    DeliveryReport,
    /// RFC 3798 (or RFC 6533) `multipart/report; report-type=disposition-notification`.
    ReadReceipt,
    /// RFC 3834 `Auto-Submitted: auto-replied` (a vacation notice, say).
    AutoReply,
}

impl ReturnKind {
    /// A word for logs and spool notes.
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnKind::DeliveryReport => "delivery report",
            ReturnKind::ReadReceipt => "read receipt",
            ReturnKind::AutoReply => "auto-reply",
        }
    }
}

/// Report types (RFC 6522 `report-type`) that are about a message the original sender sent.
const REPORT_TYPES: &[(&str, ReturnKind)] = &[
    ("delivery-status", ReturnKind::DeliveryReport),
    ("global-delivery-status", ReturnKind::DeliveryReport),
    ("disposition-notification", ReturnKind::ReadReceipt),
    ("global-disposition-notification", ReturnKind::ReadReceipt),
];

/// Why a message to an SRS address is not one it may relay (words for a `550` reply: each
/// ends the sentence "... and {it}; not relayed").
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAReturn {
    /// A field receivers would read differently.
    #[error("it has more than one {field} field")]
    DuplicateField {
        /// The field's name.
        field: String,
    },
    /// A report, but of a type about something else.
    #[error("it is a report of type {report:?}, not about delivery")]
    OtherReport {
        /// The report type.
        report: String,
    },
    /// A report label without the report.
    #[error("it says it is a {report} report but has no message/{report} part (RFC 6522)")]
    NoReportPart {
        /// The report type.
        report: String,
    },
    /// Neither a report nor an auto-reply.
    #[error(
        "it is neither a delivery report (RFC 3464 multipart/report) nor an auto-reply (RFC 3834 Auto-Submitted: auto-replied)"
    )]
    Neither,
}

/// The one value of header field `name`, unfolded; `Err` when the field appears more than
/// once (receivers would not agree on which counts).
fn only_field(parsed: &RawMessage<'_>, name: &str) -> Result<Option<String>, NotAReturn> {
    let mut fields = parsed.fields(name);
    let first = fields.next().map(|f| f.unfolded_value());
    if fields.next().is_some() {
        return Err(NotAReturn::DuplicateField {
            field: name.to_string(),
        });
    }
    Ok(first)
}

/// Splits a structured field's value at `;` outside quoted strings.
fn split_params(value: &str) -> Vec<String> {
    let (mut parts, mut current, mut quoted, mut escaped) =
        (Vec::new(), String::new(), false, false);
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

/// The report type of a `multipart/report` Content-Type value, lower-case; `None` for any other
/// media type.
fn report_type(content_type: &str) -> Option<String> {
    let parts = split_params(content_type);
    let media = parts.first()?.trim().to_ascii_lowercase();
    if media != "multipart/report" {
        return None;
    }
    parts[1..].iter().find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("report-type")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// Whether `message` has the machine-readable part its report type promises
/// (`message/delivery-status` for a delivery report, RFC 6522 §3): a label on the top-level
/// Content-Type alone costs a spammer nothing, a report part at least the report's shape.
fn has_report_part(message: &[u8], report: &str) -> bool {
    use mail_parser::MimeHeaders;
    let Some(parsed) = mail_parser::MessageParser::default().parse(message) else {
        return false;
    };
    parsed.parts.iter().any(|part| {
        part.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case("message")
                && c.subtype().is_some_and(|s| s.eq_ignore_ascii_case(report))
        })
    })
}

/// What `message` is, if an SRS address may relay it; otherwise why not, for a `550` reply.
pub fn kind(message: &[u8]) -> Result<ReturnKind, NotAReturn> {
    let parsed = RawMessage::parse(message);
    if let Some(value) = only_field(&parsed, "Content-Type")?
        && let Some(report) = report_type(&value)
    {
        let kind = REPORT_TYPES
            .iter()
            .find(|(t, _)| *t == report)
            .map(|(_, k)| *k)
            .ok_or_else(|| NotAReturn::OtherReport {
                report: report.clone(),
            })?;
        if !has_report_part(message, &report) {
            return Err(NotAReturn::NoReportPart { report });
        }
        return Ok(kind);
    }
    let auto = only_field(&parsed, "Auto-Submitted")?;
    let keyword = auto.as_deref().map(|v| {
        v.split(['(', ';'])
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match keyword.as_deref() {
        Some("auto-replied") => Ok(ReturnKind::AutoReply),
        _ => Err(NotAReturn::Neither),
    }
}

/// Original senders the budget tracks at most; past this, windows that ended are dropped, and
/// if every one is still open the return is refused (temporarily) rather than the map grown.
const MAX_TRACKED: usize = 65_536;
/// The budget's window.
const WINDOW_SECS: u64 = 3600;

/// Counts what was relayed to each original sender in the current hour's window (per node:
/// each node of a shared store keeps its own count).
#[derive(Default)]
pub struct ReturnBudget {
    /// Original sender's mailbox ([`crate::base::config::mailbox_key`]) to (window start, messages
    /// relayed in it).
    windows: Mutex<HashMap<String, (u64, u32)>>,
}

impl ReturnBudget {
    /// Takes one return to `original` at unix time `now`, if fewer than `per_hour` went to it
    /// in the current window; otherwise the seconds until the window ends.
    pub fn take(&self, original: &str, per_hour: u32, now: u64) -> Result<(), u64> {
        let Ok(mut windows) = self.windows.lock() else {
            return Err(WINDOW_SECS);
        };
        // Per mailbox: minting SRS addresses for victim+1@, victim+2@ … must not multiply it.
        let key = crate::base::config::mailbox_key(original);
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&key) {
            windows.retain(|_, (start, _)| now < start.saturating_add(WINDOW_SECS));
            if windows.len() >= MAX_TRACKED {
                return Err(WINDOW_SECS);
            }
        }
        let (start, count) = windows.entry(key).or_insert((now, 0));
        if now >= start.saturating_add(WINDOW_SECS) {
            (*start, *count) = (now, 0);
        }
        if *count >= per_hour {
            return Err(start.saturating_add(WINDOW_SECS).saturating_sub(now).max(1));
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_and_auto_replies_pass_everything_else_does_not() {
        let dsn = b"From: MAILER-DAEMON@mx.test\r\nContent-Type: Multipart/Report;\r\n\treport-type=\"delivery-status\"; boundary=\"b;x\"\r\n\r\n\
            --b;x\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
            --b;x\r\nContent-Type: Message/Delivery-Status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b;x--\r\n";
        assert_eq!(kind(dsn), Ok(ReturnKind::DeliveryReport));
        let mdn = b"Content-Type: multipart/report; boundary=x; report-type=disposition-notification\r\n\r\n\
            --x\r\nContent-Type: message/disposition-notification\r\n\r\nFinal-Recipient: rfc822; a@b\r\n\r\n--x--\r\n";
        assert_eq!(kind(mdn), Ok(ReturnKind::ReadReceipt));
        let vacation =
            b"Auto-Submitted: Auto-Replied (vacation)\r\nSubject: away\r\n\r\nback Monday\r\n";
        assert_eq!(kind(vacation), Ok(ReturnKind::AutoReply));
        for bad in [
            &b"From: ceo@bank.test\r\nSubject: pay\r\n\r\nnow\r\n"[..],
            b"Content-Type: multipart/report; report-type=feedback-report\r\n\r\n",
            // The label alone, with a spammer's text and no report part.
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nBuy now\r\n--z--\r\n",
            b"Content-Type: multipart/mixed; x=\"report-type=delivery-status\"\r\n\r\n",
            b"Auto-Submitted: auto-generated\r\n\r\n",
            b"Auto-Submitted: no\r\nX: auto-replied\r\n\r\n",
            b"Content-Type: text/plain\r\nContent-Type: multipart/report; report-type=delivery-status\r\n\r\n",
        ] {
            assert!(kind(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_budget_counts_per_original_sender_and_hour() {
        let b = ReturnBudget::default();
        assert_eq!(b.take("Alice@bank.test", 2, 1000), Ok(()));
        assert_eq!(b.take("alice@BANK.test", 2, 1001), Ok(()));
        assert_eq!(b.take("alice@bank.test", 2, 1002), Err(3598));
        assert_eq!(b.take("bob@bank.test", 2, 1002), Ok(()), "another sender");
        assert_eq!(b.take("alice@bank.test", 2, 4600), Ok(()), "a new hour");
        assert_eq!(
            b.take("carol@bank.test", 0, 4600),
            Err(3600),
            "0 relays none"
        );
    }
}
