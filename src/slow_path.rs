//! Every get and put the hot path does not serve: a thread's first use of the pool, a list a
//! reclaimer has been at, an empty list, a full lease, a thread without a list, and the flush
//! of a thread's list when it exits.
//!
//! Elements and budget move here, between a thread's list, the global shard and the shared
//! budget, in batches, and from other threads' lists when neither has what a thread needs
//! (see [`crate::reclaim`]); `docs/design.md` explains where a returned element goes.

use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};

use crossbeam_utils::CachePadded;

use crate::error::CachePoolGeneratorError;
use crate::global::{Batch, Elements};
use crate::local::{LocalList, LocalShard};
use crate::shared::{Limits, Shared};
use crate::shelf::Shelved;
use crate::stored::Stored;
use crate::sync::Ordering::Relaxed;
use crate::thread_exit::{self, FlushOnExit};
use crate::unwind;

/// The most elements the list of a thread that gives back more than it takes holds before
/// they move to the global shard, and so the size of the batches it moves them in.
///
/// Small, because those elements are idle where no thread will take them: a pipeline with `c`
/// consumers holds at most `c * GIVER_BATCH` elements beyond those in flight. Each batch costs
/// one channel send and one lease on the consumer's side, one receive and one release on the
/// producer's; four elements share them.
pub(crate) const GIVER_BATCH: usize = 4;

/// How many units of budget a thread that gives back more than it takes leases at once, and
/// how many unused units a thread whose list ran dry keeps before it gives them back, at most
/// (never more than a batch): the budget's shared counter is written once per this many
/// elements that cross threads.
pub(crate) const UNITS_AT_ONCE: usize = 16;

/// Where a checked-out idle element came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    ThisThread,
    GlobalShard,
    OtherThread,
}

