//! Reset hooks in the pool's type: the second type parameter of
//! [`CachePool`](crate::CachePool), held by value.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};

/// Readies an element given back to the pool for its next user: the pool's reset hook, held
/// in the pool's type and by value, as a `HashMap` holds its hasher.
///
/// A pool's reset hook runs on every element given back, so it sits on the hot path. Given to
/// [`Builder::reset_with`](crate::Builder::reset_with), the hook is part of the pool's type,
/// so its [`reset`](Self::reset) is inlined where the element is given back (`put` or a
/// guard's drop). The pool's type then names it: `CachePool<Vec<u8>, Clear>`. A hook given to
/// [`Builder::reset`](crate::Builder::reset) instead is boxed: the pool's type stays
/// `CachePool<T>`, and every give-back calls the hook through a pointer, out of line.
///
/// A `Reset` is one of:
///
/// - [`NoReset`], the default, which keeps elements as they come back, or [`Clear`], which
///   empties the standard collections and `String`;
/// - a closure or function `Fn(&mut T) -> bool`, with its parameter's type written out
///   (`|buf: &mut Vec<u8>| ...`), or given to [`Builder::reset_fn`](crate::Builder::reset_fn),
///   which infers it; what it captures is part of every handle to the pool, and
///   cloned with it, so it must be `Clone` (share anything else through an `Arc`);
/// - a type of your own.
///
/// ```
/// use cachepool::CachePool;
///
/// let limit = 1 << 16; // read from configuration, say
/// let pool = CachePool::builder(|| Vec::<u8>::with_capacity(4096))
///     .reset_with(move |buf: &mut Vec<u8>| {
///         buf.clear();
///         buf.capacity() <= limit // a buffer that grew past the limit is closed
///     })
///     .build();
/// pool.checkout().extend_from_slice(b"request");
/// assert!(pool.checkout().is_empty());
/// ```
///
/// A type of your own:
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
/// #[derive(Clone)]
/// struct Rewind;
///
/// impl Reset<Parser> for Rewind {
///     fn reset(&self, parser: &mut Parser) -> bool {
///         parser.depth = 0;
///         parser.scratch.clear();
///         parser.scratch.capacity() <= 1 << 16
///     }
/// }
///
/// let pool: CachePool<Parser, Rewind> =
///     CachePool::builder(|| Parser { depth: 0, scratch: Vec::new() })
///         .reset_with(Rewind)
///         .build();
/// {
///     let mut parser = pool.checkout();
///     parser.depth = 3;
///     parser.scratch.resize(1 << 20, 0);
/// } // too large: closed instead of kept
/// assert_eq!((pool.stats().closed, pool.stats().idle), (1, 0));
/// ```
///
/// A closure given to [`Builder::reset`](crate::Builder::reset) as well runs after the
/// `Reset`, on the elements it keeps.
///
/// # Naming a pool with a `Reset`
///
/// `reset_with(r)` changes the pool's type from `CachePool<T>` to `CachePool<T, R>`, so a
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
///         .reset_with(Clear)
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
/// /// Works on any pool of `Vec<u8>`, whatever its `Reset`.
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
/// A closure's type has no name, so a pool kept in a field or a `static` takes a function
/// pointer, `fn(&mut T) -> bool`, which a closure that captures nothing becomes (the call is
/// then through the pointer, which costs less than a hook boxed by `Builder::reset`, more
/// than a closure or type the compiler can see into); or a type of your own.
///
/// ```
/// use std::sync::LazyLock;
/// use cachepool::CachePool;
///
/// type Lines = CachePool<String, fn(&mut String) -> bool>;
///
/// static LINES: LazyLock<Lines> = LazyLock::new(|| {
///     CachePool::builder(String::new)
///         .reset_with((|s: &mut String| {
///             s.clear();
///             true
///         }) as fn(&mut String) -> bool)
///         .build()
/// });
///
/// LINES.checkout().push_str("GET /");
/// assert!(LINES.checkout().is_empty());
/// ```
///
/// The guards and the wrapper carry the same parameter: `Checkout<'_, Vec<u8>, Clear>`,
/// `OwnedCheckout<Vec<u8>, Clear>`, `CacheWrapper<Vec<u8>, D, Clear>`. Each handle holds a
/// clone of the `Reset` (hence `Clone`), and the pool is `Send` and `Sync` when the `Reset`
/// is (as it is when what it captures is):
///
/// ```compile_fail
/// use std::rc::Rc;
/// let counter = Rc::new(());
/// let pool = cachepool::CachePool::builder(String::new)
///     .reset_with(move |_: &mut String| Rc::strong_count(&counter) > 0)
///     .build();
/// std::thread::spawn(move || drop(pool)); // an `Rc` is neither `Send` nor `Sync`
/// ```
///
/// # Panics
///
/// A `reset` that panics gets its element closed (handed to the close callback) before the
/// panic propagates out of the `put` or guard drop that called it; the element is not kept.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a reset hook for `{T}`",
    note = "a reset hook is `NoReset`, `Clear`, a type implementing `Reset<{T}>`, or a `Clone + 'static` closure or function `Fn(&mut {T}) -> bool` whose parameter's type is written out (`|x: &mut {T}| ...`)"
)]
pub trait Reset<T>: Clone + 'static {
    /// Whether [`weigh`](Self::weigh) is the pool's weigher, for its weight budget
    /// ([`Builder::max_idle_weight`](crate::Builder::max_idle_weight)): a weigher in the pool's
    /// type, inlined where elements are given back, as [`reset`](Self::reset) is, where the one
    /// given to [`Builder::weigher`](crate::Builder::weigher) is boxed and called out of line.
    /// `false` unless a type says otherwise; [`Weigh`] pairs a `Reset` with a weigher.
    const WEIGHS: bool = false;

    /// Readies `element` for reuse. Returning `false` refuses it: the pool closes it instead
    /// of keeping it (for an element left broken, or grown too large to keep).
    fn reset(&self, element: &mut T) -> bool;

    /// The weight of an element given back, after [`reset`](Self::reset) kept it, where
    /// [`WEIGHS`](Self::WEIGHS) is `true`: called once per give-back, as `Builder::weigher`'s
    /// weigher is (see there for what the weight decides). A weigher that panics gets its
    /// element closed, as a `reset` that panics does.
    #[inline(always)]
    fn weigh(&self, element: &T) -> usize {
        let _ = element;
        1
    }
}

