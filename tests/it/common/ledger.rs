//! The ledger, referee of every test: each element carries a unique id, and every transition
//! of that id (created, handed to a user, given back, closed, detached, dropped) is checked
//! against the state it must come from. An id handed to two users at once, closed twice,
//! handed out after it was closed, or dropped without being closed or detached is recorded as
//! a violation, and every test ends by asserting there were none.
//!
//! The pool's callbacks (generator, close callback, reset hook, validator) are the ledger's
//! methods, so they record what the pool does; a test records what its users do.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cachepool::Stats;

use super::{Faults, Site, Tracked, inject};

/// The generator's error in tests: carries a marker to prove it is the one that surfaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenError(pub &'static str);

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "generator failed: {}", self.0)
    }
}

impl Error for GenError {}

/// Where an element is, according to its users and the pool's callbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Not created yet.
    Unborn,
    /// Owned by the pool: idle, or on its way in or out (given back, being closed).
    InPool,
    /// Handed to a user.
    Held,
    /// Seen by the close callback; final.
    Closed,
    /// Detached from a guard: the user keeps it and the pool forgot it; final.
    Detached,
}

impl State {
    const ALL: [State; 5] = [
        State::Unborn,
        State::InPool,
        State::Held,
        State::Closed,
        State::Detached,
    ];

    /// The state stored as `byte` in a slot (only ever a `State as u8`).
    fn from_byte(byte: u8) -> State {
        State::ALL[usize::from(byte)]
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Unborn => "unborn",
            State::InPool => "in the pool",
            State::Held => "held",
            State::Closed => "closed",
            State::Detached => "detached",
        })
    }
}

/// The counts of ids in each state, scanned from the ledger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub in_pool: usize,
    pub held: usize,
    pub closed: usize,
    pub detached: usize,
}

/// Ids per chunk of the ledger, and most chunks (Miri runs small and slowly: keep it small).
const CHUNK: usize = if cfg!(miri) { 1 << 8 } else { 1 << 16 };
const MAX_CHUNKS: usize = if cfg!(miri) { 1 << 8 } else { 1 << 12 };

/// One element's record.
struct Slot {
    state: AtomicU8,
    /// Times it was handed to a user (a count above 1 is a reuse).
    handouts: AtomicU32,
}

/// Records every transition of every element, and every violation of the rules.
pub struct Ledger {
    /// One slot per id, in chunks allocated on first use, so that a soak run with millions of
    /// elements costs only what it creates.
    chunks: Box<[OnceLock<Box<[Slot]>>]>,
    created: AtomicUsize,
    close_calls: AtomicU64,
    drops: AtomicU64,
    violations: Mutex<Vec<String>>,
    /// The generator returns an error after this many more successes (`usize::MAX`: never).
    fail_after: AtomicUsize,
    pub faults: Faults,
}

impl Ledger {
    /// A ledger without fault injection.
    pub fn new() -> Arc<Ledger> {
        Ledger::with_faults(Faults::none())
    }

    pub fn with_faults(faults: Faults) -> Arc<Ledger> {
        Arc::new(Ledger {
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
            created: AtomicUsize::new(0),
            close_calls: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            violations: Mutex::new(Vec::new()),
            fail_after: AtomicUsize::new(usize::MAX),
            faults,
        })
    }

    pub fn violation(&self, what: String) {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    #[track_caller]
    pub fn assert_no_violations(&self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "{} violation(s), first ones: {:#?}",
            violations.len(),
            &violations[..violations.len().min(20)]
        );
    }

    fn slot(&self, id: usize) -> &Slot {
        let chunk = self.chunks[id / CHUNK].get_or_init(|| {
            (0..CHUNK)
                .map(|_| Slot {
                    state: AtomicU8::new(State::Unborn as u8),
                    handouts: AtomicU32::new(0),
                })
                .collect()
        });
        &chunk[id % CHUNK]
    }

    /// Moves `id` from `from` to `to`, recording a violation (with `what`) if it was elsewhere.
    fn transition(&self, id: usize, from: State, to: State, what: &str) {
        if let Err(actual) = self.slot(id).state.compare_exchange(
            from as u8,
            to as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            let actual = State::from_byte(actual);
            self.violation(format!(
                "element {id} {what}: it was {actual}, expected {from}"
            ));
        }
    }

