//! `arclist forward add|remove|ls`: aliases kept in the store, beside those in the forwarding
//! files. Like the other store commands, these run while the server is stopped; the server
//! reads the aliases when it starts.

use super::admin::open;
use crate::store::Store;
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

pub(super) fn run(cmd: ForwardCommand) -> Result<ExitCode, String> {
    match cmd {
        ForwardCommand::Add {
            alias,
            targets,
            config,
        } => {
            let (config, store) = open(config.as_deref())?;
            let alias = alias.to_ascii_lowercase();
            let domain = alias.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
            if !config.forwards.iter().any(|f| f.domain == domain) {
                return Err(format!(
                    "{alias}: {domain:?} is not a forwarding domain (add a file for it to forwards_dir)"
                ));
            }
            if let Some(bad) = targets.iter().find(|t| !crate::config::valid_address(t)) {
                return Err(format!("{bad:?} is not an email address"));
            }
            if targets.iter().any(|t| t.eq_ignore_ascii_case(&alias)) {
                return Err(format!("{alias} cannot forward to itself"));
            }
            store
                .put_alias(&alias, &targets)
                .map_err(|e| e.to_string())?;
            println!("{alias} -> {}", targets.join(", "));
        }
        ForwardCommand::Remove { alias, config } => {
            let (_, store) = open(config.as_deref())?;
            if !store.remove_alias(&alias).map_err(|e| e.to_string())? {
                return Err(format!(
                    "{alias} is not an alias in the store (aliases in the forwarding files are edited there)"
                ));
            }
            println!("{alias} removed");
        }
        ForwardCommand::Ls { config } => {
            let (config, store) = open(config.as_deref())?;
            for f in &config.forwards {
                for (local, entry) in &f.aliases {
                    let targets = match entry {
                        crate::config::AliasEntry::Targets(t) => t,
                        crate::config::AliasEntry::Detailed(p) => &p.targets,
                    };
                    println!("{local}@{}\t{}\t(file)", f.domain, targets.join(", "));
                }
                if !f.catch_all.is_empty() {
                    println!("*@{}\t{}\t(catch-all)", f.domain, f.catch_all.join(", "));
                }
            }
            for (alias, targets) in store.aliases().map_err(|e| e.to_string())? {
                println!("{alias}\t{}\t(store)", targets.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
