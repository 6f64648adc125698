//! The per-thread free list: one per thread per pool, touched by its thread, and by another
//! thread only through the handshake that gives a reclaimer the list while its owner is out.

use crate::barrier;
use crate::stats::ShardStats;
use crate::stored::Stored;
use crate::stored_vec::StoredVec;
use crate::sync::{
    AtomicBool, AtomicU32, AtomicUsize, Mutex, MutexGuard, Ordering, UnsafeCell, spin_wait,
};

/// The idle elements one thread has cached for one pool, and the budget it has leased.
///
/// `repr(C)`, hot fields first: what `pop` and `push_from` read (`items`, `low_water`)
/// follows the shard's handshake fields in the first 64 bytes, and the slow
/// path's bookkeeping after it is small enough that the shard's `get` and `put` counters, which
/// follow the list (see [`ShardStats`]), end within the next 64 bytes: the hot path touches two
/// cache lines.
#[repr(C)]
pub(crate) struct LocalList<T> {
    /// Idle elements, warmest last: `pop` hands out the element returned most recently.
    pub(crate) items: StoredVec<T>,
    /// The fewest elements the list has held since the last `trim()` visited it:
    /// `items[..low_water]` have not been checked out since, and are what the next `trim()`
    /// closes.
    pub(crate) low_water: usize,
    /// Units of the pool's budget this thread holds. Invariant: `items.len() <= lease`.
    pub(crate) lease: usize,
    /// The most idle elements this thread's role lets its list hold before the slow path
    /// looks again: `thread_capacity`, and for a thread that gives back more than it takes
    /// `GIVER_BATCH` if that is less (see `Shared::give_on`). Invariant:
    /// `items.len() <= hold_limit <= thread_capacity`; 0 exactly while this thread's exit
    /// hook does not know about the list (see [`is_registered`](Self::is_registered)).
    pub(crate) hold_limit: usize,
    /// Where this thread's elements go: what it took out of the pool minus what it gave back,
    /// as far as the slow path has seen, bounded below by `-GIVER_BATCH` (a consumer that
    /// starts taking is recognised within a few gets) and above by `pool_size` (more elements
    /// than that cannot come back to be kept).
    /// Negative: the thread gives back more than it takes (see `Shared::give_on`).
    pub(crate) balance: i64,
    /// This shard's `get` and `put` counters when the slow path last updated `balance`.
    pub(crate) gets_seen: u64,
    pub(crate) puts_seen: u64,
    /// In a pool with a weigher, each idle element's weight, at the element's index: what the
    /// weigher said when it was given back, so that it is never weighed again. Invariant:
    /// `None` in a pool without a weigher; in one with, `Some` with a length of at least
    /// `items.capacity()` once the buffer has any capacity. Boxed, so that the list's fields
    /// still end where the hot path's counters begin (see above).
    #[expect(
        clippy::box_collection,
        reason = "a thin pointer: the list must stay within its 80 bytes"
    )]
    weights: Option<Box<Vec<usize>>>,
}

impl<T> LocalList<T> {
    /// An empty list with no lease, not yet registered for thread exit.
    fn new() -> Self {
        LocalList {
            items: StoredVec::new(),
            lease: 0,
            hold_limit: 0,
            low_water: 0,
            balance: 0,
            gets_seen: 0,
            puts_seen: 0,
            weights: None,
        }
    }

    /// Whether this thread's exit hook knows about this list (see [`crate::thread_exit`]): the
    /// slow path registers a list before it caches anything there, and the exit flush
    /// unregisters it, so that a later thread reusing the slot registers again.
    pub(crate) fn is_registered(&self) -> bool {
        self.hold_limit > 0
    }

    /// Units this list holds beyond its idle elements: what its checked-out elements will need
    /// when they come back here, and what other threads may take when they need budget.
    pub(crate) fn unused_units(&self) -> usize {
        self.lease - self.items.len()
    }

    /// Makes room in `items` for `additional` more elements, growing the buffer in doubling
    /// steps, but never past `thread_capacity`: a list's buffer is at most `thread_capacity`
    /// elements (the bound `docs/design.md` gives for a thread's memory), which `Vec`'s own
    /// growth would overshoot. The caller keeps `items.len() + additional <= thread_capacity`.
    /// In a pool with a weigher (`weighed`), the weights' buffer grows with it.
    pub(crate) fn reserve_within(
        &mut self,
        additional: usize,
        thread_capacity: usize,
        weighed: bool,
    ) {
        let needed = self.items.len() + additional;
        debug_assert!(needed <= thread_capacity, "{needed} > {thread_capacity}");
        if needed > self.items.capacity() {
            let grown = (2 * self.items.capacity())
                .max(4)
                .min(thread_capacity)
                .max(needed);
            self.items.reserve_exact(grown - self.items.len());
        }
        if weighed {
            let weights = self.weights.get_or_insert_default();
            if weights.len() < self.items.capacity() {
                weights.resize(self.items.capacity(), 0);
            }
        }
    }

    /// Pushes an element the slow path keeps, with its weight in a pool with a weigher,
    /// growing the buffer within `thread_capacity` (see [`reserve_within`](Self::reserve_within)).
    pub(crate) fn keep(&mut self, element: T, weight: Option<usize>, thread_capacity: usize) {
        self.reserve_within(1, thread_capacity, weight.is_some());
        if let (Some(weights), Some(weight)) = (&mut self.weights, weight) {
            weights[self.items.len()] = weight;
        }
        self.items.push(Stored::new(element));
    }

