//! The multi-threaded workload of the `concurrency` and `stress` suites.
//!
//! Worker threads run random operations on one small pool: raw gets, puts and closes, puts the
//! reset hook refuses, guards dropped, discarded, detached or dropped while the user's code
//! panics, wrapper runs of every outcome, elements and owned guards handed to other threads
//! through an exchange queue (worker 0 spends half its operations collecting from it, so it
//! gives back more than it takes), short-lived helper threads that cache elements and exit, and
//! concurrent `stats()` reads. Every element is [`Tracked`], so the ledger catches an element
//! held by two users, closed twice, or dropped without being closed.
//!
//! Checks while the workers run:
//! - *gated samples*: every operation runs under a shared read lock, and the main thread takes
//!   the write lock now and then, so it reads the pool at an instant when no operation is in
//!   flight (while the workers are in the middle of their work, and without a rendezvous):
//!   `stats()` is then exact, and must match the ledger, with `idle <= pool_size`;
//! - *quiet points*: every `ops_per_round` operations all workers meet at a barrier, publish
//!   how many elements they hold, and the main thread checks the ledger exactly, held elements
//!   included.
//!
//! A `stats()` read without the gate is summed shard by shard while other threads work, so it
//! can be off by the operations in flight; such reads are made (they must not crash or tear)
//! and their largest `idle` reported, but not asserted.
//!
//! Threads come in generations: each exits (holding cached elements, which its exit hook moves
//! to the global shard) before the next one starts. With `teardown_race`, a last generation
//! runs after the main thread dropped its handle; the last handle then drops on a worker while
//! the other workers are alive or exiting, and owned guards made by earlier threads outlive
//! the handles they came from.

use std::cell::RefCell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Barrier, RwLock};
use std::time::{Duration, Instant};

use cachepool::{CachePoolGeneratorError, CacheWrapper, Checkout, OwnedCheckout, make_wrapper};
use crossbeam_queue::SegQueue;

use super::{
    Faults, Handle, InjectedPanic, Ledger, Rng, Site, Tracked, UserOps, builder, inject, scale,
    seed, validated_builder,
};

/// What a helper thread leaves in a thread-local, dropped as the thread exits: an owned guard,
/// whose give-back may catch the thread's list up and close stale elements (the close callback
/// may panic there), and a pool handle, in the teardown race possibly the last one (its drop
/// closes every idle element). Neither may let a close callback's panic out of the
/// thread-local destructor, which would abort the test binary.
struct LeftBehind {
    guard: Option<OwnedCheckout<Tracked>>,
    handle: Option<Handle>,
}

impl Drop for LeftBehind {
    fn drop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        if let Some(guard) = self.guard.take() {
            handle.ledger.give(&guard);
            // A reset hook's panic does leave a guard's drop, as the user's own code would;
            // in a thread-local destructor the user catches it. A close callback's must not.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(guard))) {
                let site = payload.downcast_ref::<InjectedPanic>().map(|p| p.0);
                if site != Some(Site::Reset) {
                    handle.ledger.violation(format!(
                        "a guard dropped at thread exit let a panic out ({site:?})"
                    ));
                }
            }
        }
        drop(handle);
    }
}

thread_local! {
    /// First touched before the thread uses the pool: destroyed after the pool's exit hook
    /// ran, so the guard's give-back passes through the global shard.
    static DROPPED_AFTER_EXIT_HOOK: RefCell<Option<LeftBehind>> = const { RefCell::new(None) };
    /// First touched after the thread used the pool: destroyed before the exit hook, so the
    /// guard's give-back uses the thread's list (and catches it up first).
    static DROPPED_BEFORE_EXIT_HOOK: RefCell<Option<LeftBehind>> = const { RefCell::new(None) };
}

