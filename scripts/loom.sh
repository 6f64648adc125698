#!/usr/bin/env bash
# Model-checks the pool's cross-thread protocols with loom: every interleaving of the budget's
# leases, the generations, and whole-pool races (clear against a put catching up, spill against
# refill, a thread's exit flush against the pool's drop), with every thread's list in a loom
# cell. A separate build of the crate (`--cfg loom`), in its own target directory.
#
#   scripts/loom.sh            # all loom tests
#   scripts/loom.sh spill      # those whose name contains "spill"
#
# LOOM_MAX_PREEMPTIONS bounds the preemptions per execution (3 by default here, loom's usual
# bound: 2 to 3 preemptions find the known concurrency bugs; unbounded, three threads over
# Relaxed atomics do not finish in reasonable time).
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3}
RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}" CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/loom} \
    cargo test --release --lib -- --test-threads 1 "${1:-loom}"
