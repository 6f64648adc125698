//! Reaching into other threads' lists: `trim()`, `clear()` and the idle timeout close what a
//! burst left in the lists of threads that stay alive and never use the pool again; a thread
//! that finds its list and the global shard empty takes another thread's idle elements before
//! it builds, and a `put` that finds the budget spent takes the budget other threads reserved
//! and do not use; and none of it loses, shares or double-closes an element while the owners
//! work.
//!
//! The burst of the first tests: [`Burst::threads`] threads each check out [`Burst::each`]
//! elements at once (so that every one of them is built), give them all back, and then a few
//! of them ("workers") go on using the pool, one element at a time, while the others stay
//! alive, blocked, and never call the pool again.
//!
//! The tests of the idle timeout share the process's one idle-timeout thread, so they take
//! [`TIMEOUT_POOLS`] and never overlap.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use cachepool::{CachePool, Stats};
use crossbeam_channel::Sender;

use crate::common::{
    Fixture, Handle, Ledger, Rng, Site, State, Tracked, UserOps, assert_stats, builder, inject,
    scale, seed, silence_injected_panics,
};

/// The size of a burst's elements: buffers of 1 MiB (zeroed pages are mapped only when
/// written, and only the workers write, one byte each time), 64 bytes under Miri.
const ELEMENT: usize = if cfg!(miri) { 64 } else { 1 << 20 };

/// How long a timer waits between two `trim()` calls.
const PERIOD: Duration = Duration::from_millis(100);

/// How long a test polls for what the pool's idle-timeout thread does.
const SETTLE: Duration = Duration::from_secs(1);

/// Taken by every test that builds a pool with an idle timeout, so that none of them sees the
/// idle-timeout thread of another's pool (the process has one for all of them).
static TIMEOUT_POOLS: Mutex<()> = Mutex::new(());

fn timeout_pools() -> MutexGuard<'static, ()> {
    // A test that failed while holding it left nothing to protect.
    TIMEOUT_POOLS.lock().unwrap_or_else(|e| e.into_inner())
}

fn buffer() -> Vec<u8> {
    vec![0u8; ELEMENT]
}

/// Elements created and not closed or detached (whatever the caller still holds is among
/// them). Saturating: under load, counters read at different instants.
fn alive(stats: &Stats) -> u64 {
    stats
        .new
        .saturating_sub(stats.closed)
        .saturating_sub(stats.detached)
}

/// Whether `done` holds at some poll within `within`.
fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The burst: `threads` threads each hold `each` elements at once, give them back, and then
/// `workers` of them go on using the pool while the others stay alive and idle.
#[derive(Clone, Copy, Debug)]
struct Burst {
    threads: usize,
    each: usize,
    workers: usize,
}

/// Lets the burst's threads go however the main thread's part ends (a failed assertion
/// included, so that it fails rather than hangs the test): the workers stop, and the idle
/// threads' channel disconnects.
struct Release<'a> {
    stop: &'a AtomicBool,
    _idle: Sender<()>,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

impl Burst {
    /// 16 threads of 8 elements (6 of 4 under Miri), `workers` of them working after it.
    fn with_workers(workers: usize) -> Burst {
        Burst {
            threads: if cfg!(miri) { 6 } else { 16 },
            each: if cfg!(miri) { 4 } else { 8 },
            workers,
        }
    }

    fn elements(self) -> usize {
        self.threads * self.each
    }

