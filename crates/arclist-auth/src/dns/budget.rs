//! A lookup budget: how many DNS questions one piece of work may ask, and until when.
//!
//! The chain viewer checks messages anyone pastes; every signature and every step of the DMARC
//! tree walk names a DNS name the paster chose. A budget turns "as many queries as the message
//! asks for" into "at most N, within T", and a question past either limit is answered at once
//! with a temporary error that says so, instead of being sent.

use super::{DnsError, Mx, Resolver};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The reason a question refused for want of budget carries; the viewer shows it.
pub const EXHAUSTED: &str = "lookup budget exhausted";

/// How many questions, and until when, one piece of work may ask. Shared by the clones of a
/// [`Resolver::budgeted`] resolver (the key lookups run side by side).
#[derive(Debug)]
pub struct LookupBudget {
    allowed: usize,
    left: AtomicUsize,
    refused: AtomicUsize,
    timed_out: AtomicUsize,
    time: Duration,
    deadline: tokio::time::Instant,
}

impl LookupBudget {
    /// At most `lookups` questions, answered within `time` from now.
    pub fn new(lookups: usize, time: Duration) -> Self {
        LookupBudget {
            allowed: lookups,
            left: AtomicUsize::new(lookups),
            refused: AtomicUsize::new(0),
            timed_out: AtomicUsize::new(0),
            time,
            deadline: tokio::time::Instant::now() + time,
        }
    }

    /// Questions the budget allowed.
    pub fn allowed(&self) -> usize {
        self.allowed
    }

    /// The time all questions together may take.
    pub fn time(&self) -> Duration {
        self.time
    }

    /// Questions asked (sent, or answered from the cache) so far.
    pub fn asked(&self) -> usize {
        self.allowed - self.left.load(Ordering::Relaxed)
    }

    /// Questions refused because the count ran out.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Questions cut short because the time ran out.
    pub fn timed_out(&self) -> usize {
        self.timed_out.load(Ordering::Relaxed)
    }

    /// Whether any question went unanswered for want of budget.
    pub fn exhausted(&self) -> bool {
        self.refused() > 0 || self.timed_out() > 0
    }

    /// Takes `n` questions from the budget, or refuses them all.
    fn spend(&self, n: usize, name: &str, rtype: &'static str) -> Result<(), DnsError> {
        let taken = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            });
        if taken.is_ok() && tokio::time::Instant::now() < self.deadline {
            return Ok(());
        }
        if taken.is_ok() {
            self.left.fetch_add(n, Ordering::Relaxed);
            self.timed_out.fetch_add(1, Ordering::Relaxed);
            return Err(self.out_of_time(name, rtype));
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(DnsError::Temporary {
            name: name.to_string(),
            rtype,
            reason: format!("{EXHAUSTED} ({} lookups allowed)", self.allowed),
        })
    }

    fn out_of_time(&self, name: &str, rtype: &'static str) -> DnsError {
        DnsError::Temporary {
            name: name.to_string(),
            rtype,
            reason: format!("{EXHAUSTED} ({} s of DNS allowed)", self.time.as_secs()),
        }
    }

    /// `work`, if it ends before the deadline.
    async fn within<T>(
        &self,
        name: &str,
        rtype: &'static str,
        work: impl Future<Output = Result<T, DnsError>>,
    ) -> Result<T, DnsError> {
        match tokio::time::timeout_at(self.deadline, work).await {
            Ok(answer) => answer,
            Err(_) => {
                self.timed_out.fetch_add(1, Ordering::Relaxed);
                Err(self.out_of_time(name, rtype))
            }
        }
    }
}

/// A resolver whose questions are counted against a budget.
pub struct Budgeted {
    pub(super) inner: Resolver,
    pub(super) budget: std::sync::Arc<LookupBudget>,
}

/// A boxed answer: the budgeted variant calls back into [`Resolver`], so its futures are
/// boxed to give the recursion a size.
type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, DnsError>> + Send + 'a>>;

impl Budgeted {
    pub(super) fn txt<'a>(&'a self, name: &'a str) -> Answer<'a, Vec<Vec<u8>>> {
        Box::pin(async move {
            self.budget.spend(1, name, "TXT")?;
            self.budget.within(name, "TXT", self.inner.txt(name)).await
        })
    }

    pub(super) fn mx<'a>(&'a self, name: &'a str) -> Answer<'a, Vec<Mx>> {
        Box::pin(async move {
            self.budget.spend(1, name, "MX")?;
            self.budget.within(name, "MX", self.inner.mx(name)).await
        })
    }

    pub(super) fn ptr(&self, ip: IpAddr) -> Answer<'_, Vec<String>> {
        Box::pin(async move {
            let name = super::reverse_name(ip);
            self.budget.spend(1, &name, "PTR")?;
            self.budget.within(&name, "PTR", self.inner.ptr(ip)).await
        })
    }

    /// An A and an AAAA question: two from the budget.
    pub(super) fn ips<'a>(&'a self, name: &'a str) -> Answer<'a, Vec<IpAddr>> {
        Box::pin(async move {
            self.budget.spend(2, name, "A/AAAA")?;
            self.budget
                .within(name, "A/AAAA", self.inner.ips(name))
                .await
        })
    }
}
