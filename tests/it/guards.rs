//! Guards (`checkout`, `checkout_owned`), the reset hook, and which types are `Send`/`Sync`.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cachepool::{
    CachePool, CachePoolError, CachePoolGeneratorError, CacheWrapper, Checkout, NeverReuse,
    OwnedCheckout, Stats,
};

use crate::common::{
    Fixture, Site, State, UserOps, assert_stats, builder, expect_injected, inject,
    silence_injected_panics,
};

#[test]
fn borrowing_guard_gives_its_element_back_on_drop() {
    let f = Fixture::new(16, 4);
    let mut g = f.checkout();
    g.scratch = 5; // the reset hook must clear this before anyone sees it again
    let id = g.id();
    assert_eq!(Checkout::pool(&g).stats().get, 1);
    f.give_guard(g);
    let stats = f.quiet_stats();
    assert_stats!(stats, put: 1, idle: 1, closed: 0);
    let g = f.checkout();
    assert_eq!((g.id(), g.scratch), (id, 0));
    f.give_guard(g);
    f.finish();
}

#[test]
fn owned_guard_is_static_and_send_and_lands_in_the_list_of_the_thread_that_drops_it() {
    fn assert_static_send<T: Send + 'static>(_: &T) {}
    let f = Fixture::new(16, 4);
    let g = f.checkout_owned();
    assert_static_send(&g);
    let id = g.id();
    let ledger = f.ledger.clone();
    std::thread::spawn(move || {
        ledger.give(&g);
        drop(g); // into this thread's list; its exit moves it to the global shard
    })
    .join()
    .unwrap();
    let g = f.checkout();
    assert_eq!(g.id(), id);
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 1, hits_global: 1);
    f.give_guard(g);
    f.finish();
}

#[test]
fn owned_guard_keeps_the_pool_alive_after_the_last_handle_drops() {
    let f = Fixture::new(16, 4);
    let g = f.checkout_owned();
    let idle = f.take();
    f.put(idle);
    let Fixture { pool, ledger } = f;
    drop(pool);
    // The pool is still there: its stats read through the guard, and nothing was closed.
    let stats = OwnedCheckout::pool(&g).stats();
    assert_stats!(stats, new: 2, idle: 1, closed: 0);
    assert_eq!(ledger.close_calls(), 0);
    // Another handle can come out of the guard and still works.
    let pool = OwnedCheckout::pool(&g).clone();
    let again = pool.get();
    ledger.take(&again);
    ledger.give(&again);
    pool.put(again);
    drop(pool);
    // Dropping the guard drops the last handle: the element comes back, then every idle
    // element is closed, exactly once.
    ledger.give(&g);
    drop(g);
    let counts = ledger.assert_all_accounted_for();
    assert_eq!((counts.created, counts.closed), (2, 2));
}

#[test]
fn discard_closes_the_element() {
    let f = Fixture::new(16, 4);
    let g = f.checkout();
    let id = g.id();
    f.discard(g);
    assert_eq!(f.ledger.state_of(id), State::Closed);
    let g = f.checkout_owned();
    let id = g.id();
    f.ledger.give(&g);
    OwnedCheckout::discard(g);
    assert_eq!(f.ledger.state_of(id), State::Closed);
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 2, put: 0, closed: 2, idle: 0);
    f.finish();
}

#[test]
fn detach_keeps_the_element_and_counts_it_detached() {
    let f = Fixture::new(16, 4);
    let kept = f.detach(f.checkout());
    let g = f.checkout_owned();
    assert_ne!(g.id(), kept.id());
    let owned_kept = OwnedCheckout::detach(g);
    f.ledger.detach(&owned_kept);
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 2, detached: 2, closed: 0, idle: 0);
    drop((kept, owned_kept));
    f.finish();
}

#[test]
fn guard_dropped_while_its_thread_panics_closes_its_element() {
    let _quiet = silence_injected_panics();
    let f = Fixture::new(16, 4);
    for owned in [false, true] {
        let mut id = None;
        let panic = catch_unwind(AssertUnwindSafe(|| {
            if owned {
                let mut g = f.checkout_owned();
                g.scratch = 1; // half-updated when the panic strikes
                id = Some(g.id());
                f.ledger.give(&g);
                inject(Site::UserCode);
            } else {
                let mut g = f.checkout();
                g.scratch = 1;
                id = Some(g.id());
                f.ledger.give(&g);
                inject(Site::UserCode);
            }
        }))
        .unwrap_err();
        assert_eq!(expect_injected(panic), Site::UserCode);
        assert_eq!(
            f.ledger.state_of(id.unwrap()),
            State::Closed,
            "owned={owned}"
        );
    }
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 2, put: 0, closed: 2, idle: 0);
    // The next checkout gets a fresh element, never the half-updated one.
    let g = f.checkout();
    assert_eq!(g.scratch, 0);
    f.give_guard(g);
    f.finish();
}

