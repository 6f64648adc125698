//! The `Stats` snapshot as users print and export it, and the bounds a reading keeps while
//! threads work.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cachepool::{CachePool, Stats};

use crate::common::assert_stats;

#[test]
fn stats_display_is_one_line_with_every_field() {
    let pool = CachePool::new(String::new);
    let s = pool.get();
    pool.put(s);
    let held = pool.get();
    let line = pool.stats().to_string();
    assert_eq!(
        line,
        "new=1 get=2 put=1 closed=0 hits_local=1 hits_global=0 hits_stolen=0 detached=0 prefilled=0 \
         evicted=0 trimmed=0 invalid=0 idle=0 idle_weight=0 checked_out=1 contained_panics=0"
    );
    assert!(!line.contains('\n'));
    drop(held);
}

/// `checked_out` counts what users hold now, whichever way they took it and gave it back.
#[test]
fn checked_out_follows_every_way_in_and_out() {
    let pool = CachePool::builder(|| vec![0u8; 16]).pool_size(2).build();
    let a = pool.get();
    let b = pool.checkout();
    let c = pool.checkout_owned();
    let d = pool.checkout();
    assert_eq!(pool.stats().checked_out, 4);
    pool.put(a); // kept
    assert_eq!(pool.stats().checked_out, 3);
    cachepool::Checkout::discard(b); // closed
    assert_eq!(pool.stats().checked_out, 2);
    let _kept: Vec<u8> = cachepool::OwnedCheckout::detach(c); // the user keeps it
    assert_eq!(pool.stats().checked_out, 1);
    let e = pool.get(); // the idle one
    pool.put(e);
    drop(d); // kept: the second unit of the budget
    let stats = pool.stats();
    assert_stats!(stats, checked_out: 0, idle: 2);
    assert_eq!(
        stats.new,
        stats.idle as u64 + stats.checked_out + stats.closed + stats.detached
    );
}

#[test]
fn stats_build_from_default_and_compare_field_by_field() {
    let pool = CachePool::new(|| 0u32);
    let held = pool.checkout();
    let mut expected = Stats::default();
    (expected.new, expected.get, expected.checked_out) = (1, 1, 1);
    assert_eq!(pool.stats(), expected);
    drop(held);
    (expected.put, expected.idle, expected.checked_out) = (1, 1, 0);
    assert_eq!(pool.stats(), expected);
}

/// While threads work, every reading keeps `idle <= pool_size` and stays within the events
/// counted during it; once they stop, the reading is exact.
#[test]
fn readings_under_load_stay_within_their_bounds_and_are_exact_when_quiet() {
    const THREADS: usize = 6;
    const HELD: usize = 3;
    let pool_size = 4;
    let pool = CachePool::builder(|| vec![0u8; 64])
        .pool_size(pool_size)
        .thread_capacity(2)
        .build();
    let stop = AtomicBool::new(false);
    let start = Barrier::new(THREADS + 1);
    let readings = std::thread::scope(|s| {
        for t in 0..THREADS {
            let (pool, stop, start) = (&pool, &stop, &start);
            s.spawn(move || {
                start.wait();
                let mut round = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    // Bursts larger than the pool: elements are built, kept, closed, and
                    // move between the lists and the global shard.
                    let held: Vec<_> = (0..HELD).map(|_| pool.checkout()).collect();
                    drop(held);
                    let v = pool.get();
                    if (round + t).is_multiple_of(7) {
                        pool.close(v);
                    } else {
                        pool.put(v);
                    }
                    round += 1;
                }
            });
        }
        // Stops the workers however this closure ends: a failed assertion below must not
        // leave `scope` waiting for them forever.
        let _stop = StopOnDrop(&stop);
        start.wait();
        // Read until 2,000 readings overlapped the workers' events (on a busy machine the
        // workers may not run during the first readings), or give up after 20 seconds.
        let began = Instant::now();
        let (mut readings, mut overlapped) = (0usize, 0usize);
        while overlapped < 2_000 && began.elapsed() < Duration::from_secs(20) {
            let before = pool.stats();
            let during = pool.stats();
            let after = pool.stats();
            readings += 1;
            assert!(
                during.idle <= pool_size,
                "idle {} > {pool_size}",
                during.idle
            );
            // Each figure is off by at most the events counted while it was read; `before`
            // and `after` enclose that reading, so their difference bounds those events.
            let events = (after.get - before.get)
                + (after.put - before.put)
                + (after.closed - before.closed)
                + (after.detached - before.detached)
                + (after.new - before.new);
            // Users hold at most THREADS * HELD elements at any instant.
            let truth_bound = (THREADS * HELD) as u64;
            assert!(
                during.checked_out <= truth_bound + events,
                "checked_out {} > {truth_bound} + {events} events",
                during.checked_out
            );
            overlapped += usize::from(events > 0);
            if readings.is_multiple_of(64) {
                std::thread::yield_now();
            }
        }
        assert!(overlapped > 0, "the workers never ran during a reading");
        readings
    });
    assert!(readings > 0);
    // Quiet: every thread has given everything back (and exited: their lists moved to the
    // global shard), so the figures are exact.
    let stats = pool.stats();
    assert_eq!(stats.checked_out, 0, "{stats}");
    assert!(stats.idle <= pool_size && stats.idle > 0, "{stats}");
    assert_eq!(
        stats.new,
        stats.idle as u64 + stats.checked_out + stats.closed + stats.detached,
        "{stats}"
    );
}

/// Sets its flag when dropped, unwinding included.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(feature = "serde")]
#[test]
fn stats_serde_round_trips_through_json() {
    let pool = CachePool::new(String::new);
    pool.put(pool.get());
    let held = pool.get();
    let stats = pool.stats();
    let json = serde_json::to_string(&stats).unwrap();
    assert!(
        json.contains(r#""new":1"#) && json.contains(r#""checked_out":1"#),
        "{json}"
    );
    let back: cachepool::Stats = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stats);
    // Fields missing from older JSON read as 0.
    let old: cachepool::Stats = serde_json::from_str(r#"{"new":3,"idle":2}"#).unwrap();
    assert_stats!(old, new: 3, idle: 2, checked_out: 0);
    drop(held);
}
