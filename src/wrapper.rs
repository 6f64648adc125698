//! The context wrapper of Python's `cachepool`: run a closure on a checked-out element.

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};

use crate::error::CachePoolGeneratorError;
use crate::guard::Checkout;
use crate::pool::CachePool;
use crate::reset::{NoReset, Reset};

/// Decides, when the closure run by a [`CacheWrapper`] fails, whether its element may be
/// reused; the `reuse_decider` of Python's `cachepool`.
///
/// Implemented for every `Fn(&E) -> bool` and for [`NeverReuse`]; implement it yourself for
/// a decider with state:
///
/// ```
/// use cachepool::{CachePool, ReuseDecider, make_wrapper};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// /// Reuses elements after timeouts, and counts them.
/// #[derive(Default)]
/// struct TimeoutsAreHarmless(AtomicUsize);
///
/// impl ReuseDecider<std::io::Error> for TimeoutsAreHarmless {
///     fn reuse(&self, error: &std::io::Error) -> bool {
///         let harmless = error.kind() == std::io::ErrorKind::TimedOut;
///         self.0.fetch_add(harmless as usize, Ordering::Relaxed);
///         harmless
///     }
/// }
///
/// let pool = CachePool::new(String::new);
/// let wrapper = make_wrapper(&pool, TimeoutsAreHarmless::default());
/// let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
/// let _ = wrapper.run(|_| Err::<(), std::io::Error>(timed_out));
/// assert_eq!(pool.stats().put, 1);
/// ```
pub trait ReuseDecider<E: ?Sized> {
    /// `true` gives the element back to the pool, `false` closes it.
    fn reuse(&self, error: &E) -> bool;
}

impl<E: ?Sized, F: Fn(&E) -> bool> ReuseDecider<E> for F {
    fn reuse(&self, error: &E) -> bool {
        self(error)
    }
}

/// The decider of a wrapper made without one (Python's `reuse_decider=None`): an element
/// whose closure failed is always closed.
///
/// ```
/// let pool = cachepool::CachePool::new(String::new);
/// let wrapper = cachepool::make_wrapper(&pool, cachepool::NeverReuse);
/// let failed: Result<(), std::io::Error> = wrapper.run(|_| Err(std::io::ErrorKind::Other.into()));
/// assert!(failed.is_err());
/// assert_eq!(pool.stats().closed, 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverReuse;

impl<E: ?Sized> ReuseDecider<E> for NeverReuse {
    fn reuse(&self, _error: &E) -> bool {
        false
    }
}

/// Runs closures on elements checked out of a pool; the `CacheWrapper` of Python's
/// `cachepool`, whose `with wrapper() as ele:` block becomes [`run`](Self::run)'s closure
/// ([`try_run`](Self::try_run) on a pool whose generator may fail).
///
/// | the closure | the element | the caller gets |
/// |---|---|---|
/// | returns `Ok` | goes back to the pool | the `Ok` value |
/// | returns `Err(e)`, decider says `true` | goes back to the pool | `Err(e)`, unchanged |
/// | returns `Err(e)`, decider says `false` (or no decider) | is closed | `Err(e)`, unchanged |
/// | panics, or the decider panics | is closed | the panic |
///
/// No panic poisons the pool. A wrapper holds its own handle to the pool, so it can be stored
/// and shared; each `run` checks out through the borrowing fast path.
///
/// ```
/// use cachepool::{CachePool, make_wrapper};
///
/// #[derive(Debug)]
/// enum JobError {
///     BadInput,
///     Broken,
/// }
///
/// let pool = CachePool::new(|| String::with_capacity(64));
/// // Bad input leaves the element fine; anything else may have broken it.
/// let wrapper = make_wrapper(&pool, |e: &JobError| matches!(e, JobError::BadInput));
///
/// let n = wrapper.run(|s| {
///     s.clear();
///     s.push_str("42");
///     s.parse::<u32>().map_err(|_| JobError::BadInput)
/// });
/// assert_eq!(n.unwrap(), 42);
/// assert!(matches!(wrapper.run(|_| Err::<(), _>(JobError::BadInput)), Err(JobError::BadInput)));
/// assert!(matches!(wrapper.run(|_| Err::<(), _>(JobError::Broken)), Err(JobError::Broken)));
///
/// let stats = pool.stats();
/// assert_eq!((stats.new, stats.put, stats.closed), (1, 2, 1));
/// ```
pub struct CacheWrapper<T: Send + 'static, D = NeverReuse, R = NoReset> {
    pool: CachePool<T, R>,
    reuse_decider: D,
}

