//! A list's public pages on the `[http]` listener (`docs/members.md`): the index of lists
//! (`/lists/`), a list's page with its subscribe form (`/lists/LIST`), the confirmation of a
//! subscription (`/lists/LIST/confirm/TOKEN`) and a member's own settings
//! (`/lists/LIST/settings/TOKEN`), both reached by a link mailed to the address.
//!
//! A GET never changes anything (link scanners open every link in a mail): each change is a
//! POST from a form on our own page, which carries the value of a `SameSite=Strict` cookie
//! that page set (double submit), from our own origin. The links are sealed tokens bound to
//! their use, the list and the address, valid three days. Asking for mail answers the same
//! whether or not the address is a member, and is bounded per address (the list robot's
//! hourly limit) and per client address.

mod mail;

use super::form;
use super::pages::page;
use super::serve::{Request, Response, text};
use crate::base::config::clean_member_name;
use crate::base::tasks::Tasks;
use crate::stages::list::robots::Replies;
use crate::stages::list::tokens::{self, LinkUse};
use crate::stages::list::{ListRuntime, Lists};
use crate::state::store::modes::{date_of, parse_date};
use crate::state::store::{DeliveryMode, Departure, DepartureReason, Member, Store};
use std::sync::Arc;

/// Requests that mail someone (a confirmation, a settings link) one client address may make
/// in any hour, over every list.
pub const PER_CLIENT_PER_HOUR: usize = 20;

/// The CSRF cookie of the public pages.
const COOKIE: &str = "arclist_pages";

/// The cookie that signs a member in to members-only archives: a settings link's token.
pub const READER_COOKIE: &str = "arclist_reader";

/// Whether `path` is one of the public pages'.
pub fn serves(path: &str) -> bool {
    path == "/lists" || path.starts_with("/lists/")
}

/// The public pages of every list the `[http]` listener serves.
pub struct MemberPages {
    store: Arc<Store>,
    lists: Lists,
    tasks: Tasks,
    clients: Replies,
}

/// A POST request's form fields.
struct Posted {
    fields: Vec<(String, String)>,
}

impl Posted {
    fn field(&self, name: &str) -> &str {
        form::value(&self.fields, name).unwrap_or_default()
    }
}

impl MemberPages {
    /// The pages of `lists`, sending mail through `store` on `tasks`' blocking pool.
    pub fn new(store: Arc<Store>, lists: Lists, tasks: Tasks) -> Self {
        MemberPages {
            store,
            lists,
            tasks,
            clients: Replies::new(PER_CLIENT_PER_HOUR),
        }
    }

    /// Answers a request under `/lists`; `secret` is the store's token secret.
    pub async fn handle(&self, request: &Request, secret: &[u8]) -> Response {
        let parts: Vec<String> = request.path["/lists".len()..]
            .split('/')
            .filter(|p| !p.is_empty())
            .map(|p| form::decode(p.as_bytes(), false))
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let csrf = cookie(request);
        if request.method == hyper::Method::POST {
            let fields = form::fields(
                request.header("content-type").unwrap_or_default(),
                &request.body,
            );
            let posted = Posted { fields };
            if let Some(refused) = self.forged(request, csrf.as_deref(), &posted) {
                return refused;
            }
            return self.post(request, &parts, &posted, secret).await;
        }
        if !matches!(request.method, hyper::Method::GET | hyper::Method::HEAD) {
            return text(405, "method not allowed");
        }
        let (csrf, fresh) = match csrf {
            Some(c) => (c, false),
            None => match new_csrf() {
                Some(c) => (c, true),
                None => return text(503, "try again later"),
            },
        };
        let answer = self.get(request, &parts, &csrf, secret).await;
        if fresh {
            return with_cookie(answer, &csrf, self.secure());
        }
        answer
    }

    /// Whether the pages are served over HTTPS (the base URL says), for the cookie and the
    /// origin check.
    fn secure(&self) -> bool {
        self.lists
            .all()
            .iter()
            .find_map(|l| l.base_url().map(|b| b.starts_with("https://")))
            .unwrap_or(false)
    }

    /// The refusal of a POST that is not from our own page: another origin, or a form
    /// without the cookie's value.
    fn forged(&self, request: &Request, csrf: Option<&str>, posted: &Posted) -> Option<Response> {
        let own = super::console::same_origin(request, self.secure())
            && csrf.is_some_and(|c| same(c, posted.field("csrf")));
        if own {
            return None;
        }
        tracing::info!(client = %request.client, path = %request.path, "public page form without its CSRF cookie or from another site; refused (403)");
        Some(text(
            403,
            "this form did not come from this site's page; open the page again and retry",
        ))
    }

    /// The list a page is about, if the listener serves it.
    fn list(&self, address: &str) -> Option<Arc<ListRuntime>> {
        self.lists.get(address).filter(|l| l.base_url().is_some())
    }

