//! How long a cache line takes to travel between the first two cores, and a gate that runs a
//! cross-thread sample only while that time is at its usual level.
//!
//! A virtual machine's cores are the host's to place: the hypervisor may run a guest's two
//! vCPUs on cores that share a cache, then move one of them to a core that does not. A
//! cross-thread workload pays the difference on every line it moves between its threads, for
//! every subject alike, and the move lasts from a fraction of a second to minutes. Without the
//! gate, which subject ran fast was decided by when it ran (on the 2-vCPU machine behind
//! `docs/benchmarks.md` the round trip switched between two levels several times apart, and a
//! subject's median with it).
//!
//! [`gated`] measures the round trip before a sample and after it, and keeps the sample only
//! when both are at most [`SLOWER`] times the fastest round trip seen so far; otherwise it
//! waits for the usual level and runs the sample again. A sample that still cannot be run at
//! the usual level is kept, and counted (see [`census`]), so that the report can say so. On a
//! machine whose cores stay put, every sample passes at once and the gate costs two probes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::workloads::{core_count, spawn_pinned};

/// Round trips per probe: enough to average out a single slow one, short at either level.
const ROUND_TRIPS: u64 = 500;

/// A probe slower than this many times the fastest seen means the cores have been moved apart.
const SLOWER: f64 = 2.0;

/// How long [`gated`] waits for the usual level before a run, and how many runs it tries.
const PATIENCE: Duration = Duration::from_secs(2);
const TRIES: u32 = 3;

/// Mean round trip of a cache line between cores 0 and 1, in nanoseconds: one thread pinned to
/// each writes a counter the other waits for. `None` with fewer than two cores.
pub fn round_trip_ns() -> Option<f64> {
    if core_count() < 2 {
        return None;
    }
    let turn = AtomicU64::new(0);
    let turn = &turn;
    let elapsed = std::thread::scope(|scope| {
        let answer = spawn_pinned(scope, 1, move || {
            turn.store(1, Ordering::Release);
            for i in 1..=ROUND_TRIPS {
                while turn.load(Ordering::Acquire) != 2 * i {
                    std::hint::spin_loop();
                }
                turn.store(2 * i + 1, Ordering::Release);
            }
        });
        let ask = spawn_pinned(scope, 0, move || {
            while turn.load(Ordering::Acquire) != 1 {
                std::hint::spin_loop();
            }
            let start = Instant::now();
            for i in 1..=ROUND_TRIPS {
                turn.store(2 * i, Ordering::Release);
                while turn.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
            }
            start.elapsed()
        });
        answer.join().unwrap();
        ask.join().unwrap()
    });
    Some(elapsed.as_nanos() as f64 / ROUND_TRIPS as f64)
}

/// The fastest round trip seen in this process; `None` before the first probe.
static FASTEST: Mutex<Option<f64>> = Mutex::new(None);

/// Probes taken, [`CALIBRATION_GAP`] apart, before the first sample: so that a run that starts
/// while the cores are apart still learns the usual level (unless they stay apart throughout).
const CALIBRATION_PROBES: u32 = 20;
const CALIBRATION_GAP: Duration = Duration::from_millis(50);

/// Learns the usual level before the first benchmark, so that the calibration's second is not
/// inside a criterion warm-up (which would take it for the workload's time).
pub fn calibrate() {
    usual();
}

/// Probes, remembers the fastest, and says whether this probe is at the usual level.
fn usual() -> bool {
    let mut fastest = FASTEST.lock().unwrap();
    let Some(now) = round_trip_ns() else {
        return true;
    };
    let best = fastest.get_or_insert_with(|| {
        (0..CALIBRATION_PROBES)
            .filter_map(|_| {
                std::thread::sleep(CALIBRATION_GAP);
                round_trip_ns()
            })
            .fold(now, f64::min)
    });
    *best = best.min(now);
    now <= SLOWER * *best
}

/// Waits up to [`PATIENCE`] for the usual level; `false` if it did not come.
fn wait_for_usual() -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if usual() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Samples gated since the last [`reset_census`], those run again because the level changed
/// during the run, and those kept although it never came back.
static SAMPLES: AtomicU64 = AtomicU64::new(0);
static RERUN: AtomicU64 = AtomicU64::new(0);
static UNUSUAL: AtomicU64 = AtomicU64::new(0);

/// Starts a new census (before a subject's benchmark).
pub fn reset_census() {
    for counter in [&SAMPLES, &RERUN, &UNUSUAL] {
        counter.store(0, Ordering::Relaxed);
    }
}

/// What the gate did since the last [`reset_census`]: samples, runs repeated, samples kept at an
/// unusual level. `None`: no gated workload ran.
pub fn census() -> Option<(u64, u64, u64)> {
    let samples = SAMPLES.load(Ordering::Relaxed);
    (samples > 0).then(|| {
        (
            samples,
            RERUN.load(Ordering::Relaxed),
            UNUSUAL.load(Ordering::Relaxed),
        )
    })
}

/// Runs `sample` (one criterion sample of a cross-thread workload) at the usual cross-core
/// level, as the module says, and returns its time.
pub fn gated(mut sample: impl FnMut() -> Duration) -> Duration {
    SAMPLES.fetch_add(1, Ordering::Relaxed);
    let mut tries = 0;
    loop {
        tries += 1;
        let before = wait_for_usual();
        let time = sample();
        if before && usual() {
            return time;
        }
        if tries == TRIES {
            UNUSUAL.fetch_add(1, Ordering::Relaxed);
            return time;
        }
        RERUN.fetch_add(1, Ordering::Relaxed);
    }
}
