//! The members pages: a list's members, searched and paged, with add, remove, enable, and
//! each member's delivery mode and moderation.

use super::{Pages, encode, links, page, pick, see_other};
use crate::state::store::modes::date_of;
use crate::state::store::{DeliveryMode, Member};
use crate::surfaces::admin::{AdminError, MemberSettings, NewMember, Page, PageQuery};
use crate::surfaces::web::serve::{Response, text};
use serde::Serialize;

/// Members shown on one page.
const PAGE: usize = 100;

/// `value` as one quoted CSV cell that a spreadsheet shows as text. A cell beginning with
/// `=`, `+`, `-`, `@`, a tab or a carriage return would be read as a formula (a member could
/// name themselves `=HYPERLINK(...)` or worse), so it gets a leading `'`, as OWASP advises;
/// quotes are doubled, and the cell is always quoted, so commas and line breaks stay in it.
fn csv_cell(value: &str) -> String {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    format!(
        "\"{}{}\"",
        if formula { "'" } else { "" },
        value.replace('"', "\"\"")
    )
}

/// A page of members as the template shows it.
#[derive(Serialize)]
struct PageView {
    total: Option<usize>,
    members: Vec<MemberView>,
    next: Option<String>,
}

/// A member as the template shows it.
#[derive(Serialize)]
struct MemberView {
    address: String,
    name: String,
    disabled: bool,
    /// As [`as_json`] gives it.
    bounce_score: f64,
    /// The stored mode (what the form shows chosen).
    delivery: &'static str,
    /// The mode in force today, when a pause is over.
    delivery_now: &'static str,
    /// The end of a pause, `YYYY-MM-DD`.
    until: String,
    moderated: bool,
}

/// What the members form sends: the member, and for `set` the new settings.
pub(super) struct MemberForm<'a> {
    /// The member's address.
    pub address: &'a str,
    /// Their name (for `add`).
    pub name: &'a str,
    /// The delivery mode (for `set`).
    pub delivery: &'a str,
    /// The end date of a nomail pause (for `set`; may be empty).
    pub until: &'a str,
    /// Whether the `moderated` box was ticked (for `set`).
    pub moderated: bool,
}

/// `score` as a JSON reader gets it (the shortest text of the f32, read as f64), so pages
/// and exports print `0.1`, as they did when they read the API's JSON.
fn as_json(score: f32) -> f64 {
    score.to_string().parse().unwrap_or_default()
}

impl From<Page> for PageView {
    fn from(page: Page) -> Self {
        PageView {
            total: page.total,
            members: page.members.into_iter().map(MemberView::from).collect(),
            next: page.next,
        }
    }
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        let today = date_of(crate::auth::unix_now());
        MemberView {
            bounce_score: as_json(m.bounce_score),
            delivery: m.delivery.as_str(),
            delivery_now: m.delivery_on(&today).as_str(),
            until: m.nomail_until.clone().unwrap_or_default(),
            moderated: m.moderated,
            address: m.address,
            name: m.name,
            disabled: m.disabled,
        }
    }
}

