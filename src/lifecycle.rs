//! What a long-running service needs besides get and put: `prefill`, `clear` and `trim`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

use crate::error::{BoxError, CachePoolGeneratorError};
use crate::generation::Event;
use crate::global::Batch;
use crate::shared::Shared;
use crate::user_code::Eviction;

impl<T: Send + 'static> Shared<T> {
    /// Creates up to `count` elements into the global shard, as far as the budget allows;
    /// returns how many it created. On a generator failure or panic, the elements created so
    /// far stay and the budget not used is given back before the error or panic reaches the
    /// caller.
    pub(crate) fn prefill(&self, count: usize) -> Result<usize, CachePoolGeneratorError> {
        let units = self.budget.lease(count);
        let mut created = 0;
        let mut failure = None;
        while created < units && failure.is_none() {
            let mut elements = Vec::with_capacity(self.limits.batch.min(units - created));
            while elements.len() < elements.capacity() {
                match catch_unwind(AssertUnwindSafe(|| (self.hooks.generator)())) {
                    Ok(Ok(element)) => elements.push(element),
                    Ok(Err(e)) => failure = Some(Failure::Error(e)),
                    Err(panic) => failure = Some(Failure::Panic(panic)),
                }
                if failure.is_some() {
                    break;
                }
            }
            created += elements.len();
            for _ in 0..elements.len() {
                self.count(|s| &s.new);
                self.count(|s| &s.prefilled);
            }
            if !elements.is_empty() {
                self.spill(elements.into_iter());
            }
        }
        self.budget.release(units - created);
        match failure {
            None => Ok(created),
            Some(Failure::Error(e)) => Err(CachePoolGeneratorError::new(e)),
            Some(Failure::Panic(panic)) => resume_unwind(panic),
        }
    }

    /// Closes every idle element: those of the global shard and of the calling thread's list
    /// now, those of other threads' lists when they next use the pool or exit.
    pub(crate) fn clear(self: &Arc<Self>) {
        self.generations.advance(Event::Clear);
        self.drain_global(|_| true, Eviction::Cleared);
        self.catch_up_here();
    }

    /// Closes the idle elements no checkout has used since before the previous `trim()`.
    pub(crate) fn trim(self: &Arc<Self>) {
        let trims = self.generations.advance(Event::Trim);
        // A batch made in trim period p has sat through all of period p + 1 once period p + 2
        // starts.
        self.drain_global(|batch| batch.trims + 2 <= trims, Eviction::Trimmed);
        self.catch_up_here();
    }

    /// Catches the calling thread's own list up now, if it has one.
    fn catch_up_here(self: &Arc<Self>) {
        if self.locals.get().is_some()
            && let Some((_, stale)) = self.home()
        {
            drop(stale);
        }
    }

    /// Takes each batch now in the global shard once; closes those `stale` picks and puts the
    /// others back (behind any batch that arrives meanwhile).
    fn drain_global(&self, stale: impl Fn(&Batch<T>) -> bool, why: Eviction) {
        let mut closing = Vec::new();
        for _ in 0..self.global.batches() {
            let Some(batch) = self.global.pop() else {
                break;
            };
            if stale(&batch) {
                batch.elements.move_into(&mut closing);
            } else {
                self.global.push(batch);
            }
        }
        self.budget.release(closing.len());
        self.evict_and_raise(closing, why);
    }
}

/// Why a `prefill` stopped early.
enum Failure {
    Error(BoxError),
    Panic(Box<dyn Any + Send>),
}
