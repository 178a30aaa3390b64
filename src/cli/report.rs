//! `arclist report`: [`crate::operate::report`] for operators and list owners, as text or JSON.

use crate::config::Config;
use crate::operate::report::{build, parse_duration};
use crate::store::RedbStore;
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

pub(super) fn run(args: ReportArgs) -> Result<ExitCode, String> {
    let config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(list) = &args.list
        && config.list(list).is_none()
    {
        return Err(format!(
            "no list {list} in {}",
            config.server.lists_dir.display()
        ));
    }
    let store = RedbStore::open(&config.server.store)
        .map_err(|e| format!("{e} (is arclist serve running? stop it first)"))?;
    let since = crate::auth::unix_now().saturating_sub(parse_duration(&args.since)?);
    let report = build(&store, since, args.list.as_deref()).map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::SUCCESS)
}