impl Pages<'_> {
    /// A page of `list`'s members, as `GET /api/lists/LIST/members` gives it.
    async fn page_of(&self, list: &str, query: PageQuery) -> crate::surfaces::admin::Result<Page> {
        self.api.members(list, &query).await
    }

    /// `GET /console/members?list=L&q=..&after=..`: the lists to choose from, or one list's
    /// members.
    pub(super) async fn members(&self, list: Option<&str>, q: &str, after: &str) -> Response {
        let lists = self.own_lists();
        let chosen = pick(&lists, list);
        let mut found = None;
        if let Some(list) = chosen {
            let query = PageQuery {
                after: (!after.is_empty()).then(|| after.to_string()),
                q: q.to_string(),
                offset: 0,
                limit: PAGE,
            };
            match self.page_of(list, query).await {
                Ok(page) => found = Some(PageView::from(page)),
                Err(_) => return text(503, "the members cannot be read now; see the server log"),
            }
        }
        let next_page = found.as_ref().and_then(|f| f.next.as_deref()).map(|next| {
            format!(
                "/console/members?list={}&q={}&after={}",
                encode(chosen.unwrap_or_default()),
                encode(q),
                encode(next)
            )
        });
        page(
            "console_members.html",
            minijinja::context! {
                user => self.user.name, csrf => self.session.csrf, lists => links(&lists),
                list => chosen, q => q, page => found, next_page => next_page,
                list_encoded => chosen.map(encode),
                modes => DeliveryMode::ALL.map(DeliveryMode::as_str),
            },
        )
    }

    /// `POST /console/members`: add, remove, enable or set (delivery mode, moderation)
    /// `address` on `list`; back to the list.
    pub(super) async fn change_member(
        &self,
        list: &str,
        action: &str,
        form: MemberForm<'_>,
    ) -> Response {
        let MemberForm { address, name, .. } = form;
        if !self.user.may_see(list) {
            return text(404, "no such list");
        }
        let answer: Result<(), AdminError> = match action {
            "add" => {
                let new = NewMember {
                    address: address.trim().to_string(),
                    name: name.trim().to_string(),
                };
                self.api.add_member(list, new).await.map(drop)
            }
            "remove" => self.api.remove_member(list, address).await.map(drop),
            "enable" => self.api.enable(list, address).await.map(drop),
            "set" => {
                let Some(mode) = DeliveryMode::parse(form.delivery) else {
                    return text(400, "delivery: regular, digest, digest-plain or nomail");
                };
                let settings = MemberSettings {
                    delivery: Some(mode),
                    until: (mode == DeliveryMode::Nomail && !form.until.trim().is_empty())
                        .then(|| form.until.trim().to_string()),
                    moderated: Some(form.moderated),
                };
                self.api.set_member(list, address, settings).await.map(drop)
            }
            _ => return text(400, "add, remove, enable or set"),
        };
        match answer {
            Ok(()) => {
                tracing::info!(user = %self.user.name, list, action, address, "console member change");
                see_other(&format!("/console/members?list={}", encode(list)), None)
            }
            Err(e) => text(400, &e.to_string()),
        }
    }

    /// `GET /console/members/export?list=L`: every member as CSV (address, name, joined,
    /// state, bounce score, delivery mode, end of a pause, moderated), read a page at a
    /// time.
    pub(super) async fn export(&self, list: Option<&str>) -> Response {
        let Some(list) = list.filter(|l| self.user.may_see(l)) else {
            return text(404, "no such list");
        };
        let mut csv = String::from(
            "address,name,joined_at,receiving,bounce_score,delivery,nomail_until,moderated\r\n",
        );
        let today = date_of(crate::auth::unix_now());
        let mut after = String::new();
        loop {
            let query = PageQuery {
                after: (!after.is_empty()).then(|| after.clone()),
                limit: 1000,
                ..PageQuery::default()
            };
            let Ok(page) = self.page_of(list, query).await else {
                return text(404, "no such list");
            };
            for m in page.members {
                let score = as_json(m.bounce_score);
                // The mode in force today: a pause that is over exports as what it returned to.
                let now = m.delivery_on(&today);
                let until = m.nomail_until.as_deref().filter(|_| now == m.delivery);
                csv.push_str(&format!(
                    "{},{},{},{},{score},{now},{},{}\r\n",
                    csv_cell(&m.address),
                    csv_cell(&m.name),
                    m.joined_at,
                    !m.disabled,
                    until.unwrap_or_default(),
                    m.moderated,
                ));
            }
            match page.next {
                Some(next) => after = next,
                None => break,
            }
        }
        let mut answer = crate::surfaces::web::serve::respond(200, "text/csv; charset=utf-8", csv);
        let file = format!(
            "attachment; filename=\"{}-members.csv\"",
            list.replace(['"', '\\'], "")
        );
        if let Ok(v) = hyper::header::HeaderValue::from_str(&file) {
            answer
                .headers_mut()
                .insert(hyper::header::CONTENT_DISPOSITION, v);
        }
        answer
    }

    /// `POST /console/members/import`: one address per line (`Name <address>` too), added in
    /// one transaction, all or none.
    pub(super) async fn import(&self, list: &str, lines: &str) -> Response {
        if !self.user.may_see(list) {
            return text(404, "no such list");
        }
        match self.api.import(list, lines).await {
            Ok(_) => {
                tracing::info!(user = %self.user.name, list, "console member import");
                see_other(&format!("/console/members?list={}", encode(list)), None)
            }
            Err(e) => text(400, &e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn formula_cells_are_text() {
        assert_eq!(csv_cell("=1+2"), "\"'=1+2\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_cell("\t-x"), "\"'\t-x\"");
        assert_eq!(csv_cell("ann \"a\", b"), "\"ann \"\"a\"\", b\"");
        assert_eq!(csv_cell("ann@example.org"), "\"ann@example.org\"");
    }
}