/// One run of the workload.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: &'static str,
    /// Workers per generation.
    pub threads: usize,
    /// Generations of workers, one after the other; each exits before the next starts.
    pub generations: usize,
    /// Quiet points per generation.
    pub rounds: usize,
    /// Operations per worker between quiet points.
    pub ops_per_round: usize,
    pub pool_size: usize,
    pub thread_capacity: usize,
    /// The pool has a validator (every checkout of an idle element runs it).
    pub validated: bool,
    /// Injected fault rate per mille at every site; 0 for none (and no panicking user code).
    pub fault_per_mille: u32,
    /// Workers spawn short-lived threads that cache elements and exit.
    pub helpers: bool,
    /// Workers of the last generation, run after the main thread dropped its handle: the last
    /// handle drops on one of them. 0: the main thread drops the last handle at the end.
    pub teardown_threads: usize,
    pub seed: u64,
}

impl Default for Config {
    /// One generation of eight workers (two under Miri) for one round on a pool of 8 with
    /// lists of 4, with nothing switched on: no validator, faults, helper threads or teardown
    /// race; seeded by [`seed`].
    fn default() -> Self {
        Config {
            name: "hammer",
            threads: if cfg!(miri) { 2 } else { 8 },
            generations: 1,
            rounds: 1,
            ops_per_round: scale(1_000, 10),
            pool_size: 8,
            thread_capacity: 4,
            validated: false,
            fault_per_mille: 0,
            helpers: false,
            teardown_threads: 0,
            seed: seed(),
        }
    }
}

/// What a run did, printed by the tests (and recorded in `docs/reliability.md`).
#[derive(Debug, Default)]
pub struct Report {
    pub ops: u64,
    pub threads: u64,
    pub helper_threads: u64,
    pub quiet_checks: u64,
    pub gated_samples: u64,
    pub max_idle_gated: usize,
    pub max_idle_ungated: usize,
    pub faults: String,
    pub faults_by_site: Vec<(Site, u64)>,
    pub faults_injected: u64,
    pub panics_caught: u64,
    pub generator_errors: u64,
    pub created: usize,
    pub closed: usize,
    pub detached: usize,
    pub reuses: u64,
    pub lost: usize,
    pub hits_global_before_teardown: u64,
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ops={} threads={} (+{} helpers) quiet_checks={} gated_samples={} \
             max_idle(gated)={} max_idle(ungated, informative)={} faults_injected={} [{}] \
             panics_caught={} generator_errors={} created={} closed={} detached={} reuses={} \
             hits_global={} lost={} elapsed={:.2?}",
            self.ops,
            self.threads,
            self.helper_threads,
            self.quiet_checks,
            self.gated_samples,
            self.max_idle_gated,
            self.max_idle_ungated,
            self.faults_injected,
            self.faults,
            self.panics_caught,
            self.generator_errors,
            self.created,
            self.closed,
            self.detached,
            self.reuses,
            self.hits_global_before_teardown,
            self.lost,
            self.elapsed
        )
    }
}

/// Why a wrapper's job failed; the decider keeps the element for `Keep` only.
#[derive(Debug)]
enum JobError {
    Pool,
    Keep,
    Drop,
}

impl From<CachePoolGeneratorError> for JobError {
    fn from(_: CachePoolGeneratorError) -> Self {
        JobError::Pool
    }
}

type Decider = Box<dyn Fn(&JobError) -> bool + Send + Sync>;

/// An element on its way from one thread to another.
enum Parcel {
    Raw(Tracked),
    Owned(OwnedCheckout<Tracked>),
}

/// What all threads of a run share.
struct Common {
    cfg: Config,
    ledger: Arc<Ledger>,
    exchange: SegQueue<Parcel>,
    /// Read-locked around every operation; write-locked by the main thread to sample.
    gate: RwLock<()>,
    stop: AtomicBool,
    arrived: AtomicUsize,
    /// Elements each worker holds, published at quiet points.
    held_by: Vec<AtomicUsize>,
    ops: AtomicU64,
    helper_threads: AtomicU64,
    panics_caught: AtomicU64,
    generator_errors: AtomicU64,
    max_idle_ungated: AtomicUsize,
}

