//! What a message to a list or an alias must pass before `250` besides the SMTP limits: the
//! spam and malware filter (rspamd, `rspamd.rs`), mail loops (`loops.rs`), and forged BIMI
//! fields (`bimi.rs`, applied later, to the copy that leaves), and quotas (`quotas.rs`). A list or an alias multiplies
//! what it accepts, and whatever it refuses after `250` becomes backscatter: so the filter's
//! refusals happen in the SMTP session, to the sender's own server.

pub mod bimi;
pub mod loops;
pub mod quotas;
pub mod rspamd;

use crate::auth::Verification;
use crate::base::config::{FilterConfig, FilterOnError};
use crate::base::metrics::FilterAction;
pub use crate::state::store::FilterMark;
use std::net::IpAddr;
use std::time::Duration;

/// An SMTP refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 4xx or 5xx.
    pub code: u16,
    /// The enhanced status code.
    pub status: &'static str,
    /// The text for the sender.
    pub text: String,
}

/// What the filter decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Take the message, with the filter's mark when it gave one (none when it could not
    /// answer and `on_error = "accept"`).
    Accept(Option<FilterMark>),
    /// Refuse it.
    Refuse(Refusal),
}

/// What the session knows of one message, for the filter's request.
pub struct Scan<'a> {
    /// MAIL FROM (empty for the null sender).
    pub mail_from: &'a str,
    /// The accepted recipients.
    pub rcpts: &'a [String],
    /// The client's address (a trusted relay's client in its place).
    pub ip: IpAddr,
    /// The client's HELO name.
    pub helo: &'a str,
    /// The client's host name, when a trusted relay named it (XCLIENT NAME).
    pub hostname: Option<&'a str>,
    /// arclist's own SPF, DKIM and DMARC results, passed on so the filter need not redo them.
    pub verification: Option<&'a Verification>,
    /// The list holds posts the filter rejects instead of refusing them.
    pub hold_reject: bool,
    /// Whom the message is for, for log lines: a list's address, or `forward:DOMAIN`.
    pub target: &'a str,
}

/// The filter the SMTP session asks.
#[derive(Clone)]
pub struct Filter {
    rspamd: rspamd::Rspamd,
    /// Verifies list posts before `250`, so their results go to the filter (and on to the
    /// pipeline, which need not verify again).
    auth: crate::auth::Authenticator,
    on_error: FilterOnError,
    /// Our host name, sent as `MTA-Name`.
    hostname: String,
}

impl Filter {
    /// The filter `[filter]` names, or none when it names none; an error names the setting.
    pub fn from_config(
        config: &FilterConfig,
        hostname: &str,
        auth: crate::auth::Authenticator,
    ) -> Result<Option<Filter>, rspamd::EndpointError> {
        let Some(url) = &config.rspamd else {
            return Ok(None);
        };
        let endpoint = rspamd::Endpoint::parse(url)?;
        Ok(Some(Filter {
            rspamd: rspamd::Rspamd::new(endpoint, Duration::from_secs(config.timeout_secs.max(1))),
            on_error: config.on_error,
            auth,
            hostname: hostname.to_string(),
        }))
    }

    /// arclist's SPF, DKIM, DMARC and ARC verdict on `message` from `envelope`.
    pub async fn verify(&self, message: &[u8], envelope: &crate::auth::Envelope) -> Verification {
        self.auth
            .verify(message, Some(envelope), crate::auth::unix_now())
            .await
    }

    /// Asks the filter about `message`; logs and counts the verdict.
    pub async fn check(&self, message: &[u8], scan: &Scan<'_>) -> Verdict {
        let headers = request_headers(scan, &self.hostname);
        match self.rspamd.check(message, &headers).await {
            Ok(reply) => {
                let Some((verdict, action)) = judge(&reply, scan.hold_reject) else {
                    // An action this version does not know is no verdict: `on_error` decides,
                    // so nothing the filter may have meant to stop is distributed on a guess.
                    crate::base::metrics::filter_verdict(FilterAction::Error);
                    let why = format!("unknown action {:?}", printable(&reply.action));
                    return self.unanswered(scan, &why);
                };
                crate::base::metrics::filter_verdict(action);
                tracing::info!(
                    client = %scan.ip,
                    mail_from = %scan.mail_from,
                    to = %scan.target,
                    action = %reply.action,
                    score = reply.score,
                    required = reply.required_score,
                    symbols = %reply.top_symbols(8),
                    "spam filter verdict"
                );
                verdict
            }
            Err(err) => {
                crate::base::metrics::filter_verdict(FilterAction::Error);
                let e = self.rspamd.endpoint();
                self.unanswered(scan, &format!("{}:{}{}: {err}", e.host, e.port, e.path))
            }
        }
    }

