//! One small adapter per subject, so that every workload runs every subject the same way.
//!
//! A subject hands out an element (`take`) and takes it back (`give`). For pools whose guard
//! gives the element back on drop, `give` is that drop; for raw APIs it is the `put`. The
//! `cross_thread` workload also needs something it can send to another thread (`send`), given
//! back there (`give_sent`); for most subjects that is the item itself.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use cachepool::{CachePool, Checkout, NoReset, OwnedCheckout, Reset, Weigh};
use crossbeam_queue::ArrayQueue;

use crate::element::{Element, POOL_SIZE};
use crate::names;

/// A subject that builds itself: every one but those whose type names a closure's, which a
/// function builds instead (see [`cachepool_typed_closure`]).
pub trait Build<E: Element>: Subject<E> {
    /// A pool holding at most [`POOL_SIZE`] idle elements (where the pool has a bound).
    fn build() -> Self;
}

/// A pool under test, behind the one interface the workloads use.
pub trait Subject<E: Element>: Sync + Sized {
    /// Name in benchmark ids and in the report.
    const NAME: &'static str;

    /// A checked-out element.
    type Item<'a>: DerefMut<Target = E>
    where
        Self: 'a;

    /// What travels to another thread in `cross_thread`.
    type Sent<'a>: Send
    where
        Self: 'a;

    /// Checks an element out.
    fn take(&self) -> Self::Item<'_>;

    /// Gives an element back (on the thread that took it).
    fn give<'a>(&'a self, item: Self::Item<'a>);

    /// Turns a checked-out element into what is sent to the consumer thread.
    fn send<'a>(&'a self, item: Self::Item<'a>) -> Self::Sent<'a>;

    /// Gives back, on the consumer thread, an element sent there.
    fn give_sent<'a>(&'a self, sent: Self::Sent<'a>);

    /// Idle elements the pool holds now, where it can tell.
    fn idle(&self) -> Option<usize> {
        None
    }
}

/// An element owned by the caller, for subjects whose API is raw take/put.
pub struct Owned<E>(E);

impl<E> Deref for Owned<E> {
    type Target = E;
    #[inline]
    fn deref(&self) -> &E {
        &self.0
    }
}

impl<E> DerefMut for Owned<E> {
    #[inline]
    fn deref_mut(&mut self) -> &mut E {
        &mut self.0
    }
}

