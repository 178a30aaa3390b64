//! Receivers' DMARC aggregate reports about a list domain's mail, arriving at the report
//! address (`[server] dmarc_reports`): read ([`crate::auth::dmarc_report`]), kept for
//! `arclist report`, counted for the metrics. They tell the operator whether Gmail, Microsoft
//! and Yahoo see the list's mail pass DMARC, and what they did with it.

use crate::auth::dmarc_report::reports_in;
use crate::state::store::{SpoolMeta, SpoolState, Store, StoreError};

/// Reads the reports in `message` (sent to `list`'s domain) and records the outcome.
pub fn receive(
    store: &Store,
    list: &str,
    mut meta: SpoolMeta,
    message: &[u8],
) -> Result<(), StoreError> {
    meta.facts.list = Some(list.to_string());
    meta.state = SpoolState::Done;
    let note = match reports_in(message) {
        Ok(reports) => {
            let mut notes = Vec::new();
            for report in &reports {
                let new = crate::state::store::wait(store.put_dmarc_report(report))?;
                let messages: u64 = report.rows.iter().map(|r| r.count).sum();
                let passed: u64 = report
                    .rows
                    .iter()
                    .filter(|r| r.dkim == "pass" || r.spf == "pass")
                    .map(|r| r.count)
                    .sum();
                if new {
                    crate::base::metrics::dmarc_reported(&report.org, "pass", passed);
                    crate::base::metrics::dmarc_reported(&report.org, "fail", messages - passed);
                }
                notes.push(format!(
                    "DMARC report {} from {} on {}: {messages} message(s), {passed} passed{}",
                    report.report_id,
                    report.org,
                    report.domain,
                    if new { "" } else { " (already kept)" }
                ));
            }
            notes.join("; ")
        }
        Err(e) => format!("not a readable DMARC aggregate report: {e}"),
    };
    tracing::info!(id = meta.id, %list, %note, "DMARC report");
    meta.note = Some(note);
    crate::state::store::wait(store.update(&meta))
}
