//! A list's members: paging and search, add, remove, enable, delivery mode and moderation,
//! import (one transaction), and sync from the list file.

use super::{Admin, AdminError, Result};
use crate::state::store::modes::{date_of, parse_date};
use crate::state::store::{DeliveryMode, Departure, DepartureReason, Member};
use serde::{Deserialize, Serialize};

/// Largest page of members one request returns.
pub const MAX_PAGE: usize = 1000;

/// A page of members.
#[derive(Debug, Serialize, Deserialize)]
pub struct Page {
    /// Members matching the search; counted for the first page and searches only (with
    /// `after`, counting would cost the whole list on every page).
    pub total: Option<usize>,
    /// Where this page starts, when paging by `offset`.
    pub offset: usize,
    /// This page.
    pub members: Vec<Member>,
    /// The `after` that gives the next page, when there may be one.
    pub next: Option<String>,
}

/// Which page: `after` pages by address at the cost of the page; `q` searches (a scan of the
/// list) with `offset`; neither: the first page, with the total.
#[derive(Debug, Default, Clone)]
pub struct PageQuery {
    /// The address the page starts after.
    pub after: Option<String>,
    /// Text searched in addresses and names.
    pub q: String,
    /// Matches skipped (without `after`).
    pub offset: usize,
    /// Largest page (at most [`MAX_PAGE`]).
    pub limit: usize,
}

/// A member to add (`POST /api/lists/LIST/members`).
#[derive(Debug, Serialize, Deserialize)]
pub struct NewMember {
    /// The address.
    pub address: String,
    /// The display name.
    #[serde(default)]
    pub name: String,
}

/// Whether the member was new.
#[derive(Debug, Serialize, Deserialize)]
pub struct Added {
    /// False when already a member.
    pub added: bool,
}

/// Whether there was something to remove.
#[derive(Debug, Serialize, Deserialize)]
pub struct Removed {
    /// False when it was not there.
    pub removed: bool,
}

/// A member enabled again.
#[derive(Debug, Serialize, Deserialize)]
pub struct Enabled {
    /// Always true.
    pub enabled: bool,
}

/// A member's settings to change (`POST /api/lists/LIST/members/ADDRESS/settings`); what is
/// absent stays as it is.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct MemberSettings {
    /// The delivery mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryMode>,
    /// With `delivery` nomail: the date (`YYYY-MM-DD`, UTC) mail starts again, in the mode
    /// the member had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Whether the member's posts are held for a moderator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderated: Option<bool>,
}

/// A member's settings after a change.
#[derive(Debug, Serialize, Deserialize)]
pub struct SettingsView {
    /// The member's record as stored.
    pub member: Member,
    /// The mode in force today (a pause whose date has come is over).
    pub delivery_now: DeliveryMode,
}

/// An import: how many were new, how many were members already.
#[derive(Debug, Serialize, Deserialize)]
pub struct Imported {
    /// New members.
    pub added: usize,
    /// Lines naming a member already there.
    pub already: usize,
}

/// A sync from the list file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Synced {
    /// New members.
    pub added: usize,
    /// Members the list file names.
    pub named: usize,
}

impl Admin {
    /// A page of `list`'s members.
    pub async fn members(&self, list: &str, query: &PageQuery) -> Result<Page> {
        let list = self.known_list(list)?;
        let limit = query.limit.min(MAX_PAGE);
        let next_of = |members: &[Member]| {
            (members.len() == limit)
                .then(|| members.last().map(|m| m.address.clone()))
                .flatten()
        };
        if let Some(after) = &query.after {
            let members = self
                .store
                .members_after(&list, &after.to_ascii_lowercase(), limit)
                .await?;
            let next = next_of(&members);
            return Ok(Page {
                total: None,
                offset: 0,
                members,
                next,
            });
        }
        let q = query.q.to_ascii_lowercase();
        let matching: Vec<Member> = self
            .store
            .members(&list)
            .await?
            .into_iter()
            .filter(|m| {
                q.is_empty() || m.address.contains(&q) || m.name.to_lowercase().contains(&q)
            })
            .collect();
        let total = matching.len();
        let members: Vec<Member> = matching
            .into_iter()
            .skip(query.offset)
            .take(limit)
            .collect();
        let next = next_of(&members).filter(|_| q.is_empty());
        Ok(Page {
            total: Some(total),
            offset: query.offset,
            members,
            next,
        })
    }

