//! Statistics: counters kept in each shard by its owner, added up only when read.

use std::fmt;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Defines [`Stats`] and everything that follows its fields: its `Display`, the per-shard
/// counters [`ShardStats`] and their adding-up. Each field is `counted` (a counter in every
/// shard, bumped where the event happens) or `derived` (computed from the counters by
/// [`Stats::derive`]), so a new metric is one line in the table and the call that counts it.
macro_rules! stats_table {
    (
        $(#[$struct_attr:meta])*
        pub struct Stats {
            $( $(#[$field_attr:meta])* $kind:ident $name:ident: $ty:ty, )*
        }
    ) => {
        $(#[$struct_attr])*
        pub struct Stats {
            $( $(#[$field_attr])* pub $name: $ty, )*
        }

        impl fmt::Display for Stats {
            /// `name=value` for every field, in the table's order, separated by spaces.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let fields: &[(&str, &dyn fmt::Display)] = &[$((stringify!($name), &self.$name)),*];
                for (i, (name, value)) in fields.iter().enumerate() {
                    let separator = if i == 0 { "" } else { " " };
                    write!(f, "{separator}{name}={value}")?;
                }
                Ok(())
            }
        }

        shard_stats!([] $($kind $name,)*);

        impl ShardStats {
            /// Adds this shard's counters into `total`.
            pub(crate) fn add_to(&self, total: &mut Stats) {
                let shard = self;
                $( add_counted!($kind total shard $name); )*
            }
        }
    };
}

/// Declares [`ShardStats`] with one [`Counter`] per `counted` field of the table, in its order.
macro_rules! shard_stats {
    ([$($counter:ident)*]) => {
        /// The counters of one shard: one per `counted` field of [`Stats`], in the table's order.
        ///
        /// `repr(C)`, so that the order is the layout: `new`, `get` and `put` lead, so that the
        /// hot path's `get` and `put` sit in the same cache line as the end of the shard's list
        /// (see `LocalList`).
        #[derive(Default)]
        #[repr(C)]
        pub(crate) struct ShardStats {
            $( pub(crate) $counter: Counter, )*
            /// The weight of the elements that became idle here, in a pool with a weigher: given
            /// back, or prefilled (the weigher's figure for each).
            pub(crate) weight_in: Counter,
            /// The weight of the idle elements taken out here: checked out or closed.
            pub(crate) weight_out: Counter,
        }
    };
    ([$($counter:ident)*] counted $name:ident, $($rest:tt)*) => {
        shard_stats!([$($counter)* $name] $($rest)*);
    };
    ([$($counter:ident)*] derived $name:ident, $($rest:tt)*) => {
        shard_stats!([$($counter)*] $($rest)*);
    };
}

/// `total.name += shard.name` for a `counted` field; nothing for a `derived` one.
macro_rules! add_counted {
    (counted $total:ident $shard:ident $name:ident) => {
        $total.$name += $shard.$name.read();
    };
    (derived $total:ident $shard:ident $name:ident) => {};
}

stats_table! {
    /// A snapshot of a pool's statistics, returned by [`CachePool::stats`](crate::CachePool::stats).
    ///
    /// `new`, `get` and `put` keep the meaning they have in Python's `cachepool`. On a quiet pool
    /// (no call in progress on any thread) the snapshot is exact and the ledger balances:
    ///
    /// ```text
    /// new == idle + checked_out + closed + detached
    /// ```
    ///
    /// # Readings under load
    ///
    /// While other threads use the pool, `stats()` reads each thread's counters one after another,
    /// not all at one instant. Each counter is then a value it had while `stats()` ran, and a
    /// derived figure (`hits_local`, `idle`, `checked_out`) is off from the truth at any instant of
    /// that reading by at most the number of events (checkouts, give-backs, closes, detaches)
    /// other threads counted while it ran. Besides, `idle` is never above
    /// [`pool_size`](crate::CachePool::pool_size), and no figure is ever negative. So a service
    /// can export `idle` and `checked_out` as gauges and alert on them; on a quiet pool they are
    /// exact.
    ///
    /// The struct is `#[non_exhaustive]`: it may gain fields in a minor release. Read its fields;
    /// to build one (in a test), start from [`Stats::default()`] and set fields.
    ///
    /// ```
    /// let pool = cachepool::CachePool::new(|| String::with_capacity(64));
    /// let s = pool.get();
    /// pool.put(s);
    /// let again = pool.get();
    /// let stats = pool.stats();
    /// assert_eq!((stats.new, stats.get, stats.put), (1, 2, 1));
    /// assert_eq!((stats.hits_local, stats.idle, stats.checked_out), (1, 0, 1));
    /// # drop(again);
    /// ```
    ///
    /// Exported as JSON with the `serde` feature (`serde_json::to_string(&pool.stats())`); fields
    /// missing from older JSON read as 0.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    #[cfg_attr(
        feature = "serde",
        derive(serde::Serialize, serde::Deserialize),
        serde(default)
    )]
    #[non_exhaustive]
    pub struct Stats {
        /// Elements created by the generator. A generator that fails creates nothing.
        counted new: u64,
        /// Successful checkouts: cached elements handed out plus new ones.
        counted get: u64,
        /// Elements taken back into the pool (not those closed because the pool was full or the
        /// reset hook refused them).
        counted put: u64,
        /// Elements handed to the close callback (or dropped, without one), for any reason.
        counted closed: u64,
        /// Checkouts served from the calling thread's own list.
        derived hits_local: u64,
        /// Checkouts that found the thread's list empty and were served from the global shard
        /// (each brings a batch of idle elements into the thread's list, whose later checkouts
        /// count as `hits_local`).
        counted hits_global: u64,
        /// Checkouts that found the thread's list and the global shard empty and were served
        /// from other threads' lists, before the generator was called (each brings up to a
        /// batch of another thread's idle elements into the thread's list, whose later
        /// checkouts count as `hits_local`).
        counted hits_stolen: u64,
        /// Elements detached from a guard: the caller kept them and the pool forgot them.
        counted detached: u64,
        /// Elements created by [`prefill`](crate::CachePool::prefill); included in `new`.
        counted prefilled: u64,
        /// Idle elements the pool closed on its own: `clear()`, `trim()`, a failed validation;
        /// included in `closed`.
        counted evicted: u64,
        /// Idle elements closed by [`trim`](crate::CachePool::trim); included in `evicted`.
        counted trimmed: u64,
        /// Idle elements the validator refused at checkout; included in `evicted`.
        counted invalid: u64,
        /// Elements idle in the pool now, in every thread's list and the global shard; never
        /// above `pool_size`.
        derived idle: usize,
        /// The total weight of the elements idle now, as the pool's
        /// [`weigher`](crate::Builder::weigher) weighed each when it was given back; never
        /// above [`max_idle_weight`](crate::Builder::max_idle_weight); 0 in a pool without a
        /// weigher.
        derived idle_weight: usize,
        /// Elements checked out now: taken by `get` or a guard and not yet given back, closed or
        /// detached (`new - idle - closed - detached` on a quiet pool). An element the pool did
        /// not create, given to [`put`](crate::CachePool::put), counts as one given back.
        derived checked_out: u64,
        /// Panics of the close callback the pool contained instead of propagating: in a guard's
        /// drop, while the thread was unwinding, during thread exit, or on the idle-timeout
        /// thread, where propagating could abort the process or has no caller to reach; and,
        /// when one call closes several elements (`clear`, `trim`), every panic after the
        /// first, which is the one that propagates. Each was reported by the panic hook when it
        /// happened, and its element counts as closed.
        counted contained_panics: u64,
    }
}

/// One event counter, written by one thread only.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds one; only the shard's owner may call it.
    ///
    /// With a single writer, a load and a store are enough and cost no read-modify-write;
    /// `Relaxed` suffices because readers only want some recent value, never a torn one.
    #[inline]
    pub(crate) fn bump(&self) {
        self.0.store(self.0.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Adds `n`; only the shard's owner may call it (as for [`bump`](Self::bump)).
    #[inline]
    pub(crate) fn add(&self, n: usize) {
        self.0
            .store(self.0.load(Relaxed).wrapping_add(n as u64), Relaxed);
    }

    /// Adds `n` where several threads may write (the pool's shared fallback counters).
    pub(crate) fn add_shared(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// The count now (some recent value, when another thread writes it).
    pub(crate) fn read(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

impl Stats {
    /// Fills in the derived fields once every shard has been added up.
    ///
    /// Every checkout is a new element (not a prefilled one), a global hit, a hit in another
    /// thread's list or a local hit;
    /// every element taken back or prefilled is idle until a checkout takes it or the pool
    /// evicts it; every element created is idle, checked out, closed or detached.
    ///
    /// Under load the counters come from slightly different instants, so a difference may
    /// come out negative; each figure is computed in signed arithmetic and then floored at 0,
    /// so that it is off by no more than the events counted during the reading.
    pub(crate) fn derive(mut self) -> Stats {
        let signed = |n: u64| i128::from(n);
        let created_on_checkout = signed(self.new) - signed(self.prefilled);
        self.hits_local = floor(
            signed(self.get)
                - created_on_checkout
                - signed(self.hits_global)
                - signed(self.hits_stolen),
        );
        let idle = signed(self.put) + signed(self.prefilled)
            - signed(self.hits_local)
            - signed(self.hits_global)
            - signed(self.hits_stolen)
            - signed(self.evicted);
        self.idle = usize::try_from(idle.max(0)).unwrap_or(usize::MAX);
        self.checked_out =
            floor(signed(self.new) - idle - signed(self.closed) - signed(self.detached));
        self
    }

    /// Caps `idle` at the pool's `pool_size` and `idle_weight` at its `max_idle_weight`, which
    /// bound the idle elements at every instant: a reading above either can only come from
    /// counters read at different instants.
    pub(crate) fn capped_at(mut self, pool_size: usize, max_idle_weight: usize) -> Stats {
        self.idle = self.idle.min(pool_size);
        self.idle_weight = self.idle_weight.min(max_idle_weight);
        self
    }
}

/// `n`, or 0 if it is negative.
fn floor(n: i128) -> u64 {
    u64::try_from(n.max(0)).unwrap_or(u64::MAX)
}
