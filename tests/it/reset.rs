//! Reset hooks chosen by type (`Reset`, `Builder::reset_with`), alone and beside a closure.
//!
//! The ledger's reset (scratch cleared, refusals and panics on request) runs here as a `Reset`
//! type, so every path of a type's hook is checked against the same bookkeeping as the
//! closure's in `guards`.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cachepool::{
    CachePool, CacheWrapper, Checkout, Clear, NoReset, OwnedCheckout, Reset, make_wrapper,
};

use crate::common::{
    Fixture, Ledger, Site, State, Tracked, UserOps, assert_stats, builder_without_reset,
    expect_injected, silence_injected_panics,
};

/// The ledger's reset hook as a `Reset` type: each element carries its ledger.
#[derive(Clone)]
struct LedgerReset;

impl Reset<Tracked> for LedgerReset {
    fn reset(&self, element: &mut Tracked) -> bool {
        let ledger = Arc::clone(element.ledger());
        ledger.reset(element)
    }
}

type TypedFixture = Fixture<LedgerReset>;

/// A pool of [`Tracked`] whose only reset hook is [`LedgerReset`], and its ledger.
fn typed_fixture() -> TypedFixture {
    let ledger = Ledger::new();
    let pool = builder_without_reset(&ledger)
        .reset_with(LedgerReset)
        .pool_size(8)
        .thread_capacity(4)
        .build();
    Fixture { pool, ledger }
}

#[test]
fn a_reset_type_runs_on_put_and_on_both_guards() {
    let f = typed_fixture();
    let mut e = f.take();
    let id = e.id();
    e.scratch = 1;
    f.put(e);

    // The ledger reports a violation if the scratch was not cleared before the handout.
    let mut g: Checkout<'_, Tracked, LedgerReset> = f.checkout();
    assert_eq!(g.id(), id);
    g.scratch = 2;
    f.give_guard(g);

    let mut g: OwnedCheckout<Tracked, LedgerReset> = f.checkout_owned();
    assert_eq!((g.id(), g.scratch), (id, 0));
    g.scratch = 3;
    f.ledger.give(&g);
    std::thread::spawn(move || drop(g)).join().unwrap();

    let stats = f.pool.stats();
    assert_stats!(stats, new: 1, put: 3, closed: 0);
    let counts = f.finish();
    assert_eq!((counts.created, counts.closed), (1, 1));
}

#[test]
fn an_element_a_reset_type_refuses_is_closed() {
    let f = typed_fixture();
    let mut e = f.take();
    e.refuse = true;
    let id = e.id();
    f.put(e);
    assert_eq!(f.ledger.state_of(id), State::Closed);

    let mut g = f.checkout();
    assert_ne!(g.id(), id, "a refused element is never handed out again");
    g.refuse = true;
    let id = g.id();
    f.give_guard(g);
    assert_eq!(f.ledger.state_of(id), State::Closed);

    let stats = f.pool.stats();
    assert_stats!(stats, new: 2, put: 0, closed: 2, idle: 0);
    f.finish();
}

#[test]
fn a_reset_type_that_panics_gets_its_element_closed_and_the_panic_propagates() {
    let _quiet = silence_injected_panics();
    let f = typed_fixture();
    let mut e = f.take();
    e.panic_in_reset = true;
    let id = e.id();
    let panic = catch_unwind(AssertUnwindSafe(|| f.put(e))).unwrap_err();
    assert_eq!(expect_injected(panic), Site::Reset);
    assert_eq!(f.ledger.state_of(id), State::Closed);

    let mut g = f.checkout();
    g.panic_in_reset = true;
    let id = g.id();
    let panic = catch_unwind(AssertUnwindSafe(|| f.give_guard(g))).unwrap_err();
    assert_eq!(expect_injected(panic), Site::Reset);
    assert_eq!(f.ledger.state_of(id), State::Closed);

    let stats = f.pool.stats();
    assert_stats!(stats, put: 0, closed: 2, idle: 0);
    // The pool still works after both panics.
    let e = f.take();
    f.put(e);
    assert_eq!(f.pool.stats().idle, 1);
    f.finish();
}

/// Counts the closure's calls beside [`LedgerReset`].
fn typed_pool_with_closure(
    ledger: &Arc<Ledger>,
    calls: &Arc<AtomicUsize>,
) -> CachePool<Tracked, LedgerReset> {
    let n = Arc::clone(calls);
    builder_without_reset(ledger)
        .reset_with(LedgerReset)
        .reset(move |e: &mut Tracked| {
            n.fetch_add(1, Ordering::Relaxed);
            // Runs second: the type's hook has cleared the scratch already.
            assert_eq!(e.scratch, 0, "the closure ran before the reset type");
            e.id().is_multiple_of(2) // refuses odd ids
        })
        .pool_size(8)
        .build()
}

