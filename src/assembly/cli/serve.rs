//! `arclist serve`, `arclist check-config` and `arclist spool`.

use super::CliError;
use crate::assembly::server::{Server, preflight};
use crate::base::config::{Config, LogFormat};
use crate::state::store::Store;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `arclist serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The server file; without it, built-in defaults (127.0.0.1:2525, store under ./var/,
    /// lists from ./lists/).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log one JSON object per line (overrides log_format in the file).
    #[arg(long)]
    log_json: bool,
}

/// Arguments of `arclist check-config`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The server file (default: built-in defaults with ./lists/).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// `arclist spool ...`.
#[derive(Subcommand, Debug)]
pub enum SpoolCommand {
    /// List spooled messages (with a store file, stop the server first: it is opened
    /// exclusively; a shared database any time).
    Ls {
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one spooled message's raw bytes.
    Show {
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The message id.
        id: u64,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARCLIST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Source files would be the build machine's paths; an event's target and message
        // say where it comes from.
        .with_file(false)
        .with_line_number(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub(super) async fn run_serve(args: ServeArgs) -> Result<ExitCode, CliError> {
    let config = Config::load(args.config.as_deref())?;
    init_logging(if args.log_json {
        LogFormat::Json
    } else {
        config.server.log_format
    });
    // Watch for signals before the listeners open: a SIGTERM that arrives while the rest of
    // the server is still starting would otherwise kill the process outright, cutting off
    // sessions the listeners had already accepted.
    let stop = stop_signal()?;
    // SIGHUP's default action ends the process; watching it from the start means a reload
    // asked for while starting is never a kill.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|source| CliError::Signal {
            signal: "SIGHUP",
            source,
        })?;
    // A file-size limit (RLIMIT_FSIZE) must fail a write, which the store survives, not kill
    // the process: SIGXFSZ's default action is to end it.
    let _file_size = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25))
        .map_err(|source| CliError::Signal {
            signal: "SIGXFSZ",
            source,
        })?;
    // Nothing listens before everything it needs is there (the same checks as check-config).
    let found = preflight::check(&config, preflight::StoreCheck::Skip).await;
    if !found.ok() {
        return Err(CliError::Preflight {
            problems: found.problems,
        });
    }
    let server = Server::start(&config).await?;
    tracing::info!(lists = config.lists.len(), store = %config.server.store_display(), "arclist serving");
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(()) = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the list and forwarding files");
                // Errors are logged by the reload, and the configuration in force stays.
                let _ = server.reload().await;
            }
        }
    }
    tracing::info!("stopping: finishing open messages, refusing new sessions with 421");
    let grace = Duration::from_secs(config.server.limits.data_timeout_secs.max(1));
    server.stop(grace).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts watching for SIGTERM and SIGINT now; the future completes when either arrives.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    use tokio::signal::unix::SignalKind;
    let watch = |kind, signal| {
        tokio::signal::unix::signal(kind).map_err(|source| CliError::Signal { signal, source })
    };
    let mut term = watch(SignalKind::terminate(), "SIGTERM")?;
    let mut int = watch(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

pub(super) async fn run_check(args: CheckArgs) -> Result<ExitCode, CliError> {
    let config = Config::load(args.config.as_deref())?;
    let found = preflight::check(&config, preflight::StoreCheck::Connect).await;
    for line in &found.found {
        println!("{line}");
    }
    if !found.ok() {
        return Err(CliError::Preflight {
            problems: found.problems,
        });
    }
    println!("configuration ok");
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn run_spool(cmd: SpoolCommand) -> Result<ExitCode, CliError> {
    let config_path = match &cmd {
        SpoolCommand::Ls { config, .. } | SpoolCommand::Show { config, .. } => config.clone(),
    };
    let config = Config::load(config_path.as_deref())?;
    let store = Store::open(&config.server).await?;
    match cmd {
        SpoolCommand::Ls { json, .. } => {
            let all = store.list().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&all).map_err(CliError::Json)?
                );
            } else {
                for m in all {
                    println!(
                        "{:>8} {:<14} {:>9} bytes  from <{}> to {}",
                        m.id,
                        format!("{:?}", m.state),
                        m.size,
                        m.envelope.mail_from,
                        m.envelope.rcpt_to.join(",")
                    );
                }
            }
        }
        SpoolCommand::Show { id, .. } => {
            let (_, data) = store.get(id).await?.ok_or(CliError::NoSpooled { id })?;
            use std::io::Write;
            std::io::stdout()
                .write_all(&data)
                .map_err(CliError::Output)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
