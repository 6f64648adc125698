//! The per-thread free list: one per thread per pool, touched only by its thread.

use crate::stats::ShardStats;
use crate::sync::UnsafeCell;
use crate::word_move;

/// The idle elements one thread has cached for one pool, and the budget it has leased.
///
/// `repr(C)`, hot fields first: what `pop` and `push_from` read (`items`, `push_limit`,
/// `generation`, `low_water`) fills the first 48 bytes, and the slow path's bookkeeping after
/// it is small enough that the shard's `get` and `put` counters, which follow the list (see
/// [`ShardStats`]), end within the next 64 bytes: the hot path touches two cache lines.
#[repr(C)]
pub(crate) struct LocalList<T> {
    /// Idle elements, warmest last: `pop` hands out the element returned most recently.
    pub(crate) items: Vec<T>,
    /// How long the hot path may grow `items` without a check of its own:
    /// `min(lease, items.capacity(), hold_limit)`, kept so by [`LocalShard::with_list`] (0
    /// while its closure runs). One comparison on the hot path covers the budget, the buffer
    /// and the thread's role.
    ///
    /// Invariant (relied on by [`LocalShard::push_from`]): `push_limit <= items.capacity()`
    /// and `push_limit <= lease`.
    push_limit: usize,
    /// The pool generation this list last caught up with (see [`crate::generation`]). The hot
    /// paths touch the list only while it is current.
    pub(crate) generation: u64,
    /// The fewest elements the list has held since it last caught up: `items[..low_water]` have
    /// not been checked out since, and are what the next `trim()` closes.
    pub(crate) low_water: usize,
    /// Units of the pool's budget this thread holds. Invariant: `items.len() <= lease`.
    pub(crate) lease: usize,
    /// The most idle elements this thread's role lets its list hold before the slow path
    /// looks again: `GIVER_BATCH` for a thread that gives back more than it takes (see
    /// `Shared::keep_or_close`), unbounded otherwise.
    pub(crate) hold_limit: usize,
    /// Where this thread's elements go: what it took out of the pool minus what it gave back,
    /// as far as the slow path has seen, bounded below by `-GIVER_BATCH` (a consumer that
    /// starts taking is recognised within a few gets) and above by `pool_size` (more elements
    /// than that cannot come back to be kept).
    /// Negative: the thread gives back more than it takes (see `Shared::keep_or_close`).
    pub(crate) balance: i64,
    /// This shard's `get` and `put` counters when the slow path last updated `balance`.
    pub(crate) gets_seen: u64,
    pub(crate) puts_seen: u64,
    /// The generation of this thread's last request for budget ([`NEVER_ASKED`] before the
    /// first); a thread asks at most once per generation.
    pub(crate) asked_at: u64,
    /// Whether this thread's exit hook knows about this list (see [`crate::thread_exit`]).
    /// Cleared when the list is flushed at thread exit, so that a later thread reusing this
    /// slot registers again before it caches anything here.
    pub(crate) registered: bool,
}

/// [`LocalList::asked_at`] of a thread that never asked for budget: generations count up from 0
/// and never reach it.
pub(crate) const NEVER_ASKED: u64 = u64::MAX;

/// One thread's shard of a pool: its free list and its counters.
///
/// The pool keeps each shard in a `CachePadded`, so that threads whose shards sit side by side
/// in the `ThreadLocal` never write to a line that another thread's hot path uses.
///
/// # Invariant
///
/// `list` is accessed only
/// - by the thread this shard belongs to, i.e. the shard was obtained on the current thread from
///   the pool's `ThreadLocal` (`get` or `get_or`), which maps each live thread to its own slot; or
/// - through `&mut LocalShard` (the pool is being dropped and nobody else can see it).
///
/// and no reference into `list` is alive while user code runs (the generator, a hook, a
/// callback, or the `Drop` of an element), because user code may re-enter the pool on the same
/// thread. Other threads read only `stats`, which is made of atomics.
#[repr(C)]
pub(crate) struct LocalShard<T> {
    list: UnsafeCell<LocalList<T>>,
    pub(crate) stats: ShardStats,
}

