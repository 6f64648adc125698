//! A buffer pool whose requests are mostly small and now and then very large: what stays idle
//! with default settings, with the two-pool recipe by size class, and with a weight budget.
//!
//! ```text
//! cargo run --release --example heavy_tail
//! ```
//!
//! 4 worker threads serve 160,000 requests in 20 epochs, each with 8 requests in flight: a
//! request checks out a buffer, writes its payload, and gives the buffer back 8 requests
//! later. 1 request in about 1,000 needs 16 MiB, the others 4 KiB. Buffers start at 4 KiB and
//! grow where a request needs more; the pool resets them with `Clear`. After epochs 1, 4, 10
//! and 20 every buffer is back in the pool, and the program prints the memory the idle
//! buffers hold (their summed capacity). Then the number of large allocations (a buffer grown
//! to 16 MiB) and the time the workers took. Each mode runs 3 times, the modes taking turns;
//! a row shows the most memory and allocations any of its runs saw, and the median time.
//!
//! - `default`: one pool, default settings. A buffer that grew to 16 MiB comes back and
//!   serves small requests from then on, so the large ones keep finding small buffers.
//! - `default, trim()`: the same, with `trim()` after every epoch: the large buffers are in use
//!   (by small requests) in every period, so it closes none of them.
//! - `two pools`: the recipe by size class a user can write today, 14 lines: the small pool's
//!   reset refuses buffers over 64 KiB and its close callback hands them to a second pool of
//!   2, which the large requests check out of.
//! - `max_idle_weight`: one pool with `weigher(|b| b.capacity())` and
//!   `max_idle_weight(64 MiB)`; the large requests use `checkout_at_least(16 MiB)`.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cachepool::{CachePool, Clear};

const WORKERS: usize = 4;
const IN_FLIGHT: usize = 8;
const EPOCHS: usize = 20;
const REQUESTS: usize = 160_000;
const PER_EPOCH: usize = REQUESTS / EPOCHS / WORKERS;
const SMALL: usize = 4 << 10;
const LARGE: usize = 16 << 20;
const MIB: usize = 1 << 20;
const REPORTED: [usize; 4] = [1, 4, 10, 20];

/// Memory held by one run's live buffers: what the generator made, what the requests grew
/// them by, less what the pools closed. Measured when every buffer is back, it is the idle
/// memory. One per run: a pool of an earlier run may still be closing its buffers in a thread
/// that is exiting.
#[derive(Default)]
struct Memory {
    live: AtomicUsize,
    large_allocations: AtomicUsize,
}

type Counted = Arc<Memory>;

fn new_buffer(memory: &Counted) -> impl Fn() -> Vec<u8> + Send + Sync + 'static {
    let memory = Arc::clone(memory);
    move || {
        memory.live.fetch_add(SMALL, Relaxed);
        Vec::with_capacity(SMALL)
    }
}

fn closed(memory: &Counted) -> impl Fn(Vec<u8>) + Send + Sync + 'static {
    let memory = Arc::clone(memory);
    move |buf| {
        memory.live.fetch_sub(buf.capacity(), Relaxed);
    }
}

/// A request's work on its buffer: grow it if it must, and write the payload.
fn serve(memory: &Memory, buf: &mut Vec<u8>, len: usize) {
    let before = buf.capacity();
    if before < len {
        buf.reserve_exact(len);
        memory.live.fetch_add(buf.capacity() - before, Relaxed);
        if len == LARGE {
            memory.large_allocations.fetch_add(1, Relaxed);
        }
    }
    buf.resize(len, 0x5a);
}

/// The request sizes of one worker, the same in every mode: about 1 in 1,000 large.
fn request_len(rng: &mut u64) -> usize {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    if rng.is_multiple_of(1000) {
        LARGE
    } else {
        SMALL
    }
}

/// How a mode checks out a buffer for a request of `len` bytes, and what it does between
/// epochs; the guard gives the buffer back when the request is done.
trait Mode: Sync {
    type Guard<'a>: std::ops::DerefMut<Target = Vec<u8>>
    where
        Self: 'a;
    fn checkout(&self, len: usize) -> Self::Guard<'_>;
    fn after_epoch(&self) {}
}

struct Plain(CachePool<Vec<u8>, Clear>, bool);

impl Mode for Plain {
    type Guard<'a> = cachepool::Checkout<'a, Vec<u8>, Clear>;
    fn checkout(&self, _len: usize) -> Self::Guard<'_> {
        self.0.checkout()
    }
    fn after_epoch(&self) {
        if self.1 {
            self.0.trim();
        }
    }
}

/// The two-pool recipe (the 14 lines from `let large` to the end of `small`).
struct TwoPools {
    small: CachePool<Vec<u8>>,
    large: CachePool<Vec<u8>>,
}

fn two_pools(memory: &Counted) -> TwoPools {
    let large = CachePool::builder(new_buffer(memory))
        .reset(|b| {
            b.clear();
            true
        })
        .close_callback(closed(memory))
        .pool_size(2)
        .build();
    let spill = large.clone();
    let close = closed(memory);
    let small = CachePool::builder(new_buffer(memory))
        .reset(|b| {
            b.clear();
            b.capacity() <= 64 << 10
        })
        .close_callback(move |b| {
            if b.capacity() > 64 << 10 {
                spill.put(b)
            } else {
                close(b)
            }
        })
        .build();
    TwoPools { small, large }
}

