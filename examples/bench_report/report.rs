//! Assembles `docs/benchmarks.md` from the summary: the header, the targets, the subjects,
//! a table per workload, the notes on reading them, the memory section; and writes it with
//! the chart beside it and the README's table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Result;
use crate::chart::chart;
use crate::criterion::{Gate, load_runs, measures};
use crate::format::{fmt_ns, fmt_ratio, fmt_spread};
use crate::machine::{command_output, machine, utc_date};
use crate::memory::memory_section;
use crate::names::{
    BOX64, CACHEPOOL, CACHEPOOL_BORROW, CACHEPOOL_CLOSURE, CACHEPOOL_FN, CACHEPOOL_OWNED,
    CACHEPOOL_RAW, CACHEPOOL_TYPED_CLOSURE, CHANNEL_U64, CROSS_THREAD, CROSSBEAM_ARRAYQUEUE, FLOOR,
    LFOP_LINEAR, LFOP_MUTEX, LFOP_SPINLOCK, MT_HIT_THREADS, NO_POOL, OBJECT_POOL, OPOOL, PEERS,
    PIPELINE_DEPTHS, RAYON, RAYON_MAP_INIT, REGEX_POOL, SHAPE_1TO1, SHAPE_1TO4, SHAPE_1TO4TO1,
    SHAPE_4TO1, SHAPES, SHARDED_SLAB, ST_BURST, ST_HIT, STD_MUTEX, VEC4K, group, mt_hit, pipeline,
};
use crate::readme;
use crate::summary::{Row, Summary, summarise, widest_swing};
use crate::targets::targets_section;

/// What `report` was asked for.
pub struct Options {
    /// Where the runs were saved.
    pub dir: PathBuf,
    pub docs: PathBuf,
    /// The command the page says produced it.
    pub command: String,
    /// The commit the page names; the checkout's when not given.
    pub commit: Option<String>,
    /// The README whose marked table is rewritten.
    pub readme: PathBuf,
}

/// The runs saved in `dir`, and their summary.
pub fn load(dir: &Path) -> Result<(Vec<Value>, Summary)> {
    let runs = load_runs(dir)?;
    let measured: Vec<_> = runs.iter().map(measures).collect();
    let summary = summarise(&measured);
    if summary.is_empty() {
        return Err("no benchmark results found: run `cargo bench --bench compare` first".into());
    }
    Ok((runs, summary))
}

/// How an element type is named in the report.
fn element_label(element: &str) -> &'static str {
    match element {
        VEC4K => "4 KiB `Vec<u8>`",
        BOX64 => "`Box<[u8; 64]>`",
        _ => "",
    }
}

/// Groups in report order, with what one "element" is in them.
pub fn groups() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |workload: &str, element: &str, what: &str| {
        let what = format!("{what}; {}", element_label(element));
        out.push((group(workload, element), what));
    };
    for element in [VEC4K, BOX64] {
        add(
            ST_HIT,
            element,
            "one thread, checkout + drop on a warm pool",
        );
    }
    for element in [VEC4K, BOX64] {
        add(
            ST_BURST,
            element,
            "one thread holds 16 at once, then drops them; per element",
        );
    }
    for threads in MT_HIT_THREADS {
        let placement = if threads == 2 {
            "2 threads pinned to separate cores".to_owned()
        } else {
            format!(
                "{threads} threads on the 2 cores ({} pinned to each)",
                threads / 2
            )
        };
        for element in [VEC4K, BOX64] {
            let what = format!("{placement}, one shared pool; wall time / total round trips");
            add(&mt_hit(threads), element, &what);
        }
    }
    add(
        CROSS_THREAD,
        VEC4K,
        "producer checks out and sends over a bounded channel, consumer on the other core \
         drops; per element",
    );
    add(
        RAYON,
        VEC4K,
        "`par_iter` over 4096 records on 2 pinned rayon workers, each task checks out a buffer \
         and writes 64 bytes; per record",
    );
    for shape in SHAPES {
        let threads = match shape {
            SHAPE_1TO1 => "1 producer, 1 consumer",
            SHAPE_4TO1 => "4 producers, 1 consumer",
            SHAPE_1TO4 => "1 producer, 4 consumers",
            SHAPE_1TO4TO1 => {
                "1 producer, 4 workers passing each element on through a second channel, 1 \
                 final consumer"
            }
            _ => shape,
        };
        for depth in PIPELINE_DEPTHS {
            let what = format!(
                "{threads} through `crossbeam_channel::bounded({depth})`, checked out at the \
                 start and dropped at the end; threads pinned round-robin; per element"
            );
            add(&pipeline(shape, depth), VEC4K, &what);
        }
    }
    out
}

