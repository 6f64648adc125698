//! The workloads: one function each, generic over the element and the subject.

use std::hint::black_box;
use std::sync::{Barrier, OnceLock};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use criterion::Bencher;
use crossbeam_queue::ArrayQueue;
use rayon::prelude::*;

use crate::cores::gated;
use crate::element::{Element, POOL_SIZE};
use crate::names;
use crate::subjects::Subject;

/// One way of using a pool, run the same way on every subject.
pub trait Workload: Sync {
    /// Name in benchmark ids (`st_hit`, `mt_hit_2t`).
    fn name(&self) -> String;

    /// Elements checked out per criterion iteration: criterion records it as the throughput,
    /// and the report divides the time per iteration by it (time per element).
    fn elements_per_iter(&self) -> u64 {
        1
    }

    /// Measures `subject` (built, empty) into `b`.
    fn measure<E: Element, S: Subject<E>>(&self, b: &mut Bencher<'_>, subject: &S);
}

/// Checks an element out, makes the compiler believe it was used, and gives it back.
#[inline(always)]
fn round_trip<E: Element, S: Subject<E>>(subject: &S) {
    let mut item = subject.take();
    black_box(&mut *item);
    subject.give(item);
}

/// Round trips each thread does before the clock starts: fills the thread's cache of the pool.
const WARM_UP: usize = 64;

/// `st_hit`: one thread, checkout and drop in a loop on a warm pool.
#[derive(Clone, Copy)]
pub struct StHit;

impl Workload for StHit {
    fn name(&self) -> String {
        names::ST_HIT.into()
    }

    fn measure<E: Element, S: Subject<E>>(&self, b: &mut Bencher<'_>, subject: &S) {
        for _ in 0..WARM_UP {
            round_trip(subject);
        }
        b.iter(|| round_trip(subject));
    }
}

/// Elements held at once in `st_burst`.
pub const BURST: usize = 16;

/// `st_burst`: one thread holds [`BURST`] elements at once, then gives them all back.
#[derive(Clone, Copy)]
pub struct StBurst;

impl Workload for StBurst {
    fn name(&self) -> String {
        names::ST_BURST.into()
    }

    fn elements_per_iter(&self) -> u64 {
        BURST as u64
    }

    fn measure<E: Element, S: Subject<E>>(&self, b: &mut Bencher<'_>, subject: &S) {
        let mut held = Vec::with_capacity(BURST);
        let mut burst = || {
            for _ in 0..BURST {
                let mut item = subject.take();
                black_box(&mut *item);
                held.push(item);
            }
            // Last taken, first given back, as scopes end.
            while let Some(item) = held.pop() {
                subject.give(item);
            }
        };
        for _ in 0..WARM_UP / BURST {
            burst();
        }
        b.iter(burst);
    }
}

/// `mt_hit`: `threads` threads pinned round-robin to the machine's cores, each checking out and
/// giving back on one shared pool. A criterion iteration is one round trip of the whole group:
/// the time reported is wall time over total round trips (aggregate cost, inverse throughput).
#[derive(Clone, Copy)]
pub struct MtHit {
    pub threads: usize,
}

impl Workload for MtHit {
    fn name(&self) -> String {
        names::mt_hit(self.threads)
    }

    fn measure<E: Element, S: Subject<E>>(&self, b: &mut Bencher<'_>, subject: &S) {
        let threads = self.threads;
        b.iter_custom(|iters| {
            let per_thread = iters.div_ceil(threads as u64);
            let barrier = Barrier::new(threads);
            let work = || {
                for _ in 0..WARM_UP {
                    round_trip(subject);
                }
                barrier.wait();
                let start = Instant::now();
                for _ in 0..per_thread {
                    round_trip(subject);
                }
                (start, Instant::now())
            };
            let spans: Vec<_> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads).map(|i| spawn_pinned(scope, i, work)).collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            // Scale to exactly `iters` round trips (the threads did `per_thread` each).
            wall_time(&spans).mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
        });
    }
}

/// Slots of the channel in `cross_thread`.
const CHANNEL: usize = 256;

/// `cross_thread`: a producer checks elements out and sends them over a bounded channel to a
/// consumer on the other core, which gives them back: every element comes home on another
/// thread. Time per element, from the producer's start to the consumer's last give-back.
///
/// The channel is a `crossbeam_queue::ArrayQueue` that both ends poll (spinning, then
/// yielding): a blocking channel would put a futex wake-up on the path of most elements and
/// bury the pools' own cost under the channel's.
pub struct CrossThread;

impl Workload for CrossThread {
    fn name(&self) -> String {
        names::CROSS_THREAD.into()
    }

    fn measure<E: Element, S: Subject<E>>(&self, b: &mut Bencher<'_>, subject: &S) {
        b.iter_custom(|iters| gated(|| Self::run(iters, subject)));
    }
}

