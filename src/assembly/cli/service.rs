//! The admin service's operations as the CLI calls them: each one in process on the store
//! opened here, or over the running server's admin API decoded into the same struct
//! ([`Backend::ask`]). The paths are the API's (`docs/admin-api.md`).

use super::CliError;
use super::backend::{Backend, json_body, segment};
use crate::stages::list::moderation::Decision;
use crate::state::store::{QueueHead, SpoolId};
use crate::surfaces::admin::{
    Added, AliasSet, AliasView, BackedUp, Backup, Created, Decided, Enabled, HeldPost, Imported,
    ListView, MemberSettings, NewList, NewMember, Page, PageQuery, PostStatus, Rejection, Reloaded,
    Removed, Retried, SettingsView, Synced, Targets,
};
use crate::surfaces::operate::report::Report;

fn members_path(list: &str, rest: &str) -> String {
    format!("/api/lists/{}/members{rest}", segment(list))
}

impl Backend {
    /// Every configured list.
    pub async fn lists(&self) -> Result<Vec<ListView>, CliError> {
        self.ask(("GET", "/api/lists"), Vec::new(), async |a| a.lists().await)
            .await
    }

    /// One configured list.
    pub async fn list(&self, list: &str) -> Result<ListView, CliError> {
        let path = format!("/api/lists/{}", segment(list));
        self.ask(("GET", &path), Vec::new(), async |a| a.list(list).await)
            .await
    }

    /// Writes a new list's file and key.
    pub async fn create_list(&self, new: &NewList) -> Result<Created, CliError> {
        self.ask(("POST", "/api/lists"), json_body(new), async |a| {
            a.create_list(new).await
        })
        .await
    }

    /// The page of `list`'s members after `after`, by address.
    pub async fn members_after(&self, list: &str, after: &str) -> Result<Page, CliError> {
        let path = members_path(list, &format!("?after={}&limit=1000", segment(after)));
        let query = PageQuery {
            after: Some(after.to_string()),
            limit: 1000,
            ..PageQuery::default()
        };
        self.ask(("GET", &path), Vec::new(), async |a| {
            a.members(list, &query).await
        })
        .await
    }

    /// Subscribes `new` to `list`.
    pub async fn add_member(&self, list: &str, new: NewMember) -> Result<Added, CliError> {
        let body = json_body(&new);
        self.ask(("POST", &members_path(list, "")), body, async |a| {
            a.add_member(list, new).await
        })
        .await
    }

    /// Unsubscribes `address` from `list`.
    pub async fn remove_member(&self, list: &str, address: &str) -> Result<Removed, CliError> {
        let path = members_path(list, &format!("/{}", segment(address)));
        self.ask(("DELETE", &path), Vec::new(), async |a| {
            a.remove_member(list, address).await
        })
        .await
    }

    /// Delivers to `address` on `list` again.
    pub async fn enable(&self, list: &str, address: &str) -> Result<Enabled, CliError> {
        let path = members_path(list, &format!("/{}/enable", segment(address)));
        self.ask(("POST", &path), Vec::new(), async |a| {
            a.enable(list, address).await
        })
        .await
    }

    /// Changes `address`'s delivery mode or moderation on `list`.
    pub async fn set_member(
        &self,
        list: &str,
        address: &str,
        settings: &MemberSettings,
    ) -> Result<SettingsView, CliError> {
        let path = members_path(list, &format!("/{}/settings", segment(address)));
        self.ask(("POST", &path), json_body(settings), async |a| {
            a.set_member(list, address, settings.clone()).await
        })
        .await
    }

    /// Writes `change` into `list`'s file; a running server reloads.
    pub async fn put_settings(
        &self,
        list: &str,
        change: &crate::base::config::OwnerSettings,
    ) -> Result<crate::surfaces::admin::SettingsChanged, CliError> {
        let path = format!("/api/lists/{}/settings", segment(list));
        self.ask(("PUT", &path), json_body(change), async |a| {
            a.put_settings(list, change).await
        })
        .await
    }

    /// Sends `list`'s pending digest now.
    pub async fn send_digest(
        &self,
        list: &str,
    ) -> Result<crate::stages::list::digest::Sent, CliError> {
        let path = format!("/api/lists/{}/digest", segment(list));
        self.ask(("POST", &path), Vec::new(), async |a| {
            a.send_digest(list).await
        })
        .await
    }

    /// Imports the members file `text` into `list`, all or nothing.
    pub async fn import(&self, list: &str, text: Vec<u8>) -> Result<Imported, CliError> {
        let path = members_path(list, "/import");
        let lines = String::from_utf8_lossy(&text).into_owned();
        self.ask(("POST", &path), text, async |a| {
            a.import(list, &lines).await
        })
        .await
    }

    /// Adds the members `list`'s file names.
    pub async fn sync(&self, list: &str) -> Result<Synced, CliError> {
        let path = members_path(list, "/sync");
        self.ask(("POST", &path), Vec::new(), async |a| a.sync(list).await)
            .await
    }

