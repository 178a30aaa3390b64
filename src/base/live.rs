//! A value the running server may replace while readers hold on to it: configuration that a
//! reload swaps (lists, forwarding domains), read by every session and worker. A reader takes
//! a snapshot (`get`) and uses it to the end of its work, so one message never sees half of
//! an old configuration and half of a new one.

use std::sync::{Arc, RwLock};

/// A shared, replaceable value; clones share it.
pub struct Live<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Live(self.0.clone())
    }
}

impl<T: Default> Default for Live<T> {
    fn default() -> Self {
        Live::new(T::default())
    }
}

impl<T> Live<T> {
    /// A handle holding `value`.
    pub fn new(value: T) -> Self {
        Live(Arc::new(RwLock::new(Arc::new(value))))
    }

    /// The value now.
    pub fn get(&self) -> Arc<T> {
        // A writer that panicked left a whole value behind (the swap is one assignment).
        match self.0.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the value for every holder; readers with a snapshot keep theirs.
    pub fn set(&self, value: T) {
        let value = Arc::new(value);
        match self.0.write() {
            Ok(mut v) => *v = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}