impl CrossThread {
    /// One sample: `iters` elements from core 0 to core 1, after a warm-up.
    fn run<E: Element, S: Subject<E>>(iters: u64, subject: &S) -> Duration {
        // `None` ends a phase: the warm-up, then the measurement.
        let channel = ArrayQueue::<Option<S::Sent<'_>>>::new(CHANNEL);
        let channel = &channel;
        let barrier = Barrier::new(2);
        let barrier = &barrier;
        let produce = move || {
            let send_one = || {
                let mut item = subject.take();
                black_box(&mut *item);
                send(channel, Some(subject.send(item)));
            };
            for _ in 0..2 * CHANNEL {
                send_one();
            }
            send(channel, None);
            barrier.wait();
            let start = Instant::now();
            for _ in 0..iters {
                send_one();
            }
            send(channel, None);
            start
        };
        let consume = move || {
            while let Some(sent) = receive(channel) {
                subject.give_sent(sent);
            }
            barrier.wait();
            while let Some(sent) = receive(channel) {
                subject.give_sent(sent);
            }
            Instant::now()
        };
        std::thread::scope(|scope| {
            let producer = spawn_pinned(scope, 0, produce);
            let consumer = spawn_pinned(scope, 1, consume);
            let start = producer.join().unwrap();
            consumer.join().unwrap() - start
        })
    }
}

/// Pushes `message`, waiting while the channel is full.
fn send<M>(channel: &ArrayQueue<M>, mut message: M) {
    let mut tries = 0;
    while let Err(m) = channel.push(message) {
        message = m;
        wait(&mut tries);
    }
}

/// Pops a message, waiting while the channel is empty.
fn receive<M>(channel: &ArrayQueue<M>) -> M {
    let mut tries = 0;
    loop {
        if let Some(message) = channel.pop() {
            return message;
        }
        wait(&mut tries);
    }
}

/// Waits a little longer at each try: spins first, then yields the core (the other end may
/// share it with other work).
fn wait(tries: &mut u32) {
    if *tries < 6 {
        for _ in 0..1 << *tries {
            std::hint::spin_loop();
        }
    } else {
        std::thread::yield_now();
    }
    *tries += 1;
}

/// Records per `rayon` iteration.
pub const RECORDS: usize = 4096;

/// `rayon`: a `par_iter` over [`RECORDS`] records on a rayon pool of one pinned worker per
/// core; each task checks out a buffer, writes 64 bytes into it and checksums them.
pub struct Rayon;

impl Workload for Rayon {
    fn name(&self) -> String {
        names::RAYON.into()
    }

    fn elements_per_iter(&self) -> u64 {
        RECORDS as u64
    }

    fn measure<E: Element, S: Subject<E>>(&self, b: &mut Bencher<'_>, subject: &S) {
        let records: Vec<u64> = (0..RECORDS as u64).collect();
        let pass = || {
            rayon_pool().install(|| {
                records
                    .par_iter()
                    .map(|&record| {
                        let mut item = subject.take();
                        let sum = item.fill(record);
                        subject.give(item);
                        sum
                    })
                    .sum::<u64>()
            })
        };
        black_box(pass());
        b.iter(pass);
    }
}

impl Rayon {
    /// The same pass through rayon's `map_init` instead of a pool: each rayon job builds one
    /// element with `init` and reuses it for the records it runs. Not a subject (it has no
    /// take/give to share with other workloads); its created count is how often rayon ran
    /// `init`, which grows with the jobs rayon splits the pass into, not with the workers.
    pub fn measure_map_init<E: Element>(&self, b: &mut Bencher<'_>) {
        let records: Vec<u64> = (0..RECORDS as u64).collect();
        let pass = || {
            rayon_pool().install(|| {
                records
                    .par_iter()
                    .map_init(E::create, |element, &record| {
                        let sum = element.fill(record);
                        element.reset();
                        sum
                    })
                    .sum::<u64>()
            })
        };
        black_box(pass());
        b.iter(pass);
    }
}

/// One rayon pool for the whole run, one worker per core, each pinned to its core.
fn rayon_pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores().len().max(1))
            .start_handler(pin_to)
            .build()
            .expect("rayon pool")
    })
}

/// The cores threads are pinned to.
fn cores() -> &'static [core_affinity::CoreId] {
    static CORES: OnceLock<Vec<core_affinity::CoreId>> = OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// How many cores threads can be pinned to (0 where the platform cannot pin).
pub fn core_count() -> usize {
    cores().len()
}

/// Pins the current thread to core `i` modulo the number of cores (does nothing where the
/// platform cannot pin).
pub fn pin_to(i: usize) {
    let cores = cores();
    if !cores.is_empty() {
        core_affinity::set_for_current(cores[i % cores.len()]);
    }
}

/// Spawns a scoped thread pinned to core `i` (modulo the cores) that runs `f`.
pub fn spawn_pinned<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    i: usize,
    f: impl FnOnce() -> T + Send + 'scope,
) -> ScopedJoinHandle<'scope, T> {
    scope.spawn(move || {
        pin_to(i);
        f()
    })
}

/// From the first thread's start to the last one's end.
fn wall_time(spans: &[(Instant, Instant)]) -> Duration {
    let start = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one thread");
    let end = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one thread");
    end - start
}

/// Checks the memory promise after a subject ran: idle elements never above `pool_size`.
pub fn check_idle<E: Element, S: Subject<E>>(subject: &S) {
    if let Some(idle) = subject.idle() {
        assert!(
            idle <= POOL_SIZE,
            "{}: {idle} idle elements, above pool_size {POOL_SIZE}",
            S::NAME
        );
    }
}
