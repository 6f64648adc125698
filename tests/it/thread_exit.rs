//! Where idle elements go when a thread exits, and when the last handle drops.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, mpsc};
use std::thread;

use cachepool::OwnedCheckout;

use crate::common::{
    Fixture, Handle, Site, State, Tracked, UserOps, assert_stats, expect_injected, inject,
    silence_injected_panics,
};

#[test]
fn elements_cached_by_an_exited_thread_serve_a_later_thread_from_the_global_shard() {
    let f = Fixture::new(16, 4);
    let h = f.clone();
    let (a, b) = thread::spawn(move || {
        let (a, b) = (h.take(), h.take());
        let ids = (a.id(), b.id());
        h.put(a);
        h.put(b); // b is the warmest
        ids
    })
    .join()
    .unwrap();
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 2, idle: 2, hits_global: 0);

    let h = f.clone();
    thread::spawn(move || {
        let first = h.take();
        // The exited thread's list arrived as one batch, in order: warmest first still.
        assert_eq!(first.id(), b);
        let stats = h.pool.stats();
        assert_stats!(stats, new: 2, hits_global: 1, hits_local: 0);
        let second = h.take(); // the rest of the batch is in this thread's list now
        assert_eq!(second.id(), a);
        assert_eq!(h.pool.stats().hits_local, 1);
        h.put(first);
        h.put(second);
    })
    .join()
    .unwrap();
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 2, idle: 2);
    f.finish();
}

#[test]
fn a_full_list_left_by_an_exited_thread_is_reused_whole() {
    let f = Fixture::new(16, 4);
    let h = f.clone();
    thread::spawn(move || {
        let taken: Vec<_> = (0..4).map(|_| h.take()).collect();
        taken.into_iter().for_each(|e| h.put(e));
    })
    .join()
    .unwrap();
    assert_eq!(f.quiet_stats().idle, 4);
    let taken: Vec<_> = (0..4).map(|_| f.take()).collect();
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 4, hits_global: 1, hits_local: 3);
    taken.into_iter().for_each(|e| f.put(e));
    f.finish();
}

#[test]
fn a_succession_of_short_lived_threads_never_strands_an_element() {
    // Thread ids (and so the pool's per-thread slots) are reused by later threads; each
    // thread's exit must leave its slot empty for the next one, with nothing stranded in it.
    let f = Fixture::new(8, 4);
    let threads = if cfg!(miri) { 4 } else { 40 };
    for _ in 0..threads {
        let h = f.clone();
        thread::spawn(move || {
            let (a, b, c) = (h.take(), h.take(), h.take());
            h.put(a);
            h.put(b);
            h.put(c);
        })
        .join()
        .unwrap();
    }
    let stats = f.quiet_stats();
    assert_eq!(
        stats.new, 3,
        "every thread after the first reused the same three"
    );
    assert_eq!(stats.idle, 3);
    assert_eq!(stats.hits_global, threads as u64 - 1);
    f.finish();
}

#[test]
fn dropping_the_last_handle_closes_every_idle_element_exactly_once() {
    let f = Fixture::new(64, 4);

    // A thread that exited: its list went to the global shard.
    let h = f.clone();
    thread::spawn(move || {
        let (a, b) = (h.take(), h.take());
        h.put(a);
        h.put(b);
    })
    .join()
    .unwrap();

    // This thread: more than its list holds (2 from the global shard, 5 new), so two batches
    // of 2 spilled to the global shard and 3 stay in its list.
    let taken: Vec<_> = (0..7).map(|_| f.take()).collect();
    taken.into_iter().for_each(|e| f.put(e));

    // A thread still alive when the pool drops, with elements in its list: its checkout
    // brings a batch of 2 from the global shard into its list.
    let (cached_tx, cached_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let h = f.clone();
    let alive = thread::spawn(move || {
        let taken = h.take();
        h.put(taken);
        drop(h); // lets go of the pool, but keeps its list
        cached_tx.send(()).unwrap();
        exit_rx.recv().unwrap();
    });
    cached_rx.recv().unwrap();

    let stats = f.quiet_stats();
    assert_stats!(stats, new: 7, idle: 7, closed: 0, hits_global: 2);
    let Fixture { pool, ledger } = f;
    drop(pool);
    let counts = ledger.assert_all_accounted_for();
    assert_eq!((counts.created, counts.closed), (7, 7));
    // The live thread exits after the pool is gone: its exit hook finds nothing to do.
    exit_tx.send(()).unwrap();
    alive.join().unwrap();
    assert_eq!(ledger.close_calls(), 7);
    ledger.assert_no_violations();
}

/// The last handle may be dropped in a thread-local destructor, where a panic aborts: the drop
/// closes every element and lets no close callback's panic out.
#[test]
fn a_close_callback_panicking_during_drop_still_closes_the_rest_and_does_not_propagate() {
    let _quiet = silence_injected_panics();
    let f = Fixture::new(16, 4);
    let mut taken: Vec<_> = (0..6).map(|_| f.take()).collect();
    taken[1].panic_in_close = true;
    taken[4].panic_in_close = true;
    taken.into_iter().for_each(|e| f.put(e)); // some in the list, some spilled
    assert_eq!(f.quiet_stats().idle, 6);
    let Fixture { pool, ledger } = f;
    drop(pool);
    assert_eq!(
        ledger.close_calls(),
        6,
        "every element was closed despite the panics"
    );
    ledger.assert_all_accounted_for();
}

#[test]
fn a_pool_dropped_during_unwinding_with_a_panicking_close_callback_does_not_abort() {
    let _quiet = silence_injected_panics();
    let f = Fixture::new(16, 4);
    let mut e = f.take();
    e.panic_in_close = true;
    f.put(e);
    let Fixture { pool, ledger } = f;
    let panic = catch_unwind(AssertUnwindSafe(move || {
        let _pool = pool; // dropped while this closure unwinds
        inject(Site::UserCode)
    }))
    .unwrap_err();
    assert_eq!(
        expect_injected(panic),
        Site::UserCode,
        "the first panic wins"
    );
    ledger.assert_all_accounted_for();
}

/// When a thread-local holding an owned guard is destroyed, relative to the pool's own
/// exit hook.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// The user's thread-local was first used before the pool: std destroys thread-locals in
    /// reverse order of first use, so the guard drops after the pool's exit hook has run and
    /// after the `thread_local` crate has released the thread's id.
    AfterThePoolsHook,
    /// First used after the pool: the guard drops while the pool still has the thread's list.
    BeforeThePoolsHook,
}

