// The README is the crate's front page. Its links to `docs/*.md` work on GitHub; on docs.rs
// those pages are the modules of `docs`. A link reference defined first wins, so these
// definitions, placed before the README's own, point its links at the modules.
#![doc = "[migrating]: crate::docs::migrating_from_python"]
#![doc = "[design]: crate::docs::design"]
#![doc = "[reliability]: crate::docs::reliability"]
#![doc = "[benchmarks]: crate::docs::benchmarks"]
#![doc = "[changelog]: crate::docs::changelog"]
#![doc = ""]
#![doc = include_str!("../README.md")]
#![deny(missing_docs, rust_2018_idioms, unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod barrier;
mod budget;
mod builder;
pub mod docs;
mod error;
mod global;
mod guard;
mod idle_timeout;
mod lifecycle;
mod local;
mod pool;
mod reclaim;
mod reset;
mod shared;
mod shelf;
mod slow_path;
mod stats;
mod stored;
mod stored_vec;
mod sync;
mod thread_exit;
mod unwind;
mod user_code;
mod word_move;
mod wrapper;

pub use builder::{Builder, DEFAULT_POOL_SIZE};
pub use error::{BoxError, CachePoolError, CachePoolGeneratorError};
pub use guard::{Checkout, OwnedCheckout};
pub use pool::CachePool;
pub use reset::{Clear, NoReset, Reset, Weigh};
pub use stats::Stats;
pub use wrapper::{CacheWrapper, NeverReuse, ReuseDecider, make_wrapper};
