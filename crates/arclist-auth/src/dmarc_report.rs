//! DMARC aggregate reports (RFC 9990, and the RFC 7489 appendix C format before it) that
//! receivers send about the mail of a domain: read from a report message (XML, gzip or zip
//! attachments), with every size bounded, nothing executed and no entity expanded.

use mail_parser::MimeHeaders;
use serde::{Deserialize, Serialize};
use std::io::Read;

/// Largest attachment read (compressed).
pub const MAX_ATTACHMENT: usize = 10 << 20;
/// Largest report once decompressed: a gzip or zip bomb stops here.
pub const MAX_XML: usize = 20 << 20;
/// Most records read from one report.
const MAX_ROWS: usize = 100_000;

/// One receiver's report on one domain for one period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AggregateReport {
    /// The reporting organization (`google.com`, `Outlook.com`, ...).
    pub org: String,
    /// Its id for this report.
    pub report_id: String,
    /// Unix time the period begins.
    pub begin: u64,
    /// Unix time the period ends.
    pub end: u64,
    /// The domain reported on (`policy_published/domain`).
    pub domain: String,
    /// The records: one per source address and result.
    pub rows: Vec<ReportRow>,
}

/// One record of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// The sending address.
    pub source_ip: String,
    /// Messages.
    pub count: u64,
    /// What the receiver did: none, quarantine, reject.
    pub disposition: String,
    /// DMARC's DKIM result (aligned pass or fail).
    pub dkim: String,
    /// DMARC's SPF result (aligned pass or fail).
    pub spf: String,
    /// The receiver's reasons for a local override (`forwarded`, `mailing_list`,
    /// `local_policy`, `trusted_forwarder`...), as ARC often makes them.
    pub reasons: Vec<String>,
    /// The RFC5322.From domain.
    pub header_from: String,
}

/// Every aggregate report attached to (or forming) `message`; an error says why none could be
/// read.
pub fn reports_in(message: &[u8]) -> Result<Vec<AggregateReport>, String> {
    let parsed = mail_parser::MessageParser::default()
        .parse(message)
        .ok_or("not a readable message")?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for part in parsed.parts.iter() {
        let content_type = part
            .content_type()
            .map(|c| {
                format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()).to_ascii_lowercase()
            })
            .unwrap_or_default();
        let name = part
            .attachment_name()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let kind = kind_of(&content_type, &name);
        let Some(kind) = kind else { continue };
        let bytes = part.contents();
        if bytes.len() > MAX_ATTACHMENT {
            errors.push(format!("{name}: over {MAX_ATTACHMENT} bytes; not read"));
            continue;
        }
        match xml_of(kind, bytes).and_then(|xml| parse(&xml)) {
            Ok(report) => out.push(report),
            Err(e) => errors.push(format!(
                "{}: {e}",
                if name.is_empty() {
                    &content_type
                } else {
                    &name
                }
            )),
        }
    }
    if out.is_empty() {
        return Err(if errors.is_empty() {
            "no XML, gzip or zip report in the message".into()
        } else {
            errors.join("; ")
        });
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Kind {
    Xml,
    Gzip,
    Zip,
}

fn kind_of(content_type: &str, name: &str) -> Option<Kind> {
    if name.ends_with(".zip") || content_type.contains("zip") && !content_type.contains("gzip") {
        Some(Kind::Zip)
    } else if name.ends_with(".gz") || content_type.contains("gzip") {
        Some(Kind::Gzip)
    } else if name.ends_with(".xml") || content_type.ends_with("/xml") {
        Some(Kind::Xml)
    } else {
        None
    }
}

/// The XML of an attachment, decompressed within [`MAX_XML`].
fn xml_of(kind: Kind, bytes: &[u8]) -> Result<Vec<u8>, String> {
    match kind {
        Kind::Xml => Ok(bytes.to_vec()),
        Kind::Gzip => bounded(flate2::read::GzDecoder::new(bytes)),
        Kind::Zip => {
            let (method, data) = zip_first_file(bytes)?;
            match method {
                0 => Ok(data
                    .get(..MAX_XML.min(data.len()))
                    .unwrap_or_default()
                    .to_vec()),
                8 => bounded(flate2::read::DeflateDecoder::new(data)),
                m => Err(format!("zip compression method {m} not supported")),
            }
        }
    }
}

/// Reads at most [`MAX_XML`] bytes; more is refused, not truncated.
fn bounded(reader: impl Read) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    reader
        .take(MAX_XML as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress: {e}"))?;
    if out.len() > MAX_XML {
        return Err(format!("decompresses to over {MAX_XML} bytes; refused"));
    }
    Ok(out)
}

/// The first file of a zip archive, from its central directory: compression method and the
/// compressed bytes.
fn zip_first_file(zip: &[u8]) -> Result<(u16, &[u8]), String> {
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(zip.get(at..at + 2)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(zip.get(at..at + 4)?.try_into().ok()?))
    };
    let bad = || "not a readable zip archive".to_string();
    let end = memchr::memmem::rfind(zip, b"PK\x05\x06").ok_or_else(bad)?;
    let directory = u32_at(end + 16).ok_or_else(bad)? as usize;
    if zip.get(directory..directory + 4) != Some(b"PK\x01\x02") {
        return Err(bad());
    }
    let method = u16_at(directory + 10).ok_or_else(bad)?;
    let size = u32_at(directory + 20).ok_or_else(bad)? as usize;
    let local = u32_at(directory + 42).ok_or_else(bad)? as usize;
    if zip.get(local..local + 4) != Some(b"PK\x03\x04") {
        return Err(bad());
    }
    let name_len = u16_at(local + 26).ok_or_else(bad)? as usize;
    let extra_len = u16_at(local + 28).ok_or_else(bad)? as usize;
    let start = local + 30 + name_len + extra_len;
    let data = zip.get(start..start.saturating_add(size)).ok_or_else(bad)?;
    Ok((method, data))
}