impl<T: Send + 'static> Shared<T> {
    /// The current thread's shard, registered for flushing at thread exit; `None` when this
    /// thread must not cache elements in a list of its own (it is exiting, or the pool has no
    /// thread lists).
    pub(crate) fn home(self: &Arc<Self>) -> Option<&LocalShard<T>> {
        if self.limits.thread_capacity == 0 {
            return None;
        }
        let shard = match self.locals.get() {
            Some(shard) => shard,
            None => {
                // Late in thread exit `thread_local` has released this thread's id, and
                // `get_or` would take a new one that is never released: pass through instead.
                if thread_exit::is_exiting() {
                    return None;
                }
                // A thread whose very first use of any pool comes that late makes `get_or`
                // panic (it cannot register its id guard any more); it passes through too.
                catch_unwind(AssertUnwindSafe(|| {
                    self.locals.get_or(|| CachePadded::new(LocalShard::new()));
                }))
                .ok()?;
                // Every access goes through `get`: the reference `get_or` returns is derived
                // from another pointer, which later accesses through `get` would invalidate
                // while user code re-entering the pool runs.
                self.locals.get()?
            }
        };
        // SAFETY: `shard` is the current thread's slot; the closure runs no user code.
        let registered = unsafe { shard.with_list(|list| list.is_registered()) };
        if !registered {
            let pool: Weak<dyn FlushOnExit> = Arc::downgrade(self) as Weak<Shared<T>>;
            if !thread_exit::register(pool) {
                return None;
            }
            // The slot may have served a thread that exited: what that thread took and gave
            // says nothing of this one.
            let (gets, puts) = (shard.stats.get.read(), shard.stats.put.read());
            // SAFETY: as above.
            unsafe {
                shard.with_list(|list| {
                    // Registered from here on (`LocalList::is_registered`).
                    list.hold_limit = self.limits.thread_capacity;
                    (list.balance, list.gets_seen, list.puts_seen) = (0, gets, puts);
                })
            };
        }
        Some(shard)
    }

    /// The next idle element for this thread, with its weight: from its list, else a batch
    /// from the global shard moved into its list, else a batch taken from other threads' lists.
    fn take_idle(&self, shard: &LocalShard<T>) -> Option<((T, usize), Source)> {
        // The hot path may have found the list empty, or a reclaimer's mark (after a section
        // of the slow path, the list is the owner's again).
        // SAFETY: `shard` is the current thread's slot (the caller's obligation); the closures
        // below move elements and count units, and run no user code.
        if let Some(element) = unsafe { shard.with_list(LocalList::pop) } {
            return Some((element, Source::ThisThread));
        }
        if let Some(batch) = self.global.pop() {
            // SAFETY: as above.
            let (element, unneeded) = unsafe {
                shard.with_list(|list| {
                    let unneeded = self.give_back_unused(list);
                    let count = batch.elements.len();
                    let elements = batch.elements.oldest_first();
                    list.append(elements, count, &batch.weights, self.limits.thread_capacity);
                    // The list's low-water mark stays 0 (it was empty): elements that arrive
                    // in this period count as used in it, as a put's do.
                    let element = list.pop();
                    (element, unneeded)
                })
            };
            self.budget.release(unneeded);
            return element.map(|element| (element, Source::GlobalShard));
        }
        let (stolen, weights) = self.steal_idle(shard);
        if stolen.is_empty() {
            return None;
        }
        // SAFETY: as above.
        let element = unsafe {
            shard.with_list(|list| {
                // Each stolen element brings its unit of budget along.
                let count = stolen.len();
                list.append(stolen, count, &weights, self.limits.thread_capacity);
                // The low-water mark stays 0, as for a batch from the global shard.
                list.pop()
            })
        };
        element.map(|element| (element, Source::OtherThread))
    }

    /// The unused units of a list that ran dry, if they amount to [`UNITS_AT_ONCE`] (or a
    /// batch), taken off its lease for the caller to give back: the thread takes more than it
    /// gives back, so they would only stop other threads from caching, and giving them back in
    /// that many at once lets a taker and a giver (a pipeline) share one write to the budget per
    /// that many elements, not one per batch.
    fn give_back_unused(&self, list: &mut LocalList<T>) -> usize {
        let unused = list.unused_units();
        if unused < self.units_at_once() {
            return 0;
        }
        list.lease -= unused;
        unused
    }

    /// `get` when the hot path found nothing: the thread's list, the global shard, other
    /// threads' lists, else the generator.
    #[cold]
    pub(crate) fn get_slow(self: &Arc<Self>) -> Result<T, CachePoolGeneratorError> {
        let Some(shard) = self.home() else {
            return self.get_passing_through();
        };
        while let Some(((element, weight), source)) = self.take_idle(shard) {
            shard.stats.weight_out.add(weight);
            if let Some(element) = self.validate(element, |e| e, |e| e) {
                shard.stats.get.bump();
                match source {
                    Source::ThisThread => {}
                    Source::GlobalShard => shard.stats.hits_global.bump(),
                    Source::OtherThread => shard.stats.hits_stolen.bump(),
                }
                return Ok(element);
            }
        }
        // Nothing idle anywhere: a thread whose list ran dry gives back its unused lease.
        // SAFETY: `shard` is the current thread's slot; the closure runs no user code.
        let unneeded = unsafe {
            shard.with_list(|list| {
                let unneeded = list.unused_units();
                list.lease -= unneeded;
                unneeded
            })
        };
        self.budget.release(unneeded);
        if let Some(element) = self.lend_heavy() {
            return Ok(element);
        }
        let element = self.generate()?;
        shard.stats.get.bump();
        Ok(element)
    }

    /// `get_at_least`: a heavy element that weighs at least `at_least`, else a new one;
    /// `None` for a request a light element may serve (or a pool without a weigher), which
    /// a plain `get` serves.
    #[inline]
    pub(crate) fn get_heavy(&self, at_least: usize) -> Option<Result<T, CachePoolGeneratorError>> {
        self.budget.weight()?;
        if at_least <= self.limits.light_weight {
            return None;
        }
        Some(match self.take_heavy(at_least) {
            Some(element) => Ok(element),
            None => self.generate().inspect(|_| self.count(|s| &s.get)),
        })
    }

    /// A heavy element for a plain checkout that found no light one idle anywhere, in a pool
    /// whose heavy elements are the common case (at least half of the elements kept so far
    /// went to the shelf): there they are the pool's elements, and a checkout that did not
    /// reuse them would build one each time. Elsewhere the checkout builds a light element
    /// instead: a heavy one lent to a small request comes back to the shelf, leaving the
    /// thread's light elements as short as before, and gone from the requests that need it.
    fn lend_heavy(&self) -> Option<T> {
        self.budget.weight()?;
        let kept = self.stats();
        if 2 * self.shelf.shelved() < kept.put + kept.prefilled {
            return None;
        }
        self.take_heavy(0)
    }

    /// The lightest heavy element that weighs at least `at_least`, off the shelf of a pool
    /// with a weigher, validated and counted as a checkout from the global shard.
    pub(crate) fn take_heavy(&self, at_least: usize) -> Option<T> {
        self.budget.weight()?;
        while let Some(Shelved {
            element, weight, ..
        }) = self.shelf.take(at_least)
        {
            self.budget.release_heavy(weight);
            self.add(|s| &s.weight_out, weight);
            if let Some(element) = self.validate(element, |e| e, |e| e) {
                self.count(|s| &s.get);
                self.count(|s| &s.hits_global);
                return Some(element);
            }
        }
        None
    }

    /// `put` when the hot path could not keep the element: see
    /// [`try_keep`](Self::try_keep). When the budget is spent while other threads hold units
    /// they do not use, they are taken from them first (see [`crate::reclaim`]); only a pool
    /// whose budget is all in use closes the element.
    ///
    /// In a pool with a boxed weigher every `put` comes here (its lists refuse the hot path's
    /// plain push), reset and ready to be weighed.
    #[cold]
    pub(crate) fn put_slow(self: &Arc<Self>, element: T) {
        if self.hooks.weigher.is_none() {
            return self.keep_or_close(element, None);
        }
        let mut element = ManuallyDrop::new(Stored::new(element));
        // SAFETY: `element` is initialised, only this function uses it, and it is not touched
        // after the call (if the list does not take it, it comes back out).
        if let Some(kept) = unsafe { self.weigh_and_push(&mut element) } {
            self.keep_weighed(kept);
        }
    }

    /// A guard's give-back in a pool with a weigher, once the reset hooks kept the element in
    /// `slot`: weighed and kept as a `put` would, with a close callback's panic contained, as
    /// in every guard's drop.
    ///
    /// # Safety
    ///
    /// `slot` holds an initialised element that nothing else uses; the caller treats it as
    /// moved out afterwards, also if this unwinds (a weigher's panic closes it).
    #[inline(never)]
    pub(crate) unsafe fn give_back_weighed(self: &Arc<Self>, slot: &mut ManuallyDrop<Stored<T>>) {
        // SAFETY: the caller's contract.
        if let Some(kept) = unsafe { self.weigh_and_push(slot) } {
            self.keep_weighed_contained(kept);
        }
    }

    /// Weighs the element in `slot` and moves a light one into the thread's list as the hot
    /// path would; returns the element and its weight if the list did not take it.
    ///
    /// # Safety
    ///
    /// As for [`give_back_weighed`](Self::give_back_weighed).
    #[inline]
    unsafe fn weigh_and_push(&self, slot: &mut ManuallyDrop<Stored<T>>) -> Option<(T, usize)> {
        // SAFETY: the caller's contract; if the weigher unwinds, the element has been closed.
        let weight = unsafe { self.weigh(&mut **slot) };
        if weight <= self.limits.light_weight
            && let Some(shard) = self.locals.get()
            // SAFETY: `ThreadLocal::get` returned the current thread's slot, so this thread
            // owns the shard; `slot` is the caller's, as `push_weighed_from` requires.
            && unsafe { shard.push_weighed_from(&**slot, weight) }
        {
            shard.stats.put.bump();
            return None;
        }
        // SAFETY: the element is still in `slot` (not pushed), taken out once here.
        Some((unsafe { ManuallyDrop::take(slot) }.into_inner(), weight))
    }

    /// [`keep_weighed`](Self::keep_weighed) for a guard's drop: a close callback's panic is
    /// contained, as in every guard's drop.
    #[cold]
    #[inline(never)]
    pub(crate) fn keep_weighed_contained(self: &Arc<Self>, kept: (T, usize)) {
        unwind::containing(|| self.keep_weighed(kept));
    }

    /// The rest of a weighed give-back that the thread's list did not take, with the
    /// element's weight: a heavy element to the shelf, a light one down the slow path.
    #[cold]
    #[inline(never)]
    pub(crate) fn keep_weighed(self: &Arc<Self>, (element, weight): (T, usize)) {
        if weight > self.limits.light_weight {
            self.put_heavy(element, weight);
        } else {
            self.keep_or_close(element, Some(weight));
        }
    }

    /// `put_slow` once the element is weighed: `weight` is `None` in a pool without a
    /// weigher, and a light element's weight in one with.
    fn keep_or_close(self: &Arc<Self>, element: T, weight: Option<usize>) {
        let Some(shard) = self.home() else {
            return self.put_passing_through(element, weight);
        };
        let kept = |shard: &LocalShard<T>| {
            shard.stats.put.bump();
            shard.stats.weight_in.add(weight.unwrap_or(0));
        };
        let mut element = match self.try_keep(shard, element, weight) {
            Ok(()) => return kept(shard),
            Err(element) => element,
        };
        if self.take_unused_units(Some(shard)) {
            element = match self.try_keep(shard, element, weight) {
                Ok(()) => return kept(shard),
                Err(element) => element,
            };
        }
        self.close(element);
    }

    /// Puts a heavy element on the shelf, with one unit and its weight of the budget, taking
    /// the units other threads do not use if that is what it takes; closes it if it weighs more
    /// than the weight budget holds free.
    ///
    /// The element that does not fit is the one closed, not the coldest idle ones: making room
    /// would close as many elements as it keeps, elements some thread may be about to take
    /// (the ones on the shelf are there because requests for them come), and the shelf's
    /// elements sat idle for less than a trim period, else `trim()` would have closed them.
    fn put_heavy(&self, element: T, weight: usize) {
        let kept = || {
            self.count(|s| &s.put);
            self.add(|s| &s.weight_in, weight);
        };
        if weight > self.limits.max_idle_weight {
            // Heavier than the whole budget: it could never be kept.
            return self.close(element);
        }
        let element = match self.shelve(element, weight) {
            Ok(()) => return kept(),
            Err(element) => element,
        };
        if self.take_unused_units(self.locals.get().map(|shard| &**shard)) {
            match self.shelve(element, weight) {
                Ok(()) => kept(),
                Err(element) => self.close(element),
            }
        } else {
            self.close(element);
        }
    }

    /// Puts a heavy element on the shelf if the budget has a unit and its weight free; gives
    /// it back if not. Counts nothing.
    pub(crate) fn shelve(&self, element: T, weight: usize) -> Result<(), T> {
        if !self.budget.lease_heavy(weight) {
            return Err(element);
        }
        self.shelf.push(Shelved {
            element,
            weight,
            // Relaxed: as for a batch's stamp (see `spill`).
            trims: self.trims.load(Relaxed),
        });
        Ok(())
    }

    /// The rest of `put_slow`, on the thread's list, whose lease (or buffer) is full, or which
    /// a reclaimer has been at. What happens depends on where this thread's elements go:
    ///
    /// - A thread that gives back more than it takes (the consumer end of a pipeline) has no
    ///   use for the elements it keeps: they move to the global shard, where the threads that
    ///   take find them, in batches of [`GIVER_BATCH`]. Its list holds at most that many.
    /// - Any other thread leases budget in steps that double with its list (1, 1, 2, 4, ... up
    ///   to a batch), so that a thread holds little budget it does not use; a full list spills
    ///   its oldest batch to the global shard.
    ///
    /// Returns the element if there was no unit of budget for it.
    fn try_keep(&self, shard: &LocalShard<T>, element: T, weight: Option<usize>) -> Result<(), T> {
        let Limits {
            thread_capacity,
            batch,
            ..
        } = self.limits;
        let (gets, puts) = (shard.stats.get.read(), shard.stats.put.read());
        // SAFETY: `shard` is the current thread's slot; the closure moves elements, leases
        // budget and sends the spilled batch (allocating it), and runs no user code. Spilling
        // from inside means a spilled element is always in the list or the global shard, where
        // another thread can find it, never in between.
        unsafe {
            shard.with_list(|list| {
                let len = list.items.len();
                if len < list.lease.min(list.hold_limit) {
                    // The buffer was full, or a reclaimer left room: there is room.
                    list.keep(element, weight, thread_capacity);
                    return Ok(());
                }
                // Gets and puts since the last visit: the puts are the ones the hot path kept
                // (this one is counted at the next visit).
                let taken = gets.wrapping_sub(list.gets_seen) as i64;
                let given = puts.wrapping_sub(list.puts_seen) as i64;
                (list.gets_seen, list.puts_seen) = (gets, puts);
                list.balance = (list.balance + taken - given).clamp(
                    -(GIVER_BATCH as i64),
                    i64::try_from(self.limits.pool_size).unwrap_or(i64::MAX),
                );
                if list.balance < 0 {
                    return self.give_on(list, element, weight);
                }
                list.hold_limit = thread_capacity;
                if len < list.lease.min(thread_capacity) {
                    // A thread that gave back more than it took no longer does.
                    list.keep(element, weight, thread_capacity);
                    return Ok(());
                }
                let (spill, want) = if len >= thread_capacity {
                    (batch.min(len), batch)
                } else {
                    (0, len.clamp(1, batch).min(thread_capacity - len))
                };
                // The spilled elements take their units with them; `want` is the room this
                // element and the next ones need.
                if spill > 0 {
                    let (spilled, weights) = list.take_oldest(spill);
                    self.spill(spilled.into_iter(), weights);
                }
                if list.unused_units() == 0 {
                    list.lease += self.budget.lease(want);
                }
                if list.unused_units() > 0 {
                    list.keep(element, weight, thread_capacity);
                    Ok(())
                } else {
                    Err(element)
                }
            })
        }
    }

    /// `try_keep` on the list of a thread that gives back more than it takes: its list holds
    /// at most [`GIVER_BATCH`] elements (its `hold_limit` stops the hot path there), which
    /// then move to the global shard as one batch. The lease is taken [`UNITS_AT_ONCE`] units
    /// at a time, so that the budget is written once per that many elements. Returns the
    /// element if there was no unit for it.
    fn give_on(&self, list: &mut LocalList<T>, element: T, weight: Option<usize>) -> Result<(), T> {
        let thread_capacity = self.limits.thread_capacity;
        list.hold_limit = GIVER_BATCH.min(thread_capacity);
        let len = list.items.len();
        if len >= list.hold_limit {
            // The spilled elements take their units with them.
            let (spilled, weights) = list.take_oldest(len);
            self.spill(spilled.into_iter(), weights);
        }
        if list.unused_units() == 0 {
            list.lease += self.budget.lease(self.units_at_once());
        }
        if list.unused_units() > 0 {
            list.keep(element, weight, thread_capacity);
            Ok(())
        } else {
            Err(element)
        }
    }

    /// [`UNITS_AT_ONCE`], or a batch if that is less: a small pool's budget must not sit in
    /// the slack of a few threads.
    fn units_at_once(&self) -> usize {
        UNITS_AT_ONCE.min(self.limits.batch)
    }

    /// `get` for a thread without a list: straight from the global shard, else the shelf,
    /// else the generator.
    fn get_passing_through(&self) -> Result<T, CachePoolGeneratorError> {
        while let Some(mut batch) = self.global.pop() {
            let Some(element) = batch.elements.pop() else {
                continue;
            };
            self.budget.release(1);
            self.add(|s| &s.weight_out, batch.weights.pop().unwrap_or(0));
            if !batch.elements.is_empty() {
                self.global.push(batch);
            }
            if let Some(element) = self.validate(element, |e| e, |e| e) {
                self.count(|s| &s.get);
                self.count(|s| &s.hits_global);
                return Ok(element);
            }
        }
        if let Some(element) = self.lend_heavy() {
            return Ok(element);
        }
        let element = self.generate()?;
        self.count(|s| &s.get);
        Ok(element)
    }

    /// `put` for a thread without a list: straight into the global shard, if budget is left;
    /// `weight` as for [`keep_or_close`](Self::keep_or_close).
    fn put_passing_through(&self, element: T, weight: Option<usize>) {
        if self.budget.lease(1) == 0 {
            return self.close(element);
        }
        self.spill(std::iter::once(element), weight.into_iter().collect());
        self.count(|s| &s.put);
        self.add(|s| &s.weight_in, weight.unwrap_or(0));
    }

    /// Moves a batch of idle elements, with their budget units and (in a pool with a weigher)
    /// their weights, to the global shard.
    pub(crate) fn spill(&self, elements: impl ExactSizeIterator<Item = T>, weights: Vec<usize>) {
        self.global.push(Batch {
            elements: Elements::collect(elements),
            weights,
            // Relaxed: a stamp one trim too old or too young only moves a batch's trimming by
            // one period, which `trim()`'s documentation allows for elements moving while it
            // runs.
            trims: self.trims.load(Relaxed),
        });
    }
}

