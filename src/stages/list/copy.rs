//! Stage 6: the list's copy of a post, with DMARC mitigation, subject tag, List-* headers,
//! footer and our trace field.

use super::footer::with_footer;
use super::policy::list_id;
use super::rewrite::Rewrite;
use super::subject::tagged;
use crate::auth::Verification;
use crate::auth::dmarc::Policy;
use crate::auth::message::RawMessage;
use crate::base::config::{DmarcMitigation, ListConfig, MitigateWhen};
use crate::base::header::mailbox;
use crate::stages::outbound::{Mail, Multipart, Part};
use crate::stages::trace::received;
use crate::state::store::SpoolMeta;

/// The author of a post as its From field names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Display name (decoded), possibly empty.
    pub name: String,
    /// The address.
    pub address: String,
}

/// The single From mailbox of `message`, or why there is not exactly one
/// ([`crate::auth::dmarc::single_author`]).
pub fn author(message: &[u8]) -> Result<Author, String> {
    let (name, address) = crate::auth::dmarc::single_author(message)?;
    Ok(Author { name, address })
}

/// Whether the list rewrites this author's posts (DMARC mitigation).
pub fn mitigates(list: &ListConfig, v: &Verification) -> bool {
    match list.mitigate {
        MitigateWhen::Always => true,
        MitigateWhen::Never => false,
        MitigateWhen::Policy => {
            matches!(v.dmarc.policy, Policy::Reject | Policy::Quarantine)
                || list
                    .mitigate_domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(&v.dmarc.from_domain))
        }
    }
}

/// Reply-To (the list's `reply_to`, the poster's own kept beside it) and, when From is
/// rewritten, what keeps the author reachable: Reply-To or Cc, and X-Original-From.
fn reply_fields(
    edit: &mut Rewrite,
    parsed: &RawMessage<'_>,
    list: &ListConfig,
    author: &Author,
    mitigate: bool,
) {
    let theirs: Option<String> = parsed
        .fields("Reply-To")
        .next()
        .map(|f| f.unfolded_value().trim().to_string());
    let reply_to = match list.reply_to.as_str() {
        "poster" => None,
        "list" => Some(list.address.as_str()),
        address => Some(address),
    };
    if let Some(target) = reply_to {
        // The list's (or the set) address first; the poster's own choice stays beside it.
        let value = match &theirs {
            Some(t) => format!("<{target}>, {t}"),
            None => format!("<{target}>"),
        };
        edit.replace("Reply-To", &value);
    }
    if mitigate {
        if theirs.is_none() && reply_to.is_none() {
            edit.prepend("Reply-To", &mailbox(&author.name, &author.address));
        } else if parsed.fields("Cc").next().is_none() {
            // Replies go where the poster or the list chose: keep the author reachable in Cc,
            // since From no longer names them.
            edit.prepend("Cc", &mailbox(&author.name, &author.address));
        }
        edit.prepend("X-Original-From", &mailbox(&author.name, &author.address));
    }
}

/// Builds the list's copy of `message`. Returns the copy and notes for the log (a footer left
/// out and why).
pub fn list_copy(
    list: &ListConfig,
    message: &[u8],
    v: &Verification,
    meta: &SpoolMeta,
    hostname: &str,
    per_recipient_unsubscribe: bool,
) -> (Vec<u8>, Vec<String>) {
    let parsed = RawMessage::parse(message);
    let mut notes = Vec::new();
    // Posts without exactly one author never get here (refused before 250, or rejected by
    // the pipeline); the envelope sender only keeps this function total.
    let author = author(message).unwrap_or_else(|_| Author {
        name: String::new(),
        address: meta.envelope.mail_from.clone(),
    });
    let shown = if author.name.is_empty() {
        author.address.clone()
    } else {
        author.name.clone()
    };
    let list_name = list.display_name();
    let mitigate = mitigates(list, v) && list.dmarc_mitigation != DmarcMitigation::None;
    if mitigate && list.dmarc_mitigation == DmarcMitigation::WrapMessage {
        return (
            wrapped(
                list,
                message,
                &author,
                meta,
                hostname,
                per_recipient_unsubscribe,
            ),
            notes,
        );
    }

    let mut edit = Rewrite::new();
    edit.prepend("Received", &received(meta, hostname, &list.address));
    for (name, value) in list_headers(list, per_recipient_unsubscribe) {
        edit.prepend(name, &value);
    }
    for name in [
        "return-path",
        "delivered-to",
        "list-id",
        "list-post",
        "list-help",
        "list-subscribe",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-archive",
        "list-owner",
        "x-original-from",
        "precedence",
    ] {
        edit.remove(name);
    }
    edit.prepend("Precedence", "list");
    if mitigate {
        edit.replace(
            "From",
            &mailbox(&format!("{shown} via {list_name}"), &list.address),
        );
    }
    reply_fields(&mut edit, &parsed, list, &author, mitigate);
    let (subject, rewritten) = screened(&mut edit, &parsed, meta, mitigate);
    // rspamd's subject is written even when the tag is already there or the list has none.
    let written = match tagged(subject.as_deref(), &list.subject_tag) {
        Some(s) => Some(s),
        None if rewritten => subject,
        None => None,
    };
    if let Some(s) = written {
        edit.replace("Subject", &s);
    }
    if !list.footer.is_empty() {
        match with_footer(&parsed, &list.footer) {
            Ok(footed) => {
                for (name, value) in &footed.fields {
                    edit.replace(name, value);
                }
                edit.body(footed.body);
            }
            Err(why) => notes.push(format!("footer left out: {why}")),
        }
    }
    (edit.apply(message), notes)
}

