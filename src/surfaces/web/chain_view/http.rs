//! `/arc` on the admin listener: the form, and a submitted message checked off the async
//! runtime within the viewer's budgets, with one log line for every request.

use super::check::{Checked, PasteLimits, check};
use super::gate::Gate;
use crate::auth::Authenticator;
use crate::auth::dns::LookupBudget;
use crate::base::config::ViewerConfig;
use crate::base::tasks::Tasks;
use crate::surfaces::web::serve::{Request, Response, text};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds a client told the viewer is busy is asked to wait.
const RETRY_AFTER_SECS: u64 = 5;

/// The chain viewer of one admin listener.
pub struct Viewer {
    auth: Authenticator,
    paste: PasteLimits,
    lookups_per_check: usize,
    dns_time: Duration,
    gate: Gate,
}

/// What the log line says of a request besides who sent how much and how long it took.
struct Seen {
    outcome: String,
    sets: u32,
    signatures: usize,
    lookups: usize,
}

impl Seen {
    fn only(outcome: &str) -> Self {
        Seen {
            outcome: outcome.to_string(),
            sets: 0,
            signatures: 0,
            lookups: 0,
        }
    }
}

impl Viewer {
    /// A viewer verifying over `auth`'s resolver, holding pastes to the server's `limits`.
    pub fn new(
        auth: Authenticator,
        config: &ViewerConfig,
        limits: &crate::base::config::Limits,
    ) -> Self {
        Viewer {
            auth,
            paste: PasteLimits::from(limits),
            lookups_per_check: config.lookups_per_check,
            dns_time: Duration::from_secs(config.dns_secs.max(1)),
            gate: Gate::new(config.checks_at_once, config.lookups_per_client_minute),
        }
    }

    /// `GET /arc`: the form; `POST /arc`: the submitted message checked now, as a page.
    pub async fn answer(self: &Arc<Self>, request: &Request, tasks: &Tasks) -> Response {
        let started = Instant::now();
        let (response, seen) = match request.method {
            hyper::Method::GET => (
                crate::surfaces::web::pages::answer(super::form_page()),
                Seen::only("form"),
            ),
            hyper::Method::POST => self.post(request, tasks).await,
            _ => (text(405, "GET or POST"), Seen::only("method not allowed")),
        };
        tracing::info!(
            client = %request.client,
            bytes = request.body.len(),
            sets = seen.sets,
            signatures = seen.signatures,
            lookups = seen.lookups,
            status = response.status().as_u16(),
            outcome = %seen.outcome,
            ms = started.elapsed().as_millis() as u64,
            "chain viewer request"
        );
        response
    }

    /// A submitted message: admitted or told to come back; then parsed, checked and rendered
    /// on the blocking pool, where a large paste's CPU time does not hold up the runtime the
    /// SMTP sessions share.
    async fn post(self: &Arc<Self>, request: &Request, tasks: &Tasks) -> (Response, Seen) {
        let Some(permit) = self.gate.admit() else {
            return (busy(), Seen::only("busy"));
        };
        let allowance = self.gate.allowance(request.client, self.lookups_per_check);
        let budget = Arc::new(LookupBudget::new(allowance.lookups, self.dns_time));
        let content_type = request
            .header("content-type")
            .unwrap_or_default()
            .to_string();
        let body = request.body.clone();
        let (viewer, spent) = (self.clone(), budget.clone());
        let work = tasks.track(async move { viewer.checked(&content_type, &body, spent).await });
        let viewer = self.clone();
        let runtime = tokio::runtime::Handle::current();
        // The place and the questions are given back when the work ends, not when this
        // request does: a client that hangs up does not free a place still in use.
        let done = tasks
            .spawn_blocking(move || {
                let done = runtime.block_on(work);
                viewer.gate.settle(&allowance, budget.asked());
                drop(permit);
                done.map(|c| (c, budget.asked()))
            })
            .await;
        match done {
            Ok(Some((Ok(checked), lookups))) => answer_checked(checked, lookups),
            Ok(Some((Err(refusal), _))) => refusal,
            _ => (
                text(503, "the server is stopping"),
                Seen::only("server stopping"),
            ),
        }
    }

    /// The form's message checked, or why there is none to check.
    async fn checked(
        &self,
        content_type: &str,
        body: &[u8],
        budget: Arc<LookupBudget>,
    ) -> Result<Checked, (Response, Seen)> {
        let fields = crate::surfaces::web::form::raw_fields(content_type, body);
        let Some(message) = super::submitted(&fields) else {
            return Err((
                text(400, "paste a message or choose a file"),
                Seen::only("no message"),
            ));
        };
        Ok(check(
            &self.auth,
            &message,
            &self.paste,
            budget,
            crate::auth::unix_now(),
        )
        .await)
    }
}

/// The page of a check, with its status.
fn answer_checked(checked: Checked, lookups: usize) -> (Response, Seen) {
    let mut response = crate::surfaces::web::pages::answer(checked.page);
    if response.status() == hyper::StatusCode::OK
        && let Ok(status) = hyper::StatusCode::from_u16(checked.status)
    {
        *response.status_mut() = status;
    }
    let seen = Seen {
        outcome: checked.outcome,
        sets: checked.sets,
        signatures: checked.signatures,
        lookups,
    };
    (response, seen)
}

/// 503 with Retry-After: every place for a check is taken.
fn busy() -> Response {
    let mut response = text(
        503,
        "the chain viewer is checking other messages; try again in a few seconds",
    );
    response.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from(RETRY_AFTER_SECS),
    );
    response
}
