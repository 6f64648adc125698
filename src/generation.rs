//! Generations: how `clear()` and `trim()` reach lists that only their own thread may touch.
//!
//! A pool's generation counts its `clear()` and `trim()` calls. Each thread's list records the
//! generation it last caught up with; the hot paths compare the two and, on a difference, leave
//! the work to the slow path, which closes what the calls since then asked for: everything
//! after a `clear()`, the elements no checkout used for a whole generation after a `trim()`.
//! So another thread's list is cleared or trimmed at that thread's next use of the pool (or at
//! its exit), never by the thread calling `clear()` or `trim()`.

use std::sync::Mutex;

use std::sync::atomic::{AtomicU64, Ordering};

/// The pool's generation, padded to its own cache line: every hot path reads it, and only
/// `clear()` and `trim()` write it.
#[repr(align(128))]
pub(crate) struct Generations {
    /// The number of `clear()` and `trim()` calls so far.
    current: AtomicU64,
    /// The generation the last `clear()` started (0: never cleared).
    cleared_at: AtomicU64,
    /// Serialises the updates of `clear()` and `trim()` (rare calls), so that each generation
    /// has one writer.
    advancing: Mutex<()>,
}

/// What a list must do to catch up with the pool's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CatchUp {
    /// Nothing: the list is current.
    Current,
    /// Close every idle element (a `clear()` happened).
    Clear,
    /// Close the elements no checkout used since the list last caught up (a `trim()` happened).
    Trim,
}

impl Generations {
    pub(crate) fn new() -> Self {
        Generations {
            current: AtomicU64::new(0),
            cleared_at: AtomicU64::new(0),
            advancing: Mutex::new(()),
        }
    }

    /// The current generation, for the hot paths' equality check.
    ///
    /// `Relaxed` is enough: a use of the pool that happens after a `clear()` or `trim()`
    /// returned reads this generation or a later one (read-write coherence of one atomic), and
    /// the slow path re-reads it with `Acquire` before acting on it.
    #[inline]
    pub(crate) fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// The current generation and what a list last caught up at `seen` must do.
    pub(crate) fn catch_up(&self, seen: u64) -> (u64, CatchUp) {
        // Acquire pairs with the Release in `advance`, so a generation started by `clear()` is
        // never read without the `cleared_at` written before it.
        let current = self.current.load(Ordering::Acquire);
        let action = if current == seen {
            CatchUp::Current
        } else if self.cleared_at.load(Ordering::Relaxed) > seen {
            CatchUp::Clear
        } else {
            CatchUp::Trim
        };
        (current, action)
    }

    /// Starts the next generation, a `clear()` one if `clear`, and returns it.
    pub(crate) fn advance(&self, clear: bool) -> u64 {
        // Held only to keep each generation to one writer, never while user code runs. The
        // guarded data is `()`, so a poisoned lock has nothing to protect.
        let _one_at_a_time = self.advancing.lock().unwrap_or_else(|e| e.into_inner());
        let next = self.current.load(Ordering::Relaxed) + 1;
        if clear {
            self.cleared_at.store(next, Ordering::Relaxed);
        }
        self.current.store(next, Ordering::Release);
        next
    }
}
