//! What the engine counts, told to whoever embeds it.
//!
//! The engine knows nothing of the server's metrics: it calls an [`Observer`] at the few points
//! worth counting (a live DNS lookup, an ARC set added, an ARC override) and the embedding
//! program decides what to do with them. Without one installed every call is a no-op.
//!
//! The observer is process-wide, installed once, like a `log` logger: the counts it feeds are
//! process-wide too (one Prometheus registry), and sealers, trust decisions and resolvers are
//! built in many places, none of which should have to carry it.

use std::sync::OnceLock;
use std::time::Duration;

/// How a live DNS lookup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnsOutcome {
    /// The server answered with records.
    Answer,
    /// No such name, or no record of the asked type.
    NotFound,
    /// A timeout, SERVFAIL or transport error.
    Error,
}

/// Receives the engine's counts. Every method has a no-op default, so an implementation names
/// only what it counts, and a method added later breaks no embedder.
pub trait Observer: Send + Sync {
    /// A live DNS question was asked and answered (or not) after `took`.
    fn dns_lookup(&self, took: Duration, outcome: DnsOutcome) {
        let _ = (took, outcome);
    }

    /// An ARC set was added to a message ([`crate::arc::ArcSealer::seal`]).
    fn arc_sealed(&self) {}

    /// A trusted ARC chain stood in for a failed DMARC result
    /// ([`crate::trust::TrustDecision::annotate`]).
    fn arc_override(&self) {}
}

/// The observer used until one is installed.
struct Silent;

impl Observer for Silent {}

static INSTALLED: OnceLock<&'static dyn Observer> = OnceLock::new();

/// Installs the process's observer. Only the first call takes effect, so two servers started
/// in one process (tests do) share the first one's; returns whether this call installed it.
pub fn install(observer: &'static dyn Observer) -> bool {
    INSTALLED.set(observer).is_ok()
}

/// The installed observer, or one that ignores everything.
pub(crate) fn observer() -> &'static dyn Observer {
    INSTALLED.get().copied().unwrap_or(&Silent)
}