impl<T: Send + 'static> FlushOnExit for Shared<T> {
    fn flush_current_thread(&self) {
        let Some(shard) = self.locals.get() else {
            return;
        };
        // SAFETY: `shard` is the current thread's slot; the closure moves the elements out
        // and runs no user code.
        let (items, weights, unused) = unsafe {
            shard.with_list(|list| {
                let unused = list.unused_units();
                let weights = list.idle_weights();
                // The buffer goes with its elements, as it is (no copy).
                let items = std::mem::take(&mut list.items);
                (list.lease, list.low_water) = (0, 0);
                // Unregistered (`LocalList::is_registered`): a later thread that reuses the
                // slot registers before it caches anything here.
                list.hold_limit = 0;
                (items, weights, unused)
            })
        };
        self.budget.release(unused);
        if !items.is_empty() {
            self.spill(items.into_elements().into_iter(), weights);
        }
    }
}

/// Model-checks the races between threads over one pool, with every thread's list in a loom
/// cell, so that loom also checks that no list is ever touched by two threads at once:
/// `scripts/loom.sh`.
#[cfg(all(test, loom))]
mod loom_tests {
    use std::sync::Mutex;

    use loom::sync::Arc;

    use crate::CachePool;
    use crate::thread_exit::FlushOnExit;

