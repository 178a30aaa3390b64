//! A spool record that does not decode (written by a newer arclist, damaged on disk) would
//! fail every read of it for ever: the pipeline would retry it without end, and every listing
//! of the spool would fail with it. What of it still decodes is rebuilt into a record a person
//! can look at ([`super::Store::set_aside`]): held, with the reason in its note.

use super::{Facts, SpoolEnvelope, SpoolId, SpoolMeta, SpoolState};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Field `name` of `record`, if it is there and decodes.
fn field<T: DeserializeOwned>(record: &Value, name: &str) -> Option<T> {
    serde_json::from_value(record.get(name)?.clone()).ok()
}

/// The envelope as far as it decodes: the recipients say which list it was for, the sender
/// and client who sent it.
fn envelope(record: &Value) -> SpoolEnvelope {
    if let Some(whole) = field::<SpoolEnvelope>(record, "envelope") {
        return SpoolEnvelope {
            verdict: None,
            ..whole
        };
    }
    let part = record.get("envelope").cloned().unwrap_or(Value::Null);
    SpoolEnvelope {
        mail_from: field(&part, "mail_from").unwrap_or_default(),
        rcpt_to: field(&part, "rcpt_to").unwrap_or_default(),
        client_ip: field(&part, "client_ip")
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        helo: field(&part, "helo").unwrap_or_default(),
        protocol: field(&part, "protocol").unwrap_or_default(),
        tls: field(&part, "tls"),
        received_at: field(&part, "received_at").unwrap_or_else(crate::auth::unix_now),
        verdict: None,
        filter: field(&part, "filter"),
        over_quota: field(&part, "over_quota"),
    }
}

impl SpoolMeta {
    /// Rebuilds the record of message `id` (`size` bytes) from `raw`, its stored JSON that does
    /// not decode as a whole, keeping every field that decodes alone. A message the pipeline
    /// had yet to finish, or whose state is unreadable, is held; a finished one keeps its
    /// state. The verdict that came with the envelope is dropped: it is verified again if a
    /// moderator approves the message.
    pub fn salvage(id: SpoolId, raw: &str, size: usize) -> SpoolMeta {
        let record: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
        let state = field::<SpoolState>(&record, "state")
            .filter(|s| !s.unfinished())
            .unwrap_or(SpoolState::Held);
        SpoolMeta {
            id,
            envelope: envelope(&record),
            state,
            size,
            auth_results: field(&record, "auth_results"),
            attempts: field(&record, "attempts").unwrap_or_default(),
            note: field(&record, "note"),
            facts: field::<Facts>(&record, "facts").unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_with_one_bad_field_keeps_the_rest_and_is_held() {
        let raw = r#"{"id":9,"envelope":{"mail_from":"a@x.test","rcpt_to":["l@lists.test"],
            "client_ip":"192.0.2.1","helo":"mx.x.test","protocol":"ESMTP","received_at":5},
            "state":"received","size":"many","attempts":2}"#;
        let meta = SpoolMeta::salvage(9, raw, 120);
        assert_eq!(meta.state, SpoolState::Held);
        assert_eq!(meta.envelope.rcpt_to, ["l@lists.test"]);
        assert_eq!((meta.size, meta.attempts), (120, 2));
    }

    #[test]
    fn bytes_that_are_no_json_still_make_a_held_record() {
        let meta = SpoolMeta::salvage(3, "\u{0}garbage", 10);
        assert_eq!((meta.id, meta.state), (3, SpoolState::Held));
        assert!(meta.envelope.rcpt_to.is_empty());
    }

    #[test]
    fn a_finished_message_keeps_its_state() {
        let meta = SpoolMeta::salvage(4, r#"{"state":"queued","facts":7}"#, 1);
        assert_eq!(meta.state, SpoolState::Queued);
    }
}
