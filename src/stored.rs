//! An element as the pool keeps it: in place when small, in a block of its own when large.
//!
//! A thread's list and a guard move their element by value: the list's pop copies it into
//! the guard, the guard's drop copies it back. For a small element that is a few machine
//! words (see [`crate::word_move`]); for a parser state or a search cache of a kilobyte or
//! more it is a `memcpy` each way, which costs more than the rest of the round trip. So an
//! element larger than [`BOXED_ABOVE`] bytes lives in a heap block of its own from the moment
//! it enters the pool until it leaves it, and what moves between the lists and the guards is
//! the block's pointer.
//!
//! The choice is made per type, at compile time, and no public type changes: [`Stored<T>`]
//! has `T`'s layout, holding either the element itself or, in its first bytes, the pointer to
//! its block. A large element is moved once when it enters the pool (`put`, or the checkout
//! of a new element) and once when it leaves (`get`, `detach`, close); the block it leaves
//! behind is kept for the next one that enters on the same thread (see [`SpareBlock`]).
//!
//! A guard still has `T`'s size: the language gives a generic type no layout that depends on
//! `T`'s size, so the guard holds the element's bytes or its pointer in the same place. An
//! element used where its guard was made pays nothing for its size; moving the guard itself
//! (into a `Vec` of guards, say) copies `T`'s size, as moving the element would.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::Cell;
use std::mem::{ManuallyDrop, MaybeUninit, size_of};
use std::ptr::NonNull;

/// Elements larger than this many bytes are boxed inside the pool (see the module's doc).
///
/// A choice between two measured ends: up to 64 bytes an element moves word by word at the
/// cost of a few loads and stores, and at 1,400 bytes its two copies cost many times the rest
/// of the round trip. At 256 bytes the copies are eight 32-byte loads and stores each way,
/// against an indirection on each access of a boxed element, to memory its last user warmed.
pub(crate) const BOXED_ABOVE: usize = 256;

/// An element as a list or a guard holds it: `T` itself, or, for `T` larger than
/// [`BOXED_ABOVE`], the pointer to the block that holds it, in its first bytes.
///
/// # Invariant
///
/// A `Stored<T>` always holds one element: when `T` is not [boxed](Self::BOXED), `0` is an
/// initialised `T`; when it is, the first `size_of::<*mut T>()` bytes of `0` (read unaligned)
/// are a pointer to a block from [`alloc_block`] holding the element, owned by this value, and the other bytes are
/// uninitialised. Copying a `Stored<T>`'s bytes moves the element (as for any `T`), and
/// dropping it drops the element.
#[repr(transparent)]
pub(crate) struct Stored<T>(MaybeUninit<T>);

impl<T> Stored<T> {
    /// Whether elements of type `T` are boxed; known at compile time. A pointer fits in any
    /// `T` above the threshold.
    pub(crate) const BOXED: bool = size_of::<T>() > BOXED_ABOVE;

    /// Takes `element` in: into a block of its own, if `T` is boxed.
    #[inline(always)]
    pub(crate) fn new(element: T) -> Self {
        if Self::BOXED {
            let block = alloc_block::<T>().as_ptr();
            // SAFETY: a fresh block for one `T`, valid for writes and aligned (its layout); it
            // holds the element, so it may be stored.
            unsafe {
                block.write(element);
                Self::from_raw(block)
            }
        } else {
            Stored(MaybeUninit::new(element))
        }
    }

    /// A boxed element's pointer, given up by this value: a word that code merging two
    /// paths can carry in a register, where a `Stored<T>` is `T`'s size.
    ///
    /// # Panics
    ///
    /// In debug builds, if `T` is not boxed.
    #[inline(always)]
    pub(crate) fn into_raw(self) -> *mut T {
        let this = ManuallyDrop::new(self);
        // SAFETY: the caller has a boxed `T`; `this` is never dropped, so the block moves out.
        unsafe { this.boxed() }
    }

