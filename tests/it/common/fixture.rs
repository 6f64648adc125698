//! Pools of [`Tracked`] wired to a ledger, and the user's side of the ledger: every way of
//! taking an element out and giving it back, each recorded before the pool sees the element.

use std::sync::Arc;

use cachepool::{
    Builder, CachePool, CachePoolGeneratorError, Checkout, NoReset, OwnedCheckout, Reset, Stats,
};

use super::{Counts, Ledger, Tracked};

/// A builder for a pool of [`Tracked`] whose generator (fallible) and close callback record
/// into `ledger`, with no reset hook: for a test that chooses its own.
pub fn builder_without_reset(ledger: &Arc<Ledger>) -> Builder<Tracked> {
    let (g, c) = (Arc::clone(ledger), Arc::clone(ledger));
    CachePool::try_builder(move || g.generate()).close_callback(move |e| c.close(e))
}

/// [`builder_without_reset`] plus the ledger's reset hook, as a closure.
pub fn builder(ledger: &Arc<Ledger>) -> Builder<Tracked> {
    let r = Arc::clone(ledger);
    builder_without_reset(ledger).reset(move |e| r.reset(e))
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

/// The user's side of the ledger, on a pool of [`Tracked`] with any reset type.
pub trait UserOps {
    /// The pool's reset type.
    type Reset: Reset<Tracked>;

    fn ledger(&self) -> &Arc<Ledger>;
    fn pool(&self) -> &CachePool<Tracked, Self::Reset>;

    fn take(&self) -> Tracked {
        let e = self.pool().get();
        self.ledger().take(&e);
        e
    }

    fn try_take(&self) -> Result<Tracked, CachePoolGeneratorError> {
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

    fn checkout(&self) -> Checkout<'_, Tracked, Self::Reset> {
        let g = self.pool().checkout();
        self.ledger().take(&g);
        g
    }

    fn checkout_owned(&self) -> OwnedCheckout<Tracked, Self::Reset> {
        let g = self.pool().checkout_owned();
        self.ledger().take(&g);
        g
    }
}

/// A pool and its ledger, for the tests that work on one of each; a clone is another handle
/// on both.
#[derive(Clone)]
pub struct Fixture<R = NoReset> {
    pub pool: CachePool<Tracked, R>,
    pub ledger: Arc<Ledger>,
}

/// A clone of a [`Fixture`] for a worker thread: the pool and the ledger are shared.
pub type Handle<R = NoReset> = Fixture<R>;

impl Fixture {
    /// A pool from [`tracked_pool`] and its ledger.
    pub fn new(pool_size: usize, thread_capacity: usize) -> Fixture {
        let (pool, ledger) = tracked_pool(pool_size, thread_capacity);
        Fixture { pool, ledger }
    }
}

impl<R: Reset<Tracked>> Fixture<R> {
    /// Gives a borrowing guard's element back by dropping the guard.
    pub fn give_guard(&self, g: Checkout<'_, Tracked, R>) {
        self.ledger.give(&g);
        drop(g);
    }

    pub fn discard(&self, g: Checkout<'_, Tracked, R>) {
        self.ledger.give(&g);
        Checkout::discard(g);
    }

    pub fn detach(&self, g: Checkout<'_, Tracked, R>) -> Tracked {
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

impl<R: Reset<Tracked>> UserOps for Fixture<R> {
    type Reset = R;

    fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }
    fn pool(&self) -> &CachePool<Tracked, R> {
        &self.pool
    }
}
