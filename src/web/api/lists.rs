//! `/api/lists...` (show, create) and `/api/aliases...` (forwarding aliases kept in the
//! store). A list's settings live in its file: edit it and reload (`POST /api/reload`).

use super::{Answer, Api, Call, Failure, Reply};
use crate::config::ListConfig;
use crate::store::Store;
use serde::{Deserialize, Serialize};

/// A list, as `GET /api/lists` shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ListView {
    /// The posting address.
    pub address: String,
    /// The display name.
    pub name: String,
    /// The file it comes from.
    pub file: String,
    /// Members in the store.
    pub members: usize,
    /// Signing: `d=DOMAIN s=SELECTOR (KEY FILE)`.
    pub signs_as: String,
    /// Every post waits for a moderator.
    pub moderated: bool,
    /// What happens to non-members' posts.
    pub non_members: String,
    /// What happens when the author's DMARC fails, and how the list mitigates.
    pub dmarc: String,
    /// The trusted ARC sealers.
    pub trusted_sealers: Vec<String>,
    /// The subject tag.
    pub subject_tag: String,
    /// The owners and moderators.
    pub moderators: Vec<String>,
    /// Whether the list is served now (false for a file added since the last reload).
    pub served: bool,
}

/// `POST /api/lists`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewList {
    /// The posting address.
    pub address: String,
    /// The display name.
    #[serde(default)]
    pub name: String,
    /// The signing selector.
    #[serde(default = "default_selector")]
    pub selector: String,
}

fn default_selector() -> String {
    "arc1".into()
}

/// A forwarding alias.
#[derive(Debug, Serialize, Deserialize)]
pub struct AliasView {
    /// `local@domain`, or `*@domain` for a catch-all.
    pub alias: String,
    /// Where its mail goes.
    pub targets: Vec<String>,
    /// `file`, `catch-all` or `store`.
    pub source: String,
}

impl<S: Store> Api<S> {
    /// Routes under `/api/lists`.
    pub(super) fn lists_route(&self, call: &Call<'_>, rest: &[&str]) -> Answer {
        match (call.method, rest) {
            ("GET", []) => {
                let config = self.config.get();
                let views: Result<Vec<ListView>, Failure> =
                    config.lists.iter().map(|l| self.list_view(l)).collect();
                Ok(Reply::json(200, &views?))
            }
            ("POST", []) => self.create(call),
            ("GET", [list]) => {
                let config = self.config.get();
                let l = config.list(list).ok_or_else(|| {
                    Failure::not_found(format!(
                        "no list {list} in {}",
                        config.server.lists_dir.display()
                    ))
                })?;
                Ok(Reply::json(200, &self.list_view(l)?))
            }
            ("GET", [list, "settings"]) => {
                let l = self.known_list_config(list)?;
                let text = std::fs::read_to_string(&l.file).unwrap_or_default();
                Ok(Reply::json(
                    200,
                    &crate::config::OwnerSettings::of(&l, &text),
                ))
            }
            ("PUT", [list, "settings"]) => self.put_settings(call, list),
            (_, [list, "members", more @ ..]) => self.members_route(call, list, more),
            _ => Err(Failure::not_found("no such lists route")),
        }
    }

    fn list_view(&self, l: &ListConfig) -> Result<ListView, Failure> {
        Ok(ListView {
            address: l.address.clone(),
            name: l.name.clone(),
            file: l.file.display().to_string(),
            members: self.store.members(&l.address)?.len(),
            signs_as: format!(
                "d={} s={} ({})",
                l.signing_domain(),
                l.signing.selector,
                l.signing.key.display()
            ),
            moderated: l.moderated,
            non_members: format!("{:?}", l.non_member_action),
            dmarc: format!(
                "{:?} on failure; mitigation {:?} ({:?})",
                l.dmarc_fail_action, l.dmarc_mitigation, l.mitigate
            ),
            trusted_sealers: l.trusted_sealers.clone(),
            subject_tag: l.subject_tag.clone(),
            moderators: l.all_moderators(),
            served: self.lists.contains(&l.address),
        })
    }

    /// Writes the list file and its key; a running server serves it after the reload this
    /// does.
    fn create(&self, call: &Call<'_>) -> Answer {
        let new: NewList = call.json()?;
        let config = self.config.get();
        let made = crate::list::create::create(&config, &new.address, &new.name, &new.selector)
            .map_err(|e| Failure(409, e))?;
        let reloaded = self.reload.as_ref().map(|r| r());
        Ok(Reply::json(
            201,
            &serde_json::json!({
                "file": made.file.display().to_string(),
                "key": made.key.display().to_string(),
                "dns": made.dns,
                "reloaded": reloaded.map(|r| r.unwrap_or_else(|e| format!("reload failed: {e}"))),
            }),
        ))
    }

    /// The list's configuration, or 404 naming the lists folder.
    fn known_list_config(&self, list: &str) -> Result<crate::config::ListConfig, Failure> {
        let config = self.config.get();
        config.list(list).cloned().ok_or_else(|| {
            Failure::not_found(format!(
                "no list {list} in {}",
                config.server.lists_dir.display()
            ))
        })
    }