    /// Runs the burst on `pool`; once every thread gave its elements back, runs `then` on
    /// this thread while the workers work and the other threads stay alive and idle, and
    /// returns what it returned once every thread has been let go.
    fn run<R>(self, pool: &CachePool<Vec<u8>>, then: impl FnOnce() -> R) -> R {
        let all_out = Barrier::new(self.threads);
        let given_back = Barrier::new(self.threads + 1);
        let stop = AtomicBool::new(false);
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        thread::scope(|s| {
            for t in 0..self.threads {
                let worker = t < self.workers;
                let (all_out, given_back, stop) = (&all_out, &given_back, &stop);
                let released = released.clone();
                s.spawn(move || {
                    let held: Vec<Vec<u8>> = (0..self.each).map(|_| pool.get()).collect();
                    all_out.wait();
                    held.into_iter().for_each(|buf| pool.put(buf));
                    given_back.wait();
                    if worker {
                        while !stop.load(Relaxed) {
                            let mut buf = pool.get();
                            buf[0] = buf[0].wrapping_add(1);
                            pool.put(buf);
                            thread::sleep(Duration::from_millis(1));
                        }
                    } else {
                        // Alive and idle until `release` drops (then `recv` fails).
                        let _ = released.recv();
                    }
                });
            }
            drop(released);
            let _release = Release {
                stop: &stop,
                _idle: release,
            };
            given_back.wait();
            // All were held at once, so each was built; the workers' lists serve them since.
            assert_stats!(pool.stats(), new: self.elements() as u64, closed: 0; "{self:?}");
            then()
        })
    }
}

#[test]
fn trim_from_a_timer_reaches_threads_that_stay_alive_and_idle() {
    let burst = Burst::with_workers(2);
    let pool = CachePool::builder(buffer).build();
    let stats = burst.run(&pool, || {
        pool.trim();
        for _ in 0..2 {
            thread::sleep(PERIOD);
            pool.trim();
        }
        pool.stats()
    });
    // After two whole periods only what the workers use is left: about one element each,
    // plus what a stats() reading overlapping their work may be off by.
    let bound = 2 * burst.workers + 4;
    assert!(
        stats.idle <= bound,
        "{burst:?}: idle {} > {bound} after 3 trims: {stats}",
        stats.idle
    );
    // The workers hold at most one element each.
    assert!(
        alive(&stats) <= (burst.workers + bound) as u64,
        "{burst:?}: {} alive > {} after 3 trims: {stats}",
        alive(&stats),
        burst.workers + bound
    );
    assert_eq!(
        stats.trimmed, stats.closed,
        "only trim() closes here: {stats}"
    );
}

/// The workers keep working while `clear()` runs and after it (each may then build one new
/// element and cache it): the bound counts one idle element per worker.
#[test]
fn clear_right_after_a_burst_reaches_every_thread() {
    let burst = Burst::with_workers(2);
    let pool = CachePool::builder(buffer).build();
    let stats = burst.run(&pool, || {
        pool.clear();
        pool.stats()
    });
    let bound = burst.workers + 2;
    assert!(
        stats.idle <= bound,
        "{burst:?}: idle {} > {bound} right after clear(): {stats}",
        stats.idle
    );
    assert!(
        alive(&stats) <= (burst.workers + bound) as u64,
        "{burst:?}: {} alive > {} right after clear(): {stats}",
        alive(&stats),
        burst.workers + bound
    );
}

/// The idle timeout of the burst tests: 200 ms, as the promise is worded (an element idle
/// longer than that closed within twice that); 2 s under Miri, whose interpreted burst alone
/// may take longer than 200 ms of its clock.
const BURST_TIMEOUT: Duration = Duration::from_millis(if cfg!(miri) { 2000 } else { 200 });

/// How long after the burst the test waits for its elements to be closed: the promise's
/// twice the timeout, plus 300 ms (3 s under Miri) for the timeout thread's work and the
/// polls.
const BURST_WINDOW: Duration = Duration::from_millis(if cfg!(miri) { 7000 } else { 700 });

/// A burst on a pool with an idle timeout ([`BURST_TIMEOUT`]) and no call of `trim()` or
/// `clear()`: polls `stats()` until at most `bound` elements are alive, for up to
/// [`BURST_WINDOW`] after the burst ended; returns that reading and when it was taken, and a
/// reading once the workers have stopped and the timeout thread is between two elements
/// (every element it counted as trimmed, it counted as closed too).
fn burst_under_idle_timeout(workers: usize, bound: u64) -> (Burst, Stats, Duration, Stats) {
    let burst = Burst::with_workers(workers);
    let pool = CachePool::builder(buffer)
        .idle_timeout(BURST_TIMEOUT)
        .build();
    let (stats, after) = burst.run(&pool, || {
        let began = Instant::now();
        let mut stats = pool.stats();
        while alive(&stats) > bound && began.elapsed() < BURST_WINDOW {
            thread::sleep(Duration::from_millis(10));
            stats = pool.stats();
        }
        (stats, began.elapsed())
    });
    // The timeout thread counts an element trimmed before it counts it closed, and a reading
    // adds `closed` up before `trimmed`: while it works, a reading may see fewer closed.
    let mut settled = pool.stats();
    eventually(SETTLE, || {
        settled = pool.stats();
        settled.trimmed == settled.closed
    });
    (burst, stats, after, settled)
}

