//! Runs the open ARC test suite (ValiMail arc_test_suite) against arclist's engine; the
//! dkim2wg interop corpus runs through [`dkim2`].
//!
//! Validation cases check the chain verdict; signing cases seal with the suite's key, time and
//! header list and compare the new set with the suite's, per header as a set of tags with all
//! whitespace removed (the suite's own comparison). Where the suite disagrees with RFC 8617 or
//! RFC 6376, arclist follows the RFC and lists the case as a documented deviation.

pub mod dkim2;
pub mod yaml_tree;

use arclist_auth::arc::{ArcSealer, verify_arc, wanted_keys};
use arclist_auth::canon::BodyHashCache;
use arclist_auth::dns::{Resolver, Zone};
use arclist_auth::header_format::TagLayout;
use arclist_auth::key_lookup::KeyStore;
use arclist_auth::message::{RawMessage, to_crlf};
use arclist_auth::results::split_outside;
use arclist_auth::signing_key::SigningKey;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use yaml_tree::{Node, YamlError, parse_documents};

/// Why the suite could not be run at all (a case that fails is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A suite file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A suite file is not YAML.
    #[error("{}: {source}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: YamlError,
    },
    /// The DKIM2 corpus's cases or zone file do not parse.
    #[error("{}: {reason}", path.display())]
    Corpus {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The signing scenario's private key does not load.
    #[error("signing scenario key in {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What the key loader said.
        reason: String,
    },
}

/// Cases where the suite's expectation contradicts the RFCs, with the RFC's reason.
pub const DEVIATIONS: &[(&str, &str)] = &[
    (
        "cv_fail_i1_as_cv_fail",
        "RFC 8617 §5.2: a seal with cv=fail fails the chain; the suite expects an empty cv",
    ),
    (
        "cv_fail_i2_as2_fail",
        "RFC 8617 §5.2: a seal that does not verify fails the chain; the suite expects an empty cv",
    ),
    (
        "cv_fail_i2_as1_fail",
        "RFC 8617 §5.2: a seal that does not verify fails the chain; the suite expects an empty cv",
    ),
    (
        "ams_fields_c_na",
        "RFC 6376 §3.5: an absent c= means simple/simple, under which this AMS does not verify",
    ),
];

/// How one case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Matches the suite.
    Passed,
    /// Differs from the suite, and the difference is a documented RFC deviation.
    Deviation,
    /// Differs from the suite.
    Failed,
}

/// One case's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// `validation` or `signing`.
    pub kind: &'static str,
    /// The suite's id.
    pub id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// What the suite expected.
    pub expected: String,
    /// What arclist produced.
    pub got: String,
    /// For deviations, the RFC reason; for failures, detail.
    pub note: String,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// Every case, in file order.
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// (passed, deviations, failed) for `kind`.
    pub fn counts(&self, kind: &str) -> (usize, usize, usize) {
        let of = |o: Outcome| {
            self.cases
                .iter()
                .filter(|c| c.kind == kind && c.outcome == o)
                .count()
        };
        (
            of(Outcome::Passed),
            of(Outcome::Deviation),
            of(Outcome::Failed),
        )
    }

    /// True when nothing failed outside the documented deviations.
    pub fn ok(&self) -> bool {
        self.cases.iter().all(|c| c.outcome != Outcome::Failed)
    }

    /// The human table `arclist conformance` prints.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for kind in ["validation", "signing"] {
            let (p, d, f) = self.counts(kind);
            s.push_str(&format!(
                "{kind:<11} {:>4} cases  {p:>4} passed  {d:>2} RFC deviations  {f:>3} failed\n",
                p + d + f
            ));
        }
        let devs: Vec<&CaseResult> = self
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Deviation)
            .collect();
        if !devs.is_empty() {
            s.push_str("\ndocumented deviations (arclist follows the RFC):\n");
            for c in devs {
                s.push_str(&format!(
                    "  {:<28} suite={:<5} arclist={:<5} {}\n",
                    c.id, c.expected, c.got, c.note
                ));
            }
        }
        let failed: Vec<&CaseResult> = self
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .collect();
        if !failed.is_empty() {
            s.push_str("\nfailed:\n");
            for c in failed {
                s.push_str(&format!(
                    "  {} {:<28} expected={} got={} {}\n",
                    c.kind, c.id, c.expected, c.got, c.note
                ));
            }
        }
        s
    }
}

fn zone_of(doc: &Node) -> Zone {
    let mut zone = Zone::new();
    if let Some(records) = doc.get("txt-records") {
        for (name, value) in records.pairs() {
            zone.add_txt(name, value.text().trim());
        }
    }
    zone
}

fn deviation(id: &str) -> Option<&'static str> {
    DEVIATIONS
        .iter()
        .find(|(d, _)| *d == id)
        .map(|(_, why)| *why)
}

fn judge(
    kind: &'static str,
    id: &str,
    expected: String,
    got: String,
    detail: String,
) -> CaseResult {
    let (outcome, note) = if expected == got {
        (Outcome::Passed, String::new())
    } else if let Some(why) = deviation(id) {
        (Outcome::Deviation, why.to_string())
    } else {
        (Outcome::Failed, detail)
    };
    CaseResult {
        kind,
        id: id.to_string(),
        outcome,
        expected,
        got,
        note,
    }
}