/// Implements `send`/`give_sent` for subjects whose item is itself `Send`.
macro_rules! sent_is_item {
    () => {
        #[inline]
        fn send<'a>(&'a self, item: Self::Item<'a>) -> Self::Sent<'a> {
            item
        }
        #[inline]
        fn give_sent<'a>(&'a self, sent: Self::Sent<'a>) {
            self.give(sent)
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Baselines.

/// The floor: a `thread_local!` `RefCell<Vec<T>>` free list (pop or create, push back), capped
/// at [`POOL_SIZE`] per thread.
pub struct Floor;

impl<E: Element> Subject<E> for Floor {
    const NAME: &'static str = names::FLOOR;
    type Item<'a> = Owned<E>;
    type Sent<'a> = Owned<E>;

    #[inline]
    fn take(&self) -> Owned<E> {
        match E::with_floor_list(|list| list.borrow_mut().pop()) {
            Some(element) => Owned(element),
            None => Owned(E::create()),
        }
    }

    #[inline]
    fn give(&self, Owned(mut element): Owned<E>) {
        element.reset();
        let full = E::with_floor_list(|list| {
            let mut list = list.borrow_mut();
            if list.len() < POOL_SIZE {
                list.push(element);
                None
            } else {
                Some(element)
            }
        });
        drop(full);
    }

    sent_is_item!();
}

impl<E: Element> Build<E> for Floor {
    fn build() -> Self {
        Floor
    }
}

/// No pool: build the element each time and drop it.
pub struct NoPool;

impl<E: Element> Subject<E> for NoPool {
    const NAME: &'static str = names::NO_POOL;
    type Item<'a> = Owned<E>;
    type Sent<'a> = Owned<E>;

    #[inline]
    fn take(&self) -> Owned<E> {
        Owned(E::create())
    }

    #[inline]
    fn give(&self, item: Owned<E>) {
        drop(item);
    }

    sent_is_item!();
}

impl<E: Element> Build<E> for NoPool {
    fn build() -> Self {
        NoPool
    }
}

/// `std::sync::Mutex<Vec<T>>`: pop or create, push back while below [`POOL_SIZE`].
pub struct StdMutex<E>(Mutex<Vec<E>>);

impl<E: Element> Subject<E> for StdMutex<E> {
    const NAME: &'static str = names::STD_MUTEX;
    type Item<'a> = Owned<E>;
    type Sent<'a> = Owned<E>;

    #[inline]
    fn take(&self) -> Owned<E> {
        let popped = self.0.lock().unwrap().pop();
        Owned(popped.unwrap_or_else(E::create))
    }

    #[inline]
    fn give(&self, Owned(mut element): Owned<E>) {
        element.reset();
        let mut list = self.0.lock().unwrap();
        if list.len() < POOL_SIZE {
            list.push(element);
        } else {
            drop(list);
            drop(element);
        }
    }

    sent_is_item!();
}

impl<E: Element> Build<E> for StdMutex<E> {
    fn build() -> Self {
        StdMutex(Mutex::new(Vec::with_capacity(POOL_SIZE)))
    }
}

/// A `crossbeam_queue::ArrayQueue` of [`POOL_SIZE`] slots: pop or create, push or drop.
pub struct ArrayQueuePool<E>(ArrayQueue<E>);

impl<E: Element> Subject<E> for ArrayQueuePool<E> {
    const NAME: &'static str = names::CROSSBEAM_ARRAYQUEUE;
    type Item<'a> = Owned<E>;
    type Sent<'a> = Owned<E>;

    #[inline]
    fn take(&self) -> Owned<E> {
        Owned(self.0.pop().unwrap_or_else(E::create))
    }

    #[inline]
    fn give(&self, Owned(mut element): Owned<E>) {
        element.reset();
        let _ = self.0.push(element);
    }

    sent_is_item!();
}

impl<E: Element> Build<E> for ArrayQueuePool<E> {
    fn build() -> Self {
        ArrayQueuePool(ArrayQueue::new(POOL_SIZE))
    }
}

// ---------------------------------------------------------------------------------------------
// Peers from crates.io.

/// Implements a subject for one of `lockfree-object-pool`'s pools (same API, three types).
macro_rules! lockfree_object_pool {
    ($subject:ident, $name:expr, $pool:ident, $reusable:ident) => {
        #[doc = concat!("`lockfree_object_pool::", stringify!($pool), "`, reset on return.")]
        pub struct $subject<E>(lockfree_object_pool::$pool<E>);

        impl<E: Element> Subject<E> for $subject<E> {
            const NAME: &'static str = $name;
            type Item<'a> = lockfree_object_pool::$reusable<'a, E>;
            type Sent<'a> = lockfree_object_pool::$reusable<'a, E>;

            #[inline]
            fn take(&self) -> Self::Item<'_> {
                self.0.pull()
            }

            #[inline]
            fn give<'a>(&'a self, item: Self::Item<'a>) {
                drop(item);
            }

            sent_is_item!();
        }

        impl<E: Element> Build<E> for $subject<E> {
            fn build() -> Self {
                $subject(lockfree_object_pool::$pool::new(E::create, E::reset))
            }
        }
    };
}

lockfree_object_pool!(
    LfLinear,
    names::LFOP_LINEAR,
    LinearObjectPool,
    LinearReusable
);
lockfree_object_pool!(
    LfSpinLock,
    names::LFOP_SPINLOCK,
    SpinLockObjectPool,
    SpinLockReusable
);
lockfree_object_pool!(LfMutex, names::LFOP_MUTEX, MutexObjectPool, MutexReusable);

/// `object_pool::Pool` (a `Mutex<Vec<T>>` inside; no reset hook, no bound), prefilled empty.
pub struct ObjectPool<E>(object_pool::Pool<E>);

impl<E: Element> Subject<E> for ObjectPool<E> {
    const NAME: &'static str = names::OBJECT_POOL;
    type Item<'a> = object_pool::Reusable<'a, E>;
    type Sent<'a> = object_pool::Reusable<'a, E>;

    #[inline]
    fn take(&self) -> Self::Item<'_> {
        self.0.pull(E::create)
    }

    #[inline]
    fn give<'a>(&'a self, item: Self::Item<'a>) {
        drop(item);
    }

    sent_is_item!();
}

impl<E: Element> Build<E> for ObjectPool<E> {
    fn build() -> Self {
        ObjectPool(object_pool::Pool::new(0, E::create))
    }
}

/// The allocator `opool` calls: the generator, and the reset hook (run on checkout).
pub struct OpoolAlloc<E>(PhantomData<fn() -> E>);