    /// What `on_error` gives a message the filter did not judge.
    fn unanswered(&self, scan: &Scan<'_>, why: &str) -> Verdict {
        match self.on_error {
            FilterOnError::Tempfail => {
                tracing::warn!(client = %scan.ip, to = %scan.target, filter = %why, "spam filter gave no verdict; 451 ([filter] on_error = \"tempfail\")");
                Verdict::Refuse(Refusal {
                    code: 451,
                    status: "4.7.1",
                    text: "the spam filter is not answering; try again later".into(),
                })
            }
            FilterOnError::Accept => {
                tracing::warn!(client = %scan.ip, to = %scan.target, filter = %why, "spam filter gave no verdict; accepted unchecked ([filter] on_error = \"accept\")");
                Verdict::Accept(None)
            }
        }
    }
}

/// rspamd's request headers for `scan` (its protocol's names), with arclist's own results in
/// the `SPF`, `DKIM` and `DMARC` headers of rspamd's `http_headers` module.
fn request_headers(scan: &Scan<'_>, hostname: &str) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("IP", scan.ip.to_string()),
        ("Helo", scan.helo.to_string()),
        ("MTA-Name", hostname.to_string()),
    ];
    // rspamd reads a missing From as the null sender.
    if !scan.mail_from.is_empty() {
        headers.push(("From", scan.mail_from.to_string()));
    }
    if let Some(name) = scan.hostname {
        headers.push(("Hostname", name.to_string()));
    }
    headers.extend(scan.rcpts.iter().map(|r| ("Rcpt", r.clone())));
    if let Some(v) = scan.verification {
        headers.extend(auth_headers(v));
    }
    headers
}

/// arclist's verdicts in the JSON the `http_headers` module of rspamd reads; with it enabled,
/// rspamd takes them instead of checking SPF, DKIM and DMARC itself.
fn auth_headers(v: &Verification) -> Vec<(&'static str, String)> {
    use crate::auth::dkim::DkimVerdict;
    use crate::auth::dmarc::{DmarcVerdict, Policy};
    use crate::auth::spf::SpfVerdict;
    let mut out = Vec::new();
    if let Some(spf) = &v.spf {
        let result = match spf.mail_from {
            SpfVerdict::Pass => "pass",
            SpfVerdict::Fail => "fail",
            SpfVerdict::Softfail => "softfail",
            SpfVerdict::Neutral => "neutral",
            SpfVerdict::None => "na",
            SpfVerdict::Permerror => "permfail",
            SpfVerdict::Temperror => "tempfail",
        };
        out.push(("SPF", serde_json::json!({ "result": result }).to_string()));
    }
    let results: Vec<serde_json::Value> = v
        .dkim
        .iter()
        .map(|d| {
            let result = match d.verdict {
                DkimVerdict::Pass => "pass",
                DkimVerdict::Fail => "fail",
                DkimVerdict::Permerror => "permfail",
                DkimVerdict::Temperror => "tempfail",
            };
            serde_json::json!({ "result": result, "domain": d.domain })
        })
        .collect();
    let dkim = if results.is_empty() {
        serde_json::json!({ "result": "na" })
    } else {
        serde_json::json!({ "results": results })
    };
    out.push(("DKIM", dkim.to_string()));
    let dmarc = match (v.dmarc.verdict, v.dmarc.policy) {
        (DmarcVerdict::Pass, _) => "pass",
        (DmarcVerdict::Fail, Policy::Reject) => "reject",
        (DmarcVerdict::Fail, Policy::Quarantine) => "quarantine",
        (DmarcVerdict::Fail, Policy::None) => "softfail",
        (DmarcVerdict::None, _) => "na",
        (DmarcVerdict::Temperror, _) => "tempfail",
        (DmarcVerdict::Permerror, _) => "badpolicy",
    };
    out.push(("DMARC", serde_json::json!({ "result": dmarc }).to_string()));
    out
}

