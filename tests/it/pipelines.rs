//! Elements that cross threads, with the builder's default settings: producers check elements
//! out and send them through bounded channels; the far end gives them back. The pool must
//! build about as many elements as are in flight (at most [`SLACK`] more), keep its ledger,
//! and leave no more idle than that once the pipeline drains.
//!
//! The bound is structural, not a matter of timing: a thread that gives back more than it
//! takes keeps at most four elements before they move to the global shard, and a taker keeps
//! less than one such batch, so whenever a producer has to build, at most four elements per
//! thread sit idle out of its reach.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::thread;

use cachepool::{CachePool, Stats};
use crossbeam_channel::{Receiver, Sender, bounded};

use crate::common::{Handle, Ledger, Tracked, UserOps, builder, scale};

/// Elements a pipeline may build beyond the most it had in flight at once.
const SLACK: usize = 16;

/// How the elements travel.
#[derive(Clone, Copy, Debug)]
struct Shape {
    producers: usize,
    /// Threads between producers and consumers that pass elements on (0: none).
    middle: usize,
    consumers: usize,
    /// Slots of each bounded channel.
    depth: usize,
}

/// How the producers check elements out.
#[derive(Clone, Copy, Debug)]
enum Taking {
    /// `get`, given back with `put`.
    Raw,
    /// `checkout_owned`, given back by dropping the guard.
    OwnedGuard,
}

/// What a run measured.
#[derive(Debug)]
struct Run {
    stats: Stats,
    /// The most elements checked out at once.
    in_flight: usize,
}

/// What travels: an element and how it is to be given back.
enum Parcel {
    Raw(Tracked),
    Owned(cachepool::OwnedCheckout<Tracked>),
}

/// Counts elements checked out and not yet given back, and remembers the most.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl InFlight {
    fn out(&self) {
        let now = self.now.fetch_add(1, Relaxed) + 1;
        self.most.fetch_max(now, Relaxed);
    }

    fn back(&self) {
        self.now.fetch_sub(1, Relaxed);
    }
}

/// Runs `elements` through `shape` on `pool`, then checks the ledger on the quiet pool.
fn run(pool: CachePool<Tracked>, ledger: &Arc<Ledger>, shape: Shape, taking: Taking) -> Run {
    let handle = Handle {
        pool,
        ledger: Arc::clone(ledger),
    };
    run_on(&handle, shape, taking)
}

/// [`run`] on a pool that may have run pipelines before (whose `get` count it adds to).
fn run_on(handle: &Handle, shape: Shape, taking: Taking) -> Run {
    let elements = scale(4_000, 40);
    let (ledger, gets_before) = (&handle.ledger, handle.pool.stats().get);
    let in_flight = InFlight::default();
    let (to_next, from_producers) = bounded::<Parcel>(shape.depth);
    let (to_consumers, from_middle) = bounded::<Parcel>(shape.depth);
    thread::scope(|s| {
        let mut threads = Vec::new();
        for p in 0..shape.producers {
            let (to_next, in_flight) = (to_next.clone(), &in_flight);
            let count = elements / shape.producers + usize::from(p < elements % shape.producers);
            threads.push(s.spawn(move || produce(handle, taking, count, &to_next, in_flight)));
        }
        drop(to_next);
        let consumer_input = if shape.middle > 0 {
            for _ in 0..shape.middle {
                let (from, to) = (from_producers.clone(), to_consumers.clone());
                threads
                    .push(s.spawn(move || from.iter().for_each(|parcel| to.send(parcel).unwrap())));
            }
            from_middle
        } else {
            from_producers
        };
        drop(to_consumers);
        for _ in 0..shape.consumers {
            let (from, in_flight) = (consumer_input.clone(), &in_flight);
            threads.push(s.spawn(move || consume(handle, &from, in_flight)));
        }
        // Joined one by one: the end of the scope waits for the closures only, not for the
        // threads' exit, where the pool moves their lists to the global shard.
        threads.into_iter().for_each(|t| t.join().unwrap());
    });
    let stats = handle.pool.stats();
    if let Err(e) = ledger.check_quiet(&stats, handle.pool.pool_size()) {
        panic!("{shape:?}: {e}");
    }
    assert_eq!(stats.get - gets_before, elements as u64);
    Run {
        stats,
        in_flight: in_flight.most.load(Relaxed),
    }
}

// An element counts as in flight from before the call that checks it out until after the
// call that gives it back returns, so the count is never below the elements out of the pool.

fn produce(handle: &Handle, taking: Taking, count: usize, to: &Sender<Parcel>, n: &InFlight) {
    for _ in 0..count {
        n.out();
        let parcel = match taking {
            Taking::Raw => Parcel::Raw(handle.take()),
            Taking::OwnedGuard => Parcel::Owned(handle.checkout_owned()),
        };
        to.send(parcel).unwrap();
    }
}

