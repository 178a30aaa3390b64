//! Receivers' DMARC aggregate reports about the list domain's mail (RFC 9990, and the older
//! RFC 7489 format), mailed to the report address: read from gzip and zip attachments, shown
//! by `arclist report` and in the metrics; broken and hostile reports are refused unharmed.

use crate::list_pipeline::{World, world_prepared};
use crate::smtp_support::until;
use arclist::state::store::SpoolState;
use std::io::Write;

const REPORTS: &str = "dmarc-reports@lists.arclist.test";

fn report_xml(namespace: bool, org: &str, id: &str, pass: u64, fail: u64) -> String {
    let ns = if namespace {
        " xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\""
    } else {
        ""
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback{ns}>\n<version>1.0</version>\n\
         <report_metadata><org_name>{org}</org_name><email>noreply@{org}</email><report_id>{id}</report_id>\
         <date_range><begin>1795910400</begin><end>1795996799</end></date_range></report_metadata>\n\
         <policy_published><domain>lists.arclist.test</domain><p>none</p><sp>none</sp></policy_published>\n\
         <record><row><source_ip>192.0.2.25</source_ip><count>{pass}</count><policy_evaluated>\
         <disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>\
         <identifiers><header_from>lists.arclist.test</header_from></identifiers>\
         <auth_results><dkim><domain>lists.arclist.test</domain><result>pass</result></dkim></auth_results></record>\n\
         <record><row><source_ip>198.51.100.7</source_ip><count>{fail}</count><policy_evaluated>\
         <disposition>none</disposition><dkim>fail</dkim><spf>fail</spf>\
         <reason><type>mailing_list</type><comment>arc=pass</comment></reason></policy_evaluated></row>\
         <identifiers><header_from>lists.arclist.test</header_from></identifiers></record>\n</feedback>\n"
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// A zip archive holding `data` as `name`, stored (as some reporters send them).
fn zip(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = {
        let mut c = flate2::Crc::new();
        c.update(data);
        c.sum()
    };
    let (n, size) = (name.len() as u16, data.len() as u32);
    let mut z = Vec::new();
    z.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&size.to_le_bytes());
    z.extend_from_slice(&size.to_le_bytes());
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let directory = z.len() as u32;
    z.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&size.to_le_bytes());
    z.extend_from_slice(&size.to_le_bytes());
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&[0u8; 12]);
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    let cd_size = z.len() as u32 - directory;
    z.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    z.extend_from_slice(&cd_size.to_le_bytes());
    z.extend_from_slice(&directory.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}