    /// Creates an element (the generator's work), owned by the pool until handed out.
    pub fn create(self: &Arc<Self>) -> Tracked {
        let id = self.created.fetch_add(1, Ordering::Relaxed);
        assert!(
            id < CHUNK * MAX_CHUNKS,
            "more elements than the ledger can track"
        );
        self.transition(id, State::Unborn, State::InPool, "created");
        Tracked {
            id,
            ledger: Arc::clone(self),
            refuse: false,
            panic_in_reset: false,
            panic_in_close: false,
            invalid: false,
            panic_in_validate: false,
            scratch: 0,
        }
    }

    /// The generator, with fault injection and the one-shot failure flag.
    pub fn generate(self: &Arc<Self>) -> Result<Tracked, GenError> {
        let countdown = self.fail_after.load(Ordering::Relaxed);
        if countdown != usize::MAX {
            // Only single-threaded tests ask for failures, so load-then-store is exact.
            if countdown == 0 {
                self.fail_after.store(usize::MAX, Ordering::Relaxed);
                return Err(GenError("asked to fail"));
            }
            self.fail_after.store(countdown - 1, Ordering::Relaxed);
        }
        if self.faults.roll(Site::Generator) {
            inject(Site::Generator);
        }
        if self.faults.roll(Site::GeneratorError) {
            return Err(GenError("injected"));
        }
        Ok(self.create())
    }

    /// The next generator call fails (once), or none does.
    pub fn fail_next_generate(&self, fail: bool) {
        self.fail_after
            .store(if fail { 0 } else { usize::MAX }, Ordering::Relaxed);
    }

    /// The generator fails once after `successes` more successful calls.
    pub fn fail_after(&self, successes: usize) {
        self.fail_after.store(successes, Ordering::Relaxed);
    }

    /// The close callback: the element must have been the pool's, and is now closed for good.
    pub fn close(&self, element: Tracked) {
        self.close_calls.fetch_add(1, Ordering::Relaxed);
        self.transition(element.id, State::InPool, State::Closed, "closed");
        let panic = element.panic_in_close || self.faults.roll(Site::Close);
        drop(element);
        if panic {
            inject(Site::Close);
        }
    }

    /// The reset hook: the element must be the pool's (no user may still hold it); clears
    /// the scratch; refuses or panics when asked to.
    pub fn reset(&self, element: &mut Tracked) -> bool {
        let now = self.state_of(element.id);
        if now != State::InPool {
            self.violation(format!("reset hook saw element {} {now}", element.id));
        }
        element.scratch = 0;
        if element.panic_in_reset || self.faults.roll(Site::Reset) {
            element.panic_in_reset = false;
            inject(Site::Reset);
        }
        !element.refuse
    }

    /// The validator: the element must be the pool's; refuses or panics when asked to.
    pub fn validate(&self, element: &Tracked) -> bool {
        let now = self.state_of(element.id);
        if now != State::InPool {
            self.violation(format!("validator saw element {} {now}", element.id));
        }
        if element.panic_in_validate || self.faults.roll(Site::Validate) {
            inject(Site::Validate);
        }
        !element.invalid
    }

    /// A user received `element` from the pool.
    pub fn take(&self, element: &Tracked) {
        self.transition(element.id, State::InPool, State::Held, "handed out");
        self.slot(element.id)
            .handouts
            .fetch_add(1, Ordering::Relaxed);
        if element.scratch != 0 {
            self.violation(format!(
                "element {} handed out dirty: the reset hook was skipped",
                element.id
            ));
        }
    }

    /// A user is about to give `element` back (put, close, guard drop, discard).
    pub fn give(&self, element: &Tracked) {
        self.transition(element.id, State::Held, State::InPool, "given back");
    }

    /// A user detached `element` from its guard: the pool forgot it.
    pub fn detach(&self, element: &Tracked) {
        self.transition(element.id, State::Held, State::Detached, "detached");
    }

