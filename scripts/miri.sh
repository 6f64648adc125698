#!/usr/bin/env bash
# Runs the test suites under Miri, which checks every execution for undefined behaviour, data
# races (on the interleavings it explores) and memory leaks.
#
#   scripts/miri.sh                 # the integration suites, the unit tests and the doc tests
#   MIRIFLAGS=-Zmiri-many-seeds scripts/miri.sh seed::   # more schedules, slowly; any filter
#
# Under Miri the suites shrink their iteration counts (`cfg(miri)`): fewer threads and
# operations, 6 proptest cases, and no proptest regressions file (Miri's isolation forbids the
# file system). Nothing is skipped, except what Miri cannot run at all:
# - the criterion benches (`benches/`), which measure time and spawn no test;
# - the loom model check (`--cfg loom`), a different build of the crate;
# - one test that counts the process's threads in /proc/self/task, which isolation forbids
#   (`cfg_attr(miri, ignore)`, with the reason).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup +nightly component add miri rust-src
fi
cargo +nightly miri setup

# -Zmiri-strict-provenance: no integer-to-pointer casts hide a provenance bug.
export MIRIFLAGS="-Zmiri-strict-provenance ${MIRIFLAGS:-}"
start=$(date +%s)
cargo +nightly miri test --lib --test it -- "$@"
# For the doc tests only:
# - a doc example opens a file that does not exist (`CachePool::try_builder`): isolation would
#   stop Miri there, so isolated operations fail with an error instead, which is what that
#   example expects;
# - the README's example runs threads in `std::thread::scope`, whose implicit join waits for
#   the closures but not for the threads' thread-local destructors (where the pool's exit hook
#   runs), so `main` may return while one is still exiting, which Miri reports unless leaks
#   are ignored. The suites above join their threads for real and keep the leak check.
MIRIFLAGS="$MIRIFLAGS -Zmiri-isolation-error=warn-nobacktrace -Zmiri-ignore-leaks" \
    cargo +nightly miri test --doc -- "$@"
echo "miri: passed in $(($(date +%s) - start)) s (MIRIFLAGS=$MIRIFLAGS)"
