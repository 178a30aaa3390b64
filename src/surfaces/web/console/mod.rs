//! The web console on the admin listener (`/console`): people from the console users file log
//! in (Argon2id), and see and decide the held posts of the lists they may see, each with why
//! it is held, what was verified on arrival and its ARC chain as it verifies now. Pages are
//! rendered by arclist (minijinja, escaping on) and need no script. Every form carries the
//! session's CSRF token, the session cookie is `HttpOnly` and `SameSite=Strict` (and `Secure`
//! behind TLS), and a POST whose `Origin` is another site (another host, or another scheme)
//! is refused. Logins are throttled per client address and per name ([`throttle`]). Decisions
//! go through the admin service ([`crate::surfaces::admin`]), so they do exactly what `arclist held
//! approve` does.

mod delivery;
mod held;
mod login;
mod members;
mod report;
pub mod sessions;
mod settings;
pub mod throttle;
pub mod users;

use super::api::Api;
use super::pages::page;
use super::serve::{Request, Response, respond, text};
use crate::auth::Authenticator;
use crate::surfaces::web::form::encode;
use sessions::{COOKIE, Session, Sessions};
use std::sync::Arc;
use throttle::{Policy, Throttle};
use users::User;

/// The console: its people, their sessions and how its cookies are marked.
pub struct Console {
    /// Replaced by a reload, which reads the users file again.
    users: crate::base::live::Live<Vec<User>>,
    sessions: Sessions,
    secure_cookie: bool,
    /// Turns of the password check ([`login::LOGINS_AT_ONCE`]).
    logins: Arc<tokio::sync::Semaphore>,
    /// Failed logins per address and per name.
    throttle: Throttle,
    /// Checked for an unknown name, so a name's existence does not show in the time taken.
    decoy: User,
    auth: Authenticator,
}

