//! Lists (show, create, the owner's settings) and forwarding aliases kept in the store. A
//! list's settings live in its file: edit it and reload.

use super::{Admin, AdminError, Result};
use crate::base::config::{ListConfig, OwnerSettings};
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

/// A list to create (`POST /api/lists`).
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

/// A list created: its files, the DNS record to publish, and the reload it caused.
#[derive(Debug, Serialize, Deserialize)]
pub struct Created {
    /// The TXT record to publish.
    pub dns: String,
    /// The list file written.
    pub file: String,
    /// The private key file written.
    pub key: String,
    /// What the running server's reload said (or why it failed); none when no server runs.
    pub reloaded: Option<String>,
}

/// The owner's settings written, and what the reload said.
#[derive(Debug, Serialize, Deserialize)]
pub struct SettingsChanged {
    /// What the reload said (or that no server runs).
    pub reloaded: String,
    /// The settings now in the file.
    pub settings: OwnerSettings,
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

/// Where an alias forwards (`PUT /api/aliases/ALIAS`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Targets {
    /// The addresses.
    pub targets: Vec<String>,
}

/// An alias stored.
#[derive(Debug, Serialize, Deserialize)]
pub struct AliasSet {
    /// The alias, lower-cased.
    pub alias: String,
    /// Where it forwards.
    pub targets: Vec<String>,
}

impl Admin {
    /// Every configured list.
    pub async fn lists(&self) -> Result<Vec<ListView>> {
        let config = self.config.get();
        let mut views = Vec::with_capacity(config.lists.len());
        for l in &config.lists {
            views.push(self.list_view(l).await?);
        }
        Ok(views)
    }

    /// One configured list.
    pub async fn list(&self, list: &str) -> Result<ListView> {
        self.list_view(&self.known_list_config(list)?).await
    }

    async fn list_view(&self, l: &ListConfig) -> Result<ListView> {
        Ok(ListView {
            address: l.address.clone(),
            name: l.name.clone(),
            file: l.file.display().to_string(),
            members: self.store.members(&l.address).await?.len(),
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
    pub async fn create_list(&self, new: &NewList) -> Result<Created> {
        let config = self.config.get();
        let (address, name, selector) =
            (new.address.clone(), new.name.clone(), new.selector.clone());
        // Generating the key is heavy: off the runtime.
        let made = self
            .blocking(move || {
                crate::stages::list::create::create(&config, &address, &name, &selector)
            })
            .await?
            .map_err(|e| AdminError::Conflict(e.to_string()))?;
        let reloaded = self.reload_said().await;
        Ok(Created {
            dns: made.dns,
            file: made.file.display().to_string(),
            key: made.key.display().to_string(),
            reloaded,
        })
    }

    /// The owner's settings of `list`, as its file has them.
    pub async fn settings(&self, list: &str) -> Result<OwnerSettings> {
        let l = self.known_list_config(list)?;
        let text = std::fs::read_to_string(&l.file).unwrap_or_default();
        Ok(OwnerSettings::of(&l, &text))
    }

    /// The owner's settings written into the list file (checked by the loader first), then
    /// the server reloads it.
    pub async fn put_settings(
        &self,
        list: &str,
        change: &OwnerSettings,
    ) -> Result<SettingsChanged> {
        let l = self.known_list_config(list)?;
        let (text, now) = crate::base::config::apply_owner_settings(&l.file, change)
            .map_err(|e| AdminError::bad("settings", e.to_string()))?;
        tracing::info!(list = %l.address, file = %l.file.display(), ?change, "list settings changed");
        let reloaded = self
            .reload_said()
            .await
            .unwrap_or_else(|| "no server runs; it reads the file at start".into());
        Ok(SettingsChanged {
            reloaded,
            settings: OwnerSettings::of(&now, &text),
        })
    }

    /// Every alias: the forwarding files' first, then the store's.
    pub async fn aliases(&self) -> Result<Vec<AliasView>> {
        let config = self.config.get();
        let mut all = Vec::new();
        for f in &config.forwards {
            for (local, entry) in &f.aliases {
                let targets = match entry {
                    crate::base::config::AliasEntry::Targets(t) => t,
                    crate::base::config::AliasEntry::Detailed(p) => &p.targets,
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
        for (alias, targets) in self.store.aliases().await? {
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
        Ok(all)
    }

    /// Removes a store alias (file aliases are edited in their file).
    pub async fn remove_alias(&self, alias: &str) -> Result<super::Removed> {
        if !self.store.remove_alias(alias).await? {
            return Err(AdminError::NotFound(format!(
                "{alias} is not an alias in the store (aliases in the forwarding files are edited there)"
            )));
        }
        self.apply_aliases().await?;
        Ok(super::Removed { removed: true })
    }

    /// Stores `alias` (of a forwarding domain, not set in a file) forwarding to `targets`.
    pub async fn put_alias(&self, alias: &str, targets: Vec<String>) -> Result<AliasSet> {
        let alias = alias.to_ascii_lowercase();
        let domain = alias.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        let config = self.config.get();
        let Some(forward) = config.forwards.iter().find(|f| f.domain == domain) else {
            return Err(AdminError::bad(
                "alias",
                format!(
                    "{alias}: {domain:?} is not a forwarding domain (add a file for it to forwards_dir)"
                ),
            ));
        };
        if targets.len() > forward.max_targets {
            return Err(AdminError::bad(
                "targets",
                format!(
                    "{} targets, more than the forwarding domain's max_targets ({})",
                    targets.len(),
                    forward.max_targets
                ),
            ));
        }
        if let Some(file) = file_alias(&config.forwards, &alias) {
            return Err(AdminError::Conflict(format!(
                "{alias} is set in {file}; edit it there (a file alias wins over the store)"
            )));
        }
        if targets.is_empty() {
            return Err(AdminError::bad(
                "targets",
                "an alias needs at least one target",
            ));
        }
        if let Some(bad) = targets
            .iter()
            .find(|t| !crate::base::config::valid_address(t))
        {
            return Err(AdminError::bad(
                "targets",
                format!("{bad:?} is not an email address"),
            ));
        }
        if targets.iter().any(|t| t.eq_ignore_ascii_case(&alias)) {
            return Err(AdminError::bad(
                "targets",
                format!("{alias} cannot forward to itself"),
            ));
        }
        self.store.put_alias(&alias, &targets).await?;
        self.apply_aliases().await?;
        Ok(AliasSet { alias, targets })
    }

    /// A running server serves changed aliases at once; when it cannot, the change is stored
    /// but the answer says it is not served yet.
    async fn apply_aliases(&self) -> Result<()> {
        let Some(refresh) = self.aliases_changed.clone() else {
            return Ok(());
        };
        self.blocking(move || refresh())
            .await?
            .map(|_| ())
            .map_err(|e| {
                AdminError::NotApplied(format!(
                    "stored, but not served until a reload succeeds: {e}"
                ))
            })
    }
}

/// The forwarding file that sets `alias` (`local@domain`), if one does.
fn file_alias(forwards: &[crate::base::config::ForwardConfig], alias: &str) -> Option<String> {
    let (local, domain) = alias.rsplit_once('@')?;
    forwards
        .iter()
        .find(|f| {
            f.domain.eq_ignore_ascii_case(domain) && f.alias(&local.to_ascii_lowercase()).is_some()
        })
        .map(|f| f.file.display().to_string())
}
