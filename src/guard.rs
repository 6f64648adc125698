//! RAII guards that give a checked-out element back when dropped.

use std::borrow::Borrow;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::ptr;

use crate::pool::CachePool;
use crate::reset::{NoReset, Reset};
use crate::stored::Stored;
use crate::unwind;

/// Implements the behaviour both guards share; they differ only in how they hold the pool.
macro_rules! guard_impls {
    ($guard:ident $(<$lt:lifetime>)?) => {
        impl<$($lt,)? T: Send + 'static, R: Reset<T>> $guard<$($lt,)? T, R> {
            /// Closes the element instead of giving it back (for an element left broken).
            ///
            /// An associated function, so that it never shadows a method of `T`.
            pub fn discard(this: Self) {
                let (pool, element) = Self::into_parts(this);
                pool.borrow().close(element);
            }

            /// Keeps the element: the pool forgets it (counted as `detached`).
            pub fn detach(this: Self) -> T {
                let (pool, element) = Self::into_parts(this);
                pool.borrow().shared.detach();
                element
            }

            /// Takes the guard apart without running its `Drop`.
            fn into_parts(this: Self) -> (impl Borrow<CachePool<T, R>>, T) {
                let mut this = ManuallyDrop::new(this);
                // SAFETY: the guard's invariant says both fields are initialised; `this` is
                // never used again and its `Drop` never runs, so each is moved out once.
                unsafe {
                    (
                        ptr::read(&this.pool),
                        ManuallyDrop::take(&mut this.element).into_inner(),
                    )
                }
            }

            /// The pool the element came from.
            pub fn pool(this: &Self) -> &CachePool<T, R> {
                &this.pool
            }
        }

        impl<$($lt,)? T: Send + 'static, R: Reset<T>> Deref for $guard<$($lt,)? T, R> {
            type Target = T;

            #[inline]
            fn deref(&self) -> &T {
                self.element.get()
            }
        }

        impl<$($lt,)? T: Send + 'static, R: Reset<T>> DerefMut for $guard<$($lt,)? T, R> {
            #[inline]
            fn deref_mut(&mut self) -> &mut T {
                self.element.get_mut()
            }
        }

        impl<$($lt,)? T: Send + 'static, R: Reset<T>> Drop for $guard<$($lt,)? T, R> {
            /// Gives the element back, or closes it if the thread is panicking: an element
            /// caught in the middle of an update is never handed to the next user.
            ///
            /// Always inlined into the guard's drop glue, so that the glue is the whole
            /// give-back: the element goes from the guard into the list without a stop, and
            /// the glue is small enough to be inlined where the guard drops (see
            /// `CachePool::give_back_guarded`).
            #[inline(always)]
            fn drop(&mut self) {
                // SAFETY: the element is initialised (the guard's invariant) and `drop` runs
                // once; the guard never touches it again (`ManuallyDrop` is not dropped).
                unsafe { self.pool.give_back_guarded(&mut self.element) };
            }
        }

        impl<$($lt,)? T: Send + 'static + fmt::Debug, R: Reset<T>> fmt::Debug for $guard<$($lt,)? T, R> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($guard)).field(&**self).finish()
            }
        }
    };
}

/// An element checked out of a pool, given back when dropped; borrows the pool.
///
/// Made by [`CachePool::checkout`]. Derefs to the element. Dropping the guard puts the element
/// back into the pool (through the reset hooks), unless the thread is panicking, in which case
/// the element is closed. [`Checkout::discard`] closes it; [`Checkout::detach`] keeps it.
///
/// ```
/// use cachepool::{CachePool, Checkout};
///
/// let pool = CachePool::new(Vec::<u32>::new);
/// let mut v = pool.checkout();
/// v.push(7);
/// let kept: Vec<u32> = Checkout::detach(v);
/// assert_eq!(kept, [7]);
/// assert_eq!(pool.stats().detached, 1);
/// ```
#[must_use = "dropping the guard gives the element back at once"]
pub struct Checkout<'a, T: Send + 'static, R: Reset<T> = NoReset> {
    pool: &'a CachePool<T, R>,
    /// Initialised for the guard's whole life: taken out only by `drop`, or by
    /// `discard`/`detach`, which consume the guard without running `drop`. Held as the
    /// pool's lists hold it, so that a large element goes between them by its pointer.
    element: ManuallyDrop<Stored<T>>,
}

impl<'a, T: Send + 'static, R: Reset<T>> Checkout<'a, T, R> {
    #[inline]
    pub(crate) fn new(pool: &'a CachePool<T, R>, element: T) -> Self {
        Self::from_stored(pool, Stored::new(element))
    }

    /// A guard for an element as a list held it.
    #[inline(always)]
    pub(crate) fn from_stored(pool: &'a CachePool<T, R>, element: Stored<T>) -> Self {
        Checkout {
            pool,
            element: ManuallyDrop::new(element),
        }
    }
}

