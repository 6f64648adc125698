//! What every suite shares: a test element that records where it went, the ledger it records
//! into, fault injection, and the scale of the stress tests.
//!
//! The ledger is the referee of every test: each element carries a unique id, and every
//! transition of that id (created, handed to a user, given back, closed, detached, dropped) is
//! checked against the state it must come from. An id handed to two users at once, closed
//! twice, handed out after it was closed, or dropped without being closed or detached is
//! recorded as a violation, and every test ends by asserting there were none.

#![allow(dead_code)] // each suite uses its own part of the helpers

pub mod faults;
pub mod hammer;

use std::error::Error;
use std::fmt;
use std::panic::{self, PanicHookInfo};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cachepool::{Builder, CachePool, Checkout, OwnedCheckout, Stats};

pub use faults::{Faults, Site};

/// The payload of every panic a test injects on purpose; the silenced panic hook recognises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedPanic(pub Site);

/// Panics with an [`InjectedPanic`] payload.
pub fn inject(site: Site) -> ! {
    panic::panic_any(InjectedPanic(site))
}

/// Asserts that a caught panic is one the test injected (and returns its site), so a real
/// panic of the pool is never mistaken for an injected one.
#[track_caller]
pub fn expect_injected(payload: Box<dyn std::any::Any + Send>) -> Site {
    match payload.downcast::<InjectedPanic>() {
        Ok(injected) => injected.0,
        Err(other) => panic::resume_unwind(other),
    }
}

/// Keeps the panic hook from printing injected panics while alive; other panics still print.
///
/// The hook is process-wide and the tests of this binary run in parallel, so the filter is
/// installed by the first live guard and the previous hook restored when the last one drops.
#[must_use]
pub struct QuietInjectedPanics(());

type Hook = Arc<dyn Fn(&PanicHookInfo<'_>) + Send + Sync>;

struct HookState {
    users: usize,
    previous: Option<Hook>,
}

static HOOK: Mutex<HookState> = Mutex::new(HookState {
    users: 0,
    previous: None,
});

fn hook_state() -> MutexGuard<'static, HookState> {
    // A test that failed while holding the lock leaves the counts intact: keep going.
    HOOK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn silence_injected_panics() -> QuietInjectedPanics {
    let mut state = hook_state();
    if state.users == 0 {
        let previous: Hook = Arc::from(panic::take_hook());
        let forward = Arc::clone(&previous);
        panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<InjectedPanic>() {
                forward(info);
            }
        }));
        state.previous = Some(previous);
    }
    state.users += 1;
    QuietInjectedPanics(())
}

impl Drop for QuietInjectedPanics {
    fn drop(&mut self) {
        let mut state = hook_state();
        state.users -= 1;
        // The hook cannot be changed from a panicking thread; the filter then stays, and it
        // forwards every panic that was not injected anyway.
        if state.users == 0
            && !std::thread::panicking()
            && let Some(previous) = state.previous.take()
        {
            drop(panic::take_hook());
            panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}

/// How much work the stress and property tests do: less under Miri, more with
/// `CACHEPOOL_SOAK=1` (or `CACHEPOOL_SOAK=<factor>`). Scale one dimension of a test only
/// (operations, not also rounds), so a soak does `factor` times the work.
pub fn scale(default: usize, miri: usize) -> usize {
    if cfg!(miri) {
        return miri;
    }
    default * soak_factor()
}

/// The soak multiplier: 1 unless `CACHEPOOL_SOAK` is set (`1` or `true` means 50).
pub fn soak_factor() -> usize {
    match std::env::var("CACHEPOOL_SOAK") {
        Ok(v) if v == "1" || v.eq_ignore_ascii_case("true") => 50,
        Ok(v) => v.parse().unwrap_or(1).max(1),
        Err(_) => 1,
    }
}

/// The base seed of the stress tests' random choices: `CACHEPOOL_SEED` or one from the clock,
/// printed so a failing run can be replayed (thread interleavings still differ).
pub fn seed() -> u64 {
    if let Ok(seed) = std::env::var("CACHEPOOL_SEED")
        && let Ok(seed) = seed.parse()
    {
        return seed;
    }
    if cfg!(miri) {
        return 0x5eed;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5eed)
}

/// A small deterministic generator (xorshift64*), one per thread: no shared state to
/// serialise the threads on.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams; never 0.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next() >> 32) as usize * n) >> 32
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.below(1000) < per_mille as usize
    }
}

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
pub mod state {
    /// Not created yet.
    pub const UNBORN: u8 = 0;
    /// Owned by the pool: idle, or on its way in or out (given back, being closed).
    pub const IN_POOL: u8 = 1;
    /// Handed to a user.
    pub const HELD: u8 = 2;
    /// Seen by the close callback; final.
    pub const CLOSED: u8 = 3;
    /// Detached from a guard: the user keeps it and the pool forgot it; final.
    pub const DETACHED: u8 = 4;