#[test]
fn a_closure_beside_a_reset_type_runs_after_it_on_what_it_keeps() {
    let ledger = Ledger::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let pool = typed_pool_with_closure(&ledger, &calls);
    let f = Fixture { pool, ledger };
    let mut held: Vec<Tracked> = (0..4).map(|_| f.take()).collect();
    held[0].scratch = 9;
    held[1].refuse = true; // refused by the type: the closure never sees it
    for e in held {
        f.put(e);
    }
    assert_eq!(calls.load(Ordering::Relaxed), 3);
    for id in 0..4usize {
        let expected = if id.is_multiple_of(2) {
            State::InPool
        } else {
            State::Closed
        };
        assert_eq!(f.ledger.state_of(id), expected, "element {id}");
    }
    let stats = f.pool.stats();
    assert_stats!(stats, put: 2, closed: 2, idle: 2);
    f.finish();
}

#[test]
fn a_closure_that_panics_beside_a_reset_type_gets_its_element_closed() {
    let _quiet = silence_injected_panics();
    let ledger = Ledger::new();
    let pool = builder_without_reset(&ledger)
        .reset_with(LedgerReset)
        .reset(|e: &mut Tracked| {
            if e.invalid {
                crate::common::inject(Site::Reset);
            }
            true
        })
        .build();
    let f = Fixture { pool, ledger };
    let mut guard = f.checkout();
    guard.invalid = true; // no validator here: the flag tells the closure to panic
    let id = guard.id();
    let panic = catch_unwind(AssertUnwindSafe(|| f.give_guard(guard))).unwrap_err();
    assert_eq!(expect_injected(panic), Site::Reset);
    assert_eq!(f.ledger.state_of(id), State::Closed);
    assert_eq!(f.pool.stats().closed, 1);
    f.finish();
}

/// Fills a collection, gives it back through a `Clear` pool, and checks it comes back empty
/// with its capacity.
fn cleared_on_return<C>(make: fn() -> C, fill: fn(&mut C), len: fn(&C) -> usize)
where
    C: Send + 'static,
    Clear: Reset<C>,
{
    let pool: CachePool<C, Clear> = CachePool::builder(make).reset_with(Clear).build();
    let mut element = pool.checkout();
    fill(&mut element);
    assert!(len(&element) > 0);
    drop(element);
    let element = pool.get();
    assert_eq!(len(&element), 0);
    assert_eq!(pool.stats().new, 1, "the same element came back, emptied");
}

#[test]
fn clear_empties_the_std_collections_and_keeps_their_capacity() {
    let pool: CachePool<Vec<u64>, Clear> = CachePool::builder(|| Vec::with_capacity(100))
        .reset_with(Clear)
        .build();
    pool.checkout().extend(0..100);
    let v = pool.checkout();
    assert!(v.is_empty() && v.capacity() >= 100);
    drop(v);

    cleared_on_return(String::new, |s| s.push_str("text"), String::len);
    cleared_on_return(VecDeque::<u8>::new, |d| d.push_back(1), VecDeque::len);
    cleared_on_return(HashMap::<u8, u8>::new, |m| m.extend([(1, 2)]), HashMap::len);
    cleared_on_return(HashSet::<u8>::new, |s| s.extend([1]), HashSet::len);
    cleared_on_return(
        BTreeMap::<u8, u8>::new,
        |m| m.extend([(1, 2)]),
        BTreeMap::len,
    );
    cleared_on_return(BTreeSet::<u8>::new, |s| s.extend([1]), BTreeSet::len);
    cleared_on_return(BinaryHeap::<u8>::new, |h| h.push(1), BinaryHeap::len);
}

#[test]
fn the_default_reset_type_keeps_elements_as_they_come_back() {
    let pool: CachePool<String, NoReset> = CachePool::new(String::new);
    pool.put(String::from("kept as is"));
    assert_eq!(pool.get(), "kept as is");
}

/// The error of the wrapper's jobs below (`run` needs no conversion from the pool's error).
#[derive(Debug)]
struct JobFailed;

#[test]
fn a_wrapper_runs_on_a_pool_with_a_reset_type() {
    let pool: CachePool<String, Clear> = CachePool::builder(String::new).reset_with(Clear).build();
    let wrapper: CacheWrapper<String, _, Clear> = make_wrapper(&pool, |_: &JobFailed| true);
    let len = wrapper.run(|s| {
        s.push_str("abc");
        Ok::<_, JobFailed>(s.len())
    });
    assert_eq!(len.unwrap(), 3);
    // Given back through the pool's reset type: emptied.
    let closes = CacheWrapper::new(&pool);
    let r: Result<(), JobFailed> = closes.run(|s| {
        assert!(s.is_empty());
        Err(JobFailed)
    });
    assert!(r.is_err());
    let stats = pool.stats();
    assert_stats!(stats, new: 1, put: 1, closed: 1);
}

