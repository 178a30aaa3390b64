//! The held-post pages: the list of posts waiting on the lists a person may see, one post
//! with its checks and ARC chain, and the decisions.

use super::{Pages, page, see_other};
use crate::auth::Authenticator;
use crate::stages::list::moderation::Decision;
use crate::surfaces::admin::{HeldPost, parse_id};
use crate::surfaces::web::serve::{Response, text};
use serde::Serialize;

/// A held post in the list, with the verdicts of its checks.
#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    post: HeldPost,
    summary: String,
}

impl Pages<'_> {
    /// The held post `id`, if this person may see its list.
    pub(super) async fn visible(&self, id: &str) -> Option<HeldPost> {
        let id = parse_id(id).ok()?;
        let post = self.api.held_post(id).await.ok()?;
        self.user.may_see(&post.list).then_some(post)
    }

    pub(super) async fn list(&self) -> Response {
        let Ok(all) = self.api.held_posts().await else {
            return text(503, "the held posts cannot be read now; see the server log");
        };
        let held: Vec<Row> = all
            .into_iter()
            .filter(|p| self.user.may_see(&p.list))
            .map(|post| Row {
                summary: summary(post.auth_results.as_deref().unwrap_or_default()),
                post,
            })
            .collect();
        page(
            "console_held.html",
            minijinja::context! { user => self.user.name, csrf => self.session.csrf, held => held },
        )
    }

    pub(super) async fn show(&self, id: &str, auth: &Authenticator) -> Response {
        let Some(post) = self.visible(id).await else {
            return text(404, "no such held post");
        };
        let message = self.api.held_message(post.id).await;
        let chain = match message {
            Ok(message) => {
                let bytes = crate::auth::message::to_crlf(&message);
                let v = auth.verify(&bytes, None, crate::auth::unix_now()).await;
                Some(crate::surfaces::web::chain_view::report(&bytes, &v))
            }
            Err(_) => None,
        };
        page(
            "console_post.html",
            minijinja::context! { user => self.user.name, csrf => self.session.csrf, post => post, chain => chain },
        )
    }

    /// Applies `action` to each of `ids` this person may see; back to the list.
    pub(super) async fn decide(
        &self,
        ids: &[&str],
        action: &str,
        reason: Option<&str>,
    ) -> Response {
        let reason = reason.filter(|r| !r.trim().is_empty()).map(str::to_string);
        // "approve-accept" also puts the sender on the list's accept_posts_from.
        let accept_sender = action == "approve-accept";
        let decision = match action {
            "approve" | "approve-accept" => Decision::Approve,
            "reject" => Decision::Reject(reason),
            "discard" => Decision::Discard,
            _ => return text(400, "approve, reject or discard"),
        };
        // Every post must be theirs before any is decided.
        let mut posts = Vec::with_capacity(ids.len());
        for id in ids {
            match self.visible(id).await {
                Some(post) => posts.push(post.id),
                None => return text(404, "no such held post"),
            }
        }
        for id in posts {
            let decided = match accept_sender {
                true => self.api.approve_accepting_sender(id).await,
                false => self.api.decide(id, decision.clone()).await,
            };
            let outcome = match decided {
                Ok(d) => format!("{:?}", d.state),
                Err(e) => e.to_string(),
            };
            tracing::info!(user = %self.user.name, id, action, %outcome, "console decision");
        }
        see_other("/console/held", None)
    }
}

/// `dmarc=pass dkim=pass arc=none`: the verdicts of an Authentication-Results value.
fn summary(auth_results: &str) -> String {
    ["spf", "dkim", "dmarc", "arc"]
        .iter()
        .filter_map(|m| {
            let at = auth_results.find(&format!("{m}="))?;
            let word: String = auth_results[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ';')
                .collect();
            Some(word)
        })
        .collect::<Vec<_>>()
        .join(" ")
}