    async fn get(&self, request: &Request, parts: &[&str], csrf: &str, secret: &[u8]) -> Response {
        let now = crate::auth::unix_now();
        match parts {
            [] => self.index(),
            [list] => match self.list(list) {
                Some(list) => list_page(&list, csrf),
                None => not_found(),
            },
            [list, "confirm", token] => {
                match self.opened(list, LinkUse::Join, token, secret, now) {
                    Some((list, address)) => {
                        let query =
                            form::urlencoded(request.query.as_deref().unwrap_or("").as_bytes());
                        let name =
                            clean_member_name(form::value(&query, "name").unwrap_or_default());
                        confirm_page(&list, &address, &name, csrf)
                    }
                    None => expired(),
                }
            }
            [list, "settings", token] => {
                match self.opened(list, LinkUse::Settings, token, secret, now) {
                    Some((list, address)) => {
                        let page = self.settings_page(&list, &address, csrf).await;
                        with_reader_cookie(page, token, self.secure())
                    }
                    None => expired(),
                }
            }
            _ => not_found(),
        }
    }

    async fn post(
        &self,
        request: &Request,
        parts: &[&str],
        posted: &Posted,
        secret: &[u8],
    ) -> Response {
        let now = crate::auth::unix_now();
        match parts {
            [list, what @ ("subscribe" | "settings-link")] => match self.list(list) {
                Some(list) => self.mail_link(request, &list, what, posted, secret).await,
                None => not_found(),
            },
            [list, "confirm", token] => {
                match self.opened(list, LinkUse::Join, token, secret, now) {
                    Some((list, address)) => {
                        let name = clean_member_name(posted.field("name"));
                        self.join(&list, &address, &name).await
                    }
                    None => expired(),
                }
            }
            [list, "settings", token] => {
                match self.opened(list, LinkUse::Settings, token, secret, now) {
                    Some((list, address)) => self.change(&list, &address, posted).await,
                    None => expired(),
                }
            }
            _ => not_found(),
        }
    }

    /// The list and address `token` names for `use_`, if it is good, unexpired, and for
    /// this very list (a link of another list's member is refused).
    fn opened(
        &self,
        list: &str,
        use_: LinkUse,
        token: &str,
        secret: &[u8],
        now: u64,
    ) -> Option<(Arc<ListRuntime>, String)> {
        let link = tokens::open_link(secret, use_, token, now)?;
        let runtime = self.list(list)?;
        (link.list == runtime.config.address.to_ascii_lowercase())
            .then_some((runtime, link.address))
    }

    /// `GET /lists/`: the lists not hidden.
    fn index(&self) -> Response {
        let lists: Vec<minijinja::Value> = self
            .lists
            .all()
            .iter()
            .filter(|l| !l.config.hidden && l.base_url().is_some())
            .map(|l| {
                minijinja::context! {
                    address => l.config.address, name => l.config.display_name(),
                    description => l.config.description, path => path_of(&l.config.address),
                }
            })
            .collect();
        page("public_index.html", minijinja::context! { lists => lists })
    }

    /// The settings page of `address` on `list`.
    async fn settings_page(&self, list: &ListRuntime, address: &str, csrf: &str) -> Response {
        let member = match self.store.member(&list.config.address, address).await {
            Ok(Some(m)) => m,
            Ok(None) => return not_member(list, address),
            Err(e) => return unavailable(list, &e),
        };
        let today = date_of(crate::auth::unix_now());
        let now = member.delivery_on(&today);
        let modes: Vec<minijinja::Value> = DeliveryMode::ALL
            .iter()
            .map(|m| {
                minijinja::context! {
                    value => m.as_str(), chosen => *m == now,
                    text => crate::stages::list::commands::describe(*m, None),
                }
            })
            .collect();
        let until = member.nomail_until.filter(|_| now == member.delivery);
        page(
            "public_settings.html",
            minijinja::context! {
                name => list.config.display_name(), address => list.config.address,
                member => address, modes => modes, csrf => csrf,
                now => crate::stages::list::commands::describe(now, until.as_deref()),
                until => until, today => today,
            },
        )
    }

    /// A confirmed subscription.
    async fn join(&self, list: &ListRuntime, address: &str, name: &str) -> Response {
        let member = Member {
            address: address.to_string(),
            name: name.to_string(),
            joined_at: crate::auth::unix_now(),
            ..Default::default()
        };
        let cfg = &list.config;
        match self.store.add_member(&cfg.address, &member).await {
            Ok(added) => {
                tracing::info!(list = %cfg.address, %address, added, "subscription confirmed on the list's page");
                let body = format!(
                    "{address} is a member of {} now. Post by writing to {}.",
                    cfg.display_name(),
                    cfg.address
                );
                message_page(list, "Welcome", &body, None)
            }
            Err(e) => unavailable(list, &e),
        }
    }

