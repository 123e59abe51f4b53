#!/usr/bin/env bash
# The CLI benchmarks of issue #5: `mmf cp` vs `cp`, `mmf touch` vs `vmtouch -t`, on a 2 GiB
# file, in one criterion run; then the ratios of the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v vmtouch >/dev/null || { apt-get update -qq && apt-get install -y -qq vmtouch; }
cargo build --release -p mmf-cli
MMF_BIN=$PWD/target/release/mmf cargo bench -p mmf-bench --bench cli "$@"
python3 scripts/bench-ratios.py
