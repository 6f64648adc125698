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
//!
//! A pool with a weight budget ([`Builder::max_idle_weight`](crate::Builder::max_idle_weight))
//! keeps a second counter, of weight. Each unit leased for a light element (one that weighs at
//! most [`WeightBudget::per_unit`]) reserves `per_unit` of weight along with it, so the light
//! elements idle weigh at most what their units reserved; a heavy element reserves one unit and
//! its exact weight. Both counters are written only where the first one is, off the hot path,
//! so the weight of everything idle never exceeds the weight budget either.

use crate::sync::{AtomicUsize, Ordering::Relaxed};

/// The free units of a pool's budget (kept on cache lines of its own by the pool).
pub(crate) struct Budget {
    /// Units not leased to any thread and not held by the global shard.
    ///
    /// All accesses are `Relaxed`: the counter publishes no memory (elements travel through the
    /// channel, which synchronises on its own), and read-modify-writes of one location are
    /// totally ordered whatever their ordering, which is all the sum invariant needs. The same
    /// holds for the weight counter.
    free: AtomicUsize,
    /// The weight budget, for a pool with a weigher.
    weight: Option<WeightBudget>,
}

/// The weight side of a pool's budget: weight not reserved by a leased unit or a heavy
/// element. Invariant: `free + per_unit * (units leased or in the global shard) + (weight of
/// the heavy elements idle) == max_idle_weight`.
pub(crate) struct WeightBudget {
    free: AtomicUsize,
    /// The weight one unit reserves, and the most a light element weighs:
    /// `max_idle_weight / pool_size`.
    pub(crate) per_unit: usize,
}

impl Budget {
    /// A budget of `pool_size` free units, and of `max_idle_weight` for a weighed pool.
    pub(crate) fn new(pool_size: usize, max_idle_weight: Option<usize>) -> Self {
        Budget {
            free: AtomicUsize::new(pool_size),
            weight: max_idle_weight.map(|max| WeightBudget {
                free: AtomicUsize::new(max),
                per_unit: weight_per_unit(max, pool_size),
            }),
        }
    }

    /// Takes up to `want` units, with the weight they reserve in a weighed pool; returns how
    /// many it took (0 when the budget is spent).
    pub(crate) fn lease(&self, want: usize) -> usize {
        let units = take_up_to(&self.free, want, 1);
        let Some(weight) = &self.weight else {
            return units;
        };
        let covered = match weight.per_unit {
            0 => units,
            per_unit => take_up_to(&weight.free, units, per_unit),
        };
        if covered < units {
            self.free.fetch_add(units - covered, Relaxed);
        }
        covered
    }

    /// Gives `units` back, with the weight they reserved.
    pub(crate) fn release(&self, units: usize) {
        if units > 0 {
            self.free.fetch_add(units, Relaxed);
            if let Some(weight) = &self.weight {
                weight.free.fetch_add(units * weight.per_unit, Relaxed);
            }
        }
    }

    /// Takes one unit and exactly `weight` of the weight budget, for a heavy element; whether
    /// it could (it takes nothing if not).
    pub(crate) fn lease_heavy(&self, weight: usize) -> bool {
        let Some(budget) = &self.weight else {
            return false;
        };
        if take_up_to(&self.free, 1, 1) == 0 {
            return false;
        }
        if take_up_to(&budget.free, 1, weight) == 1 {
            return true;
        }
        self.free.fetch_add(1, Relaxed);
        false
    }

    /// Gives back what [`lease_heavy`](Self::lease_heavy) took for an element of `weight`.
    pub(crate) fn release_heavy(&self, weight: usize) {
        self.free.fetch_add(1, Relaxed);
        if let Some(budget) = &self.weight {
            budget.free.fetch_add(weight, Relaxed);
        }
    }

    /// The weight budget, if the pool has one.
    pub(crate) fn weight(&self) -> Option<&WeightBudget> {
        self.weight.as_ref()
    }

    /// The units free right now (a snapshot; exact only on a quiet pool).
    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        self.free.load(Relaxed)
    }

    /// The weight free right now (a snapshot; exact only on a quiet pool).
    #[cfg(test)]
    pub(crate) fn weight_free(&self) -> usize {
        self.weight
            .as_ref()
            .map_or(0, |weight| weight.free.load(Relaxed))
    }
}

