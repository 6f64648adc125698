//! Every call into the user's code: the generator, the reset hooks, the validator and the
//! close callback, and what the pool does when one of them refuses an element or panics.
//!
//! Each call leaves the pool's ledger balanced whatever the hook does: an element a hook
//! refuses or panics on is closed, counted once, and a close callback's panic propagates only
//! where that cannot abort the process (see [`crate::unwind`]).

use std::any::{Any, TypeId};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::error::{BoxError, CachePoolGeneratorError};
use crate::reset::{NoReset, Reset};
use crate::shared::Shared;
use crate::stored::Stored;
use crate::unwind;

/// Creates an element.
pub(crate) type Generator<T> = Box<dyn Fn() -> Result<T, BoxError> + Send + Sync>;
/// Closes an element the pool will not keep.
pub(crate) type CloseCallback<T> = Box<dyn Fn(T) + Send + Sync>;
/// Readies a returned element for reuse, or refuses it.
pub(crate) type ResetHook<T> = Box<dyn Fn(&mut T) -> bool + Send + Sync>;
/// Checks an idle element before it is handed out.
pub(crate) type Validator<T> = Box<dyn Fn(&T) -> bool + Send + Sync>;
/// Weighs an element given back, for the weight budget.
pub(crate) type Weigher<T> = Box<dyn Fn(&T) -> usize + Send + Sync>;

/// The user's code the pool calls.
pub(crate) struct Hooks<T> {
    pub(crate) generator: Generator<T>,
    pub(crate) close: Option<CloseCallback<T>>,
    pub(crate) reset: Option<ResetHook<T>>,
    pub(crate) validate: Option<Validator<T>>,
    pub(crate) weigher: Option<Weigher<T>>,
    /// Whether a checkout leaves the hot path: the pool has a validator, which sees each idle
    /// element handed out, or a weigher, whose weight leaves the idle set with it. One flag,
    /// so that a pool with neither tests one value, as it did for the validator alone.
    pub(crate) checkout_hooked: bool,
    /// Whether a guard's give-back leaves its inlined path for the hooks called out of line:
    /// the boxed reset closure, or the weigher. One flag, so that a pool with neither tests
    /// one value, as it did for the closure alone.
    pub(crate) give_back_hooked: bool,
}

/// Why the pool closes idle elements on its own; each reason has its counter besides
/// `evicted`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Eviction {
    /// The pool is dropping.
    Dropped,
    /// `clear()`.
    Cleared,
    /// `trim()`.
    Trimmed,
    /// The validator refused the element at checkout.
    Invalid,
}

/// Closes the element in `slot` if a reset hook panics on it: `reset_or_close` forgets it
/// once the hook returned, so it is dropped only while the hook's panic unwinds.
struct CloseOnUnwind<'a, T: Send + 'static> {
    shared: &'a Shared<T>,
    /// The element the hook was given; initialised, and used by nothing else once the hook
    /// has unwound.
    slot: *mut Stored<T>,
}

impl<T: Send + 'static> Drop for CloseOnUnwind<'_, T> {
    #[cold]
    #[inline(never)]
    fn drop(&mut self) {
        // SAFETY: this runs only as the hook unwinds, when `slot` still holds the element
        // (the hook had it only by reference) and the caller of `reset_or_close` treats it as
        // moved out. The thread is unwinding, so `close` contains a panicking close callback:
        // a panic escaping a drop during unwinding would abort.
        self.shared
            .close(unsafe { std::ptr::read(self.slot) }.into_inner());
    }
}