    /// The ids the generator handed out and the close callback received.
    #[derive(Default)]
    struct Ledger {
        created: u32,
        closed: Vec<u32>,
    }

    /// A builder of a pool of unique `u32`s whose close callback records each id it receives.
    fn tracked_builder() -> (crate::Builder<u32>, Arc<Mutex<Ledger>>) {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let (make, close) = (Arc::clone(&ledger), Arc::clone(&ledger));
        let builder = CachePool::builder(move || {
            let mut ledger = make.lock().unwrap();
            ledger.created += 1;
            ledger.created
        })
        .close_callback(move |id| close.lock().unwrap().closed.push(id));
        (builder, ledger)
    }

    /// A tracked pool of `pool_size` and `thread_capacity`.
    fn tracked_pool(
        pool_size: usize,
        thread_capacity: usize,
    ) -> (CachePool<u32>, Arc<Mutex<Ledger>>) {
        let (builder, ledger) = tracked_builder();
        let pool = builder
            .pool_size(pool_size)
            .thread_capacity(thread_capacity)
            .build();
        (pool, ledger)
    }

    /// Once the pool has dropped, every id created was closed exactly once.
    fn assert_each_closed_once(ledger: &Mutex<Ledger>) {
        let ledger = ledger.lock().unwrap();
        let mut closed = ledger.closed.clone();
        closed.sort_unstable();
        assert_eq!(closed, (1..=ledger.created).collect::<Vec<_>>());
    }