/// A report message from `from` with `bytes` attached as `name` (`content_type`).
fn report_mail(from: &str, name: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "From: {from}\r\nTo: {REPORTS}\r\nSubject: Report domain: lists.arclist.test\r\n\
         Message-ID: <{name}@reports.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=r\r\n\r\n\
         --r\r\nContent-Type: text/plain\r\n\r\nThis is a DMARC aggregate report.\r\n\
         --r\r\nContent-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--r--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

async fn with_report_address() -> World {
    world_prepared("", "", None, |dir| {
        let file = dir.join("server.toml");
        let text = std::fs::read_to_string(&file).expect("server.toml");
        std::fs::write(&file, format!("dmarc_reports = \"dmarc-reports\"\n{text}")).expect("write");
    })
    .await
}

async fn deliver(w: &World, mail: &[u8]) -> String {
    let id = w
        .send_to("127.0.0.1", "mx.reports.test", "", REPORTS, mail)
        .await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Done);
    meta.note.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_in_gzip_and_zip_show_in_the_report_and_the_metrics() {
    let w = with_report_address().await;
    let rfc9990 = report_xml(true, "google.com", "g-1", 10, 2);
    let note = deliver(
        &w,
        &report_mail(
            "noreply-dmarc-support@google.com",
            "google.com!lists.arclist.test!1.xml.gz",
            "application/gzip",
            &gzip(rfc9990.as_bytes()),
        ),
    )
    .await;
    assert!(note.contains("12 message(s), 10 passed"), "{note}");
    let legacy = report_xml(false, "Outlook.com", "o-1", 5, 0);
    let note = deliver(
        &w,
        &report_mail(
            "dmarcreport@microsoft.com",
            "report.zip",
            "application/zip",
            &zip("report.xml", legacy.as_bytes()),
        ),
    )
    .await;
    assert!(note.contains("5 message(s), 5 passed"), "{note}");
    // The same report again is kept once.
    let again = deliver(
        &w,
        &report_mail(
            "noreply-dmarc-support@google.com",
            "again.xml.gz",
            "application/gzip",
            &gzip(rfc9990.as_bytes()),
        ),
    )
    .await;
    assert!(again.contains("already kept"), "{again}");
    let store = w.t.server.store();
    let report = arclist::surfaces::operate::report::build(&store, 0, None)
        .await
        .expect("report");
    let google = report
        .reported
        .iter()
        .find(|r| r.org == "google.com")
        .expect("google row");
    assert_eq!(
        (
            google.messages,
            google.dmarc_pass,
            google.reasons.get("mailing_list").copied()
        ),
        (12, 10, Some(2))
    );
    assert!(
        report.text().contains("What receivers report"),
        "{}",
        report.text()
    );
    let metrics = arclist::base::metrics::render();
    assert!(
        metrics.contains(
            "arclist_dmarc_reported_messages_total{receiver=\"google\",result=\"pass\"} 10"
        ),
        "{metrics}"
    );
    until("the reports are kept", async || {
        store.dmarc_reports(0).await.map(|r| r.len()).unwrap_or(0) == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_hostile_reports_are_refused_unharmed() {
    let w = with_report_address().await;
    let bad_gzip = deliver(
        &w,
        &report_mail(
            "a@r.test",
            "bad.xml.gz",
            "application/gzip",
            b"\x1f\x8bnot really gzip",
        ),
    )
    .await;
    assert!(
        bad_gzip.contains("not a readable DMARC aggregate report"),
        "{bad_gzip}"
    );
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]><feedback><report_metadata><org_name>&lol2;</org_name></report_metadata></feedback>";
    let note = deliver(
        &w,
        &report_mail("a@r.test", "bomb.xml", "text/xml", bomb.as_bytes()),
    )
    .await;
    assert!(note.contains("DOCTYPE"), "{note}");
    // 64 MiB of zeros in a small gzip: stopped at the decompression limit.
    let zeros = gzip(&vec![0u8; 64 << 20]);
    let note = deliver(
        &w,
        &report_mail("a@r.test", "zeros.xml.gz", "application/gzip", &zeros),
    )
    .await;
    assert!(note.contains("decompresses to over"), "{note}");
    assert!(
        w.t.server
            .store()
            .dmarc_reports(0)
            .await
            .expect("store")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_reports_go_to_author_domains_that_ask_and_allow() {
    let w = crate::list_pipeline::world("").await;
    w.t.dns.server.with_zone(|z| {
        z.add_txt("rep.test", "v=spf1 ip4:127.0.0.25 -all");
        z.add_txt(
            "_dmarc.rep.test",
            "v=DMARC1; p=none; rua=mailto:agg@rep.test,mailto:agg@elsewhere.test!10m,mailto:x@club.test",
        );
        // elsewhere.test agrees to take reports about rep.test; club.test does not.
        z.add_txt("rep.test._report._dmarc.elsewhere.test", "v=DMARC1");
        z.add(
            "rep.test",
            arclist::auth::dns::ZoneRecord::Mx(arclist::auth::dns::Mx {
                preference: 10,
                exchange: "mx.sink.test".into(),
            }),
        );
    });
    w.t.add_member("ann@rep.test").await;
    let post = crate::list_pipeline::post("Ann <ann@rep.test>", "Reported", "Hello.\r\n");
    let id = w
        .send("127.0.0.25", "mx.rep.test", "ann@rep.test", &post)
        .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Queued);
    let config = arclist::base::config::Config::load(Some(&w.t.dir.path().join("server.toml")))
        .expect("config");
    let lists = arclist::stages::list::Lists::new([arclist::stages::list::ListRuntime::load(
        &config.lists[0],
    )
    .expect("list")]);
    let store = w.t.server.store();
    let now = arclist::auth::unix_now();
    let sent = arclist::surfaces::operate::dmarc_out::send(
        &store,
        &lists,
        &w.t.dns.resolver,
        "mx.arclist.test",
        now + 1,
    )
    .await
    .expect("reports");
    assert_eq!(sent, 1, "one report, for rep.test");
    until("the report arrives", async || {
        !w.sink.inbox("agg@rep.test").is_empty() && !w.sink.inbox("agg@elsewhere.test").is_empty()
    })
    .await;
    assert!(
        w.sink.inbox("x@club.test").is_empty(),
        "no report where the domain did not agree"
    );
    let mail = w.sink.inbox("agg@rep.test").remove(0);
    // Our own reader reads it back: RFC 9990 XML in a gzip attachment.
    let reports = arclist::auth::dmarc_report::reports_in(&mail).expect("a readable report");
    assert_eq!(
        (reports[0].org.as_str(), reports[0].domain.as_str()),
        ("mx.arclist.test", "rep.test")
    );
    let row = &reports[0].rows[0];
    assert_eq!(
        (row.count, row.spf.as_str(), row.source_ip.as_str()),
        (1, "pass", "127.0.0.25")
    );
    // Signed by the list domain, as dkimpy checks.
    let dkim: serde_json::Value =
        serde_json::from_slice(&crate::support::dkimpy(&w.t.dns, &["dkim-verify"], &mail).await)
            .expect("json");
    assert_eq!(dkim["pass"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_leave_the_store_after_the_records_retention() {
    // The report's period began on 2026-11-28; half a day of retention is long past it.
    let w = world_prepared("", "", None, |dir| {
        let file = dir.join("server.toml");
        let text = std::fs::read_to_string(&file).expect("server.toml");
        std::fs::write(
            &file,
            format!("dmarc_reports = \"dmarc-reports\"\n{text}[retention]\nrecords_days = 0.5\nprune_every_secs = 1\n"),
        )
        .expect("write");
    })
    .await;
    let xml = report_xml(true, "google.com", "old-1", 3, 0);
    let note = deliver(
        &w,
        &report_mail(
            "noreply-dmarc-support@google.com",
            "old.xml.gz",
            "application/gzip",
            &gzip(xml.as_bytes()),
        ),
    )
    .await;
    assert!(note.contains("3 message(s)"), "{note}");
    let store = w.t.server.store();
    until("the pruner forgets the old report", async || {
        store.dmarc_reports(0).await.is_ok_and(|r| r.is_empty())
    })
    .await;
}