impl<E: Element> opool::PoolAllocator<E> for OpoolAlloc<E> {
    #[inline]
    fn allocate(&self) -> E {
        E::create()
    }

    #[inline]
    fn reset(&self, element: &mut E) {
        element.reset();
    }
}

/// `opool::Pool` (an `ArrayQueue` inside) of [`POOL_SIZE`] slots.
pub struct Opool<E: Element>(opool::Pool<OpoolAlloc<E>, E>);

impl<E: Element> Subject<E> for Opool<E> {
    const NAME: &'static str = names::OPOOL;
    type Item<'a> = opool::RefGuard<'a, OpoolAlloc<E>, E>;
    type Sent<'a> = opool::RefGuard<'a, OpoolAlloc<E>, E>;

    #[inline]
    fn take(&self) -> Self::Item<'_> {
        self.0.get()
    }

    #[inline]
    fn give<'a>(&'a self, item: Self::Item<'a>) {
        drop(item);
    }

    sent_is_item!();
}

impl<E: Element> Build<E> for Opool<E> {
    fn build() -> Self {
        Opool(opool::Pool::new(POOL_SIZE, OpoolAlloc(PhantomData)))
    }
}

/// An element as `sharded_slab::Pool` wants it: `Default` (the generator) and `Clear` (the reset
/// hook, run when the slot is cleared).
pub struct SlabSlot<E>(E);

impl<E: Element> Default for SlabSlot<E> {
    fn default() -> Self {
        SlabSlot(E::create())
    }
}

impl<E: Element> sharded_slab::Clear for SlabSlot<E> {
    #[inline]
    fn clear(&mut self) {
        self.0.reset();
    }
}

/// `sharded_slab::Pool`: `create` a slot, and `clear` its key to give it back.
pub struct ShardedSlab<E: Element>(sharded_slab::Pool<SlabSlot<E>>);

/// A slot created in a [`ShardedSlab`], seen as the element.
pub struct SlabItem<'a, E: Element>(sharded_slab::pool::RefMut<'a, SlabSlot<E>>);

impl<E: Element> Deref for SlabItem<'_, E> {
    type Target = E;
    #[inline]
    fn deref(&self) -> &E {
        &self.0.0
    }
}

impl<E: Element> DerefMut for SlabItem<'_, E> {
    #[inline]
    fn deref_mut(&mut self) -> &mut E {
        &mut self.0.0
    }
}

impl<E: Element> Subject<E> for ShardedSlab<E> {
    const NAME: &'static str = names::SHARDED_SLAB;
    type Item<'a> = SlabItem<'a, E>;
    /// The slot's key: the usual way to hand a slot to another thread.
    type Sent<'a> = usize;

    #[inline]
    fn take(&self) -> SlabItem<'_, E> {
        SlabItem(self.0.create().expect("sharded_slab: shard full"))
    }

    #[inline]
    fn give<'a>(&'a self, item: SlabItem<'a, E>) {
        let key = self.send(item);
        self.give_sent(key);
    }

    #[inline]
    fn send<'a>(&'a self, item: SlabItem<'a, E>) -> usize {
        let key = item.0.key();
        drop(item);
        key
    }

    #[inline]
    fn give_sent(&self, key: usize) {
        self.0.clear(key);
    }
}

impl<E: Element> Build<E> for ShardedSlab<E> {
    fn build() -> Self {
        ShardedSlab(sharded_slab::Pool::new())
    }
}

/// `regex_automata::util::pool::Pool`, the pool inside every `regex` search: the first thread
/// to check out owns a slot reached without a lock; every other thread pops and pushes a
/// mutex-guarded stack picked by its thread id (no bound, no reset hook: the adapter resets
/// on return, as the other subjects' hooks do).
///
/// Its guard is `Send` and goes back on the thread that drops it, so it travels as itself. A
/// value given back on another thread lands on that thread's stack, which the taking thread
/// never pops: across threads it creates nearly every element it hands out, and keeps them all
/// (the created count shows it; with 4 KiB elements that is memory for the length of a
/// benchmark).
pub struct RegexPool<E: Element>(regex_automata::util::pool::Pool<E, fn() -> E>);

impl<E: Element> Subject<E> for RegexPool<E> {
    const NAME: &'static str = names::REGEX_POOL;
    type Item<'a> = regex_automata::util::pool::PoolGuard<'a, E, fn() -> E>;
    type Sent<'a> = regex_automata::util::pool::PoolGuard<'a, E, fn() -> E>;