/// A [`Reset`] together with a weigher in the pool's type: `reset_with(Weigh(Clear, ...))`
/// gives the pool the weigher that [`Builder::weigher`](crate::Builder::weigher) would, but
/// inlined where elements are given back rather than boxed: a weighed pool's checkout and
/// give-back stay on the hot path, and cost a half to two thirds of what they cost with the
/// boxed weigher (`docs/benchmarks.md`).
///
/// The weigher is a closure or function `Fn(&T) -> usize`; a pool in a field or a `static`
/// names it as a function pointer, as for a `reset_with` closure:
///
/// ```
/// use std::sync::LazyLock;
/// use cachepool::{CachePool, Clear, Weigh};
///
/// type Buffers = CachePool<Vec<u8>, Weigh<Clear, fn(&Vec<u8>) -> usize>>;
///
/// static BUFFERS: LazyLock<Buffers> = LazyLock::new(|| {
///     CachePool::builder(|| Vec::with_capacity(4096))
///         .reset_with(Weigh(Clear, Vec::capacity as fn(&Vec<u8>) -> usize))
///         .max_idle_weight(64 << 20)
///         .build()
/// });
///
/// BUFFERS.checkout().extend_from_slice(b"GET /");
/// assert_eq!(BUFFERS.stats().idle_weight, 4096);
/// let mut large = BUFFERS.checkout_at_least(16 << 20);
/// large.reserve(16 << 20);
/// drop(large);
/// assert!(BUFFERS.checkout_at_least(16 << 20).capacity() >= 16 << 20);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Weigh<R, F>(pub R, pub F);

impl<T, R: Reset<T>, F> Reset<T> for Weigh<R, F>
where
    F: Fn(&T) -> usize + Clone + 'static,
{
    const WEIGHS: bool = true;

    #[inline(always)]
    fn reset(&self, element: &mut T) -> bool {
        self.0.reset(element)
    }

    #[inline(always)]
    fn weigh(&self, element: &T) -> usize {
        (self.1)(element)
    }
}

/// A closure or function is a `Reset`: `reset_with(|buf: &mut Vec<u8>| ...)`.
impl<T, F> Reset<T> for F
where
    F: Fn(&mut T) -> bool + Clone + 'static,
{
    #[inline(always)]
    fn reset(&self, element: &mut T) -> bool {
        self(element)
    }
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
    fn reset(&self, _: &mut T) -> bool {
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
///     .reset_with(Clear)
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
                fn reset(&self, collection: &mut $collection) -> bool {
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
