#![doc = include_str!("../README.md")]
#![deny(missing_docs, rust_2018_idioms, unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod budget;
mod builder;
mod error;
mod generation;
mod global;
mod guard;
mod lifecycle;
mod local;
mod pool;
mod reset;
mod shared;
mod stats;
mod sync;
mod thread_exit;
mod word_move;
mod wrapper;

pub use builder::{Builder, DEFAULT_POOL_SIZE};
pub use error::{BoxError, CachePoolError, CachePoolGeneratorError};
pub use guard::{Checkout, OwnedCheckout};
pub use pool::CachePool;
pub use reset::{Clear, NoReset, Reset};
pub use stats::Stats;
pub use wrapper::{CacheWrapper, NeverReuse, ReuseDecider, make_wrapper};
