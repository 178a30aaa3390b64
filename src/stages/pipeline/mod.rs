//! The post's way through arclist after the spool, assembled in one place:
//!
//! 1. authenticate (SPF, DKIM, DMARC, ARC) — [`crate::auth`];
//! 2. find the list the post is for — [`crate::stages::directory::Directory`];
//! 3. trust, policy, the list's copy, ARC seal and DKIM signature — [`crate::stages::list`];
//! 4. queue the signed copy for the members, or hold, reject or discard it — [`crate::state::store`].
//!
//! A temporary DNS failure leaves the message in the spool and retries it with backoff; it
//! never becomes a verdict. Delivery of the queue is the next stage.
//!
//! Messages wait in lanes by sender domain (`lanes.rs`); a pass over one message reads it from
//! the store once (the read that chose its lane goes with it). The list's own post stage is
//! [`crate::stages::list::post`].

mod lanes;

use crate::auth::dkim2::{Dkim2Envelope, Dkim2Report, TimeCheck, verify_dkim2};
use crate::auth::{Authenticator, Envelope, Verification};
use crate::base::metrics::PostOutcome;
use crate::base::tasks::Tasks;
use crate::stages::directory::{Directory, Recipient, Role};
use crate::stages::list::post::{ListWork, Post};
use crate::stages::list::{ListRuntime, Lists, moderation};
use crate::state::store::{SpoolId, SpoolMeta, SpoolState, Store, StoreError};
use lanes::{Lanes, Spooled};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// Messages processed at once unless [`Pipeline::with_limits`] says otherwise.
const DEFAULT_CONCURRENCY: usize = 16;

/// Workers one sender domain's forwarded mail may have: a quarter of the slots, so a domain
/// whose DNS is silent leaves three quarters to everyone else.
fn lane_width(concurrency: usize) -> usize {
    (concurrency / 4).max(1)
}
/// Seconds of temporary failures before a message is held, unless configured.
const DEFAULT_HOLD_AFTER: u64 = 24 * 3600;

/// Retry delays after temporary failures; the last repeats until the hold.
const BACKOFF: &[u64] = &[30, 60, 300, 900, 3600];

/// Runs the pipeline over spooled messages.
pub struct Pipeline {
    store: Arc<Store>,
    auth: Authenticator,
    hostname: String,
    directory: Directory,
    lists: Lists,
    forwarding: crate::base::live::Live<crate::stages::forward::Forwarding>,
    tasks: Tasks,
    /// Messages processed at once.
    slots: Arc<Semaphore>,
    /// Messages waiting, in arrival order, by sender domain.
    lanes: Lanes,
    /// Seconds after arrival when retrying after temporary failures ends in a hold.
    hold_after: u64,
    /// Seconds a list remembers the Message-IDs it distributed (0: not at all).
    duplicate_window: u64,
    /// Where posts released by a moderator's reply go to be distributed (the pipeline's own
    /// feed, once started).
    released: Option<mpsc::UnboundedSender<SpoolId>>,
}

impl Pipeline {
    /// A pipeline for `lists`, writing results as `hostname`.
    pub fn new(
        store: Arc<Store>,
        auth: Authenticator,
        hostname: &str,
        directory: Directory,
        lists: Lists,
    ) -> Self {
        Pipeline {
            store,
            auth,
            hostname: hostname.to_string(),
            directory,
            lists,
            forwarding: crate::base::live::Live::default(),
            tasks: Tasks::new(),
            slots: Arc::new(Semaphore::new(DEFAULT_CONCURRENCY)),
            lanes: Lanes::new(lane_width(DEFAULT_CONCURRENCY)),
            hold_after: DEFAULT_HOLD_AFTER,
            released: None,
            duplicate_window: 7 * 86_400,
        }
    }

    /// Also forwards mail for the aliases of `forwarding`.
    pub fn with_forwarding(
        mut self,
        forwarding: crate::base::live::Live<crate::stages::forward::Forwarding>,
    ) -> Self {
        self.forwarding = forwarding;
        self
    }

    /// A post whose Message-ID its list distributed within `window` seconds is not
    /// distributed again (0: no check).
    pub fn with_duplicate_window(mut self, window: u64) -> Self {
        self.duplicate_window = window;
        self
    }

