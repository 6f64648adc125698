//! A thread list's buffer of elements: a `Vec` of [`Stored`] elements, one word per slot when
//! the elements are boxed.
//!
//! A `Vec<Stored<T>>` would give every slot `T`'s size, boxed or not, and a list of boxed
//! kilobyte elements would keep a kilobyte of buffer beside each block. So the buffer is a
//! `Vec<Stored<T>>` for elements kept in place and a `Vec<*mut T>` of block pointers for boxed
//! ones, told apart at compile time, in the 24 bytes of one `Vec` (the list's hot fields must
//! fit in one cache line with the shard's handshake).

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use crate::stored::Stored;
use crate::word_move;

/// The elements of a thread's list, warmest last.
///
/// # Invariant
///
/// `(ptr, len, cap)` are the raw parts of a `Vec<Stored<T>>` when `T` is not boxed, and of a
/// `Vec<*mut T>` when it is ([`Stored::BOXED`]), owned by this value: `ptr[..len]` are its
/// elements (each pointer owned as a boxed `Stored<T>` owns it), and `ptr[len..cap]` spare
/// capacity.
pub(crate) struct StoredVec<T> {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
    /// Owns `T`s, as a `Vec<T>` does.
    _elements: PhantomData<T>,
}

// SAFETY: a `StoredVec<T>` owns its elements and its buffer as a `Vec<T>` does, so it may go to
// another thread when `T` may.
unsafe impl<T: Send> Send for StoredVec<T> {}
// SAFETY: through `&StoredVec<T>` only lengths are read; as for `Vec<T>`.
unsafe impl<T: Sync> Sync for StoredVec<T> {}

/// The `Vec` a [`StoredVec`] is, for the time of one operation.
enum Parts<'a, T> {
    Inline(&'a mut Vec<Stored<T>>),
    Boxed(&'a mut Vec<*mut T>),
}

impl<T> StoredVec<T> {
    /// An empty buffer, allocating nothing.
    pub(crate) const fn new() -> Self {
        let ptr = if Stored::<T>::BOXED {
            NonNull::<*mut T>::dangling().cast()
        } else {
            NonNull::<Stored<T>>::dangling().cast()
        };
        StoredVec {
            ptr,
            len: 0,
            cap: 0,
            _elements: PhantomData,
        }
    }

    /// Runs `f` on the buffer as the `Vec` it is, and keeps what `f` made of it.
    #[inline]
    fn with_parts<R>(&mut self, f: impl FnOnce(Parts<'_, T>) -> R) -> R {
        // Written back also if `f` unwinds (a failed allocation), so that the buffer stays
        // the `Vec` it was or became.
        struct WriteBack<'a, T, S> {
            to: &'a mut StoredVec<T>,
            vec: ManuallyDrop<Vec<S>>,
        }
        impl<T, S> Drop for WriteBack<'_, T, S> {
            fn drop(&mut self) {
                // SAFETY: a `Vec`'s pointer is never null.
                self.to.ptr = unsafe { NonNull::new_unchecked(self.vec.as_mut_ptr().cast()) };
                (self.to.len, self.to.cap) = (self.vec.len(), self.vec.capacity());
            }
        }
        let (ptr, len, cap) = (self.ptr, self.len, self.cap);
        if Stored::<T>::BOXED {
            // SAFETY: the raw parts of a `Vec<*mut T>` (the invariant, `T` being boxed); the
            // `Vec` is never dropped, only written back.
            let vec = unsafe { Vec::from_raw_parts(ptr.cast::<*mut T>().as_ptr(), len, cap) };
            let mut back = WriteBack {
                to: self,
                vec: ManuallyDrop::new(vec),
            };
            f(Parts::Boxed(&mut back.vec))
        } else {
            // SAFETY: as above, of a `Vec<Stored<T>>`.
            let vec = unsafe { Vec::from_raw_parts(ptr.cast::<Stored<T>>().as_ptr(), len, cap) };
            let mut back = WriteBack {
                to: self,
                vec: ManuallyDrop::new(vec),
            };
            f(Parts::Inline(&mut back.vec))
        }
    }

    /// How many elements the buffer holds.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no element.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many elements it has room for without growing.
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Sets the length, as [`Vec::set_len`].
    ///
    /// # Safety
    ///
    /// `len <= capacity()`, and the slots `..len` hold elements (the hot path's pushes wrote
    /// them with [`write`](Self::write)).
    #[inline(always)]
    pub(crate) unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.cap);
        self.len = len;
    }

    /// Makes room for `additional` more elements, as [`Vec::reserve_exact`].
    pub(crate) fn reserve_exact(&mut self, additional: usize) {
        self.with_parts(|parts| match parts {
            Parts::Inline(vec) => vec.reserve_exact(additional),
            Parts::Boxed(vec) => vec.reserve_exact(additional),
        });
    }

    /// Appends an element, growing the buffer if it must.
    pub(crate) fn push(&mut self, element: Stored<T>) {
        self.with_parts(|parts| match parts {
            Parts::Inline(vec) => vec.push(element),
            Parts::Boxed(vec) => vec.push(element.into_raw()),
        });
    }

    /// Takes the last element out.
    pub(crate) fn pop(&mut self) -> Option<Stored<T>> {
        self.with_parts(|parts| match parts {
            Parts::Inline(vec) => vec.pop(),
            // SAFETY: the buffer's pointers are boxed elements' (the invariant), and the one
            // popped is not used again.
            Parts::Boxed(vec) => vec.pop().map(|raw| unsafe { Stored::from_raw(raw) }),
        })
    }

    /// Takes the `count` first (oldest) elements out, moving the others down.
    pub(crate) fn take_front(&mut self, count: usize) -> Vec<T> {
        self.with_parts(|parts| match parts {
            Parts::Inline(vec) => vec.drain(..count).map(Stored::into_inner).collect(),
            Parts::Boxed(vec) => vec
                .drain(..count)
                // SAFETY: as in `pop`.
                .map(|raw| unsafe { Stored::from_raw(raw) }.into_inner())
                .collect(),
        })
    }

    /// Takes every element out, in order; the buffer goes with them where the layouts allow.
    pub(crate) fn into_elements(self) -> Vec<T> {
        let mut this = ManuallyDrop::new(self);
        this.with_parts(|parts| match parts {
            // In place: a `Stored<T>` kept in place has `T`'s layout.
            Parts::Inline(vec) => std::mem::take(vec)
                .into_iter()
                .map(Stored::into_inner)
                .collect(),
            Parts::Boxed(vec) => std::mem::take(vec)
                .into_iter()
                // SAFETY: as in `pop`.
                .map(|raw| unsafe { Stored::from_raw(raw) }.into_inner())
                .collect(),
        })
    }

    /// Moves the element in slot `at` out, leaving the slot's bytes as they were: the hot
    /// path's pop, which then stores the shorter length itself.
    ///
    /// # Safety
    ///
    /// `at < capacity()`, slot `at` holds an element, and the caller treats it as moved out.
    #[inline(always)]
    pub(crate) unsafe fn read(&self, at: usize) -> Stored<T> {
        if Stored::<T>::BOXED {
            // SAFETY: slot `at` lies in the buffer and holds a boxed element's pointer (the
            // caller and the invariant), which the caller gives up to the result.
            unsafe { Stored::from_raw(self.ptr.cast::<*mut T>().add(at).read()) }
        } else {
            // SAFETY: as above, an element kept in place, which `Stored<T>` is as a `T` is.
            unsafe { word_move::read(self.ptr.cast::<Stored<T>>().as_ptr().add(at)) }
        }
    }

    /// Moves the element at `src` into slot `at`: the hot path's push, which then stores the
    /// longer length itself.
    ///
    /// # Safety
    ///
    /// `at < capacity()`, slot `at` holds no element, `src` holds one that nothing else uses
    /// and lies outside the buffer; the caller treats `*src` as moved out.
    #[inline(always)]
    pub(crate) unsafe fn write(&mut self, at: usize, src: *const Stored<T>) {
        if Stored::<T>::BOXED {
            // SAFETY: slot `at` lies in the buffer (the caller); a boxed `Stored` is its
            // pointer, read unaligned as `Stored::from_raw` wrote it.
            unsafe {
                let raw = src.cast::<*mut T>().read_unaligned();
                self.ptr.cast::<*mut T>().add(at).write(raw);
            }
        } else {
            // SAFETY: as above, an element kept in place, moved as a `T` is.
            unsafe { word_move::copy(src, self.ptr.cast::<Stored<T>>().as_ptr().add(at)) };
        }
    }
}

