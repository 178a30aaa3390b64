//! The open ARC test suite, all 175 validation cases and 17 signing cases.

use crate::support::conformance_data;
use arclist_testbed::conformance::{DEVIATIONS, Outcome, run};

#[tokio::test]
async fn open_arc_test_suite_passes_except_documented_rfc_deviations() {
    let dir = conformance_data();
    let report = run(&dir.join("arc_test_suite")).await.expect("suite runs");
    let failed: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Failed)
        .collect();
    assert!(failed.is_empty(), "failed cases: {failed:#?}");
    // Every case is read, the four duplicate ids included.
    assert_eq!(report.counts("validation"), (171, 4, 0));
    assert_eq!(report.counts("signing"), (17, 0, 0));
    let mut deviated: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Deviation)
        .map(|c| c.id.as_str())
        .collect();
    deviated.sort_unstable();
    let mut documented: Vec<&str> = DEVIATIONS.iter().map(|(id, _)| *id).collect();
    documented.sort_unstable();
    assert_eq!(deviated, documented);
}
