#!/usr/bin/env bash
# Linux on aarch64: `cargo check` of the whole workspace, every target (tests, benches,
# examples), for aarch64-unknown-linux-gnu. Debian's Rust 1.96 builds the standard library
# for it from source (-Zbuild-std), as the Windows leg does, so no Rust toolchain beyond
# Debian's is needed, and checking does not link. The one C compiler it needs is for a
# build script: criterion's `alloca` compiles a C file for the target. Installs what it
# needs on a fresh Debian 12 machine (root or sudo).
#
#   scripts/check-aarch64.sh              # keeps its build in target/aarch64
#   MMF_AARCH64_TARGET_DIR=DIR ...        # elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
target_dir=${MMF_AARCH64_TARGET_DIR:-target/aarch64}
start=$(date +%s)

# Debian packages: Rust 1.96 and std's source (for -Zbuild-std), an aarch64 C compiler.
pkgs=(rustc-web cargo-web rust-web-src gcc-aarch64-linux-gnu)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== aarch64-unknown-linux-gnu: cargo check --workspace --all-targets =="
RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc /usr/bin/cargo check -Zbuild-std --target "$target" \
    --target-dir "$target_dir" --workspace --all-targets
echo "aarch64 check: $(( $(date +%s) - start )) s"
