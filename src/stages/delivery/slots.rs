//! Connection slots per destination: how many connections one destination domain may see at
//! once (`[delivery] per_destination`), for one process and, on a shared store, for the whole
//! cluster.
//!
//! Each process bounds its own connections to a destination with a semaphore, as it always
//! has. On a store several nodes share, a connection also needs one of the destination's
//! slots in the database ([`Store::take_destination_slots`]): a lease like a recipient's claim,
//! renewed with the node's claims and lapsing when the node dies, so the receiver sees at most
//! `per_destination` connections from the whole cluster and a crashed node holds a
//! destination for one lease at most. Leases rather than each node taking a share of the
//! limit: a share is wrong while nodes join and leave (each would have to agree on who is
//! alive), rounds down to nothing when there are more nodes than slots, and leaves one busy
//! node at a fraction of the limit while the others are idle.
//!
//! A slot belongs to a connection, not a message: a connection kept for reuse
//! ([`super::pool::Pool`]) keeps its slot, so the next round to that destination on this node
//! takes the slot it left without asking the database, and a busy list costs one round trip
//! per connection opened, not one per message; connections opened together share the round
//! trip (one ask takes a slot for each task of this node waiting for one). A slot whose connection task ended is kept
//! idle for as long as the pool may keep the connection, then freed in the database for other
//! nodes. On a shared store the pool keeps a connection at most half a second
//! ([`reuse_for`]): enough for the next page of a fan-out on this node, while a node waiting
//! for the destination gets a slot within about a second of the holder running out of work
//! for it (kept for `connection_reuse_secs`, two nodes sharing a fan-out took turns seven
//! seconds apart).

use super::worker::Limits;
use crate::base::tasks::Tasks;
use crate::state::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Time on top of a pooled connection's life before an idle slot is freed: the pool closes an
/// expired connection when the worker next reaps ([`reap_every`]).
const REAP_SLACK: Duration = Duration::from_millis(500);
/// The longest a connection is kept for reuse on a shared store, whatever
/// `connection_reuse_secs` says: long enough for a fan-out's next page on this node, short
/// enough that another node waiting for the destination gets its slot within a second.
const SHARED_REUSE: Duration = Duration::from_millis(500);

/// How long an idle connection is kept for reuse: `reuse` (`connection_reuse_secs`), at most
/// [`SHARED_REUSE`] on a shared store, where a kept connection keeps its slot from the
/// other nodes.
pub fn reuse_for(store: &Store, reuse: Duration) -> Duration {
    match store.shared() {
        Some(_) => reuse.min(SHARED_REUSE),
        None => reuse,
    }
}

/// How often idle pooled connections are looked at: often on a shared store, whose idle
/// slots are freed soon after their connections close.
pub fn reap_every(store: &Store) -> Duration {
    match store.shared() {
        Some(_) => Duration::from_millis(200),
        None => Duration::from_secs(1),
    }
}
/// How often idle slots are looked at, to free those past their time.
const KEEPER_EVERY: Duration = Duration::from_millis(500);
/// The first wait before asking the database again for a slot, doubled up to [`MOST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(20);
/// The longest wait between two asks for a slot of a destination whose slots are all held.
const MOST_WAIT: Duration = Duration::from_secs(1);

/// The slots of every destination this process delivers to.
pub struct Slots {
    store: Arc<Store>,
    /// Slots per destination, over the whole cluster.
    limit: usize,
    /// How long a slot whose connection task ended is kept for the next one.
    keep: Duration,
    /// Whether slots are leased in a shared store (else the semaphore is the whole limit).
    shared: bool,
    /// Slots leased in the store, by destination.
    leased: Mutex<HashMap<String, Arc<Leased>>>,
    /// Whether the task freeing idle slots runs.
    keeper: AtomicBool,
}

/// One destination's leased slots on this node.
#[derive(Default)]
struct Leased {
    /// Slots held with no connection task, and until when they are kept.
    idle: Mutex<Vec<(u32, Instant)>>,
    /// Held by the one task asking the database for a slot, so a node's waiting tasks ask one
    /// at a time.
    asking: tokio::sync::Mutex<()>,
    /// Told when a slot turns idle, so an asking task takes it at once.
    parked: Notify,
    /// Tasks of this node waiting for a slot (asking, or queued to ask): an ask takes one for
    /// each, so the connections a fan-out opens to a destination together cost the database
    /// one statement, not one each.
    waiting: AtomicUsize,
}