    /// Appends elements that came with their units (a batch from the global shard, or taken
    /// from other lists), oldest first, with their weights (none in a pool without a weigher).
    pub(crate) fn append(
        &mut self,
        elements: impl IntoIterator<Item = T>,
        count: usize,
        weights: &[usize],
        thread_capacity: usize,
    ) {
        self.lease += count;
        self.reserve_within(count, thread_capacity, !weights.is_empty());
        if let Some(list_weights) = &mut self.weights {
            let len = self.items.len();
            list_weights[len..len + weights.len()].copy_from_slice(weights);
        }
        for element in elements {
            self.items.push(Stored::new(element));
        }
        debug_assert!(self.items.len() <= self.lease);
    }

    /// Takes the warmest element out, with its weight (0 in a pool without a weigher),
    /// lowering the low-water mark as the hot path does.
    pub(crate) fn pop(&mut self) -> Option<(T, usize)> {
        let element = self.items.pop()?.into_inner();
        let len = self.items.len();
        self.low_water = self.low_water.min(len);
        Some((element, self.weight_at(len)))
    }

    /// The weight of the element at `at` (0 in a pool without a weigher).
    fn weight_at(&self, at: usize) -> usize {
        self.weights.as_ref().map_or(0, |weights| weights[at])
    }

    /// The weights of the idle elements, oldest first (none in a pool without a weigher).
    pub(crate) fn idle_weights(&self) -> Vec<usize> {
        let len = self.items.len();
        self.weights
            .as_ref()
            .map_or_else(Vec::new, |weights| weights[..len].to_vec())
    }

    /// Takes the `count` oldest elements out, with their weights (none in a pool without a
    /// weigher), and their units off the lease: for the caller to move or close.
    pub(crate) fn take_oldest(&mut self, count: usize) -> (Vec<T>, Vec<usize>) {
        let weights = match &mut self.weights {
            Some(weights) => {
                let taken = weights[..count].to_vec();
                weights.copy_within(count..self.items.len(), 0);
                taken
            }
            None => Vec::new(),
        };
        self.lease -= count;
        self.low_water = self.low_water.saturating_sub(count);
        (self.items.take_front(count), weights)
    }

    /// Whether the list keeps its elements for its own thread: it is no giver's (see
    /// `Shared::give_on`), whose elements are on their way to the global shard.
    pub(crate) fn keeps_for_itself(&self) -> bool {
        self.balance >= 0
    }

    /// How long the hot path may grow `items` without a check of its own: one comparison
    /// covers the budget, the buffer and the thread's role. In a pool without a weigher this
    /// is the plain push's limit, and the weighed push's is 0; in one with, the other way
    /// round (see [`LocalShard::push_weighed_from`]), so that no element goes into a list of
    /// a weighed pool without its weight. The weighed limit fits a `u32`: a lower one only
    /// sends more pushes to the slow path.
    fn push_limits(&self) -> (usize, u32) {
        let limit = self.lease.min(self.items.capacity()).min(self.hold_limit);
        match self.weights {
            None => (limit, 0),
            Some(_) => (0, u32::try_from(limit).unwrap_or(u32::MAX)),
        }
    }
}

