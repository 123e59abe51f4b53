#!/usr/bin/env bash
# Fuzzes mmf-heap with cargo-fuzz (libFuzzer + AddressSanitizer) on stable Rust
# (RUSTC_BOOTSTRAP=1 lets stable take cargo-fuzz's -Z flags). Two targets, both fed the
# seed corpus and every fixed crasher (crates/mmf-heap/fuzz/seeds, fuzz/regressions):
#   open    a heap opened read-only from arbitrary bytes and walked (what `mmf heap check`
#           verifies, every root, root values tried as pointers and byte strings);
#   commit  the same heap opened read-write, two transactions committed and read back.
# What they do: crates/mmf-heap/src/fuzzing.rs. The corpus grows in fuzz/corpus/TARGET
# (not in git); a crash leaves its input in fuzz/artifacts/TARGET: minimize it
# (`cargo fuzz tmin`), fix it, keep it in fuzz/regressions with a test in tests/hostile.rs.
#
#   scripts/fuzz-heap.sh                        # both targets, 10 minutes each
#   scripts/fuzz-heap.sh commit                 # one target
#   MMF_FUZZ_SECONDS=3600 scripts/fuzz-heap.sh  # an hour each
#   MMF_FUZZ_RUNS=10000000 scripts/fuzz-heap.sh # 10^7 executions each (the long run)
#   MMF_FUZZ_JOBS=2 ...                         # parallel workers (libFuzzer -fork)
set -euo pipefail
cd "$(dirname "$0")/../crates/mmf-heap"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
seconds=${MMF_FUZZ_SECONDS:-600}
runs=${MMF_FUZZ_RUNS:--1}
jobs=${MMF_FUZZ_JOBS:-1}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(open commit)

cargo fuzz build
mkdir -p fuzz/artifacts
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    limit=(-max_total_time="$seconds")
    [ "$runs" = -1 ] || limit=(-runs="$runs")
    fork=()
    [ "$jobs" = 1 ] || fork=(-fork="$jobs")
    echo "== fuzz $target: ${limit[*]} =="
    start=$(date +%s)
    log=fuzz/artifacts/$target.log
    status=0
    cargo fuzz run "$target" "fuzz/corpus/$target" fuzz/seeds fuzz/regressions -- \
        -max_len=49152 -print_final_stats=1 "${limit[@]}" "${fork[@]}" >"$log" 2>&1 || status=$?
    grep -E '^(Done|stat::)|ERROR|panicked|SUMMARY|Failing input|Reproduce|cargo fuzz' "$log" || true
    echo "== $target: exit $status after $(($(date +%s) - start)) s (log: crates/mmf-heap/$log) =="
    [ "$status" -eq 0 ] || exit "$status"
done
