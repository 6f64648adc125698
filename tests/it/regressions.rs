//! Regression tests: minimal reproductions of the sequences and interleavings in which the pool
//! can lose an element or a unit of budget, leak a thread id, reach undefined behaviour, or
//! abort the process. Each test's comment says what it pins, the sequence that breaks it, and
//! which code in `src/` handles it. One is undefined behaviour that only Miri sees
//! (`scripts/miri.sh`): `a_callback_re_entering_during_a_threads_first_checkout_*`.
//!
//! One more hazard, which the public API reaches only through a race, has its test beside the
//! code it concerns: `slow_path::tests::stale_elements_are_closed_when_a_panic_unwinds_past_them`
//! in `src/slow_path.rs`. `docs/reliability.md` lists which test covers which guarantee.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use cachepool::CachePool;

use crate::common::{
    Fixture, Ledger, Site, Tracked, UserOps, assert_stats, expect_injected, inject,
    silence_injected_panics,
};

/// A generator that panics during `prefill` loses no element and no unit of budget.
///
/// If the generator panics partway through a batch, the elements already made for that batch
/// (still in a local `Vec`) must still reach the global shard and be counted in `new`, and the
/// units leased for the whole prefill but not used must go back to the budget; otherwise the
/// elements are dropped unseen by the close callback, and the pool caches fewer elements for
/// the rest of its life. `Shared::prefill` (src/lifecycle.rs) calls the generator inside
/// `catch_unwind`, spills and counts what the batch made, releases the unused units, and only
/// then resumes the panic.
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

/// A guard dropped late in thread exit does not leak a thread id.
///
/// If a guard is dropped in a thread-local destructor that runs after the `thread_local` crate
/// released the thread's id, its give-back finds no shard for the thread and reaches
/// `Shared::home()`. Calling `ThreadLocal::get_or` there would allocate a fresh thread id and
/// then panic registering its id guard (the panic hook prints "cannot access a Thread Local
/// Storage value during or after destruction"), and that id is never released: each such
/// thread leaks one, later threads get ever larger ids, and every `ThreadLocal` in the process
/// (the pool's included) grows with them. The element itself is not lost
/// (`thread_exit::owned_guard_in_a_thread_local_*` checks that). `Shared::home()`
/// (src/slow_path.rs) checks `thread_exit::is_exiting()` (src/thread_exit.rs) before calling
/// `get_or` and returns `None`, so the element passes through to the global shard.
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

/// A close callback that panics on an element another thread's `clear()` took from this
/// thread's list loses nothing: neither that element nor the one this thread puts next.
///
/// The hazard: were the cleared elements closed by the list's own thread at its next `put`, a
/// close callback's panic there could unwind past the element being put, dropped unseen by
/// the close callback. `clear()` takes every list over itself (`Shared::take_idle_everywhere`, src/reclaim.rs) and closes what it took on the
/// calling thread once every list is handed back, so the panic reaches the caller of `clear()`
/// with every element accounted for, and this thread's next `put` finds its list empty.
#[test]
fn a_close_callback_panicking_in_another_threads_clear_loses_nothing() {
    let _quiet = silence_injected_panics();
    let f = Fixture::new(16, 4);
    let (mut stale, returning) = (f.take(), f.take());
    stale.panic_in_close = true;
    f.put(stale); // idle in this thread's list
    let pool = f.pool.clone();
    let panic = std::thread::spawn(move || pool.clear()).join().unwrap_err();
    assert_eq!(
        expect_injected(panic),
        Site::Close,
        "the cleared element's close panicked, in clear()'s caller"
    );
    let id = returning.id();
    f.put(returning);
    f.ledger.assert_no_violations();
    assert_eq!(f.ledger.state_of(id), crate::common::State::InPool);
    f.quiet_stats();
    f.finish();
}

/// User code that re-enters the pool during a thread's first checkout leaves the thread's
/// shard reference valid.
///
/// Only Miri sees this (Stacked Borrows and Tree Borrows both report it; natively nothing
/// visible happens, and `guards::callbacks_that_re_enter_their_own_pool_find_it_consistent`
/// reaches it too): on a thread's first use of a pool, `ThreadLocal::get_or` returns a
/// reference derived from the `&mut` that `thread_local`'s `insert` wrote the shard through,
/// while every later access goes through `ThreadLocal::get`, a different pointer. If
/// `get_slow` holds the `get_or` reference across user code (the generator here; also the
/// validator and the close callback of a refused element) and that code uses the pool on the
/// same thread, its counter writes through the other pointer invalidate the held reference,
/// and `get_slow`'s `shard.stats.get.bump()` through it once the generator returns is
/// undefined behaviour ("trying to retag ... but that tag does not exist in the borrow
/// stack"). `Shared::home()` (src/slow_path.rs) calls `get_or` only to create the shard and
/// takes its reference from `self.locals.get()`, the pointer every later access uses.
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
    let x = pool.get(); // the generator re-enters the pool inside `get_slow`
    pool.put(x);
    let stats = pool.stats();
    assert_stats!(stats, new: 2, get: 2, put: 2);
}

