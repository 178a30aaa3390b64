//! `arclist store`: the shared database's schema, and a copy of the store file.

use super::CliError;
use crate::base::config::Config;
use crate::state::store::PgStore;
use std::path::PathBuf;
use std::process::ExitCode;

/// `arclist store …`.
#[derive(clap::Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy the store file to FILE (new, mode 0600) while the server runs, as a consistent
    /// snapshot; a PostgreSQL store is backed up with pg_dump.
    Backup {
        /// The copy (a path on this host; it must not exist).
        file: PathBuf,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
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
    let config = match cmd {
        StoreCommand::Backup { file, config } => return backup(&file, config.as_deref()).await,
        StoreCommand::Migrate { config } => config,
    };
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

/// `arclist store backup FILE`: through the running server (its local admin socket), or on
/// the store opened here.
async fn backup(
    file: &std::path::Path,
    config: Option<&std::path::Path>,
) -> Result<ExitCode, CliError> {
    let file = std::path::absolute(file).map_err(|source| CliError::Generate {
        dir: file.to_path_buf(),
        source,
    })?;
    let api = super::backend::Backend::connect(config).await?;
    let done = api.backup(&file.to_string_lossy()).await?;
    super::backend::print(&format!("{}: {} bytes\n", done.file, done.bytes))?;
    Ok(ExitCode::SUCCESS)
}
