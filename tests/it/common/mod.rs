//! What every suite shares, one job a file:
//!
//! | module | its job |
//! |---|---|
//! | `tracked` | the test element, which records where it went |
//! | `ledger` | the referee: every element's state, and every rule broken |
//! | `list_model` | one thread's list and the put rule, as both sequential models describe them |
//! | `fixture` | pools wired to a ledger, and the user's side of the ledger |
//! | `assert_stats` | `assert_stats!`: the named fields of a `Stats`, checked by name |
//! | `faults` | fault injection in every callback the pool runs |
//! | `panics` | injected panics, told apart from the pool's own and kept quiet |
//! | `rng` | a replayable seed and a cheap generator per thread |
//! | `scale` | how much work the stress and property tests do |
//! | `hammer` | the multi-threaded workload of `concurrency` and `stress` |

#![allow(dead_code)] // each suite uses its own part of the helpers

pub mod assert_stats;
pub mod faults;
pub mod fixture;
pub mod hammer;
pub mod ledger;
pub mod list_model;
pub mod panics;
pub mod rng;
pub mod scale;
pub mod tracked;

pub(crate) use assert_stats::assert_stats;
pub use faults::{Faults, Site};
pub use fixture::{Fixture, Handle, UserOps, builder, builder_without_reset, validated_builder};
pub use ledger::{Counts, GenError, Ledger, State};
pub use panics::{InjectedPanic, expect_injected, inject, silence_injected_panics};
pub use rng::{Rng, seed};
pub use scale::scale;
pub use tracked::Tracked;
