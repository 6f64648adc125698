//! The atomics of the pool's one cross-thread protocol, the budget lease, in one place so that
//! a model checker can swap them.
//!
//! Under `--cfg loom` these are loom's instrumented types and `cargo test --cfg loom` explores
//! every interleaving of the budget protocol (the `loom` tests in `src/budget.rs`); otherwise
//! they are std's. The statistics counters are not here: each has one writer, and a model
//! checker has nothing to find in them.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