guard_impls!(Checkout<'a>);

/// An element checked out of a pool, given back when dropped; holds its own pool handle.
///
/// Made by [`CachePool::checkout_owned`]. It is `'static` and `Send` (for `T: Send`), so it can
/// be moved to another thread, where dropping it returns the element into that thread's list.
/// It keeps the pool alive.
///
/// ```
/// use cachepool::{CachePool, OwnedCheckout};
///
/// let pool = CachePool::new(|| vec![0u8; 1024]);
/// let buf = pool.checkout_owned();
/// drop(pool); // the guard still holds the pool
/// OwnedCheckout::discard(buf); // close it: the pool then drops too
/// ```
#[must_use = "dropping the guard gives the element back at once"]
pub struct OwnedCheckout<T: Send + 'static, R: Reset<T> = NoReset> {
    pool: CachePool<T, R>,
    /// Initialised for the guard's whole life: taken out only by `drop`, or by
    /// `discard`/`detach`, which consume the guard without running `drop`. Held as the
    /// pool's lists hold it, so that a large element goes between them by its pointer.
    element: ManuallyDrop<Stored<T>>,
}

impl<T: Send + 'static, R: Reset<T>> OwnedCheckout<T, R> {
    /// A guard for an element as a list held it.
    #[inline(always)]
    pub(crate) fn from_stored(pool: CachePool<T, R>, element: Stored<T>) -> Self {
        OwnedCheckout {
            pool,
            element: ManuallyDrop::new(element),
        }
    }
}

guard_impls!(OwnedCheckout);

/// A borrowing guard moved into [`catch_unwind`](std::panic::catch_unwind) is unwind safe
/// when its element is: should the closure panic, the guard drops during the unwind and
/// closes the element, so the pool never hands it out again. The element itself is what the
/// user could still observe (through state it shares with the outside), so `T: UnwindSafe` is
/// required; the pool is [`RefUnwindSafe`](std::panic::RefUnwindSafe) whatever `T` is (when
/// its [`Reset`] is).
impl<T: Send + 'static + UnwindSafe, R: Reset<T> + RefUnwindSafe> UnwindSafe
    for Checkout<'_, T, R>
{
}

/// `&Checkout` gives `&T`: a closure that panics in the middle of an update through `T`'s
/// interior mutability (a `Cell`, a `RefCell`) would leave it half-updated for code after the
/// [`catch_unwind`](std::panic::catch_unwind), with the guard still alive. So a reference to a
/// guard is unwind safe only when `T: RefUnwindSafe`:
///
/// ```compile_fail
/// let pool = cachepool::CachePool::new(|| std::cell::Cell::new(0u32));
/// let guard = pool.checkout();
/// // `Cell` is not `RefUnwindSafe`, so neither is the guard: this does not compile.
/// let _ = std::panic::catch_unwind(|| guard.get());
/// ```
///
/// ```
/// let pool = cachepool::CachePool::new(|| vec![1u32, 2, 3]);
/// let guard = pool.checkout();
/// assert_eq!(std::panic::catch_unwind(|| guard.len()).unwrap(), 3);
/// ```
impl<T: Send + 'static + RefUnwindSafe, R: Reset<T> + RefUnwindSafe> RefUnwindSafe
    for Checkout<'_, T, R>
{
}

/// As for [`Checkout`]: moved into [`catch_unwind`](std::panic::catch_unwind), the owned guard
/// closes its element if the closure panics; its pool handle is unwind safe whatever `T` is
/// (when its [`Reset`] is).
impl<T: Send + 'static + UnwindSafe, R: Reset<T> + RefUnwindSafe> UnwindSafe
    for OwnedCheckout<T, R>
{
}

/// As for [`Checkout`]: `&OwnedCheckout` gives `&T`, so `T: RefUnwindSafe` is required.
impl<T: Send + 'static + RefUnwindSafe, R: Reset<T> + RefUnwindSafe> RefUnwindSafe
    for OwnedCheckout<T, R>
{
}

