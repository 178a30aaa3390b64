//! What the spam filter said of the messages it let in (`docs/filtering.md`). What it refused
//! was never stored, so only the metrics count that (`arclist_filter_verdicts_total`).

use crate::state::store::FilterMark;
use serde::{Deserialize, Serialize};

/// The filter's verdicts on the messages the report covers.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Filtered {
    /// Messages with a verdict.
    pub checked: u64,
    /// Taken and flagged (`add header`, `rewrite subject`).
    pub flagged: u64,
    /// Posts the filter said to reject, held on the list's `spam_reject = "hold"`.
    pub held: u64,
    /// The highest score among them.
    pub highest_score: f64,
}

impl Filtered {
    /// Counts one message's verdict.
    pub(super) fn count(&mut self, mark: &FilterMark) {
        if self.checked == 0 || mark.score > self.highest_score {
            self.highest_score = mark.score;
        }
        self.checked += 1;
        if mark.must_not_pass() {
            self.held += 1;
        } else if matches!(mark.action.as_str(), "add header" | "rewrite subject") {
            self.flagged += 1;
        }
    }

    /// One paragraph, or nothing when no message had a verdict.
    pub fn text(&self) -> String {
        if self.checked == 0 {
            return String::new();
        }
        format!(
            "\nSpam filter: {} message(s) checked and taken, {} flagged, {} held for the moderator, highest score {:.2}. \
             Refused ones were never stored: arclist_filter_verdicts_total counts them.\n",
            self.checked, self.flagged, self.held, self.highest_score
        )
    }
}
