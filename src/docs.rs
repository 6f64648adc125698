//! The crate's longer documents, readable on docs.rs: each module below is one page of
//! `docs/` in the source repository, included as it is.

#[doc = include_str!("../docs/migrating-from-python.md")]
pub mod migrating_from_python {}

#[doc = include_str!("../docs/design.md")]
pub mod design {}

#[doc = include_str!("../docs/reliability.md")]
pub mod reliability {}

#[doc = include_str!("../docs/benchmarks.md")]
pub mod benchmarks {}

#[doc = include_str!("../CHANGELOG.md")]
pub mod changelog {}
