//! The atomics and the lock of the pool's cross-thread protocols, the budget lease and the
//! generations, in one place so that a model checker can swap them.
//!
//! Under `--cfg loom` these are loom's instrumented types and `cargo test --cfg loom` explores
//! every interleaving of both protocols (the `loom` tests in `src/budget.rs` and
//! `src/generation.rs`); otherwise they are std's. The statistics counters are not here: each
//! has one writer, and a model checker has nothing to find in them.

#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