/// One thread's shard of a pool: its free list, its counters, and the handshake through which
/// another thread may take the list over for a moment.
///
/// The pool keeps each shard in a `CachePadded`, so that threads whose shards sit side by side
/// in the `ThreadLocal` never write to a line that another thread's hot path uses.
///
/// # The handshake
///
/// The owner touches its list only inside a *section*: it marks the shard busy (a plain store
/// of [`BUSY`] in `state`), passes the light half of the asymmetric barrier
/// ([`crate::barrier`]), reads a flag that a reclaimer sets, and only if the flag lets it
/// works on the list; leaving, it stores the list's length in `state`, with `Release`. A hot-path
/// push reads `push_limit` (0 stops it), or in a pool with a weigher `weighed_limit`, which
/// the rounds below treat alike; every other section (a hot-path pop, any slow-path
/// section) reads `reclaimed`. A *reclaimer* (a thread that trims, clears, or takes budget or
/// elements from other lists) locks the shard's `reclaim_lock` and then makes two rounds, each
/// a store, the heavy half, and a wait until it reads a length, not `BUSY`, with `Acquire`:
///
/// 1. `reclaimed = true`. The halves order like two `SeqCst` fences, so either the owner's
///    load sees the flag (it stays out and waits on the lock), or the reclaimer's load sees
///    `BUSY` (it waits for the section to end, which publishes the section's work). After
///    this round no pop or slow-path section enters, and the one that was running, the only
///    writer of `push_limit` besides reclaimers, has ended.
/// 2. `push_limit = weighed_limit = 0`, by the same argument: after this round no push
///    enters either, and
///    the length the wait reads is the list's (a section that enters later changes nothing
///    and stores the same length again when it leaves).
///
/// The reclaimer then has the list. Both flags stay as they are after it unlocks: only the
/// owner clears `reclaimed` and sets `push_limit` again, from the slow path and holding the
/// lock for the first, which publishes the reclaimer's work to it. So the hot-path push tests
/// one value for the lease, the buffer, the thread's role and a reclaim, and stays as short as
/// a push with no handshake at all (a guard's give-back is inlined where the guard drops); the
/// price is a second heavy half for the reclaimer.
///
/// | side | writes | then | reads |
/// |---|---|---|---|
/// | owner, entering | `state = BUSY` (`Relaxed`) | light half | `push_limit` (or `weighed_limit`) for a hot push, else `reclaimed` (`Relaxed`) |
/// | owner, leaving | `state = new len` (`Release`) | | |
/// | reclaimer, round 1 | lock, `reclaimed = true` | heavy half | `state` (`Acquire`) until not `BUSY` |
/// | reclaimer, round 2 | `push_limit = weighed_limit = 0` | heavy half | `state` (`Acquire`) until not `BUSY`: the length |
/// | owner, after a reclaim | lock (waits), `reclaimed = false`, `state = BUSY` | unlock | |
///
/// # Invariant
///
/// `list` is accessed only
/// - by the thread this shard belongs to (the shard was obtained on the current thread from
///   the pool's `ThreadLocal`, `get` or `get_or`, which maps each live thread to its own
///   slot), inside a section; or
/// - by a reclaimer that holds `reclaim_lock` and made both rounds while holding it; or
/// - through `&mut LocalShard` (the pool is being dropped and nobody else can see it).
///
/// No reference into `list` is alive while user code runs (the generator, a hook, a callback,
/// or the `Drop` of an element), because user code may re-enter the pool on the same thread,
/// and no section or reclaim runs user code, so that a thread waiting for one never waits on
/// user code. Other threads read `stats` (atomics) freely.
#[repr(C)]
pub(crate) struct LocalShard<T> {
    /// The list's length as the hot path keeps it, or [`BUSY`] while the owner is in a
    /// section: the owner enters with a store of `BUSY` (having read the length), and leaves
    /// with a store of the length it leaves, which is the hot path's one write of the length
    /// too.
    /// Written by the owner only. `items`' own length is brought up to it when a slow-path
    /// section starts; a reclaimer, which must not write it (the owner enters sections without
    /// knowing whether one is at the list), brings `items` up to it once and leaves the length
    /// there until the owner synchronises.
    ///
    /// Invariant: outside the owner's sections, `items[..len]` are the list's elements, where
    /// `len` is `state` if no reclaimer has been at the list since the owner last synchronised
    /// with one (`reclaimed` clear), and `items.len()` otherwise; `len <= items.capacity()`.
    state: AtomicUsize,
    /// Set by a reclaimer holding `reclaim_lock`; cleared only by the owner, holding it.
    reclaimed: AtomicBool,
    /// Whether the list keeps its elements for its own thread, rather than passing them on to
    /// the global shard (a thread that gives back more than it takes): written by the owner at
    /// the end of each slow-path section, read by a thread looking for elements to take, as a
    /// hint of which lists are worth a reclaim (the list itself says for sure).
    pub(crate) keeps: AtomicBool,
    /// `push_limit` for the weighed push of a pool with a weigher, with the same invariant
    /// (`push_limit` is 0 there, and this is 0 in a pool without one; see
    /// `LocalList::push_limits`). In the padding after the flags, so that the first line
    /// still holds everything the hot path touches.
    weighed_limit: AtomicU32,
    /// How long a hot-path push may grow the list: `min(lease, items.capacity(),
    /// hold_limit)`, stored by the owner at the end of each slow-path section (0 while one
    /// runs, so that one that unwinds leaves the hot path closed), and 0 from a reclaimer's
    /// second round until the owner has synchronised with it.
    ///
    /// Invariant (relied on by [`LocalShard::push_from`]): a value the owner reads in a
    /// section is 0, or at most the list's `items.capacity()` and `lease`.
    push_limit: AtomicUsize,
    list: UnsafeCell<LocalList<T>>,
    pub(crate) stats: ShardStats,
    /// Held by a reclaimer for as long as it works on the list, and by the owner while it
    /// clears `reclaimed`. Guards no data of its own.
    reclaim_lock: Mutex<()>,
}

// SAFETY: other threads reach a shard through `ThreadLocal::iter`: they read `stats`, which is
// atomic, and touch `list` only as a reclaimer through the handshake, which orders their
// accesses with the owner's (the type's invariant), so sharing `&LocalShard` never lets two
// threads at the list at once. The elements it holds move between threads (through the global
// shard, a reclaimer, or when the pool drops on another thread), hence `T: Send`.
unsafe impl<T: Send> Sync for LocalShard<T> {}

/// `state` while the owner is in a section: no list is that long. A constant rather than a
/// mark on the length, so that entering a section is one store of an immediate (all ones is
/// the sign-extended `-1` that x86-64 stores in one instruction); marking the length would
/// take a copy of it and a 64-bit constant besides.
const BUSY: usize = usize::MAX;

/// A section entered from the slow path. Ends when dropped, even if the section's work unwinds
/// (a reclaimer would otherwise wait for it forever), with the list's length as the section
/// left it.
struct Section<'a, T>(&'a LocalShard<T>);

impl<T> Drop for Section<'_, T> {
    fn drop(&mut self) {
        let shard = self.0;
        // SAFETY: this thread is in a section of its own shard (`enter`), and the section's
        // work, with its borrow of the list, is over.
        let len = shard.list.with_mut(|list| unsafe { (*list).items.len() });
        // Release: a reclaimer that reads the section ended sees everything it did.
        shard.state.store(len, Ordering::Release);
    }
}

