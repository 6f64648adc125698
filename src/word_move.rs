//! Moves of elements on the hot path, one machine word at a time.
//!
//! A checkout reads back the element that the previous give-back stored a few nanoseconds
//! before, so the load is served from the store buffer: store-to-load forwarding. That works
//! only when each load is covered by one earlier store. A plain move of a 24-byte `Vec` is a
//! `memcpy` that the compiler lowers as it likes (8 + 16 bytes here, three 8-byte registers
//! there), and a 16-byte load spanning two 8-byte stores cannot be forwarded: it waits until
//! the stores reach the cache, a few nanoseconds each time. To see what the word moves are
//! worth on a machine, set [`MAX_WORDS`] to 0, so that every element moves the plain way, and
//! compare `cargo bench --bench compare -- 'st_hit-vec4k/(cachepool|floor)'` (a 4 KiB
//! `Vec<u8>` checked out and given back in a loop) before and after.
//!
//! So the list and the guards move mid-sized elements as a fixed sequence of aligned 8-byte
//! words, every load matching one earlier store. Volatile accesses keep the compiler from
//! merging them back into one `memcpy`; they are used on ordinary memory, which is allowed
//! (they only may not be elided, split or merged). [`read`] stores the words it loads into a
//! local with plain stores, which the compiler turns into registers: a volatile store there
//! would write the element to the stack only to load it straight back. The words are read as
//! `MaybeUninit<u64>`, which has no validity requirement (padding may be uninitialised) and,
//! being a union, carries pointer provenance along with the bytes, so a moved `Box` or `Vec`
//! stays valid.
//!
//! Other types move as usual: those aligned to less than 8 bytes (their words would not be
//! aligned), and those larger than [`MAX_WORDS`] words, for which a word-by-word copy grows
//! long (not measured: the benchmarks' elements are 8 and 24 bytes).

use std::mem::{MaybeUninit, align_of, size_of};

/// Largest element, in 8-byte words, moved word by word.
const MAX_WORDS: usize = 8;

/// Whether `T` moves word by word: aligned to at least 8, so that it is a whole number of
/// 8-byte words (a size is a multiple of its alignment) and every word is an aligned access,
/// and at most [`MAX_WORDS`] words long. Known at compile time.
#[inline(always)]
const fn by_words<T>() -> bool {
    align_of::<T>() >= 8 && size_of::<T>() <= MAX_WORDS * 8
}

/// Moves the element at `src` to `dst`, like [`std::ptr::copy_nonoverlapping`] of one `T`.
///
/// # Safety
///
/// As for `ptr::copy_nonoverlapping`: `src` is valid for reads and `dst` for writes of a `T`,
/// both aligned, and the two do not overlap. The caller treats the element as moved: `*src`
/// is not used again (unless written anew) and whatever `*dst` held was not dropped.
#[inline(always)]
pub(crate) unsafe fn copy<T>(src: *const T, dst: *mut T) {
    if !by_words::<T>() {
        // SAFETY: the caller's contract is `copy_nonoverlapping`'s.
        return unsafe { std::ptr::copy_nonoverlapping(src, dst, 1) };
    }
    let src = src.cast::<MaybeUninit<u64>>();
    let dst = dst.cast::<MaybeUninit<u64>>();
    for i in 0..size_of::<T>() / 8 {
        // SAFETY: word `i` lies inside both `T`s (the size is a whole number of words), is
        // aligned to 8 (`T` is aligned to at least 8), and the caller vouches for validity and no overlap.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
    }
}

/// Moves the element out of `src`, like [`std::ptr::read`].
///
/// # Safety
///
/// As for `std::ptr::read`: `src` is valid for reads, aligned, and points to an initialised
/// `T`, which the caller treats as moved out afterwards.
#[inline(always)]
pub(crate) unsafe fn read<T>(src: *const T) -> T {
    if !by_words::<T>() {
        // SAFETY: the caller's contract is `ptr::read`'s.
        return unsafe { std::ptr::read(src) };
    }
    // Volatile loads, so that each matches one earlier store; plain stores into the local, so
    // that the compiler can keep the element in registers rather than write it to the stack
    // and read it straight back.
    let mut element = MaybeUninit::<T>::uninit();
    let src = src.cast::<MaybeUninit<u64>>();
    let dst = element.as_mut_ptr().cast::<MaybeUninit<u64>>();
    for i in 0..size_of::<T>() / 8 {
        // SAFETY: word `i` lies inside `*src` and inside `element` (the size is a whole number
        // of words), is aligned to 8 in both, and `src` is valid for reads (the caller);
        // `element` is a fresh local, so the two do not overlap.
        unsafe { dst.add(i).write(src.add(i).read_volatile()) };
    }
    // SAFETY: every byte of `*src`, an initialised `T`, was copied into `element`.
    unsafe { element.assume_init() }
}

#[cfg(test)]
mod tests {
    use super::{by_words, copy, read};
    use std::mem::{ManuallyDrop, MaybeUninit};

    /// Moves `value` into `slot` through [`copy`], as the list's push does.
    fn put_in<T>(slot: &mut MaybeUninit<T>, value: T) {
        let value = ManuallyDrop::new(value);
        // SAFETY: `value` is a live local, `slot` is valid for writes and aligned, and the
        // value is never used again: its bytes now live in `slot`.
        unsafe { copy::<T>(&*value, slot.as_mut_ptr()) };
    }

    #[test]
    fn which_types_move_by_words() {
        assert!(by_words::<Vec<u8>>());
        assert!(by_words::<Box<[u8; 64]>>());
        assert!(by_words::<[u64; 8]>());
        assert!(!by_words::<[u64; 9]>());
        assert!(!by_words::<[u8; 24]>()); // aligned to 1
        assert!(by_words::<(u64, u8)>()); // 16 bytes, 7 of them padding
        assert!(!by_words::<()>()); // aligned to 1
    }

    /// A heap-owning value survives a round trip through a slot, word by word, and is dropped
    /// exactly once (Miri checks the provenance of the moved pointer and the frees).
    #[test]
    fn round_trip_keeps_the_value() {
        let mut slot = MaybeUninit::<Vec<String>>::uninit();
        put_in(&mut slot, vec![String::from("kept")]);
        // SAFETY: `slot` holds the `Vec` written above, read out once.
        let back: Vec<String> = unsafe { read(slot.as_ptr()) };
        assert_eq!(back, ["kept"]);
        // Uninitialised padding moves too.
        let mut padded = MaybeUninit::<(u64, u8)>::uninit();
        put_in(&mut padded, (7u64, 8u8));
        // SAFETY: `padded` holds the pair written above.
        assert_eq!(unsafe { read(padded.as_ptr()) }, (7, 8));
        // A type that moves the usual way, through the same functions.
        let mut odd = MaybeUninit::<(u8, [u8; 5])>::uninit();
        put_in(&mut odd, (1, [2; 5]));
        // SAFETY: as above.
        assert_eq!(unsafe { read(odd.as_ptr()) }, (1, [2; 5]));
    }
}