/// Counts a task as waiting for a slot until it has one or gave up (dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Leased {
    /// An idle slot still within its time, now in use.
    fn take_idle(&self) -> Option<u32> {
        let mut idle = self.idle.lock().ok()?;
        let now = Instant::now();
        let at = idle.iter().position(|(_, until)| *until > now)?;
        Some(idle.swap_remove(at).0)
    }
}

impl Slots {
    /// Slots for the destinations of `store`'s queue, `limits.per_destination` each.
    pub fn new(store: &Arc<Store>, limits: &Limits) -> Arc<Self> {
        Arc::new(Slots {
            store: store.clone(),
            limit: limits.per_destination.max(1),
            keep: reuse_for(store, limits.reuse) + reap_every(store) + REAP_SLACK,
            shared: store.shared().is_some(),
            leased: Mutex::new(HashMap::new()),
            keeper: AtomicBool::new(false),
        })
    }

    /// Destination `domain`'s slots, bounded on this process by `local`.
    pub fn destination(self: &Arc<Self>, domain: &str, local: Arc<Semaphore>) -> Destination {
        Destination {
            local,
            cluster: self.shared.then(|| (self.clone(), Arc::from(domain))),
        }
    }

    /// This node's record of `destination`'s leased slots.
    fn leased(&self, destination: &str) -> Arc<Leased> {
        match self.leased.lock() {
            Ok(mut l) => l.entry(destination.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// A leased slot of `destination`: one this node left idle, or one taken in the store,
    /// waiting while all are held. Cancelled with the task waiting for it.
    async fn lease(self: &Arc<Self>, destination: &Arc<str>, tasks: &Tasks) -> Lease {
        self.start_keeper(tasks);
        let leased = self.leased(destination);
        let _waiting = Waiting::new(&leased.waiting);
        let _asking = leased.asking.lock().await;
        let (mut wait, mut told, mut waiting) = (FIRST_WAIT, false, false);
        let limit = u32::try_from(self.limit).unwrap_or(u32::MAX);
        let mut first = true;
        loop {
            if let Some(slot) = leased.take_idle() {
                return self.held(destination, slot);
            }
            if std::mem::take(&mut first) {
                // The connections a fan-out opens to this destination are spawned together:
                // once they have run up to here, this one ask takes a slot for each.
                tokio::task::yield_now().await;
                if let Some(slot) = leased.take_idle() {
                    return self.held(destination, slot);
                }
            }
            let want = u32::try_from(leased.waiting.load(Ordering::Relaxed)).unwrap_or(limit);
            let now = crate::auth::unix_now();
            let asked = self
                .store
                .take_destination_slots(destination, limit, want.clamp(1, limit), now)
                .await;
            match asked.as_deref().map(<[u32]>::split_first) {
                Ok(Some((&mine, others))) => {
                    // The others wait idle for the tasks queued behind this one (or are freed
                    // after their time, should those be gone meanwhile).
                    for &other in others {
                        self.park(destination, other);
                    }
                    return self.held(destination, mine);
                }
                Ok(None) if !waiting => {
                    waiting = true;
                    tracing::debug!(destination = %destination, limit, "every connection slot of this destination is held in the cluster; waiting for one");
                }
                Ok(None) => {}
                Err(e) if !told => {
                    told = true;
                    tracing::warn!(destination = %destination, error = %e, "cannot take a connection slot for this destination in the shared store; waiting");
                }
                Err(_) => {}
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = leased.parked.notified() => {}
            }
            wait = (wait * 2).min(MOST_WAIT);
        }
    }

    fn held(self: &Arc<Self>, destination: &Arc<str>, slot: u32) -> Lease {
        Lease {
            slots: self.clone(),
            destination: destination.clone(),
            slot,
        }
    }

    /// Keeps `slot` of `destination` idle for the next connection task, for as long as the
    /// pool may keep the connection it was used for.
    fn park(&self, destination: &str, slot: u32) {
        let leased = self.leased(destination);
        if let Ok(mut idle) = leased.idle.lock() {
            idle.push((slot, Instant::now() + self.keep));
        }
        leased.parked.notify_one();
    }

    /// Starts, once, the task that frees idle slots past their time.
    fn start_keeper(self: &Arc<Self>, tasks: &Tasks) {
        if self.keeper.swap(true, Ordering::Relaxed) {
            return;
        }
        let slots = self.clone();
        tasks.spawn(async move {
            loop {
                tokio::time::sleep(KEEPER_EVERY).await;
                slots.free_expired().await;
            }
        });
    }

    /// Frees in the store the idle slots past their time, and forgets destinations with none.
    async fn free_expired(&self) {
        let now = Instant::now();
        let mut expired: Vec<(String, u32)> = Vec::new();
        if let Ok(mut leased) = self.leased.lock() {
            for (destination, l) in leased.iter() {
                if let Ok(mut idle) = l.idle.lock() {
                    idle.retain(|(slot, until)| {
                        let keep = *until > now;
                        if !keep {
                            expired.push((destination.clone(), *slot));
                        }
                        keep
                    });
                }
            }
            // Nobody holds, waits for or keeps a slot of these.
            leased.retain(|_, l| {
                Arc::strong_count(l) > 1 || l.idle.lock().map(|i| !i.is_empty()).unwrap_or(true)
            });
        }
        if expired.is_empty() {
            return;
        }
        // One statement for all: a fan-out's connections end together.
        if let Err(e) = self.store.free_destination_slots(&expired).await {
            let destinations: Vec<&str> = expired.iter().map(|(d, _)| d.as_str()).collect();
            tracing::warn!(destinations = ?destinations, error = %e, "cannot free connection slots in the shared store; they lapse with their leases");
        }
    }
}

/// One destination's slots, as a connection task asks for one.
#[derive(Clone)]
pub struct Destination {
    /// This process's bound.
    local: Arc<Semaphore>,
    /// On a shared store, the cluster's slots and the destination's name.
    cluster: Option<(Arc<Slots>, Arc<str>)>,
}

impl Destination {
    /// Waits for a slot: this process's permit and, on a shared store, a leased slot. `None`
    /// when the semaphore was closed. `tasks` runs the freeing of idle slots.
    pub async fn acquire(&self, tasks: &Tasks) -> Option<Slot> {
        let permit = self.local.clone().acquire_owned().await.ok()?;
        let lease = match &self.cluster {
            Some((slots, destination)) => Some(slots.lease(destination, tasks).await),
            None => None,
        };
        Some(Slot {
            _lease: lease,
            _permit: permit,
        })
    }
}

/// A slot held for one connection task; dropped when the task ends.
pub struct Slot {
    // The lease is parked before the permit is released, so the next task of this process
    // finds it idle.
    _lease: Option<Lease>,
    _permit: OwnedSemaphorePermit,
}

/// A slot leased in the shared store, parked for reuse when dropped.
struct Lease {
    slots: Arc<Slots>,
    destination: Arc<str>,
    slot: u32,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slots.park(&self.destination, self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::RedbStore;

    #[test]
    fn an_idle_slot_is_taken_again_only_within_its_time() {
        let leased = Leased::default();
        let now = Instant::now();
        if let Ok(mut idle) = leased.idle.lock() {
            idle.push((3, now));
            idle.push((5, now + Duration::from_secs(60)));
        }
        assert_eq!(leased.take_idle(), Some(5));
        assert_eq!(leased.take_idle(), None, "slot 3's time is over");
    }

    #[tokio::test]
    async fn on_the_embedded_store_the_process_semaphore_is_the_whole_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbStore::open(&dir.path().join("store.redb")).expect("store");
        let limits = Limits {
            per_destination: 2,
            ..Limits::default()
        };
        let slots = Slots::new(&Arc::new(Store::from(store)), &limits);
        let local = Arc::new(Semaphore::new(limits.per_destination));
        let destination = slots.destination("fan.example", local.clone());
        let tasks = Tasks::new();
        let first = destination.acquire(&tasks).await.expect("a slot");
        let second = destination.acquire(&tasks).await.expect("a slot");
        assert!(
            first._lease.is_none() && second._lease.is_none(),
            "no lease"
        );
        assert_eq!(local.available_permits(), 0);
        drop(first);
        assert_eq!(local.available_permits(), 1);
        drop(second);
        assert!(
            !slots.keeper.load(Ordering::Relaxed),
            "nothing to free later"
        );
    }
}
