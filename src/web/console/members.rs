//! The members pages: a list's members, searched and paged, with add, remove and enable.

use super::{Pages, encode, links, page, pick, see_other};
use crate::store::Store;
use crate::web::serve::{Response, text};

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

impl<S: Store> Pages<'_, S> {
    /// `GET /console/members?list=L&q=..&after=..`: the lists to choose from, or one list's
    /// members.
    pub(super) async fn members(&self, list: Option<&str>, q: &str, after: &str) -> Response {
        let lists = self.own_lists();
        let chosen = pick(&lists, list);
        let mut found = serde_json::Value::Null;
        if let Some(list) = chosen {
            let mut query = format!("limit={PAGE}");
            if !q.is_empty() {
                query.push_str(&format!("&q={}", encode(q)));
            }
            if !after.is_empty() {
                query.push_str(&format!("&after={}", encode(after)));
            }
            let path = format!("/api/lists/{}/members", encode(list));
            match self.call_query("GET", path, &query).await {
                Some((200, page)) => found = page,
                _ => return text(503, "the members cannot be read now; see the server log"),
            }
        }
        let next_page = found.get("next").and_then(|n| n.as_str()).map(|next| {
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
            },
        )
    }

    /// `POST /console/members`: add, remove or enable `address` on `list`; back to the list.
    pub(super) async fn change_member(
        &self,
        list: &str,
        action: &str,
        (address, name): (&str, &str),
    ) -> Response {
        if !self.user.may_see(list) {
            return text(404, "no such list");
        }
        let base = format!("/api/lists/{}/members", encode(list));
        let answer = match action {
            "add" => {
                let body = serde_json::json!({ "address": address.trim(), "name": name.trim() });
                self.call("POST", base, body.to_string().into_bytes()).await
            }
            "remove" => {
                let path = format!("{base}/{}", encode(address));
                self.call("DELETE", path, Vec::new()).await
            }
            "enable" => {
                let path = format!("{base}/{}/enable", encode(address));
                self.call("POST", path, Vec::new()).await
            }
            _ => return text(400, "add, remove or enable"),
        };
        match answer {
            Some((status, _)) if status < 300 => {
                tracing::info!(user = %self.user.name, list, action, address, "console member change");
                see_other(&format!("/console/members?list={}", encode(list)), None)
            }
            Some((_, body)) => {
                let why = body
                    .get("error")
                    .and_then(|e| e.as_str())
                    .unwrap_or("refused");
                text(400, why)
            }
            None => text(503, "try again later"),
        }
    }

    /// `GET /console/members/export?list=L`: every member as CSV (address, name, joined,
    /// state, bounce score), read a page at a time.
    pub(super) async fn export(&self, list: Option<&str>) -> Response {
        let Some(list) = list.filter(|l| self.user.may_see(l)) else {
            return text(404, "no such list");
        };
        let mut csv = String::from("address,name,joined_at,receiving,bounce_score\r\n");
        let mut after = String::new();
        loop {
            let mut query = "limit=1000".to_string();
            if !after.is_empty() {
                query.push_str(&format!("&after={}", encode(&after)));
            }
            let path = format!("/api/lists/{}/members", encode(list));
            let Some((200, page)) = self.call_query("GET", path, &query).await else {
                return text(404, "no such list");
            };
            for m in page["members"].as_array().into_iter().flatten() {
                let quoted = |v: &serde_json::Value| csv_cell(v.as_str().unwrap_or_default());
                csv.push_str(&format!(
                    "{},{},{},{},{}\r\n",
                    quoted(&m["address"]),
                    quoted(&m["name"]),
                    m["joined_at"].as_u64().unwrap_or(0),
                    !m["disabled"].as_bool().unwrap_or(false),
                    m["bounce_score"].as_f64().unwrap_or(0.0)
                ));
            }
            match page["next"].as_str() {
                Some(next) => after = next.to_string(),
                None => break,
            }
        }
        let mut answer = crate::web::serve::respond(200, "text/csv; charset=utf-8", csv);
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
        let path = format!("/api/lists/{}/members/import", encode(list));
        match self.call("POST", path, lines.as_bytes().to_vec()).await {
            Some((status, _)) if status < 300 => {
                tracing::info!(user = %self.user.name, list, "console member import");
                see_other(&format!("/console/members?list={}", encode(list)), None)
            }
            Some((_, body)) => text(400, body["error"].as_str().unwrap_or("refused")),
            None => text(503, "try again later"),
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