impl<T> LocalShard<T> {
    /// An empty shard with no lease, not yet registered for thread exit.
    pub(crate) fn new() -> Self {
        LocalShard {
            state: AtomicUsize::new(0),
            reclaimed: AtomicBool::new(false),
            keeps: AtomicBool::new(true),
            weighed_limit: AtomicU32::new(0),
            push_limit: AtomicUsize::new(0),
            list: UnsafeCell::new(LocalList::new()),
            stats: ShardStats::default(),
            reclaim_lock: Mutex::new(()),
        }
    }

    /// Enters a section and returns the list's length as `state` held it; the caller reads
    /// the reclaimer's flag that stands for its kind of section before it touches the list,
    /// and leaves with [`leave`](Self::leave).
    #[inline(always)]
    fn enter_blind(&self) -> usize {
        // Relaxed: the owner's own last store (no other thread writes `state`), so a length,
        // not `BUSY`: the owner is in no section when it enters one.
        let len = self.state.load(Ordering::Relaxed);
        // Relaxed: the light half orders this store before the caller's load of a flag,
        // against the reclaimer's heavy half.
        self.state.store(BUSY, Ordering::Relaxed);
        barrier::light();
        len
    }

    /// Leaves a section, with the list's length as the section leaves it.
    #[inline(always)]
    fn leave(&self, len: usize) {
        // Release: a reclaimer that reads the section ended sees everything it did.
        self.state.store(len, Ordering::Release);
    }

    /// A reclaimer's wait, after a heavy half, until the owner is in no section; returns the
    /// length `state` held then.
    fn wait_for_owner(&self) -> usize {
        // A section runs no user code and waits on nothing a reclaimer holds, so it ends
        // soon; Acquire makes its work visible here.
        let mut turn = 0;
        loop {
            match self.state.load(Ordering::Acquire) {
                BUSY => spin_wait(&mut turn),
                len => return len,
            }
        }
    }