/// The verdict for rspamd's `reply`, and how it is counted; `None` for an action this version
/// does not know.
fn judge(reply: &rspamd::Reply, hold_reject: bool) -> Option<(Verdict, FilterAction)> {
    let mark = |action: &str, reason: Option<String>| FilterMark {
        action: action.to_string(),
        score: reply.score,
        required: reply.required_score,
        subject: reply
            .subject
            .clone()
            .filter(|_| action == "rewrite subject"),
        reason,
    };
    let said = reply
        .messages
        .smtp_message
        .as_deref()
        .map(printable)
        .filter(|m| !m.is_empty());
    let score = format!("score {:.2} of {:.2}", reply.score, reply.required_score);
    let judged = match reply.action.as_str() {
        // `discard` and `quarantine` (rspamd's force_actions, or an operator's own settings)
        // mean "must not reach anyone": refused (or held) like a reject, never distributed.
        action if hold_reject && FilterMark::MUST_NOT_PASS.contains(&action) => {
            let why = format!(
                "the spam filter says {} ({score}){}",
                reply.action,
                said.map(|s| format!(": {s}")).unwrap_or_default()
            );
            let held = mark(&reply.action, Some(why));
            (Verdict::Accept(Some(held)), FilterAction::Held)
        }
        action if FilterMark::MUST_NOT_PASS.contains(&action) => {
            let text = said.unwrap_or_else(|| "spam".into());
            let refusal = Refusal {
                code: 554,
                status: "5.7.1",
                text: format!("rejected by the spam filter: {text}"),
            };
            (Verdict::Refuse(refusal), FilterAction::Reject)
        }
        "soft reject" | "greylist" => {
            let text = said.unwrap_or_else(|| "try again later".into());
            let refusal = Refusal {
                code: 451,
                status: "4.7.1",
                text: format!("deferred by the spam filter: {text}"),
            };
            let action = if reply.action == "greylist" {
                FilterAction::Greylist
            } else {
                FilterAction::SoftReject
            };
            (Verdict::Refuse(refusal), action)
        }
        "add header" => (
            Verdict::Accept(Some(mark("add header", None))),
            FilterAction::AddHeader,
        ),
        "rewrite subject" => (
            Verdict::Accept(Some(mark("rewrite subject", None))),
            FilterAction::RewriteSubject,
        ),
        "no action" => (
            Verdict::Accept(Some(mark("no action", None))),
            FilterAction::NoAction,
        ),
        _ => return None,
    };
    Some(judged)
}

/// `text` as one printable ASCII line of at most 200 characters: a filter's message goes into
/// an SMTP reply line.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(action: &str) -> rspamd::Reply {
        serde_json::from_value(serde_json::json!({
            "action": action, "score": 16.5, "required_score": 15.0,
            "messages": {"smtp_message": "Gtube\r\npattern"},
            "subject": "***SPAM*** hi",
        }))
        .expect("a verdict")
    }

    #[test]
    fn each_action_as_the_session_answers_it() {
        let Verdict::Refuse(r) = judge(&reply("reject"), false).expect("known").0 else {
            panic!("reject refuses")
        };
        assert_eq!((r.code, r.status), (554, "5.7.1"));
        assert!(r.text.ends_with("Gtube pattern"), "{}", r.text);
        for soft in ["soft reject", "greylist"] {
            let Verdict::Refuse(r) = judge(&reply(soft), false).expect("known").0 else {
                panic!("{soft} defers")
            };
            assert_eq!(r.code, 451);
        }
        let Verdict::Accept(Some(held)) = judge(&reply("reject"), true).expect("known").0 else {
            panic!("a holding list takes it")
        };
        assert_eq!(held.action, "reject");
        assert!(held.reason.as_deref().is_some_and(|r| r.contains("16.50")));
        let Verdict::Accept(Some(m)) = judge(&reply("rewrite subject"), false).expect("known").0
        else {
            panic!("rewrite subject takes it")
        };
        assert_eq!(m.subject.as_deref(), Some("***SPAM*** hi"));
        let Verdict::Accept(Some(m)) = judge(&reply("add header"), false).expect("known").0 else {
            panic!("add header takes it")
        };
        assert_eq!((m.action.as_str(), m.subject), ("add header", None));
    }

    #[test]
    fn discard_and_quarantine_never_pass_and_an_unknown_action_is_no_verdict() {
        for action in ["discard", "quarantine"] {
            let judged = judge(&reply(action), false).expect("known").0;
            assert!(
                matches!(judged, Verdict::Refuse(ref r) if r.code == 554),
                "{action}"
            );
            let Verdict::Accept(Some(held)) = judge(&reply(action), true).expect("known").0 else {
                panic!("a holding list holds {action}")
            };
            assert!(held.reason.is_some(), "{action} is held with its reason");
        }
        // A newer rspamd's (or an operator's own) action: on_error decides, never "pass".
        assert!(judge(&reply("virus found"), false).is_none());
        assert!(judge(&reply("no action"), false).is_some());
    }
}
