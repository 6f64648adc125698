//! `prefill`, `clear`, `trim` and validation on checkout: what each closes, when, and that the
//! budget comes back whole so the pool keeps caching afterwards.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;

use cachepool::CachePool;

use crate::common::{Site, assert_stats, expect_injected, inject, silence_injected_panics};

/// A pool of numbered elements that records the ids its close callback receives.
struct Numbered {
    pool: CachePool<usize>,
    closed: Arc<Mutex<Vec<usize>>>,
}

fn numbered(pool_size: usize, thread_capacity: usize) -> Numbered {
    let next = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&closed);
    let pool = CachePool::builder(move || next.fetch_add(1, SeqCst))
        .close_callback(move |id| sink.lock().unwrap().push(id))
        .pool_size(pool_size)
        .thread_capacity(thread_capacity)
        .build();
    Numbered { pool, closed }
}

impl Numbered {
    fn closed(&self) -> Vec<usize> {
        let mut ids = self.closed.lock().unwrap().clone();
        ids.sort_unstable();
        ids
    }

    /// Checks out `n` elements at once, then gives them all back.
    fn cycle(&self, n: usize) {
        let held: Vec<usize> = (0..n).map(|_| self.pool.get()).collect();
        held.into_iter().for_each(|id| self.pool.put(id));
    }
}

#[test]
fn prefill_stops_at_the_budget_and_serves_other_threads_from_the_global_shard() {
    let p = numbered(8, 2);
    assert_eq!(p.pool.prefill(20).unwrap(), 8);
    assert_eq!(p.pool.prefill(1).unwrap(), 0, "the budget is spent");
    let stats = p.pool.stats();
    assert_stats!(stats, new: 8, prefilled: 8, idle: 8);

    let pool = p.pool.clone();
    thread::spawn(move || drop(pool.checkout())).join().unwrap();
    let stats = p.pool.stats();
    assert_stats!(stats, new: 8, hits_global: 1; "no element created");
    assert_eq!(stats.idle, 8);
    assert!(p.closed().is_empty());
}

#[test]
fn prefill_keeps_what_it_created_before_the_generator_failed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let pool = CachePool::try_builder(move || match counter.fetch_add(1, SeqCst) {
        n if n < 3 => Ok(n),
        _ => Err("out of sockets"),
    })
    .pool_size(10)
    .build();
    let err = pool.prefill(10).unwrap_err();
    assert_eq!(err.get_ref().to_string(), "out of sockets");
    let stats = pool.stats();
    assert_stats!(stats, new: 3, prefilled: 3, idle: 3);
    // The units the failed prefill did not use went back: 7 more elements can be cached.
    let extra: Vec<usize> = (0..10).map(|_| pool.try_get().unwrap_or(99)).collect();
    assert_eq!(extra.iter().filter(|&&id| id < 3).count(), 3);
}

#[test]
fn clear_closes_the_global_shard_and_the_callers_list_before_returning() {
    let p = numbered(16, 4);
    p.cycle(12); // 4 stay in this thread's list at most; the rest spill to the global shard
    let before = p.pool.stats();
    assert_eq!(before.idle, 12);
    p.pool.clear();
    assert_eq!(p.closed(), (0..12).collect::<Vec<_>>());
    let stats = p.pool.stats();
    assert_stats!(stats, idle: 0, evicted: 12, closed: 12);
    // Every unit of budget came back: a full pool can be cached again.
    p.cycle(16);
    assert_eq!(p.pool.stats().idle, 16);
}

