//! Turns criterion's output of `benches/compare.rs` into `docs/benchmarks.md` and
//! `docs/benchmarks.svg`; `scripts/bench.sh` drives it.
//!
//! ```text
//! cargo run --release --example bench_report -- snapshot DIR [--since EPOCH]
//!     saves the medians criterion wrote under target/criterion (those written since EPOCH)
//!     as DIR/run-N.json, one file per run
//! cargo run --release --example bench_report -- report DIR [--command CMD] [--docs DIR]
//!     [--commit REV]
//!     writes docs/benchmarks.md and docs/benchmarks.svg from every DIR/run-*.json
//!     (from target/criterion directly, as a single run, when DIR holds none)
//! ```
//!
//! Every figure comes from criterion's `estimates.json` (the median of each benchmark's
//! samples); a workload's time per element is that median divided by the elements per
//! iteration criterion recorded as the throughput. Ratios are taken within a run (subject over
//! the floor of that run) and then summarised over runs: the median, and the min-max spread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use cachepool::CachePool;
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("snapshot") => snapshot(&args[1..]),
        Some("report") => report(&args[1..]),
        Some("memory") => {
            print!("{}", memory_section());
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: bench_report snapshot DIR [--since EPOCH]\n       \
                 bench_report report DIR [--command CMD] [--docs DIR] [--commit REV]\n       \
                 bench_report memory"
            );
            std::process::exit(2)
        }
    }
}

/// The value following `--name` in `args`.
fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target"));
    target.join("criterion")
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------------------------
// Reading criterion's output.

/// One benchmark of one run.
#[derive(Clone, Debug)]
struct Measure {
    /// `<workload>-<element>`, criterion's group.
    group: String,
    subject: String,
    /// Median time per element, in ns.
    ns: f64,
    /// Elements the subject created during the benchmark, and the most in flight at once
    /// (pipelines), from the `created.json` the benchmark wrote.
    created: Option<f64>,
    in_flight: Option<f64>,
}

/// The benchmarks criterion wrote under `dir` (those whose estimates are not older than
/// `since`, when given), as JSON records.
fn read_criterion(dir: &Path, since: Option<u64>) -> Result<Vec<Value>> {
    let mut found = Vec::new();
    for group in std::fs::read_dir(dir)? {
        let group = group?.path();
        if !group.is_dir() {
            continue;
        }
        for bench in std::fs::read_dir(&group)? {
            let bench = bench?.path();
            let new = bench.join("new");
            let (Ok(meta), Ok(est)) = (
                std::fs::read_to_string(new.join("benchmark.json")),
                std::fs::read_to_string(new.join("estimates.json")),
            ) else {
                continue;
            };
            let modified = std::fs::metadata(new.join("estimates.json"))?
                .modified()?
                .duration_since(UNIX_EPOCH)?
                .as_secs();
            if since.is_some_and(|since| modified < since) {
                continue;
            }
            let meta: Value = serde_json::from_str(&meta)?;
            let est: Value = serde_json::from_str(&est)?;
            let elements = meta["throughput"]["Elements"].as_u64().unwrap_or(1).max(1);
            let created: Value = std::fs::read_to_string(bench.join("created.json"))
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            let median = &est["median"];
            found.push(json!({
                "group": meta["group_id"],
                "subject": meta["function_id"],
                "elements": elements,
                "median_ns": median["point_estimate"],
                "lower_ns": median["confidence_interval"]["lower_bound"],
                "upper_ns": median["confidence_interval"]["upper_bound"],
                "created": created["created"],
                "in_flight_max": created["in_flight_max"],
            }));
        }
    }
    Ok(found)
}

