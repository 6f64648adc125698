//! A fixed set of worker threads fed through a `crossbeam-channel`, each rendering a batch of
//! log lines into a 64 KiB buffer checked out of a `CachePool`. The buffers travel with the
//! results to one collector thread, which writes them out and drops them there.
//!
//! ```text
//! cargo run --release --example worker_pool
//! ```
//!
//! This is the producer/consumer pattern, a pool's hardest case: every buffer is taken on a
//! worker and given back on the collector. The collector gives back far more than it takes, so
//! the pool keeps only a few buffers in its list and moves them to the pool's global shard in
//! small batches, where a worker whose list is empty finds them (`hits_global` in the stats).
//! So with the default settings the pool creates about as many buffers as are in flight at
//! once, however many jobs run.

use std::error::Error;
use std::io::{self, Write as _};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use cachepool::{CachePool, OwnedCheckout};
use crossbeam_channel::{Receiver, Sender};

/// Threads that render jobs.
const WORKERS: usize = 4;

/// Jobs sent to the workers.
const JOBS: u64 = 20_000;

/// The capacity each buffer is created with, and the most a buffer may keep to be reused.
const BUFFER_CAPACITY: usize = 64 * 1024;

/// Lines rendered per ordinary job (about 20 KiB); every `BURST_EVERY`th job renders
/// `BURST_LINES`, more than a buffer holds.
const LINES_PER_JOB: u64 = 300;
const BURST_EVERY: u64 = 2_000;
const BURST_LINES: u64 = 2_000;

/// A request for one rendered batch of log lines.
struct Job {
    id: u64,
    lines: u64,
}

/// A rendered batch: the buffer goes with it, still checked out of the pool.
struct Rendered {
    job_id: u64,
    lines: u64,
    buffer: OwnedCheckout<Vec<u8>>,
}

/// What the collector wrote.
#[derive(Debug, Default)]
struct Totals {
    batches: u64,
    lines: u64,
    bytes: u64,
    /// Sum of every batch's hash: the same whatever order the batches arrive in.
    checksum: u64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let pool = CachePool::builder(|| Vec::with_capacity(BUFFER_CAPACITY))
        // Clear each buffer as it comes back, and refuse one that a burst grew past its normal
        // size, so that one large job does not pin a large buffer in the pool for good.
        .reset(|buffer: &mut Vec<u8>| {
            buffer.clear();
            buffer.capacity() <= BUFFER_CAPACITY
        })
        .pool_size(256)
        .build();

    // Bounded channels keep the number of buffers in flight, and so in the pool, bounded.
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(2 * WORKERS);
    let (result_tx, result_rx) = crossbeam_channel::bounded::<Rendered>(2 * WORKERS);

    let started = Instant::now();
    let workers: Vec<JoinHandle<io::Result<()>>> = (0..WORKERS)
        .map(|_| {
            let (pool, jobs, results) = (pool.clone(), job_rx.clone(), result_tx.clone());
            thread::spawn(move || work(&pool, &jobs, &results))
        })
        .collect();
    // The workers hold the only other ends: when they finish, the collector's loop ends.
    drop(job_rx);
    drop(result_tx);
    let collector = thread::spawn(move || collect(&result_rx, io::sink()));

    let mut expected_lines = 0;
    for id in 0..JOBS {
        let lines = if id % BURST_EVERY == BURST_EVERY - 1 {
            BURST_LINES
        } else {
            LINES_PER_JOB
        };
        expected_lines += lines;
        job_tx.send(Job { id, lines })?;
    }
    // Closing the job channel tells the workers to finish.
    drop(job_tx);

    for worker in workers {
        join(worker)?;
    }
    let totals = join(collector)?;
    let elapsed = started.elapsed();

    assert_eq!(totals.batches, JOBS, "every job was collected");
    assert_eq!(totals.lines, expected_lines, "every line was rendered");
    println!(
        "{} batches, {} lines, {:.1} MiB rendered by {WORKERS} workers in {:.1} ms (checksum {:016x})",
        totals.batches,
        totals.lines,
        totals.bytes as f64 / (1024.0 * 1024.0),
        elapsed.as_secs_f64() * 1e3,
        totals.checksum,
    );

    let stats = pool.stats();
    println!("pool stats: {stats}");
    println!(
        "{} buffers created for {JOBS} jobs, {} refills from the global shard, {} buffers closed \
         ({} bursts grew theirs past {} KiB and the reset hook refused them)",
        stats.new,
        stats.hits_global,
        stats.closed,
        JOBS / BURST_EVERY,
        BUFFER_CAPACITY / 1024,
    );
    Ok(())
}

/// A worker: renders each job into a pooled buffer and sends the buffer on with the result.
fn work(
    pool: &CachePool<Vec<u8>>,
    jobs: &Receiver<Job>,
    results: &Sender<Rendered>,
) -> io::Result<()> {
    for job in jobs {
        // An owned guard: it can leave this thread, and returns the buffer wherever it drops.
        let mut buffer = pool.checkout_owned();
        render(&job, &mut buffer)?;
        let rendered = Rendered {
            job_id: job.id,
            lines: job.lines,
            buffer,
        };
        if results.send(rendered).is_err() {
            // The collector is gone (it failed); its error is reported where it is joined.
            break;
        }
    }
    Ok(())
}

/// Renders `job.lines` log lines into `buffer`.
fn render(job: &Job, buffer: &mut Vec<u8>) -> io::Result<()> {
    for line in 0..job.lines {
        let n = job.id * 1_000_003 + line;
        writeln!(
            buffer,
            "ts={} job={} line={line} status={} bytes={}",
            1_700_000_000 + n / 7,
            job.id,
            [200, 200, 200, 404, 503][(n % 5) as usize],
            n % 65_536,
        )?;
    }
    Ok(())
}

/// The collector: writes every batch to `out`, then drops it, and with it its buffer, which
/// goes back to the pool here, on this thread.
fn collect(results: &Receiver<Rendered>, mut out: impl io::Write) -> io::Result<Totals> {
    let mut totals = Totals::default();
    for rendered in results {
        out.write_all(&rendered.buffer)?;
        totals.batches += 1;
        totals.lines += rendered.lines;
        totals.bytes += rendered.buffer.len() as u64;
        totals.checksum = totals
            .checksum
            .wrapping_add(fnv1a(rendered.job_id, &rendered.buffer));
    }
    out.flush()?;
    Ok(totals)
}

/// The 64-bit FNV-1a hash of `bytes`, seeded: stable across Rust versions, unlike std's hasher.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325 ^ seed, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Waits for a thread; re-raises its panic, if it had one, on this thread.
fn join<R>(handle: JoinHandle<R>) -> R {
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
