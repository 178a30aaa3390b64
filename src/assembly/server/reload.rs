//! Reloading a running server (SIGHUP, `arclist reload`, `POST /api/reload`): the server
//! file, the list and forwarding files and the console's users file are read again and, if
//! every one of them is good, served from the next message on. Of the server file, a reload
//! applies `lists_dir`, `forwards_dir` and `[admin] console_users`; every other setting it
//! finds changed is named in its answer and log as needing a restart, and stays as started. New lists are seeded and accepted; removed ones are refused at RCPT (their
//! queued mail still goes out); changed settings apply to posts not yet distributed. Sessions
//! stay open. A file with an error is refused, naming file and line, and the configuration in
//! force stays.

use crate::base::config::Config;
use crate::base::config::ServerConfig;
use crate::base::live::Live;
use crate::stages::directory::Directory;
use crate::stages::forward::Forwarding;
use crate::stages::list::Lists;
use crate::state::store::Store;
use crate::surfaces::admin::ReloadError;
use crate::surfaces::web::console::users::User;
use std::sync::{Arc, Mutex, OnceLock};

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
    /// The console's people, when the console runs.
    pub console_users: OnceLock<Live<Vec<User>>>,
}

/// One reload at a time: two at once could each apply half.
static RELOADING: Mutex<()> = Mutex::new(());

impl Served {
    /// Reads the files again and applies them; says what changed.
    pub fn reload(&self) -> Result<String, ReloadError> {
        let _one = RELOADING.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.config.get();
        let refused = |e: ReloadError| {
            tracing::error!(error = %e, "reload refused; the configuration in force stays");
            e
        };
        let (server, restart) = match &old.server.file {
            Some(file) => {
                let fresh =
                    ServerConfig::load(file).map_err(|e| refused(ReloadError::Config(e)))?;
                reloadable(&old.server, fresh)
            }
            None => (old.server.clone(), Vec::new()),
        };
        let users = self.console_users(&server).map_err(refused)?;
        let new = Config::with_server(server).map_err(|e| refused(ReloadError::Config(e)))?;
        let mut applied = self.apply(&old, new).map_err(refused)?;
        if let (Some(users), Some(live)) = (users, self.console_users.get()) {
            applied.push_str(&format!("; {} console user(s)", users.len()));
            live.set(users);
        }
        tracing::info!(changes = %applied, "reloaded");
        if !restart.is_empty() {
            let names = restart.join(", ");
            tracing::warn!(settings = %names, "changed but needs a restart: {names}");
            applied.push_str(&format!("; changed but needs a restart: {names}"));
        }
        Ok(applied)
    }

    /// The console's people read again from `server`'s users file, when the console runs.
    fn console_users(&self, server: &ServerConfig) -> Result<Option<Vec<User>>, ReloadError> {
        let file = server.admin.as_ref().and_then(|a| a.console_users.as_ref());
        match (file, self.console_users.get()) {
            (Some(file), Some(_)) => crate::surfaces::web::console::users::load(file)
                .map(Some)
                .map_err(|e| ReloadError::Refused(Box::new(e))),
            _ => Ok(None),
        }
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

/// The server file's settings a reload applies, taken from `fresh` into those in force (the
/// rest stay as the server started), and the names of the others that `fresh` changes.
fn reloadable(old: &ServerConfig, fresh: ServerConfig) -> (ServerConfig, Vec<&'static str>) {
    let mut restart = Vec::new();
    // Compared as written out: every setting is Debug, and a change anywhere in a section
    // shows in its text.
    let mut differs = |name: &'static str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
        if format!("{a:?}") != format!("{b:?}") {
            restart.push(name);
        }
    };
    let (o, f) = (old, &fresh);
    differs("hostname", &o.hostname, &f.hostname);
    differs("listen", &o.listen, &f.listen);
    differs("lmtp_listen", &o.lmtp_listen, &f.lmtp_listen);
    differs("socketmap_listen", &o.socketmap_listen, &f.socketmap_listen);
    differs("store", &o.store_display(), &f.store_display());
    differs("cluster", &o.cluster, &f.cluster);
    differs("state_dir", &o.state_dir, &f.state_dir);
    differs("log_format", &o.log_format, &f.log_format);
    differs("tls", &o.tls, &f.tls);
    differs("dns", &o.dns, &f.dns);
    differs("limits", &o.limits, &f.limits);
    differs("delivery", &o.delivery, &f.delivery);
    differs("http", &o.http, &f.http);
    differs("retention", &o.retention, &f.retention);
    differs("pipeline", &o.pipeline, &f.pipeline);
    differs("trusted_relays", &o.trusted_relays, &f.trusted_relays);
    differs("dmarc_reports", &o.dmarc_reports, &f.dmarc_reports);
    differs(
        "send_dmarc_reports",
        &o.send_dmarc_reports,
        &f.send_dmarc_reports,
    );
    differs("filter", &o.filter, &f.filter);
    let admin_but_users = |s: &ServerConfig| {
        s.admin.clone().map(|mut a| {
            a.console_users = None;
            a
        })
    };
    differs("admin", &admin_but_users(o), &admin_but_users(f));
    let users = |s: &ServerConfig| s.admin.as_ref().and_then(|a| a.console_users.clone());
    // The console is mounted at start: a reload swaps its people, not whether it is there.
    if users(o).is_some() != users(f).is_some() {
        restart.push("admin.console_users");
    }
    let users_file = users(&fresh).filter(|_| users(o).is_some());
    let mut applied = old.clone();
    applied.lists_dir = fresh.lists_dir;
    applied.forwards_dir = fresh.forwards_dir;
    if let (Some(a), Some(file)) = (&mut applied.admin, users_file) {
        a.console_users = Some(file);
    }
    (applied, restart)
}
