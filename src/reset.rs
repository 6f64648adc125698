//! Reset hooks chosen by type: the second type parameter of [`CachePool`](crate::CachePool).

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};

/// Readies an element given back to the pool for its next user; chosen by type, as a
/// `HashMap` chooses its hasher.
///
/// A pool's reset hook runs on every element given back, so it sits on the hot path. A hook
/// given as a closure to [`Builder::reset`](crate::Builder::reset) is reached through a
/// pointer: one call per give-back that the compiler cannot see into. A `Reset` type, given
/// to [`Builder::reset_with`](crate::Builder::reset_with), is part of the pool's type, so its
/// [`reset`](Self::reset) is inlined where the element is given back (`put` or a guard's
/// drop). The pool's type then names it: `CachePool<Vec<u8>, Clear>`.
///
/// The default, [`NoReset`], keeps elements as they come back. [`Clear`] empties the standard
/// collections and `String`, keeping their capacity. For anything else, implement the trait
/// on a type of your own:
///
/// ```
/// use cachepool::{CachePool, Reset};
///
/// struct Parser {
///     depth: usize,
///     scratch: Vec<u8>,
/// }
///
/// /// Rewinds a parser; gives up on one whose scratch space grew past 64 KiB.
/// struct Rewind;
///
/// impl Reset<Parser> for Rewind {
///     fn reset(parser: &mut Parser) -> bool {
///         parser.depth = 0;
///         parser.scratch.clear();
///         parser.scratch.capacity() <= 1 << 16
///     }
/// }
///
/// let pool: CachePool<Parser, Rewind> =
///     CachePool::builder(|| Parser { depth: 0, scratch: Vec::new() })
///         .reset_with::<Rewind>()
///         .build();
/// {
///     let mut parser = pool.checkout();
///     parser.depth = 3;
///     parser.scratch.resize(1 << 20, 0);
/// } // too large: closed instead of kept
/// assert_eq!((pool.stats().closed, pool.stats().idle), (1, 0));
/// ```
///
/// A closure given to [`Builder::reset`](crate::Builder::reset) as well runs after the type's
/// `reset`, on the elements it keeps.
///
/// # Naming a pool with a `Reset` type
///
/// `reset_with::<R>()` changes the pool's type from `CachePool<T>` to `CachePool<T, R>`, so a
/// function taking `&CachePool<Vec<u8>>` does not accept it. Name the type once, with an
/// alias, where the pool is defined, and use the alias in fields, statics and signatures;
/// code that should work with any pool of that element type is generic over `R`:
///
/// ```
/// use cachepool::{CachePool, Clear, Reset};
///
/// /// The pool of request buffers: emptied when given back.
/// pub type BufPool = CachePool<Vec<u8>, Clear>;
///
/// pub fn buffer_pool() -> BufPool {
///     CachePool::builder(|| Vec::with_capacity(4096))
///         .reset_with::<Clear>()
///         .build()
/// }
///
/// struct Server {
///     buffers: BufPool,
/// }
///
/// /// Works on this pool only.
/// fn respond(pool: &BufPool, body: &[u8]) -> usize {
///     let mut buf = pool.checkout();
///     buf.extend_from_slice(body);
///     buf.len()
/// }
///
/// /// Works on any pool of `Vec<u8>`, whatever its `Reset` type.
/// fn warm_up<R: Reset<Vec<u8>>>(pool: &CachePool<Vec<u8>, R>, n: usize) -> usize {
///     pool.prefill(n).unwrap_or(0)
/// }
///
/// let server = Server { buffers: buffer_pool() };
/// assert_eq!(respond(&server.buffers, b"hello"), 5);
/// assert!(server.buffers.checkout().is_empty()); // cleared by `Clear`
/// assert_eq!(warm_up(&server.buffers, 2), 2);
/// assert_eq!(warm_up(&CachePool::new(Vec::new), 2), 2); // a `CachePool<Vec<u8>>` too
/// ```
///
/// The guards and the wrapper carry the same parameter: `Checkout<'_, Vec<u8>, Clear>`,
/// `OwnedCheckout<Vec<u8>, Clear>`, `CacheWrapper<Vec<u8>, D, Clear>`.
///
/// `reset` takes no `self`: the pool only names the type, never makes a value of it, so a
/// `Reset` type holds no state (a hook that needs run-time values is a closure).
///
/// # Panics
///
/// A `reset` that panics gets its element closed (handed to the close callback) before the
/// panic propagates out of the `put` or guard drop that called it; the element is not kept.
pub trait Reset<T>: 'static {
    /// Readies `element` for reuse. Returning `false` refuses it: the pool closes it instead
    /// of keeping it (for an element left broken, or grown too large to keep).
    fn reset(element: &mut T) -> bool;
}

/// Keeps every element as it comes back: the default [`Reset`] of a pool.
///
/// ```
/// let pool = cachepool::CachePool::new(String::new); // a CachePool<String, NoReset>
/// pool.put(String::from("left as it was"));
/// assert_eq!(pool.get(), "left as it was");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoReset;

impl<T> Reset<T> for NoReset {
    #[inline(always)]
    fn reset(_: &mut T) -> bool {
        true
    }
}

/// Empties a collection or a `String` given back, keeping its capacity; keeps every element.
///
/// Implemented for `Vec`, `VecDeque`, `String`, `HashMap`, `HashSet`, `BTreeMap`, `BTreeSet`
/// and `BinaryHeap`.
///
/// ```
/// use cachepool::{CachePool, Clear};
///
/// let pool: CachePool<Vec<u8>, Clear> = CachePool::builder(|| Vec::with_capacity(4096))
///     .reset_with::<Clear>()
///     .build();
/// pool.checkout().extend_from_slice(b"request 1");
/// let buf = pool.checkout();
/// assert!(buf.is_empty() && buf.capacity() >= 4096);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Clear;

/// `impl Reset<$collection> for Clear` calling the collection's own `clear`.
macro_rules! clear_impls {
    ($($collection:ty $(, <$($param:ident),*>)?);* $(;)?) => {
        $(
            impl$(<$($param),*>)? Reset<$collection> for Clear {
                #[inline]
                fn reset(collection: &mut $collection) -> bool {
                    collection.clear();
                    true
                }
            }
        )*
    };
}

clear_impls! {
    String;
    Vec<U>, <U>;
    VecDeque<U>, <U>;
    HashMap<K, V, S>, <K, V, S>;
    HashSet<K, S>, <K, S>;
    BTreeMap<K, V>, <K, V>;
    BTreeSet<K>, <K>;
    BinaryHeap<U>, <U>;
}