/// A guard's give-back, on the guard's own slot: the pool's side of both guards' `Drop`.
impl<T: Send + 'static, R: Reset<T>> CachePool<T, R> {
    /// A guard's give-back (its `Drop`), on the guard's own slot.
    ///
    /// This is the whole of a guard's drop glue, which the compiler inlines where the guard
    /// drops only while the glue is small; out of line, the give-back would pay a call and a
    /// thread lookup of its own (`docs/design.md`, "The guard's give-back"). So only the
    /// common case is here: no panic in flight, no boxed closure hook, the pool's [`Reset`]
    /// keeps the element and the thread's list takes it. Every other case leaves through one
    /// call site, to [`give_back_rest`](Self::give_back_rest). `scripts/guard-inlining.sh`
    /// checks that the glue is inlined.
    ///
    /// # Safety
    ///
    /// `slot` holds an initialised element that nothing else uses; the caller treats it as
    /// moved out afterwards.
    #[inline(always)]
    pub(crate) unsafe fn give_back_guarded(&self, slot: &mut ManuallyDrop<Stored<T>>) {
        let shared = &*self.shared;
        let rest = 'hot: {
            if std::thread::panicking() {
                break 'hot GuardRest::Close;
            }
            // A boxed closure hook or a weigher: one test for both, and the rest out of line.
            if shared.hooks.give_back_hooked {
                break 'hot GuardRest::Hooked;
            }
            // SAFETY: `slot` holds the element and nothing else uses it (the caller).
            if !unsafe { shared.run_reset(&mut **slot, |element| self.reset.reset(element)) } {
                break 'hot GuardRest::Close;
            }
            if R::WEIGHS {
                // A weigher in the pool's type, inlined here; what the list does not take
                // goes on with a close callback's panic contained, as below.
                // SAFETY: as above; the element is used no more here.
                return unsafe {
                    self.keep_weighed_from(slot, |kept| self.shared.keep_weighed_contained(kept))
                };
            }
            // `push_local` written out: a call of it here, though `inline(always)`, kept the
            // compiler from inlining this glue for a 4 KiB `Vec` (`scripts/guard-inlining.sh`).
            if let Some(shard) = shared.locals.get()
                // SAFETY: `ThreadLocal::get` returned the current thread's slot, so this
                // thread owns the shard; `slot` is the caller's, as `push_from` requires; the
                // pool has no weigher (else the test above left).
                && unsafe { shard.push_from(&**slot) }
            {
                shard.stats.put.bump();
                return;
            }
            GuardRest::Kept
        };
        // SAFETY: the element is still in `slot` (the caller's contract): it was neither
        // pushed nor taken out above.
        unsafe { self.give_back_rest(slot, rest) };
    }

    /// The cases of a guard's give-back that [`give_back_guarded`](Self::give_back_guarded)
    /// leaves to a call.
    ///
    /// A guard's drop may run in a thread-local destructor: no close callback's panic leaves
    /// it (a reset hook's still does, as the user's own code would). Only the branches that
    /// may close an element mark the thread as [containing](unwind::containing) such panics:
    /// a boxed closure hook that keeps its element, the common case here, goes from the hook
    /// into the list without that bookkeeping.
    ///
    /// # Safety
    ///
    /// As for `give_back_guarded`; `rest` says how far it got.
    #[inline(never)]
    unsafe fn give_back_rest(&self, slot: &mut ManuallyDrop<Stored<T>>, rest: GuardRest) {
        let shared = &self.shared;
        let refused = match rest {
            GuardRest::Hooked => {
                // SAFETY: `slot` holds the element and nothing else uses it (the caller); a
                // refused element stays there, and one the hook panics on is closed as the
                // panic unwinds, after which the caller never touches `slot` again.
                let kept = unsafe { shared.reset_keeps(&self.reset, &mut **slot) };
                if kept && R::WEIGHS {
                    // SAFETY: as above; the element is used no more here.
                    return unsafe {
                        self.keep_weighed_from(slot, |kept| shared.keep_weighed_contained(kept))
                    };
                }
                if kept && shared.hooks.weigher.is_some() {
                    // SAFETY: as above; the element is used no more here.
                    return unsafe { shared.give_back_weighed(slot) };
                }
                // SAFETY: as in `give_back_guarded`; only a kept element is pushed.
                if kept && unsafe { self.push_local(slot) } {
                    return;
                }
                !kept
            }
            GuardRest::Kept => false,
            GuardRest::Close => true,
        };
        // SAFETY: the element is still in `slot` (the caller's contract, and neither pushed
        // nor closed above), taken out once here.
        let element = unsafe { ManuallyDrop::take(slot) }.into_inner();
        unwind::containing(|| {
            if refused {
                // Refused by a hook, or caught in the middle of an update by a panic: never
                // handed to the next user.
                shared.close(element);
            } else {
                // Kept, and the thread's list could not take it.
                shared.put_slow(element);
            }
        });
    }
}

/// What is left of a guard's give-back when it leaves the inlined path.
#[derive(Clone, Copy)]
enum GuardRest {
    /// The thread is panicking, or the `Reset` type refused the element: close it.
    Close,
    /// The pool has a boxed closure hook or a weigher, which are called out of line: the rest
    /// of the give-back, from the reset hooks on.
    Hooked,
    /// The `Reset` type kept the element, and the thread's list could not take it (a pool
    /// without a weigher).
    Kept,
}