/// Runs `arc-draft-validation-tests.yml` and `arc-draft-sign-tests.yml` from `dir`.
pub async fn run(dir: &Path) -> Result<Report, SuiteError> {
    let read = |name: &str| -> Result<Vec<Node>, SuiteError> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|source| SuiteError::Read {
            path: path.clone(),
            source,
        })?;
        parse_documents(&text).map_err(|source| SuiteError::Yaml { path, source })
    };
    let mut report = Report::default();
    for doc in read("arc-draft-validation-tests.yml")? {
        let resolver = Resolver::Zone(Arc::new(zone_of(&doc)));
        for (id, case) in doc.get("tests").map(Node::pairs).unwrap_or_default() {
            let message = to_crlf(
                case.get("message")
                    .map(Node::text)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            let parsed = RawMessage::parse(&message);
            let keys = KeyStore::fetch(&resolver, wanted_keys(&parsed)).await;
            let arc = verify_arc(&parsed, &mut BodyHashCache::new(parsed.body), &keys);
            let expected = case
                .get("cv")
                .map(Node::text)
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            report.cases.push(judge(
                "validation",
                id,
                expected,
                arc.verdict.as_str().to_string(),
                arc.reason,
            ));
        }
    }
    for doc in read("arc-draft-sign-tests.yml")? {
        let resolver = Resolver::Zone(Arc::new(zone_of(&doc)));
        let key = SigningKey::from_pem(doc.get("privatekey").map(Node::text).unwrap_or_default())
            .map_err(|e| SuiteError::Key {
            path: dir.join("arc-draft-sign-tests.yml"),
            reason: e.to_string(),
        })?;
        let sealer = ArcSealer::new(
            Arc::new(key),
            doc.get("domain").map(Node::text).unwrap_or_default(),
            doc.get("sel").map(Node::text).unwrap_or_default(),
        )
        .with_layout(TagLayout::SuiteCompatible);
        for (id, case) in doc.get("tests").map(Node::pairs).unwrap_or_default() {
            report
                .cases
                .push(run_sign_case(&sealer, &resolver, id, case).await);
        }
    }
    Ok(report)
}

async fn run_sign_case(
    sealer: &ArcSealer,
    resolver: &Resolver,
    id: &str,
    case: &Node,
) -> CaseResult {
    let field = |k: &str| case.get(k).map(Node::text).unwrap_or_default().to_string();
    let message = to_crlf(field("message").as_bytes());
    let parsed = RawMessage::parse(&message);
    let keys = KeyStore::fetch(resolver, wanted_keys(&parsed)).await;
    let report = verify_arc(&parsed, &mut BodyHashCache::new(parsed.body), &keys);
    let srv_id = field("srv-id");
    // The suite's sealer records what its own Authentication-Results say, arc= included.
    let statements: Vec<String> = parsed
        .fields("Authentication-Results")
        .filter_map(|f| {
            let parts = split_outside(&f.unfolded_value(), ';');
            (parts.first().map(|p| p.trim()) == Some(srv_id.as_str())).then(|| parts[1..].to_vec())
        })
        .flatten()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect();
    let cv = statements
        .iter()
        .find_map(|s| {
            s.strip_prefix("arc=")
                .map(|r| r.split_whitespace().next().unwrap_or_default().to_string())
        })
        .unwrap_or_else(|| report.verdict.as_str().to_string());
    let payload = std::iter::once(srv_id.clone())
        .chain(statements)
        .collect::<Vec<_>>()
        .join("; ");
    let h: Vec<String> = field("sig-headers")
        .split(':')
        .map(|s| s.trim().to_string())
        .collect();
    let t: u64 = field("t").trim().parse().unwrap_or(0);
    let sealer = sealer.clone().with_signed_headers(h);
    let expect = |k: &str| tag_set(&field(k));
    let expected_empty = field("AS").trim().is_empty();
    let expected = if expected_empty {
        "no set".to_string()
    } else {
        "set".to_string()
    };
    match sealer.seal_with_cv(&message, &report, &cv, &payload, t) {
        Err(refusal) => judge(
            "signing",
            id,
            expected,
            "no set".into(),
            refusal.to_string(),
        ),
        Ok(_) if expected_empty => judge(
            "signing",
            id,
            expected,
            "set".into(),
            "a set was added".into(),
        ),
        Ok(set) => {
            let value = |f: &str| {
                f.split_once(':')
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            };
            let mismatches: Vec<&str> = [
                ("AS", tag_set(&value(&set.seal)) != expect("AS")),
                ("AMS", tag_set(&value(&set.ams)) != expect("AMS")),
                ("AAR", tag_set(&value(&set.aar)) != expect("AAR")),
            ]
            .into_iter()
            .filter(|(_, bad)| *bad)
            .map(|(n, _)| n)
            .collect();
            let got = if mismatches.is_empty() {
                "set".to_string()
            } else {
                format!("set differing in {}", mismatches.join(","))
            };
            judge(
                "signing",
                id,
                expected,
                got,
                format!("our AS: {}", value(&set.seal).trim()),
            )
        }
    }
}

/// The suite's comparison: the header's `;`-separated parts with all whitespace removed.
fn tag_set(value: &str) -> BTreeSet<String> {
    value
        .split(';')
        .map(|p| p.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .filter(|p| !p.is_empty())
        .collect()
}
