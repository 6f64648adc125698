//! The pool handle and its hot paths.

use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use crate::builder::Builder;
use crate::error::{BoxError, CachePoolGeneratorError};
use crate::guard::{Checkout, OwnedCheckout};
use crate::reset::{NoReset, Reset};
use crate::shared::Shared;
use crate::stats::Stats;
use crate::stored::Stored;

/// A pool of reusable elements: a cheap, cloneable handle to state shared by all its clones.
///
/// Each thread keeps a small list of idle elements of its own, under one budget of
/// [`pool_size`](Builder::pool_size) idle elements shared by all threads; see the
/// [crate documentation](crate) for the design. The pool is `Send + Sync` when `T: Send`.
///
/// Elements are usually checked out through a guard that gives them back when dropped
/// ([`checkout`](Self::checkout), [`checkout_owned`](Self::checkout_owned)); the raw calls of
/// Python's `cachepool` are here too ([`get`](Self::get), [`put`](Self::put),
/// [`close`](Self::close)). When the last handle (and the last owned guard) drops, every idle
/// element is closed.
///
/// `R` is the pool's [`Reset`] type, the hook that readies each element given back, chosen at
/// compile time ([`Builder::reset_with`]); the default, [`NoReset`], leaves elements as they
/// are. [`Reset`] shows how to name such a pool (a type alias such as
/// `type BufPool = CachePool<Vec<u8>, Clear>;`).
///
/// # A pool in a `static`
///
/// A service often holds its pool in a `static`, built on first use by
/// [`LazyLock`](std::sync::LazyLock):
///
/// ```
/// use std::sync::LazyLock;
/// use cachepool::{CachePool, Clear};
///
/// static BUFFERS: LazyLock<CachePool<Vec<u8>, Clear>> = LazyLock::new(|| {
///     CachePool::builder(|| Vec::with_capacity(64 * 1024))
///         .reset_with(Clear)
///         .pool_size(256)
///         .build()
/// });
///
/// fn handle(request: &[u8]) -> usize {
///     let mut buf = BUFFERS.checkout();
///     buf.extend_from_slice(request);
///     buf.len()
/// }
///
/// let workers: Vec<_> = (0..4)
///     .map(|_| std::thread::spawn(|| (0..100).map(|_| handle(b"GET /")).sum::<usize>()))
///     .collect();
/// for worker in workers {
///     assert_eq!(worker.join().unwrap(), 500);
/// }
/// assert_eq!(BUFFERS.stats().get, 400);
/// assert_eq!(BUFFERS.stats().checked_out, 0);
///
/// // At shutdown, if the close callback must see every element:
/// BUFFERS.clear();
/// assert_eq!(BUFFERS.stats().idle, 0);
/// ```
///
/// A `static` is never dropped, so the pool's last handle never drops either: at process exit
/// its idle elements are not handed to the close callback (their memory simply goes with the
/// process). If the callback must see them (to flush or log), call [`clear`](Self::clear) at
/// shutdown, once the threads that use the pool have stopped using it: it closes what every
/// thread's list and the global shard hold, whether those threads still run or not.
///
/// Elements must be `Send` (they move between threads through the global shard):
///
/// ```compile_fail
/// let pool = cachepool::CachePool::new(|| std::rc::Rc::new(0u8));
/// ```
///
/// ```
/// use cachepool::CachePool;
///
/// let pool = CachePool::builder(|| Vec::<u8>::with_capacity(4096))
///     .reset(|buf| {
///         buf.clear();
///         true
///     })
///     .pool_size(64)
///     .build();
///
/// {
///     let mut buf = pool.checkout();
///     buf.extend_from_slice(b"hello");
/// } // back in the pool, cleared
///
/// let buf = pool.checkout();
/// assert!(buf.is_empty() && buf.capacity() >= 4096);
/// assert_eq!(pool.stats().new, 1);
/// ```
pub struct CachePool<T: Send + 'static, R = NoReset> {
    pub(crate) shared: Arc<Shared<T>>,
    /// The pool's [`Reset`], held by each handle (a zero-sized type, or what a closure
    /// captures), so that a give-back reaches it without a load from the shared state.
    pub(crate) reset: R,
}

