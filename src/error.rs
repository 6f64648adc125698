//! The pool's errors.

use std::error::Error;
use std::fmt;

/// A boxed error from a fallible generator: any `E: Into<BoxError>` can be returned by the
/// generator of [`CachePool::try_builder`](crate::CachePool::try_builder).
///
/// ```
/// let pool = cachepool::CachePool::<u8>::try_builder(|| Err("no")).build();
/// let source: cachepool::BoxError = pool.try_get().unwrap_err().into_inner();
/// assert_eq!(source.to_string(), "no");
/// ```
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// The generator failed to create an element.
///
/// Returned by the `try_` methods of a pool built with [`CachePool::try_builder`]. The
/// generator's own error is the [`source`](Error::source); nothing was created (`new` is not
/// counted) and the pool stays fully usable.
///
/// [`CachePool::try_builder`]: crate::CachePool::try_builder
///
/// ```
/// use cachepool::CachePool;
/// use std::error::Error;
///
/// let pool = CachePool::<u32>::try_builder(|| "x".parse::<u32>()).build();
/// let err = pool.try_get().unwrap_err();
/// assert_eq!(err.source().unwrap().to_string(), "invalid digit found in string");
/// assert_eq!(pool.stats().new, 0);
/// ```
#[derive(Debug)]
pub struct CachePoolGeneratorError {
    source: BoxError,
}

impl CachePoolGeneratorError {
    /// Wraps a generator's error (the pool does this itself; this is for tests and adapters).
    ///
    /// ```
    /// let e = cachepool::CachePoolGeneratorError::new("disk full");
    /// assert_eq!(e.get_ref().to_string(), "disk full");
    /// ```
    pub fn new(source: impl Into<BoxError>) -> Self {
        CachePoolGeneratorError {
            source: source.into(),
        }
    }

    /// The generator's error.
    ///
    /// ```
    /// let pool = cachepool::CachePool::<u8>::try_builder(|| "x".parse::<u8>()).build();
    /// let err = pool.try_get().unwrap_err();
    /// assert!(err.get_ref().is::<std::num::ParseIntError>());
    /// ```
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.source
    }

    /// Consumes this error, returning the generator's error.
    ///
    /// ```
    /// let pool = cachepool::CachePool::<u8>::try_builder(|| "x".parse::<u8>()).build();
    /// let inner = pool.try_get().unwrap_err().into_inner();
    /// assert!(inner.downcast::<std::num::ParseIntError>().is_ok());
    /// ```
    pub fn into_inner(self) -> BoxError {
        self.source
    }
}

impl fmt::Display for CachePoolGeneratorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the pool's generator failed to create an element")
    }
}

impl Error for CachePoolGeneratorError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// Any error of this crate; every error the pool returns converts into it.
///
/// Transparent: it displays as the error it holds and reports that error's source, so an
/// error-chain printer shows each message once.
///
/// ```
/// use cachepool::{CachePool, CachePoolError};
///
/// fn checkout_len(pool: &CachePool<String>) -> Result<usize, CachePoolError> {
///     let s = pool.try_checkout()?; // CachePoolGeneratorError converts with `?`
///     Ok(s.len())
/// }
/// # let pool = CachePool::new(String::new);
/// # assert_eq!(checkout_len(&pool).unwrap(), 0);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CachePoolError {
    /// The generator failed.
    Generator(CachePoolGeneratorError),
}

impl fmt::Display for CachePoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CachePoolError::Generator(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl Error for CachePoolError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CachePoolError::Generator(e) => e.source(),
        }
    }
}

/// So that code returning `std::io::Error` can use `?` on the pool's `try_` methods, and jobs
/// run by [`CacheWrapper::try_run`](crate::CacheWrapper::try_run) may return `std::io::Error`.
///
/// When the generator's own error is an `std::io::Error`, its [`ErrorKind`](std::io::ErrorKind)
/// is kept (a template that is not there stays `NotFound`); any other error becomes
/// `ErrorKind::Other`. The `CachePoolGeneratorError` is the resulting error's
/// [`get_ref`](std::io::Error::get_ref), and the generator's error its
/// [`source`](Error::source).
///
/// ```
/// use std::io::{self, ErrorKind};
///
/// // A generator that reads a template which is not there.
/// let missing = || Err::<Vec<u8>, _>(io::Error::from(ErrorKind::NotFound));
/// let pool = cachepool::CachePool::try_builder(missing).build();
/// let read = || -> io::Result<usize> { Ok(pool.try_checkout()?.len()) };
/// assert_eq!(read().unwrap_err().kind(), ErrorKind::NotFound);
/// ```
impl From<CachePoolGeneratorError> for std::io::Error {
    fn from(e: CachePoolGeneratorError) -> Self {
        let kind = e
            .get_ref()
            .downcast_ref::<std::io::Error>()
            .map_or(std::io::ErrorKind::Other, std::io::Error::kind);
        std::io::Error::new(kind, e)
    }
}

impl From<CachePoolGeneratorError> for CachePoolError {
    fn from(e: CachePoolGeneratorError) -> Self {
        CachePoolError::Generator(e)
    }
}
