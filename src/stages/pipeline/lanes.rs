//! The lane scheduler: which spooled message the pipeline takes next, so that nothing waits on
//! one sender.

use crate::state::store::{SpoolId, SpoolMeta};
use std::collections::{HashMap, HashSet, VecDeque};

/// A spooled message as read to choose its lane: its record and bytes, handed on to the pass
/// that processes it, so that one pass reads the message from the store once.
pub(super) type Spooled = (SpoolMeta, Vec<u8>);

/// Bytes of messages read for their lane that may wait in memory for their turn. A message
/// beyond it waits as its id alone and is read again when its turn comes: a backlog stays in
/// the spool, not in memory.
const READ_AHEAD_BYTES: usize = 32 << 20;

/// One queue of message ids per sender domain, taken in arrival order. A list's posts go one at
/// a time, since whether a post is a second copy of one already distributed (its Message-ID) is
/// decided before it is queued. Forwarded mail, which has no such check, is taken by up to
/// `width` workers: a bank's burst of statements goes through several at a time, yet a domain
/// whose DNS is silent holds up only its own mail and at most `width` of the pipeline's slots.
/// An id already waiting or being processed is not taken twice.
pub(super) struct Lanes {
    state: std::sync::Mutex<LaneState>,
    width: usize,
    /// Bytes of reads kept for waiting messages, at most.
    read_ahead: usize,
}

#[derive(Default)]
struct LaneState {
    lanes: HashMap<String, Lane>,
    /// Every id waiting in a lane or being processed.
    taken: HashSet<SpoolId>,
    /// What was read of waiting messages to choose their lane, until their turn.
    reads: HashMap<SpoolId, Spooled>,
    /// The bytes of `reads`.
    read_bytes: usize,
}

/// A sender domain's waiting messages and how many workers take from them.
struct Lane {
    waiting: VecDeque<SpoolId>,
    workers: usize,
    width: usize,
}

impl Lanes {
    /// Lanes of forwarded mail have at most `width` workers.
    pub(super) fn new(width: usize) -> Self {
        Self::with_read_ahead(width, READ_AHEAD_BYTES)
    }

    /// [`Lanes::new`], keeping at most `bytes` of reads for waiting messages.
    fn with_read_ahead(width: usize, bytes: usize) -> Self {
        Lanes {
            state: Default::default(),
            width: width.max(1),
            read_ahead: bytes,
        }
    }