/// The weight a unit stands for, and the most a light element weighs: `max_idle_weight /
/// pool_size` (0 in a pool of no elements).
pub(crate) fn weight_per_unit(max_idle_weight: usize, pool_size: usize) -> usize {
    max_idle_weight.checked_div(pool_size).unwrap_or(0)
}

/// Takes `step` from `counter` up to `want` times, as many as it holds; returns how many.
fn take_up_to(counter: &AtomicUsize, want: usize, step: usize) -> usize {
    let mut free = counter.load(Relaxed);
    loop {
        let take = want.min(free / step.max(1));
        if take == 0 {
            return 0;
        }
        match counter.compare_exchange_weak(free, free - take * step, Relaxed, Relaxed) {
            Ok(_) => return take,
            Err(now) => free = now,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Budget;

    #[test]
    fn lease_takes_at_most_what_is_free() {
        let budget = Budget::new(5, None);
        assert_eq!(budget.lease(3), 3);
        assert_eq!(budget.lease(3), 2);
        assert_eq!(budget.lease(1), 0);
        budget.release(4);
        assert_eq!(budget.free(), 4);
        assert_eq!(budget.lease(0), 0);
    }

    #[test]
    fn a_weighed_lease_reserves_weight_per_unit() {
        // 4 units of 25 each; a heavy element takes one unit and its exact weight.
        let budget = Budget::new(4, Some(100));
        assert_eq!(budget.lease(2), 2);
        assert_eq!(budget.weight_free(), 50);
        assert!(budget.lease_heavy(40));
        assert_eq!((budget.free(), budget.weight_free()), (1, 10));
        assert!(!budget.lease_heavy(11), "not enough weight: nothing taken");
        assert_eq!((budget.free(), budget.weight_free()), (1, 10));
        assert_eq!(budget.lease(1), 0, "a unit needs 25 of weight");
        assert_eq!(budget.free(), 1);
        budget.release_heavy(40);
        assert_eq!(budget.lease(3), 2, "two units and their weight are free");
        budget.release(4);
        assert_eq!((budget.free(), budget.weight_free()), (4, 100));
        let unweighted = Budget::new(2, None);
        assert!(!unweighted.lease_heavy(1));
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
            let budget = Arc::new(Budget::new(POOL_SIZE, None));
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

    /// Weight units under concurrent leases and releases: one thread leases 3 light units (10
    /// of weight each) while another leases a heavy element of 25, on a budget of 4 units and
    /// 40 of weight, so that they cannot both have all they ask for. In every interleaving the
    /// weight held (10 per light unit, 25 for the heavy one) never exceeds 40, the units never
    /// exceed 4, and both come back whole.
    #[test]
    fn weight_units_never_exceed_the_weight_budget() {
        loom::model(|| {
            const POOL_SIZE: usize = 4;
            const MAX_WEIGHT: usize = 40;
            let budget = Arc::new(Budget::new(POOL_SIZE, Some(MAX_WEIGHT)));
            let units = Arc::new(AtomicUsize::new(0));
            let weight = Arc::new(AtomicUsize::new(0));
            let hold = |units: &AtomicUsize, weight: &AtomicUsize, n: usize, w: usize| {
                let held = units.fetch_add(n, SeqCst) + n;
                let heavy = weight.fetch_add(w, SeqCst) + w;
                assert!(held <= POOL_SIZE, "{held} units held");
                assert!(heavy <= MAX_WEIGHT, "{heavy} of weight held");
                units.fetch_sub(n, SeqCst);
                weight.fetch_sub(w, SeqCst);
            };
            let light: Vec<_> = (0..1)
                .map(|_| {
                    let (budget, units, weight) =
                        (Arc::clone(&budget), Arc::clone(&units), Arc::clone(&weight));
                    loom::thread::spawn(move || {
                        let got = budget.lease(3);
                        hold(&units, &weight, got, got * 10);
                        budget.release(got);
                    })
                })
                .collect();
            let heavy = {
                let (budget, units, weight) =
                    (Arc::clone(&budget), Arc::clone(&units), Arc::clone(&weight));
                loom::thread::spawn(move || {
                    if budget.lease_heavy(25) {
                        hold(&units, &weight, 1, 25);
                        budget.release_heavy(25);
                    }
                })
            };
            for t in light.into_iter().chain([heavy]) {
                t.join().unwrap();
            }
            assert_eq!(
                (budget.free(), budget.weight_free()),
                (POOL_SIZE, MAX_WEIGHT)
            );
        });
    }
}