// SAFETY: other threads reach a shard through `ThreadLocal::iter` (statistics) and read only
// `stats`, which is atomic; `list` is touched only by the owning thread or through `&mut`
// (the type's invariant), so sharing `&LocalShard` never lets two threads at the list. The
// elements it holds move between threads (through the global shard, or when the pool drops on
// another thread), hence `T: Send`.
unsafe impl<T: Send> Sync for LocalShard<T> {}

impl<T> LocalShard<T> {
    /// An empty shard with no lease, not yet registered for thread exit.
    pub(crate) fn new() -> Self {
        LocalShard {
            list: UnsafeCell::new(LocalList {
                items: Vec::new(),
                lease: 0,
                push_limit: 0,
                hold_limit: usize::MAX,
                registered: false,
                generation: 0,
                low_water: 0,
                balance: 0,
                gets_seen: 0,
                puts_seen: 0,
                asked_at: NEVER_ASKED,
            }),
            stats: ShardStats::default(),
        }
    }

    /// Pops the warmest idle element, if the list is current with `generation`.
    ///
    /// # Safety
    ///
    /// The caller is this shard's owning thread (see the type's invariant).
    #[inline]
    pub(crate) unsafe fn pop(&self, generation: u64) -> Option<T> {
        self.list.with_mut(|list| {
            // SAFETY: the caller owns the shard; the borrow ends before this returns, and
            // nothing here runs user code (the element is moved out, never dropped).
            let list = unsafe { &mut *list };
            let len = list.items.len();
            if list.generation != generation || len == 0 {
                return None;
            }
            // SAFETY: `items[len - 1]` is initialised; shortening the vector first makes the
            // slot spare capacity, so the element read out of it is owned by the caller alone.
            let element = unsafe {
                list.items.set_len(len - 1);
                word_move::read(list.items.as_ptr().add(len - 1))
            };
            // A branch, not `min`: in steady use the list refills to the same length, so the
            // mark stays put and the line is not written again.
            if len - 1 < list.low_water {
                list.low_water = len - 1;
            }
            Some(element)
        })
    }

    /// Moves the element at `src` into the list if the list is current with `generation` and
    /// this thread's lease has room for it; returns whether it did. The element is copied
    /// straight from where the caller keeps it (see [`crate::word_move`]).
    ///
    /// # Safety
    ///
    /// The caller is this shard's owning thread (see the type's invariant), and `src` points
    /// to an initialised element that nothing else uses. If this returns `true`, the element
    /// is the list's: the caller treats `*src` as moved out.
    #[inline(always)]
    pub(crate) unsafe fn push_from(&self, src: *const T, generation: u64) -> bool {
        self.list.with_mut(|list| {
            // SAFETY: the caller owns the shard; the borrow ends before this returns, and
            // neither the comparisons nor the copy run user code (an element is moved, never
            // dropped).
            let list = unsafe { &mut *list };
            let len = list.items.len();
            // A full lease or a full buffer: the slow path leases more, or grows the buffer.
            if len >= list.push_limit || list.generation != generation {
                return false;
            }
            debug_assert!(len < list.items.capacity() && len < list.lease);
            // SAFETY: `len < push_limit <= capacity` (the field's invariant), so there is room
            // at index `len`, which is spare capacity until `set_len` makes the copied element
            // part of the vector; `src` is valid and, being the caller's, not inside the list.
            unsafe {
                word_move::copy(src, list.items.as_mut_ptr().add(len));
                list.items.set_len(len + 1);
            }
            true
        })
    }

    /// Runs `f` on the list, and then brings the hot path's `push_limit` up to date with
    /// what `f` did to the lease and the buffer.
    ///
    /// # Safety
    ///
    /// The caller is this shard's owning thread (see the type's invariant), and `f` runs no
    /// user code: it calls no hook or callback and drops no element (it may move them out).
    #[inline]
    pub(crate) unsafe fn with_list<R>(&self, f: impl FnOnce(&mut LocalList<T>) -> R) -> R {
        self.list.with_mut(|list| {
            // SAFETY: the caller owns the shard and `f` cannot re-enter the pool, so this is
            // the only reference into the list while it lives.
            let list = unsafe { &mut *list };
            // 0 until `f` is done: should `f` unwind, the hot path stays off the list until
            // the next call here sets the limit again.
            list.push_limit = 0;
            let result = f(list);
            list.push_limit = list.lease.min(list.items.capacity()).min(list.hold_limit);
            result
        })
    }

