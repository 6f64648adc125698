//! The weight budget: `Builder::weigher`, `Builder::max_idle_weight`, `Stats::idle_weight` and
//! `get_at_least`/`checkout_at_least`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cachepool::{CachePool, Clear, NoReset, Reset, Weigh};

use crate::common::rng::Rng;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// A pool of byte buffers weighed by capacity, whose close callback adds up what it closes.
fn buffer_pool(
    pool_size: usize,
    max_idle_weight: usize,
) -> (CachePool<Vec<u8>, Clear>, Arc<AtomicUsize>) {
    let closed = Arc::new(AtomicUsize::new(0));
    let sum = Arc::clone(&closed);
    let pool = CachePool::builder(|| Vec::with_capacity(4 * KIB))
        .reset_with(Clear)
        .weigher(|buf| buf.capacity())
        .max_idle_weight(max_idle_weight)
        .pool_size(pool_size)
        .close_callback(move |buf| {
            sum.fetch_add(buf.capacity(), Relaxed);
        })
        .build();
    (pool, closed)
}

/// Clears `pool` and returns the weight its close callback received: on a quiet pool, the
/// summed capacity of every idle buffer.
fn weight_cleared(pool: &CachePool<Vec<u8>, Clear>, closed: &AtomicUsize) -> usize {
    let before = closed.load(Relaxed);
    pool.clear();
    closed.load(Relaxed) - before
}

/// A light element is reused by plain checkouts; a heavy one is kept apart for requests that
/// ask for it, and handed to a plain checkout only when nothing lighter is idle and heavy
/// elements are the pool's common case.
#[test]
fn heavy_elements_are_kept_apart_for_the_requests_that_ask_for_them() {
    // 16 elements and 64 KiB: 4 KiB per light element.
    let (pool, _) = buffer_pool(16, 64 * KIB);
    let small = pool.get();
    let mut large = pool.get();
    large.reserve(32 * KIB);
    let large_capacity = large.capacity();
    pool.put(large);
    pool.put(small);
    assert_eq!(pool.stats().idle_weight, 4 * KIB + large_capacity);

    assert_eq!(pool.checkout().capacity(), 4 * KIB, "the light one, twice");
    assert_eq!(pool.checkout().capacity(), 4 * KIB);
    assert_eq!(pool.checkout_at_least(20 * KIB).capacity(), large_capacity);
    let too_large = pool.get_at_least(large_capacity + 1);
    assert_eq!(
        too_large.capacity(),
        4 * KIB,
        "none heavy enough: a new element"
    );
    let light = pool.get();
    assert_eq!(pool.stats().new, 3, "the light one was left for this get");
    // Mostly light give-backs: a plain checkout that finds no light element builds one,
    // and the heavy one stays for the request that needs it.
    assert_eq!(pool.checkout().capacity(), 4 * KIB, "a new light element");
    assert_eq!(pool.stats().new, 4);
    pool.put(too_large);
    pool.put(light);
    assert_eq!(
        pool.checkout_at_least(large_capacity).capacity(),
        large_capacity
    );
    assert_eq!(pool.stats().idle_weight, 12 * KIB + large_capacity);
}

/// A pool whose elements are all heavy (1 MiB buffers, 8 MiB for 1,024 elements: 8 KiB per
/// light one) reuses them on plain checkouts, up to the weight budget.
#[test]
fn a_pool_of_heavy_elements_reuses_them_on_plain_checkouts() {
    let pool = CachePool::builder(|| vec![0u8; MIB])
        .weigher(|buf| buf.capacity())
        .max_idle_weight(8 * MIB)
        .build();
    for _ in 0..100 {
        let held: Vec<Vec<u8>> = (0..4).map(|_| pool.get()).collect();
        held.into_iter().for_each(|buf| pool.put(buf));
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.new, stats.idle, stats.idle_weight),
        (4, 4, 4 * MIB),
        "{stats}"
    );
}