    /// Enters a section from the slow path, waiting for a reclaim in progress; `items`' own
    /// length is the list's when it returns.
    #[inline]
    fn enter(&self) -> Section<'_, T> {
        let len = self.enter_blind();
        if self.reclaimed.load(Ordering::Relaxed) {
            self.leave(len);
            self.enter_after_reclaim();
        } else {
            // SAFETY: the owner is in a section and no reclaimer has been at the list since
            // it last synchronised with one (`reclaimed` was clear), so `items[..len]` are
            // the list's elements (the invariant of `state`).
            self.list
                .with_mut(|list| unsafe { (*list).items.set_len(len) });
        }
        Section(self)
    }

    /// A reclaimer has been at the list: wait until it is done, take over what it did, and
    /// enter.
    #[cold]
    #[inline(never)]
    fn enter_after_reclaim(&self) {
        // The lock's acquisition synchronises with the reclaimer's release: what it did to the
        // list happens before what this thread does next. It guards `()`: no poison to mind.
        let _reclaimers_done = self.reclaim_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.reclaimed.store(false, Ordering::Relaxed);
        // The reclaimers left the list's length in `items` (the invariant of `state`), where
        // the section finds it; the section stores it in `state` when it ends. Relaxed: the
        // next reclaimer takes the lock after this thread releases it, so it reads this store
        // (or a later one) when it looks at `state`.
        self.state.store(BUSY, Ordering::Relaxed);
    }

    /// Pops the warmest idle element, if a section could be entered on the hot path.
    ///
    /// # Safety
    ///
    /// The caller is this shard's owning thread (see the type's invariant).
    #[inline]
    pub(crate) unsafe fn pop(&self) -> Option<Stored<T>> {
        let len = self.enter_blind();
        // Since the owner last synchronised with a reclaimer, one has been at the list (the
        // slow path synchronises, and `len` may be stale), or the list is empty.
        if self.reclaimed.load(Ordering::Relaxed) || len == 0 {
            self.leave(len);
            return None;
        }
        let element = self.list.with_mut(|list| {
            // SAFETY: the caller owns the shard and is in a section that no reclaimer is in
            // (`reclaimed` was clear); the borrow ends before the section does, and nothing
            // here runs user code (the element is moved out, never dropped).
            let list = unsafe { &mut *list };
            // SAFETY: `items[len - 1]` is initialised (the invariant of `state`); the section
            // leaves with the list one shorter, so the element read out is the caller's alone.
            let element = unsafe { list.items.read(len - 1) };
            // A branch, not `min`: in steady use the list refills to the same length, so the
            // mark stays put and the line is not written again.
            if len - 1 < list.low_water {
                list.low_water = len - 1;
            }
            element
        });
        self.leave(len - 1);
        Some(element)
    }

    /// [`pop`](Self::pop) for a pool with a weigher or a validator: the element's weight
    /// (in a pool with a weigher) is taken off the idle weight too. Apart from `pop`, so that
    /// the hot path's pop, inlined where elements are checked out, stays as short as it was.
    ///
    /// # Safety
    ///
    /// As for [`pop`](Self::pop).
    #[inline]
    pub(crate) unsafe fn pop_weighed(&self) -> Option<Stored<T>> {
        let len = self.enter_blind();
        if self.reclaimed.load(Ordering::Relaxed) || len == 0 {
            self.leave(len);
            return None;
        }
        let (element, weight) = self.list.with_mut(|list| {
            // SAFETY: as in `pop`: the caller owns the shard and is in a section no reclaimer
            // is in; nothing here runs user code.
            let list = unsafe { &mut *list };
            // SAFETY: as in `pop`, `items[len - 1]` is initialised, and the section leaves
            // with the list one shorter.
            let element = unsafe { list.items.read(len - 1) };
            if len - 1 < list.low_water {
                list.low_water = len - 1;
            }
            // The weights' buffer is as long as the items' (the invariant of `weights`).
            let weight = list
                .weights
                .as_deref()
                .and_then(|weights| weights.get(len - 1));
            (element, weight.copied())
        });
        self.leave(len - 1);
        if let Some(weight) = weight {
            self.stats.weight_out.add(weight);
        }
        Some(element)
    }

    /// Moves the element at `src` into the list if `push_limit` leaves room for it (room in
    /// the lease and the buffer, and no reclaimer at the list since the owner last
    /// synchronised with one); returns whether it did. The element is copied straight from
    /// where the caller keeps it (see [`crate::word_move`]). In a pool with a weigher the limit
    /// is 0: a give-back there goes through [`push_weighed_from`](Self::push_weighed_from).
    ///
    /// # Safety
    ///
    /// The caller is this shard's owning thread (see the type's invariant), and `src` points
    /// to an initialised element that nothing else uses. If this returns `true`, the element
    /// is the list's: the caller treats `*src` as moved out.
    #[inline(always)]
    pub(crate) unsafe fn push_from(&self, src: *const Stored<T>) -> bool {
        let len = self.enter_blind();
        // Relaxed: the owner's own value, or a reclaimer's 0, ordered by the barrier's
        // halves. With 0, a reclaimer may be at the list and `len` may be stale: the
        // comparison fails whatever it is, and the list is not touched. Otherwise it is a
        // full lease or a full buffer (the slow path leases more, or grows the buffer).
        let push_limit = self.push_limit.load(Ordering::Relaxed);
        let pushed = len < push_limit;
        if pushed {
            self.list.with_mut(|list| {
                // SAFETY: the caller owns the shard and is in a section that no reclaimer is
                // in (`push_limit` was not 0); the borrow ends before the section does, and
                // the copy runs no user code (an element is moved, never dropped).
                let list = unsafe { &mut *list };
                debug_assert!(len < list.items.capacity() && len < list.lease);
                // SAFETY: `len < push_limit <= capacity` (the invariants of both), so there is
                // room at index `len`, spare capacity until the section leaves with the list
                // one longer; `src` is valid and, being the caller's, not inside the list.
                unsafe { list.items.write(len, src) };
            });
        }
        self.leave(len + usize::from(pushed));
        pushed
    }

    /// [`push_from`](Self::push_from) for a pool with a weigher: moves the element at `src`
    /// into the list with its `weight`, if `weighed_limit` leaves room for it (as `push_limit`
    /// does for the plain push), and counts the weight in; returns whether it did.
    ///
    /// # Safety
    ///
    /// As for [`push_from`](Self::push_from).
    #[inline(always)]
    pub(crate) unsafe fn push_weighed_from(&self, src: *const Stored<T>, weight: usize) -> bool {
        let len = self.enter_blind();
        // Relaxed: as for `push_limit` in `push_from`.
        let limit = self.weighed_limit.load(Ordering::Relaxed) as usize;
        let pushed = len < limit;
        if pushed {
            self.list.with_mut(|list| {
                // SAFETY: the caller owns the shard and is in a section that no reclaimer is
                // in (`weighed_limit` was not 0); the copy runs no user code.
                let list = unsafe { &mut *list };
                debug_assert!(len < list.items.capacity() && len < list.lease);
                if let Some(weights) = list.weights.as_deref_mut() {
                    debug_assert!(len < weights.len());
                    // SAFETY: `len < weighed_limit <= capacity <= weights.len()` (the
                    // invariants of `weighed_limit` and `weights`).
                    unsafe { *weights.as_mut_ptr().add(len) = weight };
                }
                // SAFETY: `len < weighed_limit <= capacity`, so there is room at index `len`,
                // spare capacity until the section leaves with the list one longer; `src` is
                // valid and, being the caller's, not inside the list.
                unsafe { list.items.write(len, src) };
            });
        }
        self.leave(len + usize::from(pushed));
        if pushed {
            self.stats.weight_in.add(weight);
        }
        pushed
    }

    /// Runs `f` on the list in a section (waiting for a reclaim in progress), and then brings
    /// the hot path's `push_limit` up to date with what `f` did to the lease and the buffer.
    ///
    /// # Safety
    ///
    /// The caller is this shard's owning thread (see the type's invariant), and `f` runs no
    /// user code: it calls no hook or callback and drops no element (it may move them out).
    #[inline]
    pub(crate) unsafe fn with_list<R>(&self, f: impl FnOnce(&mut LocalList<T>) -> R) -> R {
        let _section = self.enter();
        self.list.with_mut(|list| {
            // SAFETY: the caller owns the shard and is in a section, and `f` cannot re-enter
            // the pool, so this is the only reference into the list while it lives.
            let list = unsafe { &mut *list };
            // 0 until `f` is done: should `f` unwind, the hot path stays off the list until
            // the next call here sets the limit again. Relaxed, both: read by this thread,
            // and written by a reclaimer only after this section (the handshake).
            self.push_limit.store(0, Ordering::Relaxed);
            self.weighed_limit.store(0, Ordering::Relaxed);
            let result = f(list);
            let (push_limit, weighed_limit) = list.push_limits();
            self.push_limit.store(push_limit, Ordering::Relaxed);
            self.weighed_limit.store(weighed_limit, Ordering::Relaxed);
            // Relaxed: a hint, read without the handshake.
            self.keeps.store(list.keeps_for_itself(), Ordering::Relaxed);
            result
        })
    }

    /// Brings `items`' own length up to the list's, through exclusive access.
    fn sync_len(&mut self) {
        // Relaxed, both: `&mut self` orders everything before it.
        if self.reclaimed.load(Ordering::Relaxed) {
            // A reclaimer left the length in `items` (the invariant of `state`).
            return;
        }
        let len = self.state.load(Ordering::Relaxed);
        debug_assert_ne!(len, BUSY, "no section is in progress");
        // SAFETY: `&mut self` is exclusive, and `items[..len]` are the list's elements (the
        // invariant of `state`).
        self.list
            .with_mut(|list| unsafe { (*list).items.set_len(len) });
    }

    /// Takes every idle element out of the list, through exclusive access (the pool is
    /// dropping).
    pub(crate) fn take_items(&mut self) -> Vec<T> {
        self.sync_len();
        self.state.store(0, Ordering::Relaxed);
        // SAFETY: `&mut self` is exclusive, so no other reference into the list exists, and
        // the closure runs no user code.
        let items = self
            .list
            .with_mut(|list| std::mem::take(unsafe { &mut (*list).items }));
        items.into_elements()
    }
}

