//! Quickstart: several threads render records into pooled buffers.
//!
//! Each record is formatted into a 64 KiB `String` checked out of one shared pool; the guard
//! gives the buffer back (cleared by the reset hook) when it drops. At the end the pool's
//! statistics show how few buffers were ever allocated for all those records.
//!
//! Run it with `cargo run --release --example quickstart`.

use std::fmt::Write as _;
use std::thread;
use std::time::Instant;

use cachepool::CachePool;

const THREADS: usize = 8;
const RECORDS_PER_THREAD: usize = 50_000;
const BUFFER_CAPACITY: usize = 64 * 1024;

/// A record as a service might log it.
struct Record {
    id: u64,
    user: u32,
    latency_us: u32,
    path: &'static str,
}

fn record(id: u64) -> Record {
    const PATHS: [&str; 4] = ["/", "/search", "/api/v1/items", "/login"];
    // A cheap deterministic mix, so the run needs no input.
    let mixed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    Record {
        id,
        user: (mixed % 10_000) as u32,
        latency_us: (mixed % 250_000) as u32,
        path: PATHS[(mixed % 4) as usize],
    }
}

/// Renders one record as a JSON line into `out` and returns a checksum of the bytes.
fn render(record: &Record, out: &mut String) -> u64 {
    write!(
        out,
        r#"{{"id":{},"user":{},"latency_us":{},"path":"{}"}}"#,
        record.id, record.user, record.latency_us, record.path
    )
    .expect("writing to a String cannot fail");
    out.bytes()
        .fold(0u64, |sum, b| sum.rotate_left(5) ^ u64::from(b))
}

fn main() {
    let pool = CachePool::builder(|| String::with_capacity(BUFFER_CAPACITY))
        // In the pool's type, so inlined where each buffer is given back.
        .reset_with(|buf: &mut String| {
            buf.clear();
            // A buffer that grew past what we planned for is not worth keeping.
            buf.capacity() <= BUFFER_CAPACITY
        })
        .pool_size(64)
        .build();

    let started = Instant::now();
    let checksum = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let pool = &pool;
                scope.spawn(move || {
                    let first = (t * RECORDS_PER_THREAD) as u64;
                    (first..first + RECORDS_PER_THREAD as u64)
                        .map(|id| render(&record(id), &mut pool.checkout()))
                        .fold(0u64, u64::wrapping_add)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker panicked"))
            .fold(0u64, u64::wrapping_add)
    });
    let elapsed = started.elapsed();

    let stats = pool.stats();
    let records = THREADS * RECORDS_PER_THREAD;
    println!(
        "rendered {records} records on {THREADS} threads in {elapsed:.2?} (checksum {checksum:016x})"
    );
    println!("pool: {stats}");
    println!(
        "{} buffers of {} KiB allocated for {} checkouts: {:.4}% of them needed a new buffer",
        stats.new,
        BUFFER_CAPACITY / 1024,
        stats.get,
        100.0 * stats.new as f64 / stats.get as f64
    );
    assert_eq!(stats.get, records as u64);
}