fn measures(run: &Value) -> Vec<Measure> {
    run["benchmarks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            Some(Measure {
                group: b["group"].as_str()?.to_owned(),
                subject: b["subject"].as_str()?.to_owned(),
                ns: b["median_ns"].as_f64()? / b["elements"].as_f64()?,
                created: b["created"].as_f64(),
                in_flight: b["in_flight_max"].as_f64(),
            })
        })
        .collect()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn snapshot(args: &[String]) -> Result<()> {
    let dir = PathBuf::from(args.first().ok_or("snapshot: no DIR")?);
    let since = option(args, "--since").map(str::parse).transpose()?;
    std::fs::create_dir_all(&dir)?;
    let benchmarks = read_criterion(&criterion_dir(), since)?;
    let n = (1..)
        .find(|n| !dir.join(format!("run-{n}.json")).exists())
        .unwrap();
    let path = dir.join(format!("run-{n}.json"));
    let run = json!({
        "started": since,
        "finished": now_epoch(),
        "loadavg": loadavg(),
        "machine": machine(),
        "rustc": command_output("rustc", &["-V"]),
        "benchmarks": benchmarks,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&run)?)?;
    eprintln!(
        "bench_report: {} benchmarks saved to {} (load average {})",
        run["benchmarks"].as_array().map_or(0, Vec::len),
        path.display(),
        run["loadavg"].as_str().unwrap_or("?")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Summarising runs.

const FLOOR: &str = "floor";
const NO_POOL: &str = "no_pool";
/// The `cachepool` the targets are about, and the denominator of the "x cachepool" column.
const CACHEPOOL: &str = "cachepool_borrow";
/// Subjects in chart order.
const SUBJECTS: &[&str] = &[
    "floor",
    "no_pool",
    "std_mutex",
    "lfop_linear",
    "lfop_spinlock",
    "lfop_mutex",
    "object_pool",
    "opool",
    "sharded_slab",
    "crossbeam_arrayqueue",
    "regex_pool",
    "cachepool_borrow",
    "cachepool_closure",
    "cachepool_owned",
    "cachepool_raw",
    "rayon_map_init",
    "channel_u64",
];

/// A pool a user could pick instead: not a baseline (the floor, no pool, rayon's `map_init`,
/// a bare channel) and not `cachepool`.
fn is_peer(subject: &str) -> bool {
    !matches!(subject, FLOOR | NO_POOL | "rayon_map_init" | "channel_u64")
        && !subject.starts_with("cachepool")
}

/// Groups in report order, with what one "element" is in them.
const GROUPS: &[(&str, &str)] = &[
    (
        "st_hit-vec4k",
        "one thread, checkout + drop on a warm pool; 4 KiB `Vec<u8>`",
    ),
    (
        "st_hit-box64",
        "one thread, checkout + drop on a warm pool; `Box<[u8; 64]>`",
    ),
    (
        "st_burst-vec4k",
        "one thread holds 16 at once, then drops them; per element; 4 KiB `Vec<u8>`",
    ),
    (
        "st_burst-box64",
        "one thread holds 16 at once, then drops them; per element; `Box<[u8; 64]>`",
    ),
    (
        "mt_hit_2t-vec4k",
        "2 threads pinned to separate cores, one shared pool; wall time / total round trips; 4 KiB `Vec<u8>`",
    ),
    (
        "mt_hit_2t-box64",
        "2 threads pinned to separate cores, one shared pool; wall time / total round trips; `Box<[u8; 64]>`",
    ),
    (
        "mt_hit_8t-vec4k",
        "8 threads on the 2 cores (4 pinned to each), one shared pool; wall time / total round trips; 4 KiB `Vec<u8>`",
    ),
    (
        "mt_hit_8t-box64",
        "8 threads on the 2 cores (4 pinned to each), one shared pool; wall time / total round trips; `Box<[u8; 64]>`",
    ),
    (
        "cross_thread-vec4k",
        "producer checks out and sends over a bounded channel, consumer on the other core drops; per element; 4 KiB `Vec<u8>`",
    ),
    (
        "rayon-vec4k",
        "`par_iter` over 4096 records on 2 pinned rayon workers, each task checks out a buffer and writes 64 bytes; per record; 4 KiB `Vec<u8>`",
    ),
    (
        "pipeline_1to1_d8-vec4k",
        "1 producer, 1 consumer through `crossbeam_channel::bounded(8)`, checked out at the start and dropped at the end; threads pinned round-robin; per element; 4 KiB `Vec<u8>`",
    ),
    (
        "pipeline_1to1_d64-vec4k",
        "1 producer, 1 consumer through `crossbeam_channel::bounded(64)`, checked out at the start and dropped at the end; threads pinned round-robin; per element; 4 KiB `Vec<u8>`",
    ),
    (
        "pipeline_4to1_d8-vec4k",
        "4 producers, 1 consumer through `crossbeam_channel::bounded(8)`, checked out at the start and dropped at the end; threads pinned round-robin; per element; 4 KiB `Vec<u8>`",
    ),
    (
        "pipeline_4to1_d64-vec4k",
        "4 producers, 1 consumer through `crossbeam_channel::bounded(64)`, checked out at the start and dropped at the end; threads pinned round-robin; per element; 4 KiB `Vec<u8>`",
    ),
    (
        "pipeline_1to4_d8-vec4k",
        "1 producer, 4 consumers through `crossbeam_channel::bounded(8)`, checked out at the start and dropped at the end; threads pinned round-robin; per element; 4 KiB `Vec<u8>`",
    ),
    (
        "pipeline_1to4_d64-vec4k",
        "1 producer, 4 consumers through `crossbeam_channel::bounded(64)`, checked out at the start and dropped at the end; threads pinned round-robin; per element; 4 KiB `Vec<u8>`",
    ),
    (
        "pipeline_1to4to1_d8-vec4k",
        "1 producer, 4 workers passing each element on through a second channel, 1 final consumer through `crossbeam_channel::bounded(8)`, checked out at the start and dropped at the end; threads pinned round-robin; per element; 4 KiB `Vec<u8>`",
    ),
    (
        "pipeline_1to4to1_d64-vec4k",
        "1 producer, 4 workers passing each element on through a second channel, 1 final consumer through `crossbeam_channel::bounded(64)`, checked out at the start and dropped at the end; threads pinned round-robin; per element; 4 KiB `Vec<u8>`",
    ),
];

/// Median and extremes of some figures.
#[derive(Clone, Copy, Debug)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(mut xs: Vec<f64>) -> Option<Spread> {
        if xs.is_empty() {
            return None;
        }
        xs.sort_by(f64::total_cmp);
        let n = xs.len();
        let median = if n % 2 == 1 {
            xs[n / 2]
        } else {
            (xs[n / 2 - 1] + xs[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: xs[0],
            max: xs[n - 1],
        })
    }
}

/// One subject in one group, over all runs.
#[derive(Clone, Debug)]
struct Row {
    subject: String,
    /// Time per element.
    ns: Spread,
    /// Subject over the floor, per run.
    vs_floor: Option<Spread>,
    /// Subject over `cachepool_borrow`, per run.
    vs_cachepool: Option<Spread>,
    /// Elements created, and the most in flight, medians over the runs that recorded them.
    created: Option<Spread>,
    in_flight: Option<Spread>,
    runs: usize,
}

/// group -> subject -> row.
type Summary = BTreeMap<String, BTreeMap<String, Row>>;

fn summarise(runs: &[Vec<Measure>]) -> Summary {
    // group -> subject -> per-run (ns, ratio to floor, ratio to cachepool).
    type PerRun = Vec<(f64, Option<f64>, Option<f64>, Option<f64>, Option<f64>)>;
    let mut per: BTreeMap<String, BTreeMap<String, PerRun>> = BTreeMap::new();
    for run in runs {
        let find = |group: &str, subject: &str| {
            run.iter()
                .find(|m| m.group == group && m.subject == subject)
                .map(|m| m.ns)
        };
        for m in run {
            let floor = find(&m.group, FLOOR);
            let cachepool = find(&m.group, CACHEPOOL);
            per.entry(m.group.clone())
                .or_default()
                .entry(m.subject.clone())
                .or_default()
                .push((
                    m.ns,
                    floor.map(|f| m.ns / f),
                    cachepool.map(|c| m.ns / c),
                    m.created,
                    m.in_flight,
                ));
        }
    }
    per.into_iter()
        .map(|(group, subjects)| {
            let rows = subjects
                .into_iter()
                .map(|(subject, xs)| {
                    let row = Row {
                        subject: subject.clone(),
                        ns: Spread::of(xs.iter().map(|x| x.0).collect()).unwrap(),
                        vs_floor: Spread::of(xs.iter().filter_map(|x| x.1).collect()),
                        vs_cachepool: Spread::of(xs.iter().filter_map(|x| x.2).collect()),
                        created: Spread::of(xs.iter().filter_map(|x| x.3).collect()),
                        in_flight: Spread::of(xs.iter().filter_map(|x| x.4).collect()),
                        runs: xs.len(),
                    };
                    (subject, row)
                })
                .collect();
            (group, rows)
        })
        .collect()
}

/// The subject of `group` whose time changed most between runs, with its spread (none with a
/// single run).
fn widest_swing(summary: &Summary, group: &str) -> Option<(String, Spread)> {
    summary
        .get(group)?
        .values()
        .filter(|row| row.runs > 1)
        .max_by(|a, b| (a.ns.max / a.ns.min).total_cmp(&(b.ns.max / b.ns.min)))
        .map(|row| (row.subject.clone(), row.ns))
}

/// A target of the issue, checked against the summary.
struct Target {
    groups: &'static [&'static str],
    /// Most `cachepool` may cost, as a multiple of the floor (None: no such bound).
    max_vs_floor: Option<f64>,
    /// `true`: strictly faster than every peer; `false`: no slower than the best one.
    beat_peers: bool,
}

