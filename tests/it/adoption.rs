//! What a user adopting the crate relies on beyond the pool's core behaviour: conversions of
//! its errors, unwind safety, a pool in a `static`, and naming a pool with a `Reset` type.

use std::cell::Cell;
use std::error::Error as _;
use std::io::{self, ErrorKind};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use cachepool::{
    CachePool, CachePoolGeneratorError, CacheWrapper, Checkout, Clear, OwnedCheckout, Reset,
    make_wrapper,
};

use crate::common::{Site, assert_stats, expect_injected, inject, silence_injected_panics};

/// A generator's `io::Error` keeps its kind through `?` into `io::Error`.
#[test]
fn io_error_from_a_generator_keeps_its_kind() {
    let pool = CachePool::<Vec<u8>>::try_builder(|| {
        Err(io::Error::new(ErrorKind::NotFound, "no template"))
    })
    .build();
    let checkout_len = || -> io::Result<usize> { Ok(pool.try_checkout()?.len()) };
    let err = checkout_len().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // The pool's error is what the io::Error holds, and the generator's error its source.
    let held = err.get_ref().expect("a custom io::Error");
    assert!(held.is::<CachePoolGeneratorError>());
    assert_eq!(err.source().unwrap().to_string(), "no template");
    assert_eq!(
        err.to_string(),
        "the pool's generator failed to create an element"
    );
}

/// Each kind survives, not only `NotFound`; an error that is not an `io::Error` is `Other`.
#[test]
fn io_error_conversion_keeps_every_kind_and_defaults_to_other() {
    for kind in [
        ErrorKind::PermissionDenied,
        ErrorKind::TimedOut,
        ErrorKind::OutOfMemory,
    ] {
        let converted = io::Error::from(CachePoolGeneratorError::new(io::Error::from(kind)));
        assert_eq!(converted.kind(), kind);
    }
    let parse = "x".parse::<u8>().unwrap_err();
    let converted = io::Error::from(CachePoolGeneratorError::new(parse));
    assert_eq!(converted.kind(), ErrorKind::Other);
}

fn assert_unwind_safe<T: UnwindSafe>() {}
fn assert_ref_unwind_safe<T: RefUnwindSafe>() {}

/// The pool, its wrapper and its guards cross `catch_unwind` without `AssertUnwindSafe`, as
/// far as the element type (and the decider) allow; these lines are the test: they compile.
#[test]
fn pool_wrapper_and_guards_are_unwind_safe_as_far_as_the_element_allows() {
    assert_unwind_safe::<CachePool<Vec<u8>>>();
    assert_ref_unwind_safe::<CachePool<Vec<u8>>>();
    assert_unwind_safe::<CachePool<Vec<u8>, Clear>>();
    assert_ref_unwind_safe::<CachePool<Vec<u8>, Clear>>();
    // The pool vouches for its idle elements whatever they are: a `Cell` is never visible
    // while idle.
    assert_ref_unwind_safe::<CachePool<Cell<u32>>>();
    assert_unwind_safe::<&CachePool<Cell<u32>>>();

    assert_unwind_safe::<CacheWrapper<Vec<u8>>>();
    assert_ref_unwind_safe::<CacheWrapper<Vec<u8>>>();
    assert_unwind_safe::<CacheWrapper<String, fn(&std::io::Error) -> bool, Clear>>();
    assert_ref_unwind_safe::<CacheWrapper<String, fn(&std::io::Error) -> bool, Clear>>();

    assert_unwind_safe::<Checkout<'static, Vec<u8>>>();
    assert_ref_unwind_safe::<Checkout<'static, Vec<u8>>>();
    assert_unwind_safe::<OwnedCheckout<Vec<u8>, Clear>>();
    assert_ref_unwind_safe::<OwnedCheckout<Vec<u8>, Clear>>();
    // A `Cell` element: a guard moved into the closure is fine (it closes the element if the
    // closure panics); a reference to it is not (see the `compile_fail` example on
    // `Checkout`).
    assert_unwind_safe::<Checkout<'static, Cell<u32>>>();
    assert_unwind_safe::<OwnedCheckout<Cell<u32>>>();
}

