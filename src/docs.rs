//! The crate's longer documents, readable on docs.rs: each module below is one page of
//! `docs/` in the source repository, included as it is. The pages link to each other with
//! reference links (`[design]`), defined at the end of each page as the file next to it (for
//! readers of the repository) and here, first, as the module (for rustdoc, where the first
//! definition of a reference wins).

#[doc = include_str!("../docs/migrating-from-python.md")]
pub mod migrating_from_python {}

#[doc = "[benchmarks]: crate::docs::benchmarks"]
#[doc = "[reliability]: crate::docs::reliability"]
#[doc = include_str!("../docs/design.md")]
pub mod design {}

#[doc = "[benchmarks]: crate::docs::benchmarks"]
#[doc = include_str!("../docs/reliability.md")]
pub mod reliability {}

#[doc = include_str!("../docs/benchmarks.md")]
pub mod benchmarks {}

#[doc = include_str!("../CHANGELOG.md")]
pub mod changelog {}