const TARGETS: &[Target] = &[
    Target {
        groups: &["st_hit-box64"],
        max_vs_floor: Some(1.5),
        beat_peers: true,
    },
    Target {
        groups: &["st_hit-vec4k"],
        max_vs_floor: Some(2.0),
        beat_peers: true,
    },
    Target {
        groups: &["st_burst-vec4k", "st_burst-box64"],
        max_vs_floor: Some(1.5),
        beat_peers: true,
    },
    Target {
        groups: &["mt_hit_2t-vec4k", "mt_hit_2t-box64"],
        max_vs_floor: Some(2.0),
        beat_peers: true,
    },
    Target {
        groups: &["mt_hit_8t-vec4k", "mt_hit_8t-box64"],
        max_vs_floor: Some(2.0),
        beat_peers: true,
    },
    Target {
        groups: &["cross_thread-vec4k"],
        max_vs_floor: None,
        beat_peers: true,
    },
    Target {
        groups: &["rayon-vec4k"],
        max_vs_floor: None,
        beat_peers: false,
    },
];

fn fmt_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1000.0 {
        format!("{ns:.1} ns")
    } else {
        format!("{:.2} µs", ns / 1000.0)
    }
}

fn fmt_ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.2}x")
    } else {
        format!("{r:.1}x")
    }
}