/// An element heavier than the whole budget is closed when it comes back, and a heavy one
/// that does not fit in what is left is closed too, leaving the idle ones as they are.
#[test]
fn an_element_that_does_not_fit_is_closed_and_the_idle_ones_stay() {
    let (pool, closed) = buffer_pool(16, MIB);
    let mut huge = pool.get();
    huge.reserve(2 * MIB);
    pool.put(huge);
    assert_eq!(pool.stats().idle, 0);
    assert!(closed.load(Relaxed) >= 2 * MIB);

    let heavy: Vec<Vec<u8>> = (0..3).map(|_| Vec::with_capacity(400 * KIB)).collect();
    heavy.into_iter().for_each(|buf| pool.put(buf));
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.idle_weight), (2, 800 * KIB), "{stats}");
    assert_eq!(stats.closed, 2);
    assert_eq!(weight_cleared(&pool, &closed), 800 * KIB);
    assert_eq!(pool.stats().idle_weight, 0);
}

/// `pool_size` and `max_idle_weight` hold together: whichever is reached first.
#[test]
fn both_limits_hold_together() {
    let (pool, _) = buffer_pool(4, usize::MAX);
    let held: Vec<Vec<u8>> = (0..10).map(|_| pool.get()).collect();
    held.into_iter().for_each(|buf| pool.put(buf));
    assert_eq!((pool.stats().idle, pool.stats().idle_weight), (4, 16 * KIB));

    // 64 KiB for 1,024 elements: 64 bytes per light element, so every 4 KiB buffer is
    // heavy and the weight, not the count, is the bound.
    let (pool, _) = buffer_pool(1024, 64 * KIB);
    let held: Vec<Vec<u8>> = (0..40).map(|_| pool.get()).collect();
    held.into_iter().for_each(|buf| pool.put(buf));
    assert_eq!(
        (pool.stats().idle, pool.stats().idle_weight),
        (16, 64 * KIB)
    );
}

/// On a quiet pool `idle_weight` is the summed capacity of the idle buffers, wherever they
/// are: thread lists (of threads alive and idle), the global shard (after spills and thread
/// exits) and the heavy elements.
#[test]
fn idle_weight_is_exact_on_a_quiet_pool_wherever_the_elements_are() {
    // 1 MiB per light element: a third of the buffers are heavy.
    let (pool, closed) = buffer_pool(1024, 1024 * MIB);
    let given = AtomicUsize::new(0);
    let (taken, cached, done) = (Barrier::new(4), Barrier::new(5), Barrier::new(3));
    std::thread::scope(|s| {
        for t in 0..4usize {
            let (pool, given, taken, cached, done) = (&pool, &given, &taken, &cached, &done);
            s.spawn(move || {
                let mut rng = Rng::new(t as u64 + 1);
                let mut held: Vec<Vec<u8>> = (0..60).map(|_| pool.get()).collect();
                taken.wait(); // 240 created, none given back yet
                for buf in &mut held {
                    buf.reserve(rng.below(3) * 700 * KIB + rng.below(8));
                }
                for buf in held {
                    given.fetch_add(buf.capacity(), Relaxed);
                    pool.put(buf);
                }
                cached.wait();
                // Threads 0 and 1 stay alive and idle; 2 and 3 exit, their lists flushed.
                if t < 2 {
                    done.wait();
                }
            });
        }
        cached.wait();
        let stats = pool.stats();
        // Asserted once the threads are let go, so that a failure does not leave them waiting.
        done.wait();
        assert_eq!(stats.idle, 240, "{stats}");
        assert_eq!(stats.idle_weight, given.load(Relaxed));
    });
    let stats = pool.stats();
    assert_eq!(stats.idle_weight, given.load(Relaxed), "{stats}");
    // Other threads take light elements from the global shard and other lists, and give them
    // back. A checkout that races an exiting thread's flush (its list on the way to the global
    // shard) may build a new element (4 KiB); the books stay exact either way.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let taken: Vec<Vec<u8>> = (0..50).map(|_| pool.get()).collect();
                taken.into_iter().for_each(|buf| pool.put(buf));
            });
        }
    });
    let stats = pool.stats();
    assert!(stats.hits_global + stats.hits_stolen > 0, "{stats}");
    let built = usize::try_from(stats.new - 240).unwrap();
    assert_eq!(stats.idle, 240 + built, "{stats}");
    assert_eq!(stats.idle_weight, given.load(Relaxed) + built * 4 * KIB);
    assert_eq!(weight_cleared(&pool, &closed), stats.idle_weight);
    assert_eq!(pool.stats().idle_weight, 0);
}

