//! `cachepool` side by side with the floor (a plain `thread_local!` free list), no pool, and
//! every pool a Rust user would pick instead, on the same workloads in one run.
//!
//! ```text
//! cargo bench --bench compare                 # everything: about 11 minutes on 2 cores
//! cargo bench --bench compare -- st_hit       # one workload (a criterion filter, a regex)
//! cargo bench --bench compare -- 'mt_hit.*/(floor|cachepool)'
//! scripts/bench.sh 3                          # 3 runs, then docs/benchmarks.md and .svg
//! ```
//!
//! Layout: `compare/element.rs` (the pooled element types), `compare/subjects.rs` (one adapter
//! per subject), `compare/workloads.rs` (one function per workload, generic over both),
//! `compare/pipeline.rs` (the `pipeline_<shape>_d<depth>` workloads). A benchmark id is
//! `<workload>-<element>/<subject>`.
//!
//! Each benchmark also prints how many elements its subject created, one line to stderr
//! (`created <group>/<subject> <n> in_flight_max <n|-> runs <n|-> elements <n|->`), and writes
//! it to `target/criterion/<group>/<subject>/created.json` for the report.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{Bencher, BenchmarkGroup, Criterion, Throughput};

#[path = "compare/cores.rs"]
mod cores;
#[path = "compare/element.rs"]
mod element;
// Shared with `examples/bench_report`, which reads what this binary leaves unused.
#[allow(dead_code)]
#[path = "compare/names.rs"]
mod names;
#[path = "compare/pipeline.rs"]
mod pipeline;
#[path = "compare/subjects.rs"]
mod subjects;
#[path = "compare/workloads.rs"]
mod workloads;

use element::{Arr16k, Arr1400, Box64, BoxArr16k, BoxArr1400, Element, Vec4k};
use pipeline::{Pipeline, Shape};
use subjects::*;
use workloads::*;

/// Builds `S`, measures it under `workload`, checks its idle count afterwards, and records
/// how many elements it created.
fn bench<E: Element, S: Build<E>, W: Workload>(
    workload: &W,
    group: &mut BenchmarkGroup<'_, WallTime>,
) {
    bench_built(workload, group, S::build);
}

/// [`bench`] for a subject that `build` makes (one whose type names a closure's).
fn bench_built<E: Element, S: Subject<E>, W: Workload>(
    workload: &W,
    group: &mut BenchmarkGroup<'_, WallTime>,
    build: impl FnOnce() -> S,
) {
    counted(group, S::NAME, |group| {
        let subject = build();
        group.bench_function(S::NAME, |b| workload.measure::<E, S>(ran(b), &subject));
        check_idle::<E, S>(&subject);
    });
}

/// Runs `run`, which registers the benchmark `name` in `group`, between a reset and a reading
/// of the created-element count and the pipeline census, and records them (see [`record`])
/// when the benchmark ran (a filter may skip it). Elements built while the subject is built
/// count, and those a subject keeps are dropped inside `run`, before the reading.
fn counted(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    run: impl FnOnce(&mut BenchmarkGroup<'_, WallTime>),
) {
    element::reset_created();
    pipeline::reset_census();
    cores::reset_census();
    RAN.with(|ran| ran.set(false));
    run(group);
    if RAN.with(Cell::get) {
        record(
            &group_name(),
            name,
            element::created(),
            pipeline::census(),
            cores::census(),
        );
    }
}

thread_local! {
    /// Whether the benchmark being [`counted`] ran: set by [`ran`] from inside its closure.
    static RAN: Cell<bool> = const { Cell::new(false) };
    /// The criterion group being run: criterion's `BenchmarkGroup` does not tell its name.
    static GROUP: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Marks the benchmark being [`counted`] as run; criterion calls a benchmark's closure only
/// when the filter selects it.
fn ran<'a, 'b>(b: &'a mut Bencher<'b>) -> &'a mut Bencher<'b> {
    RAN.with(|ran| ran.set(true));
    b
}

/// The name of the group [`open_group`] opened last.
fn group_name() -> String {
    GROUP.with(|g| g.borrow().clone())
}

/// Prints one line per benchmark to stderr, next to criterion's output,
/// `created <group>/<subject> <created> in_flight_max <n|-> runs <n|-> elements <n|->
/// samples <n|-> rerun <n|-> unusual <n|->` (in-flight to elements from the pipelines'
/// census, the last three from the cross-core gate's, `-` elsewhere), and, in a measuring run
/// (not `--test` or `--list`), writes the same as `created.json` beside criterion's
/// estimates, where `examples/bench_report` reads it.
fn record(
    group: &str,
    subject: &str,
    created: u64,
    census: Option<(usize, u64, u64)>,
    gate: Option<(u64, u64, u64)>,
) {
    let field = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
    let (in_flight_max, runs, elements) = match census {
        Some((max, runs, elements)) => (Some(max as u64), Some(runs), Some(elements)),
        None => (None, None, None),
    };
    let (samples, rerun, unusual) = match gate {
        Some((samples, rerun, unusual)) => (Some(samples), Some(rerun), Some(unusual)),
        None => (None, None, None),
    };
    eprintln!(
        "created {group}/{subject} {created} in_flight_max {} runs {} elements {} \
         samples {} rerun {} unusual {}",
        field(in_flight_max),
        field(runs),
        field(elements),
        field(samples),
        field(rerun),
        field(unusual)
    );
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let dir = criterion_dir().join(group).join(subject);
    let json = serde_json::json!({
        "group": group,
        "subject": subject,
        "created": created,
        "in_flight_max": in_flight_max,
        "runs": runs,
        "elements": elements,
        "samples": samples,
        "rerun": rerun,
        "unusual": unusual,
    });
    if let Err(e) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("created.json"), json.to_string()))
    {
        eprintln!("compare: cannot write {}: {e}", dir.display());
    }
}