impl Mode for TwoPools {
    type Guard<'a> = cachepool::Checkout<'a, Vec<u8>>;
    fn checkout(&self, len: usize) -> Self::Guard<'_> {
        if len > 64 << 10 {
            &self.large
        } else {
            &self.small
        }
        .checkout()
    }
}

struct Weighed(CachePool<Vec<u8>, Clear>);

impl Mode for Weighed {
    type Guard<'a> = cachepool::Checkout<'a, Vec<u8>, Clear>;
    fn checkout(&self, len: usize) -> Self::Guard<'_> {
        self.0.checkout_at_least(len)
    }
}

/// What one run of the workload measured.
struct Run {
    idle_mib: Vec<usize>,
    large_allocations: usize,
    work: Duration,
}

/// Runs the workload in `mode`, on a fresh pool that `build` makes; returns what it
/// measured, and the pool with its memory count.
fn run<M: Mode>(build: &impl Fn(&Counted) -> M) -> (Run, M, Counted) {
    let counted = Counted::default();
    let memory = &counted;
    let built = build(memory);
    let mode = &built;
    let epoch_done = Barrier::new(WORKERS + 1);
    let measured = Barrier::new(WORKERS + 1);
    let mut idle_mib = Vec::new();
    let mut work = Duration::ZERO;
    std::thread::scope(|s| {
        for worker in 0..WORKERS {
            let (epoch_done, measured) = (&epoch_done, &measured);
            s.spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ (worker as u64 + 1);
                for _ in 0..EPOCHS {
                    let mut in_flight = std::collections::VecDeque::with_capacity(IN_FLIGHT);
                    for _ in 0..PER_EPOCH {
                        if in_flight.len() == IN_FLIGHT {
                            in_flight.pop_front(); // the oldest request is done
                        }
                        let len = request_len(&mut rng);
                        let mut buf = mode.checkout(len);
                        serve(memory, &mut buf, len);
                        in_flight.push_back(buf);
                    }
                    drop(in_flight);
                    epoch_done.wait();
                    measured.wait();
                }
            });
        }
        for epoch in 1..=EPOCHS {
            let start = Instant::now();
            epoch_done.wait();
            work += start.elapsed();
            mode.after_epoch();
            if REPORTED.contains(&epoch) {
                idle_mib.push(memory.live.load(Relaxed) / MIB);
            }
            measured.wait();
        }
    });
    let measured = Run {
        idle_mib,
        large_allocations: memory.large_allocations.load(Relaxed),
        work,
    };
    (measured, built, counted)
}

/// Prints a mode's row from its runs: the most idle memory and large allocations any run
/// saw, and the median work time.
fn print_row(name: &str, runs: &mut [Run]) {
    let idle: Vec<String> = (0..REPORTED.len())
        .map(|i| runs.iter().map(|run| run.idle_mib[i]).max().unwrap_or(0))
        .map(|mib| format!("{mib:>5}"))
        .collect();
    let large = runs.iter().map(|run| run.large_allocations).max();
    runs.sort_by_key(|run| run.work);
    let work = runs[runs.len() / 2].work;
    println!(
        "{name:<17} {}   {:>5}   {:>6.0} ms",
        idle.join(" "),
        large.unwrap_or(0),
        work.as_secs_f64() * 1e3
    );
}

/// Rounds of every mode, one after another, so that a disturbance of the machine falls on
/// all of them alike.
const ROUNDS: usize = 3;

fn main() {
    let large_requests = (0..WORKERS)
        .map(|worker| {
            let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ (worker as u64 + 1);
            (0..EPOCHS * PER_EPOCH)
                .filter(|_| request_len(&mut rng) == LARGE)
                .count()
        })
        .sum::<usize>();
    println!(
        "{REQUESTS} requests on {WORKERS} threads, {IN_FLIGHT} in flight each, \
         {large_requests} of 16 MiB, the rest 4 KiB; {ROUNDS} rounds of each mode"
    );
    let default = |trim| {
        move |memory: &Counted| {
            Plain(
                CachePool::builder(new_buffer(memory))
                    .reset_with(Clear)
                    .close_callback(closed(memory))
                    .build(),
                trim,
            )
        }
    };
    let weighed = |memory: &Counted| {
        Weighed(
            CachePool::builder(new_buffer(memory))
                .reset_with(Clear)
                .close_callback(closed(memory))
                .weigher(|buf| buf.capacity())
                .max_idle_weight(64 * MIB)
                .build(),
        )
    };
    let mut runs: [Vec<Run>; 4] = Default::default();
    for _ in 0..ROUNDS {
        runs[0].push(run(&default(false)).0);
        runs[1].push(run(&default(true)).0);
        runs[2].push(run(&two_pools).0);
        let (measured, pool, memory) = run(&weighed);
        runs[3].push(measured);
        // The weighed pool's own figure of what it keeps is the memory count.
        let stats = pool.0.stats();
        assert!(stats.idle_weight <= 64 * MIB);
        assert_eq!(stats.idle_weight, memory.live.load(Relaxed), "{stats}");
    }
    println!("                  idle MiB after epoch       large    work");
    println!("                      1     4    10    20   allocs    time");
    let names = ["default", "default, trim()", "two pools", "max_idle_weight"];
    for (name, runs) in names.iter().zip(&mut runs) {
        print_row(name, runs);
    }
}