fn fmt_spread(s: &Spread, f: fn(f64) -> String, runs: usize) -> String {
    if runs > 1 {
        format!("{} – {}", f(s.min), f(s.max))
    } else {
        "–".into()
    }
}

/// The APIs of `cachepool` each target is checked for: the borrowing guard, and raw get/put.
const TARGET_APIS: &[(&str, &str)] = &[("checkout", CACHEPOOL), ("get/put", "cachepool_raw")];

/// The targets section: one line per target and group, each checked for every API in
/// [`TARGET_APIS`].
fn targets_section(summary: &Summary) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | target | `checkout()` (x floor) | `get`/`put` (x floor) | best peer (x floor) | met |\n\
         |---|---|--:|--:|---|---|\n",
    );
    for target in TARGETS {
        for &group in target.groups {
            let Some(rows) = summary.get(group) else {
                continue;
            };
            let ratio = |row: &Row| row.vs_floor.map_or(f64::NAN, |s| s.median);
            let best_peer = rows
                .values()
                .filter(|r| is_peer(&r.subject))
                .min_by(|a, b| ratio(a).total_cmp(&ratio(b)));
            let mut goals = Vec::new();
            if let Some(max) = target.max_vs_floor {
                goals.push(format!("≤ {max}x floor"));
            }
            if best_peer.is_some() {
                goals.push(if target.beat_peers {
                    "faster than every peer".to_string()
                } else {
                    "no slower than the best peer".to_string()
                });
            }
            let meets = |ours: f64| {
                let under_max = target.max_vs_floor.is_none_or(|max| ours <= max);
                let vs_peer = best_peer.is_none_or(|peer| {
                    if target.beat_peers {
                        ours < ratio(peer)
                    } else {
                        ours <= ratio(peer)
                    }
                });
                under_max && vs_peer
            };
            let mut cells = Vec::new();
            let mut verdicts = Vec::new();
            for &(api, subject) in TARGET_APIS {
                match rows.get(subject) {
                    Some(row) => {
                        let ours = ratio(row);
                        cells.push(fmt_ratio(ours));
                        let verdict = if meets(ours) { "yes" } else { "**no**" };
                        verdicts.push(format!("{api}: {verdict}"));
                    }
                    None => cells.push("–".into()),
                }
            }
            let peer = best_peer.map_or("–".into(), |p| {
                format!("{} `{}`", fmt_ratio(ratio(p)), p.subject)
            });
            let _ = writeln!(
                out,
                "| {group} | {} | {} | {peer} | {} |",
                goals.join(", "),
                cells.join(" | "),
                verdicts.join(", ")
            );
        }
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
        let name = if row.subject.starts_with("cachepool") {
            format!("**{}**", row.subject)
        } else {
            row.subject.clone()
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            fmt_ns(row.ns.median),
            fmt_spread(&row.ns, fmt_ns, runs),
            row.vs_floor.map_or("–".into(), |s| fmt_ratio(s.median)),
            row.vs_floor
                .map_or("–".into(), |s| fmt_spread(&s, fmt_ratio, runs)),
            row.vs_cachepool.map_or("–".into(), |s| fmt_ratio(s.median)),
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
// The machine and the date.

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kb: f64 = s.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB RAM", kb / 1024.0 / 1024.0))
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.into());
    format!("{} ({cores} cores), {mem}, {kernel}", cpu_model())
}

