#!/usr/bin/env bash
# Shows, for each workload loop of the benchmark's own build, whether a guard's give-back is
# inlined there or is a call to the guard's drop glue.
#
#   scripts/guard-inlining.sh
#
# Builds `benches/compare.rs` with v0 symbol mangling (which keeps generic arguments in the
# names) into target/inlining, disassembles it with objdump, and for every function that runs
# a workload of a cachepool guard subject (the criterion loop, the closures its threads run)
# counts two kinds of calls:
# - `inlined`: calls to `CachePool::give_back_rest`, the one call that the inlined give-back
#   makes off its common path; present only where the give-back is inlined;
# - `glue`: calls to `drop_in_place::<cachepool::guard::...>`, the guard's drop glue, that is a
#   give-back that was not inlined. A call before `_Unwind_Resume` is a clean-up path, taken
#   only when a panic unwinds past the guard.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}/inlining
RUSTFLAGS="-C symbol-mangling-version=v0" cargo bench --quiet --bench compare --no-run
bin=$(ls -t "$CARGO_TARGET_DIR"/release/deps/compare-* | grep -v '\.d$' | head -n 1)
printf '%-12s %-6s %-14s %8s %5s\n' workload elem subject inlined glue
objdump -d --no-show-raw-insn -C "$bin" | awk '
    /^[0-9a-f]+ <.*>:$/ {
        key = ""
        if (match($0, /workloads::(StHit|StBurst|MtHit|CrossThread|Rayon) as [^>]*>::measure<[^,]*(Vec<u8>|Box<\[u8; 64\]>), compare::subjects::(CpBorrow|CpTypedClosure|CpFn|CpClosure|CpOwned)/)) {
            s = substr($0, RSTART, RLENGTH)
            workload = s; sub(/^workloads::/, "", workload); sub(/ as .*/, "", workload)
            element = (s ~ /Vec<u8>/) ? "vec4k" : "box64"
            subject = s; sub(/.*compare::subjects::/, "", subject)
            key = sprintf("%-12s %-6s %-14s", workload, element, subject)
            if (!(key in glue)) { glue[key] = 0; inlined[key] = 0 }
        }
        next
    }
    key != "" && /call.*drop_in_place::<cachepool::guard::/ { glue[key]++ }
    key != "" && /call.*cachepool::pool::CachePool<.*>::give_back_rest>/ { inlined[key]++ }
    END { for (key in glue) printf "%s %8d %5d\n", key, inlined[key], glue[key] }' | sort
