//! What a long-running service needs besides get and put: `prefill`, `clear` and `trim`.

use std::any::Any;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::error::{BoxError, CachePoolGeneratorError};
use crate::shared::Shared;
use crate::stored::Stored;
use crate::sync::Ordering::Relaxed;
use crate::user_code::Eviction;

impl<T: Send + 'static> Shared<T> {
    /// Creates up to `count` elements into the global shard, as far as the budget allows;
    /// returns how many it created. On a generator failure or panic, the elements created so
    /// far stay and the budget not used is given back before the error or panic reaches the
    /// caller.
    ///
    /// `weigh` weighs an element in a pool with a weigher (and closes it if it panics).
    pub(crate) fn prefill(
        &self,
        count: usize,
        weigh: &dyn Fn(*mut Stored<T>) -> usize,
    ) -> Result<usize, CachePoolGeneratorError> {
        let units = self.budget.lease(count);
        let (mut created, mut light) = (0, 0);
        let (mut elements, mut weights) = (Vec::new(), Vec::new());
        let mut failure = None;
        while created < units {
            let mut element = match catch_unwind(AssertUnwindSafe(|| (self.hooks.generator)())) {
                Ok(Ok(element)) => ManuallyDrop::new(Stored::new(element)),
                Ok(Err(e)) => {
                    failure = Some(Failure::Error(e));
                    break;
                }
                Err(panic) => {
                    failure = Some(Failure::Panic(panic));
                    break;
                }
            };
            created += 1;
            self.count(|s| &s.new);
            // `element` is initialised and nothing else uses it; if the weigher unwinds, it has
            // been closed, and the `break` below never touches it again.
            let weighing = || weigh(&mut *element);
            let weight = match self.budget.weight() {
                None => None,
                Some(_) => match catch_unwind(AssertUnwindSafe(weighing)) {
                    Ok(weight) => Some(weight),
                    Err(panic) => {
                        failure = Some(Failure::Panic(panic));
                        break;
                    }
                },
            };
            let element = ManuallyDrop::into_inner(element).into_inner();
            match weight {
                Some(weight) if weight > self.limits.light_weight => {
                    // A heavy element goes on the shelf, with a lease of its own, and the
                    // unit leased for it is given back below.
                    match self.shelve(element, weight) {
                        Ok(()) => {
                            self.count(|s| &s.prefilled);
                            self.add(|s| &s.weight_in, weight);
                        }
                        Err(element) => self.close(element),
                    }
                }
                _ => {
                    light += 1;
                    self.count(|s| &s.prefilled);
                    self.add(|s| &s.weight_in, weight.unwrap_or(0));
                    elements.push(element);
                    weights.extend(weight);
                    if elements.len() == self.limits.batch {
                        self.spill(elements.drain(..), std::mem::take(&mut weights));
                    }
                }
            }
        }
        if !elements.is_empty() {
            self.spill(elements.into_iter(), weights);
        }
        self.budget.release(units - light);
        match failure {
            None => Ok(created),
            Some(Failure::Error(e)) => Err(CachePoolGeneratorError::new(e)),
            Some(Failure::Panic(panic)) => resume_unwind(panic),
        }
    }

    /// Closes every idle element, in every thread's list and the global shard, before it
    /// returns.
    pub(crate) fn clear(&self) {
        let closing = self.take_idle_everywhere(|list| list.items.len(), |_stamp| true);
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
        let closing = self.take_idle_everywhere(|list| list.low_water, |stamp| stamp + 2 <= trims);
        self.evict_and_raise(closing, Eviction::Trimmed);
    }
}

/// Why a `prefill` stopped early.
enum Failure {
    Error(BoxError),
    Panic(Box<dyn Any + Send>),
}
