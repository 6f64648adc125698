//! The memory section: heap bytes the pool's own structures cost per thread, measured with a
//! counting allocator installed as this program's global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::Barrier;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use cachepool::CachePool;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments, so `System`'s
// guarantees hold; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller's obligations for `alloc` are passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout` (through `alloc` above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's valid new size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes live while `threads` threads each ran `work` once and wait, over those live
/// before they started.
fn live_bytes_with_threads(threads: usize, work: impl Fn() + Sync) -> isize {
    let ready = Barrier::new(threads + 1);
    let release = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let before = LIVE_BYTES.load(Relaxed);
        for _ in 0..threads {
            scope.spawn(|| {
                work();
                ready.wait();
                release.wait();
            });
        }
        ready.wait();
        let during = LIVE_BYTES.load(Relaxed);
        release.wait();
        during - before
    })
}

pub fn memory_section() -> String {
    // The first threads of the process allocate some one-off state: measure bare threads after.
    live_bytes_with_threads(8, || {});
    let mut rows = String::new();
    for threads in [16, 64, 256] {
        let bare = live_bytes_with_threads(threads, || {});
        // Elements that own no heap memory, so that only the pool's own structures count.
        let pool = CachePool::builder(|| 0u64).pool_size(1024).build();
        let round_trip = || {
            let mut x = pool.checkout();
            *x += 1;
        };
        let first = live_bytes_with_threads(threads, round_trip) - bare;
        let _ = writeln!(rows, "| {threads} | {:.0} |", first as f64 / threads as f64);
    }
    format!(
        "Heap bytes the pool's own structures take per thread, measured by `bench_report` with a \
         counting allocator: N threads each check one `u64` out of a fresh pool and give it \
         back, and the bytes live while they wait are compared with N threads that do nothing.\n\n\
         | threads (N) | bytes per thread |\n\
         |--:|--:|\n{rows}\n\
         This is the thread's slot in the pool's `ThreadLocal`, its free list's buffer and its \
         exit-hook registration. Slots come in buckets indexed by thread id whose sizes double \
         (1, 1, 2, 4, ... slots), so a bucket is allocated whole when its first thread arrives: \
         per thread, between one and two slots' worth, depending on the thread ids in use (ids \
         of exited threads are reused, and so are their slots). A thread's list buffer then grows \
         with the elements it holds idle, up to `thread_capacity` × `size_of::<T>()` bytes (24 \
         bytes per idle `Vec<u8>`, beside the elements themselves). The elements idle in the \
         pool never exceed `pool_size`: the benchmark asserts it after every `cachepool` \
         measurement.\n"
    )
}