/// The subjects table: each subject (or family of subjects) and what it is.
fn subjects_table() -> String {
    let about: &[(&[&str], &str)] = &[
        (
            &[FLOOR],
            "a `thread_local!` `RefCell<Vec<T>>` free list: pop or create, clear and push back \
             (at most 1024 per thread)",
        ),
        (&[NO_POOL], "build the element each time and drop it"),
        (&[STD_MUTEX], "`std::sync::Mutex<Vec<T>>`"),
        (
            &[LFOP_LINEAR, LFOP_SPINLOCK, LFOP_MUTEX],
            "`lockfree-object-pool` 0.1: `LinearObjectPool`, `SpinLockObjectPool`, \
             `MutexObjectPool` (`pull()`, reset hook)",
        ),
        (
            &[OBJECT_POOL],
            "`object-pool` 0.6: `Pool::pull(fallback)` (no reset hook, no bound)",
        ),
        (
            &[OPOOL],
            "`opool` 0.2: `Pool::get()`, 1024 slots (reset runs on checkout)",
        ),
        (
            &[SHARDED_SLAB],
            "`sharded_slab::Pool`: `create()`, then `clear(key)` to give back (`Clear` resets)",
        ),
        (
            &[CROSSBEAM_ARRAYQUEUE],
            "a `crossbeam_queue::ArrayQueue` of 1024 slots: pop or create, push or drop",
        ),
        (
            &[CACHEPOOL_BORROW],
            "`pool.checkout()`: guard borrowing the pool; the reset is a `Reset` type \
             (`reset_with`), as for `cachepool_owned` and `cachepool_raw`",
        ),
        (
            &[CACHEPOOL_TYPED_CLOSURE],
            "the same, with the reset given to `reset_with` as a closure, kept as its own type",
        ),
        (
            &[CACHEPOOL_FN],
            "the same, with that closure turned into a function pointer, `fn(&mut E) -> bool` \
             (the nameable form, for a pool in a field or a `static`)",
        ),
        (
            &[CACHEPOOL_CLOSURE],
            "the same, with the reset boxed by `Builder::reset` instead of in the pool's type",
        ),
        (
            &[CACHEPOOL_OWNED],
            "`pool.checkout_owned()`: guard holding a clone of the pool's `Arc`",
        ),
        (&[CACHEPOOL_RAW], "`pool.get()` / `pool.put(x)`"),
        (
            &[REGEX_POOL],
            "`regex-automata` 0.4: `util::pool::Pool::get()` (the pool inside `regex`; \
             owner-thread slot, stacks by thread id; no bound, reset by the adapter)",
        ),
        (
            &[RAYON_MAP_INIT],
            "`rayon` workload only, no pool: `par_iter().map_init(create, ..)`, one element per \
             rayon job",
        ),
        (
            &[CHANNEL_U64],
            "`pipeline` workloads only, no pool: the same pipeline carrying a bare `u64`",
        ),
    ];
    let mut out = String::from("| subject | what it is |\n|---|---|\n");
    for (subjects, what) in about {
        let _ = writeln!(out, "| {} | {what} |", subjects.join(", "));
    }
    out
}

