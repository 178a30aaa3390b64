//! `arclist report`: what happened to whose mail, from the store. Per sender domain: posts
//! and what became of them, the DMARC policy seen, mitigations, ARC overrides and by whom.
//! Per receiver (Google, Microsoft, Yahoo, others): deliveries, deferrals, bounces, policy
//! rejections called out, and the complaint rate against Gmail's 0.1% and 0.3% lines.
//! Forwarded mail has a section of its own ([`forwarded`]): it is not the lists' mail, and
//! receivers judge it by its authors, not by the list domain. The spam filter's verdicts on
//! what it let in are a paragraph of their own ([`filtered`]).

pub mod filtered;
pub mod forwarded;

use crate::base::metrics::destination;
use crate::state::store::{DeliveryState, QueueEntry, SpoolMeta, SpoolState, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Gmail's sender guidelines: keep spam complaints under 0.1%, never reach 0.3%.
const COMPLAINTS_WARN: f64 = 0.1;
const COMPLAINTS_LIMIT: f64 = 0.3;

/// One sender domain's posts.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct SenderRow {
    /// The RFC5322.From domain.
    pub domain: String,
    /// Posts received.
    pub posts: u64,
    /// Distributed.
    pub queued: u64,
    /// Held for a moderator.
    pub held: u64,
    /// Refused.
    pub rejected: u64,
    /// Dropped.
    pub discarded: u64,
    /// DMARC policies seen (normally one).
    pub dmarc_policy: Vec<String>,
    /// Posts that failed DMARC on arrival.
    pub dmarc_fail: u64,
    /// Posts whose From was rewritten (or that were wrapped).
    pub mitigated: u64,
    /// DMARC failures let through on a trusted ARC chain.
    pub arc_overrides: u64,
    /// The sealers behind those overrides.
    pub sealers: Vec<String>,
}

/// One receiver class's deliveries.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReceiverRow {
    /// google, microsoft, yahoo or other.
    pub destination: String,
    /// Accepted with 250.
    pub delivered: u64,
    /// Waiting for another try.
    pub deferred: u64,
    /// Refused for good (at delivery, or by a later DSN).
    pub bounced: u64,
    /// Of the bounces, those that were the receiver's policy (5.7.26, 5.7.1, 5.7.509, 5.7.515,
    /// spam): the message, not the address.
    pub policy_rejections: u64,
    /// Spam complaints (ARF).
    pub complaints: u64,
    /// Complaints per delivered message, in percent.
    pub complaint_rate_percent: f64,
    /// `ok`, `warn` (over 0.1%) or `over` (0.3% or more: Gmail will junk or refuse).
    pub complaint_verdict: String,
}

/// The whole report.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Unix time the report starts at.
    pub since: u64,
    /// The list it is limited to, if any.
    pub list: Option<String>,
    /// By sender domain.
    pub senders: Vec<SenderRow>,
    /// By receiver.
    pub receivers: Vec<ReceiverRow>,
    /// What receivers' DMARC aggregate reports say of the list domains' mail, by reporting
    /// organization and day.
    #[serde(default)]
    pub reported: Vec<ReportedRow>,
    /// Mail to forwarding aliases; empty in a report for one list.
    #[serde(default)]
    pub forwarded: forwarded::Forwarded,
    /// What the spam filter said of the messages it let in.
    #[serde(default)]
    pub filtered: filtered::Filtered,
}

/// One receiver's DMARC aggregate reports for one day.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportedRow {
    /// The reporting organization.
    pub org: String,
    /// The day (UTC, `YYYY-MM-DD`) the reported period began.
    pub day: String,
    /// The domain reported on.
    pub domain: String,
    /// Messages counted.
    pub messages: u64,
    /// Messages that passed DMARC (aligned DKIM or SPF).
    pub dmarc_pass: u64,
    /// Messages with an aligned DKIM pass.
    pub dkim_pass: u64,
    /// Messages the receiver quarantined or rejected.
    pub quarantined_or_rejected: u64,
    /// Override reasons the receiver gave (`mailing_list`, `forwarded`, ...), with counts.
    pub reasons: BTreeMap<String, u64>,
}

