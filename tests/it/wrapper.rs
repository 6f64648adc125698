//! Each row of the `CacheWrapper` table (src/wrapper.rs), and that no panic poisons the pool.
//!
//! | the closure | the element | the caller gets |
//! |---|---|---|
//! | returns `Ok` | goes back to the pool | the `Ok` value |
//! | returns `Err(e)`, decider says `true` | goes back to the pool | `Err(e)`, unchanged |
//! | returns `Err(e)`, decider says `false` (or no decider) | is closed | `Err(e)`, unchanged |
//! | panics, or the decider panics | is closed | the panic |

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;

use cachepool::{CachePoolGeneratorError, CacheWrapper, ReuseDecider, make_wrapper};

use crate::common::{
    Fixture, Ledger, Site, State, Tracked, UserOps, assert_stats, expect_injected, inject,
    silence_injected_panics,
};

#[derive(Debug, PartialEq, Eq)]
enum JobError {
    /// The pool's generator failed: no element existed.
    Pool,
    /// Bad input: the element is fine.
    Retry(u32),
    /// The element may be broken.
    Broken(u32),
}

impl From<CachePoolGeneratorError> for JobError {
    fn from(_: CachePoolGeneratorError) -> Self {
        JobError::Pool
    }
}

/// A decider that keeps elements after `Retry`, and counts how often it was asked.
struct CountingDecider(Rc<Cell<u32>>);

// The tests using it run on one thread; `Cell` keeps the count without atomics.
impl ReuseDecider<JobError> for CountingDecider {
    fn reuse(&self, error: &JobError) -> bool {
        self.0.set(self.0.get() + 1);
        matches!(error, JobError::Retry(_))
    }
}

/// Runs a job on `wrapper` that records the element it saw and ends with `outcome`.
fn run_recorded<D: ReuseDecider<JobError>>(
    wrapper: &CacheWrapper<Tracked, D>,
    ledger: &Arc<Ledger>,
    outcome: Result<u32, JobError>,
) -> (Result<u32, JobError>, usize) {
    let mut seen = None;
    let result = wrapper.run(|e: &mut Tracked| {
        ledger.take(e);
        e.scratch = 9;
        seen = Some(e.id());
        ledger.give(e);
        outcome
    });
    (result, seen.expect("the job ran"))
}

#[test]
fn ok_gives_the_element_back_and_the_value_to_the_caller() {
    let f = Fixture::new(16, 4);
    let asked = Rc::new(Cell::new(0));
    let wrapper = make_wrapper(&f.pool, CountingDecider(asked.clone()));
    let (result, id) = run_recorded(&wrapper, &f.ledger, Ok(42));
    assert_eq!(result, Ok(42));
    assert_eq!(f.ledger.state_of(id), State::InPool);
    assert_eq!(asked.get(), 0, "the decider is only asked about errors");
    let (_, again) = run_recorded(&wrapper, &f.ledger, Ok(0));
    assert_eq!(again, id, "the element came back and is reused");
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 1, put: 2, closed: 0);
    drop(wrapper);
    f.finish();
}

#[test]
fn err_the_decider_keeps_gives_the_element_back_and_the_error_unchanged() {
    let f = Fixture::new(16, 4);
    let asked = Rc::new(Cell::new(0));
    let wrapper = make_wrapper(&f.pool, CountingDecider(asked.clone()));
    let (result, id) = run_recorded(&wrapper, &f.ledger, Err(JobError::Retry(7)));
    assert_eq!(result, Err(JobError::Retry(7)));
    assert_eq!(asked.get(), 1);
    assert_eq!(f.ledger.state_of(id), State::InPool);
    let stats = f.quiet_stats();
    assert_stats!(stats, put: 1, closed: 0, idle: 1);
    drop(wrapper);
    f.finish();
}

