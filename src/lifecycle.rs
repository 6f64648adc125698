//! What a long-running service needs besides get and put: `prefill`, `clear` and `trim`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::error::{BoxError, CachePoolGeneratorError};
use crate::shared::Shared;
use crate::sync::Ordering::Relaxed;
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

    /// Closes every idle element, in every thread's list and the global shard, before it
    /// returns.
    pub(crate) fn clear(&self) {
        let closing = self.take_idle_everywhere(|list| list.items.len(), |_| true);
        self.evict_and_raise(closing, Eviction::Cleared);
    }

    /// Closes the idle elements no checkout has used since before the previous `trim()`, in
    /// every thread's list and the global shard, before it returns.
    pub(crate) fn trim(&self) {
        // The trim period that starts now; Relaxed, as for the stamps it is compared with.
        let trims = self.trims.fetch_add(1, Relaxed) + 1;
        // In a list, the elements below the low-water mark sat through the whole period that
        // ends now; a batch made in trim period p has sat through all of period p + 1 once
        // period p + 2 starts.
        let closing =
            self.take_idle_everywhere(|list| list.low_water, |batch| batch.trims + 2 <= trims);
        self.evict_and_raise(closing, Eviction::Trimmed);
    }
}

/// Why a `prefill` stopped early.
enum Failure {
    Error(BoxError),
    Panic(Box<dyn Any + Send>),
}
