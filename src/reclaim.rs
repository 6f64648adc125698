//! Reaching into other threads' lists: what `clear()` and `trim()` close there, the idle
//! elements a thread takes before it builds one, and the unused budget a thread takes before
//! it closes an element.
//!
//! Each goes through one [`Reclaim`]: every list it visits is taken over from its owner with
//! the handshake's two heavy barriers for all of them (see [`LocalShard`]), worked on while no
//! owner is in it, and handed back; what it takes out is closed or used only after that, since
//! closing runs user code, which may re-enter the pool.

use std::ptr;

use crate::local::{LocalList, LocalShard, Reclaim};
use crate::shared::Shared;
use crate::sync::Ordering::Relaxed;

impl<T: Send + 'static> Shared<T> {
    /// Takes over every list of the pool but `except`'s, in the pool's one slot order.
    pub(crate) fn reclaim_lists(&self, except: Option<&LocalShard<T>>) -> Reclaim<'_, T> {
        Reclaim::begin(
            self.locals
                .iter()
                .map(|shard| &**shard)
                .filter(|shard| except.is_none_or(|except| !ptr::eq(*shard, except))),
        )
    }

    /// Takes up to a batch of idle elements, with their units, from other threads' lists, the
    /// coldest of each first, for a thread whose list and the global shard are empty. Costs a
    /// heavy barrier and a lock per list, so it is tried only while the pool's statistics say
    /// some element is idle.
    ///
    /// The elements come back oldest first, with their weights in a pool with a weigher;
    /// each carries one unit of budget, which the caller adds to its lease with them.
    pub(crate) fn steal_idle(&self, home: &LocalShard<T>) -> (Vec<T>, Vec<usize>) {
        let (mut stolen, mut weights) = (Vec::new(), Vec::new());
        if self.stats().idle == 0 {
            return (stolen, weights);
        }
        let want = self.limits.batch;
        // A giver's few elements move to the global shard at its next put: not worth a
        // barrier, and taking them would only make it lease again.
        let keepers = self
            .locals
            .iter()
            .map(|shard| &**shard)
            .filter(|shard| !ptr::eq(*shard, home) && shard.keeps.load(Relaxed));
        Reclaim::begin(keepers).for_each(|list| {
            if !list.keeps_for_itself() {
                return;
            }
            let take = list.items.len().min(want - stolen.len());
            if take > 0 {
                let (taken, taken_weights) = list.take_oldest(take);
                stolen.extend(taken);
                weights.extend(taken_weights);
            }
        });
        (stolen, weights)
    }

    /// Takes every unit other threads hold beyond their idle elements back into the budget,
    /// for a `put` on `home` (the current thread's list, if it has one) that found the budget
    /// spent; whether it found any. Tried only while the pool's statistics say fewer than
    /// `pool_size` elements are idle, so a pool that is simply full pays a reading of its
    /// statistics and no barrier.
    pub(crate) fn take_unused_units(&self, home: Option<&LocalShard<T>>) -> bool {
        if self.stats().idle >= self.limits.pool_size {
            return false;
        }
        let mut units = 0;
        self.reclaim_lists(home).for_each(|list| {
            units += give_up_unused(list);
        });
        self.budget.release(units);
        units > 0
    }

    /// Takes out of every list what `pick` chooses to close (the oldest `pick(list)` elements),
    /// and out of the global shard the batches whose trim stamp `stale` chooses, all while
    /// every list is held, so that no element moves between a list and the global shard
    /// meanwhile; then the heavy elements whose stamp `stale` chooses. Gives back their units
    /// and weight, and the units each list holds beyond what it keeps. Returns the elements,
    /// for the caller to close once nothing is held.
    pub(crate) fn take_idle_everywhere(
        &self,
        pick: impl Fn(&LocalList<T>) -> usize,
        stale: impl Fn(u64) -> bool,
    ) -> Vec<T> {
        let mut closing = Vec::new();
        let (mut units, mut weight) = (0, 0);
        let mut lists = self.reclaim_lists(None);
        lists.for_each(|list| {
            let count = pick(list).min(list.items.len());
            let (taken, weights) = list.take_oldest(count);
            closing.extend(taken);
            weight += weights.iter().sum::<usize>();
            units += count + give_up_unused(list);
            list.low_water = list.items.len();
        });
        for _ in 0..self.global.batches() {
            let Some(batch) = self.global.pop() else {
                break;
            };
            if stale(batch.trims) {
                units += batch.elements.len();
                weight += batch.weights.iter().sum::<usize>();
                batch.elements.move_into(&mut closing);
            } else {
                self.global.push(batch);
            }
        }
        drop(lists);
        self.budget.release(units);
        for heavy in self.shelf.take_where(|heavy| stale(heavy.trims)) {
            self.budget.release_heavy(heavy.weight);
            weight += heavy.weight;
            closing.push(heavy.element);
        }
        self.add(|s| &s.weight_out, weight);
        closing
    }
}

/// Takes a list's units beyond its idle elements off its lease; returns how many.
fn give_up_unused<T>(list: &mut LocalList<T>) -> usize {
    let unused = list.unused_units();
    list.lease -= unused;
    unused
}
