//! The screens a complete message passes before `250` besides the session's own limits: mail
//! loops for list mail, then the spam filter for list posts and forwarded mail
//! ([`crate::stages::filter`]). Each refusal goes to the sending server, so none becomes backscatter.

use crate::base::metrics::MessageRefusal;
use crate::stages::filter::{Filter, Refusal, Scan, Verdict, loops};
use crate::state::store::SpoolEnvelope;

/// Whom one message is for, as RCPT found it.
pub struct Target<'a> {
    /// The list's posting address, `forward:DOMAIN` or `srs:ADDRESS` ([`crate::stages::directory::Recipient::list`]).
    pub group: &'a str,
    /// A recipient is the list's posting address.
    pub posting: bool,
    /// What the list's mail is screened by, for a list ([`crate::stages::directory::Directory::screen`]).
    pub list: Option<crate::stages::directory::ListScreen>,
    /// The client's host name, when a trusted relay named it.
    pub hostname: Option<&'a str>,
}

/// The refusal of a post bigger than its list's `max_message_size`, naming the limit.
fn too_big(message: &[u8], target: &Target<'_>) -> Option<Refusal> {
    let max = target.list.as_ref()?.max_message_size?;
    (target.posting && message.len() > max).then(|| Refusal {
        code: 552,
        status: "5.3.4",
        text: format!(
            "message size {} bytes exceeds the {max} byte limit of {} (max_message_size)",
            message.len(),
            target.group
        ),
    })
}

/// The refusal for `message` to `target`, if any; the filter's verdict on one it takes goes
/// into `envelope` (and, for a post, arclist's own authentication verdict with it).
pub async fn screen(
    filter: Option<&Filter>,
    max_received: usize,
    message: &[u8],
    envelope: &mut SpoolEnvelope,
    target: &Target<'_>,
) -> Option<Refusal> {
    if let Some(r) = too_big(message, target) {
        tracing::info!(client = %envelope.client_ip, list = %target.group, reason = %r.text, "post over the list's max_message_size; refused");
        crate::base::metrics::message_refused(MessageRefusal::Limits);
        return Some(r);
    }
    let forwarded = target.group.starts_with("forward:");
    let list_mail = !forwarded && !target.group.starts_with("srs:");
    let seal = target
        .list
        .as_ref()
        .and_then(|l| l.seal.as_ref())
        .map(|(d, s)| (d.as_str(), s.as_str()));
    let post = target.posting.then_some(loops::Post {
        list: target.group,
        seal,
    });
    if list_mail && let Some(r) = loops::refusal(message, post, max_received) {
        tracing::info!(client = %envelope.client_ip, list = %target.group, reason = %r.text, "refused as a mail loop");
        crate::base::metrics::message_refused(MessageRefusal::Loop);
        return Some(r);
    }
    let filter = filter?;
    if !(target.posting || forwarded) {
        return None;
    }
    if target.posting && envelope.verdict.is_none() {
        let sender = crate::auth::Envelope {
            ip: envelope.client_ip,
            helo: envelope.helo.clone(),
            mail_from: envelope.mail_from.clone(),
        };
        let v = filter.verify(message, &sender).await;
        // A verdict left open by DNS is not passed on: the filter checks for itself, and the
        // pipeline verifies again as it would have.
        if !v.has_temporary_error() {
            envelope.verdict = Some(Box::new(v));
        }
    }
    let scan = Scan {
        mail_from: &envelope.mail_from,
        rcpts: &envelope.rcpt_to,
        ip: envelope.client_ip,
        helo: &envelope.helo,
        hostname: target.hostname,
        verification: envelope.verdict.as_deref(),
        hold_reject: target.posting && target.list.as_ref().is_some_and(|l| l.hold_spam),
        target: target.group,
    };
    match filter.check(message, &scan).await {
        Verdict::Accept(mark) => {
            envelope.filter = mark;
            None
        }
        Verdict::Refuse(r) => {
            crate::base::metrics::message_refused(MessageRefusal::Filter);
            Some(r)
        }
    }
}
