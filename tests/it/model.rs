//! On one thread the pool is deterministic: random sequences of every operation run against
//! the pool and against `Model`, a plain sequential description of what the pool must do, and
//! after every step the element handed out, `stats()` and the idle count must be the model's.
//!
//! The model, from `src/slow_path.rs` and `src/lifecycle.rs` (`put_slow`, `get_slow`,
//! `take_idle`, `try_keep`, the passing-through paths, `prefill`, `clear`, `trim`):
//! - the budget has `pool_size` units; a unit is free, leased to the thread (`lease`), or
//!   travels with an element through the global shard;
//! - `thread_capacity` is at most `pool_size`; `batch = max(1, thread_capacity / 2)`;
//! - `put` pushes onto the thread's list while `len < lease`; else it leases in doubling steps
//!   (`len` units, at least 1, at most a batch, at most `capacity - len`), spilling the oldest
//!   `batch` elements of a full list to the global shard (a FIFO of batches); with no unit
//!   left it closes (a thread that gives back more than it takes is `model_threads.rs`'s);
//! - `get` pops the list (newest first); else takes the oldest batch of the global shard into
//!   the list and pops its newest (the thread gives back its unused lease once it amounts to
//!   16 units or a batch, and keeps the batch's units); else gives back its unused lease and
//!   calls the generator;
//! - with a validator, each idle element about to be handed out is checked; a refused one is
//!   closed (`invalid`) and the next one tried;
//! - `thread_capacity == 0`: no list; every element travels alone through the global shard;
//! - `prefill(n)` leases up to `n` units and creates elements into the global shard in batches;
//! - `clear()` closes the global shard and the list; `trim()` closes batches two trim periods
//!   old and the list's elements below its low-water mark (untouched since the last trim);
//! - on one thread, a put is closed exactly when `idle == pool_size`.
//!
//! Failing cases proptest finds are shrunk and saved in `tests/proptest-regressions/`, replayed
//! first on every run; hand-written scenarios below pin down each rule on its own.

use std::cell::Cell;
use std::collections::{HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cachepool::{CachePool, CachePoolGeneratorError, Checkout, OwnedCheckout, Stats, make_wrapper};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::common::list_model::{ListModel, Sizes, lease, trim_closes};
use crate::common::{
    Fixture, Ledger, Site, Tracked, UserOps, assert_stats, builder, expect_injected, inject, scale,
    silence_injected_panics, validated_builder,
};

/// One step of a test.
#[derive(Clone, Debug)]
pub enum Op {
    /// `try_get`; the element is kept by the test.
    Get,
    /// `try_get` with the generator failing if it is called.
    GetGeneratorFails,
    /// `put` of one of the elements the test holds (index modulo how many).
    Put(usize),
    /// `put` of an element the reset hook refuses.
    PutRefused(usize),
    /// `put` of an element on which the reset hook panics.
    PutResetPanics(usize),
    /// `put` of an element the validator (if any) will refuse at checkout.
    PutInvalid(usize),
    /// `put` of an element on which the validator (if any) will panic at checkout.
    PutValidatePanics(usize),
    /// `close`.
    Close(usize),
    /// `close` with a close callback that panics.
    CloseCallbackPanics(usize),
    /// A borrowing guard, dropped.
    CheckoutDrop,
    /// An owned guard, dropped.
    OwnedCheckoutDrop,
    /// `Checkout::discard`.
    CheckoutDiscard,
    /// `Checkout::detach` (`owned` picks the owned guard).
    CheckoutDetach {
        owned: bool,
    },
    /// A guard dropped while the user's code panics.
    CheckoutUserPanics,
    WrapperOk,
    WrapperErrKept,
    WrapperErrDropped,
    WrapperJobPanics,
    WrapperDeciderPanics,
    /// `prefill(count)`, the generator failing after `fail_after` elements if set.
    Prefill {
        count: usize,
        fail_after: Option<usize>,
    },
    Clear,
    Trim,
    /// `stats()` read twice: reading changes nothing.
    Stats,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Get),
        1 => Just(Op::GetGeneratorFails),
        6 => any::<usize>().prop_map(Op::Put),
        1 => any::<usize>().prop_map(Op::PutRefused),
        1 => any::<usize>().prop_map(Op::PutResetPanics),
        1 => any::<usize>().prop_map(Op::PutInvalid),
        1 => any::<usize>().prop_map(Op::PutValidatePanics),
        1 => any::<usize>().prop_map(Op::Close),
        1 => any::<usize>().prop_map(Op::CloseCallbackPanics),
        2 => Just(Op::CheckoutDrop),
        1 => Just(Op::OwnedCheckoutDrop),
        1 => Just(Op::CheckoutDiscard),
        1 => any::<bool>().prop_map(|owned| Op::CheckoutDetach { owned }),
        1 => Just(Op::CheckoutUserPanics),
        1 => Just(Op::WrapperOk),
        1 => Just(Op::WrapperErrKept),
        1 => Just(Op::WrapperErrDropped),
        1 => Just(Op::WrapperJobPanics),
        1 => Just(Op::WrapperDeciderPanics),
        1 => (0usize..12, prop::option::of(0usize..6))
            .prop_map(|(count, fail_after)| Op::Prefill { count, fail_after }),
        1 => Just(Op::Clear),
        1 => Just(Op::Trim),
        1 => Just(Op::Stats),
    ]
}

