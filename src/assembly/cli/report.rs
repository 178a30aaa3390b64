//! `arclist report`: [`crate::surfaces::operate::report`] for operators and list owners, as text or JSON.

use super::CliError;
use super::backend::{Backend, print};
use crate::surfaces::operate::report::parse_duration;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `arclist report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// How far back: `24h`, `7d`, `90m` or seconds.
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// Only this list (posting address).
    #[arg(long)]
    pub list: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The server file.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub(super) async fn run(args: ReportArgs) -> Result<ExitCode, CliError> {
    let api = Backend::connect(args.config.as_deref()).await?;
    parse_duration(&args.since)?;
    let report = api.report(&args.since, args.list.as_deref()).await?;
    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(CliError::Json)?;
        print(&format!("{json}\n"))?;
    } else {
        print(&report.text())?;
    }
    Ok(ExitCode::SUCCESS)
}
