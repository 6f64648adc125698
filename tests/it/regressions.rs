//! Regression tests for the bugs these suites found in the pool, each the minimal
//! reproduction written when it was found (all four fixed in commit 3b05032, "Fix four bugs
//! the test suites found"). Each test's comment says which run found it, what went wrong, and
//! where. The fourth is undefined behaviour that only Miri sees (`scripts/miri.sh`).
//!
//! A fifth bug, which the public API reaches only through a race, has its test beside the code
//! it concerns: `shared::tests::stale_elements_are_closed_when_a_panic_unwinds_past_them` in
//! `src/shared.rs` (see `docs/reliability.md`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cachepool::CachePool;

use crate::common::{
    Fixture, Ledger, Site, Tracked, UserOps, expect_injected, inject, silence_injected_panics,
};

/// Found by `stress::injected_faults_across_thread_generations_lose_nothing` (an element
/// "dropped while in the pool", `stats.new` one short of the elements created).
///
/// `Shared::prefill` (src/lifecycle.rs) called the generator without guarding against a
/// panic: when it panics, the elements already made for the current batch (still in a local
/// `Vec`) are dropped without reaching the close callback or being counted in `new`, and the
/// `units` leased for the whole prefill are never released, so the pool can cache fewer
/// elements for the rest of its life. A fix: catch the panic around the generator call, spill
/// (and count) what was made, release the unused units, then resume the panic.
#[test]
fn a_generator_panicking_during_prefill_loses_no_element_and_no_budget() {
    let _quiet = silence_injected_panics();
    let ledger = Ledger::new();
    let (g, c, calls) = (ledger.clone(), ledger.clone(), AtomicUsize::new(0));
    let pool = CachePool::builder(move || {
        if calls.fetch_add(1, Ordering::Relaxed) == 1 {
            inject(Site::Generator); // the second element of the first batch
        }
        g.create()
    })
    .close_callback(move |e: Tracked| c.close(e))
    .pool_size(4)
    .thread_capacity(4) // batches of 2
    .build();
    let f = Fixture { pool, ledger };

    let panic = catch_unwind(AssertUnwindSafe(|| f.pool.prefill(4))).unwrap_err();
    assert_eq!(expect_injected(panic), Site::Generator);
    // The element made before the panic is idle (or closed), not dropped unseen.
    f.ledger.assert_no_violations();
    let stats = f.quiet_stats();
    assert_eq!(stats.new, 1, "{stats}");

    // The whole budget is still there: the pool caches `pool_size` elements again.
    let taken: Vec<Tracked> = (0..4).map(|_| f.take()).collect();
    taken.into_iter().for_each(|e| f.put(e));
    assert_eq!(f.quiet_stats().idle, 4, "budget units leaked by the panic");
    f.finish();
}