/// The stored DMARC aggregate reports since `since` (on `domain` only, when given), by
/// organization, day and domain.
async fn reported(
    store: &Store,
    since: u64,
    domain: Option<&str>,
) -> Result<Vec<ReportedRow>, StoreError> {
    let mut rows: BTreeMap<(String, String, String), ReportedRow> = BTreeMap::new();
    for report in store.dmarc_reports(since).await? {
        if domain.is_some_and(|d| !d.eq_ignore_ascii_case(&report.domain)) {
            continue;
        }
        let day = crate::stages::trace::rfc5322_date(report.begin);
        let day = day.get(5..16).unwrap_or(&day).to_string();
        let key = (report.org.clone(), day.clone(), report.domain.clone());
        let row = rows.entry(key).or_insert_with(|| ReportedRow {
            org: report.org.clone(),
            day,
            domain: report.domain.clone(),
            ..Default::default()
        });
        for r in &report.rows {
            row.messages += r.count;
            if r.dkim == "pass" || r.spf == "pass" {
                row.dmarc_pass += r.count;
            }
            if r.dkim == "pass" {
                row.dkim_pass += r.count;
            }
            if matches!(r.disposition.as_str(), "quarantine" | "reject") {
                row.quarantined_or_rejected += r.count;
            }
            for reason in &r.reasons {
                *row.reasons.entry(reason.clone()).or_default() += r.count;
            }
        }
    }
    Ok(rows.into_values().collect())
}

/// True when a reply or DSN status is the receiver's policy rather than a bad address.
fn is_policy(reply: &str) -> bool {
    let r = reply.to_ascii_lowercase();
    [
        "5.7.1 ", "5.7.26", "5.7.509", "5.7.515", "dmarc", "spam", "policy",
    ]
    .iter()
    .any(|p| r.contains(p))
}

impl SenderRow {
    /// Counts one post of this sender domain.
    fn count(&mut self, meta: &SpoolMeta) {
        let f = &meta.facts;
        self.posts += 1;
        match meta.state {
            SpoolState::Queued => self.queued += 1,
            SpoolState::Held => self.held += 1,
            SpoolState::Rejected => self.rejected += 1,
            SpoolState::Discarded => self.discarded += 1,
            _ => {}
        }
        if !f.dmarc_policy.is_empty() && !self.dmarc_policy.contains(&f.dmarc_policy) {
            self.dmarc_policy.push(f.dmarc_policy.clone());
        }
        if f.dmarc == "fail" {
            self.dmarc_fail += 1;
        }
        if f.mitigated {
            self.mitigated += 1;
        }
        if !f.arc_override.is_empty() {
            self.arc_overrides += 1;
            for s in &f.arc_override {
                if !self.sealers.contains(s) {
                    self.sealers.push(s.clone());
                }
            }
        }
    }
}

impl ReceiverRow {
    /// Counts one bounced recipient with its last reply.
    fn bounced(&mut self, reply: &str) {
        self.bounced += 1;
        if is_policy(reply) {
            self.policy_rejections += 1;
        }
    }

    /// The row as reported for destination `name`, with its complaint rate judged.
    fn finish(mut self, name: &str) -> ReceiverRow {
        self.destination = name.to_string();
        self.complaint_rate_percent = if self.delivered == 0 {
            0.0
        } else {
            100.0 * self.complaints as f64 / self.delivered as f64
        };
        self.complaint_verdict = if self.complaint_rate_percent >= COMPLAINTS_LIMIT {
            "over"
        } else if self.complaint_rate_percent > COMPLAINTS_WARN {
            "warn"
        } else {
            "ok"
        }
        .to_string();
        self
    }
}

/// The destination class named `name` (as a summary keeps it), as the report's rows are keyed.
fn class(name: &str) -> &'static str {
    ["google", "microsoft", "yahoo"]
        .into_iter()
        .find(|c| *c == name)
        .unwrap_or("other")
}