    /// A member's change on their settings page: a delivery mode, or leaving.
    async fn change(&self, list: &ListRuntime, address: &str, posted: &Posted) -> Response {
        let cfg = &list.config;
        if posted.field("action") == "leave" {
            let why = Departure::now(DepartureReason::Unsubscribed);
            return match self.store.remove_member(&cfg.address, address, why).await {
                Ok(_) => {
                    tracing::info!(list = %cfg.address, %address, "member left on their settings page");
                    let body = format!("{address} no longer receives {}.", cfg.display_name());
                    message_page(list, "You left the list", &body, None)
                }
                Err(e) => unavailable(list, &e),
            };
        }
        let Some(mode) = DeliveryMode::parse(posted.field("delivery")) else {
            return text(400, "choose a delivery mode");
        };
        let until = match posted.field("until").trim() {
            "" => None,
            _ if mode != DeliveryMode::Nomail => None,
            date => match parse_date(date) {
                Some(d) => Some(d),
                None => return text(400, "the date is not a date YYYY-MM-DD"),
            },
        };
        let mut member = match self.store.member(&cfg.address, address).await {
            Ok(Some(m)) => m,
            Ok(None) => return not_member(list, address),
            Err(e) => return unavailable(list, &e),
        };
        let today = date_of(crate::auth::unix_now());
        member.set_delivery(mode, until.clone(), &today);
        if let Err(e) = self.store.put_member(&cfg.address, &member).await {
            return unavailable(list, &e);
        }
        tracing::info!(list = %cfg.address, %address, delivery = %mode, until = ?until, "member changed their delivery on their settings page");
        let body = format!(
            "{address} now gets {} as: {}.",
            cfg.display_name(),
            crate::stages::list::commands::describe(mode, until.as_deref())
        );
        message_page(list, "Saved", &body, None)
    }
}

/// A list's own page.
fn list_page(list: &ListRuntime, csrf: &str) -> Response {
    let cfg = &list.config;
    page(
        "public_list.html",
        minijinja::context! {
            name => cfg.display_name(), address => cfg.address, description => cfg.description,
            archive => cfg.archive_url, csrf => csrf, path => path_of(&cfg.address),
            request => format!("{}-request@{}", cfg.local_part(), cfg.domain()),
        },
    )
}

/// A page saying one thing, optionally with a button that POSTs back to the same URL.
fn message_page(
    list: &ListRuntime,
    title: &str,
    body: &str,
    button: Option<(&str, &str)>,
) -> Response {
    page(
        "public_message.html",
        minijinja::context! {
            title => title, body => body, name => list.config.display_name(),
            path => path_of(&list.config.address),
            button => button.map(|b| b.0), csrf => button.map(|b| b.1),
        },
    )
}

/// The confirmation page of a subscription: the address, the optional name (from the link,
/// which the person may change here), and the button whose POST confirms.
fn confirm_page(list: &ListRuntime, address: &str, name: &str, csrf: &str) -> Response {
    let body = format!("Subscribe {address} to {}?", list.config.display_name());
    page(
        "public_message.html",
        minijinja::context! {
            title => "Confirm your subscription", body => body,
            name => list.config.display_name(), path => path_of(&list.config.address),
            button => "Confirm", csrf => csrf, ask_name => true, member_name => name,
        },
    )
}

fn not_member(list: &ListRuntime, address: &str) -> Response {
    let body = format!(
        "{address} is not a member of {}.",
        list.config.display_name()
    );
    message_page(list, "Not a member", &body, None)
}

fn unavailable(list: &ListRuntime, e: &crate::state::store::StoreError) -> Response {
    tracing::error!(list = %list.config.address, error = %e, "a public page cannot reach the store");
    text(503, "try again later")
}

fn not_found() -> Response {
    text(404, "no such list")
}

fn expired() -> Response {
    text(
        403,
        "this link is not valid for this list, or it has expired (links work for 3 days); ask for a new one on the list's page",
    )
}

/// The page path of a list.
fn path_of(address: &str) -> String {
    format!("/lists/{}", address.replace(['/', '?', '#', '%'], ""))
}

/// The value of the pages' CSRF cookie in the request, if any.
fn cookie(request: &Request) -> Option<String> {
    request
        .header("cookie")?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A new CSRF value: 128 random bits in hex.
fn new_csrf() -> Option<String> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn with_cookie(mut answer: Response, csrf: &str, secure: bool) -> Response {
    let value = format!(
        "{COOKIE}={csrf}; Path=/lists; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
        answer.headers_mut().append(hyper::header::SET_COOKIE, v);
    }
    answer
}

/// Signs the reader in to the list's members-only archive (`docs/archive.md`): the settings
/// link's own token, kept as a cookie the archive's pages read (it names the list and the
/// address, and expires with the link); the archive checks membership at every request.
fn with_reader_cookie(mut answer: Response, token: &str, secure: bool) -> Response {
    let value = format!(
        "{READER_COOKIE}={token}; Path=/archive/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        tokens::VALID_DAYS * 86_400,
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
        answer.headers_mut().append(hyper::header::SET_COOKIE, v);
    }
    answer
}

/// Compares in constant time.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
