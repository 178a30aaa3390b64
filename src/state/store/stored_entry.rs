//! A stored queue entry read for everything but its list of recipients.
//!
//! Queueing keeps the list of recipients in the entry: once a post's records are compacted
//! into its summary, it is what names the members a late bounce or complaint may be about
//! ([`super::Store::outcomes`]). A million-member post's list is tens of megabytes, and the
//! fan-out's copy, settling and pruning read the entry every round: they read it as raw JSON,
//! which costs a copy of the bytes instead of a string per member, and write it back as it was.

use super::{DeliverySummary, Fault, QueueEntry, SpoolId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A [`QueueEntry`] as stored, its recipients left as JSON.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredEntry {
    pub(crate) id: SpoolId,
    pub(crate) list: String,
    pub(crate) mail_from: String,
    #[serde(default = "StoredEntry::no_recipients")]
    pub(crate) recipients: Box<RawValue>,
    pub(crate) queued_at: u64,
    #[serde(default)]
    pub(crate) summary: Option<DeliverySummary>,
    #[serde(default)]
    pub(crate) plain: bool,
}

impl StoredEntry {
    /// An empty list of recipients.
    pub(crate) fn no_recipients() -> Box<RawValue> {
        RawValue::from_string("[]".to_string()).unwrap_or_else(|_| unreachable!("[] is JSON"))
    }

    /// Reads a stored entry; `what` names it in the error.
    pub(crate) fn parse(json: &str, what: &str) -> Result<StoredEntry, Fault> {
        serde_json::from_str(json).map_err(|e| Fault::corrupt(format!("corrupt {what}: {e}")))
    }

    /// The entry as written, recipients included.
    pub(crate) fn to_json(&self) -> Result<String, Fault> {
        Ok(serde_json::to_string(self)?)
    }

    /// The entry without its recipients (see the module's doc).
    pub(crate) fn without_recipients(self) -> QueueEntry {
        QueueEntry {
            id: self.id,
            list: self.list,
            mail_from: self.mail_from,
            recipients: Vec::new(),
            queued_at: self.queued_at,
            summary: self.summary,
            plain: self.plain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_written_back_keeps_its_recipients_and_reads_without_them() {
        let entry = QueueEntry {
            id: 7,
            list: "members@lists.example".into(),
            mail_from: "members-bounces@lists.example".into(),
            recipients: vec!["A@x.example".into(), "b@y.example".into()],
            queued_at: 1_700_000_000,
            summary: None,
            plain: true,
        };
        let json = serde_json::to_string(&entry).expect("json");
        let mut stored = StoredEntry::parse(&json, "entry 7").expect("parse");
        assert!(stored.summary.is_none());
        stored.summary = Some(DeliverySummary {
            finished_at: 1_700_000_100,
            ..DeliverySummary::default()
        });
        let back: QueueEntry =
            serde_json::from_str(&stored.to_json().expect("json")).expect("entry");
        assert_eq!(
            back.recipients, entry.recipients,
            "the list is kept as written"
        );
        assert_eq!(back.summary.map(|s| s.finished_at), Some(1_700_000_100));
        let lean = StoredEntry::parse(&json, "entry 7")
            .expect("parse")
            .without_recipients();
        assert!(lean.recipients.is_empty());
        assert_eq!((lean.id, lean.plain), (7, true));
        assert_eq!(lean.mail_from, entry.mail_from);
        // An entry written without the field (none are, but a hand-made one may be) reads.
        let bare = r#"{"id":1,"list":"l@x","mail_from":"m@x","queued_at":2}"#;
        let read: QueueEntry = serde_json::from_str(
            &StoredEntry::parse(bare, "entry 1")
                .expect("parse")
                .to_json()
                .expect("json"),
        )
        .expect("entry");
        assert!(read.recipients.is_empty());
        assert!(StoredEntry::parse("{", "entry 2").is_err());
    }
}
