//! The idle timeout: one thread in the process trims every pool built with
//! `Builder::idle_timeout`, each once per its timeout, so that an element idle for longer than
//! the timeout is closed within twice the timeout even when no thread calls the pool again.
//!
//! The thread starts with the first such pool and ends once the last one has dropped; a
//! process whose pools ask for no timeout never starts it. It holds each pool by a `Weak`,
//! upgraded only for the length of one `trim()`, so it keeps no pool alive; a pool's drop
//! removes it from the schedule and wakes the thread, so that it ends without waiting out a
//! period.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::unwind;

/// The shortest timeout: shorter ones are raised to it, so that the thread never spins.
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// A pool the thread trims.
pub(crate) trait TrimIdle: Send + Sync {
    /// `trim()`.
    fn trim_idle(&self);
}

/// One pool on the schedule.
struct Entry {
    /// The pool's key in the schedule, handed out by [`register`].
    key: u64,
    pool: Weak<dyn TrimIdle>,
    period: Duration,
    /// When the pool is next trimmed.
    due: Instant,
}

/// The schedule, shared by the pools and the thread.
struct Schedule {
    entries: Vec<Entry>,
    next_key: u64,
    /// Whether the thread runs (it clears this, under the lock, when it ends).
    running: bool,
}

static SCHEDULE: Mutex<Schedule> = Mutex::new(Schedule {
    entries: Vec::new(),
    next_key: 0,
    running: false,
});

/// Wakes the thread when the schedule changes.
static CHANGED: Condvar = Condvar::new();

/// The schedule, whatever a panic elsewhere left (its state is consistent after every step).
fn schedule() -> MutexGuard<'static, Schedule> {
    SCHEDULE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Puts `pool` on the schedule, to be trimmed every `period`, and starts the thread if it does
/// not run; returns the key that [`unregister`] takes. Under loom, whose model threads cannot
/// share a `std` thread, nothing is scheduled.
pub(crate) fn register(pool: Weak<dyn TrimIdle>, period: Duration) -> Option<u64> {
    if cfg!(loom) {
        return None;
    }
    let mut schedule = schedule();
    let key = schedule.next_key;
    schedule.next_key += 1;
    schedule.entries.push(Entry {
        key,
        pool,
        period,
        due: Instant::now() + period,
    });
    if !schedule.running {
        let started = std::thread::Builder::new()
            .name("cachepool-idle".into())
            .spawn(run);
        // A process that cannot start a thread gets pools without the timeout, not a panic
        // in `build`: `trim()` still works when called.
        schedule.running = started.is_ok();
    }
    CHANGED.notify_all();
    Some(key)
}

/// Takes the pool with `key` off the schedule (its last handle dropped).
pub(crate) fn unregister(key: u64) {
    let mut schedule = schedule();
    schedule.entries.retain(|entry| entry.key != key);
    CHANGED.notify_all();
}

/// The thread: trims each pool when it is due, sleeps until the next one is, and ends when the
/// schedule is empty.
fn run() {
    let mut schedule = schedule();
    loop {
        // Entries leave only through `unregister` (a pool's drop): a pool being built is on
        // the schedule before its `Weak` can be upgraded, so a `Weak` that cannot be upgraded
        // does not say that the pool is gone.
        let Some(next) = schedule.entries.iter().map(|entry| entry.due).min() else {
            schedule.running = false;
            return;
        };
        let now = Instant::now();
        if next > now {
            schedule = CHANGED
                .wait_timeout(schedule, next - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        let mut due = Vec::new();
        for entry in schedule.entries.iter_mut().filter(|entry| entry.due <= now) {
            // The next period starts now, not at the missed deadline, so that a thread that
            // fell behind does not trim the same pool twice in a row.
            entry.due = now + entry.period;
            due.push(entry.pool.clone());
        }
        // Trimming runs close callbacks, and the last handle of a pool may drop here (the
        // `Weak` was upgraded), which takes the lock again to unregister: not under the lock.
        drop(schedule);
        for pool in due {
            trim(&pool);
        }
        schedule = self::schedule();
    }
}

/// One pool's trim on the thread: a close callback's panic is contained and counted (there is
/// no caller to propagate it to), and the thread goes on with the other pools.
fn trim(pool: &Weak<dyn TrimIdle>) {
    if let Some(pool) = pool.upgrade() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            unwind::containing(|| pool.trim_idle());
        }));
    }
}