/// The constructors, on the default `R`: a pool with another [`Reset`] type comes from
/// [`Builder::reset_with`].
impl<T: Send + 'static> CachePool<T> {
    /// A pool with default settings around an infallible generator.
    ///
    /// Arguments the generator needs are values the closure captures (Python's
    /// `generator_args` and `generator_argkw`).
    ///
    /// ```
    /// let size = 1 << 16;
    /// let pool = cachepool::CachePool::new(move || vec![0u8; size]);
    /// assert_eq!(pool.get().len(), size);
    /// ```
    pub fn new(generator: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self::builder(generator).build()
    }

    /// Starts building a pool around an infallible generator.
    ///
    /// ```
    /// let pool = cachepool::CachePool::builder(|| Vec::<u8>::with_capacity(4096))
    ///     .pool_size(16)
    ///     .build();
    /// assert_eq!(pool.pool_size(), 16);
    /// ```
    pub fn builder(generator: impl Fn() -> T + Send + Sync + 'static) -> Builder<T> {
        Builder::new(Box::new(move || Ok(generator())))
    }

    /// Starts building a pool around a fallible generator.
    ///
    /// Its errors reach callers of the `try_` methods as [`CachePoolGeneratorError`], whose
    /// [`source`](std::error::Error::source) is the generator's error; the non-`try_`
    /// methods panic on them.
    ///
    /// ```
    /// use cachepool::CachePool;
    ///
    /// let pool = CachePool::try_builder(|| std::fs::read_to_string("/no/such/template"))
    ///     .pool_size(8)
    ///     .build();
    /// assert!(pool.try_checkout().is_err());
    /// ```
    pub fn try_builder<E>(
        generator: impl Fn() -> Result<T, E> + Send + Sync + 'static,
    ) -> Builder<T>
    where
        E: Into<BoxError>,
    {
        Builder::new(Box::new(move || generator().map_err(Into::into)))
    }
}