#[test]
fn clear_reaches_another_threads_list_before_it_returns() {
    let p = numbered(16, 8);
    let (cleared_tx, cleared_rx) = mpsc::channel::<()>();
    let cached = Arc::new(Barrier::new(2));
    let worker = {
        let (pool, cached) = (p.pool.clone(), Arc::clone(&cached));
        thread::spawn(move || {
            let held: Vec<usize> = (0..3).map(|_| pool.get()).collect();
            held.into_iter().for_each(|id| pool.put(id));
            cached.wait();
            cleared_rx.recv().unwrap();
            let fresh = pool.get();
            assert_eq!(fresh, 3, "none of the cleared elements is handed out");
            pool.put(fresh);
        })
    };
    cached.wait();
    p.pool.clear();
    // The worker is alive and has not used the pool since: clear() closed its list itself.
    let mut gone = p.closed.lock().unwrap().clone();
    gone.sort_unstable();
    assert_eq!(gone, [0, 1, 2], "closed by clear() on this thread");
    assert_eq!(p.pool.stats().idle, 0);
    cleared_tx.send(()).unwrap();
    worker.join().unwrap();
    let stats = p.pool.stats();
    assert_stats!(stats, new: 4, evicted: 3, idle: 1);
    // The element put after the clear went to the worker's list, which was flushed at its
    // exit into the global shard: idle is the global element (counted by stats as not yet
    // taken), and one thread's checkout finds it.
    assert_eq!(p.pool.get(), 3);
}

#[test]
fn clear_before_a_thread_exits_closes_its_list_instead_of_moving_it() {
    let p = numbered(16, 8);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let worker = {
        let pool = p.pool.clone();
        thread::spawn(move || {
            p_cycle(&pool, 3);
            go_rx.recv().unwrap(); // exits without touching the pool again
        })
    };
    while p.pool.stats().idle < 3 {
        thread::yield_now();
    }
    p.pool.clear();
    go_tx.send(()).unwrap();
    worker.join().unwrap();
    assert_eq!(p.closed(), [0, 1, 2]);
    assert_eq!(p.pool.stats().idle, 0);
    assert_eq!(p.pool.get(), 3, "nothing stale reached the global shard");
}

fn p_cycle(pool: &CachePool<usize>, n: usize) {
    let held: Vec<usize> = (0..n).map(|_| pool.get()).collect();
    held.into_iter().for_each(|id| pool.put(id));
}

#[test]
fn trim_closes_only_what_sat_idle_through_a_whole_period() {
    let p = numbered(16, 8);
    p.cycle(4); // ids 0..4, warmest (3) on top
    p.pool.trim(); // all four were used in the period that ends here
    assert!(p.closed().is_empty());
    p.cycle(1); // uses 3 again
    p.pool.trim();
    assert_eq!(p.closed(), [0, 1, 2]);
    let stats = p.pool.stats();
    assert_stats!(stats, trimmed: 3, evicted: 3, idle: 1);
    p.pool.trim();
    assert_eq!(p.closed(), [0, 1, 2, 3], "unused for a whole period now");
}

#[test]
fn trim_closes_global_batches_after_two_trims_and_keeps_a_busy_list() {
    // Capacity 4 spills batches of 2: ids 0..8 go to the global shard, 8..12 stay here.
    let p = numbered(64, 4);
    p.cycle(12);
    // Another thread takes the batch [0, 1], uses 1, and exits: [0, 1] goes back.
    let pool = p.pool.clone();
    thread::spawn(move || drop(pool.checkout())).join().unwrap();
    assert_eq!(p.pool.stats().hits_global, 1);

    p.pool.trim(); // the batches have not sat through a whole period yet
    assert!(p.closed().is_empty());
    p.cycle(4); // this thread keeps using its whole list
    p.pool.trim();
    assert_eq!(p.closed(), (0..8).collect::<Vec<_>>());
    let stats = p.pool.stats();
    assert_stats!(stats, trimmed: 8, idle: 4);
    p.cycle(4);
    assert_eq!(p.pool.stats().new, 12, "the busy list was kept");
}

