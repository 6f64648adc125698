//! The test element: a unique id, the ledger it records into, and the knobs a test sets to
//! make the pool's callbacks refuse it or panic on it.

use std::fmt;
use std::sync::Arc;

use super::Ledger;

/// The test element: a unique id plus knobs a test sets before giving it back.
pub struct Tracked {
    pub(super) id: usize,
    pub(super) ledger: Arc<Ledger>,
    /// The reset hook refuses this element (the pool must close it).
    pub refuse: bool,
    /// The reset hook panics on this element.
    pub panic_in_reset: bool,
    /// The close callback panics after closing this element.
    pub panic_in_close: bool,
    /// The validator refuses this element at checkout (the pool must close it).
    pub invalid: bool,
    /// The validator panics on this element.
    pub panic_in_validate: bool,
    /// Scribbled on by users; the reset hook clears it, so a dirty element handed out means
    /// the hook was skipped.
    pub scratch: u64,
}

impl Tracked {
    pub fn id(&self) -> usize {
        self.id
    }

    /// The ledger this element records into.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tracked#{}", self.id)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.dropped(self.id);
    }
}
