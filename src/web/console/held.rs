//! The held-post pages: the list of posts waiting on the lists a person may see, one post
//! with its checks and ARC chain, and the decisions.

use super::{Pages, page, see_other};
use crate::auth::Authenticator;
use crate::store::Store;
use crate::web::serve::{Response, text};

impl<S: Store> Pages<'_, S> {
    /// The held post `id`, if this person may see its list.
    pub(super) async fn visible(&self, id: &str) -> Option<serde_json::Value> {
        let (status, post) = self
            .call("GET", format!("/api/held/{id}"), Vec::new())
            .await?;
        let list = post
            .get("list")
            .and_then(|l| l.as_str())
            .unwrap_or_default();
        (status == 200 && self.user.may_see(list)).then_some(post)
    }

    pub(super) async fn list(&self) -> Response {
        let Some((200, serde_json::Value::Array(all))) =
            self.call("GET", "/api/held".into(), Vec::new()).await
        else {
            return text(503, "the held posts cannot be read now; see the server log");
        };
        let held: Vec<serde_json::Value> = all
            .into_iter()
            .filter(|p| {
                self.user
                    .may_see(p.get("list").and_then(|l| l.as_str()).unwrap_or_default())
            })
            .map(|mut p| {
                let summary = summary(
                    p.get("auth_results")
                        .and_then(|a| a.as_str())
                        .unwrap_or_default(),
                );
                p["summary"] = summary.into();
                p
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
        let message = self
            .call_raw("GET", format!("/api/held/{id}/message"), Vec::new())
            .await;
        let chain = match message {
            Some((200, message)) => {
                let bytes = crate::auth::message::to_crlf(&message);
                let v = auth.verify(&bytes, None, crate::auth::unix_now()).await;
                Some(crate::web::chain_view::report(&bytes, &v))
            }
            _ => None,
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
        if !matches!(action, "approve" | "reject" | "discard") {
            return text(400, "approve, reject or discard");
        }
        // Every post must be theirs before any is decided.
        for id in ids {
            if self.visible(id).await.is_none() {
                return text(404, "no such held post");
            }
        }
        for id in ids {
            let body = match reason.filter(|r| !r.trim().is_empty()) {
                Some(r) => serde_json::json!({ "reason": r }).to_string().into_bytes(),
                None => b"{}".to_vec(),
            };
            let outcome = self
                .call("POST", format!("/api/held/{id}/{action}"), body)
                .await;
            tracing::info!(user = %self.user.name, id, action, status = ?outcome.as_ref().map(|o| o.0), "console decision");
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