    /// Takes every idle element out of the list, through exclusive access (the pool is
    /// dropping).
    pub(crate) fn take_items(&mut self) -> Vec<T> {
        // SAFETY: `&mut self` is exclusive, so no other reference into the list exists, and
        // the closure runs no user code.
        self.list
            .with_mut(|list| std::mem::take(unsafe { &mut (*list).items }))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::mem::ManuallyDrop;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::{LocalList, LocalShard};

    /// Pushes `value` through the hot path; returns whether the list took it (if not, the
    /// value is dropped here).
    fn push(shard: &LocalShard<String>, value: &str) -> bool {
        let mut value = ManuallyDrop::new(String::from(value));
        // SAFETY: this thread made the shard and is its only user; `value` is a live local
        // that nothing else uses, at generation 0, the shard's own.
        let kept = unsafe { shard.push_from(&*value, 0) };
        if !kept {
            // SAFETY: the list did not take it, so it is still ours, dropped once.
            unsafe { ManuallyDrop::drop(&mut value) };
        }
        kept
    }

    /// `with_list` for the test's own shard.
    fn on_list<R>(shard: &LocalShard<String>, f: impl FnOnce(&mut LocalList<String>) -> R) -> R {
        // SAFETY: this thread made the shard and is its only user; the test's closures run no
        // pool code.
        unsafe { shard.with_list(f) }
    }

    /// The hot path's one limit stands for both the lease and the buffer's capacity, and is
    /// closed while a slow-path change is in progress or after one unwound.
    #[test]
    fn push_limit_is_the_lesser_of_lease_and_capacity() {
        let shard = LocalShard::<String>::new();
        assert!(!push(&shard, "no lease yet"));

        on_list(&shard, |list| {
            (list.lease, list.items) = (4, Vec::with_capacity(2))
        });
        assert!(push(&shard, "kept") && push(&shard, "kept"));
        let refused = push(&shard, "over the capacity");
        assert!(!refused, "the buffer bounds the hot path");

        on_list(&shard, |list| list.items.reserve(16));
        assert!(push(&shard, "kept") && push(&shard, "kept"));
        assert!(!push(&shard, "over the lease"), "the lease bounds it too");

        let unwound = catch_unwind(AssertUnwindSafe(|| {
            on_list(&shard, |list| {
                list.items.pop();
                panic!("a slow-path change that unwinds");
            })
        }));
        assert!(unwound.is_err());
        let refused = push(&shard, "after an unwind");
        assert!(!refused, "the hot path waits for the next change");
        on_list(&shard, |_| {});
        assert!(push(&shard, "room again"));
        assert_eq!(on_list(&shard, |list| list.items.len()), 4);
    }

    /// The per-thread overhead stated in docs/design.md: one shard per thread per pool.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn shard_sizes() {
        type Padded = crossbeam_utils::CachePadded<LocalShard<Vec<u8>>>;
        assert_eq!(std::mem::align_of::<Padded>(), 128);
        assert_eq!(std::mem::size_of::<Padded>(), 256);
    }

    /// What the hot path reads and writes lies in the shard's first two 64-byte lines: the
    /// list's hot fields in the first, the `get` and `put` counters in the second.
    #[test]
    fn the_hot_path_touches_two_cache_lines() {
        use std::mem::offset_of;
        type List = LocalList<Vec<u8>>;
        let hot_end = [
            offset_of!(List, items) + std::mem::size_of::<Vec<u8>>(),
            offset_of!(List, push_limit) + 8,
            offset_of!(List, generation) + 8,
            offset_of!(List, low_water) + 8,
        ];
        assert!(hot_end.iter().all(|&end| end <= 64), "{hot_end:?}");
        let stats = offset_of!(LocalShard<Vec<u8>>, stats);
        for counter in [
            offset_of!(crate::stats::ShardStats, get),
            offset_of!(crate::stats::ShardStats, put),
        ] {
            let at = stats + counter;
            assert!(
                (64..128).contains(&at) && at + 8 <= 128,
                "a counter at {at}"
            );
        }
    }
}