/// Gives the guard's element back in the ledger when a thread-local drops it.
struct Stashed(Option<OwnedCheckout<Tracked>>);

impl Drop for Stashed {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            let ledger = Arc::clone(g.ledger());
            ledger.give(&g);
            drop(g);
        }
    }
}

thread_local! {
    static STASH: RefCell<Vec<Stashed>> = const { RefCell::new(Vec::new()) };
}

/// A thread caches three elements and keeps an owned guard in a `thread_local!`, then
/// exits; returns the guard's element id.
fn exit_with_a_guard_in_a_thread_local(h: Handle, order: Order) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        if let Order::AfterThePoolsHook = order {
            STASH.with(|_| {}); // registers the thread-local's destructor first
        }
        let taken: Vec<_> = (0..3).map(|_| h.take()).collect();
        taken.into_iter().for_each(|e| h.put(e));
        let g = h.checkout_owned();
        let id = g.id();
        STASH.with(|s| s.borrow_mut().push(Stashed(Some(g))));
        id
    })
}

fn guard_in_a_thread_local(order: Order) {
    let f = Fixture::new(16, 4);
    let h = f.clone();
    let id = exit_with_a_guard_in_a_thread_local(h, order)
        .join()
        .unwrap();
    // Nothing was lost or closed: the three elements (the guard had taken the warmest of
    // them) are idle, none held.
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 3, idle: 3, closed: 0; "{order:?}");
    assert_eq!(f.ledger.state_of(id), State::InPool);
    // All three serve a later thread without a new element.
    let h = f.clone();
    thread::spawn(move || {
        let taken: Vec<_> = (0..3).map(|_| h.take()).collect();
        assert!(taken.iter().any(|e| e.id() == id));
        assert_eq!(h.pool.stats().new, 3);
        taken.into_iter().for_each(|e| h.put(e));
    })
    .join()
    .unwrap();
    f.finish();
}

#[test]
fn owned_guard_in_a_thread_local_dropped_after_the_pools_exit_hook_is_not_lost() {
    guard_in_a_thread_local(Order::AfterThePoolsHook);
}

#[test]
fn owned_guard_in_a_thread_local_dropped_before_the_pools_exit_hook_is_not_lost() {
    guard_in_a_thread_local(Order::BeforeThePoolsHook);
}

fn guard_in_a_thread_local_is_the_last_handle(order: Order) {
    let f = Fixture::new(16, 4);
    let Fixture { pool, ledger } = f;
    let h = Handle {
        pool,
        ledger: ledger.clone(),
    };
    // The thread gets the only handle: the pool drops during its thread-local destructors.
    exit_with_a_guard_in_a_thread_local(h, order)
        .join()
        .unwrap();
    let counts = ledger.assert_all_accounted_for();
    assert_eq!((counts.created, counts.closed), (3, 3), "{order:?}");
}

#[test]
fn owned_guard_in_a_thread_local_as_the_last_handle_closes_everything_after_the_hook() {
    guard_in_a_thread_local_is_the_last_handle(Order::AfterThePoolsHook);
}

#[test]
fn owned_guard_in_a_thread_local_as_the_last_handle_closes_everything_before_the_hook() {
    guard_in_a_thread_local_is_the_last_handle(Order::BeforeThePoolsHook);
}
