//! `arclist verify`: every verdict of a stored message, hop by hop.

use super::CliError;
use super::{DnsArgs, read_message};
use crate::auth::arc::Check;
use crate::auth::dkim::DkimOutcome;
use crate::auth::dmarc::DmarcOutcome;
use crate::auth::spf::SpfOutcome;
use crate::auth::{Authenticator, Envelope, Verification, unix_now};
use clap::Args;
use serde::Serialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `arclist verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    dns: DnsArgs,
    /// The connecting client's IP (with --helo and --mail-from, enables SPF).
    #[arg(long, requires = "helo")]
    ip: Option<IpAddr>,
    /// The envelope sender (empty for the null sender).
    #[arg(long, default_value = "")]
    mail_from: String,
    /// The client's EHLO name.
    #[arg(long)]
    helo: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The message file (LF or CRLF line endings).
    message: PathBuf,
}

/// Exit status when a verdict is a temporary DNS error (sysexits EX_TEMPFAIL).
const EX_TEMPFAIL: u8 = 75;

pub(super) async fn run(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let message = read_message(&args.message)?;
    let envelope = match (args.ip, &args.helo) {
        (Some(ip), Some(helo)) => Some(Envelope {
            ip,
            helo: helo.clone(),
            mail_from: args.mail_from.clone(),
        }),
        _ => None,
    };
    let dns = args.dns.setup(envelope.is_some()).await?;
    let spf = if envelope.is_some() {
        Some(dns.spf("arclist.invalid")?)
    } else {
        None
    };
    let auth = Authenticator::new(dns.resolver.clone(), spf);
    let v = auth.verify(&message, envelope.as_ref(), unix_now()).await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&v)).map_err(CliError::Json)?
        );
    } else {
        print!("{}", render_text(&v));
    }
    Ok(if v.has_temporary_error() {
        ExitCode::from(EX_TEMPFAIL)
    } else {
        ExitCode::SUCCESS
    })
}

/// The text report: `arc=` first, then one line per hop (newest first), then DKIM, SPF, DMARC.
pub fn render_text(v: &Verification) -> String {
    let mut s = format!("arc={}", v.arc.verdict.as_str());
    if v.arc.instances > 0 {
        s.push_str(&format!(
            " ({} set{}",
            v.arc.instances,
            if v.arc.instances == 1 { "" } else { "s" }
        ));
        if let Some(op) = v.arc.oldest_pass {
            s.push_str(&format!(", oldest-pass={op}"));
        }
        s.push(')');
    }
    if !v.arc.reason.is_empty() {
        s.push_str(&format!(": {}", v.arc.reason));
    }
    s.push('\n');
    for hop in &v.arc.hops {
        s.push_str(&format!("  {hop}\n"));
    }
    if v.dkim.is_empty() {
        s.push_str("dkim=none\n");
    }
    for d in &v.dkim {
        s.push_str(&format!(
            "dkim={} d={} s={}",
            d.verdict.as_str(),
            d.domain,
            d.selector
        ));
        if let Some(bits) = d.key_bits {
            s.push_str(&format!(" ({bits}-bit key)"));
        }
        if !d.reason.is_empty() {
            s.push_str(&format!(": {}", d.reason));
        }
        s.push('\n');
    }
    if let Some(spf) = &v.spf {
        s.push_str(&format!(
            "spf={} smtp.mailfrom={} (helo {}={})\n",
            spf.mail_from.as_str(),
            spf.mail_from_domain,
            spf.helo_domain,
            spf.helo.as_str()
        ));
    }
    s.push_str(&format!(
        "dmarc={} header.from={}",
        v.dmarc.verdict.as_str(),
        v.dmarc.from_domain
    ));
    if v.dmarc.record.is_some() {
        s.push_str(&format!(" p={}", v.dmarc.policy.as_str()));
    }
    if !v.dmarc.reason.is_empty() {
        s.push_str(&format!(": {}", v.dmarc.reason));
    }
    s.push('\n');
    if !v.dmarc.organizational_domain.is_empty() {
        s.push_str(&format!(
            "  organizational domain {}\n",
            v.dmarc.organizational_domain
        ));
    }
    for step in &v.dmarc.walk {
        s.push_str(&format!("  walk: {step}\n"));
    }
    s
}

/// The JSON report: `arc`, `hops[]` (instance, domain, selector, cv, seal, ams, reason, ...),
/// `dkim[]`, `spf`, `dmarc`. Fields in name order, as the report has always listed them.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    arc: &'static str,
    arc_reason: &'a str,
    dkim: &'a [DkimOutcome],
    dmarc: &'a DmarcOutcome,
    hops: Vec<JsonHop<'a>>,
    oldest_pass: Option<u32>,
    spf: &'a Option<SpfOutcome>,
}

/// One ARC hop of [`JsonReport`]: the verdicts as words and in detail.
#[derive(Debug, Serialize)]
pub struct JsonHop<'a> {
    ams: &'static str,
    ams_detail: &'a Check,
    authserv_id: &'a str,
    cv: &'a str,
    domain: &'a str,
    instance: u32,
    reason: &'a str,
    recorded: &'a [String],
    seal: &'static str,
    seal_detail: &'a Check,
    selector: &'a str,
}

/// The JSON report of `v`.
pub fn to_json(v: &Verification) -> JsonReport<'_> {
    let hops = v
        .arc
        .hops
        .iter()
        .map(|h| JsonHop {
            ams: h.ams.word(),
            ams_detail: &h.ams,
            authserv_id: &h.authserv_id,
            cv: &h.cv,
            domain: &h.domain,
            instance: h.instance,
            reason: &h.reason,
            recorded: &h.recorded,
            seal: h.seal.word(),
            seal_detail: &h.seal,
            selector: &h.selector,
        })
        .collect();
    JsonReport {
        arc: v.arc.verdict.as_str(),
        arc_reason: &v.arc.reason,
        dkim: &v.dkim,
        dmarc: &v.dmarc,
        hops,
        oldest_pass: v.arc.oldest_pass,
        spf: &v.spf,
    }
}
