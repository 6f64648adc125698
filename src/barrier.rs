//! The asymmetric barrier: a light half for the owner of a list, on its hot path, and a heavy
//! half for the rare thread that reaches into other threads' lists.
//!
//! The pair orders like two `SeqCst` fences, one on each side (folly's
//! `asymmetricLightBarrier`/`asymmetricHeavyBarrier`, the C++ proposal P1202): of a store
//! before one half and a load after the other, at least one side sees the other's store. The
//! light half costs the owner nothing but a compiler fence, because the heavy half makes every
//! CPU that runs one of the process's threads execute a full barrier before it returns:
//!
//! - Linux: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, registered once per process when
//!   the first pool is built. A CPU that runs no thread of the process has passed a barrier
//!   already (a context switch is one).
//! - Other systems: the light half is a real `SeqCst` fence, and so is the heavy half: correct
//!   everywhere, at the price of a full fence on the owner's path.
//! - Linux where the call is refused (a kernel older than 4.14, a seccomp filter): the light
//!   half stays a compiler fence, so the heavy half cannot be had at all, and
//!   [`reaches_other_threads`] says so: the pool then leaves every list to its own thread.
//! - Under loom and Miri, which cannot run the system call, both halves are `SeqCst` fences,
//!   which is what the pair is specified to be.

#[cfg(all(target_os = "linux", not(any(loom, miri))))]
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

#[cfg(any(loom, miri, not(target_os = "linux")))]
use crate::sync::{Ordering::SeqCst, fence};

/// Whether `membarrier` was registered: set once, by [`init`], before any pool is built, and
/// never cleared. A pool is published to other threads only after it was built, so every
/// thread that reclaims from one of its lists reads the value `init` left.
#[cfg(all(target_os = "linux", not(any(loom, miri))))]
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Registers this process for `membarrier` on Linux. Called by every `Builder::build`; the
/// work is done once.
pub(crate) fn init() {
    #[cfg(all(target_os = "linux", not(any(loom, miri))))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| REGISTERED.store(membarrier::register(), Relaxed));
    }
}

/// Whether the heavy half exists in this process, so that a thread may take over another
/// thread's list. `false` only on Linux when `membarrier` was refused.
#[inline]
pub(crate) fn reaches_other_threads() -> bool {
    #[cfg(all(target_os = "linux", not(any(loom, miri))))]
    return REGISTERED.load(Relaxed);
    #[cfg(not(all(target_os = "linux", not(any(loom, miri)))))]
    return true;
}

/// The owner's half, between its store that marks the list busy and its load of the reclaim
/// flag. Chosen when the crate is compiled, so that the owner's path has no branch for it.
#[inline(always)]
pub(crate) fn light() {
    #[cfg(any(loom, miri, not(target_os = "linux")))]
    fence(SeqCst);
    // Keeps the compiler from moving the flag's load above the busy store; the CPU's
    // reordering is what the heavy half takes care of.
    #[cfg(not(any(loom, miri, not(target_os = "linux"))))]
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// The reclaimer's half, between its stores of the reclaim flags and its loads of the busy
/// marks.
/// Only where [`reaches_other_threads`].
pub(crate) fn heavy() {
    debug_assert!(reaches_other_threads());
    #[cfg(all(target_os = "linux", not(any(loom, miri))))]
    membarrier::expedited();
    #[cfg(any(loom, miri, not(target_os = "linux")))]
    fence(SeqCst);
}

#[cfg(all(target_os = "linux", not(any(loom, miri))))]
mod membarrier {
    //! The `membarrier(2)` system call; its commands from `<linux/membarrier.h>`.

    const CMD_QUERY: libc::c_long = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    fn call(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: `membarrier` takes a command and two integer arguments, reads and writes no
        // memory of the caller's, and reports failure through its return value.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    }

    /// Registers the process for the expedited command; whether it may use it.
    pub(super) fn register() -> bool {
        let supported = call(CMD_QUERY);
        supported >= 0
            && supported & CMD_PRIVATE_EXPEDITED != 0
            && call(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    }

    /// A full barrier on every CPU that runs a thread of this process.
    pub(super) fn expedited() {
        let result = call(CMD_PRIVATE_EXPEDITED);
        // Registered in `init`, the command cannot fail: `EPERM` (not registered) and `EINVAL`
        // (not supported) were ruled out there.
        assert_eq!(result, 0, "membarrier failed after registration");
    }
}

#[cfg(all(test, target_os = "linux", not(any(loom, miri))))]
mod tests {
    /// This project's machines run Linux kernels that support the expedited command, which
    /// every suite that reaches into other threads' lists relies on.
    #[test]
    fn membarrier_is_available_here() {
        super::init();
        assert!(super::reaches_other_threads());
        super::heavy();
    }
}