    /// `PUT /api/lists/LIST/settings`: the owner's settings written into the list file (checked
    /// by the loader first), then the server reloads it.
    fn put_settings(&self, call: &Call<'_>, list: &str) -> Answer {
        let change: crate::config::OwnerSettings = call.json()?;
        let l = self.known_list_config(list)?;
        let (text, now) = crate::config::apply_owner_settings(&l.file, &change)
            .map_err(|e| Failure::invalid(e.to_string()))?;
        tracing::info!(list = %l.address, file = %l.file.display(), ?change, "list settings changed");
        let reloaded = match &self.reload {
            Some(reload) => reload().unwrap_or_else(|e| format!("reload failed: {e}")),
            None => "no server runs; it reads the file at start".into(),
        };
        Ok(Reply::json(
            200,
            &serde_json::json!({
                "settings": crate::config::OwnerSettings::of(&now, &text),
                "reloaded": reloaded,
            }),
        ))
    }

    /// Routes under `/api/aliases`.
    pub(super) fn aliases_route(&self, call: &Call<'_>, rest: &[&str]) -> Answer {
        match (call.method, rest) {
            ("GET", []) => {
                let config = self.config.get();
                let mut all = Vec::new();
                for f in &config.forwards {
                    for (local, entry) in &f.aliases {
                        let targets = match entry {
                            crate::config::AliasEntry::Targets(t) => t,
                            crate::config::AliasEntry::Detailed(p) => &p.targets,
                        };
                        all.push(AliasView {
                            alias: format!("{local}@{}", f.domain),
                            targets: targets.clone(),
                            source: "file".into(),
                        });
                    }
                    if !f.catch_all.is_empty() {
                        all.push(AliasView {
                            alias: format!("*@{}", f.domain),
                            targets: f.catch_all.clone(),
                            source: "catch-all".into(),
                        });
                    }
                }
                for (alias, targets) in self.store.aliases()? {
                    // A file alias wins over a store alias of the same name: say so.
                    let source = match file_alias(&config.forwards, &alias) {
                        Some(file) => format!("store, unused: {file} sets it"),
                        None => "store".into(),
                    };
                    all.push(AliasView {
                        alias,
                        targets,
                        source,
                    });
                }
                Ok(Reply::json(200, &all))
            }
            ("PUT", [alias]) => self.put_alias(call, alias),
            ("DELETE", [alias]) => {
                if !self.store.remove_alias(alias)? {
                    return Err(Failure::not_found(format!(
                        "{alias} is not an alias in the store (aliases in the forwarding files are edited there)"
                    )));
                }
                self.apply_aliases()?;
                Ok(Reply::json(200, &serde_json::json!({ "removed": true })))
            }
            _ => Err(Failure::not_found("no such aliases route")),
        }
    }

    fn put_alias(&self, call: &Call<'_>, alias: &str) -> Answer {
        #[derive(Deserialize)]
        struct Targets {
            targets: Vec<String>,
        }
        let Targets { targets } = call.json()?;
        let alias = alias.to_ascii_lowercase();
        let domain = alias.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        if !self
            .config
            .get()
            .forwards
            .iter()
            .any(|f| f.domain == domain)
        {
            return Err(Failure::invalid(format!(
                "{alias}: {domain:?} is not a forwarding domain (add a file for it to forwards_dir)"
            )));
        }
        if let Some(file) = file_alias(&self.config.get().forwards, &alias) {
            return Err(Failure(
                409,
                format!(
                    "{alias} is set in {file}; edit it there (a file alias wins over the store)"
                ),
            ));
        }
        if targets.is_empty() {
            return Err(Failure::invalid("an alias needs at least one target"));
        }
        if let Some(bad) = targets.iter().find(|t| !crate::config::valid_address(t)) {
            return Err(Failure::invalid(format!("{bad:?} is not an email address")));
        }
        if targets.iter().any(|t| t.eq_ignore_ascii_case(&alias)) {
            return Err(Failure::invalid(format!(
                "{alias} cannot forward to itself"
            )));
        }
        self.store.put_alias(&alias, &targets)?;
        self.apply_aliases()?;
        Ok(Reply::json(
            200,
            &serde_json::json!({ "alias": alias, "targets": targets }),
        ))
    }

    /// A running server serves changed aliases at once; when it cannot, the change is stored
    /// but the answer says it is not served yet (422).
    fn apply_aliases(&self) -> Result<(), Failure> {
        match &self.aliases_changed {
            Some(refresh) => refresh().map(|_| ()).map_err(|e| {
                Failure(
                    422,
                    format!("stored, but not served until a reload succeeds: {e}"),
                )
            }),
            None => Ok(()),
        }
    }
}

/// The forwarding file that sets `alias` (`local@domain`), if one does.
fn file_alias(forwards: &[crate::config::ForwardConfig], alias: &str) -> Option<String> {
    let (local, domain) = alias.rsplit_once('@')?;
    forwards
        .iter()
        .find(|f| {
            f.domain.eq_ignore_ascii_case(domain) && f.alias(&local.to_ascii_lowercase()).is_some()
        })
        .map(|f| f.file.display().to_string())
}