    pub fn name(state: u8) -> &'static str {
        match state {
            UNBORN => "unborn",
            IN_POOL => "in the pool",
            HELD => "held",
            CLOSED => "closed",
            DETACHED => "detached",
            _ => "?",
        }
    }
}

/// The test element: a unique id plus knobs a test sets before giving it back.
pub struct Tracked {
    id: usize,
    ledger: Arc<Ledger>,
    /// The reset hook refuses this element (the pool must close it).
    pub refuse: bool,
    /// The reset hook panics on this element.
    pub panic_in_reset: bool,
    /// The close callback panics after closing this element.
    pub panic_in_close: bool,
    /// The validator refuses this element at checkout (the pool must close it).
    pub invalid: bool,
    /// The validator panics on this element.
    pub panic_in_validate: bool,
    /// Scribbled on by users; the reset hook clears it, so a dirty element handed out means
    /// the hook was skipped.
    pub scratch: u64,
}

impl Tracked {
    pub fn id(&self) -> usize {
        self.id
    }

    /// The ledger this element records into.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tracked#{}", self.id)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.dropped(self.id);
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
                    state: AtomicU8::new(state::UNBORN),
                    handouts: AtomicU32::new(0),
                })
                .collect()
        });
        &chunk[id % CHUNK]
    }

    /// Moves `id` from `from` to `to`, recording a violation (with `what`) if it was elsewhere.
    fn transition(&self, id: usize, from: u8, to: u8, what: &str) -> bool {
        match self
            .slot(id)
            .state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(actual) => {
                self.violation(format!(
                    "element {id} {what}: it was {}, expected {}",
                    state::name(actual),
                    state::name(from)
                ));
                false
            }
        }
    }

    /// Creates an element (the generator's work), owned by the pool until handed out.
    pub fn create(self: &Arc<Self>) -> Tracked {
        let id = self.created.fetch_add(1, Ordering::Relaxed);
        assert!(
            id < CHUNK * MAX_CHUNKS,
            "more elements than the ledger can track"
        );
        self.transition(id, state::UNBORN, state::IN_POOL, "created");
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
        self.transition(element.id, state::IN_POOL, state::CLOSED, "closed");
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
        if now != state::IN_POOL {
            self.violation(format!(
                "reset hook saw element {} {}",
                element.id,
                state::name(now)
            ));
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
        if now != state::IN_POOL {
            self.violation(format!(
                "validator saw element {} {}",
                element.id,
                state::name(now)
            ));
        }
        if element.panic_in_validate || self.faults.roll(Site::Validate) {
            inject(Site::Validate);
        }
        !element.invalid
    }

    /// A user received `element` from the pool.
    pub fn take(&self, element: &Tracked) {
        self.transition(element.id, state::IN_POOL, state::HELD, "handed out");
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
        self.transition(element.id, state::HELD, state::IN_POOL, "given back");
    }

    /// A user detached `element` from its guard: the pool forgot it.
    pub fn detach(&self, element: &Tracked) {
        self.transition(element.id, state::HELD, state::DETACHED, "detached");
    }

    fn dropped(&self, id: usize) {
        self.drops.fetch_add(1, Ordering::Relaxed);
        let now = self.state_of(id);
        if now != state::CLOSED && now != state::DETACHED {
            self.violation(format!(
                "element {id} dropped while {} (lost: never closed)",
                state::name(now)
            ));
        }
    }

    pub fn state_of(&self, id: usize) -> u8 {
        self.slot(id).state.load(Ordering::Acquire)
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
        for s in self.slots() {
            match s.state.load(Ordering::Acquire) {
                state::IN_POOL => counts.in_pool += 1,
                state::HELD => counts.held += 1,
                state::CLOSED => counts.closed += 1,
                state::DETACHED => counts.detached += 1,
                other => self.violation(format!("created element is {}", state::name(other))),
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
        let books = stats.idle as u64 + c.held as u64 + stats.closed + stats.detached;
        if stats.new != books {
            errors.push(format!(
                "new {} != idle + held + closed + detached = {books}",
                stats.new
            ));
        }
        // Every checkout is a hit or an element created for it (prefilled ones were not).
        if stats.hits_local + stats.hits_global + stats.new - stats.prefilled != stats.get {
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
        assert_eq!(c.held + c.in_pool, 0, "elements left behind: {c:?}");
        assert_eq!(c.closed + c.detached, c.created, "{c:?}");
        assert_eq!(
            self.close_calls(),
            c.closed as u64,
            "close calls vs closed ids"
        );
        assert_eq!(self.drops(), c.created as u64, "every element was dropped");
        c
    }
}

/// A builder for a pool of [`Tracked`] wired to `ledger`: fallible generator, close callback
/// and reset hook all recording into it.
pub fn builder(ledger: &Arc<Ledger>) -> Builder<Tracked> {
    let (g, c, r) = (Arc::clone(ledger), Arc::clone(ledger), Arc::clone(ledger));
    CachePool::try_builder(move || g.generate())
        .close_callback(move |e| c.close(e))
        .reset(move |e| r.reset(e))
}

/// [`builder`] plus a validator recording into `ledger` (every checkout of an idle element
/// then goes through it, off the hot path).
pub fn validated_builder(ledger: &Arc<Ledger>) -> Builder<Tracked> {
    let v = Arc::clone(ledger);
    builder(ledger).validate(move |e| v.validate(e))
}

/// A pool of `pool_size` with per-thread lists of `thread_capacity`, and its ledger.
pub fn tracked_pool(pool_size: usize, thread_capacity: usize) -> (CachePool<Tracked>, Arc<Ledger>) {
    let ledger = Ledger::new();
    let pool = builder(&ledger)
        .pool_size(pool_size)
        .thread_capacity(thread_capacity)
        .build();
    (pool, ledger)
}

/// The user's side of the ledger: every way of taking an element out and giving it back,
/// each recording the transition before the pool sees the element.
pub trait UserOps {
    fn ledger(&self) -> &Arc<Ledger>;
    fn pool(&self) -> &CachePool<Tracked>;

    fn take(&self) -> Tracked {
        let e = self.pool().get();
        self.ledger().take(&e);
        e
    }

    fn try_take(&self) -> Result<Tracked, cachepool::CachePoolGeneratorError> {
        let e = self.pool().try_get()?;
        self.ledger().take(&e);
        Ok(e)
    }

    fn put(&self, e: Tracked) {
        self.ledger().give(&e);
        self.pool().put(e);
    }

    fn close(&self, e: Tracked) {
        self.ledger().give(&e);
        self.pool().close(e);
    }

    fn checkout(&self) -> Checkout<'_, Tracked> {
        let g = self.pool().checkout();
        self.ledger().take(&g);
        g
    }

    fn checkout_owned(&self) -> OwnedCheckout<Tracked> {
        let g = self.pool().checkout_owned();
        self.ledger().take(&g);
        g
    }
}

/// A pool and its ledger, for the tests that work on one of each.
pub struct Fixture {
    pub pool: CachePool<Tracked>,
    pub ledger: Arc<Ledger>,
}

impl Fixture {
    pub fn new(pool_size: usize, thread_capacity: usize) -> Fixture {
        let (pool, ledger) = tracked_pool(pool_size, thread_capacity);
        Fixture { pool, ledger }
    }

    /// Gives a borrowing guard's element back by dropping the guard.
    pub fn give_guard(&self, g: Checkout<'_, Tracked>) {
        self.ledger.give(&g);
        drop(g);
    }

    pub fn discard(&self, g: Checkout<'_, Tracked>) {
        self.ledger.give(&g);
        Checkout::discard(g);
    }

    pub fn detach(&self, g: Checkout<'_, Tracked>) -> Tracked {
        let e = Checkout::detach(g);
        self.ledger.detach(&e);
        e
    }

    /// The pool's stats, checked against the ledger as a quiet pool.
    #[track_caller]
    pub fn quiet_stats(&self) -> Stats {
        let stats = self.pool.stats();
        if let Err(e) = self.ledger.check_quiet(&stats, self.pool.pool_size()) {
            panic!("{e}");
        }
        self.ledger.assert_no_violations();
        stats
    }

    /// Drops the pool and checks that every element was accounted for.
    #[track_caller]
    pub fn finish(self) -> Counts {
        let Fixture { pool, ledger } = self;
        drop(pool);
        ledger.assert_all_accounted_for()
    }
}

impl UserOps for Fixture {
    fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }
    fn pool(&self) -> &CachePool<Tracked> {
        &self.pool
    }
}

/// A pool handle plus the ledger, for worker threads.
#[derive(Clone)]
pub struct Handle {
    pub pool: CachePool<Tracked>,
    pub ledger: Arc<Ledger>,
}

impl UserOps for Handle {
    fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }
    fn pool(&self) -> &CachePool<Tracked> {
        &self.pool
    }
}