/// A closure given to `reset_with` keeps its captures in the pool's type: here a size limit,
/// applied on every way back (`put`, both guards, the wrapper).
#[test]
fn a_closure_reset_applies_what_it_captured_on_every_way_back() {
    let limit = 8;
    let pool = CachePool::builder(String::new)
        .reset_with(move |s: &mut String| {
            let keep = s.len() <= limit;
            s.clear();
            keep
        })
        .pool_size(8)
        .thread_capacity(4)
        .build();
    let mut short = pool.get();
    short.push_str("short");
    pool.put(short);
    let mut long = pool.checkout();
    assert!(long.is_empty()); // cleared on its way back
    long.push_str("longer than eight");
    drop(long); // refused: closed
    let mut owned = pool.checkout_owned();
    owned.push_str("fits");
    std::thread::spawn(move || drop(owned)).join().unwrap();
    let wrapper = CacheWrapper::new(&pool);
    let r: Result<(), JobFailed> = wrapper.run(|s| {
        s.push_str("much too long to keep");
        Ok(())
    });
    r.unwrap();
    // The wrapper took the element the spawned thread left in the global shard at its exit.
    assert_stats!(pool.stats(), new: 2, get: 4, put: 2, closed: 2, hits_global: 1, idle: 0);
}

#[test]
fn a_pool_and_its_guards_are_send_and_sync_when_the_reset_is() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CachePool<String, Clear>>();
    assert_send_sync::<Checkout<'static, String, Clear>>();
    assert_send_sync::<OwnedCheckout<String, Clear>>();
    assert_send_sync::<CacheWrapper<String, cachepool::NeverReuse, Clear>>();
    assert_send_sync::<CachePool<String, fn(&mut String) -> bool>>();
    // A closure capturing shared state: its pool and guards cross threads with it.
    let resets = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&resets);
    let pool = CachePool::builder(String::new)
        .reset_with(move |s: &mut String| {
            counted.fetch_add(1, Ordering::Relaxed);
            s.clear();
            true
        })
        .build();
    fn send_sync_value<T: Send + Sync>(_: &T) {}
    send_sync_value(&pool);
    let mut guard = pool.checkout_owned();
    guard.push_str("dirty");
    std::thread::spawn(move || drop(guard)).join().unwrap();
    let clone = pool.clone(); // clones the closure, and so shares its counter
    clone.put(clone.get());
    assert_eq!(resets.load(Ordering::Relaxed), 2);
    assert_stats!(pool.stats(), put: 2);
}

/// What one thread does to a shared pool with a `Reset` type in
/// [`threads_sharing_a_pool_with_a_reset_type_lose_nothing`].
fn hammer_typed(f: &TypedFixture, seed: u64, rounds: usize) {
    let mut rng = crate::common::Rng::new(seed);
    for _ in 0..rounds {
        match rng.below(4) {
            // put, sometimes refused by the type's hook
            0 => {
                let mut e = f.take();
                e.scratch = 1;
                e.refuse = rng.chance(100);
                f.put(e);
            }
            // borrowing guard, sometimes panicking in the type's hook
            1 => {
                let mut g = f.checkout();
                g.scratch = 1;
                g.panic_in_reset = rng.chance(50);
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f.give_guard(g))) {
                    assert_eq!(expect_injected(panic), Site::Reset);
                }
            }
            // owned guard, given back on another thread
            2 => {
                let mut g = f.checkout_owned();
                g.scratch = 1;
                f.ledger.give(&g);
                std::thread::spawn(move || drop(g)).join().unwrap();
            }
            // a burst past the thread's list: spills to the global shard, then closes
            _ => {
                let held: Vec<Tracked> = (0..6).map(|_| f.take()).collect();
                for e in held {
                    f.put(e);
                }
            }
        }
    }
}

#[test]
fn threads_sharing_a_pool_with_a_reset_type_lose_nothing() {
    let _quiet = silence_injected_panics();
    let f = typed_fixture();
    let rounds = crate::common::scale(2_000, 20);
    let seed = crate::common::seed();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let f = &f;
                s.spawn(move || hammer_typed(f, seed ^ t, rounds))
            })
            .collect();
        // Joined one by one: the scope's own join does not wait for the threads' exit
        // hooks, which move their cached elements (see `common::hammer`).
        for worker in workers {
            worker.join().unwrap();
        }
    });
    let stats = f.pool.stats();
    if let Err(e) = f.ledger.check_quiet(&stats, f.pool.pool_size()) {
        panic!("seed {seed}: {e}");
    }
    assert!(stats.closed > 0 && stats.put > 0, "{stats}");
    f.finish();
}