#[test]
fn idle_timeout_closes_a_burst_with_no_call_at_all() {
    let _only_one = timeout_pools();
    // With two workers: their elements stay (one each, held or idle), plus what a reading
    // overlapping their work may be off by. Without: at most a few.
    for (workers, bound) in [(2, 8), (0, 4)] {
        let (burst, stats, after, settled) = burst_under_idle_timeout(workers, bound);
        assert!(
            alive(&stats) <= bound,
            "{burst:?}: {} of {} alive after {after:?} (at most {bound} within \
             {BURST_WINDOW:?}): {stats}",
            alive(&stats),
            burst.elements()
        );
        // Nothing but the timeout closes elements here, and it counts them as trimmed.
        assert_eq!(settled.trimmed, settled.closed, "{burst:?}: {settled}");
        assert!(
            settled.trimmed >= burst.elements() as u64 - bound,
            "{burst:?}: trimmed {} < {} - {bound}: {settled}",
            settled.trimmed,
            burst.elements()
        );
    }
}

#[test]
fn elements_in_steady_use_are_never_closed_by_the_idle_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(50);
    let _only_one = timeout_pools();
    let pool = CachePool::builder(|| vec![0u8; 64])
        .idle_timeout(TIMEOUT)
        .build();
    // A pool beside it whose element sits idle: its closing shows the timeout ran meanwhile.
    let control = CachePool::builder(|| vec![0u8; 64])
        .idle_timeout(TIMEOUT)
        .build();
    control.put(control.get());
    let began = Instant::now();
    let (mut last_use, mut longest_gap) = (began, Duration::ZERO);
    while began.elapsed() < Duration::from_millis(400) {
        let mut buf = pool.get();
        buf[0] = buf[0].wrapping_add(1);
        pool.put(buf);
        longest_gap = longest_gap.max(last_use.elapsed());
        last_use = Instant::now();
        thread::sleep(Duration::from_millis(5));
    }
    let stats = pool.stats();
    assert_stats!(
        stats, new: 1, trimmed: 0, closed: 0, idle: 1;
        "used every 5 ms (longest gap {longest_gap:?}) under a {TIMEOUT:?} timeout"
    );
    // Polled: the timeout thread may be closing it as this reads (and under Miri's weak
    // memory a reading may see its counters one by one).
    let mut control_stats = control.stats();
    eventually(SETTLE, || {
        control_stats = control.stats();
        control_stats.trimmed == 1 && control_stats.idle == 0
    });
    assert_stats!(control_stats, new: 1, trimmed: 1, idle: 0; "the idle pool beside it");
}

/// A pipeline in steady use, with `trim()` called after every few dozen elements have gone
/// round: each element is checked out in every period (the producer takes whole batches and
/// uses every element of one before it takes the next), so no `trim()` closes any, and the
/// pool builds only what is in flight plus the lists' few elements.
#[test]
fn trim_closes_nothing_in_a_pipeline_in_steady_use() {
    let (trims, per_period) = if cfg!(miri) { (4, 12) } else { (40, 48) };
    let pool = CachePool::builder(|| vec![0u8; 64]).build();
    let processed = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let (to_consumer, from_producer) = crossbeam_channel::bounded::<Vec<u8>>(2);
        let (pool, processed, stop) = (&pool, &processed, &stop);
        s.spawn(move || {
            while !stop.load(Relaxed) {
                if to_consumer.send(pool.get()).is_err() {
                    break;
                }
            }
        });
        s.spawn(move || {
            for buf in from_producer {
                pool.put(buf);
                processed.fetch_add(1, Relaxed);
            }
        });
        for _ in 0..trims {
            let period_start = processed.load(Relaxed);
            while processed.load(Relaxed) < period_start + per_period {
                thread::yield_now();
            }
            pool.trim();
        }
        stop.store(true, Relaxed);
    });
    let stats = pool.stats();
    assert_stats!(stats, trimmed: 0, closed: 0; "{trims} trims, one per {per_period} elements");
    // In flight: the channel's 2, one on each side; the consumer keeps at most 4, the producer
    // 3 of a batch.
    assert!(stats.new <= 4 + 4 + 3, "{stats}");
}