fn group_table(rows: &BTreeMap<String, Row>) -> String {
    let mut rows: Vec<&Row> = rows.values().collect();
    rows.sort_by(|a, b| a.ns.median.total_cmp(&b.ns.median));
    let runs = rows.iter().map(|r| r.runs).max().unwrap_or(1);
    let mut out = String::from(
        "| subject | median | spread over runs | x floor | spread x floor | x cachepool | created (in flight) |\n\
         |---|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in rows {
        let name = if CACHEPOOL.contains(&row.subject.as_str()) {
            format!("**{}**", row.subject)
        } else {
            row.subject.clone()
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            fmt_ns(row.ns.median),
            fmt_spread(&row.ns, fmt_ns, runs),
            row.vs(FLOOR).map_or("–".into(), |s| fmt_ratio(s.median)),
            row.vs(FLOOR)
                .map_or("–".into(), |s| fmt_spread(&s, fmt_ratio, runs)),
            row.vs(CACHEPOOL_BORROW)
                .map_or("–".into(), |s| fmt_ratio(s.median)),
            match (row.created, row.in_flight) {
                (Some(c), Some(f)) => format!("{:.0} ({:.0})", c.median, f.median),
                (Some(c), None) => format!("{:.0}", c.median),
                _ => "–".into(),
            },
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The report.

/// Writes `docs/benchmarks.md`, `docs/benchmarks.svg` and the README's table from the runs in
/// `options.dir`.
pub fn report(options: &Options) -> Result<()> {
    let (runs, summary) = load(&options.dir)?;
    let docs = &options.docs;
    let command = &options.command;
    let groups = groups();

    let date = runs
        .iter()
        .filter_map(|r| r["finished"].as_u64())
        .max()
        .map_or_else(|| "unknown".into(), utc_date);
    // The machine and toolchain the runs were measured with (recorded by `snapshot`), else
    // this one's.
    let recorded = |key: &str| runs.iter().find_map(|r| r[key].as_str().map(str::to_owned));
    let machine = recorded("machine").unwrap_or_else(machine);
    let rustc = recorded("rustc")
        .or_else(|| command_output("rustc", &["-V"]))
        .unwrap_or_else(|| "rustc ?".into());
    let commit = match &options.commit {
        Some(commit) => commit.clone(),
        None => command_output("git", &["rev-parse", "--short", "HEAD"])
            .map(|c| {
                let dirty =
                    command_output("git", &["status", "--porcelain", "--untracked-files=no"])
                        .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{c} (with uncommitted changes)")
                } else {
                    c
                }
            })
            .unwrap_or_else(|| "unknown".into()),
    };
    let loads: Vec<String> = runs
        .iter()
        .map(|r| r["loadavg"].as_str().unwrap_or("?").to_owned())
        .collect();

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "<!-- Generated by `cargo run --release --example bench_report`; do not edit by hand. -->\n"
    );
    let _ = writeln!(
        md,
        "`cachepool` side by side with the floor, no pool, and the pools a Rust user would pick \
         instead, each measured in the same runs of `benches/compare.rs` (criterion).\n"
    );
    let _ = writeln!(md, "- **Command:** `{command}`");
    let _ = writeln!(md, "- **Date:** {date}");
    let _ = writeln!(md, "- **Machine:** {machine}");
    let _ = writeln!(md, "- **Toolchain:** {rustc}, `--release` (bench profile)");
    let _ = writeln!(md, "- **Commit:** {commit}");
    let _ = writeln!(
        md,
        "- **Runs:** {}; load average (1, 5, 15 min) at the end of each: {}\n",
        runs.len(),
        loads
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        md,
        "![Time per element as a multiple of the floor, per workload](benchmarks.svg)\n"
    );
    let _ = writeln!(
        md,
        "Each figure is a criterion median (20 samples of 1.5 s after 0.5 s of warm-up), per \
         element. **x floor** is the subject's median over the floor's median of the same run; \
         **x cachepool** is over `cachepool_borrow`'s. With several runs, the tables give the \
         median over runs and the min – max spread; a target counts as met when the median \
         over runs meets it.\n"
    );
    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(
        md,
        "Each target is checked for two of `cachepool`'s APIs: `checkout()`, the borrowing \
         guard, and raw `get()`/`put()` (the peers' own APIs are of both kinds: \
         `{CROSSBEAM_ARRAYQUEUE}` and `{STD_MUTEX}` hand out values, the others guards). \
         Peers: {}. The pipelines are measured against `{CHANNEL_U64}`, the same pipeline \
         carrying a bare `u64`: what the channel and its wake-ups cost without a pool.\n",
        PEERS
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    md.push_str(&targets_section(&summary));
    md.push('\n');
    let _ = writeln!(md, "## Subjects\n");
    md.push_str(
        "Each subject sits behind one adapter (`benches/compare/subjects.rs`), so every workload \
         runs every subject the same way. Bounded pools hold at most 1024 idle elements; \
         elements are cleared on return where the pool has a reset hook.\n\n",
    );
    md.push_str(&subjects_table());
    md.push_str(
        "\n**created (in flight)**: elements the subject built during its benchmark (all of \
         criterion's runs; pipelines start fresh threads for each), and in pipelines the most \
         checked out at once.\n\n",
    );
    let _ = writeln!(md, "## Results per workload\n");
    for (group, what) in &groups {
        let Some(rows) = summary.get(group) else {
            continue;
        };
        let _ = writeln!(md, "### `{group}`\n\n{what}.\n");
        md.push_str(&group_table(rows));
        md.push('\n');
        if let Some(line) = gate_line(&runs, group) {
            let _ = writeln!(md, "{line}\n");
        }
    }
    for (group, rows) in &summary {
        if !groups.iter().any(|(g, _)| g == group) {
            let _ = writeln!(md, "### `{group}`\n");
            md.push_str(&group_table(rows));
            md.push('\n');
        }
    }
    let _ = writeln!(md, "## Reading the figures\n");
    md.push_str(
        "- **Loop artifacts below about 10 ns.** In `st_hit` an element is given back and taken \
         again a few nanoseconds later, so its reload is served from the store buffer, which \
         works only when each load is covered by one earlier store. A subject that moves a \
         24-byte `Vec` as three 8-byte stores and reloads it with a 16-byte load waits for the \
         stores to reach the cache. The floor (plain Rust moves) pays this: it costs several \
         times more with the `Vec` than with the 8-byte `Box`, so ratios under 1x with the \
         `Vec` mean that a subject avoids the stall, not that it beats a free list. \
         `cachepool` moves such elements word by word (`src/word_move.rs`); `lfop_linear` \
         never moves them (it hands out a reference). Guards pay a similar stall when the \
         workload moves a guard it has just built (`st_burst` pushes each one into a `Vec`): \
         the guard is written field by field and copied with wider loads. Real code does \
         work between checkout and return; read `st_hit-box64` and `rayon` alongside.\n\
         - **`mt_hit`** reports aggregate cost: wall time of the whole group (first thread's \
         start to last thread's end, after a barrier) over the round trips of all threads. A \
         subject that writes a shared cache line on every operation shows it here.\n\
         - **`cross_thread`**: the floor's and `no_pool`'s producers allocate every element \
         (their free lists fill only on the consumer's side), so they measure the allocator's \
         cross-thread path, not a pool. The channel is a polled `ArrayQueue`, the same for all \
         subjects.",
    );
    if let Some((subject, spread)) = widest_swing(&summary, &group(CROSS_THREAD, VEC4K)) {
        let _ = write!(
            md,
            " Its times swing from one run to the next, more than some subjects differ: in \
             these runs `{subject}` took {} to {} ({:.1}x). Read the spread, and compare \
             subjects within one run (each run's medians are kept in `target/bench-runs/`).",
            fmt_ns(spread.min),
            fmt_ns(spread.max),
            spread.max / spread.min
        );
    }
    md.push_str(
        "\n- **Cross-thread workloads and the cores' distance.** On a virtual machine the host \
         may move a vCPU to a core that shares no cache with the other, and every cache line a \
         cross-thread workload moves then costs several times more, for every subject alike, \
         for seconds to minutes. `cross_thread` and the pipelines therefore time a sample only \
         while a cache line's round trip between the first two cores is within twice the \
         fastest seen in the run (`benches/compare/cores.rs` measures it before and after each \
         sample and runs the sample again otherwise); the line under each such table says how \
         many samples that took.\n\
         - **Pipelines** swing for a second reason the gate does not see: their channels block, \
         and how often a thread parks and has to be woken depends on how the scheduler \
         interleaves the threads (more threads than cores in every shape but 1→1). \
         `channel_u64` moves one 16-byte message per element; every pool also moves each \
         element back to the producer, and `crossbeam_arrayqueue` (one lock-free queue, \
         pushed by the consumer and popped by the producer) is the plainest such return \
         path.\n\
         - **`no_pool`** allocates a fresh 4 KiB buffer per checkout: the cost a pool saves.\n\n",
    );
    let _ = writeln!(md, "## Memory\n");
    md.push_str(&memory_section());
    md.push('\n');
    let _ = writeln!(md, "## Reproducing\n");
    let _ = writeln!(
        md,
        "```sh\n\
         scripts/bench.sh 3                      # 3 runs of every workload, then this page\n\
         scripts/bench.sh 1 st_hit               # one workload (a criterion filter)\n\
         cargo bench --bench compare -- mt_hit   # criterion alone\n\
         cargo run --release --example bench_report -- report target/bench-runs\n\
         ```\n\n\
         Timings on a machine shared with other work swing; run when it is quiet (`uptime`) and \
         read the spread. Threads are pinned with `core_affinity`, since unpinned two-thread \
         figures swing by up to 20x when the scheduler puts both workers on one core."
    );

    std::fs::create_dir_all(docs)?;
    let title = format!("cachepool vs peers — {date}, {machine}");
    let order: Vec<String> = groups.into_iter().map(|(g, _)| g).collect();
    std::fs::write(docs.join("benchmarks.svg"), chart(&summary, &order, &title))?;
    std::fs::write(docs.join("benchmarks.md"), md)?;
    eprintln!(
        "bench_report: wrote {} and {} from {} run(s)",
        docs.join("benchmarks.md").display(),
        docs.join("benchmarks.svg").display(),
        runs.len()
    );
    readme::rewrite(&options.readme, &readme::table(&summary))
}

/// For a group measured through the cross-core gate: how many samples its subjects took, over
/// all runs, how many were run again, and how many were kept at an unusual distance.
fn gate_line(runs: &[Value], group: &str) -> Option<String> {
    let gates: Vec<_> = runs
        .iter()
        .flat_map(measures)
        .filter(|m| m.group == group)
        .filter_map(|m| m.gate)
        .collect();
    if gates.is_empty() {
        return None;
    }
    let total = |f: fn(&Gate) -> u64| gates.iter().map(f).sum::<u64>();
    Some(format!(
        "Cores' distance (all subjects, all runs): {} samples, {} run again because the cores \
         moved apart during the sample, {} kept although they did not come back together.",
        total(|g| g.samples),
        total(|g| g.rerun),
        total(|g| g.unusual)
    ))
}
