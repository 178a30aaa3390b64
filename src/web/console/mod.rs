//! The web console on the admin listener (`/console`): people from the console users file log
//! in (Argon2id), and see and decide the held posts of the lists they may see, each with why
//! it is held, what was verified on arrival and its ARC chain as it verifies now. Pages are
//! rendered by arclist (minijinja, escaping on) and need no script. Every form carries the
//! session's CSRF token, the session cookie is `HttpOnly` and `SameSite=Strict` (and `Secure`
//! behind TLS), and a POST whose `Origin` is another site is refused. Decisions go through the
//! admin API's own routes, so they do exactly what `arclist held approve` does.

pub mod sessions;
pub mod users;

use super::api::Api;
use super::serve::{Request, Response, html, respond, text};
use crate::auth::Authenticator;
use crate::store::Store;
use crate::tasks::Tasks;
use sessions::{COOKIE, Session, Sessions};
use std::sync::Arc;
use users::User;

/// Password checks at once: Argon2 is slow on purpose, and a flood of logins must not take
/// both cores.
const LOGINS_AT_ONCE: usize = 2;

/// The console: its people, their sessions and how its cookies are marked.
pub struct Console {
    users: Vec<User>,
    sessions: Sessions,
    secure_cookie: bool,
    logins: tokio::sync::Semaphore,
    auth: Authenticator,
}

fn template(name: &str) -> Option<&'static str> {
    Some(match name {
        "console_base.html" => include_str!("../templates/console_base.html"),
        "console_login.html" => include_str!("../templates/console_login.html"),
        "console_held.html" => include_str!("../templates/console_held.html"),
        "console_post.html" => include_str!("../templates/console_post.html"),
        _ => return None,
    })
}

/// `name` rendered with `context`, as a page (500, logged, if the template fails).
fn page(name: &str, context: minijinja::Value) -> Response {
    let mut env = minijinja::Environment::new();
    env.set_loader(|name| Ok(template(name).map(str::to_string)));
    let rendered = env.get_template(name).and_then(|t| t.render(context));
    match rendered {
        Ok(body) => secured(html(body)),
        Err(e) => {
            tracing::error!(template = name, error = %e, "console page failed");
            text(500, "the page could not be made; see the server log")
        }
    }
}

