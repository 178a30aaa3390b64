//! `arclist check-dns`: runs [`crate::surfaces::operate::check_dns`] for every list and forwarding
//! domain (or one), prints one line per finding with its fix, and exits 1 when anything would
//! make receivers reject or junk mail.

use super::CliError;
use super::dns_args::DnsArgs;
use crate::base::config::Config;
use crate::surfaces::operate::check_dns::{Checker, Severity, Target};
use clap::Args;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// `arclist check-dns`.
#[derive(Args, Debug)]
pub struct CheckDnsArgs {
    /// Only this list (posting address) or forwarding domain.
    pub only: Option<String>,
    /// An address mail leaves from (repeatable). Default: the addresses of the server's
    /// `hostname`.
    #[arg(long = "ip")]
    pub ips: Vec<IpAddr>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The server file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where DNS answers come from.
    #[command(flatten)]
    pub dns: DnsArgs,
}

pub(super) async fn run(args: CheckDnsArgs) -> Result<ExitCode, CliError> {
    let config = Config::load(args.config.as_deref())?;
    // The server's own resolvers, unless the command line names others or zone files: the
    // records checked are those the server itself will see.
    let mut dns_args = args.dns.clone();
    if dns_args.nameservers.is_empty() && dns_args.zones.is_empty() {
        dns_args.nameservers = config.server.dns.nameservers.clone();
    }
    let dns = dns_args.setup(true).await?;
    let hostname = config.server.hostname.clone();
    let outbound = if args.ips.is_empty() {
        dns.resolver
            .ips(&hostname)
            .await
            .map_err(|source| CliError::Outbound {
                host: hostname.clone(),
                source,
            })?
    } else {
        args.ips.clone()
    };
    let checker = Checker {
        spf: dns.spf(&hostname)?,
        resolver: dns.resolver.clone(),
        hostname,
        outbound,
        reports_local: config.server.dmarc_reports.clone(),
    };
    let mut targets: Vec<Target> = config
        .lists
        .iter()
        .map(|l| Target {
            subject: l.address.clone(),
            domain: l.domain().to_string(),
            sender: format!("{}-bounces@{}", l.local_part(), l.domain()),
            signing_domain: l.signing_domain().to_string(),
            selector: l.signing.selector.clone(),
            key: l.signing.key.clone(),
        })
        .collect();
    targets.extend(config.forwards.iter().map(|f| Target {
        subject: format!("forwarding {}", f.domain),
        domain: f.domain.clone(),
        sender: format!("postmaster@{}", f.srs_domain()),
        signing_domain: f.signing_domain().to_string(),
        selector: f.signing.selector.clone(),
        key: f.signing.key.clone(),
    }));
    if let Some(only) = &args.only {
        targets.retain(|t| {
            t.subject.eq_ignore_ascii_case(only) || t.domain.eq_ignore_ascii_case(only)
        });
        if targets.is_empty() {
            return Err(CliError::NoSuchTarget { only: only.clone() });
        }
    }
    let mut findings = Vec::new();
    for t in &targets {
        findings.extend(checker.check(t).await);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&findings).map_err(CliError::Json)?
        );
    } else {
        for f in &findings {
            let tag = match f.severity {
                Severity::Ok => "ok  ",
                Severity::Warn => "WARN",
                Severity::Fail => "FAIL",
            };
            println!("{tag} {:<11} {}: {}", f.check, f.subject, f.message);
            if let Some(fix) = &f.fix {
                println!("     {:<11} fix: {fix}", "");
            }
        }
    }
    let fails = findings
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .count();
    if !args.json {
        println!(
            "{} checks, {fails} would make receivers reject or junk mail, {} worth fixing",
            findings.len(),
            findings
                .iter()
                .filter(|f| f.severity == Severity::Warn)
                .count()
        );
    }
    Ok(if fails > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