impl<T> Drop for LocalShard<T> {
    fn drop(&mut self) {
        // The elements the hot path left in the list drop with it.
        self.sync_len();
    }
}

/// The lists of several shards, taken over from their owners through the handshake (see
/// [`LocalShard`]): while this lives, no owner is in a section of any of them, and an owner
/// that tries to enter one waits until this drops.
pub(crate) struct Reclaim<'a, T> {
    /// Each shard with its `reclaim_lock` held, in the order they were locked.
    held: Vec<(&'a LocalShard<T>, MutexGuard<'a, ()>)>,
}

impl<'a, T> Reclaim<'a, T> {
    /// Takes over every list of `shards` at once, with the handshake's two rounds (see
    /// [`LocalShard`]) made for all of them together: two heavy barriers in all.
    ///
    /// The locks are taken in the order `shards` gives, which must be one order for every
    /// reclaimer of the pool (the `ThreadLocal`'s slot order), so two reclaimers never wait on
    /// each other in a circle. The caller holds no section of its own while this runs.
    /// Where the process has no heavy half ([`barrier::reaches_other_threads`]), it takes over
    /// no list.
    pub(crate) fn begin(shards: impl Iterator<Item = &'a LocalShard<T>>) -> Self {
        let (mut held, mut first) = (Vec::new(), Vec::new());
        let shards = shards.take_while(|_| barrier::reaches_other_threads());
        for shard in shards {
            // Guards `()`: no poison to mind.
            let lock = shard.reclaim_lock.lock().unwrap_or_else(|e| e.into_inner());
            // Relaxed, both: written under the lock (by the owner too), and the heavy half
            // below orders the store before the loads of `state`. Whether this is the first
            // reclaimer since the owner last synchronised with one says where the list's
            // length is (the invariant of `state`).
            first.push(!shard.reclaimed.load(Ordering::Relaxed));
            shard.reclaimed.store(true, Ordering::Relaxed);
            held.push((shard, lock));
        }
        if held.is_empty() {
            return Reclaim { held };
        }
        // Round 1: after it, no pop or slow-path section is in or enters any of the lists.
        barrier::heavy();
        for (shard, _) in &held {
            shard.wait_for_owner();
        }
        // Round 2: after it, no push is in or enters either. Relaxed: the heavy half orders
        // the stores before the loads of `state`; only the owner, after it synchronised with
        // this reclaimer through the lock, sets the limit again.
        for (shard, _) in &held {
            shard.push_limit.store(0, Ordering::Relaxed);
            shard.weighed_limit.store(0, Ordering::Relaxed);
        }
        barrier::heavy();
        for ((shard, _), first) in held.iter().zip(first) {
            // The length the owner's last section that changed the list left: every section
            // that started after the heavy half saw a flag and changed nothing (its blind
            // entry stores `BUSY` and then the same length again), and each one before had
            // ended when this read it.
            let len = shard.wait_for_owner();
            if !first {
                continue;
            }
            // SAFETY: this reclaimer made both rounds while holding the lock, so the list is
            // its own (the type's invariant); no reclaimer had been at it since the owner last
            // synchronised with one, so `items[..len]` are its elements (the invariant of
            // `state`). From here until the owner synchronises, `items` holds the length.
            shard
                .list
                .with_mut(|list| unsafe { (*list).items.set_len(len) });
        }
        Reclaim { held }
    }

