//! The synopsis of Python's `cachepool` README, line by line in Rust.
//!
//! ```text
//! cargo run --release --example python_port
//! ```
//!
//! Each Python line is quoted in a comment above its Rust form. After the synopsis, the two
//! ways a `with` block can fail are shown: an error the reuse decider accepts (the element goes
//! back to the pool) and one it does not (the element is closed). See
//! `docs/migrating-from-python.md` for every difference.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;

// from cachepool import (
//     make_wrapper,
//     CachePool,
//     CacheWrapper,
//     CachePoolError,
//     CachePoolGeneratorError,
// )
//
// (`CacheWrapper` is the type `make_wrapper` returns; this file never needs to name it.)
use cachepool::{CachePool, CachePoolError, CachePoolGeneratorError, make_wrapper};

// # object could be reused in process
// class Element(object):
#[derive(Debug)]
struct Element {
    args: Vec<String>,
    argkw: BTreeMap<String, String>,
    closed: bool,
}

impl Element {
    //     def __init__(self, *args, **argkw):
    //         self.args = args
    //         self.argkw = argkw
    //         self.closed = False
    fn new(args: &[String], argkw: &BTreeMap<String, String>) -> Self {
        Element {
            args: args.to_vec(),
            argkw: argkw.clone(),
            closed: false,
        }
    }

    //     def close(self):
    //         self.closed = True
    fn close(&mut self) {
        self.closed = true;
    }

    //     def do(self):
    //         print self.args
    //         print self.argkw
    //
    // (`do` is a reserved word in Rust.)
    fn work(&self) {
        println!("{:?}", self.args);
        println!("{:?}", self.argkw);
    }
}

// # element generator
// def generator(*args, **argkw):
//     return Element(*args, **argkw)
fn generator(args: &[String], argkw: &BTreeMap<String, String>) -> Element {
    Element::new(args, argkw)
}

// # close element when pool is full or the element is broken
// def close_callback(element):
//     element.close()
//
// The callback takes the element by value: closing is the last thing that happens to it.
fn close_callback(mut element: Element) {
    element.close();
    // Not in the Python original: shows when the pool closes an element.
    println!("close_callback: {element:?}");
}

// Python lets any exception escape a `with` block and hands its type to the reuse decider. In
// Rust the job returns a typed error instead, and the decider matches on it.
#[derive(Debug)]
enum JobError {
    /// Python's `CachePoolError` and its subclass `CachePoolGeneratorError`: a pool the job
    /// used failed. The element itself is fine.
    Pool(CachePoolError),
    /// Anything else: the element may be left broken.
    Element(String),
}

// `?` on a pool's `try_` methods inside a job uses this. `CacheWrapper::try_run` uses it too,
// on a pool whose generator may fail: the generator's failure reaches the caller as a
// `JobError` (and the decider is not asked, as in Python, where `__enter__` raises before the
// block runs). This pool's generator cannot fail, so the synopsis uses `run`.
impl From<CachePoolGeneratorError> for JobError {
    fn from(e: CachePoolGeneratorError) -> Self {
        JobError::Pool(e.into())
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The pool's error is this one's `source`, so it is not repeated here.
            JobError::Pool(_) => f.write_str("a pool the job used failed"),
            JobError::Element(what) => write!(f, "element error: {what}"),
        }
    }
}

impl Error for JobError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            JobError::Pool(e) => Some(e),
            JobError::Element(_) => None,
        }
    }
}

// # decide whether the element can be reused or not when error occurs
// def reuse_decider(errtype, errval, _traceback):
//     if errtype in (CachePoolError, CachePoolGeneratorError):
//         return True
//
//     return False
//
// A panic in the job never reaches the decider: the element is closed and the panic goes on.
fn reuse_decider(error: &JobError) -> bool {
    match error {
        JobError::Pool(_) => true,
        JobError::Element(_) => false,
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    // # create pool with wrapper
    // pool = CachePool(
    //     generator,
    //     generator_args=[],
    //     generator_argkw={},
    //     close_callback=close_callback,
    //     pool_size=512,
    // )
    //
    // The generator's arguments become values its closure captures. The synopsis passes none;
    // these are the README's other example, `[1, 2, 'x']` and `{'key': 'value', (1, 2): '1 and
    // 2'}`. A Rust collection holds one type, so they are strings here; in real code they
    // would usually be the fields of a typed config struct.
    let generator_args: Vec<String> = vec!["1".into(), "2".into(), "x".into()];
    let generator_argkw: BTreeMap<String, String> = BTreeMap::from([
        ("key".into(), "value".into()),
        ("(1, 2)".into(), "1 and 2".into()),
    ]);
    let pool = CachePool::builder(move || generator(&generator_args, &generator_argkw))
        .close_callback(close_callback)
        .pool_size(512)
        .build();

    // wrapper = make_wrapper(
    //     pool,
    //     reuse_decider=reuse_decider,
    // )
    //
    // Python's `make_wrapper` returns a factory of wrappers; Rust's returns the wrapper itself,
    // to be run as often as needed. Without a decider: `make_wrapper(&pool, NeverReuse)`.
    let wrapper = make_wrapper(&pool, reuse_decider);

    // with wrapper() as ele:
    //     ele.do()
    //
    // The block becomes a closure, whose `Ok` gives the element back to the pool.
    wrapper.run(|ele| {
        ele.work();
        Ok::<_, JobError>(())
    })?;

    // # get statistics about pool
    // stat = pool.stat
    // # stat = {'new': 1,
    // #         'get': 1,
    // #         'put': 1,
    // #         }
    let stat = pool.stats();
    println!("{stat}");

    // Beyond the synopsis: the reuse decider at work.

    // 1. The job fails because another pool it uses cannot create an element. The decider
    //    says the element is fine, so it goes back to the pool.
    let sessions = CachePool::<String>::try_builder(|| Err("session service unavailable"))
        .pool_size(8)
        .build();
    let result = wrapper.run(|ele| {
        let session = sessions.try_get()?;
        println!("{session}: {:?}", ele.args);
        Ok(())
    });
    if let Err(e) = result {
        println!(
            "job failed ({e}; root cause: {}): element reused",
            root_cause(&e)
        );
    }

    // 2. The job fails on its own, and may have left the element broken: the decider says
    //    no, so the pool closes it (through `close_callback`).
    let result: Result<(), JobError> = wrapper.run(|ele| {
        ele.argkw.insert("half".into(), "written".into());
        Err(JobError::Element("lost the connection halfway".into()))
    });
    if let Err(e) = result {
        println!("job failed ({e}): element closed");
    }

    // One element created and reused by the first two runs, then closed by the third.
    println!("{}", pool.stats());
    Ok(())
}

/// The innermost error that caused `error`: here, what the failing generator returned.
fn root_cause<'a>(error: &'a (dyn Error + 'static)) -> &'a (dyn Error + 'static) {
    std::iter::successors(Some(error), |&e| e.source())
        .last()
        .unwrap_or(error)
}
