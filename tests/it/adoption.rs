//! What a user adopting the crate relies on beyond the pool's core behaviour: conversions of
//! its errors, unwind safety, a pool in a `static`, and naming a pool with a `Reset` type.

use std::error::Error as _;
use std::io::{self, ErrorKind};

use cachepool::{CachePool, CachePoolGeneratorError};

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
