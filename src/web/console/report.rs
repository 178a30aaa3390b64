//! The report page: `arclist report` for the lists a person may see, as tables and small
//! bar charts drawn on the server (inline SVG, no script): posts by outcome, deliveries by
//! receiver, and each receiver's complaint rate against Gmail's 0.1% and 0.3% lines.

use super::{Pages, page, pick};
use crate::store::Store;
use crate::web::serve::{Response, text};
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

/// Sum of field `name` over the rows of `table`.
fn total(table: &serde_json::Value, name: &str) -> f64 {
    table
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r[name].as_f64()).sum())
        .unwrap_or(0.0)
}

impl<S: Store> Pages<'_, S> {
    /// `GET /console/report?list=L&since=24h`: one list's report (an operator may leave the
    /// list out for all of them).
    pub(super) async fn report(&self, list: Option<&str>, since: &str) -> Response {
        let since = match since {
            "7d" | "30d" => since,
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
        let mut query = format!("since={since}");
        if let Some(l) = &chosen {
            query.push_str(&format!("&list={}", super::encode(l)));
        }
        let Some((200, report)) = self.call_query("GET", "/api/report".into(), &query).await else {
            return text(503, "the report cannot be made now; see the server log");
        };
        let senders = &report["senders"];
        let receivers = &report["receivers"];
        let outcomes = bars(
            ["queued", "held", "rejected", "discarded"]
                .iter()
                .map(|o| (o.to_string(), total(senders, o)))
                .collect(),
        );
        let delivered = bars(
            receivers
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let name = r["destination"].as_str().unwrap_or_default().to_string();
                    (name, r["delivered"].as_f64().unwrap_or(0.0))
                })
                .collect(),
        );
        // Complaint rates on a scale that ends at 0.5%, with Gmail's lines marked on it.
        let complaints: Vec<serde_json::Value> = receivers
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let rate = r["complaint_rate_percent"].as_f64().unwrap_or(0.0);
                serde_json::json!({
                    "label": r["destination"],
                    "rate": (rate * 1000.0).round() / 1000.0,
                    "width": (rate.min(0.5) / 0.5 * 240.0 * 10.0).round() / 10.0,
                    "verdict": r["complaint_verdict"],
                })
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