    /// At most `concurrency` messages at once; a message still failing temporarily
    /// `hold_after` seconds after it arrived is held for the moderator.
    pub fn with_limits(mut self, concurrency: usize, hold_after: u64) -> Self {
        self.slots = Arc::new(Semaphore::new(concurrency.max(1)));
        self.lanes = Lanes::new(lane_width(concurrency));
        self.hold_after = hold_after;
        self
    }

    /// Starts the worker: first every unfinished message left by an earlier run, then each id
    /// the listener sends. The worker and everything it starts belong to `tasks`.
    pub fn start(
        mut self,
        incoming: mpsc::UnboundedReceiver<SpoolId>,
        feed: mpsc::UnboundedSender<SpoolId>,
        tasks: &Tasks,
    ) {
        self.tasks = tasks.clone();
        self.released = Some(feed.clone());
        tasks.spawn(Arc::new(self).run(incoming, feed));
    }

    async fn run(
        self: Arc<Self>,
        mut incoming: mpsc::UnboundedReceiver<SpoolId>,
        feed: mpsc::UnboundedSender<SpoolId>,
    ) {
        self.take_unfinished(&feed, true).await;
        if let Some(every) = self.store.shared() {
            // Other nodes may die with messages half done: their claims lapse, and this node
            // takes them over.
            let (pipeline, feed) = (self.clone(), feed.clone());
            self.tasks.spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    pipeline.take_unfinished(&feed, false).await;
                }
            });
        }
        while let Some(id) = incoming.recv().await {
            let (key, wide, read) = self.sender_key(id).await;
            if self.lanes.push(&key, id, wide, read) {
                self.tasks.spawn(self.clone().lane(key, feed.clone()));
            }
        }
    }

    /// Feeds the unfinished messages nobody works on (at startup: those an earlier run left).
    async fn take_unfinished(&self, feed: &mpsc::UnboundedSender<SpoolId>, startup: bool) {
        match self.store.take_unfinished().await {
            Ok(left) => {
                if !left.is_empty() {
                    match startup {
                        true => tracing::info!(
                            count = left.len(),
                            "picking up messages left in the spool"
                        ),
                        false => tracing::warn!(
                            count = left.len(),
                            "picking up messages left in the spool by a node that stopped (its claims lapsed)"
                        ),
                    }
                }
                for id in left {
                    let _ = feed.send(id);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot look for unfinished messages in the spool")
            }
        }
    }

    /// The lane `id` joins: its sender domain (the From domain, else the envelope sender's),
    /// apart for forwarded mail, which may go several at a time (true); and the message as
    /// read, for its pass.
    async fn sender_key(&self, id: SpoolId) -> (String, bool, Option<Spooled>) {
        let found = self.store.get(id).await;
        let Ok(Some((meta, message))) = found else {
            // process() says what is wrong with it; any lane will do.
            return (String::new(), false, None);
        };
        let domain = crate::auth::dmarc::author_domain(&message).unwrap_or_else(|_| {
            let from = &meta.envelope.mail_from;
            from.rsplit_once('@')
                .map_or(String::new(), |(_, d)| d.to_ascii_lowercase())
        });
        let forwarded = meta.envelope.rcpt_to.iter().any(|r| {
            self.directory
                .resolve(r)
                .is_some_and(|r| matches!(r.role, Role::Forward(_) | Role::SrsReturn(_)))
        });
        let read = Some((meta, message));
        match forwarded {
            true => (format!("forwarded from {domain}"), true, read),
            false => (domain, false, read),
        }
    }

    /// Works through `key`'s lane, one message at a time, each within the concurrency bound;
    /// a message to retry goes back to `feed` after its delay.
    async fn lane(self: Arc<Self>, key: String, feed: mpsc::UnboundedSender<SpoolId>) {
        while let Some(id) = self.lanes.next(&key) {
            let Ok(_slot) = self.slots.acquire().await else {
                return;
            };
            let read = self.lanes.take_read(id);
            let retry = self.process(id, read).await;
            self.lanes.done(id);
            if let Some(delay) = retry {
                let feed = feed.clone();
                self.tasks.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = feed.send(id);
                });
            }
        }
    }

    /// Takes one message as far as it can go, from `read` when its lane kept what choosing it
    /// read; returns a retry delay after a temporary failure.
    async fn process(&self, id: SpoolId, read: Option<Spooled>) -> Option<Duration> {
        let found = match read {
            Some(read) => Ok(Some(read)),
            None => self.store.get(id).await,
        };
        let (mut meta, message) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return None,
            Err(e) => return self.failed(id, e, "cannot read the spooled message").await,
        };
        if !meta.state.unfinished() {
            return None;
        }
        let verdict = self.authenticate(&mut meta, &message).await;
        if verdict.has_temporary_error() {
            let waited = crate::auth::unix_now().saturating_sub(meta.envelope.received_at);
            if waited >= self.hold_after {
                return self.hold_undecided(meta, message, &verdict).await;
            }
            meta.attempts += 1;
            let delay = BACKOFF[(meta.attempts as usize - 1).min(BACKOFF.len() - 1)];
            tracing::warn!(id, attempts = meta.attempts, retry_in_s = delay, arc = %verdict.arc.reason, dmarc = %verdict.dmarc.reason, "temporary DNS failure while authenticating; message stays spooled");
            return self.save(meta).await.or(Some(Duration::from_secs(delay)));
        }
        let all: Vec<Recipient> = meta
            .envelope
            .rcpt_to
            .iter()
            .filter_map(|r| self.directory.resolve(r))
            .collect();
        let forwarded = all.iter().any(|r| matches!(r.role, Role::Forward(_)));
        // Every SRS recipient's sender, once each: none is dropped (the session takes one SRS
        // address per message now; older spooled mail may carry several).
        let mut originals: Vec<String> = Vec::new();
        for r in &all {
            if let Role::SrsReturn(original) = &r.role
                && !originals.iter().any(|o| o.eq_ignore_ascii_case(original))
            {
                originals.push(original.clone());
            }
        }
        if forwarded || !originals.is_empty() {
            let returns = (!forwarded && !originals.is_empty()).then_some(originals);
            return self.forward(meta, message, verdict, returns).await;
        }
        self.for_a_list(meta, message, verdict, all).await
    }

    /// Stage 3: SPF, DKIM, DMARC and ARC, unless the SMTP session's verdict came along; a
    /// final verdict is recorded in `meta` and counted.
    async fn authenticate(&self, meta: &mut SpoolMeta, message: &[u8]) -> Verification {
        let envelope = Envelope {
            ip: meta.envelope.client_ip,
            helo: meta.envelope.helo.clone(),
            mail_from: meta.envelope.mail_from.clone(),
        };
        let verdict = match meta.envelope.verdict.take() {
            Some(v) if !v.has_temporary_error() => *v,
            _ => {
                self.auth
                    .verify(message, Some(&envelope), crate::auth::unix_now())
                    .await
            }
        };
        if verdict.has_temporary_error() {
            return verdict;
        }
        count_verdicts(&verdict);
        meta.auth_results = Some(
            verdict
                .auth_results(&self.hostname, Some(&envelope))
                .render(),
        );
        tracing::info!(
            id = meta.id,
            from = %verdict.dmarc.from_domain,
            spf = verdict.spf.as_ref().map_or("none", |s| s.mail_from.as_str()),
            dkim = ?verdict.dkim.iter().map(|d| d.verdict.as_str()).collect::<Vec<_>>(),
            dmarc = verdict.dmarc.verdict.as_str(),
            policy = verdict.dmarc.policy.as_str(),
            arc = verdict.arc.verdict.as_str(),
            "authenticated"
        );
        verdict
    }

    /// Mail for forwarding aliases, or (`srs_return`: the original senders) a delivery report
    /// or auto-reply to our SRS addresses.
    async fn forward(
        &self,
        meta: SpoolMeta,
        message: Vec<u8>,
        verdict: Verification,
        srs_return: Option<Vec<String>>,
    ) -> Option<Duration> {
        let id = meta.id;
        let (forwarding, hostname) = (self.forwarding.get(), self.hostname.clone());
        let decided = self
            .tasks
            .spawn_blocking(move || match srs_return {
                Some(originals) => {
                    let r = crate::stages::forward::relay::Return {
                        message: &message,
                        verdict: &verdict,
                        originals: &originals,
                        hostname: &hostname,
                    };
                    crate::stages::forward::relay::return_bounce(&forwarding, meta, r)
                }
                None => crate::stages::forward::relay::forward(
                    &forwarding,
                    meta,
                    &message,
                    &verdict,
                    &hostname,
                ),
            })
            .await;
        let done = match decided {
            Ok(outcome) => Ok(outcome.record(&self.store).await),
            Err(e) => Err(e),
        };
        self.finished(id, done).await
    }

    /// A post, a robot command, a bounce or mail for the owners, in that order of precedence;
    /// anything else stays spooled with a note.
    async fn for_a_list(
        &self,
        mut meta: SpoolMeta,
        message: Vec<u8>,
        verdict: Verification,
        all: Vec<Recipient>,
    ) -> Option<Duration> {
        let id = meta.id;
        let resolved: Vec<Recipient> = all
            .into_iter()
            .filter(|r| self.lists.contains(&r.list))
            .collect();
        let Some(work) = ListWork::choose(&resolved, &message) else {
            if meta.state != SpoolState::Approved {
                meta.state = SpoolState::Authenticated;
            }
            meta.note = Some("not for a list, its commands, bounces or owners".into());
            return self.save(meta).await;
        };
        let Some(list) = self.lists.get(work.list()) else {
            // A reload took the list away since `resolved` was made.
            meta.note = Some(format!("list {} is no longer served", work.list()));
            return self.save(meta).await;
        };
        let dkim2 = match list.config.dkim2 {
            true => Some(self.verify_dkim2(&meta, &message, work.list()).await),
            false => None,
        };
        let (store, hostname, feed, window) = (
            self.store.clone(),
            self.hostname.clone(),
            self.released.clone(),
            self.duplicate_window,
        );
        let done = self
            .tasks
            .spawn_blocking(move || {
                let post = Post {
                    meta,
                    message: &message,
                    verdict: &verdict,
                    dkim2: dkim2.as_ref(),
                };
                let released = work.run(&store, &list, post, &hostname, window)?;
                if let (Some(id), Some(feed)) = (released, &feed) {
                    let _ = feed.send(id);
                }
                Ok(())
            })
            .await;
        self.finished(id, done).await
    }

    /// The DKIM2 chain of `message` as it arrived for `list` (a list that signs DKIM2
    /// re-signs only a chain that verified): the envelope binding checked against the
    /// envelope sender and those recipients that are this list's addresses.
    async fn verify_dkim2(&self, meta: &SpoolMeta, message: &[u8], list: &str) -> Dkim2Report {
        let rcpt_to = (meta.envelope.rcpt_to.iter())
            .filter(|r| {
                (self.directory.resolve(r)).is_some_and(|d| d.list.eq_ignore_ascii_case(list))
            })
            .cloned()
            .collect();
        let envelope = Dkim2Envelope {
            mail_from: meta.envelope.mail_from.clone(),
            rcpt_to,
        };
        let now = TimeCheck::At(crate::auth::unix_now());
        let report = verify_dkim2(self.auth.resolver(), message, Some(&envelope), now).await;
        tracing::info!(id = meta.id, %list, dkim2 = ?report.verdict, reason = %report.reason, "DKIM2 chain on arrival");
        report
    }

    /// Retrying has gone on long enough: the message waits for a person, with the reason.
    async fn hold_undecided(
        &self,
        mut meta: SpoolMeta,
        message: Vec<u8>,
        v: &Verification,
    ) -> Option<Duration> {
        let why = [&v.arc.reason, &v.dmarc.reason]
            .into_iter()
            .filter(|r| !r.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        let hours = self.hold_after / 3600;
        tracing::warn!(id = meta.id, attempts = meta.attempts, reason = %why, "temporary DNS failures for {hours} h; held for the moderator");
        meta.state = SpoolState::Held;
        meta.note = Some(format!(
            "held after {hours} h of temporary DNS failures while authenticating: {why}"
        ));
        crate::base::metrics::post(PostOutcome::Held);
        let Some(list) = self.posted_to(&meta) else {
            return self.save(meta).await;
        };
        let id = meta.id;
        let done = self.hold_for(meta, list, Some(message)).await;
        self.finished(id, done).await
    }

    /// The list `meta` was posted to, when this server runs it.
    fn posted_to(&self, meta: &SpoolMeta) -> Option<Arc<ListRuntime>> {
        (meta.envelope.rcpt_to.iter())
            .filter_map(|r| self.directory.resolve(r))
            .find(|r| r.role == Role::Post)
            .and_then(|r| self.lists.get(&r.list))
    }

    /// Stores held post `meta` as `list`'s and tells the list's moderators, with the post's
    /// `message` when the pass has it in hand (else it is read).
    async fn hold_for(
        &self,
        mut meta: SpoolMeta,
        list: Arc<ListRuntime>,
        message: Option<Vec<u8>>,
    ) -> Stage {
        meta.facts.list = Some(list.config.address.clone());
        if let Err(e) = self.store.update(&meta).await {
            return Ok(Err(e));
        }
        let message = match message {
            Some(message) => Some(message),
            None => self.store.get(meta.id).await.ok().flatten().map(|(_, m)| m),
        };
        let Some(message) = message else {
            return Ok(Ok(()));
        };
        // On the blocking pool: the notice is signed.
        let store = self.store.clone();
        self.tasks
            .spawn_blocking(move || {
                moderation::notify_held(&store, &list, &meta, &message);
                Ok(())
            })
            .await
    }

    /// The retry delay, if recording a stage's outcome failed and may work later.
    async fn finished(&self, id: SpoolId, done: Stage) -> Option<Duration> {
        match done {
            Ok(Ok(())) => None,
            Ok(Err(e)) => self.failed(id, e, "cannot record the outcome").await,
            Err(e) => self.panicked(id, e).await,
        }
    }

    async fn save(&self, meta: SpoolMeta) -> Option<Duration> {
        match self.store.update(&meta).await {
            Ok(()) => None,
            Err(e) => self.failed(meta.id, e, "cannot record results").await,
        }
    }

    /// After message `id`'s stage failed with `e` while `doing`: a busy or unreachable store
    /// may work later, so the message is tried again after a pause. Any other failure is the
    /// message's own (a record that does not decode, a conflicting write) and would come back
    /// at every try: the message is set aside for the moderator with the reason, so it is
    /// neither retried for ever nor in the way of the list's next post.
    async fn failed(&self, id: SpoolId, e: StoreError, doing: &str) -> Option<Duration> {
        if e.is_transient() {
            tracing::error!(id, error = %e, kind = ?e.kind(), "{doing}; will retry");
            return Some(Duration::from_secs(BACKOFF[0]));
        }
        let reason = format!("set aside: {doing}: {e}");
        self.set_aside(id, reason).await
    }

    /// A stage panicked over message `id`: it would at every try, so the message is set aside
    /// as after a permanent failure. A stage cancelled (the server stopping) is tried again.
    async fn panicked(&self, id: SpoolId, e: tokio::task::JoinError) -> Option<Duration> {
        match e.is_panic() {
            true => {
                self.set_aside(id, "set aside: processing it failed (a panic)".into())
                    .await
            }
            false => Some(Duration::from_secs(BACKOFF[0])),
        }
    }

    /// Holds message `id` for a person, with `reason` ([`Store::set_aside`]); a post also
    /// goes to its list's moderators.
    async fn set_aside(&self, id: SpoolId, reason: String) -> Option<Duration> {
        let held = match self.store.set_aside(id, &reason).await {
            Ok(held) => held,
            Err(e) => {
                tracing::error!(id, error = %e, reason = %reason, "cannot set the message aside; will retry");
                return Some(Duration::from_secs(BACKOFF[0]));
            }
        };
        // Nothing to tell for a message finished meanwhile, or one set aside in its own state.
        let meta = held.filter(|m| m.state == SpoolState::Held)?;
        let list = self.posted_to(&meta);
        tracing::error!(id, list = ?list.as_ref().map(|l| &l.config.address), reason = %reason, "processing failed for good; message held for the moderator");
        crate::base::metrics::post(PostOutcome::Held);
        let list = list?;
        match self.hold_for(meta, list, None).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::error!(id, error = %e, "cannot tell the moderators of the held message");
                None
            }
            Err(_) => None,
        }
    }
}

/// What a stage run on the blocking pool came to.
type Stage = Result<Result<(), StoreError>, tokio::task::JoinError>;

/// Counts the arrival verdicts for the metrics.
fn count_verdicts(v: &Verification) {
    use crate::base::metrics::{Method, auth_result};
    if let Some(spf) = &v.spf {
        auth_result(Method::Spf, spf.mail_from.as_str());
    }
    for d in &v.dkim {
        auth_result(Method::Dkim, d.verdict.as_str());
    }
    if v.dkim.is_empty() {
        auth_result(Method::Dkim, "none");
    }
    auth_result(Method::Dmarc, v.dmarc.verdict.as_str());
    auth_result(Method::Arc, v.arc.verdict.as_str());
}