/// Builds the report for messages received at or after `since`, for `list` or all lists.
pub async fn build(store: &Store, since: u64, list: Option<&str>) -> Result<Report, StoreError> {
    let wanted = |l: &Option<String>| match list {
        None => true,
        Some(want) => l.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(want)),
    };
    let mut senders: BTreeMap<String, SenderRow> = BTreeMap::new();
    let mut receivers: BTreeMap<&'static str, ReceiverRow> = BTreeMap::new();
    // Deliveries of posts count; notices and command replies are not what receivers judge.
    let mut posts = std::collections::HashSet::new();
    let metas = store.list().await?;
    let mut filtered = filtered::Filtered::default();
    for meta in &metas {
        if let Some(mark) = &meta.envelope.filter
            && meta.envelope.received_at >= since
            && (list.is_none() || wanted(&meta.facts.list))
        {
            filtered.count(mark);
        }
        if meta.envelope.received_at < since
            || !wanted(&meta.facts.list)
            || meta.facts.forwarded_by.is_some()
        {
            continue;
        }
        let f = &meta.facts;
        if let Some(kind) = &f.bounce {
            let who = f.bounce_for.as_deref().unwrap_or_default();
            let row = receivers.entry(destination(who)).or_default();
            match kind.as_str() {
                "complaint" => row.complaints += 1,
                "hard" | "soft" => row.bounced += 1,
                "policy" => {
                    row.bounced += 1;
                    row.policy_rejections += 1;
                }
                _ => {}
            }
            continue;
        }
        if f.from_domain.is_empty() {
            continue;
        }
        posts.insert(meta.id);
        let row = senders
            .entry(f.from_domain.clone())
            .or_insert_with(|| SenderRow {
                domain: f.from_domain.clone(),
                ..SenderRow::default()
            });
        row.count(meta);
    }
    let queue = store.queue().await?;
    let wanted_entry = |e: &QueueEntry| {
        posts.contains(&e.id)
            && e.queued_at >= since
            && (list.is_none() || wanted(&Some(e.list.clone())))
    };
    count_deliveries(
        store,
        queue.iter().filter(|e| wanted_entry(e)),
        &mut receivers,
    )
    .await?;
    let domain = list.and_then(|l| l.rsplit_once('@')).map(|(_, d)| d);
    Ok(Report {
        since,
        list: list.map(str::to_string),
        senders: senders.into_values().collect(),
        receivers: finish(receivers),
        reported: reported(store, since, domain).await?,
        forwarded: match list {
            Some(_) => forwarded::Forwarded::default(),
            None => forwarded::build(store, &metas, &queue, since).await?,
        },
        filtered,
    })
}

/// The receiver rows, each with its complaint rate judged.
fn finish(receivers: BTreeMap<&'static str, ReceiverRow>) -> Vec<ReceiverRow> {
    receivers
        .into_iter()
        .map(|(name, row)| row.finish(name))
        .collect()
}

/// Counts the deliveries of `entries` by receiver class: a finished one's summary, or the
/// records of one still under way.
async fn count_deliveries<'a>(
    store: &Store,
    entries: impl Iterator<Item = &'a QueueEntry>,
    receivers: &mut BTreeMap<&'static str, ReceiverRow>,
) -> Result<(), StoreError> {
    for entry in entries {
        if let Some(summary) = &entry.summary {
            // A finished post's records were compacted into its summary.
            for (destination, n) in &summary.delivered {
                receivers.entry(class(destination)).or_default().delivered += n;
            }
            for d in &summary.bounced {
                receivers
                    .entry(destination(&d.address))
                    .or_default()
                    .bounced(&d.last_reply);
            }
            continue;
        }
        for d in store.deliveries(entry.id).await? {
            let row = receivers.entry(destination(&d.address)).or_default();
            match d.state {
                DeliveryState::Delivered => row.delivered += 1,
                DeliveryState::Deferred | DeliveryState::Pending => row.deferred += 1,
                DeliveryState::Bounced => row.bounced(&d.last_reply),
            }
        }
    }
    Ok(())
}

impl Report {
    /// The report as text tables.
    pub fn text(&self) -> String {
        let mut out = format!(
            "arclist report since {}{}\n\nSenders\n",
            crate::stages::trace::rfc5322_date(self.since),
            self.list
                .as_deref()
                .map_or(String::new(), |l| format!(" for {l}"))
        );
        out.push_str(&senders_table(&self.senders));
        out.push_str("\nReceivers\n");
        out.push_str(&receivers_table(&self.receivers));
        let policy: u64 = self.receivers.iter().map(|r| r.policy_rejections).sum();
        if policy > 0 {
            out.push_str(&format!(
                "\n{policy} policy rejection(s): receivers refused the message, not the address \
                 (DMARC, spam filters). Check `arclist check-dns` and the mitigation settings.\n"
            ));
        }
        if !self.reported.is_empty() {
            out.push_str(&reported_table(&self.reported));
        }
        out.push_str(&self.forwarded.text());
        out.push_str(&self.filtered.text());
        out
    }
}

/// The senders table, header included.
fn senders_table(senders: &[SenderRow]) -> String {
    let mut out = format!(
        "  {:<28} {:>6} {:>7} {:>5} {:>8} {:>9}  {:<10} {:>9} {:>9} {:>10}  sealers\n",
        "domain",
        "posts",
        "queued",
        "held",
        "rejected",
        "discarded",
        "dmarc p=",
        "dmarc fail",
        "mitigated",
        "arc override"
    );
    for s in senders {
        out.push_str(&format!(
            "  {:<28} {:>6} {:>7} {:>5} {:>8} {:>9}  {:<10} {:>9} {:>9} {:>10}  {}\n",
            s.domain,
            s.posts,
            s.queued,
            s.held,
            s.rejected,
            s.discarded,
            s.dmarc_policy.join(","),
            s.dmarc_fail,
            s.mitigated,
            s.arc_overrides,
            s.sealers.join(", ")
        ));
    }
    out
}