    /// A boxed element from its block's pointer: one that [`into_raw`](Self::into_raw) gave
    /// up, or a block from [`alloc_block`] that holds an element.
    ///
    /// # Safety
    ///
    /// `T` is boxed, and `raw` is such a pointer, not used again.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(raw: *mut T) -> Self {
        debug_assert!(Self::BOXED);
        let mut stored = Stored(MaybeUninit::<T>::uninit());
        // SAFETY: `T` is larger than a pointer (`BOXED`), so the pointer's bytes lie inside
        // `stored`; an unaligned write, since `T` may be aligned to less than a pointer.
        unsafe { stored.0.as_mut_ptr().cast::<*mut T>().write_unaligned(raw) };
        stored
    }

    /// The boxed element's pointer.
    ///
    /// # Safety
    ///
    /// `T` is boxed (`Self::BOXED`).
    #[inline(always)]
    unsafe fn boxed(&self) -> *mut T {
        debug_assert!(Self::BOXED);
        // SAFETY: the pointer's bytes are initialised (the type's invariant, `T` being boxed).
        unsafe { self.0.as_ptr().cast::<*mut T>().read_unaligned() }
    }

    /// The element.
    #[inline(always)]
    pub(crate) fn get(&self) -> &T {
        if Self::BOXED {
            // SAFETY: `T` is boxed, and the block is this value's (the invariant), so it lives
            // and is not mutated while `self` is borrowed.
            unsafe { &*self.boxed() }
        } else {
            // SAFETY: `T` is not boxed, so `0` is an initialised `T` (the invariant).
            unsafe { self.0.assume_init_ref() }
        }
    }

    /// The element, mutably.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        if Self::BOXED {
            // SAFETY: as in `get`; `&mut self` makes the access exclusive.
            unsafe { &mut *self.boxed() }
        } else {
            // SAFETY: as in `get`.
            unsafe { self.0.assume_init_mut() }
        }
    }

    /// Takes the element out: out of its block, if `T` is boxed (one move; the block is freed).
    #[inline(always)]
    pub(crate) fn into_inner(self) -> T {
        let this = ManuallyDrop::new(self);
        if Self::BOXED {
            // SAFETY: the block is this value's (the invariant), and `this` is never used again
            // nor dropped: the element moves out once, and the block is freed once.
            unsafe {
                let boxed = this.boxed();
                let element = boxed.read();
                free_block(boxed);
                element
            }
        } else {
            // SAFETY: as above, `0` is an initialised `T`, read out once.
            unsafe { this.0.assume_init_read() }
        }
    }
}

impl<T> Drop for Stored<T> {
    /// Drops the element (a list dropped with elements in it; the pool itself closes them).
    fn drop(&mut self) {
        if Self::BOXED {
            // SAFETY: the block is this value's (the invariant), dropped and freed once, as `self` is
            // not used again.
            unsafe {
                let boxed = self.boxed();
                boxed.drop_in_place();
                free_block(boxed);
            }
        } else {
            // SAFETY: `0` is an initialised `T`, dropped once.
            unsafe { self.0.assume_init_drop() };
        }
    }
}

/// The free block a thread keeps for the next large element taken in by value.
///
/// `get()` of a boxed element moves it out of its block and `put` moves one into a block: the
/// block the one frees, the other takes, as an allocator's thread cache would, but for blocks
/// of any size (a general-purpose allocator's thread cache stops at about a kilobyte, and
/// freeing a larger block may return memory to the system, to be asked for again at once).
/// One block per thread at most, freed when the thread exits.
struct SpareBlock(Cell<Option<(NonNull<u8>, Layout)>>);

impl Drop for SpareBlock {
    fn drop(&mut self) {
        if let Some((block, layout)) = self.0.take() {
            // SAFETY: the block came from `alloc` with `layout` and nothing else holds it.
            unsafe { dealloc(block.as_ptr(), layout) };
        }
    }
}

