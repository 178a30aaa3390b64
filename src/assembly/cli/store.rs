//! `arclist store`: the shared database's schema, a copy of the store file, and moving the
//! store file into a shared database.

use super::CliError;
use crate::base::config::Config;
use crate::state::store::{PgStore, RedbStore};
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
    /// Copy the store file (the one the server file names, or --from) into an empty
    /// PostgreSQL database, every row, then count each kind on both sides. Stop the server
    /// first: the file is opened here.
    Copy {
        /// The database: a `postgresql://` URL, as `store` takes it.
        #[arg(long)]
        to: String,
        /// The store file, instead of the server file's.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Copy into a database that holds rows already (a row whose key is there keeps the
        /// database's).
        #[arg(long)]
        into_non_empty: bool,
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
        StoreCommand::Copy {
            to,
            from,
            into_non_empty,
            config,
        } => return copy(&to, from, into_non_empty, config.as_deref()).await,
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

/// `arclist store copy --to URL`: the embedded store into a database, counted.
async fn copy(
    to: &str,
    from: Option<PathBuf>,
    into_non_empty: bool,
    config: Option<&std::path::Path>,
) -> Result<ExitCode, CliError> {
    let config = Config::load(config)?;
    let from = match from {
        Some(path) => path,
        None if config.server.store_url().is_some() => {
            return Err(CliError::Usage(
                "the server file names a PostgreSQL store: pass the store file with --from".into(),
            ));
        }
        None => config.server.store.clone(),
    };
    if !to.starts_with("postgresql://") && !to.starts_with("postgres://") {
        return Err(CliError::Usage(format!(
            "--to {to:?} is not a postgresql:// URL"
        )));
    }
    // Opening a missing file would make an empty store and copy nothing.
    if !from.is_file() {
        return Err(CliError::Usage(format!(
            "{}: no store file there",
            from.display()
        )));
    }
    let source = RedbStore::open(&from)?;
    let target = PgStore::connect(to, &config.server.hostname, &config.server.cluster)?;
    target.migrate().await?;
    let counts = crate::state::store::copy::copy(source, &target, into_non_empty).await?;
    let mut out = String::new();
    let mut complete = true;
    for c in &counts {
        let note = match (c.complete(), c.before) {
            (true, _) => String::new(),
            (false, 0) => "\tMISSING".to_string(),
            (false, _) => "\t(some keys were in the database already)".to_string(),
        };
        complete &= c.complete() || c.before > 0;
        out.push_str(&format!(
            "{}\t{} read\t{} in the database{note}\n",
            c.kind, c.source, c.target
        ));
    }
    out.push_str(match complete {
        true => "copied: start the server with this URL as `store`\n",
        false => "the copy is incomplete: do not use the database\n",
    });
    super::backend::print(&out)?;
    Ok(match complete {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}