/// Where criterion writes its output, found the way criterion does except for its `cargo
/// metadata` step (this crate sets no target directory in a config file).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("criterion")
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
    bench_built(workload, group, cachepool_typed_closure::<E>);
    bench::<E, CpFn<E>, W>(workload, group);
    bench::<E, CpClosure<E>, W>(workload, group);
    bench::<E, CpOwned<E>, W>(workload, group);
    bench::<E, CpRaw<E>, W>(workload, group);
    bench_built(workload, group, cachepool_weighed::<E>);
    bench::<E, CpWeighedBoxed<E>, W>(workload, group);
}

/// The subjects of the large-element groups: the floor, regex-automata's pool (whose owner
/// thread's value never moves), and `cachepool` by guard and by value.
fn for_each_large_subject<E: Element, W: Workload>(
    workload: &W,
    group: &mut BenchmarkGroup<'_, WallTime>,
) {
    bench::<E, Floor, W>(workload, group);
    bench::<E, RegexPool<E>, W>(workload, group);
    bench::<E, CpBorrow<E>, W>(workload, group);
    bench::<E, CpRaw<E>, W>(workload, group);
}

/// One criterion group of a large element: a workload over [`for_each_large_subject`].
fn large_group<E: Element, W: Workload>(c: &mut Criterion, workload: W) {
    let mut group = open_group::<E, W>(c, &workload);
    for_each_large_subject::<E, W>(&workload, &mut group);
    group.finish();
}

/// The large elements, by value and boxed, under one workload.
fn large_groups<W: Workload + Copy>(c: &mut Criterion, workload: W) {
    large_group::<Arr1400, _>(c, workload);
    large_group::<BoxArr1400, _>(c, workload);
    large_group::<Arr16k, _>(c, workload);
    large_group::<BoxArr16k, _>(c, workload);
}

/// Opens the criterion group of `workload` with element `E`, and remembers its name for
/// [`record`].
fn open_group<'c, E: Element, W: Workload>(
    c: &'c mut Criterion,
    workload: &W,
) -> BenchmarkGroup<'c, WallTime> {
    let name = names::group(&workload.name(), E::NAME);
    let mut group = c.benchmark_group(&name);
    GROUP.with(|g| g.replace(name));
    group.throughput(Throughput::Elements(workload.elements_per_iter()));
    group
}

/// One criterion group: a workload with one element type, over every subject.
fn group<E: Element, W: Workload>(c: &mut Criterion, workload: W) {
    let mut group = open_group::<E, W>(c, &workload);
    for_each_subject::<E, W>(&workload, &mut group);
    group.finish();
}

/// The `rayon` group: every subject, and `rayon_map_init`, rayon's own per-worker state
/// (`map_init`), which needs no pool: its created count is how many times rayon ran the init.
fn rayon_group<E: Element>(c: &mut Criterion) {
    let mut group = open_group::<E, Rayon>(c, &Rayon);
    for_each_subject::<E, Rayon>(&Rayon, &mut group);
    counted(&mut group, names::RAYON_MAP_INIT, |group| {
        group.bench_function(names::RAYON_MAP_INIT, |b| {
            Rayon.measure_map_init::<E>(ran(b))
        });
    });
    group.finish();
}

/// A `pipeline` group: every subject, and `channel_u64`, the same pipeline carrying a bare
/// `u64`: the issue's throughput target is "within 1.5x" of it.
fn pipeline_group(c: &mut Criterion, pipeline: Pipeline) {
    let mut group = open_group::<Vec4k, Pipeline>(c, &pipeline);
    for_each_subject::<Vec4k, Pipeline>(&pipeline, &mut group);
    counted(&mut group, names::CHANNEL_U64, |group| {
        group.bench_function(names::CHANNEL_U64, |b| pipeline.measure_bare(ran(b)));
    });
    group.finish();
}

fn main() {
    // Single-threaded workloads run on the main thread: keep it on one core.
    pin_to(0);
    cores::calibrate();
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
    for threads in names::MT_HIT_THREADS {
        group::<Vec4k, _>(&mut c, MtHit { threads });
        group::<Box64, _>(&mut c, MtHit { threads });
    }
    large_groups(&mut c, StHit);
    large_groups(&mut c, StBurst);
    for threads in names::MT_HIT_THREADS {
        large_groups(&mut c, MtHit { threads });
    }
    group::<Vec4k, _>(&mut c, CrossThread);
    rayon_group::<Vec4k>(&mut c);
    // 4 KiB buffers only: 8 groups already add about 5 minutes.
    for shape in Shape::ALL {
        for depth in names::PIPELINE_DEPTHS {
            pipeline_group(&mut c, Pipeline { shape, depth });
        }
    }

    c.final_summary();
}