#[test]
fn catch_unwind_around_a_checkout_needs_no_assert_unwind_safe() {
    let pool = CachePool::builder(|| vec![0u8; 8])
        .reset(|v| {
            v.iter_mut().for_each(|b| *b = 0);
            true
        })
        .build();
    assert_eq!(
        std::panic::catch_unwind(|| pool.checkout().len()).unwrap(),
        8
    );

    let wrapper = make_wrapper(&pool, |_: &std::fmt::Error| true);
    let sum = std::panic::catch_unwind(|| {
        wrapper.run(|v| Ok(v.iter().map(|&b| u32::from(b)).sum::<u32>()))
    });
    assert_eq!(sum.unwrap(), Ok(0));

    // A panic while a guard is alive: the guard closes its element, the pool keeps working.
    let _quiet = silence_injected_panics();
    let owned = pool.checkout_owned();
    let caught = std::panic::catch_unwind(move || {
        let mut owned = owned;
        owned[0] = 0xff; // half-updated
        inject(Site::Job);
    });
    assert_eq!(expect_injected(caught.unwrap_err()), Site::Job);
    let stats = pool.stats();
    assert_stats!(stats, closed: 1, idle: 0);
    assert_eq!(*pool.checkout(), [0u8; 8]);
}

/// Elements the static pool below closed.
static CLOSED: AtomicUsize = AtomicUsize::new(0);

/// A pool in a `static`, as a service holds one.
static BUFFERS: LazyLock<CachePool<Vec<u8>, Clear>> = LazyLock::new(|| {
    CachePool::builder(|| Vec::with_capacity(1024))
        .reset_with(Clear)
        .close_callback(|_| {
            CLOSED.fetch_add(1, Ordering::Relaxed);
        })
        .pool_size(64)
        .build()
});

/// A static pool works from every thread; nothing is closed until the program calls
/// `clear()`, since a static is never dropped; `clear()` then closes every idle element.
#[test]
fn a_pool_in_a_lazylock_static_closes_idle_elements_only_on_clear() {
    let workers: Vec<_> = (0..4u8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..100 {
                    let mut a = BUFFERS.checkout();
                    let b = BUFFERS.checkout_owned(); // two at once: more than one element
                    a.push(t + i);
                    assert_eq!(b.len(), 0, "emptied by Clear");
                }
            })
        })
        .collect();
    // `join` returns once a thread's exit handlers ran: its list moved to the global shard.
    // (Leaving `thread::scope` does not wait for that.)
    for worker in workers {
        worker.join().unwrap();
    }
    let stats = BUFFERS.stats();
    assert_stats!(stats, get: 800, checked_out: 0);
    assert!(stats.idle >= 2, "{stats}");
    assert_eq!(CLOSED.load(Ordering::Relaxed) as u64, stats.closed);
    assert_eq!(stats.closed, 0, "nothing closed without clear(): {stats}");
    BUFFERS.clear();
    let after = BUFFERS.stats();
    assert_eq!(after.idle, 0, "{after}");
    assert_eq!(CLOSED.load(Ordering::Relaxed), stats.idle);
    assert_eq!(after.new, after.closed + after.detached);
}

/// The naming the `Reset` docs recommend: an alias for the pool's type, in a struct field and
/// signatures, and functions generic over the `Reset` type.
type BufPool = CachePool<Vec<u8>, Clear>;

struct Service {
    buffers: BufPool,
}

fn fill(pool: &BufPool, bytes: &[u8]) -> usize {
    let mut buf = pool.checkout();
    buf.extend_from_slice(bytes);
    buf.len()
}

fn capacity_of_next<R: Reset<Vec<u8>>>(pool: &CachePool<Vec<u8>, R>) -> usize {
    pool.checkout().capacity()
}

#[test]
fn a_pool_with_a_reset_type_is_named_by_an_alias_or_a_generic_parameter() {
    let service = Service {
        buffers: CachePool::builder(|| Vec::with_capacity(32))
            .reset_with(Clear)
            .build(),
    };
    assert_eq!(fill(&service.buffers, b"abc"), 3);
    assert_eq!(fill(&service.buffers, b"de"), 2, "cleared in between");
    assert!(capacity_of_next(&service.buffers) >= 32);
    let plain: CachePool<Vec<u8>> = CachePool::new(|| Vec::with_capacity(8));
    assert!(capacity_of_next(&plain) >= 8);
    let guard: Checkout<'_, Vec<u8>, Clear> = service.buffers.checkout();
    let owned: OwnedCheckout<Vec<u8>, Clear> = service.buffers.checkout_owned();
    drop((guard, owned));
    assert_eq!(service.buffers.stats().new, 2);
}
