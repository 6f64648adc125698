//! What a user adopting the crate relies on beyond the pool's core behaviour: conversions of
//! its errors, unwind safety, a pool in a `static`, and naming a pool with a `Reset` type.

use std::cell::Cell;
use std::error::Error as _;
use std::io::{self, ErrorKind};
use std::panic::{RefUnwindSafe, UnwindSafe};

use cachepool::{
    CachePool, CachePoolGeneratorError, CacheWrapper, Checkout, Clear, OwnedCheckout, make_wrapper,
};

use crate::common::{Site, expect_injected, inject, silence_injected_panics};

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
    assert_eq!((stats.closed, stats.idle), (1, 0));
    assert_eq!(*pool.checkout(), [0u8; 8]);
}