impl<T> Default for StoredVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for StoredVec<T> {
    /// Drops the elements left (a list dropped with elements in it) and frees the buffer.
    fn drop(&mut self) {
        self.with_parts(|parts| match parts {
            Parts::Inline(vec) => drop(std::mem::take(vec)),
            Parts::Boxed(vec) => {
                for raw in std::mem::take(vec) {
                    // SAFETY: as in `pop`.
                    drop(unsafe { Stored::from_raw(raw) });
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::StoredVec;
    use crate::stored::Stored;

    fn exercise<T: PartialEq + std::fmt::Debug>(make: impl Fn(usize) -> T) {
        let mut v = StoredVec::<T>::new();
        v.reserve_exact(3);
        assert_eq!(v.capacity(), 3);
        for i in 0..5 {
            v.push(Stored::new(make(i)));
        }
        assert_eq!(v.pop().map(Stored::into_inner), Some(make(4)));
        // The hot path's pair: a read out of the last slot, a write back into it.
        // SAFETY: slot 3 holds an element, moved out here and back in below.
        let last = unsafe { v.read(3) };
        // SAFETY: slot 3 was just read out, and `last` is the caller's, moved in once.
        unsafe { v.write(3, &*std::mem::ManuallyDrop::new(last)) };
        assert_eq!(v.take_front(2), [make(0), make(1)]);
        assert_eq!(v.len(), 2);
        let mut rest = StoredVec::new();
        std::mem::swap(&mut rest, &mut v);
        assert_eq!(rest.into_elements(), [make(2), make(3)]);
        v.push(Stored::new(make(9))); // dropped with the buffer
    }

    #[test]
    fn elements_in_place_and_boxed_go_through_the_same_steps() {
        exercise(|i| format!("element {i}"));
        exercise(|i| (vec![i; 2], [i as u8; 1400]));
    }
}
