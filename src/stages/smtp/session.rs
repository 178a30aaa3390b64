//! One SMTP or LMTP session: commands in, replies out, messages into the spool.
//!
//! Replies are queued while pipelined commands are processed and written when the input
//! buffer runs dry, so a client that pipelines (RFC 2920) gets every reply, in order, in as
//! few writes as possible.

use super::body::Body;
use super::reply::{ehlo, line};
use crate::base::config::Limits;
use crate::base::metrics::{MessageRefusal, RecipientRefusal};
use crate::stages::directory::Directory;
use crate::stages::filter::Refusal as Refused;
use crate::state::store::{SpoolEnvelope, SpoolId, Store};
use smtp_proto::request::receiver::{BdatReceiver, DummyDataReceiver, RequestReceiver};
use smtp_proto::{Error as ParseError, Request};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

/// Everything sessions share.
pub struct SessionContext {
    /// Our host name for greetings.
    pub hostname: String,
    /// Protocol limits.
    pub limits: Limits,
    /// Which addresses we accept.
    pub directory: Directory,
    /// Screens mail to forwarding aliases before `250`.
    pub gate: Option<crate::stages::forward::gate::Gate>,
    /// The spam filter asked about list posts and forwarded mail before `250`, when one is
    /// configured (`[filter]`).
    pub filter: Option<crate::stages::filter::Filter>,
    /// Where messages go before `250`.
    pub store: Arc<Store>,
    /// STARTTLS, when configured.
    pub tls: Option<TlsAcceptor>,
    /// Tells the pipeline about each newly spooled message.
    pub spooled: mpsc::UnboundedSender<SpoolId>,
    /// Flips to true when the server is shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// Where message bodies over a MiB wait while they arrive, and the quota of those files
    /// ([`Body`]).
    pub spill: super::body::Spill,
    /// Relays whose XCLIENT and XFORWARD are believed ([`super::forwarded`]).
    pub trusted_relays: super::forwarded::Relays,
}

/// What the caller does after a session returns.
pub enum Next<IO> {
    /// Close the connection.
    Close,
    /// Upgrade to TLS and run a new session over it.
    StartTls(IO),
}

enum Phase {
    Command(RequestReceiver),
    Data(super::data::DataReader),
    Discard(DummyDataReceiver, bool),
    Bdat(BdatReceiver),
}

/// Why a received message cannot be taken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    TooBig,
    LineTooLong,
    /// The message could not be kept while it arrived (disk full, say): try again later.
    Storage,
    /// The files of the messages in transfer would pass `incoming_quota`: try again later.
    Quota,
}

/// Per-connection state.
pub struct Session<'a> {
    ctx: &'a SessionContext,
    peer: SocketAddr,
    lmtp: bool,
    tls: Option<String>,
    helo: Option<String>,
    esmtp: bool,
    mail_from: Option<String>,
    rcpts: Vec<String>,
    /// The kind of the first recipient (a list, or forwarding); every other must match.
    group: Option<String>,
    /// Whether a recipient is a list's posting address: the message must then have one author.
    posting: bool,
    /// The message so far.
    body: Body,
    /// What one read brought, before it joins `body`.
    chunk: Vec<u8>,
    refusal: Option<Refusal>,
    line_len: usize,
    errors: usize,
    out: Vec<u8>,
    /// Seconds the current DATA or BDAT transfer may still stall ([`Limits::data_stall_secs`]);
    /// `None` outside one.
    credit: Option<f64>,
    /// Time left for commands before the next message ([`Limits::command_phase_secs`]).
    command_left: Duration,
    /// When the command line now arriving began, if one has begun.
    line_started: Option<Instant>,
    /// For a trusted relay: what it said about its client (XCLIENT, XFORWARD).
    relay: Option<super::forwarded::Relay>,
}

enum Flow {
    Continue,
    Close,
    StartTls,
}

/// Which bound a read waits under, and so what the client is told when it runs out.
#[derive(Clone, Copy)]
enum Wait {
    /// Between commands: `command_timeout_secs`.
    Idle,
    /// Inside a command line: `command_line_secs`.
    Line,
    /// The commands before the next message: `command_phase_secs`.
    Phase,
    /// Message data: the transfer's stall credit.
    Data,
}

impl Wait {
    /// The reply text after the host name, and the log line.
    fn texts(self) -> (&'static str, &'static str) {
        match self {
            Wait::Idle => (
                "timeout exceeded",
                "client idle past command_timeout_secs; closed",
            ),
            Wait::Line => (
                "command line too slow",
                "command line not completed within command_line_secs; closed",
            ),
            Wait::Phase => (
                "too long without sending a message",
                "commands took longer than command_phase_secs without a message; closed",
            ),
            Wait::Data => (
                "data arriving too slowly",
                "message data stalled past its credit (min_data_rate, data_stall_secs); closed",
            ),
        }
    }
}