// The cases below pin that a close callback's panic never aborts the process, where it is
// raised in code that must not unwind: pools and guards kept in `thread_local!`s, a `Drop`
// running while the thread unwinds, thread exit. Each runs in a child process (`in_child`), so
// that an abort fails the test instead of killing the suite.

/// Runs the scenario `name` of [`child_scenario`] in a child process (this test binary, run
/// again on one test) and returns whether it exited normally: an abort kills the child only.
fn in_child(name: &str) -> std::process::Output {
    let exe = std::env::current_exe().expect("the test binary");
    std::process::Command::new(exe)
        .args(["--exact", "regressions::child_scenario", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_SCENARIO, name)
        .output()
        .expect("the child runs")
}

/// The environment variable that tells [`child_scenario`] which scenario to run.
const CHILD_SCENARIO: &str = "CACHEPOOL_CHILD_SCENARIO";

/// Asserts that scenario `name` ran to its end in a child process, without an abort.
#[track_caller]
fn assert_child_survives(name: &str) {
    if cfg!(miri) {
        // Miri runs no child processes; the scenario runs in-process there (an abort would
        // end the Miri run, which then fails).
        run_scenario(name);
        return;
    }
    let out = in_child(name);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("scenario {name} done")),
        "scenario {name}: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

/// Not a test of its own: the entry point of the child processes of [`assert_child_survives`]
/// (does nothing unless the environment names a scenario).
#[test]
fn child_scenario() {
    if let Ok(name) = std::env::var(CHILD_SCENARIO) {
        run_scenario(&name);
        println!("scenario {name} done");
    }
}

/// A close callback that panics on every element, counting them first.
fn panicking_close_pool(closed: &'static AtomicUsize) -> CachePool<u64> {
    CachePool::builder(|| 0u64)
        .close_callback(move |_| {
            closed.fetch_add(1, Ordering::Relaxed);
            inject(Site::Close);
        })
        .pool_size(4)
        .thread_capacity(4)
        .build()
}

thread_local! {
    static POOL_IN_TLS: std::cell::RefCell<Option<CachePool<u64>>> =
        const { std::cell::RefCell::new(None) };
    static OWNED_GUARD_IN_TLS: std::cell::RefCell<Option<cachepool::OwnedCheckout<u64>>> =
        const { std::cell::RefCell::new(None) };
}

fn run_scenario(name: &str) {
    let _quiet = silence_injected_panics();
    static CLOSED: AtomicUsize = AtomicUsize::new(0);
    CLOSED.store(0, Ordering::Relaxed);
    match name {
        // The last handle, kept in a thread-local, drops at thread exit with an idle element
        // whose close callback panics.
        "last_handle_in_tls" => {
            std::thread::spawn(|| {
                let pool = panicking_close_pool(&CLOSED);
                pool.put(pool.get());
                POOL_IN_TLS.with(|slot| *slot.borrow_mut() = Some(pool));
            })
            .join()
            .unwrap();
            assert_eq!(
                CLOSED.load(Ordering::Relaxed),
                1,
                "the idle element was closed"
            );
        }
        // An owned guard kept in a thread-local (first touched after the pool, so destroyed
        // before the pool's exit hook) drops at thread exit after another thread's clear()
        // took that thread's list: its give-back finds the list reclaimed and takes the slow
        // path inside a thread-local destructor.
        "owned_guard_in_tls_after_clear" => {
            let pool = panicking_close_pool(&CLOSED);
            let (cached, cleared) = (Barrier::new(2), Barrier::new(2));
            std::thread::scope(|s| {
                s.spawn(|| {
                    let (a, b) = (pool.get(), pool.get());
                    pool.put(a); // stays idle in this thread's list
                    pool.put(b);
                    let guard = pool.checkout_owned(); // b
                    OWNED_GUARD_IN_TLS.with(|slot| *slot.borrow_mut() = Some(guard));
                    cached.wait();
                    cleared.wait();
                });
                cached.wait();
                // The clear closes `a` from the other thread's list, here; its close callback
                // panics, and the clear hands that panic to its caller.
                let cleared_panic =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.clear()));
                assert!(
                    cleared_panic.is_err(),
                    "the close panic reached clear's caller"
                );
                assert_eq!(CLOSED.load(Ordering::Relaxed), 1, "clear closed `a`");
                cleared.wait();
            });
            // The scope returns before the thread's destructors finish: wait for the guard's
            // element to come back (the exit flush spills it to the global shard).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while pool.stats().idle < 1 && std::time::Instant::now() < deadline {
                std::thread::yield_now();
            }
            let stats = pool.stats();
            assert_eq!(stats.idle, 1, "the guard's element came back: {stats:?}");
            assert_eq!(stats.new, 2, "{stats:?}");
            assert_eq!(CLOSED.load(Ordering::Relaxed), 1, "nothing else was closed");
        }
        // A raw `put` from a `Drop` that runs while the thread unwinds, on a full pool whose
        // close callback panics.
        "put_while_unwinding" => {
            let pool = panicking_close_pool(&CLOSED);
            let full: Vec<u64> = (0..4).map(|_| pool.get()).collect();
            full.into_iter().for_each(|e| pool.put(e));
            struct GiveBackOnDrop<'a>(&'a CachePool<u64>, Option<u64>);
            impl Drop for GiveBackOnDrop<'_> {
                fn drop(&mut self) {
                    if let Some(e) = self.1.take() {
                        self.0.put(e);
                    }
                }
            }
            let unwound = catch_unwind(AssertUnwindSafe(|| {
                let _give_back = GiveBackOnDrop(&pool, Some(pool.get()));
                pool.put(7); // full again: the element given back on unwinding is closed
                inject(Site::UserCode);
            }));
            assert_eq!(expect_injected(unwound.unwrap_err()), Site::UserCode);
            assert!(pool.stats().contained_panics >= 1, "{}", pool.stats());
        }
        // A `get` late in thread exit passes through the global shard: it takes a batch of
        // two, puts one back, and the validator refuses the element it kept, whose close
        // callback panics.
        "get_passing_through_with_a_refused_element" => {
            static POOL: std::sync::OnceLock<CachePool<u64>> = std::sync::OnceLock::new();
            static REFUSE: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            let pool = POOL.get_or_init(|| {
                CachePool::builder(|| 0u64)
                    .close_callback(|_| {
                        CLOSED.fetch_add(1, Ordering::Relaxed);
                        inject(Site::Close);
                    })
                    .validate(|_| !REFUSE.load(Ordering::Relaxed))
                    .pool_size(8)
                    .thread_capacity(4)
                    .build()
            });
            assert_eq!(pool.prefill(4).unwrap(), 4); // two batches of two
            struct LateGet;
            impl Drop for LateGet {
                fn drop(&mut self) {
                    let pool = POOL.get().unwrap();
                    REFUSE.store(true, Ordering::Relaxed);
                    pool.put(pool.get());
                }
            }
            thread_local!(static LATE_GET: LateGet = const { LateGet });
            std::thread::spawn(|| {
                LATE_GET.with(|_| {}); // destroyed after the pool's exit hook
                pool.put(pool.get()); // registers the exit hook; the list takes a batch
            })
            .join()
            .unwrap();
            let stats = pool.stats();
            assert_eq!(stats.new, stats.idle as u64 + stats.closed, "{stats}");
            assert_eq!(stats.contained_panics, stats.closed, "{stats}");
        }
        other => panic!("no scenario {other}"),
    }
}

