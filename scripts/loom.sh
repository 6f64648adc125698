#!/usr/bin/env bash
# Model-checks the pool's cross-thread protocols with loom: every interleaving of the budget's
# leases, the handshake through which a thread reaches into another's list (both barriers as
# SeqCst fences), and whole-pool races (clear against a put, trim from two threads, spill
# against refill, exit flush against a reclaim and against the pool's drop, a starving put, a
# stealing get), with every thread's list in a loom cell. A separate build of the crate
# (`--cfg loom`), in its own target directory.
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
