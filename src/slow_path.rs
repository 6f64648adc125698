//! Every get and put the hot path does not serve: a thread's first use of the pool, a list
//! behind the pool's generation, an empty list, a full lease, a thread without a list, and
//! the flush of a thread's list when it exits.
//!
//! Elements and budget move here, between a thread's list, the global shard and the shared
//! budget, in batches; `docs/design.md` explains where a returned element goes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};

use crossbeam_utils::CachePadded;

use crate::error::CachePoolGeneratorError;
use crate::generation::{CatchUp, Event};
use crate::global::{Batch, Elements};
use crate::local::{LocalList, LocalShard};
use crate::shared::{Limits, Shared};
use crate::thread_exit::{self, FlushOnExit};
use crate::user_code::{Eviction, Stale};

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
}

impl<T: Send + 'static> Shared<T> {
    /// The current thread's shard, registered for flushing at thread exit and caught up with
    /// the pool's generation, with what catching up took out of its list (for the caller to
    /// close once its own element is safe); `None` when this thread must not cache elements in
    /// a list of its own (it is exiting, or the pool has no thread lists).
    pub(crate) fn home(self: &Arc<Self>) -> Option<(&LocalShard<T>, Option<Stale<'_, T>>)> {
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
        let registered = unsafe { shard.with_list(|list| list.registered) };
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
                    list.registered = true;
                    list.hold_limit = usize::MAX;
                    (list.balance, list.gets_seen, list.puts_seen) = (0, gets, puts);
                })
            };
        }
        Some((shard, self.catch_up(shard)))
    }

    /// Brings the current thread's list up to the pool's generation: takes out what the
    /// `clear()` or `trim()` calls since it last caught up ask to close, and gives back their
    /// budget along with every unit the list holds beyond its remaining idle elements (so that a
    /// thread that found the budget spent gets the units other threads reserved and did not
    /// use). The elements are closed when the returned [`Stale`] drops, which each caller does
    /// once its own element is safe (a close callback that panics must not take that element
    /// down too); the first panic of a close callback then propagates.
    fn catch_up(&self, shard: &LocalShard<T>) -> Option<Stale<'_, T>> {
        // SAFETY: `shard` is the current thread's slot (the caller's obligation); the closure
        // moves elements out and runs no user code.
        let (stale, units) = unsafe {
            shard.with_list(|list| {
                let (current, action) = self.generations.catch_up(list.generation);
                let (count, why) = match action {
                    CatchUp::Current => return (None, 0),
                    CatchUp::Clear => (list.items.len(), Eviction::Cleared),
                    CatchUp::Trim => (list.low_water.min(list.items.len()), Eviction::Trimmed),
                    CatchUp::Release => (0, Eviction::Cleared),
                };
                // The oldest elements are at the bottom: those are the ones nobody used.
                let elements: Vec<T> = list.items.drain(..count).collect();
                let units = list.lease - list.items.len();
                list.lease = list.items.len();
                list.generation = current;
                list.low_water = list.items.len();
                let stale = (!elements.is_empty()).then_some(Stale {
                    shared: self,
                    elements,
                    why,
                });
                (stale, units)
            })
        };
        self.budget.release(units);
        stale
    }

    /// The next idle element for this thread: from its list, else a batch from the global
    /// shard moved into its list.
    fn take_idle(&self, shard: &LocalShard<T>) -> Option<(T, Source)> {
        let generation = self.generations.current();
        // SAFETY: `shard` is the current thread's slot (the caller's obligation); `pop` and
        // the closure below move elements and count units, and run no user code.
        if let Some(element) = unsafe { shard.pop(generation) } {
            return Some((element, Source::ThisThread));
        }
        let batch = self.global.pop()?;
        // SAFETY: as above.
        let (element, unneeded) = unsafe {
            shard.with_list(|list| {
                // The list ran dry, so the thread takes more than it gives back: its unused
                // lease would only stop other threads from caching. It gives it back once it
                // amounts to `UNITS_AT_ONCE`, so that a taker and a giver (a pipeline) share
                // one write to the budget per that many elements, not one per batch.
                let unused = list.lease - list.items.len();
                let unneeded = if unused >= self.units_at_once() {
                    unused
                } else {
                    0
                };
                list.lease = list.items.len() + (unused - unneeded) + batch.elements.len();
                batch.elements.move_into(&mut list.items);
                let element = list.items.pop();
                list.low_water = list.items.len();
                (element, unneeded)
            })
        };
        self.budget.release(unneeded);
        element.map(|element| (element, Source::GlobalShard))
    }

    /// `get` when the hot path found nothing: the thread's list (after catching up), the
    /// global shard, else the generator.
    #[cold]
    pub(crate) fn get_slow(self: &Arc<Self>) -> Result<T, CachePoolGeneratorError> {
        let Some((shard, stale)) = self.home() else {
            return self.get_passing_through();
        };
        // Nothing is held yet, so a close callback that panics here loses nothing.
        drop(stale);
        while let Some((element, source)) = self.take_idle(shard) {
            if let Some(element) = self.validate(element) {
                shard.stats.get.bump();
                if source == Source::GlobalShard {
                    shard.stats.hits_global.bump();
                }
                return Ok(element);
            }
        }
        // Nothing idle anywhere: as above, a thread whose list ran dry gives back its unused
        // lease.
        // SAFETY: `shard` is the current thread's slot; the closure runs no user code.
        let unneeded = unsafe {
            shard.with_list(|list| {
                let unneeded = list.lease - list.items.len();
                list.lease = list.items.len();
                unneeded
            })
        };
        self.budget.release(unneeded);
        let element = self.generate()?;
        shard.stats.get.bump();
        Ok(element)
    }

    /// `put` when the hot path could not keep the element: see
    /// [`keep_or_close`](Self::keep_or_close).
    #[cold]
    pub(crate) fn put_slow(self: &Arc<Self>, element: T) {
        let Some((shard, stale)) = self.home() else {
            return self.put_passing_through(element);
        };
        self.keep_or_close(shard, element);
        // Only now that `element` is stored or closed: a close callback that panics on a stale
        // element must not take the element being put down with it. (Should storing or closing
        // it panic, `stale` closes its elements as the panic unwinds.)
        drop(stale);
    }

    /// The rest of `put_slow`, on the thread's caught-up list, whose lease (or buffer) is
    /// full. What happens depends on where this thread's elements go:
    ///
    /// - A thread that gives back more than it takes (the consumer end of a pipeline) has no
    ///   use for the elements it keeps: they move to the global shard, where the threads that
    ///   take find them, in batches of [`GIVER_BATCH`]. Its list holds at most that many.
    /// - Any other thread leases budget in steps that double with its list (1, 1, 2, 4, ... up
    ///   to a batch), so that a thread holds little budget it does not use; a full list spills
    ///   its oldest batch to the global shard.
    ///
    /// When the budget is spent the element is closed, and if the pool's idle elements are
    /// clearly fewer than `pool_size` (the rest of the budget is reserved by threads and not
    /// used), the other threads are asked to give back what they do not use.
    fn keep_or_close(&self, shard: &LocalShard<T>, element: T) {
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
        let kept = unsafe {
            shard.with_list(|list| {
                let len = list.items.len();
                if len < list.lease.min(list.hold_limit) {
                    // The buffer was full, or the list just caught up: there is room.
                    list.items.push(element);
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
                    return self.give_on(list, element);
                }
                list.hold_limit = usize::MAX;
                if len < list.lease {
                    // A thread that gave back more than it took no longer does.
                    list.items.push(element);
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
                    list.lease -= spill;
                    list.low_water = list.low_water.saturating_sub(spill);
                    self.spill(list.items.drain(..spill));
                }
                let leased = self.budget.lease(want);
                list.lease += leased;
                if leased > 0 {
                    list.items.push(element);
                    Ok(())
                } else {
                    Err(element)
                }
            })
        };
        match kept {
            Ok(()) => shard.stats.put.bump(),
            Err(element) => {
                self.ask_for_budget(shard);
                self.close(element);
            }
        }
    }

    /// `keep_or_close` on the list of a thread that gives back more than it takes: its list
    /// holds at most [`GIVER_BATCH`] elements (its `hold_limit` stops the hot path there), which
    /// then move to the global shard as one batch. The lease is taken [`UNITS_AT_ONCE`] units
    /// at a time, so that the budget is written once per that many elements. Returns the
    /// element if there was no unit for it.
    fn give_on(&self, list: &mut LocalList<T>, element: T) -> Result<(), T> {
        list.hold_limit = GIVER_BATCH;
        let len = list.items.len();
        if len >= GIVER_BATCH {
            // The spilled elements take their units with them.
            list.lease -= len;
            list.low_water = 0;
            self.spill(list.items.drain(..));
        }
        if list.items.len() == list.lease {
            list.lease += self.budget.lease(self.units_at_once());
        }
        if list.items.len() < list.lease {
            list.items.push(element);
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

    /// A put on this thread found the budget spent. If the pool's idle elements leave more
    /// than a batch of `pool_size` unaccounted for, threads hold budget they do not use: start
    /// a generation that makes each list give its unused budget back at its next use of the
    /// pool. At most once per generation per thread, and never on a pool that is simply full.
    #[cold]
    fn ask_for_budget(&self, shard: &LocalShard<T>) {
        let generation = self.generations.current();
        // SAFETY: `shard` is the current thread's slot; the closure runs no user code.
        let asked = unsafe { shard.with_list(|list| list.asked_at == generation) };
        if asked || self.stats().idle + self.limits.batch >= self.limits.pool_size {
            return;
        }
        self.generations.advance(Event::BudgetRequest);
        let asked_at = self.generations.current();
        // SAFETY: as above.
        unsafe { shard.with_list(|list| list.asked_at = asked_at) };
    }

    /// `get` for a thread without a list: straight from the global shard, else the generator.
    fn get_passing_through(&self) -> Result<T, CachePoolGeneratorError> {
        while let Some(mut batch) = self.global.pop() {
            let Some(element) = batch.elements.pop() else {
                continue;
            };
            self.budget.release(1);
            if !batch.elements.is_empty() {
                self.global.push(batch);
            }
            if let Some(element) = self.validate(element) {
                self.count(|s| &s.get);
                self.count(|s| &s.hits_global);
                return Ok(element);
            }
        }
        let element = self.generate()?;
        self.count(|s| &s.get);
        Ok(element)
    }

    /// `put` for a thread without a list: straight into the global shard, if budget is left.
    fn put_passing_through(&self, element: T) {
        if self.budget.lease(1) == 0 {
            return self.close(element);
        }
        self.spill(std::iter::once(element));
        self.count(|s| &s.put);
    }

    /// Moves a batch of idle elements, with their budget units, to the global shard.
    pub(crate) fn spill(&self, elements: impl ExactSizeIterator<Item = T>) {
        self.global.push(Batch {
            elements: Elements::collect(elements),
            trims: self.generations.trims(),
        });
    }
}

impl<T: Send + 'static> FlushOnExit for Shared<T> {
    fn flush_current_thread(&self) {
        let Some(shard) = self.locals.get() else {
            return;
        };
        // What a `clear()` or `trim()` asked of this list is taken out first, so that the global
        // shard does not receive elements that should have been closed; they are closed last,
        // once the rest is safe in the global shard.
        let stale = self.catch_up(shard);
        // SAFETY: `shard` is the current thread's slot; the closure moves the elements out
        // and runs no user code.
        let (items, unused) = unsafe {
            shard.with_list(|list| {
                let items = std::mem::take(&mut list.items);
                let unused = list.lease - items.len();
                list.lease = 0;
                list.low_water = 0;
                list.registered = false;
                (items, unused)
            })
        };
        self.budget.release(unused);
        if !items.is_empty() {
            self.spill(items.into_iter());
        }
        drop(stale);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    use crate::CachePool;

    /// What a list's catch-up took out is closed even when a panic unwinds past it before it
    /// is closed: in `put_slow`, the close callback of the element being put can panic there.
    /// Through the public API that takes a race (another thread leasing the units the catch-up
    /// just gave back), so this takes the catch-up's result directly.
    #[test]
    fn stale_elements_are_closed_when_a_panic_unwinds_past_them() {
        let closed = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&closed);
        let pool = CachePool::builder(|| 0u32)
            .close_callback(move |_| {
                counter.fetch_add(1, Relaxed);
            })
            .pool_size(4)
            .thread_capacity(4)
            .build();
        let (a, b) = (pool.get(), pool.get());
        pool.put(a);
        pool.put(b);
        // Another thread's clear() leaves this thread's list of two behind.
        std::thread::scope(|s| {
            s.spawn(|| pool.clear());
        });
        let (_, stale) = pool.shared.home().expect("this thread has a list");
        assert_eq!(stale.as_ref().map(|s| s.elements.len()), Some(2));
        assert_eq!(closed.load(Relaxed), 0);

        let unwound = catch_unwind(AssertUnwindSafe(|| {
            let _stale = stale;
            resume_unwind(Box::new("a close callback panicking in put_slow"));
        }));
        assert!(unwound.is_err());
        assert_eq!(closed.load(Relaxed), 2);
        let stats = pool.stats();
        assert_eq!((stats.idle, stats.evicted, stats.closed), (0, 2, 2));
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

    /// A pool of unique `u32`s whose close callback records each id it receives.
    fn tracked_pool(
        pool_size: usize,
        thread_capacity: usize,
    ) -> (CachePool<u32>, Arc<Mutex<Ledger>>) {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let (make, close) = (Arc::clone(&ledger), Arc::clone(&ledger));
        let pool = CachePool::builder(move || {
            let mut ledger = make.lock().unwrap();
            ledger.created += 1;
            ledger.created
        })
        .close_callback(move |id| close.lock().unwrap().closed.push(id))
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

    /// On a quiet pool: every unit of the budget is free, leased, or travelling with an element
    /// in the global shard, and the idle elements fit in the units.
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
        assert_eq!(
            free + leased + travelling,
            pool.pool_size(),
            "free {free}, leased {leased}"
        );
        assert_eq!(pool.stats().idle, listed + travelling);
    }

    /// Runs `work` on a new model thread, with a handle of its own to `pool`.
    fn spawn_with(
        pool: &Arc<CachePool<u32>>,
        work: impl FnOnce(&CachePool<u32>) + Send + 'static,
    ) -> loom::thread::JoinHandle<()> {
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

    /// `clear()` on one thread while another thread's `put` catches its list up: whichever
    /// sees the clear's generation first, the element cleared is closed once, the one put is
    /// kept or closed once, and the budget comes back whole.
    #[test]
    fn clear_against_a_put_catching_up() {
        loom::model(|| {
            let (pool, ledger) = tracked_pool(2, 2);
            let (cleared, kept) = (pool.get(), pool.get());
            pool.put(cleared);
            let pool = Arc::new(pool);
            let clearer = spawn_with(&pool, CachePool::clear);
            pool.put(kept);
            clearer.join().unwrap();
            // This thread's next use of the pool catches its list up with the clear, if the
            // put did not.
            drop(pool.checkout());
            let stats = pool.stats();
            assert_eq!(stats.checked_out, 0);
            assert_eq!(stats.new, stats.idle as u64 + stats.closed);
            assert!(
                stats.evicted >= 1,
                "the element idle before the clear is closed"
            );
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
}
