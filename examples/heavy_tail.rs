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
//! to 16 MiB) and the time the workers took.
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

use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
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

/// Memory held by live buffers: what the generator made, what the requests grew them by, less
/// what the pools closed. Measured when every buffer is back, it is the idle memory.
struct Memory {
    live: AtomicUsize,
    large_allocations: AtomicUsize,
}

static MEMORY: Memory = Memory {
    live: AtomicUsize::new(0),
    large_allocations: AtomicUsize::new(0),
};

fn new_buffer() -> Vec<u8> {
    MEMORY.live.fetch_add(SMALL, Relaxed);
    Vec::with_capacity(SMALL)
}

fn closed(buf: Vec<u8>) {
    MEMORY.live.fetch_sub(buf.capacity(), Relaxed);
}

/// A request's work on its buffer: grow it if it must, and write the payload.
fn serve(buf: &mut Vec<u8>, len: usize) {
    let before = buf.capacity();
    if before < len {
        buf.reserve_exact(len);
        MEMORY.live.fetch_add(buf.capacity() - before, Relaxed);
        if len == LARGE {
            MEMORY.large_allocations.fetch_add(1, Relaxed);
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

struct Default(CachePool<Vec<u8>, Clear>, bool);

impl Mode for Default {
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

fn two_pools() -> TwoPools {
    let large = CachePool::builder(new_buffer)
        .reset(|b| {
            b.clear();
            true
        })
        .close_callback(closed)
        .pool_size(2)
        .build();
    let spill = large.clone();
    let small = CachePool::builder(new_buffer)
        .reset(|b| {
            b.clear();
            b.capacity() <= 64 << 10
        })
        .close_callback(move |b| {
            if b.capacity() > 64 << 10 {
                spill.put(b)
            } else {
                closed(b)
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

/// Runs the workload in `mode`; prints idle MiB after the reported epochs, large allocations
/// and the workers' time.
fn run(name: &str, mode: &impl Mode) {
    MEMORY.live.store(0, Relaxed);
    MEMORY.large_allocations.store(0, Relaxed);
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
                        serve(&mut buf, len);
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
                idle_mib.push(MEMORY.live.load(Relaxed) / MIB);
            }
            measured.wait();
        }
    });
    let idle: Vec<String> = idle_mib.iter().map(|mib| format!("{mib:>5}")).collect();
    println!(
        "{name:<17} {}   {:>5}   {:>6.0} ms",
        idle.join(" "),
        MEMORY.large_allocations.load(Relaxed),
        work.as_secs_f64() * 1e3
    );
}

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
         {large_requests} of 16 MiB, the rest 4 KiB"
    );
    println!("                  idle MiB after epoch       large    work");
    println!("                      1     4    10    20   allocs    time");
    let default = |trim| {
        Default(
            CachePool::builder(new_buffer)
                .reset_with(Clear)
                .close_callback(closed)
                .build(),
            trim,
        )
    };
    run("default", &default(false));
    run("default, trim()", &default(true));
    run("two pools", &two_pools());
    let weighed = Weighed(
        CachePool::builder(new_buffer)
            .reset_with(Clear)
            .close_callback(closed)
            .weigher(|buf| buf.capacity())
            .max_idle_weight(64 * MIB)
            .build(),
    );
    run("max_idle_weight", &weighed);
    let stats = weighed.0.stats();
    assert!(stats.idle_weight <= 64 * MIB);
    assert_eq!(stats.idle_weight, MEMORY.live.load(Relaxed), "{stats}");
}