#[test]
fn err_the_decider_refuses_closes_the_element_and_returns_the_error_unchanged() {
    let f = Fixture::new(16, 4);
    let asked = Rc::new(Cell::new(0));
    let wrapper = make_wrapper(&f.pool, CountingDecider(asked.clone()));
    let (result, id) = run_recorded(&wrapper, &f.ledger, Err(JobError::Broken(3)));
    assert_eq!(result, Err(JobError::Broken(3)));
    assert_eq!(asked.get(), 1);
    assert_eq!(f.ledger.state_of(id), State::Closed);
    let stats = f.quiet_stats();
    assert_stats!(stats, put: 0, closed: 1, idle: 0);
    drop(wrapper);
    f.finish();
}

#[test]
fn err_without_a_decider_closes_the_element() {
    let f = Fixture::new(16, 4);
    let wrapper = CacheWrapper::new(&f.pool);
    let (result, id) = run_recorded(&wrapper, &f.ledger, Err(JobError::Retry(1)));
    assert_eq!(result, Err(JobError::Retry(1)));
    assert_eq!(f.ledger.state_of(id), State::Closed, "NeverReuse closes");
    drop(wrapper);
    f.finish();
}

#[test]
fn panicking_job_closes_the_element_and_propagates() {
    let _quiet = silence_injected_panics();
    let f = Fixture::new(16, 4);
    let asked = Rc::new(Cell::new(0));
    let wrapper = make_wrapper(&f.pool, CountingDecider(asked.clone()));
    let ledger = f.ledger.clone();
    let mut seen = None;
    let panic = catch_unwind(AssertUnwindSafe(|| {
        wrapper.run(|e: &mut Tracked| -> Result<(), JobError> {
            ledger.take(e);
            seen = Some(e.id());
            ledger.give(e);
            inject(Site::Job)
        })
    }))
    .unwrap_err();
    assert_eq!(expect_injected(panic), Site::Job);
    assert_eq!(f.ledger.state_of(seen.unwrap()), State::Closed);
    assert_eq!(asked.get(), 0, "a panic is not an error to decide on");
    // Not poisoned: the wrapper and the pool keep working.
    let (result, id) = run_recorded(&wrapper, &f.ledger, Ok(5));
    assert_eq!(result, Ok(5));
    assert_ne!(Some(id), seen);
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 2, closed: 1, put: 1);
    drop(wrapper);
    f.finish();
}

#[test]
fn panicking_decider_closes_the_element_and_propagates() {
    let _quiet = silence_injected_panics();
    let f = Fixture::new(16, 4);
    let wrapper = make_wrapper(&f.pool, |e: &JobError| -> bool {
        if matches!(e, JobError::Broken(_)) {
            inject(Site::Decider)
        }
        true
    });
    let panic = catch_unwind(AssertUnwindSafe(|| {
        run_recorded(&wrapper, &f.ledger, Err(JobError::Broken(0)))
    }))
    .unwrap_err();
    assert_eq!(expect_injected(panic), Site::Decider);
    let stats = f.quiet_stats();
    assert_stats!(stats, new: 1, closed: 1, idle: 0);
    // Not poisoned.
    let (result, _) = run_recorded(&wrapper, &f.ledger, Err(JobError::Retry(2)));
    assert_eq!(result, Err(JobError::Retry(2)));
    assert_eq!(f.quiet_stats().idle, 1);
    drop(wrapper);
    f.finish();
}

#[test]
fn try_run_hands_a_generator_failure_to_the_caller_converted_without_asking_the_decider() {
    let f = Fixture::new(16, 4);
    let asked = Rc::new(Cell::new(0));
    let wrapper = make_wrapper(&f.pool, CountingDecider(asked.clone()));
    f.ledger.fail_next_generate(true);
    let ran = Cell::new(false);
    let result = wrapper.try_run(|_: &mut Tracked| {
        ran.set(true);
        Ok::<u32, JobError>(1)
    });
    assert_eq!(result, Err(JobError::Pool));
    assert!(!ran.get(), "no element, no job");
    assert_eq!(asked.get(), 0);
    assert_eq!(f.pool.stats(), cachepool::Stats::default());
    // Once the generator works again, `try_run` runs the job as `run` does.
    f.ledger.fail_next_generate(false);
    let (result, id) = {
        let ledger = Arc::clone(&f.ledger);
        let result = wrapper.try_run(|e: &mut Tracked| {
            ledger.take(e);
            ledger.give(e);
            Ok::<usize, JobError>(e.id())
        });
        let id = *result.as_ref().unwrap();
        (result, id)
    };
    assert_eq!(result, Ok(id));
    assert_eq!(f.ledger.state_of(id), State::InPool);
    drop(wrapper);
    f.finish();
}

