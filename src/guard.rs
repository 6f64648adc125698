//! RAII guards that give a checked-out element back when dropped.

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::pool::CachePool;

/// Implements the behaviour both guards share; they differ only in how they hold the pool.
macro_rules! guard_impls {
    ($guard:ident $(<$lt:lifetime>)?) => {
        impl<$($lt,)? T: Send + 'static> $guard<$($lt,)? T> {
            /// Closes the element instead of giving it back (for an element left broken).
            ///
            /// An associated function, so that it never shadows a method of `T`.
            pub fn discard(mut this: Self) {
                if let Some(element) = this.element.take() {
                    this.pool.close(element);
                }
            }

            /// Keeps the element: the pool forgets it (counted as `detached`).
            pub fn detach(mut this: Self) -> T {
                let element = this.element.take().expect(TAKEN);
                this.pool.shared.detach();
                element
            }

            /// The pool the element came from.
            pub fn pool(this: &Self) -> &CachePool<T> {
                &this.pool
            }
        }

        impl<$($lt,)? T: Send + 'static> Deref for $guard<$($lt,)? T> {
            type Target = T;

            #[inline]
            fn deref(&self) -> &T {
                self.element.as_ref().expect(TAKEN)
            }
        }

        impl<$($lt,)? T: Send + 'static> DerefMut for $guard<$($lt,)? T> {
            #[inline]
            fn deref_mut(&mut self) -> &mut T {
                self.element.as_mut().expect(TAKEN)
            }
        }

        impl<$($lt,)? T: Send + 'static> Drop for $guard<$($lt,)? T> {
            /// Gives the element back, or closes it if the thread is panicking: an element
            /// caught in the middle of an update is never handed to the next user.
            #[inline]
            fn drop(&mut self) {
                if let Some(element) = self.element.take() {
                    if std::thread::panicking() {
                        self.pool.shared.close_unwinding(element);
                    } else {
                        self.pool.put(element);
                    }
                }
            }
        }

        impl<$($lt,)? T: Send + 'static + fmt::Debug> fmt::Debug for $guard<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($guard)).field(&**self).finish()
            }
        }
    };
}

/// The element is only ever taken out by `discard`, `detach` and `drop`, which consume or end
/// the guard, so every other access finds it.
const TAKEN: &str = "a guard's element is present until the guard is consumed";

/// An element checked out of a pool, given back when dropped; borrows the pool.
///
/// Made by [`CachePool::checkout`]. Derefs to the element. Dropping the guard puts the element
/// back into the pool (through the reset hook), unless the thread is panicking, in which case
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
pub struct Checkout<'a, T: Send + 'static> {
    pool: &'a CachePool<T>,
    /// `Some` until the guard is consumed or dropped.
    element: Option<T>,
}

impl<'a, T: Send + 'static> Checkout<'a, T> {
    #[inline]
    pub(crate) fn new(pool: &'a CachePool<T>, element: T) -> Self {
        Checkout {
            pool,
            element: Some(element),
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
pub struct OwnedCheckout<T: Send + 'static> {
    pool: CachePool<T>,
    /// `Some` until the guard is consumed or dropped.
    element: Option<T>,
}

impl<T: Send + 'static> OwnedCheckout<T> {
    #[inline]
    pub(crate) fn new(pool: CachePool<T>, element: T) -> Self {
        OwnedCheckout {
            pool,
            element: Some(element),
        }
    }
}

guard_impls!(OwnedCheckout);