/// 8 threads give back heavy-tailed sizes (most 4 KiB, 1 in 100 1 MiB, 1 in 1,000 16 MiB) to
/// a pool with an 8 MiB weight budget, while another thread reads the statistics and a third
/// trims: no reading of `idle_weight` is above 8 MiB, no buffer over 8 MiB is ever handed out
/// again, and on the quiet pool `idle_weight` is the summed capacity of the idle buffers.
#[test]
fn heavy_tailed_give_backs_from_eight_threads_never_exceed_the_weight_budget() {
    let (pool, closed) = buffer_pool(cachepool::DEFAULT_POOL_SIZE, 8 * MIB);
    heavy_tailed_give_backs(&pool, &closed);
}

/// The same with the weigher in the pool's type (`Weigh`), and with a `Reset` closure.
#[test]
fn a_weigher_in_the_pools_type_keeps_the_same_books() {
    let closed = Arc::new(AtomicUsize::new(0));
    let sum = Arc::clone(&closed);
    let pool = CachePool::builder(|| Vec::with_capacity(4 * KIB))
        .reset_with(Weigh(
            |buf: &mut Vec<u8>| {
                buf.clear();
                true
            },
            |buf: &Vec<u8>| buf.capacity(),
        ))
        .max_idle_weight(8 * MIB)
        .close_callback(move |buf: Vec<u8>| {
            sum.fetch_add(buf.capacity(), Relaxed);
        })
        .build();
    heavy_tailed_give_backs(&pool, &closed);

    // One light element and one heavy, through `put` and a guard.
    pool.put(Vec::with_capacity(64 * KIB));
    drop(pool.checkout());
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.idle_weight), (2, 68 * KIB), "{stats}");
    assert_eq!(
        pool.checkout().capacity(),
        4 * KIB,
        "the light one, kept apart"
    );
    assert_eq!(pool.checkout_at_least(64 * KIB).capacity(), 64 * KIB);
    assert_eq!(pool.prefill(2).unwrap(), 2);
    assert_eq!(pool.stats().idle_weight, 76 * KIB);
}

/// A weigher in the pool's type that panics gets its element closed, and the panic
/// propagates from `put` and from a guard's drop; a boxed weigher beside one is refused.
#[test]
fn a_weigher_in_the_pools_type_that_panics_closes_its_element() {
    let pool = CachePool::builder(|| vec![0u8; 16])
        .reset_with(Weigh(NoReset, |buf: &Vec<u8>| weight_or_panic(buf)))
        .max_idle_weight(MIB)
        .build();
    assert_a_panicking_weigher_loses_nothing(&pool);
    let both = catch_unwind(|| {
        CachePool::builder(Vec::<u8>::new)
            .weigher(|buf| buf.capacity())
            .reset_with(Weigh(NoReset, |buf: &Vec<u8>| buf.capacity()))
            .build()
    });
    assert!(both.is_err(), "a boxed weigher and one in the type");
}

/// A weigher that panics on a buffer of 100 bytes or more.
fn weight_or_panic(buf: &Vec<u8>) -> usize {
    assert!(buf.len() < 100, "a weigher that panics");
    buf.capacity()
}