    pub(super) fn dropped(&self, id: usize) {
        self.drops.fetch_add(1, Ordering::Relaxed);
        let now = self.state_of(id);
        if now != State::Closed && now != State::Detached {
            self.violation(format!(
                "element {id} dropped while {now} (lost: never closed)"
            ));
        }
    }

    pub fn state_of(&self, id: usize) -> State {
        State::from_byte(self.slot(id).state.load(Ordering::Acquire))
    }

    pub fn handouts_of(&self, id: usize) -> u32 {
        self.slot(id).handouts.load(Ordering::Relaxed)
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        (0..self.created()).map(|id| self.slot(id))
    }

    pub fn created(&self) -> usize {
        self.created.load(Ordering::Relaxed)
    }

    pub fn close_calls(&self) -> u64 {
        self.close_calls.load(Ordering::Relaxed)
    }

    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }

    /// Ids handed out more than once: the reuses the pool achieved.
    pub fn reuses(&self) -> u64 {
        self.slots()
            .map(|s| u64::from(s.handouts.load(Ordering::Relaxed).saturating_sub(1)))
            .sum()
    }

    pub fn counts(&self) -> Counts {
        let created = self.created();
        let mut counts = Counts {
            created,
            ..Counts::default()
        };
        for id in 0..created {
            match self.state_of(id) {
                State::InPool => counts.in_pool += 1,
                State::Held => counts.held += 1,
                State::Closed => counts.closed += 1,
                State::Detached => counts.detached += 1,
                State::Unborn => self.violation(format!("created element {id} is unborn")),
            }
        }
        counts
    }

    /// Checks a quiet pool (no call in flight on any thread) against the ledger: the pool's
    /// figures equal the ledger's, idle never exceeds `pool_size`, and the books balance.
    pub fn check_quiet(&self, stats: &Stats, pool_size: usize) -> Result<Counts, String> {
        let c = self.counts();
        let mut errors = Vec::new();
        if stats.idle > pool_size {
            errors.push(format!("idle {} > pool_size {pool_size}", stats.idle));
        }
        if stats.new != c.created as u64 {
            errors.push(format!("stats.new {} != created {}", stats.new, c.created));
        }
        if stats.idle != c.in_pool {
            errors.push(format!(
                "stats.idle {} != ledger idle {}",
                stats.idle, c.in_pool
            ));
        }
        if stats.closed != c.closed as u64 || self.close_calls() != c.closed as u64 {
            errors.push(format!(
                "stats.closed {} / close calls {} != ledger closed {}",
                stats.closed,
                self.close_calls(),
                c.closed
            ));
        }
        if stats.checked_out != c.held as u64 {
            errors.push(format!(
                "stats.checked_out {} != ledger held {}",
                stats.checked_out, c.held
            ));
        }
        if stats.detached != c.detached as u64 {
            errors.push(format!(
                "stats.detached {} != ledger {}",
                stats.detached, c.detached
            ));
        }
        // Every checkout is a hit or an element created for it (prefilled ones were not).
        if stats.hits_local + stats.hits_global + stats.hits_stolen + stats.new - stats.prefilled
            != stats.get
        {
            errors.push(format!("hits + new - prefilled != get in {stats}"));
        }
        if stats.trimmed + stats.invalid > stats.evicted || stats.evicted > stats.closed {
            errors.push(format!(
                "trimmed + invalid <= evicted <= closed broken in {stats}"
            ));
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(format!("{} (ledger {c:?})", errors.join("; ")))
        }
    }

    /// After the pool is gone: every element was closed exactly once or detached, none is
    /// left anywhere, and every one was dropped.
    #[track_caller]
    pub fn assert_all_accounted_for(&self) -> Counts {
        let c = self.counts();
        self.assert_no_violations();
        // With none held or idle, every created element is closed or detached (`counts`
        // sorts each into exactly one state, an unborn one being a violation).
        assert_eq!(c.held + c.in_pool, 0, "elements left behind: {c:?}");
        assert_eq!(
            self.close_calls(),
            c.closed as u64,
            "close calls vs closed ids"
        );
        assert_eq!(self.drops(), c.created as u64, "every element was dropped");
        c
    }
}