impl Common {
    /// Runs `f`, catching an injected panic; any other panic is a failure of the pool.
    fn guarded(&self, what: &str, f: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            if payload.is::<InjectedPanic>() {
                self.panics_caught.fetch_add(1, Relaxed);
            } else {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                self.ledger
                    .violation(format!("{what}: unexpected panic: {message}"));
            }
        }
    }
}

struct Worker<'a> {
    index: usize,
    common: &'a Common,
    handle: Option<Handle>,
    wrapper: Option<CacheWrapper<Tracked, Decider>>,
    stash: Vec<Tracked>,
    rng: Rng,
}

const STASH: usize = 4;

impl<'a> Worker<'a> {
    fn new(index: usize, common: &'a Common, handle: Handle, seed: u64) -> Self {
        let ledger = Arc::clone(&common.ledger);
        let decider: Decider = Box::new(move |e: &JobError| {
            if ledger.faults.roll(Site::Decider) {
                inject(Site::Decider);
            }
            match e {
                JobError::Keep => true,
                JobError::Drop => false,
                JobError::Pool => {
                    ledger.violation("the decider was asked about a generator failure".into());
                    false
                }
            }
        });
        Worker {
            index,
            common,
            wrapper: Some(make_wrapper(&handle.pool, decider)),
            handle: Some(handle),
            stash: Vec::with_capacity(STASH),
            rng: Rng::new(seed),
        }
    }

    fn h(&self) -> &Handle {
        self.handle
            .as_ref()
            .expect("the worker's handle lives until it finishes")
    }

    fn generator_failed(&self, e: &CachePoolGeneratorError) {
        use std::error::Error;
        if !e.source().is_some_and(|s| s.is::<super::GenError>()) {
            self.common
                .ledger
                .violation(format!("generator error lost its source: {e:?}"));
        }
        self.common.generator_errors.fetch_add(1, Relaxed);
    }

    fn faults_on(&self) -> bool {
        self.common.cfg.fault_per_mille > 0
    }

    fn pop_stash(&mut self) -> Option<Tracked> {
        if self.stash.is_empty() {
            return None;
        }
        let i = self.rng.below(self.stash.len());
        Some(self.stash.swap_remove(i))
    }

    /// A wrapper run whose job scribbles on the element and ends with `outcome`.
    fn wrapped(&mut self, outcome: Result<(), JobError>, panic: bool) {
        let ledger = Arc::clone(&self.common.ledger);
        let wrapper = self.wrapper.as_ref().expect("lives with the handle");
        let result = wrapper.try_run(|e: &mut Tracked| {
            ledger.take(e);
            e.scratch = 1;
            ledger.give(e);
            if panic || ledger.faults.roll(Site::Job) {
                if panic {
                    ledger.faults.count(Site::Job);
                }
                inject(Site::Job);
            }
            outcome
        });
        if let Err(JobError::Pool) = result {
            self.common.generator_errors.fetch_add(1, Relaxed);
        }
    }

