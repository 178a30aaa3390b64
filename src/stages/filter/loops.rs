//! Mail loops caught before `250`: a message that has passed too many hops, and a post that
//! carries the List-Id or the ARC seal of the very list it is posted to (the list's own mail
//! come back through a member's forwarder, or through a list subscribed to it). Refused with
//! `554 5.4.6` (RFC 3463: routing loop detected), so the loop ends at the server that sent it
//! and nothing is accepted only to be dropped.

use super::Refusal;
use crate::auth::message::RawMessage;

/// A post to a list, for the loop checks only posts get.
#[derive(Debug, Clone, Copy)]
pub struct Post<'a> {
    /// The list's posting address.
    pub list: &'a str,
    /// The list's ARC seal, `d=` and `s=`, when the list is served.
    pub seal: Option<(&'a str, &'a str)>,
}

/// Why `message` to a list is a loop, if it is: more than `max_received` `Received` fields,
/// or, for a `post`, the list's own `List-Id` (RFC 2919: `<LOCAL.DOMAIN>`, as the list
/// writes it) or the list's own ARC seal.
pub fn refusal(message: &[u8], post: Option<Post<'_>>, max_received: usize) -> Option<Refusal> {
    let parsed = RawMessage::parse(message);
    let hops = parsed.fields("Received").count();
    if hops > max_received {
        return Some(Refusal {
            code: 554,
            status: "5.4.6",
            text: format!(
                "{hops} Received fields (more than {max_received}): too many hops, probably a mail loop"
            ),
        });
    }
    let post = post?;
    let looped = |what: String| Refusal {
        code: 554,
        status: "5.4.6",
        text: format!("mail loop: this message already carries {what}, so the list sent it before"),
    };
    let id = own_list_id(post.list)?;
    if parsed
        .fields("List-Id")
        .any(|f| f.unfolded_value().to_ascii_lowercase().contains(&id))
    {
        return Some(looped(format!("this list's List-Id {id}")));
    }
    let (d, s) = post.seal?;
    sealed_by(&parsed, d, s).then(|| looped(format!("this list's ARC seal (d={d}, s={s})")))
}

/// Whether an `ARC-Seal` of `message` is by `domain` with `selector` (compared without case).
pub fn sealed_by(message: &RawMessage<'_>, domain: &str, selector: &str) -> bool {
    let ours = format!("d={}", domain.to_ascii_lowercase());
    let sel = format!("s={}", selector.to_ascii_lowercase());
    message
        .fields("ARC-Seal")
        .map(|f| f.unfolded_value().to_ascii_lowercase().replace(' ', ""))
        .any(|v| v.split(';').any(|t| t.trim() == ours) && v.split(';').any(|t| t.trim() == sel))
}

/// `<local.domain>` for the posting address `list`, lower-case.
fn own_list_id(list: &str) -> Option<String> {
    let (local, domain) = list.rsplit_once('@')?;
    Some(format!("<{local}.{domain}>").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POST: Option<Post<'static>> = Some(Post {
        list: "team@lists.test",
        seal: Some(("lists.test", "arc1")),
    });

    #[test]
    fn hops_and_the_lists_own_id() {
        let received = "Received: from a by b; Sun, 6 Dec 2026 07:00:00 +0000\r\n";
        let many = format!("{}From: a@x.test\r\n\r\nhi\r\n", received.repeat(26));
        let r = refusal(many.as_bytes(), None, 25).expect("a loop");
        assert_eq!((r.code, r.status), (554, "5.4.6"));
        let enough = format!("{}From: a@x.test\r\n\r\nhi\r\n", received.repeat(25));
        assert_eq!(refusal(enough.as_bytes(), POST, 25), None);
        let ours = b"List-Id: Team <Team.Lists.test>\r\nFrom: a@x.test\r\n\r\nhi\r\n";
        assert!(refusal(ours, POST, 25).is_some());
        // Only posts: the bounce of a list copy carries the List-Id by right.
        assert_eq!(refusal(ours, None, 25), None);
        let other = b"List-Id: <other.lists.test>\r\nFrom: a@x.test\r\n\r\nhi\r\n";
        assert_eq!(refusal(other, POST, 25), None);
    }

    #[test]
    fn the_lists_own_seal() {
        let seal = |d: &str, s: &str| {
            format!(
                "ARC-Seal: i=1; a=rsa-sha256; cv=none; d={d}; s={s}; t=1; b=x\r\nFrom: a@x.test\r\n\r\nhi\r\n"
            )
        };
        let r = refusal(seal("Lists.test", "ARC1").as_bytes(), POST, 25).expect("its own seal");
        assert!(
            r.text.contains("ARC seal (d=lists.test, s=arc1)"),
            "{}",
            r.text
        );
        assert_eq!(
            refusal(seal("lists.test", "other").as_bytes(), POST, 25),
            None
        );
        assert_eq!(
            refusal(seal("other.test", "arc1").as_bytes(), POST, 25),
            None
        );
    }
}