thread_local! {
    static SPARE: SpareBlock = const { SpareBlock(Cell::new(None)) };
}

/// A block for one `T`: the thread's spare block if it has `T`'s layout, else a new one.
///
/// Out of line, as [`free_block`] is: a call costs little beside the move of a large element,
/// and `put` and `get`, which take one in and out, stay small enough to be inlined.
#[inline(never)]
fn alloc_block<T>() -> NonNull<T> {
    let layout = Layout::new::<T>();
    // `try_with`: a thread's destructors may give elements back after `SPARE` is gone.
    let spare = SPARE
        .try_with(|spare| match spare.0.get() {
            Some((block, kept)) if kept == layout => {
                spare.0.set(None);
                Some(block)
            }
            _ => None,
        })
        .ok()
        .flatten();
    match spare {
        Some(block) => block.cast(),
        None => {
            // SAFETY: `layout` has a non-zero size (only types above `BOXED_ABOVE` bytes are
            // boxed).
            let block = unsafe { alloc(layout) };
            NonNull::new(block)
                .unwrap_or_else(|| handle_alloc_error(layout))
                .cast()
        }
    }
}

/// Frees a block from [`alloc_block`] whose element has been moved out or dropped: it becomes
/// the thread's spare block if the thread has none.
///
/// # Safety
///
/// `block` came from `alloc_block::<T>`, holds no element any more, and is not used again.
#[inline(never)]
unsafe fn free_block<T>(block: *mut T) {
    let layout = Layout::new::<T>();
    let block = block.cast::<u8>();
    let kept = SPARE
        .try_with(|spare| {
            let free = spare.0.get().is_none();
            if free {
                // SAFETY: `alloc_block` never returns null.
                spare
                    .0
                    .set(Some((unsafe { NonNull::new_unchecked(block) }, layout)));
            }
            free
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: the block came from `alloc` with `layout` (the caller), freed once.
        unsafe { dealloc(block, layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::{BOXED_ABOVE, Stored};
    use std::mem::{ManuallyDrop, size_of};

    /// A large element with a heap part, so that Miri sees both the block and what it owns.
    struct Large {
        bytes: [u8; 1400],
        name: String,
    }

    #[test]
    fn which_types_are_boxed() {
        let boxed = [
            Stored::<Vec<u8>>::BOXED,
            Stored::<[u8; BOXED_ABOVE]>::BOXED,
            Stored::<[u8; BOXED_ABOVE + 1]>::BOXED,
            Stored::<Large>::BOXED,
            Stored::<()>::BOXED,
        ];
        assert_eq!(boxed, [false, false, true, true, false]);
        assert_eq!(size_of::<Stored<Large>>(), size_of::<Large>());
    }

    #[test]
    fn a_large_element_round_trips_through_its_block() {
        let mut stored = Stored::new(Large {
            bytes: [7; 1400],
            name: String::from("cache"),
        });
        stored.get_mut().bytes[1399] = 9;
        stored.get_mut().name.push('!');
        // Moved by its bytes, as the list and the guards move it.
        let moved = ManuallyDrop::new(stored);
        // SAFETY: `moved` is never used again, so the element moves once.
        let stored: Stored<Large> = unsafe { std::ptr::read(&*moved) };
        assert_eq!(stored.get().bytes[1399], 9);
        let large = stored.into_inner();
        assert_eq!((large.bytes[0], large.name.as_str()), (7, "cache!"));
        // Dropped inside: the block and the `String` are freed once (Miri checks).
        drop(Stored::new(Large {
            bytes: [0; 1400],
            name: String::from("dropped"),
        }));
    }

    #[test]
    fn a_small_element_is_kept_in_place() {
        let mut stored = Stored::new(vec![1u8, 2]);
        stored.get_mut().push(3);
        assert_eq!(stored.get(), &[1, 2, 3]);
        assert_eq!(stored.into_inner(), [1, 2, 3]);
        drop(Stored::new(String::from("dropped")));
    }
}