/// The idle-timeout thread has no caller to propagate a close callback's panic to: it
/// contains every one, counts each, and goes on closing the other elements and serving the
/// other pools.
#[test]
fn the_idle_timeout_contains_and_counts_every_close_panic() {
    const IDLE: usize = 3;
    let _only_one = timeout_pools();
    let _quiet = silence_injected_panics();
    let pool = CachePool::builder(|| 0u32)
        .close_callback(|_| inject(Site::Close))
        .pool_size(IDLE)
        .thread_capacity(IDLE)
        .idle_timeout(Duration::from_millis(20))
        .build();
    let held: Vec<u32> = (0..IDLE).map(|_| pool.get()).collect();
    held.into_iter().for_each(|e| pool.put(e));
    // A reading while the thread closes them (or, under Miri's weak memory, soon after) may
    // see one counter ahead of another: poll until all agree.
    let mut stats = pool.stats();
    eventually(SETTLE, || {
        stats = pool.stats();
        [stats.closed, stats.trimmed, stats.contained_panics] == [IDLE as u64; 3]
    });
    assert_stats!(
        stats, closed: IDLE as u64, trimmed: IDLE as u64, idle: 0,
        contained_panics: IDLE as u64
    );
}

/// The stats of a quiet pool, checked against the ledger (`Fixture::quiet_stats`, with what
/// the test ran in the message): the same elements created, closed, idle, held and detached,
/// each closed one seen by the close callback once, and no violation.
#[track_caller]
fn assert_balances(fixture: &Fixture, what: &str) -> Stats {
    let stats = fixture.pool.stats();
    if let Err(e) = fixture.ledger.check_quiet(&stats, fixture.pool.pool_size()) {
        panic!("{what}: {e}");
    }
    fixture.ledger.assert_no_violations();
    stats
}

/// Takes one to four elements, scribbles on them (the reset hook must clear them before they
/// are handed out again), and gives them back with `put`, some with `close`, and one more
/// through a guard.
fn churn_once(handle: &Handle, rng: &mut Rng) {
    let held: Vec<Tracked> = (0..1 + rng.below(4)).map(|_| handle.take()).collect();
    for mut element in held {
        element.scratch = 1;
        if rng.chance(50) {
            handle.close(element);
        } else {
            handle.put(element);
        }
    }
    let mut guard = handle.checkout();
    guard.scratch = 1;
    handle.give_guard(guard);
}

#[test]
fn reclaiming_races_the_owners_with_nothing_lost() {
    let threads = if cfg!(miri) { 3 } else { 8 };
    let seed = seed();
    let fixture = Fixture::new(64, 8);
    let stop = AtomicBool::new(false);
    let (reclaims, rounds) = thread::scope(|s| {
        let owners: Vec<_> = (0..threads)
            .map(|t| {
                let (handle, stop) = (fixture.clone(), &stop);
                s.spawn(move || {
                    let mut rng = Rng::new(seed ^ t as u64);
                    let mut rounds = 0u64;
                    while !stop.load(Relaxed) {
                        churn_once(&handle, &mut rng);
                        rounds += 1;
                    }
                    rounds
                })
            })
            .collect();
        let reclaimer = s.spawn(|| {
            let began = Instant::now();
            let mut calls = 0usize;
            while if cfg!(miri) {
                calls < 40
            } else {
                began.elapsed() < Duration::from_secs(1)
            } {
                // Three trims to a clear, so that trims close elements too (a clear closes
                // every idle element, and a trim only those idle for a whole period).
                if calls % 4 == 3 {
                    fixture.pool.clear();
                } else {
                    fixture.pool.trim();
                }
                calls += 1;
                thread::yield_now();
            }
            calls
        });
        let reclaims = reclaimer.join().unwrap();
        stop.store(true, Relaxed);
        // Joined one by one: each join also waits for the thread's exit, where the pool moves
        // its list to the global shard.
        let rounds: u64 = owners.into_iter().map(|t| t.join().unwrap()).sum();
        (reclaims, rounds)
    });
    let what =
        format!("{threads} owners, {rounds} rounds, {reclaims} trim()/clear() calls, seed {seed}");
    let stats = assert_balances(&fixture, &what);
    assert!(
        stats.trimmed > 0 && stats.evicted > stats.trimmed,
        "{what}: trim() or clear() closed nothing: {stats}"
    );
    println!("{what}: {stats}");
    fixture.finish();
}

