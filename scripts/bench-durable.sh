#!/usr/bin/env bash
# The durable-write benchmarks of issue #11, one run: the library (`--bench durable`: one
# dirty page made durable, a new 256 MiB file filled durably, a clean 1 GiB flush), then the
# tool (`--bench cli -- durable_copy`: `mmf cp --sync`, `mmf write --from`, `mmf create` +
# `write` vs `dd conv=fsync`); then the ratios of the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p mmf-cli
cargo bench -p mmf-bench --bench durable
MMF_BIN=$PWD/target/release/mmf cargo bench -p mmf-bench --bench cli -- durable_copy
python3 scripts/bench-ratios.py | grep -E "^\| (benchmark|---|durable|flush_clean)"