    /// Every held post.
    pub async fn held_posts(&self) -> Result<Vec<HeldPost>, CliError> {
        self.ask(("GET", "/api/held"), Vec::new(), async |a| {
            a.held_posts().await
        })
        .await
    }

    /// One held post.
    pub async fn held_post(&self, id: SpoolId) -> Result<HeldPost, CliError> {
        let path = format!("/api/held/{id}");
        self.ask(("GET", &path), Vec::new(), async |a| a.held_post(id).await)
            .await
    }

    /// One held post's bytes.
    pub async fn held_message(&self, id: SpoolId) -> Result<Vec<u8>, CliError> {
        let path = format!("/api/held/{id}/message");
        self.ask_bytes(&path, async |a| a.held_message(id).await)
            .await
    }

    /// Approves, rejects or discards held post `id`.
    pub async fn decide(&self, id: SpoolId, decision: Decision) -> Result<Decided, CliError> {
        let (action, body) = match &decision {
            Decision::Approve => ("approve", Vec::new()),
            Decision::Discard => ("discard", Vec::new()),
            Decision::Reject(reason) => (
                "reject",
                json_body(&Rejection {
                    reason: reason.clone(),
                }),
            ),
        };
        let path = format!("/api/held/{id}/{action}");
        self.ask(("POST", &path), body, async |a| {
            a.decide(id, decision).await
        })
        .await
    }

    /// Approves held post `id` and adds its sender to its list's `accept_posts_from`.
    pub async fn approve_accepting_sender(&self, id: SpoolId) -> Result<Decided, CliError> {
        let path = format!("/api/held/{id}/approve?accept_sender=true");
        self.ask(("POST", &path), Vec::new(), async |a| {
            a.approve_accepting_sender(id).await
        })
        .await
    }

    /// The posts with recipients still to deliver.
    pub async fn active(&self) -> Result<Vec<QueueHead>, CliError> {
        self.ask(("GET", "/api/queue"), Vec::new(), async |a| {
            a.active().await
        })
        .await
    }

    /// Each recipient of queued post `id`.
    pub async fn post_status(&self, id: SpoolId) -> Result<PostStatus, CliError> {
        let path = format!("/api/queue/{id}");
        self.ask(("GET", &path), Vec::new(), async |a| {
            a.post_status(id).await
        })
        .await
    }

    /// The copy of queued post `id` as it goes out.
    pub async fn queued_message(&self, id: SpoolId) -> Result<Vec<u8>, CliError> {
        let path = format!("/api/queue/{id}/message");
        self.ask_bytes(&path, async |a| a.queued_message(id).await)
            .await
    }

    /// Makes the deferred recipients of `id` due now.
    pub async fn retry(&self, id: SpoolId) -> Result<Retried, CliError> {
        let path = format!("/api/queue/{id}/retry");
        self.ask(("POST", &path), Vec::new(), async |a| a.retry(id).await)
            .await
    }

    /// Every forwarding alias.
    pub async fn aliases(&self) -> Result<Vec<AliasView>, CliError> {
        self.ask(("GET", "/api/aliases"), Vec::new(), async |a| {
            a.aliases().await
        })
        .await
    }

    /// Stores `alias` forwarding to `targets`.
    pub async fn put_alias(&self, alias: &str, targets: Vec<String>) -> Result<AliasSet, CliError> {
        let path = format!("/api/aliases/{}", segment(alias));
        let body = Targets { targets };
        self.ask(("PUT", &path), json_body(&body), async |a| {
            a.put_alias(alias, body.targets).await
        })
        .await
    }

    /// Removes a store alias.
    pub async fn remove_alias(&self, alias: &str) -> Result<Removed, CliError> {
        let path = format!("/api/aliases/{}", segment(alias));
        self.ask(("DELETE", &path), Vec::new(), async |a| {
            a.remove_alias(alias).await
        })
        .await
    }

    /// The report over the last `since`, of one list or all.
    pub async fn report(&self, since: &str, list: Option<&str>) -> Result<Report, CliError> {
        let mut path = format!("/api/report?since={}", segment(since));
        if let Some(list) = list {
            path.push_str(&format!("&list={}", segment(list)));
        }
        self.ask(("GET", &path), Vec::new(), async |a| {
            a.report(since, list).await
        })
        .await
    }

    /// Copies the embedded store to `file` (absolute), while the server runs or not.
    pub async fn backup(&self, file: &str) -> Result<BackedUp, CliError> {
        let body = Backup {
            file: file.to_string(),
        };
        self.ask(("POST", "/api/store/backup"), json_body(&body), async |a| {
            a.backup(&body.file).await
        })
        .await
    }

    /// Re-reads the running server's configuration.
    pub async fn reload(&self) -> Result<Reloaded, CliError> {
        self.ask(("POST", "/api/reload"), Vec::new(), async |a| {
            a.reload().await
        })
        .await
    }
}