fn consume(handle: &Handle, from: &Receiver<Parcel>, n: &InFlight) {
    for parcel in from {
        match parcel {
            Parcel::Raw(element) => handle.put(element),
            Parcel::Owned(guard) => {
                handle.ledger.give(&guard);
                drop(guard);
            }
        }
        n.back();
    }
}

/// Runs `shape` on a default pool and on a small one, and checks the bound on both.
///
/// The small pool is 64 where the channels are 8 deep, 256 where they are 64 deep: an element
/// given back while `pool_size` elements are idle is closed, so a pipeline that can have about
/// `pool_size` elements in flight builds again, each time it drains, what it had to close.
fn check(shape: Shape, taking: Taking) {
    let small = if shape.depth <= 8 { 64 } else { 256 };
    for pool_size in [None, Some(small)] {
        let ledger = Ledger::new();
        let b = builder(&ledger);
        let pool = match pool_size {
            Some(size) => b.pool_size(size).build(),
            None => b.build(),
        };
        let run = run(pool, &ledger, shape, taking);
        let bound = run.in_flight + SLACK;
        let what = format!("{shape:?} {taking:?} pool_size {pool_size:?}: {run:?}");
        assert!(run.stats.new as usize <= bound, "built too many: {what}");
        assert!(run.stats.idle <= bound, "kept too many: {what}");
        ledger.assert_no_violations();
    }
}

const fn shape(producers: usize, middle: usize, consumers: usize, depth: usize) -> Shape {
    Shape {
        producers,
        middle,
        consumers,
        depth,
    }
}

#[test]
fn one_to_one_builds_what_is_in_flight() {
    check(shape(1, 0, 1, 8), Taking::Raw);
    check(shape(1, 0, 1, 64), Taking::OwnedGuard);
}

#[test]
fn four_to_one_builds_what_is_in_flight() {
    check(shape(4, 0, 1, 8), Taking::OwnedGuard);
    check(shape(4, 0, 1, 64), Taking::Raw);
}

#[test]
fn one_to_four_builds_what_is_in_flight() {
    check(shape(1, 0, 4, 8), Taking::Raw);
    check(shape(1, 0, 4, 64), Taking::OwnedGuard);
}

#[test]
fn one_to_four_to_one_builds_what_is_in_flight() {
    check(shape(1, 4, 1, 8), Taking::OwnedGuard);
    check(shape(1, 4, 1, 64), Taking::Raw);
}

/// Each run starts new threads, which take over the pool's per-thread slots of the threads
/// that exited: a consumer in the slot of an exited producer must not be taken for a thread
/// that takes, and hoard.
#[test]
fn runs_on_fresh_threads_build_no_more_than_the_first() {
    let ledger = Ledger::new();
    let handle = Handle {
        pool: builder(&ledger).build(),
        ledger: Arc::clone(&ledger),
    };
    let mut in_flight = 0;
    for run in 0..if cfg!(miri) { 2 } else { 10 } {
        let taking = [Taking::Raw, Taking::OwnedGuard][run % 2];
        in_flight = in_flight.max(run_on(&handle, shape(4, 0, 1, 8), taking).in_flight);
        let stats = handle.pool.stats();
        assert!(
            stats.new as usize <= in_flight + SLACK,
            "run {run}: {stats} for {in_flight} in flight"
        );
    }
    drop(handle);
    ledger.assert_all_accounted_for();
}

/// Runs `shape` on `pool` and checks the bound for many threads: at most what was in flight,
/// plus 4 per consumer (a giver's batch) and 3 per producer besides the first (the rest of a
/// batch each took); idle never above `pool_size`.
fn check_many(shape: Shape, pool_size: Option<usize>) {
    let ledger = Ledger::new();
    let b = builder(&ledger);
    let pool = match pool_size {
        Some(size) => b.pool_size(size).build(),
        None => b.build(),
    };
    let size = pool.pool_size();
    let run = run(pool, &ledger, shape, Taking::Raw);
    let bound = run.in_flight + 4 * shape.consumers + 3 * (shape.producers - 1);
    let what = format!("{shape:?} pool_size {size}: {run:?}, bound {bound}");
    assert!(run.stats.new as usize <= bound, "built too many: {what}");
    assert!(run.stats.idle <= size, "kept too many: {what}");
    ledger.assert_no_violations();
}

/// Twelve consumers (or producers) each reserving budget in steps of 16 reserve more than a
/// pool of 128 has: the threads that find it spent take the units the others do not use,
/// rather than closing their elements.
#[test]
fn twelve_threads_on_one_side_build_what_is_in_flight() {
    let many = if cfg!(miri) { 3 } else { 12 };
    check_many(shape(1, 0, many, 2), Some(128));
    check_many(shape(many, 0, 1, 2), Some(128));
}

/// As many threads as a thread-per-connection server runs, on the default settings.
#[test]
fn a_hundred_and_twenty_eight_threads_on_one_side_build_what_is_in_flight() {
    let many = if cfg!(miri) { 4 } else { 128 };
    check_many(shape(1, 0, many, 2), None);
    check_many(shape(many, 0, 1, 2), None);
}
