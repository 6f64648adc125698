//! The shared `pool_size` budget, leased to threads in batches.
//!
//! Every idle element owns one unit of budget. A unit is in exactly one of three places: free
//! (counted here), leased to a thread (its [`LocalList::lease`](crate::local::LocalList)), or
//! travelling with an element through the global shard. Their sum is `pool_size`, so the number
//! of idle elements, which never exceeds the units leased plus the units in the global shard,
//! never exceeds `pool_size` either.
//!
//! Threads take units in batches, so the shared counter below is written once per batch rather
//! than once per `put`.

use crate::sync::{AtomicUsize, Ordering::Relaxed};

/// The free units of a pool's budget (kept on cache lines of its own by the pool).
pub(crate) struct Budget {
    /// Units not leased to any thread and not held by the global shard.
    ///
    /// All accesses are `Relaxed`: the counter publishes no memory (elements travel through the
    /// channel, which synchronises on its own), and read-modify-writes of one location are
    /// totally ordered whatever their ordering, which is all the sum invariant needs.
    free: AtomicUsize,
}

impl Budget {
    /// A budget of `pool_size` free units.
    pub(crate) fn new(pool_size: usize) -> Self {
        Budget {
            free: AtomicUsize::new(pool_size),
        }
    }

    /// Takes up to `want` units; returns how many it took (0 when the budget is spent).
    pub(crate) fn lease(&self, want: usize) -> usize {
        let mut free = self.free.load(Relaxed);
        loop {
            let take = want.min(free);
            if take == 0 {
                return 0;
            }
            match self
                .free
                .compare_exchange_weak(free, free - take, Relaxed, Relaxed)
            {
                Ok(_) => return take,
                Err(now) => free = now,
            }
        }
    }

    /// Gives `units` back.
    pub(crate) fn release(&self, units: usize) {
        if units > 0 {
            self.free.fetch_add(units, Relaxed);
        }
    }

    /// The units free right now (a snapshot; exact only on a quiet pool).
    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        self.free.load(Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Budget;

    #[test]
    fn lease_takes_at_most_what_is_free() {
        let budget = Budget::new(5);
        assert_eq!(budget.lease(3), 3);
        assert_eq!(budget.lease(3), 2);
        assert_eq!(budget.lease(1), 0);
        budget.release(4);
        assert_eq!(budget.free(), 4);
        assert_eq!(budget.lease(0), 0);
    }
}

/// Model-checks the lease protocol: `scripts/loom.sh budget`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::Budget;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// Three threads lease and give back concurrently, as threads do on spill, refill and
    /// exit; in every interleaving the units they hold plus the free units equal the pool
    /// size, so no unit is created or lost, and the held units never exceed it.
    #[test]
    fn concurrent_leases_never_exceed_the_pool_size() {
        loom::model(|| {
            const POOL_SIZE: usize = 3;
            let budget = Arc::new(Budget::new(POOL_SIZE));
            let held = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..3)
                .map(|i| {
                    let (budget, held) = (Arc::clone(&budget), Arc::clone(&held));
                    loom::thread::spawn(move || {
                        let got = budget.lease(1 + i % 2);
                        let now = held.fetch_add(got, SeqCst) + got;
                        assert!(now <= POOL_SIZE, "{now} units held of {POOL_SIZE}");
                        held.fetch_sub(got, SeqCst);
                        budget.release(got);
                        got
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(budget.free(), POOL_SIZE);
        });
    }
}