/// The edits of what was screened before `250` (`docs/filtering.md`): forged BIMI fields
/// out, the author's `BIMI-Selector` out when From is rewritten (`mitigate`), the spam
/// filter's flag in. Returns the subject the list tags: the filter's, when it rewrote it.
fn screened(
    edit: &mut Rewrite,
    parsed: &RawMessage<'_>,
    meta: &SpoolMeta,
    mitigate: bool,
) -> (Option<String>, bool) {
    // Only the receiving mailbox provider writes these: one arriving here is a forged logo.
    for name in crate::stages::filter::bimi::RECEIVER_FIELDS {
        edit.remove(name);
    }
    if mitigate {
        // The author domain's choice of logo, on a message that is now From the list.
        edit.remove("bimi-selector");
    }
    let filter = meta.envelope.filter.as_ref();
    if filter.is_some_and(|f| matches!(f.action.as_str(), "add header" | "rewrite subject")) {
        edit.replace("X-Spam", "Yes");
    }
    match filter.and_then(|f| f.subject.clone()) {
        Some(rewritten) => (Some(rewritten), true),
        None => (
            parsed.fields("Subject").next().map(|f| f.unfolded_value()),
            false,
        ),
    }
}

/// RFC 2369 / RFC 2919 / RFC 8058 fields, in the order they are written.
pub(crate) fn list_headers(
    list: &ListConfig,
    per_recipient_unsubscribe: bool,
) -> Vec<(&'static str, String)> {
    let (local, domain) = (list.local_part(), list.domain());
    let mut out = vec![
        (
            "List-Id",
            format!(
                "{} <{}>",
                crate::base::header::phrase(list.display_name()),
                list_id(list)
            ),
        ),
        ("List-Post", format!("<mailto:{}>", list.address)),
        (
            "List-Help",
            format!("<mailto:{local}-request@{domain}?subject=help>"),
        ),
        ("List-Subscribe", format!("<mailto:{local}-join@{domain}>")),
    ];
    if !per_recipient_unsubscribe {
        // With one-click unsubscribe each member gets their own List-Unsubscribe at delivery.
        out.push((
            "List-Unsubscribe",
            format!("<mailto:{local}-leave@{domain}>"),
        ));
    }
    // A list with its own archive gets its List-Archive with its Archived-At (`archive.rs`).
    if let Some(url) = list
        .archive_url
        .as_ref()
        .filter(|_| !super::archive::archives(list))
    {
        out.push(("List-Archive", format!("<{url}>")));
    }
    out
}

/// The post as a message/rfc822 attachment from the list (`wrap_message`).
fn wrapped(
    list: &ListConfig,
    message: &[u8],
    author: &Author,
    meta: &SpoolMeta,
    hostname: &str,
    per_recipient_unsubscribe: bool,
) -> Vec<u8> {
    let parsed = RawMessage::parse(message);
    let list_name = list.display_name();
    let keep = |name: &str| {
        parsed
            .fields(name)
            .next()
            .map(|f| String::from_utf8_lossy(f.raw).into_owned())
            .unwrap_or_default()
    };
    let subject = parsed.fields("Subject").next().map(|f| f.unfolded_value());
    let subject = tagged(subject.as_deref(), &list.subject_tag)
        .or(subject)
        .unwrap_or_default();
    let shown = if author.name.is_empty() {
        &author.address
    } else {
        &author.name
    };
    let words = format!(
        "The post from {} is attached: its domain asks receivers to refuse mail it did not send itself.\r\n\r\n",
        author.address
    );
    let body = Multipart::new(
        "mixed",
        &format!("arclist-{}-{}", meta.id, meta.envelope.received_at),
    )
    .part(Part::new("text/plain; charset=utf-8", words))
    .part(Part::new("message/rfc822", message).field("Content-Disposition", "inline"))
    .finish();
    let mut mail = Mail::new().field("Received", &received(meta, hostname, &list.address));
    for (name, value) in list_headers(list, per_recipient_unsubscribe) {
        mail = mail.field(name, &value);
    }
    mail.field(
        "From",
        &mailbox(&format!("{shown} via {list_name}"), &list.address),
    )
    .field("Reply-To", &mailbox(&author.name, &author.address))
    .copied(&keep("To"))
    .copied(&keep("Cc"))
    .copied(&keep("Date"))
    .copied(&keep("Message-ID"))
    .field("Subject", &subject)
    .field("Precedence", "list")
    .finish(body)
}