thread_local! {
    static LATE: std::cell::RefCell<Vec<cachepool::OwnedCheckout<u8>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `threads` threads one after the other; each takes a thread id, checks out a guard and,
/// with `late`, leaves it in a thread-local destroyed after `thread_local`'s id guard.
/// Returns how many slots the probe `ThreadLocal` has: thread ids ever handed out while it
/// lived, since sequential threads reuse ids.
fn thread_ids_used(threads: usize, late: bool) -> usize {
    let probe = thread_local::ThreadLocal::<()>::new();
    let pool = CachePool::builder(|| 0u8)
        .pool_size(8)
        .thread_capacity(4)
        .build();
    for _ in 0..threads {
        std::thread::scope(|s| {
            s.spawn(|| {
                if late {
                    LATE.with(|_| {}); // destroyed after the id guard registered below
                }
                probe.get_or(|| ());
                let g = pool.checkout_owned();
                if late {
                    LATE.with(|l| l.borrow_mut().push(g));
                }
            })
            .join()
            .unwrap();
        });
    }
    probe.iter().count()
}

/// Found while writing `thread_exit::owned_guard_in_a_thread_local_*` (which pass: the
/// element itself is not lost).
///
/// A guard dropped late in thread exit, after the `thread_local` crate released the thread's
/// id, reaches `Shared::home()` (src/shared.rs), which calls `ThreadLocal::get_or`: that
/// allocates a fresh thread id, then panics registering its guard (`AccessError`, which
/// `home()` catches, but the panic hook has already printed "cannot access a Thread Local
/// Storage value during or after destruction" to stderr). The id is never released: each such
/// thread leaks one, later threads get ever larger ids, and every `ThreadLocal` in the process
/// (the pool's included) grows with them. A fix: in `home()`, check that the thread can still
/// register its exit hook (`EXIT_HOOKS.try_with`) *before* calling `get_or`, and pass through
/// otherwise.
#[test]
fn a_guard_dropped_late_in_thread_exit_does_not_leak_a_thread_id() {
    let threads = if cfg!(miri) { 4 } else { 64 };
    // Control: without late drops, sequential threads keep reusing the same few ids (other
    // tests' threads may hold some meanwhile).
    let normal = thread_ids_used(threads, false);
    assert!(
        normal < threads / 2,
        "control: {normal} ids for {threads} threads"
    );
    let late = thread_ids_used(threads, true);
    assert!(
        late < threads / 2,
        "{late} thread ids for {threads} sequential threads: one leaked per late drop"
    );
}

/// Found by `stress::every_fault_site_is_exercised` once `clear()` and `trim()` joined the
/// workload (an element "dropped while in the pool", ledger idle one above `stats().idle`).
///
/// After another thread's `clear()` or `trim()`, this thread's `put` leaves the hot path
/// (generation changed) for `Shared::put_slow` (src/shared.rs), whose first call, `home()`,
/// catches the thread's list up: it closes the stale elements with `evict_or_panic`. If a
/// close callback panics there, the panic leaves `put_slow` before the element being put is
/// stored or closed: that element is dropped during the unwind, never seen by the close
/// callback (and the same happens to a guard's element when the guard drops). The exit hook
/// has the same shape: `flush_current_thread` calls `catch_up` first, and a panic there skips
/// the flush, leaving the slot `registered` with its lease for the next thread that reuses
/// it. A fix: let `catch_up` collect the first panic and have its callers finish their
/// work (store or close the element, flush the list) before resuming it.
#[test]
fn a_close_callback_panicking_while_catching_up_does_not_lose_the_element_being_put() {
    let _quiet = silence_injected_panics();
    let f = Fixture::new(16, 4);
    let (mut stale, returning) = (f.take(), f.take());
    stale.panic_in_close = true;
    f.put(stale); // idle in this thread's list
    let pool = f.pool.clone();
    std::thread::spawn(move || pool.clear()).join().unwrap(); // this list catches up later
    let id = returning.id();
    let panic = catch_unwind(AssertUnwindSafe(|| f.put(returning))).unwrap_err();
    assert_eq!(
        expect_injected(panic),
        Site::Close,
        "the stale element's close panicked"
    );
    // The element being put was either kept or closed; never dropped unseen.
    f.ledger.assert_no_violations();
    let state = f.ledger.state_of(id);
    assert!(
        state == crate::common::state::IN_POOL || state == crate::common::state::CLOSED,
        "{state}"
    );
    f.quiet_stats();
    f.finish();
}

/// Found by Miri on `guards::callbacks_that_re_enter_their_own_pool_find_it_consistent`
/// (Stacked Borrows and Tree Borrows agree); natively nothing visible happens.
///
/// On a thread's first use of a pool, `Shared::home()` (src/shared.rs) gets the thread's
/// shard from `ThreadLocal::get_or`, which returns a reference derived from the `&mut` that
/// `thread_local`'s `insert` made with `MaybeUninit::write`. Every later access goes through
/// `ThreadLocal::get`, a different pointer. `get_slow` keeps the first reference across user
/// code (the generator here; also the validator and the close callback of a refused element):
/// when that code uses the pool on the same thread, its counter writes through the other
/// pointer invalidate the first reference, and `get_slow`'s `shard.stats.get.bump()` through it
/// is undefined behaviour ("trying to retag ... but that tag does not exist in the borrow
/// stack" at src/shared.rs, `shard.stats.get.bump()`). A fix, checked under both models: in
/// `home()`, call `get_or` only to create the shard, then take the reference from
/// `self.locals.get()`.
#[test]
fn a_callback_re_entering_during_a_threads_first_checkout_keeps_references_valid() {
    let slot: Arc<Mutex<Option<CachePool<u32>>>> = Arc::default();
    let re_entry = Arc::clone(&slot);
    let pool = CachePool::builder(move || {
        // The generator of the thread's first checkout uses the pool (once).
        let pool = re_entry.lock().unwrap().take(); // unlocked before the nested calls
        if let Some(pool) = pool {
            let x = pool.get();
            pool.put(x);
        }
        7u32
    })
    .pool_size(2)
    .thread_capacity(2)
    .build();
    *slot.lock().unwrap() = Some(pool.clone());
    let x = pool.get(); // UB under Miri, in get_slow after the generator returns
    pool.put(x);
    let stats = pool.stats();
    assert_eq!((stats.new, stats.get, stats.put), (2, 2, 2));
}
