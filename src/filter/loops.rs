//! Mail loops caught before `250`: a message that has passed too many hops, and a post that
//! carries the List-Id of the very list it is posted to (the list's own mail come back
//! through a member's forwarder, or through a list subscribed to it). Refused with `554
//! 5.4.6` (RFC 3463: routing loop detected), so the loop ends at the server that sent it and
//! nothing is accepted only to be dropped.

use super::Refusal;
use crate::auth::message::RawMessage;

/// Why `message`, for the list whose posting address is `list` (a post when `post`), is a
/// loop, if it is: more than `max_received` `Received` fields, or, for a post, the list's own
/// `List-Id` (RFC 2919: `<LOCAL.DOMAIN>`, as the list writes it).
pub fn refusal(message: &[u8], list: &str, post: bool, max_received: usize) -> Option<Refusal> {
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
    if !post {
        return None;
    }
    let id = own_list_id(list)?;
    let carries = parsed
        .fields("List-Id")
        .any(|f| f.unfolded_value().to_ascii_lowercase().contains(&id));
    carries.then(|| Refusal {
        code: 554,
        status: "5.4.6",
        text: format!(
            "mail loop: this message already carries this list's List-Id {id}, so the list sent it before"
        ),
    })
}

/// `<local.domain>` for the posting address `list`, lower-case.
fn own_list_id(list: &str) -> Option<String> {
    let (local, domain) = list.rsplit_once('@')?;
    Some(format!("<{local}.{domain}>").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_and_the_lists_own_id() {
        let received = "Received: from a by b; Sun, 6 Dec 2026 07:00:00 +0000\r\n";
        let many = format!("{}From: a@x.test\r\n\r\nhi\r\n", received.repeat(26));
        let r = refusal(many.as_bytes(), "team@lists.test", false, 25).expect("a loop");
        assert_eq!((r.code, r.status), (554, "5.4.6"));
        let enough = format!("{}From: a@x.test\r\n\r\nhi\r\n", received.repeat(25));
        assert_eq!(
            refusal(enough.as_bytes(), "team@lists.test", true, 25),
            None
        );
        let ours = b"List-Id: Team <Team.Lists.test>\r\nFrom: a@x.test\r\n\r\nhi\r\n";
        assert!(refusal(ours, "team@lists.test", true, 25).is_some());
        // Only posts: the bounce of a list copy carries the List-Id by right.
        assert_eq!(refusal(ours, "team@lists.test", false, 25), None);
        let other = b"List-Id: <other.lists.test>\r\nFrom: a@x.test\r\n\r\nhi\r\n";
        assert_eq!(refusal(other, "team@lists.test", true, 25), None);
    }
}
