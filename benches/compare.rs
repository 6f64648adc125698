//! `cachepool` side by side with the floor (a plain `thread_local!` free list), no pool, and
//! every pool a Rust user would pick instead, on the same workloads in one run.
//!
//! ```text
//! cargo bench --bench compare                 # everything: about 5 minutes on 2 cores
//! cargo bench --bench compare -- st_hit       # one workload (a criterion filter, a regex)
//! cargo bench --bench compare -- 'mt_hit.*/(floor|cachepool)'
//! scripts/bench.sh 3                          # 3 runs, then docs/benchmarks.md and .svg
//! ```
//!
//! Layout: `compare/element.rs` (the pooled element types), `compare/subjects.rs` (one adapter
//! per subject), `compare/workloads.rs` (one function per workload, generic over both). A
//! benchmark id is `<workload>-<element>/<subject>`.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};

#[path = "compare/element.rs"]
mod element;
#[path = "compare/subjects.rs"]
mod subjects;
#[path = "compare/workloads.rs"]
mod workloads;

use element::{Box64, Element, Vec4k};
use subjects::*;
use workloads::*;

/// Builds `S`, measures it under `workload`, and checks its idle count afterwards.
fn bench<E: Element, S: Subject<E>, W: Workload>(
    workload: &W,
    group: &mut BenchmarkGroup<'_, WallTime>,
) {
    let subject = S::build();
    group.bench_function(S::NAME, |b| workload.measure::<E, S>(b, &subject));
    check_idle::<E, S>(&subject);
}

/// Every subject, in the order of the report.
fn for_each_subject<E: Element, W: Workload>(
    workload: &W,
    group: &mut BenchmarkGroup<'_, WallTime>,
) {
    bench::<E, Floor, W>(workload, group);
    bench::<E, NoPool, W>(workload, group);
    bench::<E, StdMutex<E>, W>(workload, group);
    bench::<E, LfLinear<E>, W>(workload, group);
    bench::<E, LfSpinLock<E>, W>(workload, group);
    bench::<E, LfMutex<E>, W>(workload, group);
    bench::<E, ObjectPool<E>, W>(workload, group);
    bench::<E, Opool<E>, W>(workload, group);
    bench::<E, ShardedSlab<E>, W>(workload, group);
    bench::<E, ArrayQueuePool<E>, W>(workload, group);
    bench::<E, RegexPool<E>, W>(workload, group);
    bench::<E, CpBorrow<E>, W>(workload, group);
    bench::<E, CpClosure<E>, W>(workload, group);
    bench::<E, CpOwned<E>, W>(workload, group);
    bench::<E, CpRaw<E>, W>(workload, group);
}

/// One criterion group: a workload with one element type, over every subject.
fn group<E: Element, W: Workload>(c: &mut Criterion, workload: W) {
    let mut group = c.benchmark_group(format!("{}-{}", workload.name(), E::NAME));
    group.throughput(Throughput::Elements(workload.elements_per_iter()));
    for_each_subject::<E, W>(&workload, &mut group);
    group.finish();
}

fn main() {
    // Single-threaded workloads run on the main thread: keep it on one core.
    pin_to(0);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(20)
        .nresamples(10_000)
        .without_plots()
        .configure_from_args();

    group::<Vec4k, _>(&mut c, StHit);
    group::<Box64, _>(&mut c, StHit);
    group::<Vec4k, _>(&mut c, StBurst);
    group::<Box64, _>(&mut c, StBurst);
    group::<Vec4k, _>(&mut c, MtHit { threads: 2 });
    group::<Box64, _>(&mut c, MtHit { threads: 2 });
    group::<Vec4k, _>(&mut c, MtHit { threads: 8 });
    group::<Box64, _>(&mut c, MtHit { threads: 8 });
    group::<Vec4k, _>(&mut c, CrossThread);
    group::<Vec4k, _>(&mut c, Rayon);

    c.final_summary();
}
