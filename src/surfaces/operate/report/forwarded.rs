//! The report's section on forwarded mail: per forwarding domain, what arrived and what became
//! of it (forwarded, refused, let through on a trusted ARC chain, notifications sent back);
//! per author domain, the same columns as the lists' senders; per receiver class, the targets'
//! deliveries and bounces.

use super::{ReceiverRow, SenderRow, count_deliveries, finish};
use crate::state::store::{QueueEntry, SpoolMeta, SpoolState, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// One forwarding domain's messages.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct ForwardRow {
    /// The forwarding (alias) domain.
    pub domain: String,
    /// Messages to its aliases that were spooled.
    pub messages: u64,
    /// Queued for the targets.
    pub forwarded: u64,
    /// Refused after the spool (the screen applied again, a policy changed meanwhile).
    pub refused: u64,
    /// DMARC failures forwarded on a trusted sealer's ARC chain.
    pub arc_overrides: u64,
    /// The sealers behind those overrides.
    pub sealers: Vec<String>,
    /// Delivery status notifications sent to original senders.
    pub dsns: u64,
}

/// Forwarded mail in the report.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Forwarded {
    /// By forwarding domain.
    pub domains: Vec<ForwardRow>,
    /// By author (RFC5322.From) domain.
    pub senders: Vec<SenderRow>,
    /// The targets' deliveries, by receiver class.
    pub receivers: Vec<ReceiverRow>,
}

impl Forwarded {
    /// True when no forwarded mail arrived in the period.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

impl ForwardRow {
    fn count(&mut self, meta: &SpoolMeta) {
        if meta.facts.bounce.as_deref() == Some("dsn") {
            self.dsns += 1;
            return;
        }
        self.messages += 1;
        match meta.state {
            SpoolState::Queued => self.forwarded += 1,
            SpoolState::Rejected => self.refused += 1,
            _ => {}
        }
        if !meta.facts.arc_override.is_empty() {
            self.arc_overrides += 1;
            for s in &meta.facts.arc_override {
                if !self.sealers.contains(s) {
                    self.sealers.push(s.clone());
                }
            }
        }
    }
}

/// The section for messages spooled at or after `since`, from the spool's `metas` and the
/// delivery `queue`.
pub async fn build(
    store: &Store,
    metas: &[SpoolMeta],
    queue: &[QueueEntry],
    since: u64,
) -> Result<Forwarded, StoreError> {
    let mut domains: BTreeMap<String, ForwardRow> = BTreeMap::new();
    let mut senders: BTreeMap<String, SenderRow> = BTreeMap::new();
    let mut forwarded = HashSet::new();
    for meta in metas {
        let Some(domain) = &meta.facts.forwarded_by else {
            continue;
        };
        if meta.envelope.received_at < since {
            continue;
        }
        domains
            .entry(domain.clone())
            .or_insert_with(|| ForwardRow {
                domain: domain.clone(),
                ..ForwardRow::default()
            })
            .count(meta);
        if meta.facts.bounce.is_some() || meta.facts.from_domain.is_empty() {
            continue;
        }
        forwarded.insert(meta.id);
        senders
            .entry(meta.facts.from_domain.clone())
            .or_insert_with(|| SenderRow {
                domain: meta.facts.from_domain.clone(),
                ..SenderRow::default()
            })
            .count(meta);
    }
    let mut receivers = BTreeMap::new();
    count_deliveries(
        store,
        queue.iter().filter(|e| forwarded.contains(&e.id)),
        &mut receivers,
    )
    .await?;
    Ok(Forwarded {
        domains: domains.into_values().collect(),
        senders: senders.into_values().collect(),
        receivers: finish(receivers),
    })
}

impl Forwarded {
    /// The section as text tables (nothing when no forwarded mail arrived).
    pub fn text(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut out = String::from("\nForwarded mail\n");
        out.push_str(&format!(
            "  {:<28} {:>8} {:>9} {:>7} {:>12} {:>9}  sealers\n",
            "domain", "messages", "forwarded", "refused", "arc override", "dsns sent"
        ));
        for d in &self.domains {
            out.push_str(&format!(
                "  {:<28} {:>8} {:>9} {:>7} {:>12} {:>9}  {}\n",
                d.domain,
                d.messages,
                d.forwarded,
                d.refused,
                d.arc_overrides,
                d.dsns,
                d.sealers.join(", ")
            ));
        }
        out.push_str("\nForwarded mail by sender\n");
        out.push_str(&super::senders_table(&self.senders));
        out.push_str("\nForwarded mail by receiver\n");
        out.push_str(&super::receivers_table(&self.receivers));
        out
    }
}