#[test]
fn trim_against_300_short_lived_threads_exiting() {
    let (threads, at_once) = if cfg!(miri) { (12, 3) } else { (300, 10) };
    let seed = seed();
    let fixture = {
        let ledger = Ledger::new();
        Fixture {
            pool: builder(&ledger).build(),
            ledger,
        }
    };
    let stop = AtomicBool::new(false);
    let trims = thread::scope(|s| {
        let trimmer = s.spawn(|| {
            let mut trims = 0u64;
            while !stop.load(Relaxed) {
                fixture.pool.trim();
                trims += 1;
                thread::yield_now();
            }
            trims
        });
        for wave in 0..threads / at_once {
            let wave: Vec<_> = (0..at_once)
                .map(|t| {
                    let handle = fixture.clone();
                    thread::spawn(move || {
                        let mut rng = Rng::new(seed ^ (wave * at_once + t) as u64);
                        for _ in 0..1 + rng.below(3) {
                            churn_once(&handle, &mut rng);
                        }
                    })
                })
                .collect();
            // Each join waits for the thread's exit, where its list moves to the global shard.
            wave.into_iter().for_each(|t| t.join().unwrap());
        }
        stop.store(true, Relaxed);
        trimmer.join().unwrap()
    });
    let what = format!("{threads} threads exiting, {trims} trim() calls, seed {seed}");
    let before = assert_balances(&fixture, &what);
    // Every thread has exited: what they left is in the global shard, and two more periods
    // close all of it.
    fixture.pool.trim();
    fixture.pool.trim();
    let stats = assert_balances(&fixture, &what);
    assert_stats!(stats, idle: 0, trimmed: before.trimmed + before.idle as u64; "{what}");
    fixture.finish();
}

#[test]
fn a_thread_takes_idle_elements_from_an_idle_threads_list_before_building() {
    const HELD: usize = 100;
    let pool = CachePool::builder(|| 0u64)
        .pool_size(256)
        .thread_capacity(128)
        .build();
    let (cached, release) = (Barrier::new(2), Barrier::new(2));
    let (before, after) = thread::scope(|s| {
        s.spawn(|| {
            let held: Vec<u64> = (0..HELD).map(|_| pool.get()).collect();
            held.into_iter().for_each(|e| pool.put(e)); // all 100 in this thread's list
            cached.wait();
            release.wait(); // alive, never using the pool again
        });
        cached.wait();
        let before = pool.stats();
        let held: Vec<u64> = (0..HELD).map(|_| pool.get()).collect();
        let after = pool.stats();
        // Released before asserting, so that a failure fails rather than hangs the test.
        release.wait();
        held.into_iter().for_each(|e| pool.put(e));
        (before, after)
    });
    assert_stats!(before, new: HELD as u64, idle: HELD; "thread A cached its elements");
    let built = after.new - before.new;
    assert!(
        built <= 8,
        "built {built} of {HELD} while {HELD} sat idle in thread A's list: {after}"
    );
    assert!(
        after.hits_stolen >= 1,
        "no checkout was served from thread A's list: {after}"
    );
    assert_eq!(after.get - before.get, HELD as u64);
}