impl<'a> Session<'a> {
    /// A new session for a client at `peer`.
    pub fn new(ctx: &'a SessionContext, peer: SocketAddr, lmtp: bool, tls: Option<String>) -> Self {
        Session {
            ctx,
            peer,
            lmtp,
            tls,
            helo: None,
            esmtp: false,
            mail_from: None,
            rcpts: Vec::new(),
            group: None,
            posting: false,
            body: Body::new(&ctx.spill),
            chunk: Vec::new(),
            credit: None,
            command_left: Duration::from_secs(ctx.limits.command_phase_secs),
            line_started: None,
            relay: ctx
                .trusted_relays
                .contains(peer.ip())
                .then(super::forwarded::Relay::default),
            refusal: None,
            line_len: 0,
            errors: 0,
            out: Vec::with_capacity(512),
        }
    }

    fn reply(&mut self, code: u16, status: &str, text: &str) {
        self.out
            .extend_from_slice(line(code, status, text).as_bytes());
    }

    fn raw(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    fn error(&mut self, code: u16, status: &str, text: &str) -> Flow {
        self.reply(code, status, text);
        self.errors += 1;
        if self.errors >= self.ctx.limits.max_errors {
            let host = self.ctx.hostname.clone();
            self.reply(
                421,
                "4.7.0",
                &format!("{host} too many errors, closing connection"),
            );
            tracing::info!(peer = %self.peer, errors = self.errors, "closing session after too many errors");
            return Flow::Close;
        }
        Flow::Continue
    }

    fn reset(&mut self) {
        // XFORWARD describes one transaction.
        if let Some(relay) = &mut self.relay {
            relay.message = Default::default();
        }
        self.mail_from = None;
        self.rcpts.clear();
        self.group = None;
        self.posting = false;
        self.body = Body::new(&self.ctx.spill);
        self.refusal = None;
        self.line_len = 0;
        // The stall credit belongs to the transaction, not to one BDAT chunk: were it new for
        // each chunk, `BDAT 1`, a 29 s wait and one byte, again and again, would hold the
        // session for max_session_secs.
        self.credit = None;
    }

    /// Runs the session until the client quits, a limit closes it, or it asks for TLS.
    pub async fn run<IO: AsyncRead + AsyncWrite + Unpin>(
        mut self,
        mut io: IO,
        greet: bool,
    ) -> std::io::Result<Next<IO>> {
        if greet {
            crate::base::metrics::smtp_session();
            let host = self.ctx.hostname.clone();
            let banner = if self.lmtp { "LMTP" } else { "ESMTP" };
            // Greetings carry no enhanced status code (RFC 2034 §3).
            self.raw(&format!("220 {host} {banner} arclist\r\n"));
        }
        let mut phase = Phase::Command(RequestReceiver::default());
        let mut chunk = vec![0u8; 16 * 1024];
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            if !self.out.is_empty() {
                io.write_all(&self.out).await?;
                io.flush().await?;
                self.out.clear();
            }
            let in_command = matches!(phase, Phase::Command(_));
            let (limit, wait) = self.read_limit(in_command);
            let waiting = Instant::now();
            // Biased, shutdown first: a session between commands when the server stops gets
            // 421 even if its next command has already arrived (unbiased, select! picked one
            // of the two at random, and a client could slip in one more command).
            let n = tokio::select! {
                biased;
                // Only false -> true ever happens; a dropped sender means shutdown too.
                _ = shutdown.changed(), if in_command => {
                    let host = self.ctx.hostname.clone();
                    self.reply(421, "4.3.2", &format!("{host} shutting down, try again later"));
                    io.write_all(&self.out).await?;
                    return Ok(Next::Close);
                }
                read = tokio::time::timeout(limit, io.read(&mut chunk)) => match read {
                    Ok(Ok(0)) => {
                        if !in_command {
                            tracing::info!(peer = %self.peer, "client vanished mid-message; nothing was stored");
                        }
                        return Ok(Next::Close);
                    }
                    Ok(Ok(n)) if self.spent(in_command, waiting.elapsed(), n) => {
                        return self.expired(Wait::Data, &mut io).await;
                    }
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return self.expired(wait, &mut io).await,
                },
            };
            let mut bytes = chunk[..n].iter();
            while bytes.len() > 0 {
                match self.step(&mut phase, &mut bytes).await {
                    Flow::Continue => {}
                    Flow::Close => {
                        io.write_all(&self.out).await?;
                        io.flush().await?;
                        return Ok(Next::Close);
                    }
                    Flow::StartTls => {
                        // Anything pipelined after STARTTLS was sent in clear text and must be
                        // dropped (RFC 3207 §6), or an attacker could inject commands.
                        io.write_all(&self.out).await?;
                        io.flush().await?;
                        return Ok(Next::StartTls(io));
                    }
                }
            }
            self.track_line(matches!(phase, Phase::Command(_)), &chunk[..n]);
        }
    }