impl<T: Send + 'static, R: Reset<T>> CachePool<T, R> {
    /// Takes an idle element, or creates one; `get()` of Python's `cachepool`.
    ///
    /// The element is the one this thread returned most recently (per-thread lists are LIFO),
    /// else one from the global shard, else a new one. It is already reset: the reset hooks
    /// run when an element is given back. Give it back with [`put`](Self::put) or
    /// [`close`](Self::close); a [`checkout`](Self::checkout) guard does that for you.
    ///
    /// # Panics
    ///
    /// If the pool's generator is fallible and fails; use [`try_get`](Self::try_get) there.
    ///
    /// ```
    /// let pool = cachepool::CachePool::new(|| String::from("fresh"));
    /// let mut s = pool.get();
    /// s.push('!');
    /// pool.put(s);
    /// assert_eq!(pool.get(), "fresh!"); // the same element: LIFO, this thread's list
    /// ```
    #[inline(always)]
    #[track_caller]
    #[must_use = "an element taken and never given back is lost to the pool"]
    pub fn get(&self) -> T {
        match self.take_local() {
            Some(element) => element.into_inner(),
            None => match self.get_off_hot_path() {
                Ok(element) => element,
                Err(e) => generator_failed(e),
            },
        }
    }

    /// Takes an idle element, or creates one; fails if the generator does.
    ///
    /// ```
    /// # fn main() -> Result<(), cachepool::CachePoolError> {
    /// let pool = cachepool::CachePool::try_builder(|| "42".parse::<u64>()).build();
    /// let n = pool.try_get()?;
    /// assert_eq!(n, 42);
    /// pool.put(n);
    /// # Ok(()) }
    /// ```
    #[inline]
    #[must_use = "an element taken and never given back is lost to the pool"]
    pub fn try_get(&self) -> Result<T, CachePoolGeneratorError> {
        match self.take_local() {
            Some(element) => Ok(element.into_inner()),
            None => self.get_off_hot_path(),
        }
    }

    /// The hot path of every checkout: the warmest element of the calling thread's list, if
    /// the list is current and the pool has no validator and no weigher.
    #[inline(always)]
    fn take_local(&self) -> Option<Stored<T>> {
        let shared = &self.shared;
        // The thread lookup first, on every path: it begins with a call into `thread_local`'s
        // thread-id accessor, which the compiler can then merge with the lookup of a `put`
        // that follows in the same function, or hoist out of the caller's loop (seen in the
        // generated code of a get/put loop); behind the validator test it did neither.
        let shard = shared.locals.get()?;
        if shared.hooks.checkout_hooked {
            return None;
        }
        let element = if R::WEIGHS {
            // SAFETY: `ThreadLocal::get` returned the current thread's slot, so this thread
            // owns the shard. A weigher in the pool's type: the pop takes the weight too.
            unsafe { shard.pop_weighed() }
        } else {
            // SAFETY: as above.
            unsafe { shard.pop() }
        }?;
        shard.stats.get.bump();
        Some(element)
    }

    /// Every checkout the hot path does not serve: with a validator or a weigher, the thread's
    /// list popped (the weight taken off the idle weight) and validated; else, or when that
    /// finds nothing, the slow path.
    ///
    /// Validated pools come here rather than validating in `take_local`: an element that comes
    /// back from an out-of-line validator through memory, merged into the hot path, would cost
    /// every pool a copy of the element, and this one call is all a validated pool pays.
    #[inline(never)]
    fn get_off_hot_path(&self) -> Result<T, CachePoolGeneratorError> {
        match self.pop_validated() {
            Some(element) => Ok(element.into_inner()),
            None => self.shared.get_slow(),
        }
    }

    /// The first half of [`get_off_hot_path`](Self::get_off_hot_path): in a pool with a
    /// validator or a weigher, the thread's warmest element, if there is one and the
    /// validator accepts it; `None` elsewhere.
    #[inline]
    fn pop_validated(&self) -> Option<Stored<T>> {
        let shared = &self.shared;
        if shared.hooks.checkout_hooked
            && let Some(shard) = shared.locals.get()
            // SAFETY: `ThreadLocal::get` returned the current thread's slot, so this thread
            // owns the shard.
            && let Some(element) = unsafe { shard.pop_weighed() }
        {
            let valid = match shared.hooks.validate {
                None => Some(element),
                Some(_) => shared.validate(element, Stored::get, Stored::into_inner),
            };
            if let Some(element) = valid {
                shard.stats.get.bump();
                return Some(element);
            }
        }
        None
    }

    /// Takes an element for a request that needs it to weigh at least `weight`, in a pool with
    /// a [`weigher`](Builder::weigher): the lightest heavy element the pool keeps apart that
    /// weighs that much, if there is one; else a new element from the generator (which may
    /// weigh less: a buffer to grow, say), so that the light elements stay with the requests
    /// they serve rather than one of them growing heavy. For a `weight` a light element may
    /// have, or in a pool without a weigher, this is [`get`](Self::get).
    ///
    /// # Panics
    ///
    /// As for [`get`](Self::get).
    ///
    /// ```
    /// let pool = cachepool::CachePool::builder(Vec::<u8>::new)
    ///     .weigher(|buf| buf.capacity())
    ///     .max_idle_weight(1 << 26)
    ///     .build();
    /// let mut large = pool.get_at_least(1 << 24);
    /// large.reserve(1 << 24);
    /// pool.put(large);
    /// pool.put(Vec::with_capacity(16));
    /// assert!(pool.get_at_least(1 << 24).capacity() >= 1 << 24); // not the light one
    /// ```
    #[inline]
    #[track_caller]
    #[must_use = "an element taken and never given back is lost to the pool"]
    pub fn get_at_least(&self, weight: usize) -> T {
        match self.shared.get_heavy(weight) {
            None => self.get(),
            Some(Ok(element)) => element,
            Some(Err(e)) => generator_failed(e),
        }
    }

    /// [`checkout`](Self::checkout) of an element that weighs at least `weight`, as
    /// [`get_at_least`](Self::get_at_least) chooses it.
    ///
    /// # Panics
    ///
    /// As for [`checkout`](Self::checkout).
    ///
    /// ```
    /// use cachepool::{CachePool, Clear};
    ///
    /// let pool = CachePool::builder(Vec::<u8>::new)
    ///     .reset_with(Clear)
    ///     .weigher(|buf| buf.capacity())
    ///     .max_idle_weight(64 << 20)
    ///     .build();
    /// let request_len = 16 << 20;
    /// let mut buf = pool.checkout_at_least(request_len);
    /// buf.resize(request_len, 0); // the first time, the allocation
    /// drop(buf);
    /// let buf = pool.checkout_at_least(request_len);
    /// assert!(buf.is_empty() && buf.capacity() >= request_len); // after that, the same buffer
    /// assert_eq!(pool.stats().new, 1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn checkout_at_least(&self, weight: usize) -> Checkout<'_, T, R> {
        match self.shared.get_heavy(weight) {
            None => self.checkout(),
            Some(Ok(element)) => Checkout::new(self, element),
            Some(Err(e)) => generator_failed(e),
        }
    }

    /// Gives an element back; `put(element)` of Python's `cachepool`.
    ///
    /// The reset hooks run first and may refuse the element: the pool's [`Reset`] (`reset_with`),
    /// then the boxed closure given to [`Builder::reset`], if any. A kept element goes into the
    /// calling thread's list (whichever thread took it), or is closed if the pool already
    /// holds `pool_size` idle elements.
    ///
    /// ```
    /// let pool = cachepool::CachePool::builder(String::new).pool_size(1).build();
    /// let (a, b) = (pool.get(), pool.get());
    /// pool.put(a); // kept
    /// pool.put(b); // the pool is full: closed
    /// assert_eq!((pool.stats().put, pool.stats().closed, pool.stats().idle), (1, 1, 1));
    /// ```
    #[inline(always)]
    pub fn put(&self, element: T) {
        let mut element = ManuallyDrop::new(Stored::new(element));
        // SAFETY: `element` is initialised and only this function uses it. Once it is refused
        // or kept it is never touched again, and `ManuallyDrop` keeps it from being dropped.
        unsafe {
            if self.shared.reset_or_close(&self.reset, &mut element) {
                self.keep_from(&mut element);
            }
        }
    }

    /// The rest of `put` once the reset hooks kept the element: moves it from `slot` into the
    /// calling thread's list, or down the slow path (which is where a pool with a weigher
    /// weighs it: its lists refuse the hot path's push).
    ///
    /// # Safety
    ///
    /// `slot` holds an initialised element that nothing else uses; the caller treats it as
    /// moved out afterwards.
    #[inline(always)]
    unsafe fn keep_from(&self, slot: &mut ManuallyDrop<Stored<T>>) {
        if R::WEIGHS {
            // SAFETY: the caller's contract is `keep_weighed_from`'s.
            return unsafe { self.keep_weighed_from(slot, |kept| self.shared.keep_weighed(kept)) };
        }
        // SAFETY: the caller's contract is `push_local`'s.
        if !unsafe { self.push_local(slot) } {
            // SAFETY: `slot` holds the element (the caller) and was not moved into the list.
            self.shared
                .put_slow(unsafe { ManuallyDrop::take(slot) }.into_inner());
        }
    }

    /// `keep_from` in a pool whose `Reset` weighs: weighs the element in `slot` (inlined; a
    /// weigher that panics gets it closed) and moves a light one into the thread's list;
    /// hands what the list does not take, with its weight, to `rest` (a guard contains
    /// close callbacks' panics there).
    ///
    /// # Safety
    ///
    /// `slot` holds an initialised element that nothing else uses; the caller treats it as
    /// moved out afterwards, also if this unwinds.
    #[inline(always)]
    pub(crate) unsafe fn keep_weighed_from(
        &self,
        slot: &mut ManuallyDrop<Stored<T>>,
        rest: impl FnOnce((T, usize)),
    ) {
        let shared = &*self.shared;
        // SAFETY: the caller's contract; the weigher has the element by reference only.
        let weight = unsafe { shared.run_reset(&mut **slot, |element| self.reset.weigh(element)) };
        if weight <= shared.limits.light_weight
            && let Some(shard) = shared.locals.get()
            // SAFETY: `ThreadLocal::get` returned the current thread's slot, so this thread
            // owns the shard; `slot` is the caller's, as `push_weighed_from` requires.
            && unsafe { shard.push_weighed_from(&**slot, weight) }
        {
            shard.stats.put.bump();
            return;
        }
        // SAFETY: the element is still in `slot` (not pushed), taken out once here.
        rest((unsafe { ManuallyDrop::take(slot) }.into_inner(), weight));
    }

    /// Moves the element in `slot` into the calling thread's list and counts the `put`, if
    /// the list takes it (it is current, and the lease and buffer have room); returns whether
    /// it did. The hot path of every give-back, `put`'s and the guards': the element goes from
    /// where the user had it to the list in one copy.
    ///
    /// # Safety
    ///
    /// `slot` holds an initialised element that nothing else uses; if this returns `true`,
    /// the caller treats it as moved out.
    #[inline(always)]
    pub(crate) unsafe fn push_local(&self, slot: &ManuallyDrop<Stored<T>>) -> bool {
        let shared = &*self.shared;
        if let Some(shard) = shared.locals.get()
            // SAFETY: `ThreadLocal::get` returned the current thread's slot, so this thread
            // owns the shard; `slot` is the caller's, as `push_from` requires.
            && unsafe { shard.push_from(&**slot) }
        {
            shard.stats.put.bump();
            return true;
        }
        false
    }

    /// Closes an element: hands it to the close callback, or drops it if there is none;
    /// `close(element)` of Python's `cachepool`. Use it for an element that is broken.
    ///
    /// ```
    /// let pool = cachepool::CachePool::new(String::new);
    /// let s = pool.get();
    /// pool.close(s); // never reused
    /// assert_eq!((pool.stats().closed, pool.stats().idle), (1, 0));
    /// ```
    pub fn close(&self, element: T) {
        self.shared.close(element);
    }

    /// Checks out an element behind a guard that borrows the pool.
    ///
    /// Dropping the guard gives the element back, or closes it if the thread is panicking;
    /// [`Checkout::discard`] closes it and [`Checkout::detach`] keeps it.
    ///
    /// The element is ready for use: the pool's reset hooks ran on it when it was given back
    /// (a new one is as the generator made it), so the job need not reset it again.
    ///
    /// An element of more than 256 bytes is not moved: the pool keeps it in a block of its own
    /// and the guard points there, so a checkout costs what it costs for a small element. The
    /// guard still has the element's size, so moving the guard (into a `Vec`, say) copies
    /// that much; pool `Box<T>` where guards move (`docs/design.md`, "Large elements").
    ///
    /// # Panics
    ///
    /// If the pool's generator is fallible and fails; use
    /// [`try_checkout`](Self::try_checkout) there.
    ///
    /// ```
    /// let pool = cachepool::CachePool::new(Vec::<u32>::new);
    /// {
    ///     let mut v = pool.checkout();
    ///     v.push(1);
    /// } // given back here
    /// assert_eq!(*pool.checkout(), [1]); // no reset hook: the contents stay
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn checkout(&self) -> Checkout<'_, T, R> {
        if Stored::<T>::BOXED {
            return match self.try_take_stored() {
                Ok(element) => Checkout::from_stored(self, element),
                Err(e) => generator_failed(e),
            };
        }
        // Two exits rather than `Checkout::new(self, self.get())`: the element popped on the
        // hot path then goes straight into the guard, without a stop in a temporary.
        match self.take_local() {
            Some(element) => Checkout::from_stored(self, element),
            None => self.checkout_slow(),
        }
    }

    /// An element for a guard, as the guard holds it. For an element type kept in blocks
    /// (`Stored::BOXED`), the block is handed over as it is: the hot and the slow path each
    /// give its pointer, which meets in a register, and the guard is made once, where the
    /// caller keeps it (a value of `T`'s size made on two paths is copied whole where they
    /// meet). Other elements are taken as `try_get` takes them.
    #[inline(always)]
    fn try_take_stored(&self) -> Result<Stored<T>, CachePoolGeneratorError> {
        if !Stored::<T>::BOXED {
            return self.try_get().map(Stored::new);
        }
        let raw = match self.take_local() {
            Some(element) => element.into_raw(),
            None => self.take_raw_slow()?,
        };
        // SAFETY: `T` is boxed, and `raw` came from `into_raw`, used once here.
        Ok(unsafe { Stored::from_raw(raw) })
    }

    /// `try_take_stored` off the hot path, for an element type kept in blocks: the block's
    /// pointer.
    #[cold]
    #[inline(never)]
    fn take_raw_slow(&self) -> Result<*mut T, CachePoolGeneratorError> {
        if let Some(element) = self.pop_validated() {
            return Ok(element.into_raw());
        }
        self.shared
            .get_slow()
            .map(|element| Stored::new(element).into_raw())
    }

    /// `checkout` off the hot path: the thread's list has nothing to give, or the pool has a
    /// validator.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn checkout_slow(&self) -> Checkout<'_, T, R> {
        if let Some(element) = self.pop_validated() {
            return Checkout::from_stored(self, element);
        }
        match self.shared.get_slow() {
            Ok(element) => Checkout::new(self, element),
            Err(e) => generator_failed(e),
        }
    }

    /// Checks out an element behind a borrowing guard; fails if the generator does.
    ///
    /// ```
    /// let pool = cachepool::CachePool::try_builder(|| std::env::var("NO_SUCH_VARIABLE_HERE")).build();
    /// assert!(pool.try_checkout().is_err());
    /// ```
    #[inline]
    pub fn try_checkout(&self) -> Result<Checkout<'_, T, R>, CachePoolGeneratorError> {
        Ok(Checkout::from_stored(self, self.try_take_stored()?))
    }

    /// Checks out an element behind a guard that holds its own handle to the pool (`'static`,
    /// so it can be sent to another thread or stored).
    ///
    /// Cloning the handle touches the pool's shared reference count (a read-modify-write on
    /// a line every thread that clones it writes; `docs/design.md` says why it stays); prefer
    /// [`checkout`](Self::checkout) on hot paths. A pool in a `static` needs no owned guard:
    /// its borrowing guards are `Checkout<'static, T>`, which can be sent to other threads
    /// and cost no count at all.
    ///
    /// ```
    /// use std::sync::LazyLock;
    /// use cachepool::{CachePool, Checkout};
    ///
    /// static BUFFERS: LazyLock<CachePool<Vec<u8>>> = LazyLock::new(|| CachePool::new(Vec::new));
    ///
    /// let mut buf: Checkout<'static, Vec<u8>> = BUFFERS.checkout();
    /// buf.push(1);
    /// std::thread::spawn(move || assert_eq!(*buf, [1])).join().unwrap();
    /// assert_eq!(BUFFERS.stats().checked_out, 0);
    /// ```
    ///
    /// ```
    /// let pool = cachepool::CachePool::new(String::new);
    /// let mut s = pool.checkout_owned();
    /// std::thread::spawn(move || s.push_str("filled on another thread"))
    ///     .join()
    ///     .unwrap(); // dropped there: the element lands in that thread's list
    /// ```
    ///
    /// # Panics
    ///
    /// If the pool's generator is fallible and fails; use
    /// [`try_checkout_owned`](Self::try_checkout_owned) there.
    #[inline]
    #[track_caller]
    pub fn checkout_owned(&self) -> OwnedCheckout<T, R> {
        match self.try_take_stored() {
            Ok(element) => OwnedCheckout::from_stored(self.clone(), element),
            Err(e) => generator_failed(e),
        }
    }

    /// Checks out an element behind an owned guard; fails if the generator does.
    ///
    /// ```
    /// # fn main() -> Result<(), cachepool::CachePoolError> {
    /// let pool = cachepool::CachePool::try_builder(|| "8".parse::<u8>()).build();
    /// let n = pool.try_checkout_owned()?;
    /// assert_eq!(std::thread::spawn(move || *n).join().unwrap(), 8);
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn try_checkout_owned(&self) -> Result<OwnedCheckout<T, R>, CachePoolGeneratorError> {
        Ok(OwnedCheckout::from_stored(
            self.clone(),
            self.try_take_stored()?,
        ))
    }

    /// Creates up to `count` elements ahead of the first request, as far as the budget allows
    /// (never past `pool_size` idle elements); returns how many it created.
    ///
    /// They go to the global shard, where any thread's first checkouts find them. If the
    /// generator fails, the elements created before stay in the pool and the error is returned.
    ///
    /// ```
    /// let pool = cachepool::CachePool::builder(|| vec![0u8; 1 << 20]).pool_size(8).build();
    /// assert_eq!(pool.prefill(16).unwrap(), 8);
    /// let _buf = pool.checkout(); // no allocation on the request path
    /// let stats = pool.stats();
    /// assert_eq!((stats.new, stats.prefilled, stats.hits_global), (8, 8, 1));
    /// ```
    pub fn prefill(&self, count: usize) -> Result<usize, CachePoolGeneratorError> {
        // SAFETY: `prefill` calls this on a new element that nothing else uses, and treats it
        // as closed if this unwinds.
        let weigh = |slot: *mut Stored<T>| unsafe {
            if R::WEIGHS {
                self.shared
                    .run_reset(slot, |element| self.reset.weigh(element))
            } else {
                self.shared.weigh(slot)
            }
        };
        self.shared.prefill(count, &weigh)
    }

    /// Closes every idle element the pool holds, in every thread's list and the global shard,
    /// before it returns; the calling thread runs the close callback on each.
    ///
    /// Other threads' lists are reached whether their threads use the pool again or not,
    /// through a handshake that costs their hot paths two plain stores and a load per call
    /// (`docs/design.md`, "Reaching into other threads' lists"; on Linux that takes the
    /// `membarrier` system call, and where it is refused only the global shard is cleared).
    /// An element given back while `clear` runs may stay idle; so may one given back by a
    /// thread that is exiting. Counted as `evicted` and `closed`.
    ///
    /// ```
    /// let pool = cachepool::CachePool::new(String::new);
    /// let other = pool.clone();
    /// let (cached, clear_done) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         other.put(other.get()); // idle in that thread's list
    ///         cached.wait();
    ///         clear_done.wait(); // alive, and never using the pool again
    ///     });
    ///     cached.wait();
    ///     pool.clear();
    ///     assert_eq!(pool.stats().idle, 0); // that thread's list too
    ///     clear_done.wait();
    /// });
    /// ```
    pub fn clear(&self) {
        self.shared.clear();
    }

    /// Closes the idle elements no checkout has used since before the previous `trim()`: call
    /// it from a timer, and a burst's extra elements are given back within two periods (the
    /// two generations of Go's `sync.Pool` victim cache), or let
    /// [`Builder::idle_timeout`](crate::Builder::idle_timeout) call it for you.
    ///
    /// As with [`clear`](Self::clear), every thread's list (including those of threads that
    /// stay alive and never use the pool again) and the global shard are trimmed before `trim`
    /// returns, and the calling thread runs the close callback. In a list, the elements that
    /// no checkout reached since the previous `trim()` are closed; in the global shard, the
    /// batches that arrived before it (an element that moves between a list and the global
    /// shard while a period runs may stay one period more). Counted as `trimmed`, `evicted`
    /// and `closed`.
    ///
    /// ```
    /// let pool = cachepool::CachePool::new(String::new);
    /// let burst: Vec<String> = (0..4).map(|_| pool.get()).collect();
    /// burst.into_iter().for_each(|s| pool.put(s));
    /// pool.trim(); // the burst's elements are idle, but were used in this period
    /// drop(pool.checkout()); // one is used again
    /// pool.trim(); // the three that sat idle through a whole period are closed
    /// assert_eq!((pool.stats().trimmed, pool.stats().idle), (3, 1));
    /// ```
    pub fn trim(&self) {
        self.shared.trim();
    }

    /// The pool's statistics, added up over every thread's shard now.
    ///
    /// Exact on a quiet pool; while threads work, each figure is off by at most the events
    /// counted during the reading, and `idle` is never above [`pool_size`](Self::pool_size)
    /// (see [`Stats`]).
    ///
    /// ```
    /// let pool = cachepool::CachePool::new(|| 0u64);
    /// pool.put(pool.get());
    /// println!("{}", pool.stats()); // new=1 get=1 put=1 closed=0 ... idle=1 idle_weight=0 checked_out=0
    /// assert_eq!(pool.stats().idle, 1);
    /// ```
    pub fn stats(&self) -> Stats {
        let shared = &self.shared;
        shared
            .stats()
            .capped_at(shared.limits.pool_size, shared.limits.max_idle_weight)
    }

    /// The most idle elements the pool keeps, across all threads.
    ///
    /// ```
    /// let pool = cachepool::CachePool::builder(|| 0u8).pool_size(4).thread_capacity(9).build();
    /// assert_eq!((pool.pool_size(), pool.thread_capacity()), (4, 4)); // a list never exceeds the pool
    /// ```
    pub fn pool_size(&self) -> usize {
        self.shared.limits.pool_size
    }

    /// The most idle elements one thread's list keeps; 0 when the pool has no thread lists
    /// (see [`Builder::thread_capacity`]).
    pub fn thread_capacity(&self) -> usize {
        self.shared.limits.thread_capacity
    }
}