/// What one thread's pool must do, written as plainly as possible.
#[derive(Debug)]
pub struct Model {
    sizes: Sizes,
    validated: bool,
    /// The thread's list.
    list: ListModel,
    free: usize,
    /// The global shard: batches (oldest first) with the number of `trim()` calls before they
    /// were made; each element carries its unit of budget.
    global: VecDeque<(Vec<usize>, u64)>,
    /// `trim()` calls so far.
    trims: u64,
    /// Elements the validator refuses, or panics on.
    invalid: HashSet<usize>,
    validate_panics: HashSet<usize>,
    next_id: usize,
    stats: Stats,
}

/// What a `get` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    /// Handed out this element.
    Element(usize),
    /// The generator failed.
    GeneratorFailed,
    /// The validator panicked on this element (now closed).
    ValidatorPanicked(usize),
}

/// What a `put` did.
#[derive(Debug, PartialEq, Eq)]
enum Put {
    Kept,
    Closed,
}

/// The validator's verdict.
enum Verdict {
    Accept,
    Refuse,
    Panic,
}

impl Model {
    pub fn new(pool_size: usize, thread_capacity: usize, validated: bool) -> Model {
        Model {
            sizes: Sizes::new(pool_size, thread_capacity),
            validated,
            list: ListModel::default(),
            free: pool_size,
            global: VecDeque::new(),
            trims: 0,
            invalid: HashSet::new(),
            validate_panics: HashSet::new(),
            next_id: 0,
            stats: Stats::default(),
        }
    }

    fn idle(&self) -> usize {
        self.list.items.len() + self.global.iter().map(|(b, _)| b.len()).sum::<usize>()
    }

    fn expected_stats(&self, checked_out: usize) -> Stats {
        let mut expected = self.stats;
        expected.idle = self.idle();
        expected.checked_out = checked_out as u64;
        expected
    }

    fn lease_units(&mut self, want: usize) -> usize {
        lease(&mut self.free, want)
    }

    /// Closes idle elements the pool gives up on.
    fn evict(&mut self, n: usize) {
        self.stats.evicted += n as u64;
        self.stats.closed += n as u64;
    }

    fn spill(&mut self, batch: Vec<usize>) {
        self.global.push_back((batch, self.trims));
    }

    fn validate(&mut self, id: usize) -> Verdict {
        if !self.validated {
            return Verdict::Accept;
        }
        let panics = self.validate_panics.contains(&id);
        if panics || self.invalid.contains(&id) {
            self.evict(1);
            self.stats.invalid += 1;
            return if panics {
                Verdict::Panic
            } else {
                Verdict::Refuse
            };
        }
        Verdict::Accept
    }