const SHARERS: usize = 4;

/// Four threads each taking one element and giving it back, 300 times, overlapping, on one
/// pool; the elements it built. Each thread stays alive until all four are done, so that a
/// thread that finished keeps its list, and the budget its list holds, while the others work.
fn built_by_four_threads(pool: CachePool<u64>) -> u64 {
    let rounds = scale(300, 30);
    let (start, end) = (Barrier::new(SHARERS), Barrier::new(SHARERS));
    thread::scope(|s| {
        for _ in 0..SHARERS {
            s.spawn(|| {
                start.wait();
                for _ in 0..rounds {
                    pool.put(pool.get());
                }
                end.wait();
            });
        }
    });
    assert_eq!(pool.stats().get, (SHARERS * rounds) as u64);
    pool.stats().new
}

/// A pool without lists builds only when no element is idle anywhere; with lists, a thread
/// whose list and the global shard are empty takes another thread's idle element, and a `put`
/// that finds the budget spent takes the budget another thread reserved and does not use, so
/// it builds no more.
///
/// The two pools run in turns, three times each (once under Miri), so that a burst of load on
/// the machine falls on both, and their totals are compared. How many elements a run builds
/// depends on how the four threads happen to overlap: a few either way per run (one per
/// thread) is scheduling, not the pool; a thread starved of budget builds one per round.
#[test]
fn a_small_pool_shared_by_four_threads_builds_no_more_than_without_lists() {
    let runs = if cfg!(miri) { 1 } else { 3 };
    let (mut with_lists, mut without) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        with_lists.push(built_by_four_threads(
            CachePool::builder(|| 0u64).pool_size(2).build(),
        ));
        without.push(built_by_four_threads(
            CachePool::builder(|| 0u64)
                .pool_size(2)
                .thread_capacity(0)
                .build(),
        ));
    }
    println!("built, pool_size(2): default {with_lists:?}, thread_capacity(0) {without:?}");
    let (a, b) = (with_lists.iter().sum::<u64>(), without.iter().sum::<u64>());
    let noise = (runs * SHARERS) as u64;
    assert!(
        a <= b + noise,
        "default thread_capacity built {a} ({with_lists:?}), thread_capacity(0) {b} \
         ({without:?}), + {noise} for scheduling"
    );
}