#[test]
fn guard_dropped_while_panicking_with_a_panicking_close_callback_does_not_abort() {
    let _quiet = silence_injected_panics();
    let f = Fixture::new(16, 4);
    let mut id = None;
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let mut g = f.checkout();
        g.panic_in_close = true; // a second panic while unwinding would abort the process
        id = Some(g.id());
        f.ledger.give(&g);
        inject(Site::UserCode);
    }))
    .unwrap_err();
    // The user's panic is the one that propagates; the close callback's is contained.
    assert_eq!(expect_injected(panic), Site::UserCode);
    assert_eq!(f.ledger.state_of(id.unwrap()), State::Closed);
    assert_eq!(f.quiet_stats().closed, 1);
    f.finish();
}

/// A guard's drop never lets a close callback's panic out, on each way a pool with a closure
/// hook closes the element: the hook refuses it, or the hook keeps it and the pool is full.
/// (A drop can run in a thread-local destructor, where a panic aborts.)
#[test]
fn a_guard_with_a_closure_hook_contains_the_close_callbacks_panic() {
    let _quiet = silence_injected_panics();
    let closed = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closed);
    let pool = CachePool::builder(|| 0u32)
        .reset(|n| *n != 13) // refuses 13
        .close_callback(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
            inject(Site::Close);
        })
        .pool_size(1)
        .thread_capacity(1)
        .build();

    // Refused by the hook.
    let mut g = pool.checkout();
    *g = 13;
    drop(g);
    assert_eq!(closed.load(Ordering::Relaxed), 1);
    assert_stats!(pool.stats(), new: 1, put: 0, closed: 1, idle: 0, contained_panics: 1);

    // Kept by the hook, but the pool already holds its one idle element.
    let (a, b) = (pool.checkout(), pool.checkout());
    drop(a);
    drop(b);
    assert_eq!(closed.load(Ordering::Relaxed), 2);
    assert_stats!(pool.stats(), new: 3, put: 1, closed: 2, idle: 1, contained_panics: 2);

    // The same through a raw `put`: the panic propagates, as `put`'s docs say.
    let extra = pool.get();
    let extra2 = pool.get();
    pool.put(extra);
    let panic = catch_unwind(AssertUnwindSafe(|| pool.put(extra2))).unwrap_err();
    assert_eq!(expect_injected(panic), Site::Close);
    assert_eq!(closed.load(Ordering::Relaxed), 3);
}

#[test]
fn reset_hook_clears_every_element_given_back() {
    let pool = CachePool::builder(|| Vec::<u8>::with_capacity(64))
        .reset(|v| {
            v.clear();
            true
        })
        .pool_size(4)
        .thread_capacity(2)
        .build();
    let mut v = pool.checkout();
    v.extend_from_slice(b"dirty");
    drop(v);
    let mut raw = pool.get();
    assert!(raw.is_empty() && raw.capacity() >= 64);
    raw.push(1);
    pool.put(raw); // the raw `put` runs the hook too
    assert!(pool.get().is_empty());
}

#[test]
fn reset_hook_refusal_closes_the_element() {
    let f = Fixture::new(16, 4);
    let mut g = f.checkout();
    g.refuse = true;
    let id = g.id();
    f.give_guard(g);
    assert_eq!(f.ledger.state_of(id), State::Closed);
    let mut e = f.take();
    assert_ne!(e.id(), id);
    e.refuse = true;
    let id2 = e.id();
    f.put(e);
    assert_eq!(f.ledger.state_of(id2), State::Closed);
    let stats = f.quiet_stats();
    // Refused elements are closed, not counted as put.
    assert_stats!(stats, new: 2, put: 0, closed: 2, idle: 0);
    f.finish();
}