    /// Appends `id` to `key`'s lane (of `width` workers when `wide`, else one), keeping `read`
    /// for its turn while the read-ahead bound allows; true when the lane needs one more
    /// worker. An id already taken is left out.
    pub(super) fn push(&self, key: &str, id: SpoolId, wide: bool, read: Option<Spooled>) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if !state.taken.insert(id) {
            return false;
        }
        if let Some(read) = read
            && state.read_bytes + read.1.len() <= self.read_ahead
        {
            state.read_bytes += read.1.len();
            state.reads.insert(id, read);
        }
        let width = if wide { self.width } else { 1 };
        let lane = state.lanes.entry(key.to_string()).or_insert_with(|| Lane {
            waiting: VecDeque::new(),
            workers: 0,
            width,
        });
        lane.waiting.push_back(id);
        if lane.workers < lane.width {
            lane.workers += 1;
            true
        } else {
            false
        }
    }

    /// The next id of `key`'s lane; `None` tells the worker to end (the lane closes with its
    /// last worker).
    pub(super) fn next(&self, key: &str) -> Option<SpoolId> {
        let mut state = self.state.lock().ok()?;
        let lane = state.lanes.get_mut(key)?;
        let next = lane.waiting.pop_front();
        if next.is_none() {
            lane.workers = lane.workers.saturating_sub(1);
            if lane.workers == 0 {
                state.lanes.remove(key);
            }
        }
        next
    }

    /// What was read of `id` to choose its lane, if it was kept: the pass about to process it
    /// need not read it again.
    pub(super) fn take_read(&self, id: SpoolId) -> Option<Spooled> {
        let mut state = self.state.lock().ok()?;
        let read = state.reads.remove(&id)?;
        state.read_bytes -= read.1.len();
        Some(read)
    }

    /// `id` was processed: it may be taken again (a retry, a released post).
    pub(super) fn done(&self, id: SpoolId) {
        if let Ok(mut state) = self.state.lock() {
            state.taken.remove(&id);
            if let Some(read) = state.reads.remove(&id) {
                state.read_bytes -= read.1.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Lanes, Spooled};
    use crate::state::store::{SpoolEnvelope, SpoolMeta, SpoolState};

    #[test]
    fn lanes_take_an_id_once_and_forwarded_mail_several_at_a_time() {
        let lanes = Lanes::new(2);
        // A list's lane: one worker however many wait.
        assert!(lanes.push("bank.test", 1, false, None));
        assert!(!lanes.push("bank.test", 2, false, None));
        // The same id again (picked up at start and fed by the listener) is left out.
        assert!(!lanes.push("bank.test", 1, false, None));
        // Forwarded mail: up to the width.
        assert!(lanes.push("forwarded from bank.test", 3, true, None));
        assert!(lanes.push("forwarded from bank.test", 4, true, None));
        assert!(!lanes.push("forwarded from bank.test", 5, true, None));
        assert!(!lanes.push("forwarded from bank.test", 3, true, None));
        assert_eq!(lanes.next("bank.test"), Some(1));
        lanes.done(1);
        // Processed, it may come back (a retry).
        assert!(
            !lanes.push("bank.test", 1, false, None),
            "the lane's worker takes it"
        );
        assert_eq!(lanes.next("bank.test"), Some(2));
        assert_eq!(lanes.next("bank.test"), Some(1));
        assert_eq!(
            lanes.next("bank.test"),
            None,
            "the lane closes with its worker"
        );
        assert!(
            lanes.push("bank.test", 6, false, None),
            "a new lane, a new worker"
        );
    }

    fn spooled(id: u64, size: usize) -> Spooled {
        let meta = SpoolMeta {
            id,
            envelope: SpoolEnvelope {
                mail_from: "a@bank.test".into(),
                rcpt_to: vec!["list@lists.example".into()],
                client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
                helo: "bank.test".into(),
                protocol: "ESMTP".into(),
                tls: None,
                received_at: 1,
                verdict: None,
                filter: None,
                over_quota: None,
            },
            state: SpoolState::Received,
            size,
            auth_results: None,
            attempts: 0,
            note: None,
            facts: Default::default(),
        };
        (meta, vec![b'x'; size])
    }

    #[test]
    fn a_read_made_to_choose_the_lane_is_handed_to_the_pass_once_and_bounded() {
        let lanes = Lanes::with_read_ahead(2, 100);
        assert!(lanes.push("bank.test", 1, false, Some(spooled(1, 60))));
        // Past the bound, a waiting message keeps only its id: it is read at its turn.
        assert!(!lanes.push("bank.test", 2, false, Some(spooled(2, 60))));
        assert!(!lanes.push("bank.test", 3, false, Some(spooled(3, 40))));
        assert_eq!(lanes.next("bank.test"), Some(1));
        let read = lanes.take_read(1).expect("kept for its pass");
        assert_eq!((read.0.id, read.1.len()), (1, 60));
        assert!(lanes.take_read(1).is_none(), "handed on once");
        assert_eq!(lanes.next("bank.test"), Some(2));
        assert!(lanes.take_read(2).is_none(), "it did not fit");
        // A message dropped without its turn (done first) frees its room.
        lanes.done(3);
        assert!(lanes.take_read(3).is_none());
        assert!(!lanes.push("bank.test", 4, false, Some(spooled(4, 100))));
        assert_eq!(lanes.take_read(4).map(|r| r.1.len()), Some(100));
    }
}
