//! The `pool_size` budget across threads: no thread is starved of budget while the pool has
//! room, budget a thread reserved and does not use is taken by a thread that needs it, and large pools keep
//! exactly `pool_size` elements.

use std::sync::Barrier;
use std::sync::mpsc;
use std::thread;

use cachepool::{CachePool, Stats};

use crate::common::{assert_stats, scale};

/// `stats` minus `before`, for the counters a test compares.
fn delta(stats: Stats, before: Stats) -> (u64, u64, u64) {
    (
        stats.new - before.new,
        stats.put - before.put,
        stats.closed - before.closed,
    )
}

/// `threads` threads each cache one element and stay alive; meanwhile a new thread's get/put
/// rounds take one of those idle elements (before building one) and keep reusing it: it builds
/// nothing and its puts are never closed.
fn late_thread_reuses_its_element(pool: &CachePool<u64>, threads: usize) {
    let rounds = scale(100, 10);
    let cached = Barrier::new(threads + 1);
    let done = Barrier::new(threads + 1);
    let late_thread = thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                pool.put(pool.get());
                cached.wait();
                done.wait();
            });
        }
        cached.wait();
        let before = pool.stats();
        s.spawn(|| {
            for _ in 0..rounds {
                pool.put(pool.get());
            }
        })
        .join()
        .unwrap();
        let late_thread = delta(pool.stats(), before);
        // Released before asserting, so that a failure fails rather than hangs the test.
        done.wait();
        late_thread
    });
    assert_eq!(
        late_thread,
        (0, rounds as u64, 0),
        "{threads} threads caching one element each, pool_size {}, thread_capacity {}",
        pool.pool_size(),
        pool.thread_capacity()
    );
}

#[test]
fn no_thread_starves_while_others_each_cache_one_element() {
    for pool_size in [cachepool::DEFAULT_POOL_SIZE, 64] {
        let batch = (CachePool::builder(|| 0u64)
            .pool_size(pool_size)
            .build()
            .thread_capacity()
            / 2)
        .max(1);
        // Thread counts are the test's subject: a soak scales the rounds, not them.
        let most = if cfg!(miri) {
            4
        } else {
            4 * (pool_size / batch)
        };
        for threads in [1, pool_size / batch, pool_size / batch + 1, most] {
            let pool = CachePool::builder(|| 0u64).pool_size(pool_size).build();
            late_thread_reuses_its_element(&pool, threads.min(most));
        }
    }
}

/// Threads that took elements out of their lists and sent them away still hold the budget
/// those elements came with, and stay alive without using the pool. A put that finds the budget
/// spent takes those unused units from their leases, so it is kept, and so is every put after
/// it: no element is closed while the pool has room.
#[test]
fn a_put_that_finds_the_budget_spent_takes_the_units_other_threads_do_not_use() {
    const HOLDERS: usize = 4;
    const CAPACITY: usize = 16;
    const SENT: usize = HOLDERS * (CAPACITY - 1);
    let pool = CachePool::builder(|| 0u64)
        .pool_size(HOLDERS * CAPACITY)
        .thread_capacity(CAPACITY)
        .build();
    let (to_main, sent) = mpsc::channel();
    let all_out = Barrier::new(HOLDERS);
    let asked = Barrier::new(HOLDERS + 1);
    let used_again = Barrier::new(HOLDERS + 1);
    let (first_put, rest) = thread::scope(|s| {
        for _ in 0..HOLDERS {
            let to_main = to_main.clone();
            let (pool, all_out, asked, used_again) = (&pool, &all_out, &asked, &used_again);
            s.spawn(move || {
                // A full list and a full lease; then all but one element sent away, so the
                // list never runs dry and the lease stays. The bursts overlap, so that each
                // holder builds its own elements: a get that found another holder's list
                // full would take from it, and that holder would build in its place.
                let burst: Vec<u64> = (0..CAPACITY).map(|_| pool.get()).collect();
                all_out.wait();
                burst.into_iter().for_each(|e| pool.put(e));
                for _ in 1..CAPACITY {
                    to_main.send(pool.get()).unwrap();
                }
                asked.wait();
                pool.put(pool.get()); // the one element left in the list
                used_again.wait();
            });
        }
        drop(to_main);
        let mut elements: Vec<u64> = sent.iter().take(SENT).collect();

        let before = pool.stats();
        pool.put(elements.pop().unwrap());
        let first_put = delta(pool.stats(), before);
        // Released before asserting, so that a failure fails rather than hangs the test.
        asked.wait();
        used_again.wait();
        let before = pool.stats();
        elements.into_iter().for_each(|e| pool.put(e));
        (first_put, delta(pool.stats(), before))
    });
    assert_eq!(
        first_put,
        (0, 1, 0),
        "every free unit is reserved by the other threads, and taken from them"
    );
    assert_eq!(rest, (0, SENT as u64 - 1, 0), "kept with the units taken");
    // Nothing was closed: every element built is idle.
    assert_stats!(pool.stats(), new: (HOLDERS * CAPACITY) as u64, closed: 0, idle: HOLDERS * CAPACITY);
}

#[test]
fn a_pool_larger_than_the_global_shard_ever_was_keeps_every_element() {
    const SIZE: usize = 10_000;
    let n = if cfg!(miri) { 600 } else { 6_000 }; // below the pool's 10,000
    let pool = CachePool::builder(|| 0u64)
        .pool_size(SIZE)
        .thread_capacity(0)
        .build();
    let held: Vec<u64> = (0..n).map(|_| pool.get()).collect();
    held.into_iter().for_each(|e| pool.put(e));
    let stats = pool.stats();
    assert_stats!(stats, put: n as u64, closed: 0, idle: n);
}

#[test]
fn prefill_counts_only_the_elements_it_kept() {
    const SIZE: usize = 10_000;
    for thread_capacity in [None, Some(0)] {
        let builder = CachePool::builder(|| 0u64).pool_size(SIZE);
        let pool = match thread_capacity {
            Some(c) => builder.thread_capacity(c).build(),
            None => builder.build(),
        };
        if cfg!(miri) {
            assert_eq!(pool.prefill(100).unwrap(), 100);
            continue;
        }
        assert_eq!(pool.prefill(usize::MAX).unwrap(), SIZE);
        let stats = pool.stats();
        assert_stats!(stats, new: SIZE as u64, closed: 0, idle: SIZE);
        assert_eq!(pool.prefill(1).unwrap(), 0, "the pool is full");
    }
}