    /// Tells the client which bound ran out, and ends the session.
    async fn expired<IO: AsyncWrite + Unpin>(
        &mut self,
        wait: Wait,
        io: &mut IO,
    ) -> std::io::Result<Next<IO>> {
        let (text, log) = wait.texts();
        tracing::info!(peer = %self.peer, "{log}");
        let host = self.ctx.hostname.clone();
        self.reply(421, "4.4.2", &format!("{host} {text}, closing connection"));
        io.write_all(&self.out).await?;
        Ok(Next::Close)
    }

    /// How long the next read may wait, and under which bound. In DATA, the transfer's stall
    /// credit; between commands the shortest of the idle timeout, what is left of the command
    /// phase and, inside a line, of the line's time.
    fn read_limit(&self, in_command: bool) -> (Duration, Wait) {
        let l = &self.ctx.limits;
        if !in_command {
            let credit = self.credit.unwrap_or_else(|| self.stall_cap());
            return (Duration::from_secs_f64(credit.max(0.0)), Wait::Data);
        }
        let mut bound = (Duration::from_secs(l.command_timeout_secs), Wait::Idle);
        if self.command_left < bound.0 {
            bound = (self.command_left, Wait::Phase);
        }
        if let Some(start) = self.line_started {
            let left = Duration::from_secs(l.command_line_secs).saturating_sub(start.elapsed());
            if left < bound.0 {
                bound = (left, Wait::Line);
            }
        }
        bound
    }

    /// The most stall credit a transfer can hold, in seconds.
    fn stall_cap(&self) -> f64 {
        let l = &self.ctx.limits;
        l.data_stall_secs.min(l.data_timeout_secs).max(1) as f64
    }

    /// Books a read of `n` bytes after `waited`: command time comes off the command phase;
    /// message data spends its wait and earns `n / min_data_rate` seconds of stall credit, up
    /// to the cap (Postfix's deadline rule with a small cap, so neither a fast start nor a byte
    /// now and then buys a long stall). True when the credit is gone.
    fn spent(&mut self, in_command: bool, waited: Duration, n: usize) -> bool {
        if in_command {
            self.command_left = self.command_left.saturating_sub(waited);
            return false;
        }
        let cap = self.stall_cap();
        let rate = self.ctx.limits.min_data_rate.max(1) as f64;
        let credit = self.credit.get_or_insert(cap);
        *credit = (*credit - waited.as_secs_f64() + n as f64 / rate).min(cap);
        *credit <= 0.0
    }

    /// Notes whether a command line is left half-arrived after `bytes`: its time runs from
    /// the read that brought its first byte.
    fn track_line(&mut self, in_command: bool, bytes: &[u8]) {
        if !in_command || bytes.last() == Some(&b'\n') {
            self.line_started = None;
        } else if memchr::memchr(b'\n', bytes).is_some() {
            self.line_started = Some(Instant::now());
        } else {
            self.line_started.get_or_insert_with(Instant::now);
        }
    }

    async fn step(&mut self, phase: &mut Phase, bytes: &mut std::slice::Iter<'_, u8>) -> Flow {
        match phase {
            Phase::Command(receiver) => {
                let request = match &mut self.relay {
                    // A trusted relay's lines are read whole first, to catch XCLIENT and
                    // XFORWARD, which the command parser does not know.
                    Some(relay) => match relay.take_line(bytes) {
                        super::forwarded::Line::Partial => return Flow::Continue,
                        super::forwarded::Line::TooLong => {
                            return self.error(500, "5.5.2", "line too long");
                        }
                        super::forwarded::Line::Whole(line) => {
                            if let Some(ext) = super::forwarded::command(&line) {
                                return self.forwarded(ext);
                            }
                            receiver.ingest(&mut line.iter()).map(|r| r.into_owned())
                        }
                    },
                    None => receiver.ingest(bytes).map(|r| r.into_owned()),
                };
                let request = match request {
                    Ok(r) => r,
                    Err(ParseError::NeedsMoreData { .. }) => return Flow::Continue,
                    Err(e) => return self.parse_error(e),
                };
                self.command(request, phase)
            }
            Phase::Data(reader) => {
                // After a refusal the rest is read past, not kept.
                let keep = self.refusal.is_none();
                let mut chunk = std::mem::take(&mut self.chunk);
                chunk.clear();
                let done = reader.ingest(bytes, keep.then_some(&mut chunk));
                if keep {
                    self.take_in(&chunk);
                }
                self.chunk = chunk;
                if done {
                    *phase = Phase::Command(RequestReceiver::default());
                    return self.complete().await;
                }
                if keep && let Some(refusal) = self.oversize() {
                    self.refusal = Some(refusal);
                    self.body = Body::new(&self.ctx.spill);
                }
                Flow::Continue
            }
            Phase::Discard(receiver, last) => {
                if receiver.ingest(bytes) {
                    let last = *last;
                    *phase = Phase::Command(RequestReceiver::default());
                    if last {
                        return self.complete().await;
                    }
                    self.refused_reply();
                }
                Flow::Continue
            }
            Phase::Bdat(receiver) => {
                let mut chunk = std::mem::take(&mut self.chunk);
                chunk.clear();
                let done = receiver.ingest(bytes, &mut chunk);
                self.take_in(&chunk);
                self.chunk = chunk;
                if done {
                    let last = receiver.is_last;
                    *phase = Phase::Command(RequestReceiver::default());
                    if let Some(refusal) = self.oversize() {
                        self.refusal = Some(refusal);
                        self.body = Body::new(&self.ctx.spill);
                    }
                    if last {
                        return self.complete().await;
                    }
                    if self.refusal.is_some() {
                        self.refused_reply();
                    } else {
                        let n = self.body.len();
                        self.reply(250, "2.0.0", &format!("{n} octets received"));
                    }
                }
                Flow::Continue
            }
        }
    }

