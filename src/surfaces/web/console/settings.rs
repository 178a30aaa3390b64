//! The settings page: what a list's owner may change (name, subject tag, footer, moderation,
//! what happens to non-members' posts, who is told of a rejection, the daily report, and
//! Mailman's moderation lists: posters always accepted, held, refused or dropped), written
//! into the list file through the admin API, which checks it as the loader does and reloads.

use super::{Pages, page, pick, see_other};
use crate::base::config::OwnerSettings;
use crate::surfaces::web::serve::{Response, text};

impl Pages<'_> {
    /// `GET /console/settings?list=L`.
    pub(super) async fn settings(&self, list: Option<&str>, error: Option<&str>) -> Response {
        let lists = self.own_lists();
        let Some(list) = pick(&lists, list).or(lists.first().map(String::as_str)) else {
            return text(404, "no list of yours");
        };
        let Ok(settings) = self.api.settings(list).await else {
            return text(503, "the settings cannot be read now; see the server log");
        };
        page(
            "console_settings.html",
            minijinja::context! {
                user => self.user.name, csrf => self.session.csrf, lists => super::links(&lists),
                list => list, s => settings, error => error,
            },
        )
    }

    /// `POST /console/settings`: the form's values, checked and written by the API.
    pub(super) async fn change_settings(&self, list: &str, form: &[(String, String)]) -> Response {
        if !self.user.may_see(list) {
            return text(404, "no such list");
        }
        let field = |name: &str| crate::surfaces::web::form::value(form, name).map(str::to_string);
        // A textarea of addresses or patterns, one a line; blank lines are nothing.
        let lines = |name: &str| -> Vec<String> {
            field(name)
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        };
        let change = OwnerSettings {
            name: Some(field("name").unwrap_or_default()),
            subject_tag: Some(field("subject_tag").unwrap_or_default()),
            footer: Some(field("footer").unwrap_or_default().replace("\r\n", "\n")),
            moderated: Some(field("moderated").is_some()),
            non_member_action: Some(field("non_member_action").unwrap_or_default()),
            notify_rejected: Some(field("notify_rejected").unwrap_or_default()),
            daily_report: Some(field("daily_report").is_some()),
            accept_posts_from: Some(lines("accept_posts_from")),
            hold_posts_from: Some(lines("hold_posts_from")),
            reject_posts_from: Some(lines("reject_posts_from")),
            discard_posts_from: Some(lines("discard_posts_from")),
            reject_reason: field("reject_reason").filter(|r| !r.trim().is_empty()),
        };
        match self.api.put_settings(list, &change).await {
            Ok(_) => {
                tracing::info!(user = %self.user.name, list, "console settings change");
                see_other(
                    &format!("/console/settings?list={}", super::encode(list)),
                    None,
                )
            }
            Err(e) => {
                let why = e.to_string();
                let mut answer = self.settings(Some(list), Some(&why)).await;
                *answer.status_mut() = hyper::StatusCode::BAD_REQUEST;
                answer
            }
        }
    }

    /// `POST /console/archive/remove`: takes a post (its archive id or Message-ID) out of the
    /// list's archive for good, as `arclist archive remove` does; back to the settings page,
    /// which says what went wrong, if anything.
    pub(super) async fn remove_archived(&self, list: &str, post: &str) -> Response {
        if !self.user.may_see(list) {
            return text(404, "no such list");
        }
        match self.api.archive_remove(list, post.trim()).await {
            Ok(done) => {
                tracing::info!(user = %self.user.name, list, id = %done.id, "console archive removal");
                see_other(
                    &format!("/console/settings?list={}", super::encode(list)),
                    None,
                )
            }
            Err(e) => {
                let why = format!("the post was not removed: {e}");
                let mut answer = self.settings(Some(list), Some(&why)).await;
                *answer.status_mut() = hyper::StatusCode::BAD_REQUEST;
                answer
            }
        }
    }
}