/// On a pool of 16-byte buffers whose weigher is [`weight_or_panic`]: a `put` and a guard's
/// drop of a buffer the weigher panics on propagate the panic and close the buffer; the pool
/// keeps working and its ledger balances.
fn assert_a_panicking_weigher_loses_nothing<R: Reset<Vec<u8>>>(pool: &CachePool<Vec<u8>, R>) {
    let mut big = pool.get();
    big.resize(100, 0);
    assert!(catch_unwind(AssertUnwindSafe(|| pool.put(big))).is_err());
    let panicked = catch_unwind(AssertUnwindSafe(|| pool.checkout().resize(200, 0)));
    assert!(panicked.is_err());
    let stats = pool.stats();
    assert_eq!(
        (stats.closed, stats.idle, stats.checked_out),
        (2, 0, 0),
        "{stats}"
    );
    pool.put(pool.get());
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.idle_weight, stats.new), (1, 16, 3));
}

/// The workload of the heavy-tailed tests, on `pool` with an 8 MiB budget whose close
/// callback adds what it closes to `closed`.
fn heavy_tailed_give_backs<R: Reset<Vec<u8>> + Sync>(
    pool: &CachePool<Vec<u8>, R>,
    closed: &AtomicUsize,
) {
    const THREADS: u64 = 8;
    let run_for = if cfg!(miri) {
        Duration::from_millis(20)
    } else {
        Duration::from_millis(1500)
    };
    let stop = AtomicBool::new(false);
    let (readings, highest) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || {
                    let mut rng = Rng::new(t + 1);
                    let mut checkouts = 0u64;
                    while !stop.load(Relaxed) {
                        let size = match rng.below(1000) {
                            0 => 16 * MIB,
                            1..=10 => MIB,
                            _ => 4 * KIB,
                        };
                        let mut buf = pool.checkout_at_least(size);
                        assert!(buf.capacity() <= 8 * MIB, "a {} buffer", buf.capacity());
                        // Reserved, not written: the test is about weights, not memory traffic.
                        buf.reserve(size);
                        buf.push(1);
                        checkouts += 1;
                    }
                    checkouts
                })
            })
            .collect();
        s.spawn(|| {
            while !stop.load(Relaxed) {
                let weight = pool.stats().idle_weight;
                readings.fetch_add(1, Relaxed);
                highest.fetch_max(weight, Relaxed);
                std::thread::yield_now();
            }
        });
        s.spawn(|| {
            while !stop.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                pool.trim();
            }
        });
        let start = Instant::now();
        while start.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Relaxed);
        let checkouts: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        assert!(checkouts > 0);
    });
    assert!(readings.load(Relaxed) > 0);
    assert!(
        highest.load(Relaxed) <= 8 * MIB,
        "{}",
        highest.load(Relaxed)
    );
    let stats = pool.stats();
    assert_eq!(stats.checked_out, 0, "{stats}");
    let idle_weight = stats.idle_weight;
    assert!(idle_weight <= 8 * MIB);
    let before = closed.load(Relaxed);
    pool.clear();
    assert_eq!(closed.load(Relaxed) - before, idle_weight, "{stats}");
}

/// The weigher runs once per give-back: not again while the element is idle, wherever it
/// moves (a spill to the global shard, a refill, a thread's exit, a trim, a clear).
#[test]
fn the_weigher_runs_once_per_give_back() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let pool = CachePool::builder(|| vec![0u8; 64])
        .weigher(move |buf| {
            counted.fetch_add(1, Relaxed);
            buf.capacity()
        })
        .pool_size(64)
        .thread_capacity(4)
        .build();
    std::thread::scope(|s| {
        s.spawn(|| {
            let held: Vec<Vec<u8>> = (0..10).map(|_| pool.get()).collect();
            held.into_iter().for_each(|buf| pool.put(buf)); // 4 stay, the rest spill
        });
    }); // the thread exits: its list moves to the global shard
    assert_eq!(calls.load(Relaxed), 10);
    let taken: Vec<Vec<u8>> = (0..10).map(|_| pool.get()).collect();
    assert_eq!(calls.load(Relaxed), 10, "checkouts weigh nothing");
    taken.into_iter().for_each(|buf| pool.put(buf));
    pool.trim();
    pool.trim();
    pool.clear();
    assert_eq!(calls.load(Relaxed), 20);
    assert_eq!(pool.stats().put, 20);
}