/// A `put` that finds the budget spent (and takes, or asks for, the budget other threads
/// reserved) must not make `trim()` forget which elements were used since the previous one.
///
/// pool_size 5, thread_capacity 5, this thread's list; the ids are the ledger's, in the order
/// the elements were built:
///
/// | step | this thread's list (bottom first) | held | closed by trim |
/// |---|---|---|---|
/// | 5 gets, 5 puts | 0 1 2 3 4 (all 5 units of budget leased here) | - | |
/// | `trim()` #1 | 0 1 2 3 4: all given back in this period | - | none |
/// | 4 gets | 0 | 4 3 2 1 | |
/// | put 4 | 0 4: 4 is used in this period | 3 2 1 | |
/// | thread B puts 3: the budget is spent, 2 idle of 5 | 0 4 | 2 1 | |
/// | put 2 (this thread's first call after B's) | 0 4 2 | 1 | |
/// | `trim()` #2 | 4 2 | 1 | 0: idle since before #1 |
///
/// So trim #2 closes exactly one element, the bottom one; element 4, checked out and given
/// back between the two trims, stays idle, whatever B's put did to the budget (B's 3, if it
/// was kept, was given back in this period too).
#[test]
fn trim_spares_an_element_used_since_the_previous_trim_after_a_budget_request() {
    let fixture = Fixture::new(5, 5);
    let mut held: Vec<Tracked> = (0..5).map(|_| fixture.take()).collect();
    let ids: Vec<usize> = held.iter().map(Tracked::id).collect();
    held.drain(..).for_each(|e| fixture.put(e));
    assert_stats!(fixture.pool.stats(), new: 5, idle: 5, closed: 0);

    fixture.pool.trim();
    assert_stats!(fixture.pool.stats(), trimmed: 0, idle: 5; "trim #1: all used in this period");

    let mut out: Vec<Tracked> = (0..4).map(|_| fixture.take()).collect();
    assert_eq!(
        out.iter().map(Tracked::id).collect::<Vec<_>>(),
        [ids[4], ids[3], ids[2], ids[1]],
        "LIFO"
    );
    let (used, unused) = (ids[4], ids[0]);
    fixture.put(out.remove(0)); // 4: used since trim #1, idle again
    let for_b = out.remove(0); // 3
    assert_stats!(fixture.pool.stats(), idle: 2, checked_out: 3);

    let b_done = Barrier::new(2);
    let stats = thread::scope(|s| {
        let (handle, b_done) = (fixture.clone(), &b_done);
        let b = s.spawn(move || {
            // Every unit is leased to the main thread, which uses 2 of its 5.
            handle.put(for_b);
            b_done.wait(); // wait: B stays alive with its list through trim #2
            b_done.wait();
        });
        b_done.wait();
        fixture.put(out.remove(0)); // 2: this thread's first call after B's put
        fixture.pool.trim();
        let stats = fixture.pool.stats();
        b_done.wait();
        // Its exit too, where its list moves to the global shard: `finish` must drop the
        // last handle, and B's drops with its thread.
        b.join().unwrap();
        stats
    });
    let what = format!("{stats}; element {used} used since trim #1, {unused} not");
    assert_eq!(
        fixture.ledger.state_of(used),
        State::InPool,
        "the element used since trim #1 was closed: {what}"
    );
    assert_eq!(
        fixture.ledger.state_of(unused),
        State::Closed,
        "the element unused since before trim #1 survived: {what}"
    );
    assert_stats!(stats, trimmed: 1; "{what}");
    fixture.put(out.remove(0));
    assert_balances(&fixture, "at the end");
    fixture.finish();
}

/// The threads of this process named as the idle-timeout thread is.
#[cfg(target_os = "linux")]
fn idle_timeout_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end() == "cachepool-idle")
        })
        .count()
}

/// Pools with a timeout of an hour: a thread that waited out a period would still be there.
#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore = "reads /proc/self/task, which Miri's isolation forbids")]
fn the_idle_timeout_thread_ends_when_the_last_pool_that_asked_is_dropped() {
    const HOUR: Duration = Duration::from_secs(3600);
    let _only_one = timeout_pools();
    // The thread of an earlier test's pool may still be ending.
    assert!(
        eventually(SETTLE, || idle_timeout_threads() == 0),
        "an idle-timeout thread with no pool asking for one"
    );

    let plain = CachePool::builder(|| 0u64).build();
    plain.put(plain.get());
    assert!(
        !eventually(Duration::from_millis(100), || idle_timeout_threads() > 0),
        "a pool without idle_timeout started a thread"
    );

    let closed = Arc::new(AtomicUsize::new(0));
    let timed = || {
        let closed = Arc::clone(&closed);
        let pool = CachePool::builder(|| 0u64)
            .idle_timeout(HOUR)
            .close_callback(move |_| {
                closed.fetch_add(1, Relaxed);
            })
            .build();
        pool.put(pool.get());
        pool
    };
    let first = timed();
    assert!(
        eventually(SETTLE, || idle_timeout_threads() == 1),
        "no idle-timeout thread for a pool with a timeout"
    );
    let second = timed();
    assert!(
        !eventually(Duration::from_millis(100), || idle_timeout_threads() != 1),
        "not one thread for both pools"
    );

    drop(first);
    // The thread holds no pool alive: the last handle's drop closed the idle element.
    assert_eq!(closed.load(Relaxed), 1, "the dropped pool's element");
    assert!(
        !eventually(Duration::from_millis(100), || idle_timeout_threads() != 1),
        "the thread ended while a pool with a timeout is alive"
    );

    drop(second);
    assert_eq!(closed.load(Relaxed), 2, "the second pool's element");
    assert!(
        eventually(SETTLE, || idle_timeout_threads() == 0),
        "the idle-timeout thread outlived the last pool that asked for it"
    );
    drop(plain);
}
