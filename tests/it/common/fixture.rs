//! Pools of [`Tracked`] wired to a ledger, and the user's side of the ledger: every way of
//! taking an element out and giving it back, each recorded before the pool sees the element.

use std::sync::Arc;

use cachepool::{Builder, CachePool, Checkout, OwnedCheckout, Stats};

use super::{Counts, Ledger, Tracked};

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