/// The last handle, dropped in a thread-local destructor with an idle element whose close
/// callback panics, closes the element without aborting.
///
/// A panic out of a thread-local destructor aborts the process, and std cannot tell such a
/// destructor from ordinary code, so the pool's drop must not let a close callback's panic out,
/// whether or not the thread is already panicking. `Drop for Shared` (src/shared.rs) closes
/// every idle element through `evict` (src/user_code.rs) and discards the panic it returns.
#[test]
fn the_last_handle_dropped_in_a_thread_local_destructor_does_not_abort() {
    assert_child_survives("last_handle_in_tls");
}

/// An owned guard kept in a thread-local and dropped at thread exit, after another thread's
/// `clear()` took that thread's list, gives its element back without aborting or losing it.
///
/// The guard is destroyed before the pool's exit hook runs, so the thread is not yet marked
/// as exiting, and its list is flagged as reclaimed: the give-back misses the hot path and
/// `put_slow` (src/slow_path.rs) takes the list back through `LocalShard::enter_after_reclaim`
/// (src/local.rs) from inside a thread-local destructor. The exit flush then spills the
/// element to the global shard, where the pool still counts it as idle.
#[test]
fn an_owned_guard_in_a_thread_local_dropped_after_clear_does_not_abort() {
    assert_child_survives("owned_guard_in_tls_after_clear");
}