/// 303 to `to`, with `cookie` set when given.
fn see_other(to: &str, cookie: Option<String>) -> Response {
    let mut answer = respond(303, "text/plain; charset=utf-8", format!("see {to}\n"));
    if let Ok(v) = hyper::header::HeaderValue::from_str(to) {
        answer.headers_mut().insert(hyper::header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| hyper::header::HeaderValue::from_str(&c).ok()) {
        answer.headers_mut().insert(hyper::header::SET_COOKIE, c);
    }
    answer
}

/// A POST from a page of another site is refused: its `Origin` must be this request's `Host`
/// under the scheme the browser used, `https` behind the TLS-terminating web server
/// (`secure`, as for the cookie) and `http` otherwise. A page served over plain HTTP under
/// the same name is another origin (a network attacker can write it), as is `null`.
pub(crate) fn same_origin(request: &Request, secure: bool) -> bool {
    let Some(origin) = request.header("origin") else {
        return true;
    };
    let host = request.header("host").unwrap_or_default();
    let scheme = if secure { "https" } else { "http" };
    origin.split_once("://").is_some_and(|(s, rest)| {
        s.eq_ignore_ascii_case(scheme) && !host.is_empty() && rest.eq_ignore_ascii_case(host)
    })
}

impl Console {
    /// The console for the people in `users_file`, checking chains with `auth`; failed
    /// logins wait as `policy` says.
    pub fn load(
        users_file: &std::path::Path,
        (secure_cookie, policy): (bool, Policy),
        auth: Authenticator,
    ) -> Result<Self, users::UsersError> {
        Ok(Console {
            users: crate::base::live::Live::new(users::load(users_file)?),
            sessions: Sessions::default(),
            secure_cookie,
            logins: Arc::new(tokio::sync::Semaphore::new(login::LOGINS_AT_ONCE)),
            throttle: Throttle::new(policy),
            decoy: User {
                name: String::new(),
                hash: users::hash("not anyone's password")?,
                lists: Some(Vec::new()),
            },
            auth,
        })
    }

    /// The console's people, for a reload to replace (a person taken out is signed out at
    /// their next request).
    pub fn users(&self) -> crate::base::live::Live<Vec<User>> {
        self.users.clone()
    }

    /// Whether `head` carries the cookie of a live session: the listener serves a signed-in
    /// person outside the anonymous turns, so a flood of slow anonymous requests cannot keep
    /// the moderators out of the console.
    pub fn signed_in(&self, head: &hyper::http::request::Parts) -> bool {
        let cookie = head
            .headers
            .get(hyper::header::COOKIE)
            .and_then(|v| v.to_str().ok());
        self.sessions.find(cookie).is_some()
    }

    /// Answers a request under `/console`.
    pub async fn handle(&self, api: &Api, request: &Request) -> Response {
        let post = request.method == hyper::Method::POST;
        if post && !same_origin(request, self.secure_cookie) {
            tracing::info!(client = %request.client, origin = ?request.header("origin").unwrap_or_default(), host = ?request.header("host").unwrap_or_default(), "console form of another site; refused (403)");
            return text(403, "a form of another site");
        }
        let path = request.path.trim_end_matches('/');
        if path == "/console/login" {
            return match post {
                true => self.login(request).await,
                false => page("console_login.html", minijinja::context! {}),
            };
        }
        let found = self.sessions.find(request.header("cookie"));
        let Some(session) = found else {
            return see_other("/console/login", None);
        };
        let Some(user) = self
            .users
            .get()
            .iter()
            .find(|u| u.name == session.user)
            .cloned()
        else {
            return see_other("/console/login", None);
        };
        let fields = super::form::fields(
            request.header("content-type").unwrap_or_default(),
            &request.body,
        );
        let field = |name: &str| super::form::value(&fields, name);
        if post && !field("csrf").is_some_and(|c| session.csrf_ok(c)) {
            return text(
                403,
                "the form is stale or forged: reload the page and try again",
            );
        }
        let pages = Pages {
            api,
            user: &user,
            session: &session,
        };
        self.route(&pages, request, (post, path), &fields).await
    }

    /// The page or decision a logged-in request asks for; `fields` are its form's.
    async fn route(
        &self,
        pages: &Pages<'_>,
        request: &Request,
        (post, path): (bool, &str),
        fields: &[(String, String)],
    ) -> Response {
        let field = |name: &str| super::form::value(fields, name);
        let query =
            super::form::urlencoded(request.query.as_deref().unwrap_or_default().as_bytes());
        let param = |name: &str| super::form::value(&query, name);
        match (post, path.strip_prefix("/console")) {
            (true, Some("/logout")) => {
                self.sessions.end(request.header("cookie"));
                see_other("/console/login", Some(self.cookie("", 0)))
            }
            (false, Some("" | "/held")) => pages.list().await,
            (false, Some("/delivery")) => pages.delivery(param("list")).await,
            (false, Some("/settings")) => pages.settings(param("list"), None).await,
            (true, Some("/settings")) => {
                pages
                    .change_settings(field("list").unwrap_or_default(), fields)
                    .await
            }
            (true, Some("/archive/remove")) => {
                let (list, post) = (field("list"), field("post"));
                pages
                    .remove_archived(list.unwrap_or_default(), post.unwrap_or_default())
                    .await
            }
            (false, Some(rest)) if rest.starts_with("/delivery/") => {
                pages.delivery_of(&rest[10..]).await
            }
            (false, Some("/report")) => {
                let since = param("since").unwrap_or_default();
                pages.report(param("list"), since).await
            }
            (false, Some("/members/export")) => pages.export(param("list")).await,
            (true, Some("/members/import")) => {
                let lines = field("lines").unwrap_or_default();
                pages.import(field("list").unwrap_or_default(), lines).await
            }
            (false, Some("/members")) => {
                pages
                    .members(
                        param("list"),
                        param("q").unwrap_or_default(),
                        param("after").unwrap_or_default(),
                    )
                    .await
            }
            (true, Some("/members")) => {
                let member = members::MemberForm {
                    address: field("address").unwrap_or_default(),
                    name: field("name").unwrap_or_default(),
                    delivery: field("delivery").unwrap_or_default(),
                    until: field("until").unwrap_or_default(),
                    moderated: field("moderated") == Some("yes"),
                };
                pages
                    .change_member(
                        field("list").unwrap_or_default(),
                        field("action").unwrap_or_default(),
                        member,
                    )
                    .await
            }
            (true, Some("/held")) => {
                let ids: Vec<&str> = fields
                    .iter()
                    .filter(|(n, _)| n == "id")
                    .map(|(_, v)| v.as_str())
                    .collect();
                pages
                    .decide(&ids, field("action").unwrap_or_default(), None)
                    .await
            }
            (false, Some(rest)) if rest.starts_with("/held/") => {
                pages.show(&rest[6..], &self.auth).await
            }
            (true, Some(rest)) if rest.starts_with("/held/") => {
                pages
                    .decide(
                        &[&rest[6..]],
                        field("action").unwrap_or_default(),
                        field("reason"),
                    )
                    .await
            }
            _ => text(404, "not found"),
        }
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        format!(
            "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
            if self.secure_cookie { "; Secure" } else { "" }
        )
    }
}

/// `wanted`, when it is one of `lists` (case aside).
fn pick<'a>(lists: &'a [String], wanted: Option<&'a str>) -> Option<&'a str> {
    wanted.filter(|w| lists.iter().any(|l| l.eq_ignore_ascii_case(w)))
}

/// A list as the pages link it: its address and its encoding for a URL.
#[derive(serde::Serialize)]
struct Link {
    address: String,
    encoded: String,
}

/// The lists as the pages link them.
fn links(lists: &[String]) -> Vec<Link> {
    lists
        .iter()
        .map(|l| Link {
            address: l.clone(),
            encoded: encode(l),
        })
        .collect()
}

/// The pages of one person's session, and the admin service calls behind them.
pub(super) struct Pages<'a> {
    api: &'a Api,
    user: &'a User,
    session: &'a Session,
}

impl Pages<'_> {
    /// The lists this person may see (posting addresses), from the configuration in force:
    /// no store read, where the lists route would count every list's members.
    fn own_lists(&self) -> Vec<String> {
        self.api
            .config
            .get()
            .lists
            .iter()
            .map(|l| l.address.clone())
            .filter(|a| self.user.may_see(a))
            .collect()
    }
}
