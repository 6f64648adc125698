//! Everything the pool's cross-thread protocols are made of, in one place so that a model
//! checker can swap it: the atomics of the budget and of the handshake, the locks and the
//! fence, the cell that holds each thread's list, and the map from threads to their lists.
//!
//! Under `--cfg loom` these are loom's instrumented types (and a thread map keyed by loom's
//! thread ids), and `cargo test --cfg loom` explores every interleaving of the protocols: the
//! `loom` tests in `src/budget.rs`, `src/local.rs` and `src/slow_path.rs`. Otherwise they
//! are std's and the `thread_local` crate's, at no cost: the cell's closure API inlines to a
//! plain pointer access. The statistics counters are not here: each has one writer, and a
//! model checker has nothing to find in them. Neither is the global shard's channel, which
//! loom sees as one step per send or receive.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(loom)]
pub(crate) use loom::sync::MutexGuard;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(loom)]
pub(crate) use model::ThreadLocal;
#[cfg(all(not(loom), any(miri, not(target_os = "linux"))))]
pub(crate) use std::sync::atomic::fence;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use thread_local::ThreadLocal;

/// One turn of a wait for another thread: a spin hint at first, then a yield to the scheduler
/// (the thread waited for may be descheduled); under loom, a yield to the model, which needs it
/// to make progress in a spin loop.
#[inline]
pub(crate) fn spin_wait(turn: &mut u32) {
    #[cfg(loom)]
    {
        let _ = turn;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        *turn += 1;
        if *turn < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// `std::cell::UnsafeCell` with loom's API: every access goes through a closure, which loom
/// uses to check that no two threads touch the cell at once.
#[cfg(not(loom))]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` on a pointer to the value; what `f` may do with it is the caller's contract.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// What loom needs in place of `std` thread-locals: its model threads share one OS thread,
/// and so would share every `thread_local!` value.
#[cfg(loom)]
mod model {
    use std::sync::Mutex;

    use loom::thread::ThreadId;

    /// `thread_local::ThreadLocal`'s API over a list of `(model thread, value)` pairs.
    ///
    /// The list is behind a `std` mutex, which loom does not see: a lookup is one step of the
    /// model, as `ThreadLocal::get` (a few loads of data no other thread writes) is in reality.
    /// Creating a value and iterating over them also take `published`, a loom mutex, which
    /// stands for the `Release`/`Acquire` pair with which the `thread_local` crate publishes a
    /// new slot: a thread that finds another thread's value through `iter` sees it made.
    pub(crate) struct ThreadLocal<T: Send> {
        /// Invariant: an entry is never removed or replaced, and its box never moved out of,
        /// while the map lives, so a reference to a value lives as long as `&self`.
        values: Mutex<Vec<(ThreadId, Box<T>)>>,
        published: loom::sync::Mutex<()>,
    }

    impl<T: Send> ThreadLocal<T> {
        pub(crate) fn new() -> Self {
            ThreadLocal {
                values: Mutex::new(Vec::new()),
                published: loom::sync::Mutex::new(()),
            }
        }

        /// The current model thread's value, if it has one.
        pub(crate) fn get(&self) -> Option<&T> {
            let me = loom::thread::current().id();
            let values = self.values.lock().unwrap();
            let value = values.iter().find(|(id, _)| *id == me)?;
            let value: *const T = &*value.1;
            // SAFETY: the box is never dropped or moved out of while `self` lives (the field's
            // invariant), so the value outlives the borrow of `self`.
            Some(unsafe { &*value })
        }

        /// The current model thread's value, created by `create` if it has none.
        pub(crate) fn get_or(&self, create: impl FnOnce() -> T) -> &T {
            if let Some(value) = self.get() {
                return value;
            }
            let me = loom::thread::current().id();
            let value = Box::new(create());
            let _published = self.published.lock().unwrap();
            let mut values = self.values.lock().unwrap();
            values.push((me, value));
            let value: *const T = &*values.last().unwrap().1;
            // SAFETY: as in `get`.
            unsafe { &*value }
        }

        /// Every thread's value.
        pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
            let _published = self.published.lock().unwrap();
            let values = self.values.lock().unwrap();
            let all: Vec<*const T> = values
                .iter()
                .map(|(_, value)| &**value as *const T)
                .collect();
            // SAFETY: as in `get`.
            all.into_iter().map(|value| unsafe { &*value })
        }

        /// Every thread's value, through exclusive access.
        pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
            self.values
                .get_mut()
                .unwrap()
                .iter_mut()
                .map(|(_, value)| &mut **value)
        }
    }
}
