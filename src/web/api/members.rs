//! `/api/lists/LIST/members...`: paging and search, add, remove, enable, import (one
//! transaction), and sync from the list file.

use super::{Answer, Api, Call, Failure, Reply};
use crate::store::{Departure, DepartureReason, Member, Store};
use serde::{Deserialize, Serialize};

/// Largest page of members one request returns.
const MAX_PAGE: usize = 1000;

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

/// `POST /api/lists/LIST/members`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewMember {
    /// The address.
    pub address: String,
    /// The display name.
    #[serde(default)]
    pub name: String,
}

impl<S: Store> Api<S> {
    /// Routes under `/api/lists/LIST/members`; `rest` follows `members`.
    pub(super) fn members_route(&self, call: &Call<'_>, list: &str, rest: &[&str]) -> Answer {
        let list = self.known_list(list)?;
        match (call.method, rest) {
            ("GET", []) => self.page(call, &list),
            ("POST", []) => self.add(call, &list),
            ("POST", ["import"]) => self.import(call, &list),
            ("POST", ["sync"]) => self.sync(&list),
            ("DELETE", [address]) => {
                let removed = self.store.remove_member(
                    &list,
                    &address.to_ascii_lowercase(),
                    Departure::now(DepartureReason::Removed),
                )?;
                tracing::info!(%list, %address, removed, "member removed by an operator");
                Ok(Reply::json(200, &serde_json::json!({ "removed": removed })))
            }
            ("POST", [address, "enable"]) => self.enable(&list, address),
            _ => Err(Failure::not_found("no such members route")),
        }
    }

    /// `?after=ADDRESS&limit=N` pages by address at the cost of the page; `?q=TEXT` searches
    /// (a scan of the list) with `offset`; neither: the first page, with the total.
    fn page(&self, call: &Call<'_>, list: &str) -> Answer {
        let number = |name: &str, default: usize| -> Result<usize, Failure> {
            call.param(name).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| Failure::invalid(format!("{name}={v} is not a number")))
            })
        };
        let (offset, limit) = (
            number("offset", 0)?,
            number("limit", MAX_PAGE)?.min(MAX_PAGE),
        );
        let q = call.param("q").unwrap_or_default().to_ascii_lowercase();
        let next_of = |members: &[Member]| {
            (members.len() == limit)
                .then(|| members.last().map(|m| m.address.clone()))
                .flatten()
        };
        if let Some(after) = call.param("after") {
            let members = self
                .store
                .members_after(list, &after.to_ascii_lowercase(), limit)?;
            let next = next_of(&members);
            return Ok(Reply::json(
                200,
                &Page {
                    total: None,
                    offset: 0,
                    members,
                    next,
                },
            ));
        }
        let matching: Vec<Member> = self
            .store
            .members(list)?
            .into_iter()
            .filter(|m| {
                q.is_empty() || m.address.contains(&q) || m.name.to_lowercase().contains(&q)
            })
            .collect();
        let total = matching.len();
        let members: Vec<Member> = matching.into_iter().skip(offset).take(limit).collect();
        let next = next_of(&members).filter(|_| q.is_empty());
        Ok(Reply::json(
            200,
            &Page {
                total: Some(total),
                offset,
                members,
                next,
            },
        ))
    }

    fn add(&self, call: &Call<'_>, list: &str) -> Answer {
        let new: NewMember = call.json()?;
        if !crate::config::valid_address(&new.address) {
            return Err(Failure::invalid(format!(
                "{:?} is not an email address",
                new.address
            )));
        }
        let member = Member {
            address: new.address.to_ascii_lowercase(),
            name: new.name,
            joined_at: crate::auth::unix_now(),
            ..Default::default()
        };
        let added = self.store.add_member(list, &member)?;
        tracing::info!(%list, address = %member.address, added, "member added by an operator");
        Ok(Reply::json(
            if added { 201 } else { 200 },
            &serde_json::json!({ "added": added }),
        ))
    }

    /// The body is the file: one `address` or `Name <address>` a line, `#` comments. The
    /// first bad line refuses the whole import.
    fn import(&self, call: &Call<'_>, list: &str) -> Answer {
        let text = String::from_utf8_lossy(call.body);
        let mut members = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let address = crate::config::member_address(line);
            if !crate::config::valid_address(&address) {
                return Err(Failure::invalid(format!(
                    "line {}: {line:?} is not an address; nothing was imported",
                    n + 1
                )));
            }
            members.push(Member {
                address,
                name: crate::config::member_name(line),
                joined_at: crate::auth::unix_now(),
                ..Default::default()
            });
        }
        // One commit for the whole file: all or nothing, and quick for 100,000 lines.
        let added = self.store.add_members(list, &members)?;
        tracing::info!(%list, added, named = members.len(), "members imported");
        Ok(Reply::json(
            200,
            &serde_json::json!({ "added": added, "already": members.len() - added }),
        ))
    }

    fn sync(&self, list: &str) -> Answer {
        let config = self.config.get();
        let cfg = config
            .list(list)
            .ok_or_else(|| Failure::not_found(format!("no list {list}")))?;
        let added = crate::list::seed::seed(&*self.store, cfg, true)
            .map_err(|e| Failure(503, e))?
            .unwrap_or(0);
        Ok(Reply::json(
            200,
            &serde_json::json!({ "added": added, "named": cfg.members.len() }),
        ))
    }

    fn enable(&self, list: &str, address: &str) -> Answer {
        let address = address.to_ascii_lowercase();
        let mut member = self
            .store
            .member(list, &address)?
            .ok_or_else(|| Failure::not_found(format!("{address} is not a member of {list}")))?;
        member.disabled = false;
        member.bounce_score = 0.0;
        self.store.put_member(list, &member)?;
        Ok(Reply::json(200, &serde_json::json!({ "enabled": true })))
    }
}
