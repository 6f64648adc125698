//! Panics a test injects on purpose, told apart from the pool's own, and kept out of the
//! output while a test expects them.

use std::panic::{self, PanicHookInfo};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Site;

/// The payload of every panic a test injects on purpose; the silenced panic hook recognises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedPanic(pub Site);

/// Panics with an [`InjectedPanic`] payload.
pub fn inject(site: Site) -> ! {
    panic::panic_any(InjectedPanic(site))
}

/// Asserts that a caught panic is one the test injected (and returns its site), so a real
/// panic of the pool is never mistaken for an injected one.
#[track_caller]
pub fn expect_injected(payload: Box<dyn std::any::Any + Send>) -> Site {
    match payload.downcast::<InjectedPanic>() {
        Ok(injected) => injected.0,
        Err(other) => panic::resume_unwind(other),
    }
}

/// Keeps the panic hook from printing injected panics while alive; other panics still print.
///
/// The hook is process-wide and the tests of this binary run in parallel, so the filter is
/// installed by the first live guard and the previous hook restored when the last one drops.
#[must_use]
pub struct QuietInjectedPanics(());

type Hook = Arc<dyn Fn(&PanicHookInfo<'_>) + Send + Sync>;

struct HookState {
    users: usize,
    previous: Option<Hook>,
}

static HOOK: Mutex<HookState> = Mutex::new(HookState {
    users: 0,
    previous: None,
});

fn hook_state() -> MutexGuard<'static, HookState> {
    // A test that failed while holding the lock leaves the counts intact: keep going.
    HOOK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn silence_injected_panics() -> QuietInjectedPanics {
    let mut state = hook_state();
    if state.users == 0 {
        let previous: Hook = Arc::from(panic::take_hook());
        let forward = Arc::clone(&previous);
        panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<InjectedPanic>() {
                forward(info);
            }
        }));
        state.previous = Some(previous);
    }
    state.users += 1;
    QuietInjectedPanics(())
}

impl Drop for QuietInjectedPanics {
    fn drop(&mut self) {
        let mut state = hook_state();
        state.users -= 1;
        // The hook cannot be changed from a panicking thread; the filter then stays, and it
        // forwards every panic that was not injected anyway.
        if state.users == 0
            && !std::thread::panicking()
            && let Some(previous) = state.previous.take()
        {
            drop(panic::take_hook());
            panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}