/// The page's headers: nothing but its own inline style loads or runs, no one frames it.
fn secured(mut answer: Response) -> Response {
    let headers = answer.headers_mut();
    headers.insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        hyper::header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    answer
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

/// A POST from a page of another site (its `Origin` names another host) is refused.
fn same_origin(request: &Request) -> bool {
    let Some(origin) = request.header("origin") else {
        return true;
    };
    let host = request.header("host").unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

impl Console {
    /// The console for the people in `users_file`, checking chains with `auth`.
    pub fn load(
        users_file: &std::path::Path,
        secure_cookie: bool,
        auth: Authenticator,
    ) -> Result<Self, String> {
        Ok(Console {
            users: users::load(users_file)?,
            sessions: Sessions::default(),
            secure_cookie,
            logins: tokio::sync::Semaphore::new(LOGINS_AT_ONCE),
            auth,
        })
    }

    /// Answers a request under `/console`.
    pub async fn handle<S: Store>(
        &self,
        api: &Arc<Api<S>>,
        tasks: &Tasks,
        request: &Request,
    ) -> Response {
        let post = request.method == hyper::Method::POST;
        if post && !same_origin(request) {
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
        let Some(user) = self.users.iter().find(|u| u.name == session.user).cloned() else {
            return see_other("/console/login", None);
        };
        let fields = super::form::fields(
            request.header("content-type").unwrap_or_default(),
            &request.body,
        );
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if post && !field("csrf").is_some_and(|c| session.csrf_ok(c)) {
            return text(
                403,
                "the form is stale or forged: reload the page and try again",
            );
        }
        let held = Held {
            api: api.clone(),
            tasks: tasks.clone(),
            user: &user,
            session: &session,
        };
        match (post, path.strip_prefix("/console")) {
            (true, Some("/logout")) => {
                self.sessions.end(request.header("cookie"));
                see_other("/console/login", Some(self.cookie("", 0)))
            }
            (false, Some("" | "/held")) => held.list().await,
            (true, Some("/held")) => {
                let ids: Vec<&str> = fields
                    .iter()
                    .filter(|(n, _)| n == "id")
                    .map(|(_, v)| v.as_str())
                    .collect();
                held.decide(&ids, field("action").unwrap_or_default(), None)
                    .await
            }
            (false, Some(rest)) if rest.starts_with("/held/") => {
                held.show(&rest[6..], &self.auth).await
            }
            (true, Some(rest)) if rest.starts_with("/held/") => {
                held.decide(
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

    async fn login(&self, request: &Request) -> Response {
        let fields = super::form::fields(
            request.header("content-type").unwrap_or_default(),
            &request.body,
        );
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (name, password) = (field("name"), field("password"));
        let user = self.users.iter().find(|u| u.name == name).cloned();
        let Ok(_turn) = self.logins.acquire().await else {
            return text(503, "try again later");
        };
        // Checked on the blocking pool: Argon2 takes tens of milliseconds of CPU.
        let good = tokio::task::spawn_blocking(move || user.is_some_and(|u| u.check(&password)))
            .await
            .unwrap_or(false);
        if !good {
            tracing::info!(peer = %request.peer, name = %name, "console login refused");
            let mut answer = page(
                "console_login.html",
                minijinja::context! { error => "Wrong name or password." },
            );
            *answer.status_mut() = hyper::StatusCode::UNAUTHORIZED;
            return answer;
        }
        let Some(id) = self.sessions.start(&name) else {
            return text(503, "no session could be made; try again");
        };
        tracing::info!(peer = %request.peer, name = %name, "console login");
        let max_age = sessions::IDLE.as_secs();
        see_other("/console/held", Some(self.cookie(&id, max_age)))
    }
}

/// The held-post pages of one person's session.
struct Held<'a, S> {
    api: Arc<Api<S>>,
    tasks: Tasks,
    user: &'a User,
    session: &'a Session,
}

impl<S: Store> Held<'_, S> {
    /// The admin API's answer to `method path` with `body`: its status and body.
    async fn call_raw(
        &self,
        method: &'static str,
        path: String,
        body: Vec<u8>,
    ) -> Option<(u16, Vec<u8>)> {
        let api = self.api.clone();
        let reply = self
            .tasks
            .spawn_blocking(move || api.call(method, &path, None, &body))
            .await
            .ok()?;
        Some((reply.status, reply.body.to_vec()))
    }

    /// As [`Held::call_raw`], the body read as JSON.
    async fn call(
        &self,
        method: &'static str,
        path: String,
        body: Vec<u8>,
    ) -> Option<(u16, serde_json::Value)> {
        let (status, body) = self.call_raw(method, path, body).await?;
        Some((
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// The held post `id`, if this person may see its list.
    async fn visible(&self, id: &str) -> Option<serde_json::Value> {
        let (status, post) = self
            .call("GET", format!("/api/held/{id}"), Vec::new())
            .await?;
        let list = post
            .get("list")
            .and_then(|l| l.as_str())
            .unwrap_or_default();
        (status == 200 && self.user.may_see(list)).then_some(post)
    }

    async fn list(&self) -> Response {
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

    async fn show(&self, id: &str, auth: &Authenticator) -> Response {
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
                Some(super::chain_view::report(&bytes, &v))
            }
            _ => None,
        };
        page(
            "console_post.html",
            minijinja::context! { user => self.user.name, csrf => self.session.csrf, post => post, chain => chain },
        )
    }

    /// Applies `action` to each of `ids` this person may see; back to the list.
    async fn decide(&self, ids: &[&str], action: &str, reason: Option<&str>) -> Response {
        if !matches!(action, "approve" | "reject" | "discard") {
            return text(400, "approve, reject or discard");
        }
        for id in ids {
            if self.visible(id).await.is_none() {
                return text(404, "no such held post");
            }
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
