#!/usr/bin/env bash
# The benchmark report (issue #18), in one command: runs every side-by-side benchmark of
# crates/mmf-bench in one run, then writes BENCHMARKS.md and benchmarks/*.svg
# (crates/mmf-report).
#
#   scripts/bench-report.sh           the full run (about 45 minutes; run it on a quiet machine:
#                                     the ratios are only as good as the machine is idle)
#   scripts/bench-report.sh --quick   the harness check .ci/run makes: tiny sizes, 50 ms per
#                                     group, output in target/bench-report-quick/; asserts
#                                     nothing about speed
#
# MMF_REPORT_BENCHES="core sync" runs only those benches (a partial report; the channel
# bench's own MMF_BENCH_ONLY picks contestants, not benches).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=""
if [ "${1:-}" = "--quick" ]; then quick=1; fi
benches=${MMF_REPORT_BENCHES:-"core durable cli sync channel large heap heap_collections"}

if [ -n "$quick" ]; then
    out=target/bench-report-quick
    export MMF_BENCH_QUICK=1 MMF_BENCH_RTT_SAMPLES=200
    crit=(--warm-up-time 0.02 --measurement-time 0.05 --sample-size 10)
else
    out=.
    crit=()
fi
export CRITERION_HOME="$PWD/target/bench-report/criterion${quick:+-quick}"
rm -rf "$CRITERION_HOME"
mkdir -p "$out" "$CRITERION_HOME"
commands="$CRITERION_HOME/commands.txt"
: > "$commands"
# The commit measured, as it was when the benches began (the report quotes it).
git describe --always --dirty > "$CRITERION_HOME/commit.txt" 2>/dev/null || echo unknown > "$CRITERION_HOME/commit.txt"

# What the CLI bench runs against: the release `mmf`, `cp` and `vmtouch`.
if ! command -v vmtouch >/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq vmtouch
fi
# iceoryx2 in the channel bench, in a full run (issue #15 measures mmf against it in the same
# run): its build runs bindgen, which needs libclang. MMF_REPORT_ICEORYX2=0 leaves it out.
# Built here, before any bench runs: a failed install or build leaves iceoryx2 out with a
# warning rather than failing the run at the channel bench.
ice=()
if [ -z "$quick" ] && [ "${MMF_REPORT_ICEORYX2:-1}" != 0 ]; then
    if ! dpkg -s libclang-dev >/dev/null 2>&1; then
        sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libclang-dev; } || true
    fi
    if cargo bench -q -p mmf-bench --bench channel --features iceoryx2 --no-run; then
        ice=(--features iceoryx2)
    else
        echo "warning: the channel bench does not build with iceoryx2 (libclang?); it runs without" >&2
    fi
fi
cargo build --release -q -p mmf-cli -p mmf-report
export MMF_BIN="$PWD/target/release/mmf"

for bench in $benches; do
    features=()
    if [ "$bench" = channel ]; then features=("${ice[@]}"); fi
    line="cargo bench -p mmf-bench --bench $bench${features[*]:+ ${features[*]}}${crit[*]:+ -- ${crit[*]}}"
    echo "== $line"
    echo "$line" >> "$commands"
    cargo bench -q -p mmf-bench --bench "$bench" "${features[@]}" -- "${crit[@]}"
done
echo "target/release/mmf-bench-report --criterion $CRITERION_HOME --out $out${quick:+ --quick}" >> "$commands"
target/release/mmf-bench-report --criterion "$CRITERION_HOME" --out "$out" \
    --commands "$commands" ${quick:+--quick}
