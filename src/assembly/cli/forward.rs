//! `arclist forward add|remove|ls`: aliases kept in the store, beside those in the forwarding
//! files, through the admin API; a running server serves a changed alias at once.

use super::CliError;
use super::backend::{Backend, print};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// `arclist forward ...`.
#[derive(Subcommand, Debug)]
pub enum ForwardCommand {
    /// Make ALIAS forward to TARGETs (replacing any targets it had in the store).
    Add {
        /// The alias, `local@forwarding-domain`.
        alias: String,
        /// Where its mail goes.
        #[arg(required = true)]
        targets: Vec<String>,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Remove an alias added with `add` (aliases in the files are edited there).
    Remove {
        /// The alias.
        alias: String,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Every alias, from the files and the store, with its targets.
    Ls {
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub(super) async fn run(cmd: ForwardCommand) -> Result<ExitCode, CliError> {
    let config = match &cmd {
        ForwardCommand::Add { config, .. }
        | ForwardCommand::Remove { config, .. }
        | ForwardCommand::Ls { config } => config.clone(),
    };
    let api = Backend::connect(config.as_deref()).await?;
    match cmd {
        ForwardCommand::Add { alias, targets, .. } => {
            api.put_alias(&alias, targets.clone()).await?;
            print(&format!(
                "{} -> {}\n",
                alias.to_ascii_lowercase(),
                targets.join(", ")
            ))?;
        }
        ForwardCommand::Remove { alias, .. } => {
            api.remove_alias(&alias).await?;
            print(&format!("{alias} removed\n"))?;
        }
        ForwardCommand::Ls { .. } => {
            let all = api.aliases().await?;
            let mut text = String::new();
            for a in all {
                text.push_str(&format!(
                    "{}\t{}\t({})\n",
                    a.alias,
                    a.targets.join(", "),
                    a.source
                ));
            }
            print(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
