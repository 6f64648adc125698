//! Configuring a pool.

use std::any::type_name;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::barrier;
use crate::budget;
use crate::idle_timeout::{self, TrimIdle};
use crate::pool::CachePool;
use crate::reset::{NoReset, Reset};
use crate::shared::{Limits, Shared};
use crate::user_code::{CloseCallback, Generator, Hooks, ResetHook, Validator, Weigher};

/// The default [`pool_size`](Builder::pool_size), as in Python's `cachepool`.
///
/// ```
/// let pool = cachepool::CachePool::new(String::new);
/// assert_eq!(pool.pool_size(), cachepool::DEFAULT_POOL_SIZE);
/// ```
pub const DEFAULT_POOL_SIZE: usize = 1024;

/// The largest default per-thread capacity: past this, a thread's list would hold memory that
/// other threads could use, for little gain (a spill moves half a list at a time already).
const MAX_DEFAULT_THREAD_CAPACITY: usize = 256;

/// Configures and builds a [`CachePool`]; made by [`CachePool::builder`] or
/// [`CachePool::try_builder`].
///
/// ```
/// use cachepool::CachePool;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::{Arc, Weak};
///
/// let closed = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&closed);
/// let pool = CachePool::builder(|| String::with_capacity(256))
///     .close_callback(move |_s: String| {
///         counter.fetch_add(1, Ordering::Relaxed);
///     })
///     .pool_size(1)
///     .reset(|s| {
///         s.clear();
///         s.capacity() <= 4096 // refuse buffers that grew too large
///     })
///     .build();
///
/// let (a, b) = (pool.get(), pool.get());
/// pool.put(a); // kept
/// pool.put(b); // the pool is full: closed
/// assert_eq!(closed.load(Ordering::Relaxed), 1);
/// ```
pub struct Builder<T: Send + 'static, R = NoReset> {
    generator: Generator<T>,
    close: Option<CloseCallback<T>>,
    reset: Option<ResetHook<T>>,
    validate: Option<Validator<T>>,
    weigher: Option<Weigher<T>>,
    pool_size: usize,
    max_idle_weight: Option<usize>,
    thread_capacity: Option<usize>,
    idle_timeout: Option<Duration>,
    /// The pool's [`Reset`] (see [`CachePool`]'s field of the same name).
    reset_with: R,
}

impl<T: Send + 'static> Builder<T> {
    pub(crate) fn new(generator: Generator<T>) -> Self {
        Builder {
            generator,
            close: None,
            reset: None,
            validate: None,
            weigher: None,
            pool_size: DEFAULT_POOL_SIZE,
            max_idle_weight: None,
            thread_capacity: None,
            idle_timeout: None,
            reset_with: NoReset,
        }
    }
}

