//! `arclist archive export|import|remove`: a list's archive from the command line, through
//! the admin service (in process, or over the running server's admin API).

use super::CliError;
use super::backend::{Backend, print, print_bytes, segment};
use crate::surfaces::admin::{ArchiveRemoved, ImportReport};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// `arclist archive ...`.
#[derive(Subcommand, Debug)]
pub enum ArchiveCommand {
    /// Write a list's archive (or one month of it) to standard output as an mbox (mboxrd).
    Export {
        /// The list.
        list: String,
        /// Only this month, `YYYY-MM`.
        #[arg(long)]
        month: Option<String>,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Archive every post of an mbox file (Mailman, HyperKitty, Google Takeout); a post
    /// archived before (same Message-ID) is not added again.
    Import {
        /// The list.
        list: String,
        /// The mbox file.
        file: PathBuf,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Remove a post from the archive for good (its thread keeps a placeholder).
    Remove {
        /// The list.
        list: String,
        /// The post's archive id (the end of its Archived-At URL) or its Message-ID.
        post: String,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

impl Backend {
    /// `list`'s archive, or one month of it, as mboxrd.
    async fn archive_export(&self, list: &str, month: Option<&str>) -> Result<Vec<u8>, CliError> {
        let mut path = format!("/api/archive/{}/mbox", segment(list));
        if let Some(month) = month {
            path.push_str(&format!("?month={}", segment(month)));
        }
        self.ask_bytes(&path, async |a| a.archive_export(list, month).await)
            .await
    }

    /// Archives the posts of mbox `file` for `list`.
    async fn archive_import(&self, list: &str, file: Vec<u8>) -> Result<ImportReport, CliError> {
        let path = format!("/api/archive/{}/import", segment(list));
        let local = file.clone();
        self.ask(("POST", &path), file, async |a| {
            a.archive_import(list, &local).await
        })
        .await
    }

    /// Removes `post` from `list`'s archive.
    async fn archive_remove(&self, list: &str, post: &str) -> Result<ArchiveRemoved, CliError> {
        let path = format!("/api/archive/{}/posts/{}", segment(list), segment(post));
        self.ask(("DELETE", &path), Vec::new(), async |a| {
            a.archive_remove(list, post).await
        })
        .await
    }
}

/// Runs `arclist archive ...`.
pub(super) async fn run(cmd: ArchiveCommand) -> Result<ExitCode, CliError> {
    let config = match &cmd {
        ArchiveCommand::Export { config, .. }
        | ArchiveCommand::Import { config, .. }
        | ArchiveCommand::Remove { config, .. } => config.clone(),
    };
    let api = Backend::connect(config.as_deref()).await?;
    match cmd {
        ArchiveCommand::Export { list, month, .. } => {
            let list = api.list_address(&list);
            print_bytes(&api.archive_export(&list, month.as_deref()).await?)?;
        }
        ArchiveCommand::Import { list, file, .. } => {
            let list = api.list_address(&list);
            let bytes = std::fs::read(&file).map_err(|source| CliError::Read {
                path: file.clone(),
                source,
            })?;
            let report = api.archive_import(&list, bytes).await?;
            let mut text = format!(
                "{}: {} message(s) read, {} archived, {} archived before, {} not readable\n",
                file.display(),
                report.messages,
                report.added,
                report.already,
                report.unreadable_count
            );
            for why in &report.unreadable {
                text.push_str(&format!("  {why}\n"));
            }
            print(&text)?;
        }
        ArchiveCommand::Remove { list, post, .. } => {
            let list = api.list_address(&list);
            let answer = api.archive_remove(&list, &post).await?;
            let said = match answer.removed {
                true => "removed from the archive",
                false => "was removed before",
            };
            print(&format!("{} {} {said}\n", answer.list, answer.id))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