    #[inline]
    fn take(&self) -> Self::Item<'_> {
        self.0.get()
    }

    #[inline]
    fn give<'a>(&'a self, mut item: Self::Item<'a>) {
        item.reset();
        regex_automata::util::pool::PoolGuard::put(item);
    }

    sent_is_item!();
}

impl<E: Element> Build<E> for RegexPool<E> {
    fn build() -> Self {
        RegexPool(regex_automata::util::pool::Pool::new(E::create))
    }
}

// ---------------------------------------------------------------------------------------------
// The subject of this crate, three ways.

/// The element's reset as `cachepool`'s [`Reset`] type: the way to give it a hook fixed at
/// compile time, which the pool inlines where an element is given back.
#[derive(Clone, Copy)]
pub struct ResetElement;

impl<E: Element> Reset<E> for ResetElement {
    #[inline]
    fn reset(&self, element: &mut E) -> bool {
        reset_element(element)
    }
}

/// The reset every `cachepool` subject runs, whatever form the pool is given it in.
#[inline]
fn reset_element<E: Element>(element: &mut E) -> bool {
    element.reset();
    true
}

/// The pool of most `cachepool` subjects: the reset as a [`Reset`] type, the way its docs
/// recommend for a hook known at compile time.
type Cp<E> = CachePool<E, ResetElement>;

fn cachepool<E: Element>() -> Cp<E> {
    cachepool_with(ResetElement)
}

/// A `cachepool` of [`POOL_SIZE`] with `reset` given to `reset_with`.
fn cachepool_with<E: Element, R: Reset<E>>(reset: R) -> CachePool<E, R> {
    CachePool::builder(E::create)
        .reset_with(reset)
        .pool_size(POOL_SIZE)
        .build()
}

/// A `cachepool` subject that checks out through the borrowing guard, `checkout()`, from a
/// pool whose [`Reset`] is `$reset`: these subjects differ only in the form the pool is given
/// the element's reset in, and keep a type each so that `scripts/guard-inlining.sh` can tell
/// their loops apart. `$subject<E, F: Reset<E>>` makes a subject generic over its reset (one
/// whose type names a closure's).
macro_rules! checkout_subject {
    ($(#[$doc:meta])* $subject:ident<E $(, $f:ident: $bound:path)?>, $reset:ty, $name:expr) => {
        $(#[$doc])*
        pub struct $subject<E: Element $(, $f)?>(CachePool<E, $reset>);

        impl<E: Element $(, $f: $bound + Send + Sync)?> Subject<E> for $subject<E $(, $f)?> {
            const NAME: &'static str = $name;
            type Item<'a>
                = Checkout<'a, E, $reset>
            where
                $reset: 'a;
            type Sent<'a>
                = Checkout<'a, E, $reset>
            where
                $reset: 'a;

            #[inline]
            fn take(&self) -> Checkout<'_, E, $reset> {
                self.0.checkout()
            }

            #[inline]
            fn give<'a>(&'a self, item: Checkout<'a, E, $reset>) {
                drop(item);
            }

            sent_is_item!();

            fn idle(&self) -> Option<usize> {
                Some(self.0.stats().idle)
            }
        }
    };
}

checkout_subject!(
    /// `cachepool` through its borrowing guard, `checkout()`.
    CpBorrow<E>, ResetElement, names::CACHEPOOL_BORROW
);

impl<E: Element> Build<E> for CpBorrow<E> {
    fn build() -> Self {
        CpBorrow(cachepool())
    }
}

checkout_subject!(
    /// `cachepool` through `checkout()`, with the reset boxed by `Builder::reset` rather than
    /// in the pool's type: what calling the hook through a pointer, out of line, costs.
    CpClosure<E>, NoReset, names::CACHEPOOL_CLOSURE
);

impl<E: Element> Build<E> for CpClosure<E> {
    fn build() -> Self {
        CpClosure(
            CachePool::builder(E::create)
                .reset(reset_element)
                .pool_size(POOL_SIZE)
                .build(),
        )
    }
}

checkout_subject!(
    /// `cachepool` through `checkout()`, with the reset given to `reset_with` as a closure,
    /// kept as its own type: the pool's type names the closure's, so
    /// [`cachepool_typed_closure`] builds it.
    CpTypedClosure<E, F: Reset<E>>, F, names::CACHEPOOL_TYPED_CLOSURE
);

/// Builds [`CpTypedClosure`]: a function, because the closure's type has no name to build it
/// by.
pub fn cachepool_typed_closure<E: Element>() -> CpTypedClosure<E, impl Reset<E> + Send + Sync> {
    CpTypedClosure(cachepool_with(|element: &mut E| reset_element(element)))
}

