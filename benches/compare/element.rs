//! The pooled element types every subject is measured with.
//!
//! Two elements in every workload: a 4 KiB `Vec<u8>` (the realistic buffer) and a small boxed
//! array, whose round trip is short enough that the cost of the loop itself (reloading an
//! element just stored) shows; read both. And in the single-pool workloads, large elements
//! held by value (a 1,400-byte and a 16 KiB array of words, as a search cache or a parser
//! state is a large struct) beside the same arrays boxed, for what an element's size costs.

use std::cell::RefCell;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::names;

/// Most idle elements any subject keeps; every bounded pool in the run is built with it.
pub const POOL_SIZE: usize = 1024;

/// Elements built by [`Element::create`] since the last [`reset_created`]: every subject's
/// generator goes through `create`, so this counts what each subject made during its benchmark
/// (the "elements created per subject").
///
/// Sharded by thread, one cache line per slot: a single shared counter would put a contended
/// read-modify-write on every checkout of `no_pool` (which creates on every checkout) and skew
/// its multi-threaded times; a thread bumping its own slot costs about as much as a plain add.
static CREATED: [Slot; SLOTS] = [const { Slot(AtomicU64::new(0)) }; SLOTS];

/// Slots of [`CREATED`]; threads beyond it share slots (still correct, only slower).
const SLOTS: usize = 64;

/// One counter on its own cache line.
#[repr(align(128))]
struct Slot(AtomicU64);

/// Next slot handed to a thread that creates its first element.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot of [`CREATED`].
    static MY_SLOT: usize = NEXT_SLOT.fetch_add(1, Relaxed) % SLOTS;
}

/// Starts a new count of created elements (before a subject is built; no element may be
/// created concurrently).
pub fn reset_created() {
    for slot in &CREATED {
        slot.0.store(0, Relaxed);
    }
}

/// Elements created since the last [`reset_created`] (exact once the creating threads have
/// been joined).
pub fn created() -> u64 {
    CREATED.iter().map(|slot| slot.0.load(Relaxed)).sum()
}

/// Counts one created element; called by every [`Element::create`].
#[inline]
fn count_created() {
    MY_SLOT.with(|&i| CREATED[i].0.fetch_add(1, Relaxed));
}

/// An element the subjects pool.
pub trait Element: Send + Sync + 'static {
    /// Short name, used in benchmark ids (`st_hit-vec4k`).
    const NAME: &'static str;

    /// Builds a new element (the generator every pool is given), counted in [`created`].
    fn create() -> Self;

    /// Readies a returned element for reuse (the reset hook, where the pool has one).
    fn reset(&mut self);

    /// The work the `rayon` workload does with a checked-out element: writes 64 bytes derived
    /// from `seed` into it and returns a checksum, so that the element is really used.
    fn fill(&mut self, seed: u64) -> u64;

    /// What a pool's weigher says of the element (its heap bytes).
    fn weight(&self) -> usize;

    /// Runs `f` on this element type's `thread_local!` free list: the floor subject's storage.
    /// One list per element type, because a `thread_local!` cannot be generic.
    fn with_floor_list<R>(f: impl FnOnce(&RefCell<Vec<Self>>) -> R) -> R
    where
        Self: Sized;
}

/// A 4 KiB byte buffer; cleared on return.
pub type Vec4k = Vec<u8>;

/// Capacity of a [`Vec4k`].
const VEC_CAPACITY: usize = 4096;

thread_local! {
    static FLOOR_VEC4K: RefCell<Vec<Vec4k>> = const { RefCell::new(Vec::new()) };
    static FLOOR_BOX64: RefCell<Vec<Box64>> = const { RefCell::new(Vec::new()) };
}

impl Element for Vec4k {
    const NAME: &'static str = names::VEC4K;

    fn create() -> Self {
        count_created();
        Vec::with_capacity(VEC_CAPACITY)
    }

    #[inline]
    fn reset(&mut self) {
        self.clear();
    }