    fn generate(&mut self, fails: bool) -> Got {
        if fails {
            return Got::GeneratorFailed;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.stats.new += 1;
        self.stats.get += 1;
        Got::Element(id)
    }

    /// The next idle element: the list's newest, else the oldest batch moved into the list.
    fn take_idle(&mut self) -> Option<(usize, bool)> {
        if let Some(id) = self.list.pop() {
            return Some((id, false));
        }
        let (batch, _) = self.global.pop_front()?;
        let id = self.list.refill(batch, self.sizes, &mut self.free);
        id.map(|id| (id, true))
    }

    fn get(&mut self, generator_fails: bool) -> Got {
        if self.sizes.capacity == 0 {
            while let Some((mut batch, generation)) = self.global.pop_front() {
                let Some(id) = batch.pop() else { continue };
                self.free += 1;
                if !batch.is_empty() {
                    self.global.push_back((batch, generation));
                }
                match self.validate(id) {
                    Verdict::Accept => {
                        self.stats.get += 1;
                        self.stats.hits_global += 1;
                        return Got::Element(id);
                    }
                    Verdict::Refuse => {}
                    Verdict::Panic => return Got::ValidatorPanicked(id),
                }
            }
            return self.generate(generator_fails);
        }
        while let Some((id, from_global)) = self.take_idle() {
            match self.validate(id) {
                Verdict::Accept => {
                    self.stats.get += 1;
                    if from_global {
                        self.stats.hits_global += 1;
                    } else {
                        self.stats.hits_local += 1;
                    }
                    return Got::Element(id);
                }
                Verdict::Refuse => {}
                Verdict::Panic => return Got::ValidatorPanicked(id),
            }
        }
        let unneeded = self.list.lease - self.list.items.len();
        self.free += unneeded;
        self.list.lease = self.list.items.len();
        self.generate(generator_fails)
    }

    /// A `put` of `id` that the reset hook accepted.
    fn put(&mut self, id: usize) -> Put {
        if self.sizes.capacity == 0 {
            if self.lease_units(1) == 0 {
                self.stats.closed += 1;
                return Put::Closed;
            }
            self.spill(vec![id]);
            self.stats.put += 1;
            return Put::Kept;
        }
        let (gets, puts) = (self.stats.get, self.stats.put);
        let outcome = self.list.put(id, gets, puts, self.sizes, &mut self.free);
        if let Some(spilled) = outcome.spilled {
            self.spill(spilled);
        }
        if outcome.kept {
            self.stats.put += 1;
            Put::Kept
        } else {
            self.stats.closed += 1;
            Put::Closed
        }
    }

    /// `prefill(count)`; `fail_after`: the generator fails after that many elements.
    fn prefill(&mut self, count: usize, fail_after: Option<usize>) -> Result<usize, ()> {
        let units = self.lease_units(count);
        let mut created = 0;
        let mut failed = false;
        while created < units && !failed {
            let mut batch = Vec::new();
            while batch.len() < self.sizes.batch.min(units - created) {
                if fail_after == Some(created + batch.len()) {
                    failed = true;
                    break;
                }
                batch.push(self.next_id);
                self.next_id += 1;
            }
            created += batch.len();
            self.stats.new += batch.len() as u64;
            self.stats.prefilled += batch.len() as u64;
            if !batch.is_empty() {
                self.spill(batch);
            }
        }
        self.free += units - created;
        if failed { Err(()) } else { Ok(created) }
    }

    fn clear(&mut self) {
        let closing: usize = self.global.drain(..).map(|(b, _)| b.len()).sum();
        self.free += closing;
        self.evict(closing);
        // The calling thread's list catches up at once.
        let count = self.list.items.len();
        self.list.close_oldest(count, &mut self.free);
        self.evict(count);
    }

    fn trim(&mut self) {
        self.trims += 1;
        let mut kept = VecDeque::new();
        let mut closing = 0;
        for (batch, made) in self.global.drain(..) {
            if trim_closes(made, self.trims) {
                closing += batch.len();
            } else {
                kept.push_back((batch, made));
            }
        }
        self.global = kept;
        self.free += closing;
        // The list's oldest elements, below its low-water mark, sat unused since last time.
        let count = self.list.low_water.min(self.list.items.len());
        self.list.close_oldest(count, &mut self.free);
        let closing = closing + count;
        self.evict(closing);
        self.stats.trimmed += closing as u64;
    }

    fn close(&mut self) {
        self.stats.closed += 1;
    }

    fn detach(&mut self) {
        self.stats.detached += 1;
    }

    /// The budget's units, all accounted for.
    fn check_budget(&self) {
        let travelling: usize = self.global.iter().map(|(b, _)| b.len()).sum();
        assert_eq!(
            self.free + self.list.lease + travelling,
            self.sizes.pool_size,
            "{self:?}"
        );
        assert!(self.list.items.len() <= self.list.lease, "{self:?}");
    }
}

#[derive(Debug)]
enum JobError {
    Pool,
    Keep,
    Drop,
    PanicInDecider,
}

impl From<CachePoolGeneratorError> for JobError {
    fn from(_: CachePoolGeneratorError) -> Self {
        JobError::Pool
    }
}

fn decide(e: &JobError) -> bool {
    match e {
        JobError::Keep => true,
        JobError::Drop => false,
        JobError::PanicInDecider => inject(Site::Decider),
        JobError::Pool => panic!("the decider is not asked about generator failures"),
    }
}

/// Runs `ops` on a fresh pool (with a validator if `validated`) and on the model, comparing
/// after every step.
pub fn run_model(pool_size: usize, thread_capacity: usize, validated: bool, ops: &[Op]) {
    let _quiet = silence_injected_panics();
    let ledger = Ledger::new();
    let pool = if validated {
        validated_builder(&ledger)
    } else {
        builder(&ledger)
    }
    .pool_size(pool_size)
    .thread_capacity(thread_capacity)
    .build();
    let mut model = Model::new(pool_size, thread_capacity, validated);
    assert_eq!(pool.thread_capacity(), model.sizes.capacity);
    assert_eq!(pool.pool_size(), pool_size);
    let f = Fixture { pool, ledger };
    let wrapper = make_wrapper(&f.pool, decide);
    let mut held: Vec<Tracked> = Vec::new();

    for (step, op) in ops.iter().enumerate() {
        // Proptest prints the whole failing sequence; this says where in it things went wrong.
        let context = format!(
            "step {step} {op:?} (pool_size {pool_size}, thread_capacity {thread_capacity}, \
             validated {validated}), model before: {model:?}"
        );
        let idle_before = f.pool.stats().idle;
        let pick = |i: usize, held: &mut Vec<Tracked>| {
            (!held.is_empty()).then(|| {
                let n = held.len();
                held.remove(i % n)
            })
        };
        // Runs `f` expecting the injected panic at `site`.
        let panics_at = |site: Site, f: &mut dyn FnMut()| {
            let panic = catch_unwind(AssertUnwindSafe(f)).unwrap_err();
            assert_eq!(expect_injected(panic), site);
        };

        // The operations that check an element out: what the model says they get.
        let checks_out = matches!(
            op,
            Op::Get
                | Op::GetGeneratorFails
                | Op::CheckoutDrop
                | Op::OwnedCheckoutDrop
                | Op::CheckoutDiscard
                | Op::CheckoutDetach { .. }
                | Op::CheckoutUserPanics
                | Op::WrapperOk
                | Op::WrapperErrKept
                | Op::WrapperErrDropped
                | Op::WrapperJobPanics
                | Op::WrapperDeciderPanics
        );
        let fails = matches!(op, Op::GetGeneratorFails);
        let got = checks_out.then(|| model.get(fails));
        let expected = match got {
            Some(Got::Element(id)) => Some(id),
            _ => None,
        };
        if let Some(Got::ValidatorPanicked(_)) = got {
            // The checkout itself panics, before any user code sees an element.
            panics_at(Site::Validate, &mut || match op {
                Op::Get | Op::GetGeneratorFails => drop(f.pool.try_get()),
                Op::CheckoutDrop
                | Op::CheckoutDiscard
                | Op::CheckoutDetach { owned: false }
                | Op::CheckoutUserPanics => drop(f.pool.checkout()),
                Op::OwnedCheckoutDrop | Op::CheckoutDetach { owned: true } => {
                    drop(f.pool.checkout_owned())
                }
                _ => drop(wrapper.run(|_: &mut Tracked| Ok::<(), JobError>(()))),
            });
        } else {
            match op {
                Op::Get | Op::GetGeneratorFails => {
                    f.ledger.fail_next_generate(fails);
                    let got = f.try_take().ok();
                    f.ledger.fail_next_generate(false);
                    assert_eq!(got.as_ref().map(Tracked::id), expected, "{context}");
                    held.extend(got);
                }
                Op::Put(i) | Op::PutInvalid(i) | Op::PutValidatePanics(i) => {
                    if let Some(mut e) = pick(*i, &mut held) {
                        match op {
                            Op::PutInvalid(_) => {
                                e.invalid = true;
                                model.invalid.insert(e.id());
                            }
                            Op::PutValidatePanics(_) => {
                                e.panic_in_validate = true;
                                model.validate_panics.insert(e.id());
                            }
                            _ => {}
                        }
                        let outcome = model.put(e.id());
                        f.put(e);
                        // On one thread, a put is closed exactly when the pool is full.
                        let closed = f.pool.stats().idle == idle_before;
                        assert_eq!(closed, idle_before == pool_size, "{context}");
                        assert_eq!(closed, outcome == Put::Closed, "{context}");
                    }
                }
                Op::PutRefused(i) => {
                    if let Some(mut e) = pick(*i, &mut held) {
                        e.refuse = true;
                        model.close();
                        f.put(e);
                    }
                }
                Op::PutResetPanics(i) => {
                    if let Some(mut e) = pick(*i, &mut held) {
                        e.panic_in_reset = true;
                        model.close();
                        let mut e = Some(e);
                        panics_at(Site::Reset, &mut || f.put(e.take().unwrap()));
                    }
                }
                Op::Close(i) => {
                    if let Some(e) = pick(*i, &mut held) {
                        model.close();
                        f.close(e);
                    }
                }
                Op::CloseCallbackPanics(i) => {
                    if let Some(mut e) = pick(*i, &mut held) {
                        e.panic_in_close = true;
                        model.close();
                        let mut e = Some(e);
                        panics_at(Site::Close, &mut || f.close(e.take().unwrap()));
                    }
                }
                Op::CheckoutDrop | Op::CheckoutDiscard | Op::CheckoutDetach { owned: false } => {
                    let g = f.checkout();
                    assert_eq!(Some(g.id()), expected, "{context}");
                    match op {
                        Op::CheckoutDrop => {
                            model.put(g.id());
                            f.give_guard(g);
                        }
                        Op::CheckoutDiscard => {
                            model.close();
                            f.discard(g);
                        }
                        _ => {
                            model.detach();
                            drop(f.detach(g));
                        }
                    }
                }
                Op::OwnedCheckoutDrop | Op::CheckoutDetach { owned: true } => {
                    let g = f.checkout_owned();
                    assert_eq!(Some(g.id()), expected, "{context}");
                    if let Op::OwnedCheckoutDrop = op {
                        model.put(g.id());
                        f.ledger.give(&g);
                        drop(g);
                    } else {
                        model.detach();
                        let e = OwnedCheckout::detach(g);
                        f.ledger.detach(&e);
                    }
                }
                Op::CheckoutUserPanics => {
                    model.close();
                    panics_at(Site::UserCode, &mut || {
                        let g: Checkout<'_, Tracked> = f.checkout();
                        assert_eq!(Some(g.id()), expected);
                        f.ledger.give(&g);
                        inject(Site::UserCode);
                    });
                }
                Op::WrapperOk
                | Op::WrapperErrKept
                | Op::WrapperErrDropped
                | Op::WrapperJobPanics
                | Op::WrapperDeciderPanics => {
                    let ledger = Arc::clone(&f.ledger);
                    let outcome = op.clone();
                    let job = move |e: &mut Tracked| {
                        ledger.take(e);
                        assert_eq!(Some(e.id()), expected);
                        e.scratch = 3;
                        ledger.give(e);
                        match outcome {
                            Op::WrapperOk => Ok(()),
                            Op::WrapperErrKept => Err(JobError::Keep),
                            Op::WrapperErrDropped => Err(JobError::Drop),
                            Op::WrapperJobPanics => inject(Site::Job),
                            _ => Err(JobError::PanicInDecider),
                        }
                    };
                    match op {
                        Op::WrapperOk | Op::WrapperErrKept => {
                            model.put(expected.unwrap());
                            let _ = wrapper.run(job);
                        }
                        Op::WrapperErrDropped => {
                            model.close();
                            assert!(matches!(wrapper.run(job), Err(JobError::Drop)));
                        }
                        _ => {
                            let site = match op {
                                Op::WrapperJobPanics => Site::Job,
                                _ => Site::Decider,
                            };
                            model.close();
                            let mut job = Some(job);
                            panics_at(site, &mut || {
                                let _ = wrapper.run(job.take().unwrap());
                            });
                        }
                    }
                }
                Op::Prefill { count, fail_after } => {
                    if let Some(n) = fail_after {
                        f.ledger.fail_after(*n);
                    }
                    let result = f.pool.prefill(*count).map_err(|_| ());
                    f.ledger.fail_next_generate(false);
                    assert_eq!(result, model.prefill(*count, *fail_after), "{context}");
                }
                Op::Clear => {
                    model.clear();
                    f.pool.clear();
                }
                Op::Trim => {
                    model.trim();
                    f.pool.trim();
                }
                Op::Stats => assert_eq!(f.pool.stats(), f.pool.stats()),
            }
        }

        model.check_budget();
        let stats = f.pool.stats();
        assert_eq!(stats, model.expected_stats(held.len()), "{context}");
        let counts = f
            .ledger
            .check_quiet(&stats, pool_size)
            .unwrap_or_else(|e| panic!("{e}: {context}"));
        assert_eq!(counts.held, held.len(), "{context}");
        f.ledger.assert_no_violations();
    }

    // Everything given back, then the pool drops: each element closed exactly once.
    for mut e in held {
        e.panic_in_validate = false;
        f.put(e);
    }
    drop(wrapper);
    f.finish();
}

fn config() -> Config {
    Config {
        cases: scale(256, 6) as u32,
        // Where `proptest!` would put it: shrunk failures are saved in
        // `tests/proptest-regressions/model.txt` and replayed first. Miri cannot read or write
        // that file under isolation.
        source_file: Some(file!()),
        failure_persistence: if cfg!(miri) {
            None
        } else {
            Config::default().failure_persistence
        },
        ..Config::default()
    }
}

/// Runs `run_model` on each case `strategy` draws (as `proptest!` would, with shrinking and
/// the regressions file), then prints how much it checked.
fn check_against_model(name: &str, strategy: impl Strategy<Value = (usize, usize, bool, Vec<Op>)>) {
    let mut runner = TestRunner::new(config());
    let (cases, steps) = (Cell::new(0u64), Cell::new(0u64));
    let result = runner.run(&strategy, |(pool_size, thread_capacity, validated, ops)| {
        cases.set(cases.get() + 1);
        steps.set(steps.get() + ops.len() as u64);
        run_model(pool_size, thread_capacity, validated, &ops);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    println!(
        "model/{name}: {} cases, {} steps, each compared with the model",
        cases.get(),
        steps.get()
    );
}

/// Small pools (0 included) and lists (0 included: everything goes through the global
/// shard), with and without a validator, so spills, refills, closes on a spent budget,
/// prefill, clear and trim all happen.
#[test]
fn one_thread_pool_behaves_like_the_sequential_model() {
    let max = if cfg!(miri) { 24 } else { 120 };
    check_against_model(
        "every_operation",
        (
            0usize..=10,
            0usize..=6,
            any::<bool>(),
            prop::collection::vec(op(), 0..max),
        ),
    );
}

/// Larger pools with long sequences of plain gets and puts: deep lists, many batches.
#[test]
fn long_get_put_sequences_match_the_model() {
    let max = if cfg!(miri) { 40 } else { 400 };
    let get_or_put = prop_oneof![Just(Op::Get), any::<usize>().prop_map(Op::Put)];
    check_against_model(
        "long_get_put",
        (
            0usize..=64,
            0usize..=32,
            Just(false),
            prop::collection::vec(get_or_put, 0..max),
        ),
    );
}

/// Takes `n` elements, then gives them back in the order taken.
fn take_then_put(f: &Fixture, n: usize) -> Vec<usize> {
    let taken: Vec<Tracked> = (0..n).map(|_| f.take()).collect();
    let ids = taken.iter().map(Tracked::id).collect();
    taken.into_iter().for_each(|e| f.put(e));
    ids
}

#[test]
fn without_thread_lists_elements_come_back_oldest_first() {
    let f = Fixture::new(4, 0);
    assert_eq!(f.pool.thread_capacity(), 0);
    let ids = take_then_put(&f, 3);
    let (a, b) = (f.take(), f.take());
    // The global shard is a FIFO: no list keeps the warmest element on this thread.
    assert_eq!((a.id(), b.id()), (ids[0], ids[1]));
    let stats = f.quiet_stats();
    assert_stats!(stats, hits_global: 2, hits_local: 0, idle: 1);
    f.put(a);
    f.put(b);
    f.finish();
}

#[test]
fn a_full_list_spills_its_oldest_half_and_order_stays_newest_first() {
    let f = Fixture::new(16, 4);
    let ids = take_then_put(&f, 5); // the fifth put spills the two oldest
    let stats = f.quiet_stats();
    assert_stats!(stats, put: 5, idle: 5);
    let order = take_then_put(&f, 5);
    // Three from the list, newest first; then the spilled batch, newest first.
    assert_eq!(order, [ids[4], ids[3], ids[2], ids[1], ids[0]]);
    let stats = f.quiet_stats();
    assert_stats!(stats, hits_local: 4, hits_global: 1);
    f.finish();
}

#[test]
fn a_put_is_closed_exactly_when_idle_reaches_pool_size() {
    for thread_capacity in [0, 1, 2, 3] {
        let f = Fixture::new(3, thread_capacity);
        let taken: Vec<Tracked> = (0..5).map(|_| f.take()).collect();
        for (i, e) in taken.into_iter().enumerate() {
            f.put(e);
            let stats = f.quiet_stats();
            assert_eq!(stats.idle, (i + 1).min(3), "capacity {thread_capacity}");
            assert_eq!(stats.closed as usize, (i + 1).saturating_sub(3));
        }
        f.finish();
    }
}

#[test]
fn pool_size_zero_closes_every_put_and_creates_on_every_get() {
    let f = Fixture::new(0, 8);
    assert_eq!(f.pool.thread_capacity(), 0, "capped by pool_size");
    take_then_put(&f, 3);
    take_then_put(&f, 3);
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 6, put: 0, closed: 6, idle: 0);
    f.finish();
}

#[test]
fn thread_capacity_is_capped_by_pool_size() {
    let pool = CachePool::builder(|| 0u8)
        .pool_size(3)
        .thread_capacity(100)
        .build();
    assert_eq!(pool.thread_capacity(), 3);
    let default = CachePool::builder(|| 0u8).pool_size(5).build();
    assert!((1..=5).contains(&default.thread_capacity()));
}

/// Spells a sequence of operations compactly: `g` get, `gf` get with a failing generator, `p`
/// put, `pr` put refused, `prp` put whose reset panics, `pi` put of an element the validator
/// refuses, `pvp` one it panics on, `c` close, `ccp` close whose callback panics, `cd` checkout
/// dropped, `ocd` owned checkout dropped, `cx` discard, `dt`/`odt` detach (borrowed/owned),
/// `cup` user panic with a guard, `wok`/`wek`/`wed`/`wjp`/`wdp` wrapper Ok / Err kept / Err
/// dropped / job panics / decider panics, `pf<n>` prefill n (`pf<n>/<k>`: the generator fails
/// after k), `clr` clear, `trim`, `st` stats. Every put and close takes the first held element.
fn script(s: &str) -> Vec<Op> {
    s.split_whitespace()
        .map(|t| match t {
            "g" => Op::Get,
            "gf" => Op::GetGeneratorFails,
            "p" => Op::Put(0),
            "pr" => Op::PutRefused(0),
            "prp" => Op::PutResetPanics(0),
            "pi" => Op::PutInvalid(0),
            "pvp" => Op::PutValidatePanics(0),
            "c" => Op::Close(0),
            "ccp" => Op::CloseCallbackPanics(0),
            "cd" => Op::CheckoutDrop,
            "ocd" => Op::OwnedCheckoutDrop,
            "cx" => Op::CheckoutDiscard,
            "dt" => Op::CheckoutDetach { owned: false },
            "odt" => Op::CheckoutDetach { owned: true },
            "cup" => Op::CheckoutUserPanics,
            "wok" => Op::WrapperOk,
            "wek" => Op::WrapperErrKept,
            "wed" => Op::WrapperErrDropped,
            "wjp" => Op::WrapperJobPanics,
            "wdp" => Op::WrapperDeciderPanics,
            "clr" => Op::Clear,
            "trim" => Op::Trim,
            "st" => Op::Stats,
            prefill => {
                let spec = prefill.strip_prefix("pf").expect("unknown step");
                let (count, fail_after) = match spec.split_once('/') {
                    Some((n, k)) => (n.parse().unwrap(), Some(k.parse().unwrap())),
                    None => (spec.parse().unwrap(), None),
                };
                Op::Prefill { count, fail_after }
            }
        })
        .collect()
}

/// One `#[test]` per scenario, each running `script` on a fresh pool and on the model,
/// comparing after every step: `name: (pool_size, thread_capacity, validated) "steps";`.
macro_rules! scripted {
    ($(
        $(#[$doc:meta])*
        $name:ident: ($pool_size:expr, $thread_capacity:expr, $validated:expr) $steps:literal;
    )+) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                run_model($pool_size, $thread_capacity, $validated, &script($steps));
            }
        )+
    };
}