#[test]
fn validation_closes_refused_idle_elements_and_tries_the_next() {
    let closed = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&closed);
    let next = AtomicUsize::new(0);
    let pool = CachePool::builder(move || next.fetch_add(1, SeqCst))
        .close_callback(move |id| sink.lock().unwrap().push(id))
        .validate(|id| id % 2 == 0)
        .build();
    let held: Vec<usize> = (0..4).map(|_| pool.get()).collect();
    assert_eq!(held, [0, 1, 2, 3], "new elements are not validated");
    held.into_iter().for_each(|id| pool.put(id));
    assert_eq!(pool.get(), 2, "3 refused, 2 handed out");
    assert_eq!(pool.get(), 0, "1 refused, 0 handed out");
    assert_eq!(pool.get(), 4, "nothing idle left: a new element");
    assert_eq!(*closed.lock().unwrap(), [3, 1]);
    let stats = pool.stats();
    assert_stats!(stats, invalid: 2, evicted: 2, closed: 2);
    assert_stats!(stats, new: 5, get: 7, idle: 0);
}

#[test]
fn a_panicking_validator_closes_its_element_and_the_pool_keeps_working() {
    let closed = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&closed);
    let next = AtomicUsize::new(0);
    let pool = CachePool::builder(move || next.fetch_add(1, SeqCst))
        .close_callback(move |_| {
            count.fetch_add(1, SeqCst);
        })
        .validate(|&id| {
            if id == 0 {
                panic!("validator bug")
            } else {
                true
            }
        })
        .build();
    pool.put(pool.get());
    let caught = catch_unwind(AssertUnwindSafe(|| pool.get()));
    assert!(caught.is_err());
    assert_eq!(
        closed.load(SeqCst),
        1,
        "the element under validation was closed"
    );
    assert_eq!(pool.get(), 1);
    let stats = pool.stats();
    assert_stats!(stats, new: 2, closed: 1, idle: 0);
}

#[test]
fn a_trim_after_a_clear_is_counted_as_a_trim() {
    let p = numbered(16, 2);
    p.cycle(1);
    p.pool.clear();
    p.cycle(6); // ids 1..7; 4 of them spill to the global shard
    p.pool.trim();
    p.pool.trim();
    let stats = p.pool.stats();
    assert_eq!(
        stats.evicted,
        1 + 6,
        "the cleared one and everything idle for a period"
    );
    assert_eq!(stats.trimmed, 6);
}

/// A pool holding `count` idle elements whose close callback panics on each.
fn idle_elements_that_panic_on_close(count: usize) -> CachePool<u32> {
    let pool = CachePool::builder(|| 0u32)
        .close_callback(|_| inject(Site::Close))
        .pool_size(count)
        .thread_capacity(count)
        .build();
    let held: Vec<u32> = (0..count).map(|_| pool.get()).collect();
    held.into_iter().for_each(|e| pool.put(e));
    assert_stats!(pool.stats(), idle: count);
    pool
}

/// One call that closes several elements propagates one panic at most: every other panic of
/// the close callback is contained, and each is counted, as `Stats::contained_panics` says.
#[test]
fn clear_and_trim_count_every_close_panic_they_do_not_propagate() {
    let _quiet = silence_injected_panics();
    type Eviction = fn(&CachePool<u32>);
    let clear: Eviction = CachePool::clear;
    // The first trim starts the period the elements then sit idle through.
    let trim_twice: Eviction = |pool| {
        pool.trim();
        pool.trim();
    };
    for evict in [clear, trim_twice] {
        // Called normally: the first panic propagates, the other two are contained.
        let pool = idle_elements_that_panic_on_close(3);
        let caught = catch_unwind(AssertUnwindSafe(|| evict(&pool)));
        assert_eq!(expect_injected(caught.unwrap_err()), Site::Close);
        assert_stats!(pool.stats(), closed: 3, evicted: 3, idle: 0, contained_panics: 2);

        // Called from a drop while the thread unwinds: all three are contained.
        struct EvictOnDrop<'a>(&'a CachePool<u32>, Eviction);
        impl Drop for EvictOnDrop<'_> {
            fn drop(&mut self) {
                (self.1)(self.0);
            }
        }
        let pool = idle_elements_that_panic_on_close(3);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _evict = EvictOnDrop(&pool, evict);
            inject(Site::UserCode);
        }));
        assert_eq!(expect_injected(caught.unwrap_err()), Site::UserCode);
        assert_stats!(pool.stats(), closed: 3, evicted: 3, idle: 0, contained_panics: 3);
    }
}