    /// On a quiet pool: every unit of the budget is free, leased, travelling with an element
    /// in the global shard, or held by a heavy element on the shelf, and the idle elements fit
    /// in the units.
    fn assert_budget_balances(pool: &CachePool<u32>) {
        let shared = &pool.shared;
        let mut leased = 0;
        let mut listed = 0;
        for shard in shared.locals.iter() {
            // SAFETY: every other model thread has been joined, so no thread uses any list
            // now, and the join orders their accesses before this one; the closure runs no
            // user code.
            let (lease, len) = unsafe { shard.with_list(|list| (list.lease, list.items.len())) };
            assert!(
                len <= lease,
                "a list holds {len} elements on a lease of {lease}"
            );
            (leased, listed) = (leased + lease, listed + len);
        }
        let mut travelling = 0;
        for _ in 0..shared.global.batches() {
            let batch = shared.global.pop().expect("no other thread takes batches");
            travelling += batch.elements.len();
            shared.global.push(batch);
        }
        let free = shared.budget.free();
        // A heavy element on the shelf of a weighed pool holds a unit too.
        let shelved = shared.shelf.weights().len();
        assert_eq!(
            free + leased + travelling + shelved,
            pool.pool_size(),
            "free {free}, leased {leased}, shelved {shelved}"
        );
        assert_eq!(pool.stats().idle, listed + travelling + shelved);
    }