    /// One random operation, with these odds (percent).
    fn step(&mut self) {
        let ledger = Arc::clone(&self.common.ledger);
        // Worker 0 is a collector half the time: it gives back what others took, so its list
        // takes the path of a thread that gives back more than it takes.
        if self.index == 0 && self.rng.below(2) == 0 {
            if let Some(parcel) = self.common.exchange.pop() {
                let how = self.rng.below(4);
                self.receive(parcel, how);
            }
            return;
        }
        match self.rng.below(100) {
            // 14: take one into the stash (or give one back when it is full)
            0..=13 => {
                if self.stash.len() >= STASH {
                    if let Some(e) = self.pop_stash() {
                        self.h().put(e);
                    }
                    return;
                }
                match self.h().try_take() {
                    Ok(e) => self.stash.push(e),
                    Err(e) => self.generator_failed(&e),
                }
            }
            // 10: give one back, dirty (the reset hook must clean it)
            14..=23 => {
                if let Some(mut e) = self.pop_stash() {
                    e.scratch = 7;
                    self.h().put(e);
                }
            }
            // 4: close one
            24..=27 => {
                if let Some(e) = self.pop_stash() {
                    self.h().close(e);
                }
            }
            // 3: give one back that the reset hook refuses
            28..=30 => {
                if let Some(mut e) = self.pop_stash() {
                    e.refuse = true;
                    self.h().put(e);
                }
            }
            // 3: give one back that the validator (if any) will refuse at its next checkout
            31..=33 => {
                if let Some(mut e) = self.pop_stash() {
                    e.invalid = true;
                    self.h().put(e);
                }
            }
            // 8: a guard, dropped, discarded or detached
            34..=41 => {
                let how = self.rng.below(3);
                match self.h().pool.try_checkout() {
                    Ok(mut g) => {
                        ledger.take(&g);
                        g.scratch = 1;
                        match how {
                            0 => {
                                ledger.give(&g);
                                drop(g);
                            }
                            1 => {
                                ledger.give(&g);
                                Checkout::discard(g);
                            }
                            _ => {
                                let e = Checkout::detach(g);
                                ledger.detach(&e);
                            }
                        }
                    }
                    Err(e) => self.generator_failed(&e),
                }
            }
            // 3: the user's code panics while holding a guard: the guard must close the
            // element, never hand it to the next user
            42..=44 if self.faults_on() => {
                if let Ok(mut g) = self.h().pool.try_checkout() {
                    ledger.take(&g);
                    g.scratch = 1;
                    ledger.give(&g);
                    ledger.faults.count(Site::UserCode);
                    inject(Site::UserCode);
                }
            }
            // 10: wrapper runs: Ok, Err kept, Err dropped
            45..=48 => self.wrapped(Ok(()), false),
            49..=51 => self.wrapped(Err(JobError::Keep), false),
            52..=54 => self.wrapped(Err(JobError::Drop), false),
            // 2: the wrapper's job panics
            55..=56 if self.faults_on() => self.wrapped(Ok(()), true),
            // 5: an owned guard handed to another thread
            57..=61 => match self.h().pool.try_checkout_owned() {
                Ok(g) => {
                    ledger.take(&g);
                    self.common.exchange.push(Parcel::Owned(g));
                }
                Err(e) => self.generator_failed(&e),
            },
            // 4: a raw element handed to another thread
            62..=65 => {
                if let Some(e) = self.pop_stash() {
                    self.common.exchange.push(Parcel::Raw(e));
                }
            }
            // 8: give back what another thread took
            66..=73 => {
                if let Some(parcel) = self.common.exchange.pop() {
                    let how = self.rng.below(4);
                    self.receive(parcel, how);
                }
            }
            // 2: a short-lived thread
            74..=75 if self.common.cfg.helpers => self.helper_thread(),
            // 3: statistics read while others work (must not crash or tear)
            76..=78 => {
                let idle = self.h().pool.stats().idle;
                self.common.max_idle_ungated.fetch_max(idle, Relaxed);
            }
            // 1 each: clear, trim, prefill (the other threads' lists catch up on their own)
            79 => self.h().pool.clear(),
            80 => self.h().pool.trim(),
            81 => {
                let count = self.rng.below(4);
                if let Err(e) = self.h().pool.prefill(count) {
                    self.generator_failed(&e);
                }
            }
            // the rest: the hot path, take and give back at once
            _ => match self.h().try_take() {
                Ok(e) => self.h().put(e),
                Err(e) => self.generator_failed(&e),
            },
        }
    }

