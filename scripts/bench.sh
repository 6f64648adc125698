#!/bin/sh
# Runs the comparison benchmarks RUNS times and regenerates docs/benchmarks.md,
# docs/benchmarks.svg and the README's performance table from criterion's output of every run.
#
#   scripts/bench.sh [RUNS] [FILTER]     e.g. scripts/bench.sh 3, scripts/bench.sh 1 st_hit
#
# Each run's medians are saved under target/bench-runs/ (criterion keeps only the last run);
# the report takes the median over runs and shows the min-max spread.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-3}
filter=${2:-}
dir=${CARGO_TARGET_DIR:-target}/bench-runs
rm -rf "$dir"
mkdir -p "$dir"
cargo build --release --example bench_report
cargo bench --bench compare --no-run
i=1
while [ "$i" -le "$runs" ]; do
    echo "== run $i of $runs; load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')" >&2
    since=$(date +%s)
    cargo bench --bench compare -- ${filter:+"$filter"}
    cargo run --release --example bench_report -- snapshot "$dir" --since "$since"
    i=$((i + 1))
done
cargo run --release --example bench_report -- report "$dir" --command "scripts/bench.sh $*"