/// A raw `put` from a `Drop` that runs while the thread unwinds, on a full pool whose close
/// callback panics, closes the element without a second panic.
///
/// The put finds the pool full and closes the element; a close callback's panic propagated
/// there is a panic during unwinding, which aborts. Unlike the guards, `put` does not check
/// `thread::panicking()` itself: `Shared::close` hands the panic to `Shared::raise`
/// (src/user_code.rs), which contains it whenever `unwind::must_contain` (src/unwind.rs) sees
/// the thread panicking.
#[test]
fn a_put_from_a_drop_during_unwinding_does_not_abort() {
    assert_child_survives("put_while_unwinding");
}

/// A `get` that passes through the global shard late in thread exit, whose validator refuses
/// the element it took and whose close callback panics, loses no element.
///
/// `get_passing_through` (src/slow_path.rs) takes a batch from the global shard, keeps one
/// element, pushes the rest back, and only then validates the kept one. Pushing the rest back
/// must not fail: a rejected batch whose close panicked would unwind past the kept element,
/// which would be dropped unclosed. And the refused element's close panic must not leave the
/// thread-local destructor. `GlobalShard::push` (src/global.rs) cannot fail (an unbounded
/// channel that owns its receiver), and `validate` (src/user_code.rs) closes the refused
/// element through `evict_and_raise`, whose `raise` contains the panic because the thread is
/// exiting (`unwind::must_contain`, src/unwind.rs).
#[test]
fn a_get_passing_through_with_a_refused_element_loses_nothing() {
    assert_child_survives("get_passing_through_with_a_refused_element");
}

/// `trim()` and `clear()` racing `prefill()`, with a close callback that panics, lose no idle
/// element and no unit of budget.
///
/// `drain_global` (src/lifecycle.rs) pops each batch of the global shard, pushes back those it
/// keeps and closes the others. If pushing a batch back could fail, or a close panic could
/// unwind past elements popped but not yet closed, those elements would be dropped unclosed
/// with their units, and the budget lost for good. `GlobalShard::push` (src/global.rs) cannot
/// fail, and `drain_global` releases the units of everything it took before
/// `evict_and_raise` (src/user_code.rs), whose `evict` closes every element and only then
/// raises the first panic. Here: `thread_capacity(0)`, a close callback that panics on every
/// third element, two threads prefilling while this one trims and clears.
#[test]
fn trim_and_clear_under_prefill_with_a_panicking_close_lose_no_element_or_budget() {
    let _quiet = silence_injected_panics();
    let pool_size = if cfg!(miri) { 40 } else { 2_000 };
    let (created, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, k) = (Arc::clone(&created), Arc::clone(&closed));
    let pool = CachePool::builder(move || c.fetch_add(1, Ordering::Relaxed))
        .close_callback(move |_| {
            if k.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
                inject(Site::Close);
            }
        })
        .pool_size(pool_size)
        .thread_capacity(0)
        .build();
    let rounds = if cfg!(miri) { 10 } else { 2_000 };
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = catch_unwind(AssertUnwindSafe(|| pool.prefill(1)));
                }
            });
        }
        for i in 0..rounds {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                if i % 10 == 0 {
                    pool.clear()
                } else {
                    pool.trim()
                }
            }));
        }
        stop.store(true, Ordering::Relaxed);
    });
    while catch_unwind(AssertUnwindSafe(|| pool.clear())).is_err() {}
    let stats = pool.stats();
    assert_eq!(stats.idle, 0, "{stats}");
    let (created, closed) = (
        created.load(Ordering::Relaxed),
        closed.load(Ordering::Relaxed),
    );
    assert_eq!(
        created, closed,
        "every element created was closed once: {stats}"
    );
    assert_eq!(stats.closed as usize, closed, "{stats}");
    // The whole budget is back: the pool caches `pool_size` elements again.
    assert_eq!(
        pool.prefill(usize::MAX).unwrap(),
        pool_size,
        "budget lost: {stats}"
    );
}