/// `YYYY-MM-DD HH:MM UTC` for a Unix time (days to civil date after H. Hinnant).
fn utc_date(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

// ---------------------------------------------------------------------------------------------
// Memory: bytes the pool's own structures cost per thread, measured with a counting allocator.

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

fn memory_section() -> String {
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

// ---------------------------------------------------------------------------------------------
// The chart.

fn color(subject: &str) -> &'static str {
    match subject {
        FLOOR => "#444444",
        NO_POOL => "#b8b8b8",
        s if s.starts_with("cachepool") => "#e07000",
        _ => "#5b84b1",
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Small multiples: one panel per workload, a bar per subject at its median ratio to the
/// floor on a log axis, a whisker for the spread over runs.
fn chart(summary: &Summary, title: &str) -> String {
    let groups: Vec<(&str, &BTreeMap<String, Row>)> = GROUPS
        .iter()
        .filter_map(|(g, _)| summary.get(*g).map(|rows| (*g, rows)))
        .collect();
    let ratios = groups
        .iter()
        .flat_map(|(_, rows)| rows.values())
        .filter_map(|r| r.vs_floor)
        .flat_map(|s| [s.min, s.max]);
    let (lo, hi) = ratios.fold((1.0f64, 1.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    // Axis from a 1-2-5 value below the smallest ratio to one above the largest.
    let steps = [1.0, 2.0, 5.0];
    let nice = |x: f64, up: bool| {
        let decade = 10f64.powf(x.log10().floor());
        let mut candidates: Vec<f64> = [decade / 10.0, decade, decade * 10.0]
            .iter()
            .flat_map(|d| steps.iter().map(move |s| s * d))
            .collect();
        candidates.sort_by(f64::total_cmp);
        if up {
            *candidates.iter().find(|&&c| c >= x * 0.999).unwrap()
        } else {
            *candidates.iter().rev().find(|&&c| c <= x * 1.001).unwrap()
        }
    };
    let (axis_lo, axis_hi) = (nice(lo.min(1.0), false), nice(hi, true));
    let ticks: Vec<f64> = (-3..4)
        .flat_map(|e| steps.iter().map(move |s| s * 10f64.powi(e)))
        .filter(|&t| t >= axis_lo * 0.999 && t <= axis_hi * 1.001)
        .collect();

    let cols = 2;
    let (label_w, bars_w, value_w) = (138.0, 250.0, 62.0);
    let panel_w = label_w + bars_w + value_w + 20.0;
    let row_h = 15.0;
    let panel_h = 34.0 + row_h * SUBJECTS.len() as f64 + 24.0;
    let top = 64.0;
    let rows_of_panels = groups.len().div_ceil(cols);
    let width = cols as f64 * panel_w + 20.0;
    let height = top + rows_of_panels as f64 * panel_h + 10.0;
    let x_of = |r: f64| {
        let t = (r.max(axis_lo).ln() - axis_lo.ln()) / (axis_hi.ln() - axis_lo.ln());
        label_w + t.clamp(0.0, 1.0) * bars_w
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="20" font-size="15" font-weight="bold">{}</text>"#,
        xml_escape(title)
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="38" fill="dimgray">Time per element over the floor's (a thread_local! free list); median of the runs, log scale; left of 1x: faster than the floor; whiskers: min–max over runs.</text>"#
    );
    let legend = [
        ("floor", FLOOR),
        ("no pool", NO_POOL),
        ("peers", "peer"),
        ("cachepool", "cachepool"),
    ];
    for (i, (name, key)) in legend.iter().enumerate() {
        let x = 10.0 + i as f64 * 110.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="47" width="12" height="10" fill="{}"/><text x="{}" y="56">{name}</text>"#,
            color(key),
            x + 16.0
        );
    }
    for (i, (group, rows)) in groups.iter().enumerate() {
        let px = 10.0 + (i % cols) as f64 * panel_w;
        let py = top + (i / cols) as f64 * panel_h;
        let _ = writeln!(svg, r#"<g transform="translate({px},{py})">"#);
        let _ = writeln!(
            svg,
            r#"<text x="0" y="16" font-size="13" font-weight="bold">{}</text>"#,
            xml_escape(group)
        );
        let bars_top = 26.0;
        let bars_bottom = bars_top + row_h * SUBJECTS.len() as f64;
        for &t in &ticks {
            let x = x_of(t);
            let stroke = if t == 1.0 { "#444" } else { "#ddd" };
            let _ = writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="{bars_top}" x2="{x:.1}" y2="{bars_bottom}" stroke="{stroke}"/>"#
            );
            // Label the decades, and 2x (the targets' bound); the other lines stay unlabelled.
            let decade = (t.log10() - t.log10().round()).abs() < 1e-9;
            if decade || t == 2.0 {
                let label = if t < 1.0 {
                    format!("{t}")
                } else {
                    format!("{t:.0}")
                };
                let _ = writeln!(
                    svg,
                    r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="gray">{label}x</text>"#,
                    bars_bottom + 12.0
                );
            }
        }
        for (j, subject) in SUBJECTS.iter().enumerate() {
            let y = bars_top + j as f64 * row_h;
            let weight = if subject.starts_with("cachepool") {
                "bold"
            } else {
                "normal"
            };
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-weight="{weight}">{subject}</text>"#,
                label_w - 6.0,
                y + 11.0
            );
            let Some(s) = rows.get(*subject).and_then(|r| r.vs_floor) else {
                continue;
            };
            // Bars grow from the floor's 1x line: right when slower than the floor, left when
            // faster.
            let (x0, x1) = (x_of(1.0), x_of(s.median));
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                x0.min(x1),
                y + 2.0,
                (x1 - x0).abs().max(2.0),
                row_h - 4.0,
                color(subject)
            );
            if s.max > s.min {
                let (a, b) = (x_of(s.min), x_of(s.max));
                let cy = y + row_h / 2.0;
                let _ = writeln!(
                    svg,
                    r#"<path d="M{a:.1} {cy:.1}H{b:.1}M{a:.1} {:.1}V{:.1}M{b:.1} {:.1}V{:.1}" stroke="black" stroke-width="0.8" fill="none"/>"#,
                    cy - 3.0,
                    cy + 3.0,
                    cy - 3.0,
                    cy + 3.0
                );
            }
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-weight="{weight}">{}</text>"#,
                label_w + bars_w + 6.0,
                y + 11.0,
                fmt_ratio(s.median)
            );
        }
        let _ = writeln!(svg, "</g>");
    }
    svg.push_str("</svg>\n");
    svg
}

// ---------------------------------------------------------------------------------------------
// The report.

fn report(args: &[String]) -> Result<()> {
    let dir = PathBuf::from(args.first().ok_or("report: no DIR")?);
    let docs = option(args, "--docs").map_or_else(|| manifest_dir().join("docs"), PathBuf::from);
    let command = option(args, "--command").unwrap_or("cargo bench --bench compare");

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("run-") && n.ends_with(".json"))
        })
        .collect();
    files.sort_by_key(|p| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.trim_start_matches("run-").parse::<u32>().ok())
    });
    let runs: Vec<Value> = if files.is_empty() {
        vec![json!({
            "finished": now_epoch(),
            "loadavg": loadavg(),
            "benchmarks": read_criterion(&criterion_dir(), None)?,
        })]
    } else {
        files
            .iter()
            .map(|f| Ok(serde_json::from_str(&std::fs::read_to_string(f)?)?))
            .collect::<Result<_>>()?
    };
    let measured: Vec<Vec<Measure>> = runs.iter().map(measures).collect();
    let summary = summarise(&measured);
    if summary.is_empty() {
        return Err("no benchmark results found: run `cargo bench --bench compare` first".into());
    }

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
    let commit = match option(args, "--commit") {
        Some(commit) => commit.to_owned(),
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
         instead, in one run of `benches/compare.rs` (criterion).\n"
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
         `crossbeam_arrayqueue` and `std_mutex` hand out values, the others guards). Peers: \
         `std_mutex`, `lfop_linear`, `lfop_spinlock`, `lfop_mutex`, `object_pool`, `opool`, \
         `sharded_slab`, `crossbeam_arrayqueue`.\n"
    );
    md.push_str(&targets_section(&summary));
    md.push('\n');
    let _ = writeln!(md, "## Subjects\n");
    md.push_str(
        "Each subject sits behind one adapter (`benches/compare/subjects.rs`), so every workload \
         runs every subject the same way. Bounded pools hold at most 1024 idle elements; \
         elements are cleared on return where the pool has a reset hook.\n\n\
         | subject | what it is |\n|---|---|\n\
         | floor | a `thread_local!` `RefCell<Vec<T>>` free list: pop or create, clear and push back (at most 1024 per thread) |\n\
         | no_pool | build the element each time and drop it |\n\
         | std_mutex | `std::sync::Mutex<Vec<T>>` |\n\
         | lfop_linear, lfop_spinlock, lfop_mutex | `lockfree-object-pool` 0.1: `LinearObjectPool`, `SpinLockObjectPool`, `MutexObjectPool` (`pull()`, reset hook) |\n\
         | object_pool | `object-pool` 0.6: `Pool::pull(fallback)` (no reset hook, no bound) |\n\
         | opool | `opool` 0.2: `Pool::get()`, 1024 slots (reset runs on checkout) |\n\
         | sharded_slab | `sharded_slab::Pool`: `create()`, then `clear(key)` to give back (`Clear` resets) |\n\
         | crossbeam_arrayqueue | a `crossbeam_queue::ArrayQueue` of 1024 slots: pop or create, push or drop |\n\
         | cachepool_borrow | `pool.checkout()`: guard borrowing the pool; the reset is a `Reset` type (`reset_with`), as for `cachepool_owned` and `cachepool_raw` |\n\
         | cachepool_closure | the same, with the reset given as a closure (`Builder::reset`) instead of a `Reset` type |\n\
         | cachepool_owned | `pool.checkout_owned()`: guard holding a clone of the pool's `Arc` |\n\
         | cachepool_raw | `pool.get()` / `pool.put(x)` |\n\
         | regex_pool | `regex-automata` 0.4: `util::pool::Pool::get()` (the pool inside `regex`; owner-thread slot, stacks by thread id; no bound, reset by the adapter) |\n\
         | rayon_map_init | `rayon` workload only, no pool: `par_iter().map_init(create, ..)`, one element per rayon job |\n\
         | channel_u64 | `pipeline` workloads only, no pool: the same pipeline carrying a bare `u64` |\n\n\
         **created (in flight)**: elements the subject built during its benchmark (all of \
         criterion's runs; pipelines start fresh threads for each), and in pipelines the most \
         checked out at once.\n\n",
    );
    let _ = writeln!(md, "## Results per workload\n");
    for (group, what) in GROUPS {
        let Some(rows) = summary.get(*group) else {
            continue;
        };
        let _ = writeln!(md, "### `{group}`\n\n{what}.\n");
        md.push_str(&group_table(rows));
        md.push('\n');
    }
    for (group, rows) in &summary {
        if !GROUPS.iter().any(|(g, _)| g == group) {
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
    if let Some((subject, spread)) = widest_swing(&summary, "cross_thread-vec4k") {
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
        "\n- **`no_pool`** allocates a fresh 4 KiB buffer per checkout: the cost a pool saves.\n\n",
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

    std::fs::create_dir_all(&docs)?;
    let title = format!("cachepool vs peers — {date}, {machine}");
    std::fs::write(docs.join("benchmarks.svg"), chart(&summary, &title))?;
    std::fs::write(docs.join("benchmarks.md"), md)?;
    eprintln!(
        "bench_report: wrote {} and {} from {} run(s)",
        docs.join("benchmarks.md").display(),
        docs.join("benchmarks.svg").display(),
        runs.len()
    );
    Ok(())
}
