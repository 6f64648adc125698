//! Reads criterion's output of `benches/compare.rs` (its `estimates.json` and
//! `benchmark.json`, and the `created.json` the benchmarks write beside them), saves it as one
//! run, and loads the runs saved so far.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use crate::Result;
use crate::machine::{command_output, loadavg, machine, now_epoch};

pub fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::manifest_dir().join("target"));
    target.join("criterion")
}

/// One benchmark of one run.
#[derive(Clone, Debug)]
pub struct Measure {
    /// `<workload>-<element>`, criterion's group.
    pub group: String,
    pub subject: String,
    /// Median time per element, in ns.
    pub ns: f64,
    /// Elements the subject created during the benchmark, and the most in flight at once
    /// (pipelines), from the `created.json` the benchmark wrote.
    pub created: Option<f64>,
    pub in_flight: Option<f64>,
    /// Cross-thread workloads: the criterion samples taken, those run again because the
    /// cores moved apart during the sample, and those kept although they never came back
    /// together (`benches/compare/cores.rs`).
    pub gate: Option<Gate>,
}

/// What the cross-core gate did in one benchmark.
#[derive(Clone, Copy, Debug)]
pub struct Gate {
    pub samples: u64,
    pub rerun: u64,
    pub unusual: u64,
}

/// The benchmarks criterion wrote under `dir` (those whose estimates are not older than
/// `since`, when given), as JSON records.
pub fn read_criterion(dir: &Path, since: Option<u64>) -> Result<Vec<Value>> {
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
                "created": created["created"],
                "in_flight_max": created["in_flight_max"],
                "samples": created["samples"],
                "rerun": created["rerun"],
                "unusual": created["unusual"],
            }));
        }
    }
    Ok(found)
}

pub fn measures(run: &Value) -> Vec<Measure> {
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
                gate: b["samples"].as_u64().map(|samples| Gate {
                    samples,
                    rerun: b["rerun"].as_u64().unwrap_or(0),
                    unusual: b["unusual"].as_u64().unwrap_or(0),
                }),
            })
        })
        .collect()
}

/// Saves the medians criterion wrote under `target/criterion` (those written since `since`)
/// as `dir/run-N.json`, the next free N.
pub fn snapshot(dir: &Path, since: Option<u64>) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let benchmarks = read_criterion(&criterion_dir(), since)?;
    let n = (1..)
        .find(|n| !dir.join(format!("run-{n}.json")).exists())
        .unwrap();
    let path = dir.join(format!("run-{n}.json"));
    let run = run_record(since, benchmarks);
    std::fs::write(&path, serde_json::to_string_pretty(&run)?)?;
    eprintln!(
        "bench_report: {} benchmarks saved to {} (load average {})",
        run["benchmarks"].as_array().map_or(0, Vec::len),
        path.display(),
        run["loadavg"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// One run: its benchmarks, with when it ran and on what (started at `since`, if known).
fn run_record(since: Option<u64>, benchmarks: Vec<Value>) -> Value {
    json!({
        "started": since,
        "finished": now_epoch(),
        "loadavg": loadavg(),
        "machine": machine(),
        "rustc": command_output("rustc", &["-V"]),
        "benchmarks": benchmarks,
    })
}

/// Every `dir/run-N.json`, in the order of N; without any, what criterion holds now, as a
/// single run.
pub fn load_runs(dir: &Path) -> Result<Vec<Value>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
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
    Ok(if files.is_empty() {
        vec![run_record(None, read_criterion(&criterion_dir(), None)?)]
    } else {
        files
            .iter()
            .map(|f| Ok(serde_json::from_str(&std::fs::read_to_string(f)?)?))
            .collect::<Result<_>>()?
    })
}