/// A reset hook as a function pointer, the nameable type of a closure given to `reset_with`.
type ResetFn<E> = fn(&mut E) -> bool;

checkout_subject!(
    /// `cachepool` through `checkout()`, with the reset given to `reset_with` as a closure
    /// turned into a function pointer (the form a pool in a field or a `static` names): the
    /// call goes through the pointer, from the give-back itself rather than an out-of-line
    /// rest of it.
    CpFn<E>, ResetFn<E>, names::CACHEPOOL_FN
);

impl<E: Element> Build<E> for CpFn<E> {
    fn build() -> Self {
        CpFn(cachepool_with(reset_element::<E> as ResetFn<E>))
    }
}

/// The weight budget of the weighed subjects: every element is light.
const MAX_IDLE_WEIGHT: usize = POOL_SIZE * 8192;

/// A weigher a `Weigh` takes, as one bound for [`checkout_subject`].
pub trait Weigher<E>: Fn(&E) -> usize + Clone + 'static {}

impl<E, F: Fn(&E) -> usize + Clone + 'static> Weigher<E> for F {}

checkout_subject!(
    /// `cachepool` through `checkout()`, from a pool whose `Reset` weighs (the element's heap
    /// bytes, `Weigh`), with a weight budget that keeps every element light: what weighing
    /// each give-back, and keeping its weight, costs; [`cachepool_weighed`] builds it.
    CpWeighed<E, F: Weigher<E>>, Weigh<ResetElement, F>, names::CACHEPOOL_WEIGHED
);

/// Builds [`CpWeighed`]: a function, because the weigher's type has no name.
pub fn cachepool_weighed<E: Element>() -> CpWeighed<E, impl Weigher<E> + Send + Sync> {
    CpWeighed(
        CachePool::builder(E::create)
            .reset_with(Weigh(ResetElement, |element: &E| element.weight()))
            .max_idle_weight(MAX_IDLE_WEIGHT)
            .pool_size(POOL_SIZE)
            .build(),
    )
}

checkout_subject!(
    /// `cachepool` through `checkout()`, with the same weigher boxed by `Builder::weigher`.
    CpWeighedBoxed<E>, ResetElement, names::CACHEPOOL_WEIGHED_BOXED
);

impl<E: Element> Build<E> for CpWeighedBoxed<E> {
    fn build() -> Self {
        CpWeighedBoxed(
            CachePool::builder(E::create)
                .reset_with(ResetElement)
                .weigher(E::weight)
                .max_idle_weight(MAX_IDLE_WEIGHT)
                .pool_size(POOL_SIZE)
                .build(),
        )
    }
}

/// `cachepool` through its owned guard, `checkout_owned()` (clones the pool's `Arc`).
pub struct CpOwned<E: Element>(Cp<E>);

impl<E: Element> Subject<E> for CpOwned<E> {
    const NAME: &'static str = names::CACHEPOOL_OWNED;
    type Item<'a> = OwnedCheckout<E, ResetElement>;
    type Sent<'a> = OwnedCheckout<E, ResetElement>;

    #[inline]
    fn take(&self) -> OwnedCheckout<E, ResetElement> {
        self.0.checkout_owned()
    }

    #[inline]
    fn give(&self, item: OwnedCheckout<E, ResetElement>) {
        drop(item);
    }

    sent_is_item!();

    fn idle(&self) -> Option<usize> {
        Some(self.0.stats().idle)
    }
}

impl<E: Element> Build<E> for CpOwned<E> {
    fn build() -> Self {
        CpOwned(cachepool())
    }
}

/// `cachepool` through raw `get()` / `put()`.
pub struct CpRaw<E: Element>(Cp<E>);

impl<E: Element> Subject<E> for CpRaw<E> {
    const NAME: &'static str = names::CACHEPOOL_RAW;
    type Item<'a> = Owned<E>;
    type Sent<'a> = Owned<E>;

    #[inline]
    fn take(&self) -> Owned<E> {
        Owned(self.0.get())
    }

    #[inline]
    fn give(&self, Owned(element): Owned<E>) {
        self.0.put(element);
    }

    sent_is_item!();

    fn idle(&self) -> Option<usize> {
        Some(self.0.stats().idle)
    }
}

impl<E: Element> Build<E> for CpRaw<E> {
    fn build() -> Self {
        CpRaw(cachepool())
    }
}