#[test]
fn panicking_reset_hook_closes_the_element_and_propagates() {
    let _quiet = silence_injected_panics();
    let f = Fixture::new(16, 4);
    let mut e = f.take();
    e.panic_in_reset = true;
    let id = e.id();
    let panic = catch_unwind(AssertUnwindSafe(|| f.put(e))).unwrap_err();
    assert_eq!(expect_injected(panic), Site::Reset);
    assert_eq!(f.ledger.state_of(id), State::Closed);
    let stats = f.quiet_stats();
    assert_stats!(stats, put: 0, closed: 1, idle: 0);
    // And through a guard dropped normally: the panic leaves the guard's drop.
    let mut g = f.checkout();
    g.panic_in_reset = true;
    f.ledger.give(&g);
    let panic = catch_unwind(AssertUnwindSafe(|| drop(g))).unwrap_err();
    assert_eq!(expect_injected(panic), Site::Reset);
    assert_eq!(f.quiet_stats().closed, 2);
    let e = f.take();
    f.put(e);
    f.finish();
}

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Uses the pool in `slot` from inside one of its own callbacks, once (not from the nested
/// calls, which would recurse without end).
fn re_enter(slot: &Mutex<Option<CachePool<u32>>>, calls: &AtomicUsize) {
    if DEPTH.get() > 0 {
        return;
    }
    DEPTH.set(1);
    // The lock is released before the pool runs: the nested calls may come back here.
    let pool = slot.lock().unwrap().clone();
    if let Some(pool) = pool {
        calls.fetch_add(1, Ordering::Relaxed);
        let (a, b) = (pool.get(), pool.get());
        pool.put(a);
        pool.close(b);
        let _ = pool.stats();
    }
    DEPTH.set(0);
}

#[test]
fn callbacks_that_re_enter_their_own_pool_find_it_consistent() {
    // `LocalShard`'s invariant (src/local.rs): no reference into the thread's list is alive
    // while user code runs, because user code may use the same pool on the same thread. Were
    // it broken, Miri would report the aliasing here, and the counts below would be off.
    let slot: Arc<Mutex<Option<CachePool<u32>>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (created, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let hook = |slot: &Arc<_>, calls: &Arc<_>| (Arc::clone(slot), Arc::clone(calls));
    let (gs, gc) = hook(&slot, &calls);
    let (rs, rc) = hook(&slot, &calls);
    let (vs, vc) = hook(&slot, &calls);
    let (cs, cc) = hook(&slot, &calls);
    let (made, gone) = (Arc::clone(&created), Arc::clone(&closed));
    let pool = CachePool::builder(move || {
        re_enter(&gs, &gc);
        made.fetch_add(1, Ordering::Relaxed) as u32
    })
    .reset(move |_| {
        re_enter(&rs, &rc);
        true
    })
    .validate(move |_| {
        re_enter(&vs, &vc);
        true
    })
    .close_callback(move |_| {
        re_enter(&cs, &cc);
        gone.fetch_add(1, Ordering::Relaxed);
    })
    .pool_size(3)
    .thread_capacity(2)
    .build();
    // Re-entry starts with this thread's very first checkout, when the thread's shard is
    // created (`regressions::a_callback_re_entering_during_a_threads_first_checkout_*`).
    *slot.lock().unwrap() = Some(pool.clone());

    for round in 0..if cfg!(miri) { 2 } else { 20 } {
        let taken: Vec<u32> = (0..4).map(|_| pool.get()).collect();
        taken.into_iter().for_each(|e| pool.put(e)); // the fourth finds the pool full
        let g = pool.checkout();
        Checkout::discard(g);
        if round % 3 == 1 {
            pool.trim();
        }
        if round % 5 == 4 {
            pool.clear();
        }
        let stats = pool.stats();
        assert!(stats.idle <= 3, "{stats}");
        assert_eq!(stats.new, created.load(Ordering::Relaxed) as u64);
        assert_eq!(stats.closed, closed.load(Ordering::Relaxed) as u64);
        assert_eq!(stats.new, stats.idle as u64 + stats.closed, "{stats}");
    }
    assert!(
        calls.load(Ordering::Relaxed) > 0,
        "the callbacks re-entered"
    );
    slot.lock().unwrap().take(); // breaks the cycle pool -> callback -> pool
    drop(pool);
    assert_eq!(
        created.load(Ordering::Relaxed),
        closed.load(Ordering::Relaxed)
    );
}

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn pool_guards_wrapper_and_errors_are_send_and_sync() {
    assert_send_sync::<CachePool<String>>();
    assert_send_sync::<Checkout<'static, String>>();
    assert_send_sync::<OwnedCheckout<String>>();
    assert_send_sync::<CacheWrapper<String>>();
    assert_send_sync::<CacheWrapper<String, NeverReuse>>();
    assert_send_sync::<CacheWrapper<String, fn(&std::io::Error) -> bool>>();
    assert_send_sync::<Stats>();
    assert_send_sync::<CachePoolGeneratorError>();
    assert_send_sync::<CachePoolError>();
    // A `Send` element that is not `Sync`: the pool is still shareable, and an owned guard
    // can still travel to another thread.
    assert_send_sync::<CachePool<Cell<u32>>>();
    assert_send::<OwnedCheckout<Cell<u32>>>();
    assert_send::<Checkout<'static, Cell<u32>>>();
    // The builder is Send too: a pool can be configured on one thread and built on another.
    let b = builder(&crate::common::Ledger::new()).pool_size(4);
    std::thread::spawn(move || drop(b.build())).join().unwrap();
}

/// Compiles only if `T` is *not* `Sync` (the trait-ambiguity trick of `static_assertions`).
macro_rules! assert_not_sync {
    ($t:ty) => {{
        trait AmbiguousIfSync<A> {
            fn some_item() {}
        }
        impl<T: ?Sized> AmbiguousIfSync<()> for T {}
        impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
        <$t as AmbiguousIfSync<_>>::some_item()
    }};
}

#[test]
fn guards_of_a_non_sync_element_are_not_sync() {
    // A guard derefs to `&T`: sharing it between threads must need `T: Sync`.
    assert_not_sync!(Checkout<'static, Cell<u32>>);
    assert_not_sync!(OwnedCheckout<Cell<u32>>);
}

#[test]
fn a_guard_can_be_used_like_its_element() {
    // `discard`/`detach`/`pool` are associated functions, so methods of `T` with those names
    // stay reachable through the guard.
    struct HasDetach;
    impl HasDetach {
        fn detach(&self) -> &'static str {
            "the element's own"
        }
    }
    let pool = CachePool::new(|| HasDetach);
    let g = pool.checkout();
    assert_eq!(g.detach(), "the element's own");
}

#[test]
fn checkout_owned_of_a_failing_generator_returns_the_error() {
    let f = Fixture::new(16, 4);
    f.ledger.fail_next_generate(true);
    assert!(f.pool.try_checkout_owned().is_err());
    assert_eq!(f.pool.stats(), Stats::default());
    f.finish();
}

/// Gives back `make(1..=4)` through `put` and a changed value through a guard, and checks
/// that checkouts return exactly those values: an element survives being moved into a list and
/// out again, whichever way its type is moved (word by word for types aligned to 8 and at most
/// 64 bytes, the usual way for the others).
fn values_survive_the_lists<T>(make: fn(u64) -> T)
where
    T: PartialEq + std::fmt::Debug + Send + 'static,
{
    let pool = CachePool::builder(move || make(0))
        .reset(|_| true)
        .pool_size(8)
        .thread_capacity(8)
        .build();
    let mut held: Vec<T> = (0..4).map(|_| pool.get()).collect();
    for (i, element) in held.iter_mut().enumerate() {
        *element = make(i as u64 + 1);
    }
    held.into_iter().for_each(|element| pool.put(element));
    let mut back: Vec<T> = (0..4).map(|_| pool.get()).collect();
    for i in 1..=4 {
        let at = back.iter().position(|v| *v == make(i));
        let at = at.unwrap_or_else(|| panic!("{:?} was not given back", make(i)));
        pool.put(back.swap_remove(at));
    }
    let mut g = pool.checkout();
    *g = make(99);
    drop(g); // the reset hook sees it and the list takes it, in place
    assert_eq!(*pool.checkout(), make(99)); // the warmest element: the one just given back
    assert_eq!(pool.stats().new, 4);
}

#[test]
fn values_of_every_layout_survive_the_lists() {
    // Every word differs from the others and from the other values' words, so that a word
    // lost, swapped or left over from another element shows.
    fn words<W, const N: usize>(i: u64) -> [W; N]
    where
        W: TryFrom<u64>,
        W::Error: std::fmt::Debug,
    {
        std::array::from_fn(|k| W::try_from(i * 100 + k as u64).unwrap())
    }
    // One word; two words with seven bytes of padding; three words owning heap memory.
    values_survive_the_lists(|i| Box::new([i as u8; 64]));
    values_survive_the_lists(|i| (i, i as u8 + 1));
    values_survive_the_lists(|i| format!("{i}-{}", i * 7));
    // Eight words, the largest moved word by word; nine, moved the usual way.
    values_survive_the_lists(words::<u64, 8>);
    values_survive_the_lists(words::<u64, 9>);
    // Aligned to less than 8: moved the usual way.
    values_survive_the_lists(words::<u32, 5>);
    values_survive_the_lists(|i| i as u8);
}