    /// Gives back an element that another thread took.
    fn receive(&self, parcel: Parcel, how: usize) {
        let ledger = &self.common.ledger;
        match parcel {
            Parcel::Raw(e) if how == 0 => self.h().close(e),
            Parcel::Raw(e) => self.h().put(e),
            Parcel::Owned(g) => match how {
                0 => {
                    ledger.give(&g);
                    OwnedCheckout::discard(g);
                }
                1 => {
                    let e = OwnedCheckout::detach(g);
                    ledger.detach(&e);
                }
                _ => {
                    ledger.give(&g);
                    drop(g);
                }
            },
        }
    }

    /// A thread that lives for a few operations: it takes elements (and one element this
    /// thread took, to give back there), gives them all back, so they sit in its list, and
    /// exits; its exit hook must move them to the global shard. Two in three leave an owned
    /// guard and a pool handle in a thread-local, dropped as the thread exits, before or after
    /// the pool's exit hook (see [`LeftBehind`]).
    fn helper_thread(&mut self) {
        let parcel = self.pop_stash();
        let handle = self.h().clone();
        let takes = 1 + self.rng.below(4);
        let leave = self.rng.below(3);
        let common = self.common;
        std::thread::scope(|s| {
            // Joined explicitly: the scope's implicit join waits for the closure only, not
            // for the thread's exit hook, which is part of what this thread must finish.
            s.spawn(move || {
                DROPPED_AFTER_EXIT_HOOK.with(|_| {}); // registered before the pool's hook
                let mut mine: Vec<Tracked> = Vec::new();
                for _ in 0..takes {
                    common.guarded("helper take", || {
                        if let Ok(e) = handle.try_take() {
                            mine.push(e);
                        }
                    });
                }
                mine.extend(parcel);
                for e in mine {
                    common.guarded("helper put", || handle.put(e));
                }
                if leave == 0 {
                    return;
                }
                common.guarded("helper leaves a guard", || {
                    let Ok(guard) = handle.pool.try_checkout_owned() else {
                        return;
                    };
                    handle.ledger.take(&guard);
                    let left = Some(LeftBehind {
                        guard: Some(guard),
                        handle: Some(handle.clone()),
                    });
                    let slot = match leave {
                        1 => &DROPPED_AFTER_EXIT_HOOK,
                        _ => &DROPPED_BEFORE_EXIT_HOOK, // first touched now: destroyed first
                    };
                    slot.with(|slot| *slot.borrow_mut() = left);
                });
            })
            .join()
            .expect("helper threads catch their panics");
        });
        self.common.helper_threads.fetch_add(1, Relaxed);
    }

    /// Rounds of operations; with `quiet`, a rendezvous with the main thread after each.
    fn run(&mut self, quiet: Option<&Barrier>) {
        let common = self.common;
        for _ in 0..common.cfg.rounds {
            for _ in 0..common.cfg.ops_per_round {
                let _gate = common.gate.read().unwrap_or_else(|p| p.into_inner());
                common.guarded("operation", || self.step());
                common.ops.fetch_add(1, Relaxed);
            }
            if let Some(barrier) = quiet {
                common.held_by[self.index].store(self.stash.len(), Relaxed);
                common.arrived.fetch_add(1, Relaxed);
                barrier.wait(); // the main thread checks the quiet pool
                barrier.wait();
                if common.stop.load(Relaxed) {
                    break;
                }
            }
        }
    }

    /// Gives back (or passes on) what this worker holds and drops its handles; any drop may
    /// be the pool's last, and a close callback may panic in it.
    fn finish(mut self, pass_on: bool) {
        let common = self.common;
        while let Some(e) = self.stash.pop() {
            if pass_on && self.rng.below(2) == 0 {
                common.exchange.push(Parcel::Raw(e));
            } else {
                let h = self.h();
                common.guarded("final put", || h.put(e));
            }
        }
        common.held_by[self.index].store(0, Relaxed);
        let wrapper = self.wrapper.take();
        common.guarded("wrapper drop", || drop(wrapper));
        let handle = self.handle.take();
        common.guarded("handle drop", || drop(handle));
    }
}

