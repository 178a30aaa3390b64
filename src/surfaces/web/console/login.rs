//! `POST /console/login`: the password checked with Argon2id on the blocking pool, behind the
//! per-address and per-name [`Throttle`](super::throttle::Throttle) and a bound on checks
//! running at once. Every refusal is logged as one line of a fixed form, for fail2ban:
//!
//! ```text
//! console login refused client=ADDRESS reason=REASON name="NAME"
//! ```
//!
//! with REASON one of `wrong_password`, `unknown_name`, `throttled_address`,
//! `throttled_name`, `throttled_busy` and `busy`. The client address comes before the name,
//! which is the one part a client chooses (quoted, escaped and cut at 64 characters), so a
//! pattern anchored on the fixed text cannot be steered to another address.

use super::Console;
use super::throttle::Wait;
use crate::surfaces::web::pages::page;
use crate::surfaces::web::serve::{Request, Response, text};
use std::time::Duration;

/// Password checks at once: Argon2 is slow on purpose, and a flood of logins must not take
/// both cores.
pub(super) const LOGINS_AT_ONCE: usize = 2;

/// How long a login waits for one of the [`LOGINS_AT_ONCE`] turns before it is answered 503.
const TURN_WAIT: Duration = Duration::from_secs(10);

/// Logs one refused login in the form fail2ban matches (see the module's documentation).
fn refused(request: &Request, reason: &str, name: &str) {
    // The name as typed may be anything: logged quoted and short.
    let shown: String = name.chars().take(64).collect();
    // The target is fixed, not the module path, so the fail2ban filter operators copied from
    // docs/console.md keeps matching when the code moves (it did: src/web became
    // src/surfaces/web).
    tracing::info!(
        target: "arclist::web::console::login",
        "console login refused client={} reason={reason} name={shown:?}",
        request.client
    );
}

/// 429 with `Retry-After`, for a login that must wait.
fn wait_answer(wait: &Wait) -> Response {
    let mut answer = page(
        "console_login.html",
        minijinja::context! {
            error => format!("Too many failed logins; try again in {} s.", wait.seconds)
        },
    );
    *answer.status_mut() = hyper::StatusCode::TOO_MANY_REQUESTS;
    if let Ok(v) = hyper::header::HeaderValue::from_str(&wait.seconds.to_string()) {
        answer.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    answer
}

impl Console {
    /// Checks a login form; a session cookie and the held posts when it is good.
    pub(super) async fn login(&self, request: &Request) -> Response {
        let fields = crate::surfaces::web::form::fields(
            request.header("content-type").unwrap_or_default(),
            &request.body,
        );
        let field =
            |name: &str| crate::surfaces::web::form::value(&fields, name).unwrap_or_default();
        let (name, password) = (field("name").to_string(), field("password").to_string());
        let mine = match self.throttle.admit(request.client, &name) {
            Ok(turn) => turn,
            Err(wait) => {
                refused(request, &format!("throttled_{}", wait.because), &name);
                return wait_answer(&wait);
            }
        };
        let known = self.users.get().iter().find(|u| u.name == name).cloned();
        let checked = known.clone().unwrap_or_else(|| self.decoy.clone());
        // A turn of the CPU bound, in arrival order; the throttle keeps any one address to one
        // check at a time, so a flood waits its turn behind the others instead of refusing all.
        let turn = tokio::time::timeout(TURN_WAIT, self.logins.clone().acquire_owned()).await;
        let Ok(Ok(turn)) = turn else {
            refused(request, "busy", &name);
            return text(503, "too many logins at once; try again in a moment");
        };
        // Checked on the blocking pool: Argon2 takes tens of milliseconds of CPU. A client
        // that hangs up must not leave its check running beyond the bound, so the turns go
        // with the check.
        let good = tokio::task::spawn_blocking(move || {
            let _turns = (turn, mine);
            checked.check(&password)
        })
        .await
        .unwrap_or(false)
            && known.is_some();
        if !good {
            self.throttle.failed(request.client, &name);
            let reason = match known {
                Some(_) => "wrong_password",
                None => "unknown_name",
            };
            refused(request, reason, &name);
            let mut answer = page(
                "console_login.html",
                minijinja::context! { error => "Wrong name or password." },
            );
            *answer.status_mut() = hyper::StatusCode::UNAUTHORIZED;
            return answer;
        }
        self.throttle.succeeded(request.client, &name);
        let Some(id) = self.sessions.start(&name) else {
            return text(503, "no session could be made; try again");
        };
        let shown: String = name.chars().take(64).collect();
        tracing::info!(client = %request.client, name = ?shown, "console login");
        let max_age = super::sessions::IDLE.as_secs();
        super::see_other("/console/held", Some(self.cookie(&id, max_age)))
    }
}
