//! The ARC chain viewer: a pasted or uploaded message verified now, over the server's DNS, and
//! shown as a page a person reads at a glance: every ARC set and DKIM signature as a row (what
//! it claimed, whether its seal and signature still verify and why not, what its hop recorded,
//! which fields it covers), the hop where the chain broke, and the DMARC verdict with its DNS
//! tree walk. Server-rendered from one template (minijinja, escaping on); no script.

use crate::auth::Verification;
use crate::auth::message::{RawMessage, to_crlf};
use serde::Serialize;

/// Largest message the viewer takes (the admin listener's body limit applies first).
pub const MAX_MESSAGE: usize = 4 << 20;

#[derive(Serialize)]
struct Hop {
    instance: u32,
    domain: String,
    selector: String,
    cv: String,
    seal: &'static str,
    seal_why: String,
    ams: &'static str,
    ams_why: String,
    authserv_id: String,
    recorded: Vec<String>,
    covered: Vec<String>,
}

#[derive(Serialize)]
struct Dkim {
    domain: String,
    selector: String,
    verdict: &'static str,
    reason: String,
    covered: Vec<String>,
}

#[derive(Serialize)]
struct Dmarc {
    verdict: &'static str,
    from_domain: String,
    policy: &'static str,
    record: Option<String>,
    reason: String,
    walk: Vec<String>,
}

#[derive(Serialize)]
struct Broken {
    instance: u32,
    domain: String,
    why: String,
}

#[derive(Serialize)]
pub(crate) struct Report {
    verdict: &'static str,
    reason: String,
    sets: u32,
    oldest_pass: Option<u32>,
    broken_at: Option<Broken>,
    hops: Vec<Hop>,
    dkim: Vec<Dkim>,
    dmarc: Dmarc,
}

/// The `h=` list of the field `name` whose tags satisfy `wanted` (ARC-Message-Signature of one
/// instance, DKIM-Signature of one d=/s=), lower-cased.
fn covered(message: &[u8], name: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let parsed = RawMessage::parse(message);
    parsed
        .headers
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| f.unfolded_value())
        .find(|v| wanted(v))
        .and_then(|v| tag(&v, "h"))
        .map(|h| {
            h.split(':')
                .map(|f| f.trim().to_ascii_lowercase())
                .filter(|f| !f.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Tag `name` of a `tag=value; ...` list, without spaces.
fn tag(value: &str, name: &str) -> Option<String> {
    value.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k.trim() == name).then(|| v.split_whitespace().collect::<String>())
    })
}

fn hops(message: &[u8], v: &Verification) -> Vec<Hop> {
    v.arc
        .hops
        .iter()
        .map(|h| Hop {
            instance: h.instance,
            domain: h.domain.clone(),
            selector: h.selector.clone(),
            cv: h.cv.clone(),
            seal: h.seal.word(),
            seal_why: h.seal.why().unwrap_or_default().to_string(),
            ams: h.ams.word(),
            ams_why: h.ams.why().unwrap_or_default().to_string(),
            authserv_id: h.authserv_id.clone(),
            recorded: h.recorded.clone(),
            covered: covered(message, "ARC-Message-Signature", |v| {
                tag(v, "i").is_some_and(|i| i == h.instance.to_string())
            }),
        })
        .collect()
}

fn dkim(message: &[u8], v: &Verification) -> Vec<Dkim> {
    v.dkim
        .iter()
        .map(|d| Dkim {
            domain: d.domain.clone(),
            selector: d.selector.clone(),
            verdict: d.verdict.as_str(),
            reason: d.reason.clone(),
            covered: covered(message, "DKIM-Signature", |v| {
                tag(v, "d").is_some_and(|x| x.eq_ignore_ascii_case(&d.domain))
                    && tag(v, "s").is_some_and(|x| x == d.selector)
            }),
        })
        .collect()
}

/// The oldest hop whose seal or claim broke the chain: the one a reader looks for first.
fn broken_at(v: &Verification) -> Option<Broken> {
    v.arc
        .hops
        .iter()
        .rev()
        .find(|h| h.seal.why().is_some() || h.cv == "fail")
        .map(|h| Broken {
            instance: h.instance,
            domain: h.domain.clone(),
            why: h.seal.why().map(str::to_string).unwrap_or_else(|| {
                format!(
                    "its seal claims cv=fail: {} found the chain it received already failing",
                    h.domain
                )
            }),
        })
}

pub(crate) fn report(message: &[u8], v: &Verification) -> Report {
    Report {
        verdict: v.arc.verdict.as_str(),
        reason: v.arc.reason.clone(),
        sets: v.arc.instances,
        oldest_pass: v.arc.oldest_pass,
        broken_at: broken_at(v),
        hops: hops(message, v),
        dkim: dkim(message, v),
        dmarc: Dmarc {
            verdict: v.dmarc.verdict.as_str(),
            from_domain: v.dmarc.from_domain.clone(),
            policy: v.dmarc.policy.as_str(),
            record: v.dmarc.record.as_ref().map(|r| r.domain.clone()),
            reason: v.dmarc.reason.clone(),
            walk: v.dmarc.walk.clone(),
        },
    }
}

fn render(report: Option<Report>) -> Result<String, String> {
    super::pages::render("chain.html", minijinja::context! { report => report })
}

/// The empty form.
pub fn form_page() -> Result<String, String> {
    render(None)
}

/// The page for `message` (as pasted or uploaded; line endings made CRLF) and its verdicts.
pub fn result_page(message: &[u8], v: &Verification) -> Result<String, String> {
    render(Some(report(&to_crlf(message), v)))
}

/// The message a form submitted: the uploaded file when one was chosen, else the pasted text;
/// line endings made CRLF, as the verifier wants them.
pub fn submitted(fields: &[(String, Vec<u8>)]) -> Option<Vec<u8>> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, v)| n == name && v.iter().any(|b| !b.is_ascii_whitespace()))
            .map(|(_, v)| v.clone())
    };
    field("file")
        .or_else(|| field("message"))
        .map(|m| to_crlf(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_form_is_labelled_and_text_is_escaped() {
        let page = form_page().expect("page");
        assert!(page.contains("<label for=\"message\">"));
        assert!(page.contains("<textarea id=\"message\" name=\"message\">"));
        let message = b"From: <script>x</script>@a.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let resolver =
            crate::auth::dns::Resolver::Zone(std::sync::Arc::new(crate::auth::dns::Zone::new()));
        let v = crate::auth::Authenticator::new(resolver, None)
            .verify(message, None, 1_800_000_000)
            .await;
        let page = result_page(message, &v).expect("page");
        assert!(
            !page.contains("<script>x"),
            "nothing from the message reaches the page raw"
        );
        assert!(page.contains("arc=none"));
    }

    #[test]
    fn covered_fields_come_from_the_matching_signature() {
        let m = b"ARC-Message-Signature: i=2; a=rsa-sha256; d=b.test; s=s; h=From:To; bh=x; b=y\r\n\
                  ARC-Message-Signature: i=1; a=rsa-sha256; d=a.test; s=s; h=from : subject\r\n\t:date; bh=x; b=y\r\n\r\nbody\r\n";
        let one = covered(m, "ARC-Message-Signature", |v| {
            tag(v, "i").as_deref() == Some("1")
        });
        assert_eq!(one, vec!["from", "subject", "date"]);
        let two = covered(m, "ARC-Message-Signature", |v| {
            tag(v, "i").as_deref() == Some("2")
        });
        assert_eq!(two, vec!["from", "to"]);
    }
}