impl<T: Send + 'static, R: Reset<T>> Builder<T, R> {
    /// Called with each element the pool closes: when the pool is full, when the reset hook
    /// refuses it, on [`CachePool::close`], and for every idle element when the pool drops.
    /// Without one, closing drops the element.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let (closed_tx, closed_rx) = mpsc::channel();
    /// let closed_tx = std::sync::Mutex::new(closed_tx);
    /// let pool = cachepool::CachePool::builder(|| 7u32)
    ///     .close_callback(move |n| closed_tx.lock().unwrap().send(n).unwrap())
    ///     .build();
    /// pool.close(pool.get());
    /// assert_eq!(closed_rx.try_recv(), Ok(7));
    /// ```
    pub fn close_callback(mut self, close: impl Fn(T) + Send + Sync + 'static) -> Self {
        self.close = Some(Box::new(close));
        self
    }

    /// The most idle elements the pool keeps, across all threads and the global shard
    /// (default [`DEFAULT_POOL_SIZE`]); 0 caches nothing.
    ///
    /// ```
    /// let pool = cachepool::CachePool::builder(String::new).pool_size(0).build();
    /// pool.put(pool.get()); // closed at once: nothing is cached
    /// assert_eq!((pool.stats().idle, pool.stats().closed), (0, 1));
    /// ```
    pub fn pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size;
        self
    }

    /// The most idle elements one thread's list keeps: a `put` on a full list first spills
    /// the oldest half to the global shard. A thread that gives back more than it takes (the
    /// consumer end of a pipeline) keeps at most 4, or this if less, and passes them on to the
    /// global shard together.
    ///
    /// By default `pool_size / (2 * CPUs)`, at least 1 and at most 256; never more than
    /// `pool_size`. With the default `pool_size` of 1,024 on 4 CPUs, each thread's list keeps
    /// up to 128 idle elements, and the pool up to 1,024 in all: a thread holds what its own
    /// peaks left it until `trim()`, `clear()` or an idle timeout closes them, or another
    /// thread takes them.
    ///
    /// 0 gives threads no list at all: every element goes through the global shard. That
    /// suits pools whose elements mostly come back on another thread, and a small pool shared
    /// by many threads (a `pool_size` of a few, for elements that are costly to keep): lists of
    /// an element or two would spread its few idle elements over the threads, and a thread
    /// that finds none at hand would take one from another's list at the price of a
    /// handshake (two system calls on Linux) rather than a channel receive.
    ///
    /// ```
    /// let pool = cachepool::CachePool::builder(String::new)
    ///     .pool_size(64)
    ///     .thread_capacity(8)
    ///     .build();
    /// assert_eq!(pool.thread_capacity(), 8);
    /// let held: Vec<String> = (0..10).map(|_| pool.get()).collect();
    /// held.into_iter().for_each(|s| pool.put(s)); // 8 fill this thread's list, 4 spill
    /// assert_eq!(pool.stats().idle, 10);
    /// ```
    pub fn thread_capacity(mut self, thread_capacity: usize) -> Self {
        self.thread_capacity = Some(thread_capacity);
        self
    }

    /// Closes idle elements that no checkout has used for longer than `timeout`, within twice
    /// `timeout` (plus the few milliseconds the idle-timeout thread may wake up late), even
    /// when no thread calls the pool again: a pool in a long-running service gives a burst's
    /// elements back on its own, from every thread's list (those of threads that stay alive
    /// and idle too) and from the global shard.
    ///
    /// One thread in the process serves every pool built with a timeout: it calls
    /// [`trim`](CachePool::trim) on each once per its `timeout`, so the elements it closes are
    /// counted in [`Stats::trimmed`](crate::Stats::trimmed), like any `trim()`'s, and a close
    /// callback runs on that thread (a panic of one is contained, and counted in
    /// [`Stats::contained_panics`](crate::Stats::contained_panics)). An element checked out at
    /// least once per `timeout` is never closed. The thread starts with the first such pool,
    /// keeps none alive, and ends once the last one has dropped; without this option nothing
    /// is started. A `timeout` under a millisecond counts as one millisecond. Calls of
    /// `trim()` of the pool's own come on top and start a period each.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = cachepool::CachePool::builder(|| vec![0u8; 64 * 1024])
    ///     .idle_timeout(Duration::from_millis(100))
    ///     .build();
    /// let burst: Vec<_> = (0..8).map(|_| pool.get()).collect();
    /// burst.into_iter().for_each(|buf| pool.put(buf));
    /// assert_eq!(pool.stats().idle, 8);
    /// // No call to the pool meanwhile: within about 200 ms, the idle-timeout thread closes them.
    /// while pool.stats().trimmed < 8 {
    ///     std::thread::sleep(Duration::from_millis(10));
    /// }
    /// assert_eq!(pool.stats().idle, 0);
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout.max(idle_timeout::MIN_TIMEOUT));
        self
    }

    /// Runs on every element given back, before the pool keeps it: a place to clear a buffer
    /// or reset a parser. Returning `false` refuses the element, which is then closed (for a
    /// broken parser, or a buffer that grew too large to keep). So an element a checkout
    /// hands out is already reset.
    ///
    /// The closure is boxed, so the pool's type stays `CachePool<T>`, and reached through a
    /// pointer, one call per give-back, out of line. The same closure given to
    /// [`reset_with`](Self::reset_with) instead is inlined where elements are given back, at
    /// the price of a pool type that names it. With both, this one runs second, on the
    /// elements the other keeps.
    ///
    /// ```
    /// let pool = cachepool::CachePool::builder(Vec::<u8>::new)
    ///     .reset(|buf| {
    ///         buf.clear();
    ///         buf.capacity() <= 1024
    ///     })
    ///     .build();
    /// let mut big = pool.get();
    /// big.resize(1 << 20, 0);
    /// pool.put(big); // refused: closed, not cached
    /// assert_eq!((pool.stats().put, pool.stats().closed), (0, 1));
    /// ```
    pub fn reset(mut self, reset: impl Fn(&mut T) -> bool + Send + Sync + 'static) -> Self {
        self.reset = Some(Box::new(reset));
        self
    }

    /// Makes `reset` the pool's [`Reset`]: its `reset` runs on every element given back,
    /// inlined where the element is given back, and the pool's type names it
    /// (`CachePool<T, R2>`). The faster choice for a hot path: a [`Reset`] type such as
    /// [`Clear`](crate::Clear), or a closure with its parameter's type written out (or given
    /// to [`reset_fn`](Self::reset_fn), which infers it). See
    /// [`Reset`] for how to name such a pool, and how it compares with
    /// [`reset`](Self::reset), which still runs after it.
    ///
    /// ```
    /// use cachepool::{CachePool, Clear};
    ///
    /// let pool: CachePool<String, Clear> = CachePool::builder(String::new)
    ///     .reset_with(Clear)
    ///     .build();
    /// pool.put(String::from("secret"));
    /// assert_eq!(pool.get(), "");
    ///
    /// let pool = CachePool::builder(|| Vec::<u8>::with_capacity(64))
    ///     .reset_with(|buf: &mut Vec<u8>| {
    ///         buf.clear();
    ///         buf.capacity() <= 1024
    ///     })
    ///     .build();
    /// let mut big = pool.get();
    /// big.resize(1 << 20, 0);
    /// pool.put(big); // refused: closed, not cached
    /// assert_eq!((pool.stats().put, pool.stats().closed), (0, 1));
    /// ```
    pub fn reset_with<R2: Reset<T>>(self, reset: R2) -> Builder<T, R2> {
        Builder {
            generator: self.generator,
            close: self.close,
            reset: self.reset,
            validate: self.validate,
            weigher: self.weigher,
            pool_size: self.pool_size,
            max_idle_weight: self.max_idle_weight,
            thread_capacity: self.thread_capacity,
            idle_timeout: self.idle_timeout,
            reset_with: reset,
        }
    }

    /// [`reset_with`](Self::reset_with) for a closure, whose parameter's type is then inferred:
    /// `reset_fn(|buf| ...)` where `reset_with` needs `|buf: &mut Vec<u8>| ...` (a closure
    /// passed as a generic `Reset` has no signature to be inferred from). The closure is the
    /// pool's [`Reset`], inlined where elements are given back; the pool's type names it, so
    /// a pool kept in a field or a `static` takes a function pointer (see [`Reset`]).
    ///
    /// ```
    /// let pool = cachepool::CachePool::builder(|| Vec::<u8>::with_capacity(64))
    ///     .reset_fn(|buf| {
    ///         buf.clear();
    ///         buf.capacity() <= 1024
    ///     })
    ///     .build();
    /// pool.checkout().extend_from_slice(b"request");
    /// assert!(pool.checkout().is_empty());
    /// ```
    pub fn reset_fn<F>(self, reset: F) -> Builder<T, F>
    where
        F: Fn(&mut T) -> bool + Clone + 'static,
    {
        self.reset_with(reset)
    }

    /// Checks each idle element before it is handed out (commons-pool's test-on-borrow): an
    /// element it refuses is closed (counted as `invalid`) and the next one is tried, down to a
    /// new one from the generator, which is not checked.
    ///
    /// ```
    /// use std::net::TcpStream;
    /// let pool = cachepool::CachePool::try_builder(|| TcpStream::connect("127.0.0.1:9"))
    ///     .validate(|conn| conn.take_error().map_or(false, |e| e.is_none()))
    ///     .build();
    /// # let _ = pool;
    /// ```
    pub fn validate(mut self, validate: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        self.validate = Some(Box::new(validate));
        self
    }

    /// Weighs each element given back (in bytes, say: `|buf| buf.capacity()`), for a budget
    /// of idle weight ([`max_idle_weight`](Self::max_idle_weight)) besides the budget of idle
    /// elements, and for [`Stats::idle_weight`](crate::Stats::idle_weight).
    ///
    /// The weigher runs once per give-back, after the reset hooks, on the element they kept;
    /// the weight it gives stays with the element while it is idle, so it is never weighed
    /// again there. A weigher that panics has its element closed, and the panic propagates as
    /// a reset hook's does.
    ///
    /// With a weight budget `W`, an element that weighs at most `W / pool_size` is *light*:
    /// it is kept in the thread lists and the global shard as any element is, and holds
    /// `W / pool_size` of the budget while idle (its unit of `pool_size` stands for that
    /// much weight). A heavier element is *heavy*: it is kept apart, in one short list
    /// guarded by a lock, holding exactly its weight, so that a small request does not take
    /// a large buffer and use up what the budget could keep.
    /// [`checkout_at_least`](CachePool::checkout_at_least) asks for a heavy element (and builds
    /// a new one if none is idle); [`checkout`](CachePool::checkout) takes one only when no
    /// light element is idle anywhere, in a pool where heavy elements are the common case (at
    /// least half of those kept so far), and builds a light one otherwise. An element heavier
    /// than `W` is closed when it comes back; a heavy element that does not fit in what is
    /// left of the budget is closed too (`docs/design.md`, "The weight budget", says why the
    /// element that comes back is the one closed).
    ///
    /// This weigher is boxed, so the pool's type stays as it is; a checkout and a give-back
    /// then take the out-of-line paths a [`validate`](Self::validate) hook and a boxed
    /// [`reset`](Self::reset) closure take, at about three times a plain pool's cost. The same
    /// weigher in the pool's type, [`Weigh`](crate::Weigh) given to
    /// [`reset_with`](Self::reset_with), is inlined instead, at about 1.6 to 1.9 times
    /// (`docs/benchmarks.md`). A pool without a weigher pays nothing for either.
    ///
    /// ```
    /// use cachepool::{CachePool, Clear};
    ///
    /// const MIB: usize = 1 << 20;
    /// let pool = CachePool::builder(|| Vec::<u8>::with_capacity(4096))
    ///     .reset_with(Clear)
    ///     .weigher(|buf| buf.capacity())
    ///     .max_idle_weight(64 * MIB)
    ///     .build();
    ///
    /// let mut small = pool.checkout();
    /// small.extend_from_slice(b"GET /");
    /// let mut large = pool.checkout_at_least(16 * MIB); // none idle yet: a light one
    /// large.reserve(16 * MIB);
    /// drop((small, large));
    /// assert!(pool.stats().idle_weight >= 16 * MIB + 4096);
    ///
    /// assert_eq!(pool.checkout().capacity(), 4096); // small requests get the small buffer
    /// assert!(pool.checkout_at_least(16 * MIB).capacity() >= 16 * MIB); // and this the large
    ///
    /// let mut huge = pool.checkout();
    /// huge.reserve(100 * MIB);
    /// drop(huge); // heavier than the whole budget: closed
    /// assert!(pool.stats().idle_weight <= 64 * MIB);
    /// ```
    pub fn weigher(mut self, weigher: impl Fn(&T) -> usize + Send + Sync + 'static) -> Self {
        self.weigher = Some(Box::new(weigher));
        self
    }

    /// The most weight the idle elements may have together, across all threads, as the
    /// [`weigher`](Self::weigher) weighs them; the default is no limit. Holds at every instant,
    /// together with [`pool_size`](Self::pool_size): see [`weigher`](Self::weigher) for what a
    /// light and a heavy element hold of it.
    ///
    /// # Panics
    ///
    /// [`build`](Self::build) panics if the pool has no weigher: a weight needs a way to weigh.
    ///
    /// ```
    /// let pool = cachepool::CachePool::builder(|| vec![0u8; 1 << 20])
    ///     .weigher(|buf| buf.capacity())
    ///     .max_idle_weight(4 << 20)
    ///     .build();
    /// let held: Vec<_> = (0..8).map(|_| pool.get()).collect();
    /// held.into_iter().for_each(|buf| pool.put(buf));
    /// let stats = pool.stats();
    /// assert_eq!((stats.idle, stats.idle_weight), (4, 4 << 20)); // 4 MiB kept, 4 closed
    /// ```
    pub fn max_idle_weight(mut self, max_idle_weight: usize) -> Self {
        self.max_idle_weight = Some(max_idle_weight);
        self
    }

    /// Builds the pool.
    ///
    /// # Panics
    ///
    /// If [`max_idle_weight`](Self::max_idle_weight) is set and [`weigher`](Self::weigher) is
    /// not.
    ///
    /// ```
    /// let pool: cachepool::CachePool<Vec<u8>> = cachepool::CachePool::builder(Vec::new).build();
    /// assert_eq!(pool.stats(), cachepool::Stats::default());
    /// ```
    pub fn build(self) -> CachePool<T, R> {
        let pool_size = self.pool_size;
        let weighed = self.weigher.is_some() || R::WEIGHS;
        assert!(
            !(self.weigher.is_some() && R::WEIGHS),
            "cachepool: a `weigher` and a `Reset` that weighs: give the pool one of the two"
        );
        let max_idle_weight = match (weighed, self.max_idle_weight) {
            (false, Some(_)) => panic!("cachepool: `max_idle_weight` set without a `weigher`"),
            (_, max) => max.unwrap_or(usize::MAX),
        };
        let thread_capacity = self
            .thread_capacity
            .unwrap_or_else(|| {
                (pool_size / (2 * num_cpus::get())).clamp(1, MAX_DEFAULT_THREAD_CAPACITY)
            })
            .min(pool_size);
        let limits = Limits {
            pool_size,
            thread_capacity,
            batch: (thread_capacity / 2).max(1),
            max_idle_weight,
            light_weight: match weighed {
                true => budget::weight_per_unit(max_idle_weight, pool_size),
                false => usize::MAX,
            },
        };
        let hooks = Hooks {
            give_back_hooked: self.reset.is_some() || self.weigher.is_some(),
            checkout_hooked: self.validate.is_some() || self.weigher.is_some(),
            generator: self.generator,
            close: self.close,
            reset: self.reset,
            validate: self.validate,
            weigher: self.weigher,
        };
        // Before the first pool exists, so that every list's owner uses the barrier chosen.
        barrier::init();
        let shared = Arc::new_cyclic(|pool: &Weak<Shared<T>>| {
            // The thread cannot upgrade the `Weak` before this returns; its first trim is a
            // period away anyway.
            let idle_key = self.idle_timeout.and_then(|timeout| {
                let pool: Weak<dyn TrimIdle> = pool.clone();
                idle_timeout::register(pool, timeout)
            });
            Shared::new(hooks, limits, weighed, idle_key)
        });
        CachePool {
            shared,
            reset: self.reset_with,
        }
    }
}

impl<T: Send + 'static, R: Reset<T>> fmt::Debug for Builder<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("pool_size", &self.pool_size)
            .field("max_idle_weight", &self.max_idle_weight)
            .field("thread_capacity", &self.thread_capacity)
            .field("idle_timeout", &self.idle_timeout)
            .field("close_callback", &self.close.is_some())
            .field("reset", &self.reset.is_some())
            .field("reset_with", &type_name::<R>())
            .field("validate", &self.validate.is_some())
            .field("weigher", &self.weigher.is_some())
            .finish_non_exhaustive()
    }
}