/// Joins each thread for real. The implicit join at the end of `thread::scope` waits for the
/// closures to return, not for the threads to finish exiting: their thread-local destructors,
/// where the pool's exit hook moves cached elements (and, holding the last reference, may
/// drop the pool), could still be running when the checks start.
fn join_all(workers: Vec<std::thread::ScopedJoinHandle<'_, ()>>) {
    for worker in workers {
        worker.join().expect("workers catch their panics");
    }
}

/// Runs the workload and checks every guarantee; panics with the violations if any.
pub fn run(cfg: Config) -> Report {
    let started = Instant::now();
    let ledger = Ledger::with_faults(Faults::everywhere(cfg.fault_per_mille, cfg.seed));
    let pool = if cfg.validated {
        validated_builder(&ledger)
    } else {
        builder(&ledger)
    }
    .pool_size(cfg.pool_size)
    .thread_capacity(cfg.thread_capacity)
    .build();
    let common = Common {
        ledger: Arc::clone(&ledger),
        exchange: SegQueue::new(),
        gate: RwLock::new(()),
        stop: AtomicBool::new(false),
        arrived: AtomicUsize::new(0),
        held_by: (0..cfg.threads.max(cfg.teardown_threads))
            .map(|_| AtomicUsize::new(0))
            .collect(),
        ops: AtomicU64::new(0),
        helper_threads: AtomicU64::new(0),
        panics_caught: AtomicU64::new(0),
        generator_errors: AtomicU64::new(0),
        max_idle_ungated: AtomicUsize::new(0),
        cfg: cfg.clone(),
    };
    let mut report = Report::default();
    let mut last = cachepool::Stats::default();
    let pool_size = cfg.pool_size;

    // Checks the pool against the ledger at an instant when no operation is in flight.
    let check = |report: &mut Report, last: &mut cachepool::Stats, held: Option<usize>| {
        let stats = pool.stats();
        report.max_idle_gated = report.max_idle_gated.max(stats.idle);
        match ledger.check_quiet(&stats, pool_size) {
            Ok(counts) => {
                if let Some(held) = held
                    && counts.held != held
                {
                    ledger.violation(format!(
                        "ledger says {} held, the users hold {held}",
                        counts.held
                    ));
                }
            }
            Err(e) => ledger.violation(e),
        }
        let monotone = [
            (last.new, stats.new),
            (last.get, stats.get),
            (last.put, stats.put),
            (last.closed, stats.closed),
            (last.detached, stats.detached),
        ];
        if monotone.iter().any(|(before, now)| now < before) {
            ledger.violation(format!("a counter went down: {last} then {stats}"));
        }
        *last = stats;
    };

    let mut seeds = Rng::new(cfg.seed);
    for _generation in 0..cfg.generations {
        let barrier = Barrier::new(cfg.threads + 1);
        std::thread::scope(|s| {
            let mut workers = Vec::with_capacity(cfg.threads);
            for index in 0..cfg.threads {
                let handle = Handle {
                    pool: pool.clone(),
                    ledger: Arc::clone(&ledger),
                };
                let (common, barrier, seed) = (&common, &barrier, seeds.next());
                workers.push(s.spawn(move || {
                    let mut worker = Worker::new(index, common, handle, seed);
                    worker.run(Some(barrier));
                    // Exits holding whatever its list cached.
                    worker.finish(true);
                }));
            }
            for _ in 0..cfg.rounds {
                while common.arrived.load(Relaxed) < cfg.threads {
                    let sampled = Instant::now();
                    {
                        let _quiet = common.gate.write().unwrap_or_else(|p| p.into_inner());
                        check(&mut report, &mut last, None);
                        report.gated_samples += 1;
                    }
                    if cfg!(miri) {
                        std::thread::yield_now();
                    } else {
                        // The check scans the whole ledger with the workers stopped: keep it to
                        // about 5% of the time, however many elements a soak creates.
                        let pause = (sampled.elapsed() * 20).max(Duration::from_millis(2));
                        std::thread::sleep(pause);
                    }
                }
                barrier.wait();
                let held = common
                    .held_by
                    .iter()
                    .map(|h| h.load(Relaxed))
                    .sum::<usize>()
                    + common.exchange.len();
                check(&mut report, &mut last, Some(held));
                report.quiet_checks += 1;
                common.arrived.store(0, Relaxed);
                if !ledger.violations().is_empty() {
                    common.stop.store(true, Relaxed);
                }
                barrier.wait();
                if common.stop.load(Relaxed) {
                    break;
                }
            }
            join_all(workers);
        });
        report.threads += cfg.threads as u64;
        // The generation has exited: what its threads cached is in the global shard now.
        check(&mut report, &mut last, Some(common.exchange.len()));
        report.quiet_checks += 1;
        if common.stop.load(Relaxed) {
            break;
        }
    }
    report.hits_global_before_teardown = pool.stats().hits_global;

    if cfg.teardown_threads > 0 && !common.stop.load(Relaxed) {
        let handles: Vec<Handle> = (0..cfg.teardown_threads)
            .map(|_| Handle {
                pool: pool.clone(),
                ledger: Arc::clone(&ledger),
            })
            .collect();
        // The main thread lets go first: the pool now lives in the workers' handles and in
        // owned guards that earlier threads left in the exchange.
        common.guarded("main handle drop", || drop(pool));
        let all_done = Barrier::new(cfg.teardown_threads);
        let stay = cfg.teardown_threads.div_ceil(2);
        let stay_alive = Barrier::new(stay);
        std::thread::scope(|s| {
            let mut workers = Vec::with_capacity(cfg.teardown_threads);
            for (index, handle) in handles.into_iter().enumerate() {
                let (common, all_done, stay_alive) = (&common, &all_done, &stay_alive);
                let seed = seeds.next();
                workers.push(s.spawn(move || {
                    let mut worker = Worker::new(index, common, handle, seed);
                    worker.run(None);
                    all_done.wait(); // nobody adds to the exchange any more
                    while let Some(parcel) = common.exchange.pop() {
                        let how = worker.rng.below(4);
                        common.guarded("drain", || worker.receive(parcel, how));
                    }
                    worker.finish(false);
                    // Half the workers stay alive until all of them let go, so the last
                    // handle drops while they run; the others exit at once, racing their
                    // exit hooks against the pool's drop.
                    if index < stay {
                        stay_alive.wait();
                    }
                }));
            }
            join_all(workers);
        });
        report.threads += cfg.teardown_threads as u64;
    } else {
        // Elements other threads took come home on the main thread.
        let handle = Handle {
            pool: pool.clone(),
            ledger: Arc::clone(&ledger),
        };
        let worker = Worker::new(0, &common, handle, 0);
        while let Some(parcel) = common.exchange.pop() {
            common.guarded("drain", || worker.receive(parcel, 2));
        }
        worker.finish(false);
        common.guarded("last handle drop", || drop(pool));
    }

    assert!(
        common.exchange.is_empty(),
        "every parcel was given back before the end"
    );
    let counts = ledger.counts();
    report.ops = common.ops.load(Relaxed);
    report.helper_threads = common.helper_threads.load(Relaxed);
    report.faults = ledger.faults.to_string();
    report.faults_by_site = Site::ALL
        .iter()
        .map(|&site| (site, ledger.faults.injected(site)))
        .collect();
    report.faults_injected = ledger.faults.total();
    report.panics_caught = common.panics_caught.load(Relaxed);
    report.generator_errors = common.generator_errors.load(Relaxed);
    report.max_idle_ungated = common.max_idle_ungated.load(Relaxed);
    report.created = counts.created;
    report.closed = counts.closed;
    report.detached = counts.detached;
    report.reuses = ledger.reuses();
    report.lost = counts.created - counts.closed - counts.detached;
    report.elapsed = started.elapsed();
    println!("{}: {report}", cfg.name);
    ledger.assert_all_accounted_for();
    report
}