    /// Runs `work` on a new model thread, with a handle of its own to `pool`.
    fn spawn_with<R: Send + 'static>(
        pool: &Arc<CachePool<u32>>,
        work: impl FnOnce(&CachePool<u32>) -> R + Send + 'static,
    ) -> loom::thread::JoinHandle<R> {
        let pool = Arc::clone(pool);
        loom::thread::spawn(move || work(&pool))
    }

    /// Ends a model on a quiet pool: the budget balances, and once the last handle drops,
    /// every element was closed exactly once.
    fn drop_and_check(pool: Arc<CachePool<u32>>, ledger: &Mutex<Ledger>) {
        assert_budget_balances(&pool);
        drop(pool);
        assert_each_closed_once(ledger);
    }

    /// `clear()` on one thread, which takes the other thread's list over, while that thread
    /// puts an element back: the element idle before the clear is closed before `clear`
    /// returns, the one put is kept or closed once, and the budget comes back whole.
    #[test]
    fn clear_against_a_put() {
        loom::model(|| {
            let (pool, ledger) = tracked_pool(2, 2);
            let (cleared, kept) = (pool.get(), pool.get());
            pool.put(cleared);
            let pool = Arc::new(pool);
            let clearer = spawn_with(&pool, |pool| {
                pool.clear();
                pool.stats().evicted
            });
            pool.put(kept);
            let evicted = clearer.join().unwrap();
            assert!(
                evicted >= 1,
                "the element idle before the clear is closed by it"
            );
            let stats = pool.stats();
            assert_eq!(stats.checked_out, 0);
            assert_eq!(stats.new, stats.idle as u64 + stats.closed);
            drop_and_check(pool, &ledger);
        });
    }

    /// `trim()` from two threads at once over a third thread's list, with the owner away:
    /// the two reclaims take the list one after the other; the elements that sat idle through
    /// both periods are closed once each and the budget balances.
    #[test]
    fn trim_from_two_threads() {
        loom::model(|| {
            let (pool, ledger) = tracked_pool(2, 2);
            let (a, b) = (pool.get(), pool.get());
            pool.put(a);
            pool.put(b);
            let pool = Arc::new(pool);
            let trimmers: Vec<_> = (0..2).map(|_| spawn_with(&pool, CachePool::trim)).collect();
            for trimmer in trimmers {
                trimmer.join().unwrap();
            }
            // Two trims with no checkout between them: both elements sat through a period.
            assert_eq!(pool.stats().trimmed, 2);
            drop_and_check(pool, &ledger);
        });
    }

    /// A thread's exit flush (here called where its exit hooks would) against a `clear()` on
    /// another thread that takes the exiting thread's list over: each element ends in the
    /// global shard or closed, never both, and the budget balances.
    #[test]
    fn exit_flush_against_a_reclaim() {
        loom::model(|| {
            let (pool, ledger) = tracked_pool(4, 4);
            let pool = Arc::new(pool);
            let exiting = spawn_with(&pool, |pool| {
                pool.put(pool.get());
                pool.shared.flush_current_thread();
            });
            pool.clear();
            exiting.join().unwrap();
            drop_and_check(pool, &ledger);
        });
    }

    /// A `clear()` on a thread that holds a handle, against the drop of the other handle:
    /// whichever drops last closes what is left; every element is closed exactly once.
    #[test]
    fn a_reclaim_against_the_pool_drop() {
        loom::model(|| {
            let (pool, ledger) = tracked_pool(2, 2);
            pool.put(pool.get());
            let pool = Arc::new(pool);
            let clearer = spawn_with(&pool, |pool| {
                pool.put(pool.get());
                pool.clear();
            });
            drop(pool);
            clearer.join().unwrap();
            assert_each_closed_once(&ledger);
        });
    }

    /// A put that finds the budget spent takes the unit another thread holds and does not
    /// use, while that thread may be giving its element back: no unit is created or lost, and
    /// the put is kept whenever a unit was unused.
    #[test]
    fn a_starving_put_takes_unused_units() {
        loom::model(|| {
            let (pool, ledger) = tracked_pool(1, 1);
            let pool = Arc::new(pool);
            // This thread leases the pool's one unit for an element it has out.
            let out = pool.get();
            pool.put(out);
            let out = pool.get();
            let starving = spawn_with(&pool, |pool| pool.put(pool.get()));
            pool.put(out);
            starving.join().unwrap();
            let stats = pool.stats();
            assert_eq!(stats.idle, 1, "one of the two puts is kept: {stats}");
            drop_and_check(pool, &ledger);
        });
    }

    /// A thread whose list and the global shard are empty takes an idle element from another
    /// thread's list while that thread checks it out itself: the element goes to one of them.
    #[test]
    fn a_steal_against_the_owners_checkout() {
        loom::model(|| {
            let (pool, ledger) = tracked_pool(2, 2);
            pool.put(pool.get());
            let pool = Arc::new(pool);
            let thief = spawn_with(&pool, |pool| {
                let id = pool.get();
                pool.close(id);
            });
            let mine = pool.get();
            thief.join().unwrap();
            let stats = pool.stats();
            assert_eq!(stats.checked_out, 1);
            assert!(stats.new <= 2, "{stats}");
            pool.put(mine);
            drop_and_check(pool, &ledger);
        });
    }

    /// A thread that only gives back spills to the global shard while another, which only
    /// takes, refills from it: no element is lost or handed out twice, and the budget balances.
    /// The giver's fifth element moves its first four to the global shard as one batch, which
    /// the taker may find or miss.
    #[test]
    fn spill_against_refill() {
        loom::model(|| {
            let (pool, ledger) = tracked_pool(8, 8);
            let given: Vec<u32> = (0..5).map(|_| pool.get()).collect();
            let pool = Arc::new(pool);
            let giver = spawn_with(&pool, |pool| given.into_iter().for_each(|id| pool.put(id)));
            let taken: Vec<u32> = (0..2).map(|_| pool.get()).collect();
            giver.join().unwrap();
            assert_ne!(taken[0], taken[1], "one element handed out twice");
            let stats = pool.stats();
            assert_eq!(stats.checked_out, 2);
            assert_eq!(stats.new, stats.idle as u64 + stats.closed + 2);
            taken.into_iter().for_each(|id| pool.put(id));
            drop_and_check(pool, &ledger);
        });
    }

    /// A thread's exit flush (here called where its exit hooks would) against the pool's
    /// drop by the last handle on another thread: every element is closed exactly once,
    /// whichever thread drops the pool.
    #[test]
    fn exit_flush_against_the_pool_drop() {
        loom::model(|| {
            let (pool, ledger) = tracked_pool(4, 4);
            pool.put(pool.get());
            let pool = Arc::new(pool);
            let exiting = spawn_with(&pool, |pool| {
                let (a, b) = (pool.get(), pool.get());
                pool.put(a);
                pool.put(b);
                pool.shared.flush_current_thread();
            });
            drop(pool);
            exiting.join().unwrap();
            assert_each_closed_once(&ledger);
        });
    }

    /// A pool with a weigher, 4 elements and 40 of weight (10 per light unit): ids 1 and 3
    /// weigh 5 (light), 2 and 4 weigh 25 (heavy).
    fn weighed_pool() -> (CachePool<u32>, Arc<Mutex<Ledger>>) {
        let (builder, ledger) = tracked_builder();
        let pool = builder
            .weigher(|&id| if id % 2 == 0 { 25 } else { 5 })
            .max_idle_weight(40)
            .pool_size(4)
            .thread_capacity(2)
            .build();
        (pool, ledger)
    }

    /// Weight units under concurrent leases and releases: one thread gives back two heavy
    /// elements (50 of weight, more than the budget's 40), while another gives back two light
    /// ones (each holding 10) and reads the statistics. In every interleaving no reading of
    /// `idle_weight` is above 40; on the quiet pool it is the weight of the elements not
    /// closed, and the unit and weight budgets balance (free, leased, travelling or on the
    /// shelf).
    #[test]
    fn weighed_give_backs_on_two_threads_stay_within_the_weight_budget() {
        loom::model(|| {
            let (pool, ledger) = weighed_pool();
            let ids: Vec<u32> = (0..4).map(|_| pool.get()).collect();
            let pool = Arc::new(pool);
            let (heavy, light): (Vec<u32>, Vec<u32>) = ids.into_iter().partition(|id| id % 2 == 0);
            let giver = spawn_with(&pool, move |pool| {
                heavy.into_iter().for_each(|id| pool.put(id))
            });
            for id in light {
                pool.put(id);
                let reading = pool.stats().idle_weight;
                assert!(reading <= 40, "idle_weight read at {reading}");
            }
            giver.join().unwrap();
            let stats = pool.stats();
            let closed = ledger.lock().unwrap().closed.clone();
            let kept: usize = (1..=4)
                .filter(|id| !closed.contains(id))
                .map(|id| if id % 2 == 0 { 25 } else { 5 })
                .sum();
            assert_eq!(stats.idle_weight, kept, "{stats} closed {closed:?}");
            assert_weight_balances(&pool);
            drop_and_check(pool, &ledger);
        });
    }

    /// On a quiet weighed pool: the weight budget's free weight, what the units leased and
    /// travelling reserve, and the heavy elements' weights add up to the maximum.
    fn assert_weight_balances(pool: &CachePool<u32>) {
        let shared = &pool.shared;
        let per_unit = shared.budget.weight().expect("a weighed pool").per_unit;
        let mut units = 0;
        for shard in shared.locals.iter() {
            // SAFETY: as in `assert_budget_balances`.
            units += unsafe { shard.with_list(|list| list.lease) };
        }
        for _ in 0..shared.global.batches() {
            let batch = shared.global.pop().expect("no other thread takes batches");
            units += batch.elements.len();
            shared.global.push(batch);
        }
        let shelved: usize = shared.shelf.weights().iter().sum();
        assert_eq!(
            shared.budget.weight_free() + per_unit * units + shelved,
            40,
            "units {units}, shelved {shelved}"
        );
    }
}