/// Scenarios that exercise one rule each through the model and the pool together; they stay
/// as regression tests whatever proptest draws.
mod scripted {
    use super::{run_model, script};

    scripted! {
        /// A refill hands the thread the batch's units and takes back its unused lease.
        a_refill_hands_over_the_batchs_units_and_takes_back_the_unused_lease:
            (8, 2, false) "g g g g p p p p g g g";
        /// No list: a get after the pool is full takes from the global shard.
        without_a_list_a_get_after_the_pool_is_full_takes_from_the_global_shard:
            (2, 0, false) "g g g p p p g p";
        /// A thread whose list runs dry gives back its whole unused lease.
        a_thread_whose_list_runs_dry_gives_back_its_whole_unused_lease:
            (6, 4, false) "g g g g p p p p c g g g g g p";
        /// A reset hook that panics, then one that refuses, with the budget spent.
        a_reset_hook_panicking_or_refusing_on_a_spent_budget_closes_the_element:
            (1, 1, false) "g g p prp g pr";
        /// Guards and wrappers on a pool that caches nothing.
        guards_and_wrappers_on_a_pool_that_caches_nothing_close_every_element:
            (0, 0, false) "cd wok wek cup st";
        /// Detached elements leave the books; owned guards come back like borrowed ones.
        detached_elements_leave_the_books_and_owned_guards_come_back_like_borrowed_ones:
            (3, 2, false) "ocd odt dt g p";
        /// The generator, failing, is never called while an element is idle.
        a_failing_generator_is_not_called_while_an_element_is_idle:
            (4, 2, false) "g p gf gf p";
        /// A full list spills its oldest element, not its newest: the spilled one comes back
        /// only after the list is empty.
        a_full_list_spills_its_oldest_which_comes_back_only_after_the_list_empties:
            (3, 2, false) "g g g p p p cx g";
        /// The validator refuses an idle element: closed as invalid, the next one is tried.
        an_idle_element_the_validator_refuses_is_closed_and_the_next_one_tried:
            (4, 2, true) "g g g p pi p g g g";
        /// The validator panics: its element is closed, the pool keeps working.
        a_validator_panicking_closes_its_element_and_the_pool_keeps_working:
            (4, 2, true) "g g pvp p g g g p";
        /// Validation also runs for elements passing through the global shard.
        validation_runs_for_elements_passing_through_the_global_shard:
            (3, 0, true) "g g g pi p pvp g g g";
        /// Prefill stops at the budget; with the budget spent, it calls no generator (not
        /// even a failing one).
        prefill_stops_at_the_budget:
            (5, 2, false) "pf9 g g p p pf3/1 g";
        /// A prefill whose generator fails at once returns the error and keeps no unit of the
        /// budget: the next prefill fills it.
        a_prefill_failing_at_once_returns_the_error_and_leaves_the_budget_whole:
            (5, 0, true) "pf2/0 pf4 g";
        /// Clear closes the global shard and this thread's list; the budget comes back whole.
        clear_closes_the_global_shard_and_the_list_and_the_budget_comes_back_whole:
            (6, 2, false) "g g g g g p p p p p clr g g p p";
        /// Trim closes only what sat unused through a whole period.
        trim_closes_only_what_sat_unused_through_a_whole_period:
            (8, 4, false) "g g g g g g p p p p p p trim g p trim trim g g";
        /// Without a list, trim closes the global shard's batches two trims old.
        without_a_list_trim_closes_the_batches_two_trims_old:
            (6, 0, false) "pf4 trim g trim trim g";
        /// A batch made just before a trim survives it: batches one generation old stay.
        a_batch_made_just_before_a_trim_survives_it:
            (1, 0, false) "pf1 trim";
        /// A checkout lowers the low-water mark: the element checked out and given back
        /// since the last trim survives this one.
        an_element_used_since_the_last_trim_survives_the_next:
            (2, 2, false) "g cd p cd trim";
    }
}
