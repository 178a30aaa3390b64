//! Reloading a running server (SIGHUP, `arclist reload`, `POST /api/reload`): the list and
//! forwarding files are read again and, if every one of them is good, served from the next
//! message on. New lists are seeded and accepted; removed ones are refused at RCPT (their
//! queued mail still goes out); changed settings apply to posts not yet distributed. Sessions
//! stay open. A file with an error is refused, naming file and line, and the configuration in
//! force stays.

use crate::base::config::Config;
use crate::base::live::Live;
use crate::stages::directory::Directory;
use crate::stages::forward::Forwarding;
use crate::stages::list::Lists;
use crate::state::store::Store;
use crate::surfaces::admin::ReloadError;
use std::sync::{Arc, Mutex};

/// What a running server serves, shared with the sessions, workers and the admin API.
pub struct Served {
    /// The store.
    pub store: Arc<Store>,
    /// The configuration in force.
    pub config: Live<Config>,
    /// The lists' runtimes.
    pub lists: Lists,
    /// Who each address is.
    pub directory: Directory,
    /// The forwarding domains and aliases.
    pub forwarding: Live<Forwarding>,
}

/// One reload at a time: two at once could each apply half.
static RELOADING: Mutex<()> = Mutex::new(());

impl Served {
    /// Reads the files again and applies them; says what changed.
    pub fn reload(&self) -> Result<String, ReloadError> {
        let _one = RELOADING.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.config.get();
        let new = Config::with_server(old.server.clone()).map_err(|e| {
            tracing::error!(error = %e, "reload refused; the configuration in force stays");
            ReloadError::Config(e)
        })?;
        let applied = self.apply(&old, new);
        match &applied {
            Ok(what) => tracing::info!(changes = %what, "reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "reload refused; the configuration in force stays")
            }
        }
        applied
    }

    /// Serves the store's aliases as they are now, with the forwarding files in force (an
    /// alias was added or removed through the API): only forwarding is rebuilt.
    pub fn refresh_aliases(&self) -> Result<String, ReloadError> {
        let _one = RELOADING.lock().unwrap_or_else(|p| p.into_inner());
        let forwarding =
            crate::state::store::wait(super::load_forwarding(&self.config.get(), &self.store))
                .map_err(|e| ReloadError::Aliases(Box::new(e)))?;
        self.forwarding.set(forwarding);
        Ok("aliases served as stored".into())
    }

    fn apply(&self, old: &Config, new: Config) -> Result<String, ReloadError> {
        let refused = |e: super::StartError| ReloadError::Refused(Box::new(e));
        let mut runtimes = super::runtimes(&new).map_err(refused)?;
        for runtime in &mut runtimes {
            if let Some(before) = self.lists.get(&runtime.config.address) {
                runtime.keep_counting_from(&before);
            }
        }
        let forwarding = crate::state::store::wait(super::load_forwarding(&new, &self.store))
            .map_err(refused)?;
        for list in &new.lists {
            crate::state::store::wait(crate::stages::list::seed::seed(&self.store, list, false))?;
        }
        let names =
            |c: &Config| -> Vec<String> { c.lists.iter().map(|l| l.address.clone()).collect() };
        let (before, after) = (names(old), names(&new));
        let added: Vec<&String> = after.iter().filter(|a| !before.contains(a)).collect();
        let removed: Vec<&String> = before.iter().filter(|a| !after.contains(a)).collect();
        // The directory last: nothing is accepted for a list before its runtime is there.
        self.lists.replace(runtimes);
        self.forwarding.set(forwarding);
        self.directory.serve_lists(&new.lists);
        let summary = format!(
            "{} list(s) served{}{}; {} forwarding domain(s); {} alias(es) in the store",
            after.len(),
            if added.is_empty() {
                String::new()
            } else {
                format!(", added {}", join(&added))
            },
            if removed.is_empty() {
                String::new()
            } else {
                format!(", removed {}", join(&removed))
            },
            new.forwards.len(),
            crate::state::store::wait(self.store.aliases())
                .map(|a| a.len())
                .unwrap_or_default(),
        );
        self.config.set(new);
        Ok(summary)
    }
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
