//! The same reset hook in each form a pool accepts, side by side: one thread checks a 4 KiB
//! `Vec<u8>` out of a warm pool and drops the guard, which clears it on the way back.
//!
//! ```text
//! cargo bench --bench reset_forms
//! ```
//!
//! `reset_type` is a [`Reset`] type, `closure_in_type` the same hook as a closure given to
//! `reset_with` (the pool's type names the closure's), `fn_pointer` that closure turned into a
//! `fn(&mut Vec<u8>) -> bool` (the nameable form, for a pool in a field or a `static`), and
//! `boxed_closure` the closure given to `Builder::reset` (boxed, the pool's type stays
//! `CachePool<Vec<u8>>`). `benches/compare.rs` measures the forms it can name across every
//! workload; a closure's own type cannot be named there, so it is measured here.

use std::hint::black_box;

use cachepool::{CachePool, Reset};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

/// The hook every form runs: empty the buffer, keep it.
#[inline]
fn clear(buf: &mut Vec<u8>) -> bool {
    buf.clear();
    true
}

/// The hook as a [`Reset`] type.
#[derive(Clone, Copy)]
struct ClearType;

impl Reset<Vec<u8>> for ClearType {
    #[inline]
    fn reset(&self, buf: &mut Vec<u8>) -> bool {
        clear(buf)
    }
}

fn buffer() -> Vec<u8> {
    Vec::with_capacity(4096)
}

/// Benchmarks one checkout and drop on `pool`, warmed first.
fn round_trips<R: Reset<Vec<u8>>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    pool: &CachePool<Vec<u8>, R>,
) {
    drop(pool.checkout());
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut buf = pool.checkout();
            black_box(&mut *buf);
        })
    });
}

fn reset_forms(c: &mut Criterion) {
    let mut group = c.benchmark_group("reset_forms");
    let pool = CachePool::builder(buffer).reset_with(ClearType).build();
    round_trips(&mut group, "reset_type", &pool);
    let pool = CachePool::builder(buffer)
        .reset_with(|buf: &mut Vec<u8>| clear(buf))
        .build();
    round_trips(&mut group, "closure_in_type", &pool);
    let pool = CachePool::builder(buffer)
        .reset_with(clear as fn(&mut Vec<u8>) -> bool)
        .build();
    round_trips(&mut group, "fn_pointer", &pool);
    let pool = CachePool::builder(buffer).reset(clear).build();
    round_trips(&mut group, "boxed_closure", &pool);
    group.finish();
}

criterion_group!(benches, reset_forms);
criterion_main!(benches);
