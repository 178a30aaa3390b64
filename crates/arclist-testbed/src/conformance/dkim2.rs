//! Runs the dkim2wg interop corpus (`tests/data/dkim2`: 19 messages signed for
//! draft-ietf-dkim-dkim2-spec-06, with their keys, DNS records and expected verdicts) against
//! arclist's DKIM2 engine, which follows the newest draft ([`arclist_auth::dkim2::DRAFT`]).
//!
//! Every message is verified with the corpus's envelope and the timestamp check off (the
//! signatures are older than the 14 days). Where the verdict differs from the corpus's, the
//! draft change that explains it is named ([`draft_change`]); a difference no draft change
//! explains is a failure.

use super::SuiteError;
use arclist_auth::dkim2::{DRAFT, Dkim2Envelope, Dkim2Error, TimeCheck, verify_dkim2};
use arclist_auth::dns::{Resolver, Zone};
use arclist_auth::message::to_crlf;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// How one message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dkim2Outcome {
    /// The current draft's verdict is the corpus's.
    Agrees,
    /// It differs, and a draft change since the corpus's draft says why.
    DraftChange,
    /// It differs and nothing explains it.
    Failed,
}

/// One message's result.
#[derive(Debug, Clone, Serialize)]
pub struct Dkim2Case {
    /// The corpus's name for it.
    pub name: String,
    /// The corpus's expected verdict (under its draft).
    pub expected: String,
    /// arclist's verdict under the current draft.
    pub got: String,
    /// Why, when not pass (the draft's §14 wording).
    pub reason: String,
    /// How it ended.
    pub outcome: Dkim2Outcome,
    /// The draft change behind a difference, or what is unexplained.
    pub note: String,
}

/// The whole corpus run.
#[derive(Debug, Clone, Serialize)]
pub struct Dkim2Run {
    /// The corpus's draft.
    pub corpus_draft: String,
    /// The draft the verdicts follow.
    pub draft: &'static str,
    /// Every message, in the corpus's order.
    pub cases: Vec<Dkim2Case>,
}

#[derive(Deserialize)]
struct Corpus {
    spec: String,
    cases: Vec<CorpusCase>,
}

#[derive(Deserialize)]
struct CorpusCase {
    name: String,
    file: String,
    expected: Expected,
    envelope: Dkim2Envelope,
}

#[derive(Deserialize)]
struct Expected {
    verdict: String,
}

