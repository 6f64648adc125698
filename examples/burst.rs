//! How the pool's idle memory follows use after a burst, with three ways of letting it go.
//!
//! ```text
//! cargo run --release --example burst
//! ```
//!
//! In each mode 16 threads check out 8 buffers of 1 MiB each at once, then give them back.
//! Afterwards 2 of the threads keep working with one buffer at a time, and the other 14 stay
//! alive but never touch the pool again: the case where idle elements sit in the lists of
//! threads that will not come back to collect them. For one second the program samples the
//! pool's idle and alive elements and the resident memory the process gained since before the
//! burst, in three modes, one after another:
//!
//! - `no option`: default settings, nothing called: the pool keeps what the burst left behind;
//! - `trim() every 100 ms`: the main thread calls `pool.trim()` from a timer;
//! - `idle_timeout(200 ms)`: the pool closes elements unused that long on its own.
//!
//! `idle` and `alive` are the pool's part; whether the resident memory follows them also
//! depends on the allocator handing freed memory back to the system. glibc's malloc, once a
//! buffer this size is freed, serves the next ones from its arenas and may keep their pages;
//! to see the pool's part alone, give each buffer a mapping of its own, unmapped when freed:
//!
//! ```text
//! GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072 cargo run --release --example burst
//! ```

use std::sync::Barrier;
use std::sync::mpsc::{self, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use cachepool::CachePool;

const THREADS: usize = 16;
const WORKERS: usize = 2;
const BUFFERS_PER_THREAD: usize = 8;
const BUFFER_SIZE: usize = 1 << 20;
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const SAMPLES: u32 = 11; // 0 ms to 1 s after the burst

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    NoOption,
    TrimEvery100ms,
    IdleTimeout200ms,
}

/// One reading: idle elements, elements alive, resident MiB above the baseline.
type Sample = (usize, u64, Option<i64>);

/// The process's resident memory in bytes, from `/proc/self/statm` (Linux only).
fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn run(mode: Mode) -> Vec<Sample> {
    // `vec![1u8; ..]` writes every byte, so each buffer is really resident (a zeroed one could
    // be mapped pages never touched).
    let mut builder = CachePool::builder(|| vec![1u8; BUFFER_SIZE]);
    if mode == Mode::IdleTimeout200ms {
        builder = builder.idle_timeout(Duration::from_millis(200));
    }
    let pool = builder.build();
    let baseline = resident_bytes();
    // The threads and the main thread meet twice: once with every buffer checked out (the
    // peak), once with every buffer given back (time 0 of the samples).
    let barrier = Barrier::new(THREADS + 1);
    let mut samples = Vec::new();

    thread::scope(|scope| {
        let mut releases = Vec::new();
        let mut handles = Vec::new();
        for t in 0..THREADS {
            // One channel per thread: nothing is ever sent, dropping the sender ends the mode.
            let (release, until_released) = mpsc::channel::<()>();
            releases.push(release);
            let (pool, barrier) = (&pool, &barrier);
            handles.push(scope.spawn(move || {
                let held: Vec<_> = (0..BUFFERS_PER_THREAD).map(|_| pool.checkout()).collect();
                barrier.wait();
                drop(held); // the guards give the buffers back, into this thread's list
                barrier.wait();
                if t < WORKERS {
                    let mut round = 0u8;
                    while let Err(TryRecvError::Empty) = until_released.try_recv() {
                        round = round.wrapping_add(1);
                        pool.checkout().fill(round);
                        thread::sleep(Duration::from_millis(1));
                    }
                } else {
                    // Alive, its list still holding what it gave back, but never calling the
                    // pool again.
                    let _ = until_released.recv();
                }
            }));
        }

        barrier.wait(); // every buffer is checked out
        barrier.wait(); // every buffer is back
        let start = Instant::now();
        for i in 0..SAMPLES {
            // Sleep to the planned instant rather than a fixed 100 ms, so the work of each
            // sample does not shift the later ones.
            if let Some(wait) = (start + SAMPLE_EVERY * i).checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            if mode == Mode::TrimEvery100ms && i > 0 {
                pool.trim();
            }
            let stats = pool.stats();
            let alive = stats.new - stats.closed - stats.detached;
            let rss = resident_bytes()
                .zip(baseline)
                .map(|(now, before)| (now - before) >> 20);
            samples.push((stats.idle, alive, rss));
        }

        drop(releases);
        for handle in handles {
            handle.join().expect("a thread panicked");
        }
    });
    // Dropping the pool closes every idle buffer, so the next mode starts with none of this
    // one's alive (the allocator may keep their pages, which the next mode's burst reuses).
    drop(pool);
    samples
}

fn main() {
    let modes = [
        ("no option", Mode::NoOption),
        ("trim() every 100 ms", Mode::TrimEvery100ms),
        ("idle_timeout(200 ms)", Mode::IdleTimeout200ms),
    ];
    let results: Vec<Vec<Sample>> = modes.iter().map(|&(_, mode)| run(mode)).collect();

    println!(
        "{THREADS} threads x {BUFFERS_PER_THREAD} buffers of {} MiB, then {WORKERS} keep working; \
         RSS: MiB resident above the level before the burst",
        BUFFER_SIZE >> 20
    );
    let names = modes.iter().map(|(name, _)| name.to_string());
    print_row("after the burst", names);
    let heading = || format!("{:>5} {:>5} {:>5}", "idle", "alive", "RSS");
    print_row("", modes.iter().map(|_| heading()));
    for i in 0..SAMPLES as usize {
        let cells = results.iter().map(|samples| {
            let (idle, alive, rss) = samples[i];
            let rss = rss.map_or_else(|| "?".to_string(), |mib| mib.to_string());
            format!("{idle:>5} {alive:>5} {rss:>5}")
        });
        print_row(
            &format!("{:>7} ms", i * SAMPLE_EVERY.as_millis() as usize),
            cells,
        );
    }
}

/// One line of the table: a label, then one cell per mode.
fn print_row(label: &str, cells: impl Iterator<Item = String>) {
    let mut line = format!("{label:<16}");
    for cell in cells {
        line += &format!("  {cell:<22}");
    }
    println!("{}", line.trim_end());
}