#[test]
fn run_panics_like_get_when_the_generator_fails_and_the_pool_still_works() {
    let f = Fixture::new(16, 4);
    let asked = Rc::new(Cell::new(0));
    let wrapper = make_wrapper(&f.pool, CountingDecider(asked.clone()));
    f.ledger.fail_next_generate(true);
    let ran = Cell::new(false);
    let panic = catch_unwind(AssertUnwindSafe(|| {
        wrapper.run(|_: &mut Tracked| {
            ran.set(true);
            Ok::<u32, JobError>(1)
        })
    }))
    .unwrap_err();
    let message = panic
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("the pool's generator failed to create an element"),
        "{message}"
    );
    assert!(!ran.get(), "no element, no job");
    assert_eq!(asked.get(), 0);
    assert_eq!(f.pool.stats(), cachepool::Stats::default());
    f.ledger.fail_next_generate(false);
    let (result, id) = run_recorded(&wrapper, &f.ledger, Ok(3));
    assert_eq!(result, Ok(3));
    assert_eq!(f.ledger.state_of(id), State::InPool);
    drop(wrapper);
    f.finish();
}

/// `run` takes the job's own error type: no conversion from the pool's error is needed on a
/// pool that cannot fail.
#[test]
fn run_takes_any_error_type_on_an_infallible_pool() {
    let pool = cachepool::CachePool::new(|| String::with_capacity(16));
    let wrapper = make_wrapper(&pool, |_: &std::num::ParseIntError| true);
    assert_eq!(
        wrapper.run(|s| "17".parse::<u32>().map(|n| n + s.len() as u32)),
        Ok(17)
    );
    let failed = wrapper.run(|s| {
        s.push_str("kept");
        "x".parse::<u32>()
    });
    assert!(failed.is_err());
    // The decider kept the element after the parse error: the next job gets it as it was.
    assert_eq!(
        wrapper
            .run(|s| Ok::<_, std::num::ParseIntError>(s.clone()))
            .unwrap(),
        "kept"
    );
    let stats = pool.stats();
    assert_stats!(stats, new: 1, put: 3, closed: 0);
}

#[test]
fn wrapper_clones_share_one_pool() {
    let f = Fixture::new(16, 4);
    let a = make_wrapper(&f.pool, |_: &JobError| true);
    let b = a.clone();
    let (_, ida) = run_recorded(&a, &f.ledger, Ok(1));
    let (_, idb) = run_recorded(&b, &f.ledger, Ok(1));
    assert_eq!(ida, idb);
    assert_eq!(b.pool().stats().new, 1);
    drop((a, b));
    f.finish();
}

#[test]
fn wrapper_keeps_the_pool_alive_and_closes_idle_elements_when_last() {
    let f = Fixture::new(16, 4);
    let wrapper = CacheWrapper::new(&f.pool);
    let Fixture { pool, ledger } = f;
    drop(pool);
    let (_, id) = run_recorded(&wrapper, &ledger, Ok(1));
    assert_eq!(ledger.state_of(id), State::InPool);
    drop(wrapper);
    assert_eq!(ledger.state_of(id), State::Closed);
    ledger.assert_all_accounted_for();
}

#[test]
fn a_wrapper_run_inside_a_checkout_gets_another_element() {
    let f = Fixture::new(16, 4);
    let wrapper = CacheWrapper::new(&f.pool);
    let g = f.checkout();
    let (_, id) = run_recorded(&wrapper, &f.ledger, Ok(0));
    assert_ne!(id, g.id());
    f.give_guard(g);
    drop(wrapper);
    f.finish();
}
