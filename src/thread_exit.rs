//! Flushing a thread's lists when the thread exits.
//!
//! `thread_local::ThreadLocal` keeps a thread's value after the thread exits (until the
//! `ThreadLocal` itself drops) and hands the slot to a later thread. Idle elements left in an
//! exited thread's list would be stranded there, so each thread keeps, in a `std` thread-local,
//! the list of pools it has cached elements for; when the thread exits, its destructor moves
//! each live pool's elements to that pool's global shard.
//!
//! Ordering of thread-local destructors: a thread registers here only after it obtained its
//! `ThreadLocal` slot, i.e. after `thread_local`'s own per-thread id guard was created. std runs
//! thread-local destructors in reverse order of registration on every tier-1 platform, so this
//! flush runs while the thread still owns its slot. Were the order different, `ThreadLocal::get`
//! would find no slot and nothing would be flushed: the elements would stay in the slot, used by
//! the next thread given it and closed when the pool drops; never touched by two threads.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Weak;

/// A pool that can flush the current thread's list.
pub(crate) trait FlushOnExit: Send + Sync {
    /// Moves the current thread's idle elements out of its list, gives back its unused lease
    /// and marks the list unregistered.
    fn flush_current_thread(&self);
}

/// The pools the current thread has cached elements for.
struct ExitHooks {
    pools: RefCell<Vec<Weak<dyn FlushOnExit>>>,
}

impl Drop for ExitHooks {
    fn drop(&mut self) {
        EXITING.with(|exiting| exiting.set(true));
        for pool in std::mem::take(self.pools.get_mut()) {
            // A panic cannot leave a thread-local destructor (the process would abort): a close
            // callback that panics here has already been given its element, so the panic is
            // reported by the panic hook and otherwise ignored, and the other pools are flushed.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                if let Some(pool) = pool.upgrade() {
                    pool.flush_current_thread();
                }
            }));
        }
    }
}

thread_local! {
    /// Set when this thread's exit hooks start running. A `Cell` without a destructor, so it
    /// stays readable until the very end of the thread, after `EXIT_HOOKS` is gone.
    static EXITING: Cell<bool> = const { Cell::new(false) };

    static EXIT_HOOKS: ExitHooks = const {
        ExitHooks {
            pools: RefCell::new(Vec::new()),
        }
    };
}

/// Asks for `pool` to be flushed when the current thread exits.
///
/// Returns `false` if the thread is already exiting (its hooks have run): the caller must then
/// not cache elements in this thread's list.
pub(crate) fn register(pool: Weak<dyn FlushOnExit>) -> bool {
    EXIT_HOOKS
        .try_with(|hooks| {
            let mut pools = hooks.pools.borrow_mut();
            // Forget pools that have been dropped, before the list would grow; amortised over
            // the pushes since the last growth.
            if pools.len() == pools.capacity() {
                pools.retain(|p| p.strong_count() > 0);
            }
            pools.push(pool);
        })
        .is_ok()
}

/// Whether the current thread has started running its exit hooks (it is exiting).
///
/// Reads a thread-local the hooks set, without touching the hooks themselves: accessing them
/// would register their destructor, and before `thread_local`'s own, that order matters (see
/// the module docs).
pub(crate) fn is_exiting() -> bool {
    EXITING.with(Cell::get)
}
