//! Turns criterion's output of `benches/compare.rs` into `docs/benchmarks.md`,
//! `docs/benchmarks.svg` and the README's performance table; `scripts/bench.sh` drives it.
//! This file is the command line; each module does one part of the job.
//!
//! ```text
//! cargo run --release --example bench_report -- snapshot DIR [--since EPOCH]
//!     saves the medians criterion wrote under target/criterion (those written since EPOCH)
//!     as DIR/run-N.json, one file per run
//! cargo run --release --example bench_report -- report DIR [--command CMD] [--docs DIR]
//!     [--commit REV] [--readme FILE]
//!     writes docs/benchmarks.md and docs/benchmarks.svg from every DIR/run-*.json
//!     (from target/criterion directly, as a single run, when DIR holds none), and the
//!     table between the README's <!-- bench:begin --> and <!-- bench:end --> markers
//! cargo run --release --example bench_report -- readme-table DIR
//!     prints that table
//! cargo run --release --example bench_report -- memory
//!     prints the memory section
//! ```
//!
//! Every figure comes from criterion's `estimates.json` (the median of each benchmark's
//! samples); a workload's time per element is that median divided by the elements per
//! iteration criterion recorded as the throughput. Ratios are taken within a run (subject over
//! the floor of that run) and then summarised over runs: the median, and the min-max spread.

mod chart;
mod criterion;
mod format;
mod machine;
mod memory;
// Shared with the benchmarks, which use what this program leaves unused.
#[allow(dead_code)]
#[path = "../../benches/compare/names.rs"]
mod names;
mod readme;
mod report;
mod summary;
mod targets;

use std::path::PathBuf;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = || args.get(1).map(PathBuf::from).ok_or("no DIR");
    match args.first().map(String::as_str) {
        Some("snapshot") => {
            let since = option(&args, "--since").map(str::parse).transpose()?;
            criterion::snapshot(&dir()?, since)
        }
        Some("report") => report::report(&report::Options {
            dir: dir()?,
            docs: option(&args, "--docs")
                .map_or_else(|| manifest_dir().join("docs"), PathBuf::from),
            command: option(&args, "--command")
                .unwrap_or("cargo bench --bench compare")
                .to_owned(),
            commit: option(&args, "--commit").map(str::to_owned),
            readme: option(&args, "--readme")
                .map_or_else(|| manifest_dir().join("README.md"), PathBuf::from),
        }),
        Some("readme-table") => {
            let (_, summary) = report::load(&dir()?)?;
            print!("{}", readme::table(&summary));
            Ok(())
        }
        Some("memory") => {
            print!("{}", memory::memory_section());
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: bench_report snapshot DIR [--since EPOCH]\n       \
                 bench_report report DIR [--command CMD] [--docs DIR] [--commit REV] \
                 [--readme FILE]\n       \
                 bench_report readme-table DIR\n       \
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