    #[inline]
    fn fill(&mut self, seed: u64) -> u64 {
        self.clear();
        for i in 0..8u64 {
            self.extend_from_slice(&(seed ^ i).to_le_bytes());
        }
        self.iter().map(|&b| u64::from(b)).sum()
    }

    #[inline]
    fn weight(&self) -> usize {
        self.capacity()
    }

    fn with_floor_list<R>(f: impl FnOnce(&RefCell<Vec<Self>>) -> R) -> R {
        FLOOR_VEC4K.with(f)
    }
}

/// A small boxed element; nothing to reset.
pub type Box64 = Box<[u8; 64]>;

impl Element for Box64 {
    const NAME: &'static str = names::BOX64;

    fn create() -> Self {
        count_created();
        Box::new([0; 64])
    }

    #[inline]
    fn reset(&mut self) {}

    #[inline]
    fn fill(&mut self, seed: u64) -> u64 {
        for (i, chunk) in self.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&(seed ^ i as u64).to_le_bytes());
        }
        self.iter().map(|&b| u64::from(b)).sum()
    }

    #[inline]
    fn weight(&self) -> usize {
        64
    }

    fn with_floor_list<R>(f: impl FnOnce(&RefCell<Vec<Self>>) -> R) -> R {
        FLOOR_BOX64.with(f)
    }
}

/// A large element held by value: `$words` 8-byte words; nothing to reset.
macro_rules! large_element {
    ($array:ident, $boxed:ident, $words:literal, $name:expr, $boxed_name:expr, $floor:ident, $boxed_floor:ident) => {
        #[doc = concat!("`[u64; ", stringify!($words), "]`, held by value.")]
        pub type $array = [u64; $words];
        #[doc = concat!("`Box<[u64; ", stringify!($words), "]>`: the same array, boxed.")]
        pub type $boxed = Box<[u64; $words]>;

        thread_local! {
            static $floor: RefCell<Vec<$array>> = const { RefCell::new(Vec::new()) };
            static $boxed_floor: RefCell<Vec<$boxed>> = const { RefCell::new(Vec::new()) };
        }

        impl Element for $array {
            const NAME: &'static str = $name;

            fn create() -> Self {
                count_created();
                [0; $words]
            }

            #[inline]
            fn reset(&mut self) {}

            #[inline]
            fn fill(&mut self, seed: u64) -> u64 {
                fill_words(self, seed)
            }

            #[inline]
            fn weight(&self) -> usize {
                size_of::<Self>()
            }

            fn with_floor_list<R>(f: impl FnOnce(&RefCell<Vec<Self>>) -> R) -> R {
                $floor.with(f)
            }
        }

        impl Element for $boxed {
            const NAME: &'static str = $boxed_name;

            fn create() -> Self {
                count_created();
                Box::new([0; $words])
            }

            #[inline]
            fn reset(&mut self) {}

            #[inline]
            fn fill(&mut self, seed: u64) -> u64 {
                fill_words(&mut **self, seed)
            }

            #[inline]
            fn weight(&self) -> usize {
                size_of::<$array>()
            }

            fn with_floor_list<R>(f: impl FnOnce(&RefCell<Vec<Self>>) -> R) -> R {
                $boxed_floor.with(f)
            }
        }
    };
}

large_element!(
    Arr1400,
    BoxArr1400,
    175,
    names::ARR1400,
    names::BOX_ARR1400,
    FLOOR_ARR1400,
    FLOOR_BOX_ARR1400
);
large_element!(
    Arr16k,
    BoxArr16k,
    2048,
    names::ARR16K,
    names::BOX_ARR16K,
    FLOOR_ARR16K,
    FLOOR_BOX_ARR16K
);

/// `fill` of the large elements: 64 bytes written, as for the others, and their checksum.
#[inline]
fn fill_words(words: &mut [u64], seed: u64) -> u64 {
    for (i, word) in words[..8].iter_mut().enumerate() {
        *word = seed ^ i as u64;
    }
    words[..8].iter().sum()
}
