//! The admin service: what an operator may see and change on a running (or stopped) server,
//! as typed methods and structs. The HTTP API (`web::api`) is a serde adapter over
//! it, the console calls it directly and the CLI calls it in process on a store it opened, or
//! over HTTP decoding the same structs, so a renamed field is a compile error everywhere.
//! Methods are `async fn` that await the store; what still blocks (the list stages that wait
//! for the store while they sign, writing a new list's key, a reload) runs on the blocking
//! pool through `Admin::blocking`, tracked so that a stopping server waits for it.

pub mod archive;
pub mod digests;
pub mod held;
pub mod lists;
pub mod members;
pub mod queue;

use crate::base::config::Config;
use crate::base::live::Live;
use crate::base::tasks::Tasks;
use crate::stages::list::Lists;
use crate::state::store::{SpoolId, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::mpsc;

pub use archive::{ArchiveRemoved, ImportReport};
pub use held::{Decided, HeldPost, Rejection};
pub use lists::{AliasSet, AliasView, Created, ListView, NewList, SettingsChanged, Targets};
pub use members::{
    Added, Enabled, Imported, MemberSettings, NewMember, Page, PageQuery, Removed, SettingsView,
    Synced,
};
pub use queue::{PostLine, PostStatus, Retried};

/// Re-reads the configuration of a running server; says what changed, or why nothing did.
pub type Reload = Arc<dyn Fn() -> Result<String, ReloadError> + Send + Sync>;

/// Why a reload (or serving the stored aliases anew) changed nothing. The server, which loads
/// the files, sits above this service: what it could not load is the boxed source.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A list or forwarding file has an error (the error names file and line).
    #[error("reload refused, nothing changed: {0}")]
    Config(#[source] crate::base::config::ConfigError),
    /// A list's or forwarding domain's key or secret does not load, or the store's aliases
    /// could not be read.
    #[error("reload refused, nothing changed: {0}")]
    Refused(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The members a new list's file names could not be seeded.
    #[error(transparent)]
    Seed(#[from] crate::stages::list::ListError),
    /// The forwarding domains could not be rebuilt with the stored aliases.
    #[error("{0}")]
    Aliases(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The reload's blocking task panicked or was stopped.
    #[error("reload task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Why the service refused or failed; each surface turns it into its own words (the HTTP
/// API into a status, in one place: `web::api::status`).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such list, member, post or route.
    #[error("{0}")]
    NotFound(String),
    /// The request is wrong: `field` names what is wrong in it.
    #[error("{message}")]
    BadRequest {
        /// The field (or query parameter, or body) at fault.
        field: &'static str,
        /// What is wrong, for the operator.
        message: String,
    },
    /// The request is right but the state forbids it (a post not held, a list that exists).
    #[error("{0}")]
    Conflict(String),
    /// The change was refused by the reload, or stored but not served yet.
    #[error("{0}")]
    NotApplied(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store could not do a compound operation (its message names what).
    #[error("{0}")]
    Unavailable(String),
}

impl AdminError {
    /// A bad request about `field`.
    pub fn bad(field: &'static str, message: impl Into<String>) -> Self {
        AdminError::BadRequest {
            field,
            message: message.into(),
        }
    }
}

/// What a service method returns.
pub type Result<T, E = AdminError> = std::result::Result<T, E>;

/// `text` as a post id, or a bad request naming it.
pub fn parse_id(text: &str) -> Result<SpoolId> {
    text.parse()
        .map_err(|_| AdminError::bad("id", format!("{text:?} is not a post id")))
}

/// What the service works on.
pub struct Admin {
    /// The store.
    pub store: Arc<Store>,
    /// The lists served (their signing keys, for notices); may lack a list whose key did not
    /// load, when the CLI works on a stopped server's store.
    pub lists: Lists,
    /// The configuration in force.
    pub config: Live<Config>,
    /// The pipeline's feed, to distribute approved posts at once (none when no server runs:
    /// they go out at the next start).
    pub feed: Option<mpsc::UnboundedSender<SpoolId>>,
    /// How to reload, when a server runs.
    pub reload: Option<Reload>,
    /// How a running server takes changed aliases (forwarding only, not the list files).
    pub aliases_changed: Option<Reload>,
    /// Where blocking work runs: the server's tasks, so that stopping waits for it.
    pub tasks: Tasks,
}

/// `POST /api/store/backup`'s request: where the server writes the copy.
#[derive(Debug, Serialize, Deserialize)]
pub struct Backup {
    /// An absolute path on the server's host; the file must not exist.
    pub file: String,
}

/// `POST /api/store/backup`'s answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct BackedUp {
    /// The copy.
    pub file: String,
    /// Its size.
    pub bytes: u64,
}

/// `POST /api/reload`'s answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reloaded {
    /// What changed.
    pub reloaded: String,
}

impl Admin {
    /// The posting address of a configured list, or not found naming the lists folder.
    pub fn known_list(&self, list: &str) -> Result<String> {
        self.known_list_config(list).map(|l| l.address)
    }

    /// The list's configuration, or not found naming the lists folder.
    pub fn known_list_config(&self, list: &str) -> Result<crate::base::config::ListConfig> {
        let config = self.config.get();
        config.list(list).cloned().ok_or_else(|| {
            AdminError::NotFound(format!(
                "no list {list} in {}",
                config.server.lists_dir.display()
            ))
        })
    }

    /// The report over the last `since` (`24h`, `7d`...), of one list or all.
    pub async fn report(
        &self,
        since: &str,
        list: Option<&str>,
    ) -> Result<crate::surfaces::operate::report::Report> {
        let since = crate::surfaces::operate::report::parse_duration(since)
            .map_err(|e| AdminError::bad("since", e.to_string()))?;
        let list = list.map(|l| self.known_list(l)).transpose()?;
        let from = crate::auth::unix_now().saturating_sub(since);
        Ok(crate::surfaces::operate::report::build(&self.store, from, list.as_deref()).await?)
    }

    /// Re-reads the configuration of the running server.
    pub async fn reload(&self) -> Result<Reloaded> {
        let Some(reload) = self.reload.clone() else {
            return Err(AdminError::Conflict(
                "no server runs; nothing to reload".into(),
            ));
        };
        self.blocking(move || reload())
            .await?
            .map(|reloaded| Reloaded { reloaded })
            .map_err(|e| AdminError::NotApplied(e.to_string()))
    }

    /// Copies the embedded store to `file` (absolute, new) while it is in use.
    pub async fn backup(&self, file: &str) -> Result<BackedUp> {
        if self.store.as_redb().is_none() {
            return Err(AdminError::Conflict(
                "a PostgreSQL store is backed up with pg_dump (docs/scaling.md)".into(),
            ));
        }
        let path = std::path::Path::new(file);
        if !path.is_absolute() {
            return Err(AdminError::bad(
                "file",
                format!("{file:?} is not an absolute path"),
            ));
        }
        let bytes = self.store.backup(path).await?;
        Ok(BackedUp {
            file: file.to_string(),
            bytes,
        })
    }

    /// What the running server's reload said, or why it failed; none when no server runs.
    async fn reload_said(&self) -> Option<String> {
        let reload = self.reload.clone()?;
        Some(match self.blocking(move || reload()).await {
            Ok(Ok(said)) => said,
            Ok(Err(e)) => format!("reload failed: {e}"),
            Err(e) => format!("reload failed: {e}"),
        })
    }

    /// Runs blocking `work` on the blocking pool (a reload reads files and loads keys; the
    /// list stages still wait for the store while they sign); unavailable when the server
    /// stopped it.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        self.tasks
            .spawn_blocking(work)
            .await
            .map_err(|e| AdminError::Unavailable(format!("not done, the server is stopping: {e}")))
    }
}