    /// Runs `f` on each list taken over; `f` runs no user code (it may move elements out, and
    /// must not drop them). The hot path's `push_limit` stays 0, and the list's length stays
    /// in `items`: the owner takes both up again once it has synchronised with this reclaimer.
    pub(crate) fn for_each(&mut self, mut f: impl FnMut(&mut LocalList<T>)) {
        for (shard, _) in &self.held {
            // SAFETY: this reclaimer holds the shard's lock and made both rounds of the
            // handshake while holding it (`begin`): the type's invariant gives it the list,
            // and `f` runs no user code.
            shard.list.with_mut(|list| f(unsafe { &mut *list }));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::mem::ManuallyDrop;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::{LocalList, LocalShard, Stored, StoredVec};

    /// Pushes `value` through the hot path; returns whether the list took it (if not, the
    /// value is dropped here).
    fn push(shard: &LocalShard<String>, value: &str) -> bool {
        let mut value = ManuallyDrop::new(Stored::new(String::from(value)));
        // SAFETY: this thread made the shard and is its only user; `value` is a live local
        // that nothing else uses.
        let kept = unsafe { shard.push_from(&*value) };
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

    /// The hot path's one limit stands for the lease, the buffer's capacity and the hold
    /// limit, and is closed while a slow-path change is in progress or after one unwound.
    #[test]
    fn push_limit_is_the_least_of_lease_capacity_and_hold_limit() {
        let shard = LocalShard::<String>::new();
        assert!(!push(&shard, "no lease yet"));

        on_list(&shard, |list| {
            (list.lease, list.hold_limit) = (4, 8);
            list.items.reserve_exact(2);
        });
        assert!(push(&shard, "kept") && push(&shard, "kept"));
        let refused = push(&shard, "over the capacity");
        assert!(!refused, "the buffer bounds the hot path");

        on_list(&shard, |list| list.items.reserve_exact(16));
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

        on_list(&shard, |list| list.lease = 16);
        assert!((0..4).all(|_| push(&shard, "kept")));
        assert!(
            !push(&shard, "over the hold limit"),
            "the hold limit bounds it too"
        );
        assert_eq!(on_list(&shard, |list| list.items.len()), 8);
    }

    /// A list's buffer grows in doubling steps from 4 and stops at `thread_capacity`, whether
    /// it grows one element or a batch at a time.
    #[test]
    fn a_list_buffer_never_grows_past_thread_capacity() {
        for thread_capacity in 1..=40 {
            let mut list = LocalList::new();
            for n in 0..thread_capacity {
                list.keep(n as u64, None, thread_capacity);
                assert!(list.items.capacity() <= thread_capacity);
            }
            assert_eq!(list.items.capacity(), thread_capacity);
            list.items.take_front(list.items.len());
            let batch = thread_capacity.div_ceil(2);
            list.reserve_within(batch, thread_capacity, false);
            for n in 0..batch as u64 {
                list.items.push(Stored::new(n));
            }
            assert_eq!(list.items.capacity(), thread_capacity, "the buffer is kept");

            let mut fresh = LocalList::<u64>::new();
            fresh.reserve_within(batch, thread_capacity, false);
            assert!(fresh.items.capacity() >= batch);
            assert!(
                fresh.items.capacity() <= thread_capacity,
                "{thread_capacity}"
            );
        }
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
    /// handshake's flags and the list's hot fields in the first, the `get` and `put` counters
    /// in the second.
    #[test]
    fn the_hot_path_touches_two_cache_lines() {
        use std::mem::offset_of;
        type Shard = LocalShard<Vec<u8>>;
        type List = LocalList<Vec<u8>>;
        let list = offset_of!(Shard, list);
        let hot_end = [
            offset_of!(Shard, state) + 8,
            offset_of!(Shard, reclaimed) + 1,
            offset_of!(Shard, push_limit) + 8,
            list + offset_of!(List, items) + std::mem::size_of::<StoredVec<Vec<u8>>>(),
            list + offset_of!(List, low_water) + 8,
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

/// Model-checks the handshake itself: `scripts/loom.sh handshake`. The list sits in a loom cell,
/// so loom reports any access of the owner's that is not ordered with the reclaimer's.
#[cfg(all(test, loom))]
mod loom_tests {
    use std::mem::ManuallyDrop;

    use loom::sync::Arc;

    use super::{LocalList, LocalShard, Reclaim, Stored};

    /// A reclaimer that takes every idle element and unused unit of `shard`, and returns them.
    fn spawn_taking_reclaimer(
        shard: &Arc<LocalShard<u32>>,
    ) -> loom::thread::JoinHandle<(Vec<u32>, usize)> {
        let shard = Arc::clone(shard);
        loom::thread::spawn(move || {
            let (mut taken, mut units) = (Vec::new(), 0);
            Reclaim::begin(std::iter::once(&*shard)).for_each(|list| {
                units += list.lease;
                let len = list.items.len();
                taken.extend(list.items.take_front(len));
                list.lease = 0;
            });
            (taken, units)
        })
    }

    /// Joins `reclaimer` and checks that the one element is in exactly one place (taken,
    /// listed, or `away` with the owner) and that the 2 units are whole.
    fn assert_one_place(
        shard: &LocalShard<u32>,
        reclaimer: loom::thread::JoinHandle<(Vec<u32>, usize)>,
        away: usize,
    ) {
        let (taken, units) = reclaimer.join().unwrap();
        // SAFETY: the reclaimer has been joined; this thread owns the shard.
        let (listed, lease) = unsafe {
            shard.with_list(|list| {
                let len = list.items.len();
                let listed = list.items.take_front(len);
                (listed, list.lease)
            })
        };
        assert_eq!(
            taken.len() + listed.len() + away,
            1,
            "{taken:?} {listed:?} {away}"
        );
        assert!(listed.len() <= lease);
        assert_eq!(units + lease, 2, "units created or lost");
    }

    /// The owner's hot-path pop, then a hot-path push of the same element (each falling back
    /// to the slow path's section when a reclaimer's mark is up), against a reclaimer that
    /// takes every idle element and unused unit: the element is in exactly one place at the
    /// end, and the units with it.
    #[test]
    fn handshake_owner_pop_and_push_against_a_reclaim() {
        loom::model(|| {
            let shard = Arc::new(LocalShard::<u32>::new());
            // SAFETY: the model's main thread is the shard's owner throughout.
            unsafe {
                shard.with_list(|list| {
                    list.lease = 2;
                    list.items.reserve_exact(2);
                    list.items.push(Stored::new(7));
                })
            };
            let reclaimer = spawn_taking_reclaimer(&shard);
            // SAFETY: this thread owns the shard; the closures run no user code.
            let popped = unsafe {
                shard.pop().map(Stored::into_inner).or_else(|| {
                    shard
                        .with_list(|list| list.pop())
                        .map(|(element, _)| element)
                })
            };
            let mut back = 0;
            if let Some(element) = popped {
                let element = ManuallyDrop::new(Stored::new(element));
                // SAFETY: as above; `element` is this thread's own, and moved out if kept.
                let kept = unsafe { shard.push_from(&*element) }
                    || unsafe {
                        shard.with_list(|list| {
                            let room = list.items.len() < list.lease;
                            if room {
                                list.items.push(Stored::new(*element.get()));
                            }
                            room
                        })
                    };
                back = usize::from(!kept);
            }
            assert_one_place(&shard, reclaimer, back);
        });
    }

    /// The owner's slow-path section `setup`, which sets the hot path's limits, and then the
    /// hot-path push `push` of one element, against a reclaimer that takes every idle element
    /// and unused unit: however the section and the reclaimer's rounds interleave, the push
    /// never lands in a list the reclaimer is working on (loom's cell reports it), and the
    /// element and the units each end up in one place. `push` returns whether it kept it.
    fn hot_push_against_a_reclaim(
        setup: impl Fn(&mut LocalList<u32>),
        push: impl Fn(&LocalShard<u32>, &Stored<u32>) -> bool,
    ) {
        let shard = Arc::new(LocalShard::<u32>::new());
        let reclaimer = spawn_taking_reclaimer(&shard);
        // SAFETY: the model's main thread is the shard's owner throughout; `setup` runs no
        // user code.
        unsafe { shard.with_list(setup) };
        let element = ManuallyDrop::new(Stored::new(7));
        let kept = push(&shard, &element);
        assert_one_place(&shard, reclaimer, usize::from(!kept));
    }

    /// [`hot_push_against_a_reclaim`] with the plain push of a pool without a weigher.
    #[test]
    fn handshake_slow_section_then_hot_push_against_a_reclaim() {
        loom::model(|| {
            hot_push_against_a_reclaim(
                |list| {
                    list.lease += 2;
                    list.items.reserve_exact(2);
                },
                // SAFETY: the caller owns the shard; the element is the caller's, moved out
                // if kept.
                |shard, element| unsafe { shard.push_from(element) },
            )
        });
    }

    /// [`hot_push_against_a_reclaim`] with the weighed push of a pool with a weigher, under
    /// its own limit, which the reclaimer's second round closes too; the weight is counted
    /// in only if the element was kept.
    #[test]
    fn handshake_slow_section_then_weighed_push_against_a_reclaim() {
        loom::model(|| {
            hot_push_against_a_reclaim(
                |list| {
                    list.lease += 2;
                    list.hold_limit = 2;
                    list.reserve_within(2, 2, true);
                },
                |shard, element| {
                    // SAFETY: as above.
                    let kept = unsafe { shard.push_weighed_from(element, 5) };
                    assert_eq!(shard.stats.weight_in.read(), if kept { 5 } else { 0 });
                    kept
                },
            )
        });
    }

    /// Two reclaimers at once over two shards, locking in one order: neither waits on the
    /// other forever, and each list is worked on by one of them at a time.
    #[test]
    fn handshake_two_reclaimers_over_two_lists() {
        loom::model(|| {
            let shards = Arc::new([LocalShard::<u32>::new(), LocalShard::<u32>::new()]);
            let reclaimers: Vec<_> = (0..2)
                .map(|_| {
                    let shards = Arc::clone(&shards);
                    loom::thread::spawn(move || {
                        Reclaim::begin(shards.iter()).for_each(|list| list.lease += 1);
                    })
                })
                .collect();
            for reclaimer in reclaimers {
                reclaimer.join().unwrap();
            }
            for shard in shards.iter() {
                // SAFETY: both reclaimers have been joined; this thread stands for the owner.
                assert_eq!(unsafe { shard.with_list(|list| list.lease) }, 2);
            }
        });
    }
}