/// The receivers table, header included.
fn receivers_table(receivers: &[ReceiverRow]) -> String {
    let mut out = format!(
        "  {:<10} {:>9} {:>8} {:>7} {:>17} {:>10} {:>15}\n",
        "receiver",
        "delivered",
        "deferred",
        "bounced",
        "policy rejections",
        "complaints",
        "complaint rate"
    );
    for r in receivers {
        out.push_str(&format!(
            "  {:<10} {:>9} {:>8} {:>7} {:>17} {:>10} {:>13.3}% {}\n",
            r.destination,
            r.delivered,
            r.deferred,
            r.bounced,
            r.policy_rejections,
            r.complaints,
            r.complaint_rate_percent,
            match r.complaint_verdict.as_str() {
                "over" => "OVER Gmail's 0.3% line: expect mail to be junked or refused",
                "warn" => "above Gmail's 0.1% target",
                _ => "",
            }
        ));
    }
    out
}

/// The table of what receivers' DMARC aggregate reports say.
fn reported_table(reported: &[ReportedRow]) -> String {
    let mut out = String::from("\nWhat receivers report (DMARC aggregate reports)\n");
    out.push_str(&format!(
        "  {:<22} {:<11} {:<24} {:>8} {:>10} {:>9} {:>10}  reasons\n",
        "organization", "day", "domain", "messages", "dmarc pass", "dkim pass", "quar/rej"
    ));
    for r in reported {
        let reasons: Vec<String> = r.reasons.iter().map(|(k, n)| format!("{k} {n}")).collect();
        out.push_str(&format!(
            "  {:<22} {:<11} {:<24} {:>8} {:>10} {:>9} {:>10}  {}\n",
            r.org,
            r.day,
            r.domain,
            r.messages,
            r.dmarc_pass,
            r.dkim_pass,
            r.quarantined_or_rejected,
            reasons.join(", ")
        ));
    }
    out
}

/// Why a duration (`--since`, `?since=`) does not parse; the text is quoted back.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No number in front.
    #[error("{text:?}: expected a number with s, m, h or d")]
    NotANumber {
        /// The duration as given.
        text: String,
    },
    /// A unit other than s, m, h or d.
    #[error("{text:?}: unknown unit {unit:?} (s, m, h or d)")]
    Unit {
        /// The duration as given.
        text: String,
        /// The unit as given.
        unit: String,
    },
}

/// Parses `24h`, `7d`, `90m` or plain seconds.
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number.parse().map_err(|_| DurationError::NotANumber {
        text: text.to_string(),
    })?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(DurationError::Unit {
                text: text.to_string(),
                unit: unit.to_string(),
            });
        }
    };
    Ok(n * factor)
}

/// Mails each list that asks for it (`daily_report = true`, with owners) its report for the 24
/// hours before `now`. Each report is spooled first, so it is delivered like any notice and
/// survives a crash. Returns how many were queued.
pub async fn mail_to_owners(
    store: &Store,
    lists: &crate::stages::list::Lists,
    hostname: &str,
    now: u64,
) -> Result<usize, StoreError> {
    let mut sent = 0;
    for list in lists.all() {
        let cfg = &list.config;
        if !cfg.daily_report || cfg.owners.is_empty() {
            continue;
        }
        let report = build(store, now.saturating_sub(86_400), Some(&cfg.address)).await?;
        let body = report.text().replace('\n', "\r\n");
        let owners = vec![format!("{}-owner@{}", cfg.local_part(), cfg.domain())];
        let envelope = crate::state::store::SpoolEnvelope::local(owners, hostname, now);
        let id = store.spool(envelope, body.clone().into_bytes()).await?;
        let Some((mut meta, _)) = store.get(id).await? else {
            continue;
        };
        meta.state = SpoolState::Queued;
        meta.note = Some("daily report for the owners".into());
        meta.facts.list = Some(cfg.address.clone());
        let subject = format!("{}: daily report", cfg.display_name());
        crate::stages::list::notice::send(
            store,
            &list,
            meta,
            crate::stages::list::notice::Notice {
                to: cfg.owners.clone(),
                subject: &subject,
                body: &body,
                reply_to: None,
            },
        )?;
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_policy_replies() {
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("soon").is_err());
        assert!(is_policy(
            "550 5.7.26 Unauthenticated email is not accepted"
        ));
        assert!(!is_policy("550 5.1.1 no such user"));
    }
}
