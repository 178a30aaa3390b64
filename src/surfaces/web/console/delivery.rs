//! The delivery pages: a list's recent posts with how many copies went out, wait or bounced,
//! and one post's copies by receiving organisation (Google, Microsoft, Yahoo, other) with the
//! last replies of those that did not go.

use super::{Pages, page, pick};
use crate::state::store::{Delivery, DeliveryState};
use crate::surfaces::admin::{PostStatus, parse_id};
use crate::surfaces::web::serve::{Response, text};
use serde::Serialize;
use std::collections::BTreeMap;

/// Distinct replies kept per receiver on the page.
const REPLIES: usize = 5;

/// One receiving organisation's share of a post.
#[derive(Serialize, Default)]
struct Receiver {
    name: String,
    delivered: u64,
    waiting: u64,
    bounced: u64,
    replies: Vec<String>,
}

impl Receiver {
    fn reply(&mut self, d: &Delivery) {
        if !d.last_reply.is_empty()
            && self.replies.len() < REPLIES
            && !self.replies.contains(&d.last_reply)
        {
            self.replies.push(d.last_reply.clone());
        }
    }
}

/// The post's copies by receiver, from its status (`deliveries` while under way, `summary`
/// once finished).
fn by_receiver(status: &PostStatus) -> Vec<Receiver> {
    let mut rows: BTreeMap<&'static str, Receiver> = BTreeMap::new();
    fn row<'a>(
        rows: &'a mut BTreeMap<&'static str, Receiver>,
        name: &'static str,
    ) -> &'a mut Receiver {
        rows.entry(name).or_insert_with(|| Receiver {
            name: name.to_string(),
            ..Default::default()
        })
    }
    for d in &status.deliveries {
        let r = row(&mut rows, crate::base::metrics::destination(&d.address));
        match d.state {
            DeliveryState::Delivered => r.delivered += 1,
            DeliveryState::Bounced => {
                r.bounced += 1;
                r.reply(d);
            }
            DeliveryState::Pending | DeliveryState::Deferred => {
                r.waiting += 1;
                r.reply(d);
            }
        }
    }
    let Some(summary) = &status.summary else {
        return rows.into_values().collect();
    };
    for (class, n) in &summary.delivered {
        let name = ["google", "microsoft", "yahoo"]
            .into_iter()
            .find(|c| c == class)
            .unwrap_or("other");
        row(&mut rows, name).delivered += n;
    }
    for d in &summary.bounced {
        let r = row(&mut rows, crate::base::metrics::destination(&d.address));
        r.bounced += 1;
        r.reply(d);
    }
    rows.into_values().collect()
}

impl Pages<'_> {
    /// `GET /console/delivery?list=L`: the list's recent posts and their copies.
    pub(super) async fn delivery(&self, list: Option<&str>) -> Response {
        let lists = self.own_lists();
        let chosen = pick(&lists, list).or(lists.first().map(String::as_str));
        let mut posts = Vec::new();
        if let Some(l) = chosen {
            match self.api.recent_posts(l).await {
                Ok(found) => posts = found,
                Err(_) => return text(503, "the queue cannot be read now; see the server log"),
            }
        }
        page(
            "console_delivery.html",
            minijinja::context! {
                user => self.user.name, csrf => self.session.csrf, lists => super::links(&lists),
                list => chosen, posts => posts,
            },
        )
    }

    /// `GET /console/delivery/ID`: one post's copies by receiving organisation.
    pub(super) async fn delivery_of(&self, id: &str) -> Response {
        let Ok(post) = parse_id(id) else {
            return text(404, "no such post");
        };
        let Ok(status) = self.api.post_status(post).await else {
            return text(404, "no such post");
        };
        let list = status.list.as_str();
        if !self.user.may_see(list) || list.starts_with("forward:") {
            return text(404, "no such post");
        }
        page(
            "console_delivery_post.html",
            minijinja::context! {
                user => self.user.name, csrf => self.session.csrf, id => id, list => list,
                finished => status.summary.is_some(), receivers => by_receiver(&status),
            },
        )
    }
}