    /// Subscribes `new` to `list`.
    pub async fn add_member(&self, list: &str, new: NewMember) -> Result<Added> {
        let list = self.known_list(list)?;
        if !crate::base::config::valid_address(&new.address) {
            return Err(AdminError::bad(
                "address",
                format!("{:?} is not an email address", new.address),
            ));
        }
        let member = Member {
            address: new.address.to_ascii_lowercase(),
            name: crate::base::config::clean_member_name(&new.name),
            joined_at: crate::auth::unix_now(),
            ..Default::default()
        };
        let added = self.store.add_member(&list, &member).await?;
        tracing::info!(%list, address = %member.address, added, "member added by an operator");
        Ok(Added { added })
    }

    /// Unsubscribes `address` from `list`, as removed by an operator.
    pub async fn remove_member(&self, list: &str, address: &str) -> Result<Removed> {
        let list = self.known_list(list)?;
        let removed = self
            .store
            .remove_member(
                &list,
                &address.to_ascii_lowercase(),
                Departure::now(DepartureReason::Removed),
            )
            .await?;
        tracing::info!(%list, %address, removed, "member removed by an operator");
        Ok(Removed { removed })
    }

    /// `text` is the file: one `address` or `Name <address>` a line, `#` comments. The first
    /// bad line refuses the whole import.
    pub async fn import(&self, list: &str, text: &str) -> Result<Imported> {
        let list = self.known_list(list)?;
        let mut members = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let address = crate::base::config::member_address(line);
            if !crate::base::config::valid_address(&address) {
                return Err(AdminError::bad(
                    "body",
                    format!(
                        "line {}: {line:?} is not an address; nothing was imported",
                        n + 1
                    ),
                ));
            }
            members.push(Member {
                address,
                name: crate::base::config::member_name(line),
                joined_at: crate::auth::unix_now(),
                ..Default::default()
            });
        }
        // One commit for the whole file: all or nothing, and quick for 100,000 lines.
        let added = self.store.add_members(&list, &members).await?;
        tracing::info!(%list, added, named = members.len(), "members imported");
        Ok(Imported {
            added,
            already: members.len() - added,
        })
    }

    /// Adds the members the list file names, except those who left.
    pub async fn sync(&self, list: &str) -> Result<Synced> {
        let list = self.known_list(list)?;
        let config = self.config.get();
        let cfg = config
            .list(&list)
            .ok_or_else(|| AdminError::NotFound(format!("no list {list}")))?;
        let added = crate::stages::list::seed::seed(&self.store, cfg, true)
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?
            .unwrap_or(0);
        Ok(Synced {
            added,
            named: cfg.members.len(),
        })
    }

    /// Changes `address`'s delivery mode and moderation on `list`.
    pub async fn set_member(
        &self,
        list: &str,
        address: &str,
        settings: MemberSettings,
    ) -> Result<SettingsView> {
        let list = self.known_list(list)?;
        let address = address.to_ascii_lowercase();
        let until = match &settings.until {
            None => None,
            Some(_) if settings.delivery != Some(DeliveryMode::Nomail) => {
                return Err(AdminError::bad("until", "until goes with delivery nomail"));
            }
            Some(text) => Some(parse_date(text).ok_or_else(|| {
                AdminError::bad("until", format!("until {text:?} is not a date YYYY-MM-DD"))
            })?),
        };
        let mut member =
            self.store.member(&list, &address).await?.ok_or_else(|| {
                AdminError::NotFound(format!("{address} is not a member of {list}"))
            })?;
        let today = date_of(crate::auth::unix_now());
        if let Some(mode) = settings.delivery {
            member.set_delivery(mode, until, &today);
        }
        if let Some(moderated) = settings.moderated {
            member.moderated = moderated;
        }
        self.store.put_member(&list, &member).await?;
        let delivery_now = member.delivery_on(&today);
        tracing::info!(%list, %address, delivery = %member.delivery, until = ?member.nomail_until, moderated = member.moderated, "member settings changed by an operator");
        Ok(SettingsView {
            member,
            delivery_now,
        })
    }

    /// Delivers to `address` again, its bounce score cleared.
    pub async fn enable(&self, list: &str, address: &str) -> Result<Enabled> {
        let list = self.known_list(list)?;
        let address = address.to_ascii_lowercase();
        let mut member =
            self.store.member(&list, &address).await?.ok_or_else(|| {
                AdminError::NotFound(format!("{address} is not a member of {list}"))
            })?;
        member.disabled = false;
        member.bounce_score = 0.0;
        self.store.put_member(&list, &member).await?;
        Ok(Enabled { enabled: true })
    }
}