impl<T: Send + 'static> Shared<T> {
    /// Creates an element with the generator; counts it only if it was created.
    pub(crate) fn generate(&self) -> Result<T, CachePoolGeneratorError> {
        let element = (self.hooks.generator)().map_err(CachePoolGeneratorError::new)?;
        self.count(|s| &s.new);
        Ok(element)
    }

    /// Hands `element` to the close callback (or drops it). Counted first, so a callback that
    /// panics still leaves the ledger balanced; its panic propagates where that is safe (see
    /// [`raise`](Self::raise)).
    pub(crate) fn close(&self, element: T) {
        self.count(|s| &s.closed);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.call_close(element))) {
            self.raise(panic);
        }
    }

    /// Propagates a close callback's panic, or contains it (counted in `contained_panics`)
    /// where propagating could abort the process: see [`crate::unwind`].
    pub(crate) fn raise(&self, panic: Box<dyn Any + Send>) {
        if unwind::must_contain() {
            self.count(|s| &s.contained_panics);
        } else {
            resume_unwind(panic);
        }
    }

    fn call_close(&self, element: T) {
        match &self.hooks.close {
            Some(close) => close(element),
            None => drop(element),
        }
    }

    /// Closes idle elements the pool gives up (they were counted when they came in), every
    /// one of them even if a close callback panics; returns the first panic, for the caller
    /// to propagate or contain. Only one panic can leave a call: the ones after the first are
    /// contained here, and counted.
    #[must_use]
    pub(crate) fn evict(&self, elements: Vec<T>, why: Eviction) -> Option<Box<dyn Any + Send>> {
        let mut first_panic = None;
        for element in elements {
            self.count(|s| &s.evicted);
            match why {
                Eviction::Dropped | Eviction::Cleared => {}
                Eviction::Trimmed => self.count(|s| &s.trimmed),
                Eviction::Invalid => self.count(|s| &s.invalid),
            }
            self.count(|s| &s.closed);
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.call_close(element))) {
                if first_panic.is_none() {
                    first_panic = Some(panic);
                } else {
                    self.count(|s| &s.contained_panics);
                }
            }
        }
        first_panic
    }

    /// Like [`evict`](Self::evict), then [`raise`](Self::raise)s the first panic.
    pub(crate) fn evict_and_raise(&self, elements: Vec<T>, why: Eviction) {
        if let Some(panic) = self.evict(elements, why) {
            self.raise(panic);
        }
    }

    /// Runs the reset hooks on a returned element where it lies: the pool's [`Reset`] `reset`,
    /// then the boxed closure given to `Builder::reset`, if any (on an element `reset` kept).
    /// Returns `true` if the element is to be kept; `false` if a hook refused it, in which
    /// case it has been moved out of `slot` and closed. If a hook panics, the element is moved
    /// out and closed before the panic propagates.
    ///
    /// The element is never moved on the way that keeps it, and the answer comes back in a
    /// register: every copy of a large `T` on the hot path costs a reload of what was just
    /// stored (see [`crate::word_move`]). Everything after a refusal or a panic is out of line.
    ///
    /// # Safety
    ///
    /// `slot` holds an initialised element that nothing else uses while this runs; if this
    /// returns `false` or unwinds, the caller treats the element as moved out (never drops,
    /// reads or returns it).
    #[inline(always)]
    pub(crate) unsafe fn reset_or_close<R: Reset<T>>(
        &self,
        reset: &R,
        slot: &mut Stored<T>,
    ) -> bool {
        let slot: *mut Stored<T> = slot;
        // SAFETY: the caller's contract is `reset_keeps`'s.
        let keep = unsafe { self.reset_keeps(reset, slot) };
        if !keep {
            // SAFETY: the caller's contract is `reset_refused`'s.
            unsafe { self.reset_refused(slot) };
        }
        keep
    }

    /// The reset hooks' answer on the element in `slot`, as for
    /// [`reset_or_close`](Self::reset_or_close), but a refused element is left in `slot` for
    /// the caller to close (a guard closes it with the callback's panics contained). A hook's
    /// panic still closes the element as it unwinds.
    ///
    /// Inlined with `reset`'s call, and with the boxed closure's call when `R` is
    /// [`NoReset`](crate::NoReset) (beside another `Reset` the boxed closure is called out of
    /// line). With `NoReset` and no boxed closure, all that is left is the test for it.
    ///
    /// # Safety
    ///
    /// `slot` holds an initialised element that nothing else uses while this runs; if this
    /// unwinds, the caller treats the element as moved out.
    #[inline(always)]
    pub(crate) unsafe fn reset_keeps<R: Reset<T>>(&self, reset: &R, slot: *mut Stored<T>) -> bool {
        if TypeId::of::<R>() == TypeId::of::<NoReset>() {
            // The boxed closure is the pool's only hook: inlined, one call per give-back.
            // SAFETY: the caller's contract is `closure_keeps`'s.
            unsafe { self.closure_keeps(slot) }
        } else {
            // The pool's `Reset`, inlined; a boxed closure beside it (rare) is called out of
            // line, so that the give-back, which is not always inlined itself, stays short.
            // SAFETY: the caller's contract is `run_reset`'s and `closure_keeps_out_of_line`'s;
            // the second runs only on an element the first kept.
            unsafe {
                self.run_reset(slot, |element| reset.reset(element))
                    && (self.hooks.reset.is_none() || self.closure_keeps_out_of_line(slot))
            }
        }
    }

    /// Weighs the element in `slot` with the pool's weigher (a pool with one), closing the
    /// element if the weigher panics, as a reset hook's panic does.
    ///
    /// # Safety
    ///
    /// As for [`reset_keeps`](Self::reset_keeps).
    #[inline]
    pub(crate) unsafe fn weigh(&self, slot: *mut Stored<T>) -> usize {
        let Some(weigher) = &self.hooks.weigher else {
            return 1;
        };
        // SAFETY: the caller's contract.
        unsafe { self.run_reset(slot, |element| weigher(element)) }
    }

    /// Runs `hook` on the element in `slot`, closing the element if the hook panics.
    ///
    /// # Safety
    ///
    /// As for [`reset_keeps`](Self::reset_keeps).
    #[inline(always)]
    pub(crate) unsafe fn run_reset<A>(
        &self,
        slot: *mut Stored<T>,
        hook: impl FnOnce(&mut T) -> A,
    ) -> A {
        // A drop guard, not `catch_unwind`: a panic of the hook needs no catching and
        // re-raising, only the element closed on its way out. The cleanup is a landing pad
        // and one cold call; where the hook cannot unwind, the compiler drops it.
        let close_on_unwind = CloseOnUnwind { shared: self, slot };
        // SAFETY: `slot` is valid and used by nothing else (the caller); the hook's borrow
        // ends when it returns or unwinds, before `slot` is used again.
        let keep = hook(unsafe { (*slot).get_mut() });
        std::mem::forget(close_on_unwind);
        keep
    }

    /// Runs the closure given to `Builder::reset`, if any, on the element in `slot`.
    ///
    /// # Safety
    ///
    /// As for [`reset_keeps`](Self::reset_keeps).
    #[inline(always)]
    unsafe fn closure_keeps(&self, slot: *mut Stored<T>) -> bool {
        match &self.hooks.reset {
            None => true,
            // SAFETY: the caller's contract.
            Some(closure) => unsafe { self.run_reset(slot, |element| closure(element)) },
        }
    }

    /// [`closure_keeps`](Self::closure_keeps) as a call, for pools with a `Reset` type.
    ///
    /// # Safety
    ///
    /// As for [`reset_keeps`](Self::reset_keeps).
    #[inline(never)]
    unsafe fn closure_keeps_out_of_line(&self, slot: *mut Stored<T>) -> bool {
        // SAFETY: the caller's contract.
        unsafe { self.closure_keeps(slot) }
    }

    /// A reset hook refused the element in `slot`: closes it.
    ///
    /// # Safety
    ///
    /// `slot` holds an initialised element that nothing else uses; the caller treats it as
    /// moved out afterwards.
    #[cold]
    #[inline(never)]
    unsafe fn reset_refused(&self, slot: *mut Stored<T>) {
        // SAFETY: `slot` holds the element (the caller), which the hook had only by reference.
        self.close(unsafe { std::ptr::read(slot) }.into_inner());
    }

    /// Runs the validator on an idle element about to be handed out: `Some` if it may be,
    /// `None` if it was refused (and closed). A validator that panics gets its element closed
    /// before the panic propagates.
    ///
    /// `element` is the element itself or as a list holds it: `view` shows it to the validator
    /// and `take` takes it out to be closed.
    pub(crate) fn validate<E>(
        &self,
        element: E,
        view: fn(&E) -> &T,
        take: fn(E) -> T,
    ) -> Option<E> {
        let Some(validate) = &self.hooks.validate else {
            return Some(element);
        };
        match catch_unwind(AssertUnwindSafe(|| validate(view(&element)))) {
            Ok(true) => Some(element),
            Ok(false) => {
                self.evict_and_raise(vec![take(element)], Eviction::Invalid);
                None
            }
            Err(panic) => {
                // The validator's panic is the one that propagates; a close callback that
                // panics on its element too is contained.
                if self.evict(vec![take(element)], Eviction::Invalid).is_some() {
                    self.count(|s| &s.contained_panics);
                }
                resume_unwind(panic)
            }
        }
    }
}
