//! Which panics of user code the pool propagates, and which it contains.
//!
//! A close callback can panic anywhere the pool closes an element. Propagating that panic is
//! what a caller of `put`, `close`, `clear` or `trim` expects, but in three places it would
//! abort the process, and the pool contains it there instead (the panic hook has already
//! reported it; `Stats::contained_panics` counts it):
//!
//! - while the thread is unwinding from another panic (a second panic aborts);
//! - inside a `Drop` of the pool's own (a guard's give-back, the last handle's drop), since
//!   a drop can run in a thread-local destructor, where a panic aborts and which std cannot
//!   tell apart from ordinary code;
//! - once the thread has started running its pool exit hooks (see [`crate::thread_exit`]),
//!   that is, in a thread-local destructor of its own.
//!
//! Drops mark themselves with [`containing`], a per-thread depth that needs no destructor, so
//! it can be read at any point of thread exit.

use std::cell::Cell;

use crate::thread_exit;

thread_local! {
    /// How many of the pool's drops are running on this thread. A `Cell` without a destructor,
    /// readable until the very end of the thread.
    static CONTAINING: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` (a drop's work) with every close callback's panic contained.
pub(crate) fn containing<R>(f: impl FnOnce() -> R) -> R {
    /// Lowers the depth again even if `f` unwinds (a reset hook's panic still propagates).
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            CONTAINING.with(|depth| depth.set(depth.get() - 1));
        }
    }
    CONTAINING.with(|depth| depth.set(depth.get() + 1));
    let _depth = Depth;
    f()
}

/// Whether a close callback's panic must be contained here rather than propagated.
pub(crate) fn must_contain() -> bool {
    std::thread::panicking() || thread_exit::is_exiting() || CONTAINING.with(Cell::get) > 0
}
