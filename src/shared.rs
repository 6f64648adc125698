//! The state all handles of one pool share: the thread lists, the global shard, the budget,
//! the user's hooks and the limits; the statistics added up from them; and the close of every
//! idle element when the last handle drops.
//!
//! What reads and changes this state lives by job: the hot paths in [`crate::pool`] and
//! [`crate::guard`], everything the hot path does not serve in [`crate::slow_path`], every call
//! into the user's code in [`crate::user_code`], and `prefill`, `clear` and `trim` in
//! [`crate::lifecycle`].

use crossbeam_utils::CachePadded;

use crate::budget::Budget;
use crate::global::GlobalShard;
use crate::idle_timeout::{self, TrimIdle};
use crate::local::LocalShard;
use crate::shelf::Shelf;
use crate::stats::{Counter, ShardStats, Stats};
use crate::sync::{AtomicU64, ThreadLocal};
use crate::user_code::{Eviction, Hooks};

/// Sizes fixed when the pool is built.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Most idle elements in the whole pool.
    pub(crate) pool_size: usize,
    /// Most idle elements in one thread's list; 0: no thread lists, everything goes through
    /// the global shard.
    pub(crate) thread_capacity: usize,
    /// Elements moved to the global shard at once, and budget units leased at once.
    pub(crate) batch: usize,
    /// The most weight idle in the whole pool, in a pool with a weigher; `usize::MAX`
    /// otherwise.
    pub(crate) max_idle_weight: usize,
    /// The most a light element weighs, which the thread lists take (see
    /// [`crate::budget`]); `usize::MAX` in a pool without a weigher.
    pub(crate) light_weight: usize,
}

/// One pool: what every `CachePool` handle to it points to.
pub(crate) struct Shared<T: Send + 'static> {
    /// Each thread's free list and counters, each shard on cache lines of its own.
    pub(crate) locals: ThreadLocal<CachePadded<LocalShard<T>>>,
    /// The number of `trim()` calls so far: the clock that ages the global shard's batches.
    pub(crate) trims: AtomicU64,
    pub(crate) hooks: Hooks<T>,
    pub(crate) limits: Limits,
    /// On lines of its own: written on every lease and release, next to the read-mostly
    /// state above that every hot path loads.
    pub(crate) budget: CachePadded<Budget>,
    pub(crate) global: GlobalShard<T>,
    /// The heavy idle elements of a pool with a weigher (see [`crate::shelf`]).
    pub(crate) shelf: Shelf<T>,
    /// Counters for work done where the thread has no list of its own (a thread that is
    /// exiting, or a pool without thread lists); written by any thread, with read-modify-writes.
    orphan_stats: ShardStats,
    /// The pool's key in the idle-timeout thread's schedule, if it asked for a timeout.
    idle_key: Option<u64>,
}

impl<T: Send + 'static> Shared<T> {
    /// A pool's state; `weighed` says whether it has a weigher (boxed or in its `Reset`).
    pub(crate) fn new(
        hooks: Hooks<T>,
        limits: Limits,
        weighed: bool,
        idle_key: Option<u64>,
    ) -> Self {
        Shared {
            locals: ThreadLocal::new(),
            trims: AtomicU64::new(0),
            hooks,
            limits,
            budget: CachePadded::new(Budget::new(
                limits.pool_size,
                weighed.then_some(limits.max_idle_weight),
            )),
            global: GlobalShard::new(),
            shelf: Shelf::new(),
            orphan_stats: ShardStats::default(),
            idle_key,
        }
    }

    /// Counts one event in the current thread's shard, or in the shared fallback counters.
    pub(crate) fn count(&self, counter: impl Fn(&ShardStats) -> &Counter) {
        match self.locals.get() {
            // The slot `get` returns belongs to this thread, the only writer of its counters.
            Some(shard) => counter(&shard.stats).bump(),
            None => counter(&self.orphan_stats).add_shared(1),
        }
    }

    /// Adds `n` to one counter in the current thread's shard, or in the shared fallback
    /// counters.
    pub(crate) fn add(&self, counter: impl Fn(&ShardStats) -> &Counter, n: usize) {
        if n == 0 {
            return;
        }
        match self.locals.get() {
            // As in `count`: this thread is the only writer of its shard's counters.
            Some(shard) => counter(&shard.stats).add(n),
            None => counter(&self.orphan_stats).add_shared(n as u64),
        }
    }

    /// Adds up every shard's counters.
    pub(crate) fn stats(&self) -> Stats {
        let mut total = Stats::default();
        let (mut weight_in, mut weight_out) = (0u64, 0u64);
        for shard in self.locals.iter().map(|shard| &shard.stats) {
            shard.add_to(&mut total);
            weight_in = weight_in.wrapping_add(shard.weight_in.read());
            weight_out = weight_out.wrapping_add(shard.weight_out.read());
        }
        self.orphan_stats.add_to(&mut total);
        weight_in = weight_in.wrapping_add(self.orphan_stats.weight_in.read());
        weight_out = weight_out.wrapping_add(self.orphan_stats.weight_out.read());
        let mut total = total.derive();
        if self.budget.weight().is_some() {
            // A weight leaves the idle set only after it entered it; read under load, the
            // difference may come out negative, and is then floored at 0.
            total.idle_weight =
                usize::try_from(weight_in.saturating_sub(weight_out)).unwrap_or(usize::MAX);
        }
        total
    }

    /// Counts a detached element.
    pub(crate) fn detach(&self) {
        self.count(|s| &s.detached);
    }
}

impl<T: Send + 'static> TrimIdle for Shared<T> {
    fn trim_idle(&self) {
        self.trim();
    }
}

impl<T: Send + 'static> Drop for Shared<T> {
    /// Closes every idle element exactly once: each thread's list, then the global shard. A
    /// close callback that panics does not stop the others, and its panic does not leave this
    /// drop (the last handle may be dropped in a thread-local destructor, where a panic would
    /// abort the process); the panic hook has reported it.
    fn drop(&mut self) {
        if let Some(key) = self.idle_key {
            idle_timeout::unregister(key);
        }
        let mut idle = Vec::new();
        for shard in self.locals.iter_mut() {
            idle.append(&mut shard.take_items());
        }
        while let Some(batch) = self.global.pop() {
            batch.elements.move_into(&mut idle);
        }
        idle.extend(
            self.shelf
                .take_where(|_| true)
                .into_iter()
                .map(|heavy| heavy.element),
        );
        drop(self.evict(idle, Eviction::Dropped));
    }
}