/// A weigher that panics has its element closed, and the panic propagates as a reset hook's
/// does, from `put` and from a guard's drop; the pool keeps working and its ledger balances.
#[test]
fn a_weigher_that_panics_closes_its_element_and_the_panic_propagates() {
    let pool = CachePool::builder(|| vec![0u8; 16])
        .weigher(weight_or_panic)
        .max_idle_weight(MIB)
        .build();
    assert_a_panicking_weigher_loses_nothing(&pool);
}

/// `trim()`, `clear()` and the idle timeout reach the heavy elements too, and give their
/// weight back.
#[test]
fn trim_clear_and_the_idle_timeout_close_heavy_elements() {
    let (pool, closed) = buffer_pool(16, 64 * KIB);
    pool.put(Vec::with_capacity(32 * KIB));
    pool.trim();
    assert_eq!(
        pool.stats().idle_weight,
        32 * KIB,
        "given back in this period"
    );
    pool.trim();
    assert_eq!(pool.stats().trimmed, 1);
    assert_eq!(closed.load(Relaxed), 32 * KIB);
    pool.put(Vec::with_capacity(32 * KIB));
    pool.put(Vec::with_capacity(32 * KIB));
    assert_eq!(pool.stats().idle_weight, 64 * KIB, "the weight came back");
    pool.clear();
    assert_eq!(pool.stats().idle_weight, 0);

    let timeout = Duration::from_millis(if cfg!(miri) { 2000 } else { 50 });
    let pool = CachePool::builder(|| vec![0u8; 64 * KIB])
        .weigher(|buf| buf.capacity())
        .max_idle_weight(MIB)
        .pool_size(64)
        .idle_timeout(timeout)
        .build();
    pool.put(pool.get());
    pool.put(Vec::with_capacity(512 * KIB));
    assert_eq!(pool.stats().idle, 2);
    // Polled until the idle-timeout thread has closed both: a reading taken while it closes
    // them may see the weight gone before the second is counted as trimmed.
    let start = Instant::now();
    while pool.stats().trimmed < 2 {
        assert!(start.elapsed() < 40 * timeout, "{}", pool.stats());
        std::thread::sleep(timeout / 10);
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.trimmed, stats.idle, stats.idle_weight),
        (2, 0, 0),
        "{stats}"
    );
}

/// `prefill` weighs what it creates: light elements go to the global shard, heavy ones are
/// kept apart, each within the weight budget.
#[test]
fn prefill_weighs_what_it_creates() {
    let size = Arc::new(AtomicUsize::new(4 * KIB));
    let next = Arc::clone(&size);
    let pool = CachePool::builder(move || Vec::<u8>::with_capacity(next.load(Relaxed)))
        .weigher(|buf| buf.capacity())
        .max_idle_weight(MIB)
        .pool_size(64)
        .build();
    assert_eq!(pool.prefill(8).unwrap(), 8);
    assert_eq!(pool.stats().idle_weight, 32 * KIB);
    size.store(400 * KIB, Relaxed);
    assert_eq!(pool.prefill(4).unwrap(), 4, "four created");
    let stats = pool.stats();
    assert_eq!(
        (stats.idle, stats.prefilled, stats.closed),
        (10, 10, 2),
        "{stats}"
    );
    assert_eq!(stats.idle_weight, 32 * KIB + 800 * KIB);
    assert!(pool.get_at_least(400 * KIB).capacity() >= 400 * KIB);
}

/// Without a weigher nothing is weighed and `idle_weight` stays 0; a weight budget without
/// a weigher is a mistake the builder reports.
#[test]
fn a_pool_without_a_weigher_reports_no_weight() {
    let pool = CachePool::new(|| vec![0u8; 64]);
    pool.put(pool.get());
    assert_eq!((pool.stats().idle, pool.stats().idle_weight), (1, 0));
    assert_eq!(pool.get_at_least(MIB).len(), 64, "a plain get");
    let built = catch_unwind(|| CachePool::builder(String::new).max_idle_weight(10).build());
    let panic = built.expect_err("build panics");
    let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("without a `weigher`"), "{message}");
}