#[cold]
#[track_caller]
fn generator_failed(e: CachePoolGeneratorError) -> ! {
    panic!("cachepool: {e}: {}", e.get_ref())
}

impl<T: Send + 'static, R: Clone> Clone for CachePool<T, R> {
    /// Another handle to the same pool (with a clone of its [`Reset`]).
    fn clone(&self) -> Self {
        CachePool {
            shared: Arc::clone(&self.shared),
            reset: self.reset.clone(),
        }
    }
}

impl<T: Send + 'static, R: Reset<T>> fmt::Debug for CachePool<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachePool")
            .field("pool_size", &self.pool_size())
            .field("thread_capacity", &self.thread_capacity())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A pool may be used inside [`catch_unwind`](std::panic::catch_unwind) and after it: a panic
/// never leaves the pool in a state another user can observe as broken.
///
/// Soundness of the claim (unwind safety is a promise about logic, not memory): the pool's own
/// state is its ledger (budget, lists, counters), and every path that can unwind through it
/// (a generator, reset hook, validator or close callback that panics, or a panic in the
/// caller while a guard is alive) restores that ledger before the panic leaves the pool, and
/// closes the element involved instead of keeping it. Elements are never visible while idle;
/// an element a user holds is the user's, and a guard that drops during a panic closes its
/// element, so no element caught half-updated is handed out again. Nothing is poisoned: the
/// pool keeps working after the panic. The boxed hooks' captured state is theirs: they are
/// `Send + Sync` closures, whose shared state is usually behind a `Mutex` (which poisons) or
/// atomics. The [`Reset`] is held by the handle itself, so the handle is unwind safe when
/// the `Reset` is ([`RefUnwindSafe`](std::panic::RefUnwindSafe): it is only ever used by
/// reference), as with a closure that captures a `Cell` it is not.
impl<T: Send + 'static, R: std::panic::RefUnwindSafe> std::panic::UnwindSafe for CachePool<T, R> {}

/// Sharing `&CachePool` across a [`catch_unwind`](std::panic::catch_unwind) boundary is safe
/// for the reasons given on the `UnwindSafe` impl: every method of the pool takes `&self`,
/// and each restores the pool's ledger and closes the element involved before a panic leaves
/// it.
impl<T: Send + 'static, R: std::panic::RefUnwindSafe> std::panic::RefUnwindSafe
    for CachePool<T, R>
{
}
