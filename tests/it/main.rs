//! The integration tests of `cachepool`, all through the public API, in one binary (one link
//! instead of one per file; the suites share `common`).
//!
//! | module | what it pins down |
//! |---|---|
//! | `seed` | every case of Python's `cachepool` test suite, ported |
//! | `adoption` | error conversions, unwind safety, a pool in a `static`, naming a pool with a `Reset` type |
//! | `guards` | borrowing and owned guards, the reset hook, `Send`/`Sync` |
//! | `reset` | reset hooks chosen by type (`Reset`), alone and beside a closure |
//! | `wrapper` | each row of the `CacheWrapper` table |
//! | `thread_exit` | where elements go when a thread exits or the last handle drops |
//! | `concurrency` | 8 threads on one small pool: no element shared, exact ledger at quiet points |
//! | `model` | proptest: one thread's pool against a plain sequential model |
//! | `model_threads` | proptest: two threads passing elements, against a model with a list per thread |
//! | `pipelines` | elements crossing threads with default settings: built about as many as in flight |
//! | `budget` | the `pool_size` budget across threads: no starvation, unused budget given back |
//! | `reclaim` | other threads' lists: `trim`, `clear` and the idle timeout reach idle threads; takers take before building |
//! | `stress` | 8 to 16 threads, injected panics, exiting threads, teardown races |
//! | `large` | elements kept in blocks of their own: handed out where they lie, moved and dropped once on every path |
//! | `weight` | the weight budget: idle weight bounded under load, exact when quiet, heavy elements kept apart |
//! | `regressions` | the minimal reproductions of the bugs these suites found, kept as regression tests |
//!
//! `CACHEPOOL_SOAK=1` multiplies the iteration counts of `model`, `concurrency` and `stress`
//! (see `docs/reliability.md`); under Miri they shrink instead.

mod common;

mod adoption;
mod budget;
mod concurrency;
mod guards;
mod large;
mod lifecycle;
mod model;
mod model_threads;
mod pipelines;
mod reclaim;
mod regressions;
mod reset;
mod seed;
mod stats;
mod stress;
mod thread_exit;
mod weight;
mod wrapper;