/// The draft change since -06 that turns the corpus's pass into `error`, if one does.
pub fn draft_change(error: &Dkim2Error) -> Option<&'static str> {
    match error {
        Dkim2Error::FromNotAuthentic(_) => Some(
            "-09 §11: the From of an instance must be within d= of the hop that introduced it (-06 had no From rule)",
        ),
        Dkim2Error::NullBodyRecipe(_) => {
            Some("-09 §13: a null body Recipe is a permerror (-08: fail; -06 allowed it)")
        }
        Dkim2Error::RecipeJson { .. } | Dkim2Error::RecipeInvalid { .. } => Some(
            "-07 §5: Recipe steps have exactly one key (c, d or u) and malformed JSON is a permerror",
        ),
        Dkim2Error::UnknownHash { .. } | Dkim2Error::UnknownAlgorithm { .. } => {
            Some("-09: an unknown algorithm is a permerror for its group")
        }
        _ => None,
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SuiteError> {
    std::fs::read(path).map_err(|source| SuiteError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The wire form: CRLF, with a final line end where the corpus's generator dropped the LF.
fn wire(raw: &[u8]) -> Vec<u8> {
    let mut m = to_crlf(raw);
    if !m.ends_with(b"\r\n") {
        m.extend_from_slice(b"\r\n");
    }
    m
}

fn judge(case: &CorpusCase, report: &arclist_auth::dkim2::Dkim2Report) -> Dkim2Case {
    let got = report.verdict.as_str().to_string();
    let (outcome, note) = if got == case.expected.verdict {
        (Dkim2Outcome::Agrees, String::new())
    } else {
        match report.error.as_ref().and_then(draft_change) {
            Some(change) => (Dkim2Outcome::DraftChange, change.to_string()),
            None => (
                Dkim2Outcome::Failed,
                "no draft change since the corpus's explains this".to_string(),
            ),
        }
    };
    Dkim2Case {
        name: case.name.clone(),
        expected: case.expected.verdict.clone(),
        got,
        reason: report.reason.clone(),
        outcome,
        note,
    }
}

/// Runs the corpus in `dir` (`cases.json`, `zone.txt` and the messages it names).
pub async fn run_dkim2(dir: &Path) -> Result<Dkim2Run, SuiteError> {
    let cases_path = dir.join("cases.json");
    let corpus: Corpus =
        serde_json::from_slice(&read(&cases_path)?).map_err(|e| SuiteError::Corpus {
            path: cases_path.clone(),
            reason: e.to_string(),
        })?;
    let zone_path = dir.join("zone.txt");
    let mut zone = Zone::new();
    zone.load_file(&zone_path)
        .map_err(|reason| SuiteError::Corpus {
            path: zone_path.clone(),
            reason: reason.to_string(),
        })?;
    let resolver = Resolver::Zone(Arc::new(zone));
    let mut cases = Vec::with_capacity(corpus.cases.len());
    for case in &corpus.cases {
        let message = wire(&read(&dir.join(&case.file))?);
        let report = verify_dkim2(&resolver, &message, Some(&case.envelope), TimeCheck::Off).await;
        cases.push(judge(case, &report));
    }
    Ok(Dkim2Run {
        corpus_draft: corpus.spec,
        draft: DRAFT,
        cases,
    })
}

impl Dkim2Run {
    /// (agree, differ by a draft change, failed).
    pub fn counts(&self) -> (usize, usize, usize) {
        let of = |o: Dkim2Outcome| self.cases.iter().filter(|c| c.outcome == o).count();
        (
            of(Dkim2Outcome::Agrees),
            of(Dkim2Outcome::DraftChange),
            of(Dkim2Outcome::Failed),
        )
    }

    /// True when every difference is explained by a draft change.
    pub fn ok(&self) -> bool {
        self.cases.iter().all(|c| c.outcome != Dkim2Outcome::Failed)
    }

    /// The table `arclist conformance` prints: one line per message, the corpus's verdict and
    /// the current draft's, and for a difference its reason and the draft change behind it.
    pub fn render(&self) -> String {
        let (a, d, f) = self.counts();
        let mut s = format!(
            "dkim2 corpus ({}) under {}: {} messages  {a} agree  {d} differ by a draft change  {f} failed\n",
            self.corpus_draft,
            self.draft,
            self.cases.len()
        );
        let w = self.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
        s.push_str(&format!("  {:<w$}  {:<6}  arclist\n", "message", "corpus"));
        for c in &self.cases {
            let mut line = format!("  {:<w$}  {:<6}  {}", c.name, c.expected, c.got);
            if c.outcome != Dkim2Outcome::Agrees {
                line.push_str(&format!("  {}; {}", c.reason, c.note));
            }
            s.push_str(line.trim_end());
            s.push('\n');
        }
        s
    }
}

/// Whether `dir` holds a DKIM2 corpus rather than the ARC suite.
pub fn is_dkim2_corpus(dir: &Path) -> bool {
    dir.join("cases.json").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn only_the_draft_changes_explain_a_difference() {
        assert!(draft_change(&Dkim2Error::FromNotAuthentic(1)).is_some_and(|c| c.contains("§11")));
        assert!(draft_change(&Dkim2Error::NullBodyRecipe(2)).is_some());
        assert_eq!(draft_change(&Dkim2Error::Expired(1)), None);
        assert_eq!(draft_change(&Dkim2Error::SequenceGap(2)), None);
    }

    #[test]
    fn a_missing_corpus_names_its_file() {
        let missing = PathBuf::from("/nonexistent-dkim2-corpus");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let err = rt.block_on(run_dkim2(&missing)).expect_err("no corpus");
        assert!(
            err.to_string()
                .contains("/nonexistent-dkim2-corpus/cases.json")
        );
    }
}
