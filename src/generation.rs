//! Generations: how `clear()`, `trim()` and requests for budget reach lists that only their own
//! thread may touch.
//!
//! A pool's generation counts its `clear()` and `trim()` calls and its requests for budget.
//! Each thread's list records the generation it last caught up with; the hot paths compare the
//! two and, on a difference, leave the work to the slow path, which does what the events since
//! then ask for: close everything after a `clear()`, close the elements no checkout used for a
//! whole generation after a `trim()`, and in every case give back the budget the list holds
//! beyond its idle elements. So another thread's list is cleared, trimmed or made to give up
//! its unused budget at that thread's next use of the pool (or at its exit), never by the
//! thread that asked.

use crate::sync::{AtomicU64, Mutex, Ordering};

/// The pool's generation (kept on cache lines of its own by the pool).
pub(crate) struct Generations {
    /// The number of `clear()` and `trim()` calls and budget requests so far.
    current: AtomicU64,
    /// The generation the last `clear()` started (0: never cleared).
    cleared_at: AtomicU64,
    /// The generation the last `trim()` started (0: never trimmed).
    trimmed_at: AtomicU64,
    /// The number of `trim()` calls so far: the clock that ages the global shard's batches.
    trims: AtomicU64,
    /// Serialises the updates (rare calls), so that each generation has one writer.
    advancing: Mutex<()>,
}

/// What starts a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// `clear()`.
    Clear,
    /// `trim()`.
    Trim,
    /// A thread found the budget spent: every list gives back the budget it is not using.
    BudgetRequest,
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
    /// Give back the budget the list does not use (only budget requests happened).
    Release,
}

impl Generations {
    /// Generation 0, nothing cleared or trimmed.
    pub(crate) fn new() -> Self {
        Generations {
            current: AtomicU64::new(0),
            cleared_at: AtomicU64::new(0),
            trimmed_at: AtomicU64::new(0),
            trims: AtomicU64::new(0),
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

    /// The number of `trim()` calls so far (the age stamp of a batch in the global shard).
    ///
    /// `Relaxed`: a stamp one trim too old or too young only moves a batch's trimming by one
    /// period, which `trim()`'s documentation allows for elements moving while it runs.
    pub(crate) fn trims(&self) -> u64 {
        self.trims.load(Ordering::Relaxed)
    }

    /// The current generation and what a list last caught up at `seen` must do.
    pub(crate) fn catch_up(&self, seen: u64) -> (u64, CatchUp) {
        // Acquire pairs with the Release in `advance`, so a generation is never read without
        // the `cleared_at` and `trimmed_at` written before it.
        let current = self.current.load(Ordering::Acquire);
        let action = if current == seen {
            CatchUp::Current
        } else if self.cleared_at.load(Ordering::Relaxed) > seen {
            CatchUp::Clear
        } else if self.trimmed_at.load(Ordering::Relaxed) > seen {
            CatchUp::Trim
        } else {
            CatchUp::Release
        };
        (current, action)
    }

    /// Starts the next generation for `event`, and returns the trim count after it.
    pub(crate) fn advance(&self, event: Event) -> u64 {
        // Held only to keep each generation to one writer, never while user code runs. The
        // guarded data is `()`, so a poisoned lock has nothing to protect.
        let _one_at_a_time = self.advancing.lock().unwrap_or_else(|e| e.into_inner());
        let next = self.current.load(Ordering::Relaxed) + 1;
        let mut trims = self.trims.load(Ordering::Relaxed);
        match event {
            Event::Clear => self.cleared_at.store(next, Ordering::Relaxed),
            Event::Trim => {
                self.trimmed_at.store(next, Ordering::Relaxed);
                trims += 1;
                self.trims.store(trims, Ordering::Relaxed);
            }
            Event::BudgetRequest => {}
        }
        self.current.store(next, Ordering::Release);
        trims
    }
}

/// Model-checks the generations against the budget: `scripts/loom.sh generation`.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::{CatchUp, Event, Generations};
    use crate::budget::Budget;

    /// A list that catches up while a `clear()` and a budget request start generations: a
    /// catch-up that reads the clear's generation, or a later one, always closes everything,
    /// so no element a `clear()` asked to close escapes it through a budget request's
    /// generation.
    #[test]
    fn a_catch_up_that_sees_a_clear_closes_everything() {
        loom::model(|| {
            let generations = Arc::new(Generations::new());
            let clear = {
                let g = Arc::clone(&generations);
                loom::thread::spawn(move || {
                    g.advance(Event::Clear);
                })
            };
            let request = {
                let g = Arc::clone(&generations);
                loom::thread::spawn(move || {
                    g.advance(Event::BudgetRequest);
                })
            };
            let (seen, action) = generations.catch_up(0);
            clear.join().unwrap();
            request.join().unwrap();
            let cleared_at = generations
                .cleared_at
                .load(loom::sync::atomic::Ordering::SeqCst);
            if seen >= cleared_at {
                assert_eq!(
                    action,
                    CatchUp::Clear,
                    "generation {seen}, cleared at {cleared_at}"
                );
            } else {
                assert!(matches!(action, CatchUp::Current | CatchUp::Release));
            }
        });
    }

    /// The budget request: a thread holding 2 units for 1 idle element, and a thread whose
    /// put found the budget spent and asks. If the holder's next use sees the request, it gives
    /// its unused unit back and the asker's next lease gets it; in every interleaving the units
    /// add up to the pool size.
    #[test]
    fn a_budget_request_brings_back_the_units_a_thread_does_not_use() {
        loom::model(|| {
            const POOL_SIZE: usize = 2;
            let budget = Arc::new(Budget::new(POOL_SIZE));
            let generations = Arc::new(Generations::new());
            assert_eq!(budget.lease(2), 2, "the holder's lease");
            let holder = {
                let (budget, generations) = (Arc::clone(&budget), Arc::clone(&generations));
                loom::thread::spawn(move || {
                    // The holder's next use: catch up, give back what one element does not use.
                    let (_, action) = generations.catch_up(0);
                    if action != CatchUp::Current {
                        budget.release(1);
                        return 1;
                    }
                    2
                })
            };
            let asker = {
                let (budget, generations) = (Arc::clone(&budget), Arc::clone(&generations));
                loom::thread::spawn(move || {
                    let first = budget.lease(1);
                    generations.advance(Event::BudgetRequest);
                    first
                })
            };
            let held = holder.join().unwrap();
            let first = asker.join().unwrap();
            assert_eq!(first, 0, "every unit was leased");
            let later = budget.lease(1);
            assert_eq!(held + later, POOL_SIZE, "a unit was created or lost");
            assert_eq!(later, POOL_SIZE - held);
        });
    }
}
