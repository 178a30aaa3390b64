//! DMARC aggregate reports out (RFC 9990): arclist receives posts, so it reports to the
//! author domains whose records ask for it (`rua=`) what it saw of their mail each day, as
//! Gmail and others do. Off unless `send_dmarc_reports = true`. A report goes to an address
//! outside the author's domain only when that domain says it may (RFC 9990 §3: a
//! `DOMAIN._report._dmarc.RUADOMAIN` record), so arclist cannot be made to mail strangers.

use crate::auth::dns::Resolver;
use crate::stages::list::mime::encoding::Encoding;
use crate::stages::list::{ListRuntime, Lists};
use crate::stages::outbound::{Mail, Multipart, Part};
use crate::state::store::{SpoolState, Store, StoreError};
use std::collections::BTreeMap;
use std::io::Write;

/// The posts of one author domain's record in one day.
struct Seen {
    rua: Vec<String>,
    list: String,
    /// Messages by what a report record tells apart.
    rows: BTreeMap<RowKey, u64>,
}

/// What tells one record of a report from another.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct RowKey {
    ip: String,
    disposition: String,
    dkim: String,
    spf: String,
    from: String,
    /// `domain=result` for each DKIM signature, space-separated.
    dkim_results: String,
    /// `domain=result` for SPF.
    spf_result: String,
}

/// Sends the reports for the day ending at `end`; returns how many were queued.
pub async fn send(
    store: &Store,
    lists: &Lists,
    resolver: &Resolver,
    hostname: &str,
    end: u64,
) -> Result<usize, StoreError> {
    let begin = end.saturating_sub(86_400);
    let mut by_domain: BTreeMap<String, Seen> = BTreeMap::new();
    for meta in store.list().await? {
        if meta.envelope.received_at < begin || meta.envelope.received_at >= end {
            continue;
        }
        let (Some(facts), Some(list)) = (&meta.facts.reporting, &meta.facts.list) else {
            continue;
        };
        let seen = by_domain
            .entry(facts.record_domain.clone())
            .or_insert_with(|| Seen {
                rua: facts.rua.clone(),
                list: list.clone(),
                rows: BTreeMap::new(),
            });
        let disposition = match meta.state {
            SpoolState::Rejected | SpoolState::Discarded => "reject",
            SpoolState::Held => "quarantine",
            _ => "none",
        };
        let dkim: Vec<String> = facts.dkim.iter().map(|(d, r)| format!("{d}={r}")).collect();
        let spf = facts
            .spf
            .as_ref()
            .map_or(String::new(), |(d, r)| format!("{d}={r}"));
        let key = RowKey {
            ip: meta.envelope.client_ip.to_string(),
            disposition: disposition.to_string(),
            dkim: facts.aligned.0.clone(),
            spf: facts.aligned.1.clone(),
            from: meta.facts.from_domain.clone(),
            dkim_results: dkim.join(" "),
            spf_result: spf,
        };
        *seen.rows.entry(key).or_default() += 1;
    }
    let mut sent = 0;
    for (domain, seen) in by_domain {
        let Some(list) = lists.get(&seen.list) else {
            continue;
        };
        let to = destinations(resolver, &domain, &seen.rua).await;
        if to.is_empty() {
            continue;
        }
        let xml = report_xml(hostname, &domain, begin, end, &seen);
        match queue_report(store, &list, hostname, (&domain, begin, end), &xml, to) {
            Ok(()) => sent += 1,
            Err(e) => tracing::error!(%domain, error = %e, "cannot queue a DMARC aggregate report"),
        }
    }
    Ok(sent)
}