/// Makes a [`CacheWrapper`] around `pool` with `reuse_decider`; the `make_wrapper` of
/// Python's `cachepool`.
///
/// Pass [`NeverReuse`] for Python's `reuse_decider=None`.
///
/// ```
/// let pool = cachepool::CachePool::new(String::new);
/// // An I/O error does not hurt the scratch string: keep it.
/// let wrapper = cachepool::make_wrapper(&pool, |_: &std::io::Error| true);
/// let r: Result<usize, std::io::Error> = wrapper.run(|s| Ok(s.len()));
/// assert_eq!(r.unwrap(), 0);
/// ```
pub fn make_wrapper<T: Send + 'static, D, R: Reset<T>>(
    pool: &CachePool<T, R>,
    reuse_decider: D,
) -> CacheWrapper<T, D, R> {
    CacheWrapper {
        pool: pool.clone(),
        reuse_decider,
    }
}

impl<T: Send + 'static, R: Reset<T>> CacheWrapper<T, NeverReuse, R> {
    /// A wrapper whose failed elements are always closed.
    ///
    /// ```
    /// let pool = cachepool::CachePool::new(|| vec![0u8; 16]);
    /// let wrapper = cachepool::CacheWrapper::new(&pool);
    /// let sum: Result<u32, std::io::Error> = wrapper.run(|v| Ok(v.iter().map(|&b| u32::from(b)).sum()));
    /// assert_eq!(sum.unwrap(), 0);
    /// ```
    pub fn new(pool: &CachePool<T, R>) -> Self {
        make_wrapper(pool, NeverReuse)
    }
}

