//! The shelf: the heavy elements of a pool with a weight budget, kept apart from the light
//! ones in the thread lists and the global shard.
//!
//! An element that weighs more than a light element may (see [`crate::budget`]) comes here
//! when it is given back, with its weight. The heavy elements serve the requests that ask for
//! them ([`CachePool::get_at_least`](crate::CachePool::get_at_least)); a plain checkout takes
//! one only in a pool where heavy elements are the common case (see `Shared::lend_heavy`).
//! Heavy elements are the rare ones, so one lock over a short list serves them.

use crate::sync::Mutex;
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// A heavy idle element.
pub(crate) struct Shelved<T> {
    pub(crate) element: T,
    /// What the weigher said when the element was given back.
    pub(crate) weight: usize,
    /// The pool's trim count when the element came here (see `Batch::trims`).
    pub(crate) trims: u64,
}

/// The heavy idle elements of a pool, oldest first.
pub(crate) struct Shelf<T> {
    entries: Mutex<Vec<Shelved<T>>>,
    /// How many elements have come to the shelf so far. Relaxed: a count for a heuristic.
    shelved: AtomicU64,
}

impl<T> Shelf<T> {
    /// An empty shelf.
    pub(crate) fn new() -> Self {
        Shelf {
            entries: Mutex::new(Vec::new()),
            shelved: AtomicU64::new(0),
        }
    }

    /// The entries, whatever a panic left them as: every change below is a single push or
    /// remove, complete or not done.
    fn entries(&self) -> crate::sync::MutexGuard<'_, Vec<Shelved<T>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an element (its unit and weight already leased).
    pub(crate) fn push(&self, shelved: Shelved<T>) {
        self.entries().push(shelved);
        self.shelved.fetch_add(1, Relaxed);
    }

    /// How many elements have come to the shelf since the pool was built.
    pub(crate) fn shelved(&self) -> u64 {
        self.shelved.load(Relaxed)
    }

    /// Takes the lightest element that weighs at least `at_least`, the newest of equals.
    pub(crate) fn take(&self, at_least: usize) -> Option<Shelved<T>> {
        let mut entries = self.entries();
        let (at, _) = entries
            .iter()
            .enumerate()
            .filter(|(_, shelved)| shelved.weight >= at_least)
            .min_by_key(|&(at, shelved)| (shelved.weight, usize::MAX - at))?;
        Some(entries.remove(at))
    }

    /// The weights of the elements on the shelf now.
    #[cfg(all(test, loom))]
    pub(crate) fn weights(&self) -> Vec<usize> {
        self.entries()
            .iter()
            .map(|shelved| shelved.weight)
            .collect()
    }

    /// Takes every element `pick` chooses.
    pub(crate) fn take_where(&self, pick: impl Fn(&Shelved<T>) -> bool) -> Vec<Shelved<T>> {
        let mut entries = self.entries();
        let (taken, kept) = std::mem::take(&mut *entries).into_iter().partition(pick);
        *entries = kept;
        taken
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Shelf, Shelved};

    fn shelved(weight: usize) -> Shelved<usize> {
        Shelved {
            element: weight,
            weight,
            trims: 0,
        }
    }

    #[test]
    fn take_finds_the_lightest_that_is_heavy_enough() {
        let shelf = Shelf::new();
        for weight in [30, 10, 20, 20] {
            shelf.push(shelved(weight));
        }
        assert_eq!(shelf.take(15).map(|s| s.weight), Some(20));
        assert_eq!(shelf.take(31).map(|s| s.weight), None);
        assert_eq!(shelf.take(0).map(|s| s.weight), Some(10));
        let heavy = shelf.take_where(|s| s.weight > 25);
        assert_eq!(heavy.len(), 1);
        assert_eq!(shelf.take_where(|_| true).len(), 1);
        assert!(shelf.take(0).is_none());
    }
}
