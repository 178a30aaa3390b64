//! The report page: `arclist report` for the lists a person may see, as tables and small
//! bar charts drawn on the server (inline SVG, no script): posts by outcome, deliveries by
//! receiver, and each receiver's complaint rate against Gmail's 0.1% and 0.3% lines.

use super::{Pages, page, pick};
use crate::surfaces::operate::report::SenderRow;
use crate::surfaces::web::serve::{Response, text};
use serde::Serialize;

/// One bar of a chart: its label, value, and length in percent of the longest.
#[derive(Serialize)]
struct Bar {
    label: String,
    value: u64,
    percent: f64,
}

fn bars(items: Vec<(String, f64)>) -> Vec<Bar> {
    let top = items.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    items
        .into_iter()
        .map(|(label, value)| Bar {
            percent: if top > 0.0 { 100.0 * value / top } else { 0.0 },
            label,
            value: value.round() as u64,
        })
        .collect()
}

/// One receiver's complaint rate, on a scale that ends at 0.5%.
#[derive(Serialize)]
struct Complaint {
    label: String,
    rate: f64,
    width: f64,
    verdict: String,
}

/// Posts by outcome, over every sender.
fn outcomes(senders: &[SenderRow]) -> Vec<(String, f64)> {
    let total = |pick: fn(&SenderRow) -> u64| senders.iter().map(|s| pick(s) as f64).sum();
    vec![
        ("queued".into(), total(|s| s.queued)),
        ("held".into(), total(|s| s.held)),
        ("rejected".into(), total(|s| s.rejected)),
        ("discarded".into(), total(|s| s.discarded)),
    ]
}

impl Pages<'_> {
    /// `GET /console/report?list=L&since=24h`: one list's report (an operator may leave the
    /// list out for all of them).
    pub(super) async fn report(&self, list: Option<&str>, since: &str) -> Response {
        let since = match since {
            "7d" => "7d",
            "30d" => "30d",
            _ => "24h",
        };
        let lists = self.own_lists();
        let chosen = pick(&lists, list).map(str::to_string).or_else(|| {
            self.user
                .lists
                .as_ref()
                .and_then(|_| lists.first().cloned())
        });
        // Only an operator's report may span every list: anyone else's names one of theirs.
        if self.user.lists.is_some() && chosen.is_none() {
            return text(404, "no list of yours to report on");
        }
        let Ok(report) = self.api.report(since, chosen.as_deref()).await else {
            return text(503, "the report cannot be made now; see the server log");
        };
        let outcomes = bars(outcomes(&report.senders));
        let delivered = bars(
            report
                .receivers
                .iter()
                .map(|r| (r.destination.clone(), r.delivered as f64))
                .collect(),
        );
        // Complaint rates on a scale that ends at 0.5%, with Gmail's lines marked on it.
        let complaints: Vec<Complaint> = report
            .receivers
            .iter()
            .map(|r| {
                let rate = r.complaint_rate_percent;
                Complaint {
                    label: r.destination.clone(),
                    rate: (rate * 1000.0).round() / 1000.0,
                    width: (rate.min(0.5) / 0.5 * 240.0 * 10.0).round() / 10.0,
                    verdict: r.complaint_verdict.clone(),
                }
            })
            .collect();
        page(
            "console_report.html",
            minijinja::context! {
                user => self.user.name, csrf => self.session.csrf, lists => super::links(&lists),
                list => chosen, since => since, report => report,
                outcomes => outcomes, delivered => delivered, complaints => complaints,
                everything => self.user.lists.is_none(),
            },
        )
    }
}