impl<T: Send + 'static, D, R: Reset<T>> CacheWrapper<T, D, R> {
    /// Checks out an element, runs `job` on it, and gives it back or closes it (see the table
    /// on [`CacheWrapper`]).
    ///
    /// `E` can be any error type: the job's own. On a pool that cannot fail
    /// ([`CachePool::new`], [`CachePool::builder`]) this is the method to use.
    ///
    /// # Panics
    ///
    /// If the pool's generator is fallible and fails, as [`CachePool::get`] does; use
    /// [`try_run`](Self::try_run) on a pool built with [`CachePool::try_builder`]. Also if
    /// `job` or the decider panics (the element is then closed).
    ///
    /// ```
    /// use std::num::ParseIntError;
    ///
    /// let pool = cachepool::CachePool::new(|| String::with_capacity(64));
    /// // A parse error leaves the scratch string usable: keep it.
    /// let wrapper = cachepool::make_wrapper(&pool, |_: &ParseIntError| true);
    /// let n = wrapper.run(|s| {
    ///     s.clear();
    ///     s.push_str("42");
    ///     s.parse::<u32>()
    /// });
    /// assert_eq!(n, Ok(42));
    /// let bad = wrapper.run(|s| {
    ///     s.clear();
    ///     s.push_str("x");
    ///     s.parse::<u32>()
    /// });
    /// assert!(bad.is_err());
    /// assert_eq!(pool.stats().put, 2); // kept both times
    /// ```
    #[track_caller]
    pub fn run<V, E>(&self, job: impl FnOnce(&mut T) -> Result<V, E>) -> Result<V, E>
    where
        D: ReuseDecider<E>,
    {
        self.finish(self.pool.checkout(), job)
    }

    /// As [`run`](Self::run), for a pool whose generator may fail: a failure of the generator
    /// reaches the caller converted into `E` (then no element exists, `job` does not run and
    /// the decider is not asked).
    ///
    /// `E` must convert from [`CachePoolGeneratorError`]; [`CachePoolError`], `std::io::Error`
    /// and `anyhow::Error` (through its blanket conversion) all do.
    ///
    /// [`CachePoolError`]: crate::CachePoolError
    ///
    /// ```
    /// use cachepool::{CachePool, CachePoolError, make_wrapper};
    ///
    /// let pool = CachePool::try_builder(|| Ok::<_, std::io::Error>(String::new())).build();
    /// let wrapper = make_wrapper(&pool, |_: &CachePoolError| false);
    /// // `CachePoolError` itself works as the job's error type.
    /// let len = wrapper.try_run(|s| {
    ///     s.push_str("abc");
    ///     Ok::<_, CachePoolError>(s.len())
    /// });
    /// assert_eq!(len.unwrap(), 3);
    ///
    /// let broken = CachePool::<String>::try_builder(|| Err("no disk")).build();
    /// let wrapper = make_wrapper(&broken, |_: &std::io::Error| true);
    /// let failed = wrapper.try_run(|s| Ok(s.len())).unwrap_err();
    /// assert_eq!(failed.to_string(), "the pool's generator failed to create an element");
    /// ```
    pub fn try_run<V, E>(&self, job: impl FnOnce(&mut T) -> Result<V, E>) -> Result<V, E>
    where
        D: ReuseDecider<E>,
        E: From<CachePoolGeneratorError>,
    {
        self.finish(self.pool.try_checkout()?, job)
    }

    /// The part of `run` and `try_run` after the checkout.
    #[inline]
    fn finish<V, E>(
        &self,
        mut element: Checkout<'_, T, R>,
        job: impl FnOnce(&mut T) -> Result<V, E>,
    ) -> Result<V, E>
    where
        D: ReuseDecider<E>,
    {
        match job(&mut element) {
            Ok(value) => Ok(value),
            // Should the job or the decider panic, `element` is dropped while unwinding and
            // the guard closes it.
            Err(error) => {
                if !self.reuse_decider.reuse(&error) {
                    Checkout::discard(element);
                }
                Err(error)
            }
        }
    }

    /// The pool this wrapper checks elements out of.
    ///
    /// ```
    /// let pool = cachepool::CachePool::new(String::new);
    /// let wrapper = cachepool::CacheWrapper::new(&pool);
    /// assert_eq!(wrapper.pool().pool_size(), pool.pool_size());
    /// ```
    pub fn pool(&self) -> &CachePool<T, R> {
        &self.pool
    }
}

impl<T: Send + 'static, D: Clone, R: Clone> Clone for CacheWrapper<T, D, R> {
    fn clone(&self) -> Self {
        CacheWrapper {
            pool: self.pool.clone(),
            reuse_decider: self.reuse_decider.clone(),
        }
    }
}

impl<T: Send + 'static, D, R: Reset<T>> fmt::Debug for CacheWrapper<T, D, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheWrapper")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// A wrapper used inside [`catch_unwind`](std::panic::catch_unwind): its pool is unwind safe
/// when its [`Reset`] is (see [`CachePool`]'s impl), and each [`run`](CacheWrapper::run)
/// closes its element when the job or the decider panics, so what is left to vouch for is the
/// decider's own state, hence `D: UnwindSafe`. Closures and [`NeverReuse`] qualify unless they
/// capture a `Cell`-like value by reference.
impl<T: Send + 'static, D: UnwindSafe, R: RefUnwindSafe> UnwindSafe for CacheWrapper<T, D, R> {}

/// `&CacheWrapper` across [`catch_unwind`](std::panic::catch_unwind): as for `UnwindSafe`, the
/// pool and the element are taken care of; the decider is shared, so `D: RefUnwindSafe`.
impl<T: Send + 'static, D: RefUnwindSafe, R: RefUnwindSafe> RefUnwindSafe
    for CacheWrapper<T, D, R>
{
}
