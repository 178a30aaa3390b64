//! `arclist store`: the shared database's schema.

use super::CliError;
use crate::base::config::Config;
use crate::state::store::PgStore;
use std::path::PathBuf;
use std::process::ExitCode;

/// `arclist store …`.
#[derive(clap::Subcommand, Debug)]
pub enum StoreCommand {
    /// Create or bring up to date the tables of a PostgreSQL store (arclist serve also does
    /// it at start); prints the schema version.
    Migrate {
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Runs `arclist store …`.
pub async fn run(cmd: StoreCommand) -> Result<ExitCode, CliError> {
    let StoreCommand::Migrate { config } = cmd;
    let config = Config::load(config.as_deref())?;
    let Some(url) = config.server.store_url() else {
        println!(
            "{} is a store file: it is laid out when opened, nothing to migrate",
            config.server.store.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let store = PgStore::connect(url, &config.server.hostname, &config.server.cluster)?;
    let (before, _) = store.schema_version().await?;
    let applied = store.migrate().await?;
    let (now, newest) = store.schema_version().await?;
    match applied.is_empty() {
        true => println!(
            "schema at version {now} (the newest this arclist knows: {newest}); nothing to do"
        ),
        false => println!(
            "schema migrated from version {before} to {now}: applied {}",
            applied
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    Ok(ExitCode::SUCCESS)
}