/// Reads one report's XML: elements by local name, whatever the namespace (RFC 9990's
/// `urn:ietf:params:xml:ns:dmarc-2.0` or none). A DOCTYPE is refused: reports need none, and
/// entity definitions are how XML bombs work.
pub fn parse(xml: &[u8]) -> Result<AggregateReport, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut report = AggregateReport::default();
    let mut row = ReportRow::default();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("XML: {e}"))?;
        match event {
            Event::DocType(_) => return Err("a DOCTYPE (entity definitions) is refused".into()),
            Event::Start(e) => {
                let local = e.local_name();
                let name = AsRef::<str>::as_ref(&local).to_ascii_lowercase();
                if name == "record" {
                    row = ReportRow::default();
                }
                path.push(name);
                if path.len() > 16 {
                    return Err("elements nested too deep".into());
                }
            }
            Event::End(_) if path.pop().as_deref() == Some("record") => {
                if report.rows.len() >= MAX_ROWS {
                    return Err(format!("over {MAX_ROWS} records"));
                }
                report.rows.push(std::mem::take(&mut row));
            }
            Event::Text(t) => {
                let text = t.xml10_content().trim().to_string();
                take_text(&path, text, &mut report, &mut row);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if report.org.is_empty() && report.rows.is_empty() {
        return Err("no DMARC aggregate report in the XML".into());
    }
    Ok(report)
}

/// Puts the text of the element at `path` where it belongs.
fn take_text(path: &[String], text: String, report: &mut AggregateReport, row: &mut ReportRow) {
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    match names.as_slice() {
        [.., "report_metadata", "org_name"] => report.org = text,
        [.., "report_metadata", "report_id"] => report.report_id = text,
        [.., "date_range", "begin"] => report.begin = text.parse().unwrap_or(0),
        [.., "date_range", "end"] => report.end = text.parse().unwrap_or(0),
        [.., "policy_published", "domain"] => report.domain = text.to_ascii_lowercase(),
        [.., "row", "source_ip"] => row.source_ip = text,
        [.., "row", "count"] => row.count = text.parse().unwrap_or(0),
        [.., "policy_evaluated", "disposition"] => row.disposition = text.to_ascii_lowercase(),
        [.., "policy_evaluated", "dkim"] => row.dkim = text.to_ascii_lowercase(),
        [.., "policy_evaluated", "spf"] => row.spf = text.to_ascii_lowercase(),
        [.., "policy_evaluated", "reason", "type"] if row.reasons.len() < 8 => {
            row.reasons.push(text.to_ascii_lowercase());
        }
        [.., "identifiers", "header_from"] => row.header_from = text.to_ascii_lowercase(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attachment_over_the_limit_is_not_read() {
        use base64::Engine;
        let big = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; MAX_ATTACHMENT + 1]);
        let lines: Vec<&str> = big
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let message = format!(
            "From: a@r.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: application/gzip; name=\"big.xml.gz\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
            lines.join("\r\n")
        );
        let err = reports_in(message.as_bytes()).unwrap_err();
        assert!(err.contains("not read"), "{err}");
    }
}