/// The mailto: addresses of `rua` reports about `domain` may go to: those in the domain (or
/// a domain it is part of, or one part of it), and outside ones that agree by DNS.
async fn destinations(resolver: &Resolver, domain: &str, rua: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for uri in rua {
        let Some(address) = uri
            .strip_prefix("mailto:")
            .map(|a| {
                a.split('!')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|a| crate::base::config::valid_address(a))
        else {
            continue;
        };
        let target = address.rsplit_once('@').map_or("", |(_, d)| d).to_string();
        let related = target == domain
            || target.ends_with(&format!(".{domain}"))
            || domain.ends_with(&format!(".{target}"));
        let agreed = related
            || resolver
                .txt(&format!("{domain}._report._dmarc.{target}"))
                .await
                .is_ok_and(|records| {
                    records.iter().any(|r| {
                        String::from_utf8_lossy(r)
                            .trim_start()
                            .starts_with("v=DMARC1")
                    })
                });
        if agreed {
            out.push(address);
        } else {
            tracing::info!(%domain, %address, "no DMARC report: the destination did not agree to receive reports about this domain");
        }
    }
    out
}

/// The report, RFC 9990 XML.
fn report_xml(hostname: &str, domain: &str, begin: u64, end: u64, seen: &Seen) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n\
         <version>1.0</version>\n<report_metadata><org_name>{h}</org_name><email>postmaster@{h}</email>\
         <report_id>{h}!{d}!{begin}</report_id><date_range><begin>{begin}</begin><end>{end}</end></date_range>\
         </report_metadata>\n<policy_published><domain>{d}</domain></policy_published>\n",
        h = esc(hostname),
        d = esc(domain)
    );
    for (row, count) in &seen.rows {
        let RowKey {
            ip,
            disposition,
            dkim,
            spf,
            from,
            dkim_results,
            spf_result,
        } = row;
        xml.push_str(&format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
             <disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>\
             <identifiers><header_from>{}</header_from></identifiers><auth_results>",
            esc(from)
        ));
        for pair in dkim_results.split(' ').filter(|p| !p.is_empty()) {
            let (d, r) = pair.split_once('=').unwrap_or((pair, ""));
            xml.push_str(&format!(
                "<dkim><domain>{}</domain><result>{}</result></dkim>",
                esc(d),
                esc(r)
            ));
        }
        if let Some((d, r)) = spf_result.split_once('=') {
            xml.push_str(&format!(
                "<spf><domain>{}</domain><result>{}</result></spf>",
                esc(d),
                esc(r)
            ));
        }
        xml.push_str("</auth_results></record>\n");
    }
    xml.push_str("</feedback>\n");
    xml
}

/// The report mail (a gzip attachment), signed by `list`, queued to `to`.
fn queue_report(
    store: &Store,
    list: &ListRuntime,
    hostname: &str,
    (domain, begin, end): (&str, u64, u64),
    xml: &str,
    to: Vec<String>,
) -> Result<(), String> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(xml.as_bytes()).map_err(|e| e.to_string())?;
    let gz = gz.finish().map_err(|e| e.to_string())?;
    let attachment = Encoding::Base64.encode(&gz);
    let cfg = &list.config;
    let from = format!("dmarc-noreply@{}", cfg.domain());
    let name = format!("{hostname}!{domain}!{begin}!{end}.xml.gz");
    let now = crate::auth::unix_now();
    let to_field: Vec<String> = to.iter().map(|a| format!("<{a}>")).collect();
    let body = Multipart::new("mixed", "dmarc-report")
        .part(Part::new(
            "text/plain; charset=us-ascii",
            format!("DMARC aggregate report for {domain} from {hostname}.\r\n"),
        ))
        .part(
            Part::new(&format!("application/gzip; name=\"{name}\""), attachment)
                .field(
                    "Content-Disposition",
                    &format!("attachment; filename=\"{name}\""),
                )
                .field("Content-Transfer-Encoding", "base64"),
        )
        .finish();
    let text = Mail::new()
        .field("From", &format!("<{from}>"))
        .field("To", &to_field.join(", "))
        .field(
            "Subject",
            &format!(
                "Report Domain: {domain} Submitter: {hostname} Report-ID: <{hostname}!{domain}!{begin}>"
            ),
        )
        .date(now)
        .message_id(&format!("dmarc.{begin}.{domain}"), cfg.domain())
        .field("Auto-Submitted", "auto-generated")
        .finish(body);
    let signed = list.sign(&text)?;
    crate::stages::list::notice::queue_own(
        store,
        list,
        to,
        &signed,
        &format!("DMARC aggregate report for {domain}"),
    )
    .map(|_| ())
}