    /// Tracks the current line length across chunks, so a 10 MB line is caught early.
    /// Adds what one read brought to the message, with its line lengths checked.
    fn take_in(&mut self, new: &[u8]) {
        self.check_lines(new);
        if self.refusal.is_some() {
            // Refused already: the rest is read past, not kept.
            return;
        }
        match self.body.extend(new) {
            Ok(()) => {}
            Err(super::body::SpillError::Quota { limit }) => {
                tracing::warn!(peer = %self.peer, received = self.body.len(), incoming_quota = limit, dir = %self.ctx.spill.dir().display(), "messages in transfer fill incoming_quota; this one is refused with 452 and its file removed");
                self.refusal.get_or_insert(Refusal::Quota);
                // Its share goes back now, not when the client finally ends the data.
                self.body = Body::new(&self.ctx.spill);
            }
            Err(e) => {
                tracing::error!(peer = %self.peer, error = %e, dir = %self.ctx.spill.dir().display(), "cannot keep the incoming message; client told to retry");
                self.refusal.get_or_insert(Refusal::Storage);
            }
        }
    }

    fn check_lines(&mut self, new: &[u8]) {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', new) {
            self.line_len += nl - start;
            if self.line_len > self.ctx.limits.max_line_length {
                self.refusal.get_or_insert(Refusal::LineTooLong);
            }
            self.line_len = 0;
            start = nl + 1;
        }
        self.line_len += new.len() - start;
        if self.line_len > self.ctx.limits.max_line_length {
            self.refusal.get_or_insert(Refusal::LineTooLong);
        }
    }

    fn oversize(&self) -> Option<Refusal> {
        if self.body.len() > self.ctx.limits.max_message_size {
            return Some(Refusal::TooBig);
        }
        self.refusal
    }

    fn refused_reply(&mut self) {
        match self.refusal {
            Some(Refusal::TooBig) => {
                let max = self.ctx.limits.max_message_size;
                self.reply(
                    552,
                    "5.3.4",
                    &format!("message exceeds the {max} byte limit"),
                );
            }
            Some(Refusal::Storage) => {
                self.reply(451, "4.3.0", "temporary storage failure, try again later");
            }
            Some(Refusal::Quota) => {
                self.reply(
                    452,
                    "4.3.1",
                    "insufficient system storage for messages in transfer, try again later",
                );
            }
            Some(Refusal::LineTooLong) => {
                let max = self.ctx.limits.max_line_length;
                self.reply(
                    554,
                    "5.6.0",
                    &format!("message has a line longer than {max} bytes"),
                );
            }
            None => {}
        }
    }

    async fn complete(&mut self) -> Flow {
        let count = if self.lmtp { self.rcpts.len() } else { 1 };
        let message = match self.checked_message(count) {
            Ok(m) => m,
            Err(flow) => return flow,
        };
        let mut envelope = self.envelope();
        let size = message.len();
        if let Some(gate) = &self.ctx.gate {
            let sender = crate::auth::Envelope {
                ip: envelope.client_ip,
                helo: envelope.helo.clone(),
                mail_from: envelope.mail_from.clone(),
            };
            let (refusal, verdict) = gate.screen(&message, &sender, &self.rcpts).await;
            envelope.verdict = verdict.map(Box::new);
            if let Some(r) = refusal {
                tracing::info!(peer = %self.peer, code = r.code, reason = %r.text, "forwarding refused");
                crate::base::metrics::message_refused(if r.code < 500 {
                    MessageRefusal::ForwardingTemporary
                } else {
                    MessageRefusal::ForwardingPolicy
                });
                return self.refuse(count, r.code, r.status, &r.text);
            }
        }
        let name = self.relay.as_ref().and_then(|r| r.client().name);
        let group = self.group.as_deref().unwrap_or_default();
        let target = super::screen::Target {
            group,
            posting: self.posting,
            list: self.ctx.directory.screen(group),
            hostname: name.as_deref(),
        };
        let max_received = self.ctx.limits.max_received;
        let filter = self.ctx.filter.as_ref();
        if let Some(r) =
            super::screen::screen(filter, max_received, &message, &mut envelope, &target).await
        {
            tracing::info!(peer = %self.peer, code = r.code, reason = %r.text, "message refused before 250");
            return self.refuse(count, r.code, r.status, &r.text);
        }
        let list = target.list.as_ref();
        if let Some(r) = self.over_quota(&message, &mut envelope, list).await {
            crate::base::metrics::message_refused(MessageRefusal::Quota);
            return self.refuse(count, r.code, r.status, &r.text);
        }
        match self.ctx.store.spool(envelope, message).await {
            Ok(id) => {
                tracing::info!(peer = %self.peer, id, size, rcpts = self.rcpts.len(), "message spooled");
                crate::base::metrics::message_spooled();
                let _ = self.ctx.spooled.send(id);
                for _ in 0..count {
                    self.reply(250, "2.0.0", &format!("Ok: queued as {id}"));
                }
                // A client that delivers gets its command time again.
                self.command_left = Duration::from_secs(self.ctx.limits.command_phase_secs);
            }
            Err(e) => {
                tracing::error!(peer = %self.peer, error = %e, "cannot spool message; client told to retry");
                crate::base::metrics::message_refused(MessageRefusal::Storage);
                let text = "temporary storage failure, try again later";
                return self.refuse(count, 451, "4.3.0", text);
            }
        }
        self.reset();
        Flow::Continue
    }

    /// Counts the message against the quotas (`docs/filtering.md`): the refusal when the
    /// client or, for a post, a list quota says no. A member's post over a list quota is taken
    /// and marked in `envelope`, for the list to hold with the reason. A store that cannot
    /// count lets the message through: quotas guard against floods, and the spool right after
    /// answers `451` if the store is truly away.
    /// `list` is what the directory says of the list posted to (the screen's own lookup).
    async fn over_quota(
        &self,
        message: &[u8],
        envelope: &mut SpoolEnvelope,
        list: Option<&crate::stages::directory::ListScreen>,
    ) -> Option<Refused> {
        use crate::stages::filter::quotas;
        let (store, now) = (&self.ctx.store, crate::auth::unix_now());
        let per_hour = self.ctx.limits.max_messages_per_client_per_hour;
        match quotas::count_client(store, envelope.client_ip, per_hour, now).await {
            Ok(Some(r)) => {
                tracing::info!(peer = %self.peer, client = %envelope.client_ip, reason = %r.text, "refused: over the client's quota");
                return Some(r);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(client = %envelope.client_ip, error = %e, "cannot count the client's messages; quota not applied")
            }
        }
        let group = self.group.as_deref()?;
        if let Some(domain) = group.strip_prefix("forward:") {
            let per_hour = self.ctx.directory.forward_quota(domain);
            let sender = envelope.mail_from.to_ascii_lowercase();
            return match quotas::count_forwarded(store, domain, &sender, per_hour, now).await {
                Ok(refusal) => refusal,
                Err(e) => {
                    tracing::error!(%domain, error = %e, "cannot count forwarded messages; quota not applied");
                    None
                }
            };
        }
        if !self.posting {
            return None;
        }
        let list = list?;
        let sender = crate::auth::dmarc::single_author(message)
            .map(|(_, address)| address)
            .unwrap_or_else(|_| envelope.mail_from.clone())
            .to_ascii_lowercase();
        let why = match quotas::count_post(store, &list.address, &sender, list.quota, now).await {
            Ok(why) => why?,
            Err(e) => {
                tracing::error!(list = %list.address, error = %e, "cannot count the list's posts; quota not applied");
                return None;
            }
        };
        let member = !sender.is_empty()
            && store
                .is_member(&list.address, &sender)
                .await
                .unwrap_or(false);
        tracing::info!(peer = %self.peer, list = %list.address, %sender, member, reason = %why, "over a list quota");
        if member {
            envelope.over_quota = Some(why);
            return None;
        }
        Some(Refused {
            code: 452,
            status: "4.7.1",
            text: format!("{why}; try again later"),
        })
    }

    /// The complete message, or the refusal already answered (`count` replies, for LMTP one
    /// per recipient): over a limit, unreadable, malformed, or a post without one author.
    fn checked_message(&mut self, count: usize) -> Result<Vec<u8>, Flow> {
        let taken = match self.refusal {
            Some(_) => None,
            None => match self.body.take() {
                Ok(message) => Some(message),
                Err(e) => {
                    tracing::error!(peer = %self.peer, error = %e, "cannot read the incoming message back; client told to retry");
                    self.refusal = Some(Refusal::Storage);
                    None
                }
            },
        };
        let Some(message) = taken else {
            for _ in 0..count {
                self.refused_reply();
            }
            tracing::info!(peer = %self.peer, "message refused: over a limit, or not kept");
            crate::base::metrics::message_refused(MessageRefusal::Limits);
            self.reset();
            return Err(Flow::Continue);
        };
        if let Some((code, status, why)) = malformed(&message, &self.ctx.limits) {
            tracing::info!(peer = %self.peer, reason = %why, "message refused");
            crate::base::metrics::message_refused(MessageRefusal::Malformed);
            return Err(self.refuse(count, code, status, &why));
        }
        if self.posting
            && let Err(why) = crate::auth::dmarc::single_author(&message)
        {
            // Who posted decides membership, DMARC and the From rewrite: a message with no
            // author, or several, could pass as a member and launder a spoof.
            tracing::info!(peer = %self.peer, reason = %why, "post refused: not exactly one author");
            crate::base::metrics::message_refused(MessageRefusal::Author);
            let text = format!(
                "{why}: a post needs exactly one From field with one address (RFC 5322 3.6.2)"
            );
            return Err(self.refuse(count, 550, "5.6.0", &text));
        }
        Ok(message)
    }

    /// Answers the message `count` times with `code` and starts a new transaction.
    fn refuse(&mut self, count: usize, code: u16, status: &str, text: &str) -> Flow {
        for _ in 0..count {
            self.reply(code, status, text);
        }
        self.reset();
        Flow::Continue
    }

    /// XCLIENT or XFORWARD from a trusted relay.
    fn forwarded(&mut self, command: super::forwarded::Command) -> Flow {
        use super::forwarded::Command;
        let Some(relay) = self.relay.as_mut().filter(|r| r.trusted) else {
            return self.error(550, "5.7.0", "not authorized to forward client information");
        };
        match command {
            Command::Xclient(client) => {
                tracing::info!(peer = %self.peer, client = ?client.addr, helo = ?client.helo, "XCLIENT");
                // From now on the session speaks for that client: no more XCLIENT or XFORWARD
                // unless it is a trusted relay too.
                relay.trusted = client
                    .addr
                    .is_some_and(|ip| self.ctx.trusted_relays.contains(ip));
                relay.set_session(client);
                // The session starts over, as for a new connection from that client.
                self.reset();
                self.helo = None;
                self.esmtp = false;
                let host = self.ctx.hostname.clone();
                let banner = if self.lmtp { "LMTP" } else { "ESMTP" };
                self.raw(&format!("220 {host} {banner} arclist\r\n"));
            }
            Command::Xforward(client) => {
                relay.set_message(client);
                self.reply(250, "2.0.0", "Ok");
            }
            Command::Bad(why) => return self.error(501, "5.5.4", &why),
        }
        Flow::Continue
    }

    /// The envelope as the session saw it, for the spool: with a trusted relay's client in
    /// place of the relay.
    fn envelope(&self) -> SpoolEnvelope {
        let forwarded = self.relay.as_ref().map(|r| r.client()).unwrap_or_default();
        SpoolEnvelope {
            mail_from: self.mail_from.clone().unwrap_or_default(),
            rcpt_to: self.rcpts.clone(),
            client_ip: forwarded.addr.unwrap_or(self.peer.ip()),
            // A forwarded client without a forwarded HELO has none we know: never the relay's.
            helo: match (forwarded.addr, forwarded.helo) {
                (_, Some(helo)) => helo,
                (Some(_), None) => String::new(),
                (None, None) => self.helo.clone().unwrap_or_default(),
            },
            protocol: match (self.lmtp, self.esmtp, self.tls.is_some()) {
                (true, _, _) => "LMTP",
                (false, true, true) => "ESMTPS",
                (false, true, false) => "ESMTP",
                (false, false, _) => "SMTP",
            }
            .to_string(),
            tls: self.tls.clone(),
            received_at: crate::auth::unix_now(),
            verdict: None,
            filter: None,
            over_quota: None,
        }
    }

    fn parse_error(&mut self, e: ParseError) -> Flow {
        match e {
            ParseError::UnknownCommand => self.error(500, "5.5.1", "command not recognized"),
            ParseError::InvalidSenderAddress => {
                self.error(501, "5.1.7", "bad sender address syntax")
            }
            ParseError::InvalidRecipientAddress => {
                self.error(501, "5.1.3", "bad recipient address syntax")
            }
            ParseError::SyntaxError { syntax } => {
                self.error(501, "5.5.4", &format!("syntax: {syntax}"))
            }
            ParseError::InvalidParameter { param } => {
                self.error(501, "5.5.4", &format!("invalid parameter {param}"))
            }
            ParseError::UnsupportedParameter { param } => {
                let param: String = param
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(64)
                    .collect();
                self.error(555, "5.5.4", &format!("unsupported parameter {param}"))
            }
            ParseError::ResponseTooLong => self.error(500, "5.5.2", "line too long"),
            ParseError::NeedsMoreData { .. } | ParseError::InvalidResponse { .. } => Flow::Continue,
        }
    }

    fn command(&mut self, request: Request<String>, phase: &mut Phase) -> Flow {
        match request {
            Request::Ehlo { .. } | Request::Helo { .. } if self.lmtp => {
                self.error(500, "5.5.1", "this is LMTP: use LHLO")
            }
            Request::Lhlo { .. } if !self.lmtp => {
                self.error(500, "5.5.1", "command not recognized")
            }
            Request::Ehlo { host } | Request::Lhlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::Mail { from } => self.mail(from.address, from.size),
            Request::Rcpt { to } => self.rcpt(&to.address),
            Request::Data => self.data(phase),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last, phase),
            Request::Rset => {
                self.reset();
                self.reply(250, "2.0.0", "Ok");
                Flow::Continue
            }
            Request::Noop { .. } => {
                self.reply(250, "2.0.0", "Ok");
                Flow::Continue
            }
            Request::Quit => {
                let text = format!("{} closing connection", self.ctx.hostname);
                self.reply(221, "2.0.0", &text);
                Flow::Close
            }
            Request::Vrfy { .. } => {
                self.reply(252, "2.5.0", "cannot verify, but will try delivery");
                Flow::Continue
            }
            Request::Help { .. } => {
                self.reply(
                    214,
                    "2.0.0",
                    "arclist: see https://www.rfc-editor.org/rfc/rfc5321",
                );
                Flow::Continue
            }
            Request::StartTls => self.starttls(),
            Request::Auth { .. } => self.error(
                502,
                "5.5.1",
                "AUTH not offered: arclist accepts only mail for its lists",
            ),
            _ => self.error(502, "5.5.1", "command not implemented"),
        }
    }

    /// EHLO or LHLO (`esmtp`), or HELO: a new session state, and what we offer.
    fn hello(&mut self, name: String, esmtp: bool) -> Flow {
        self.reset();
        self.helo = Some(name);
        self.esmtp = esmtp;
        let host = &self.ctx.hostname;
        let text = if esmtp {
            let offer_tls = self.ctx.tls.is_some() && self.tls.is_none();
            ehlo(
                host,
                &self.peer.ip().to_string(),
                self.ctx.limits.max_message_size,
                offer_tls,
                self.relay.as_ref().is_some_and(|r| r.trusted),
            )
        } else {
            format!("250 {host}\r\n")
        };
        self.raw(&text);
        Flow::Continue
    }

    /// MAIL FROM, with the size the client declared.
    fn mail(&mut self, from: String, size: usize) -> Flow {
        if self.helo.is_none() {
            return self.error(503, "5.5.1", "send EHLO first");
        }
        if self.mail_from.is_some() {
            return self.error(503, "5.5.1", "nested MAIL command");
        }
        let max = self.ctx.limits.max_message_size;
        if size > max {
            return self.error(
                552,
                "5.3.4",
                &format!("message size exceeds the {max} byte limit"),
            );
        }
        self.mail_from = Some(from);
        self.reply(250, "2.1.0", "Ok");
        Flow::Continue
    }

    /// RCPT TO: only addresses arclist serves, all of one list or forwarding domain.
    fn rcpt(&mut self, address: &str) -> Flow {
        if self.mail_from.is_none() {
            return self.error(503, "5.5.1", "send MAIL first");
        }
        let max = self.ctx.limits.max_recipients;
        if self.rcpts.len() >= max {
            let text = format!("too many recipients: at most {max} per message (max_recipients)");
            return self.error(452, "4.5.3", &text);
        }
        // smtp-proto hands `RCPT TO:<postmaster>` over as an empty address (and `<>`, which is
        // no valid recipient, the same way): both go to the postmaster.
        let address = if address.is_empty() {
            "postmaster"
        } else {
            address
        };
        match self.ctx.directory.lookup(address) {
            Ok(r) if self.group.as_ref().is_some_and(|g| *g != r.list) => {
                // One list (or forwarding) per message keeps each message's outcome
                // simple; the client sends this recipient again in its own transaction.
                self.reply(
                    452,
                    "4.5.3",
                    "one list or forwarding domain per message; send this recipient separately",
                );
                Flow::Continue
            }
            // An SRS address is where bounces of forwarded mail come back (null sender, RFC
            // 5321 §4.5.5; auto-replies too, RFC 3834 §3.3): anything else to it would be
            // relayed, unsealed, to whoever the address decodes to.
            Ok(r)
                if matches!(r.role, crate::stages::directory::Role::SrsReturn(_))
                    && self.mail_from.as_deref().is_some_and(|f| !f.is_empty()) =>
            {
                tracing::info!(peer = %self.peer, rcpt = %address, "refused: an SRS address takes only bounces");
                crate::base::metrics::recipient_refused(RecipientRefusal::SrsNotABounce);
                self.error(
                    550,
                    "5.7.1",
                    "this address takes only bounces (a null envelope sender)",
                )
            }
            Ok(r) => {
                self.posting |= r.role == crate::stages::directory::Role::Post;
                self.group = Some(r.list);
                self.rcpts.push(address.to_ascii_lowercase());
                self.reply(250, "2.1.5", "Ok");
                Flow::Continue
            }
            Err(Some(why)) => {
                tracing::info!(peer = %self.peer, rcpt = %address, reason = %why, "refused SRS address");
                crate::base::metrics::recipient_refused(RecipientRefusal::Srs);
                self.error(550, "5.1.1", &why)
            }
            Err(None) => {
                tracing::info!(peer = %self.peer, rcpt = %address, "refused recipient we do not serve");
                crate::base::metrics::recipient_refused(RecipientRefusal::NotServed);
                self.error(
                    550,
                    "5.1.1",
                    "no such list or address here; arclist does not relay",
                )
            }
        }
    }

    /// DATA: the message follows, up to CRLF.CRLF.
    fn data(&mut self, phase: &mut Phase) -> Flow {
        if self.mail_from.is_none() {
            return self.error(503, "5.5.1", "send MAIL first");
        }
        if self.rcpts.is_empty() {
            return self.error(554, "5.5.1", "no valid recipients");
        }
        if !self.body.is_empty() {
            return self.error(503, "5.5.1", "BDAT in progress");
        }
        self.raw("354 End data with <CR><LF>.<CR><LF>\r\n");
        *phase = Phase::Data(super::data::DataReader::new());
        Flow::Continue
    }

    /// BDAT (RFC 3030): a chunk of `chunk_size` bytes follows, read past even when refused.
    fn bdat(&mut self, chunk_size: usize, is_last: bool, phase: &mut Phase) -> Flow {
        let usable = self.mail_from.is_some() && !self.rcpts.is_empty();
        if !usable
            || self.refusal.is_some()
            || self.body.len().saturating_add(chunk_size) > self.ctx.limits.max_message_size
        {
            if usable && self.refusal.is_none() {
                self.refusal = Some(Refusal::TooBig);
            }
            if !usable {
                // The chunk's bytes must still be read past; then the error.
                *phase = Phase::Discard(DummyDataReceiver::new_bdat(chunk_size), false);
                return self.error(503, "5.5.1", "send MAIL and RCPT first");
            }
            self.body = Body::new(&self.ctx.spill);
            *phase = Phase::Discard(DummyDataReceiver::new_bdat(chunk_size), is_last);
            return Flow::Continue;
        }
        *phase = Phase::Bdat(BdatReceiver::new(chunk_size, is_last));
        Flow::Continue
    }

    /// STARTTLS, when a certificate is configured and TLS is not already on.
    fn starttls(&mut self) -> Flow {
        if self.tls.is_some() {
            return self.error(503, "5.5.1", "TLS already active");
        }
        if self.ctx.tls.is_none() {
            return self.error(502, "5.5.1", "STARTTLS not available");
        }
        self.reply(220, "2.0.0", "ready to start TLS");
        Flow::StartTls
    }
}

/// Why a complete message cannot be taken as it is, if it cannot (code, status, text): empty;
/// with a bare CR or LF, which other servers read as line ends where we did not (SMTP
/// smuggling); or with a header section over the limits, checked before anything parses it.
fn malformed(
    message: &[u8],
    limits: &crate::base::config::Limits,
) -> Option<(u16, &'static str, String)> {
    if message.is_empty() {
        return Some((550, "5.6.0", "empty message".into()));
    }
    if super::data::has_bare_newline(message) {
        let why = "message has a bare CR or LF; lines must end with CRLF (RFC 5321 2.3.8)";
        return Some((550, "5.6.0", why.into()));
    }
    // The chain viewer holds a pasted message to the same check.
    crate::auth::message::header_over_limits(
        message,
        limits.max_header_fields,
        limits.max_header_bytes,
    )
    .map(|over| (552, "5.3.4", over.to_string()))
}
