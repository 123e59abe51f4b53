#!/usr/bin/env bash
# Installs what the Linux tests need and a fresh Debian 12 machine may lack:
# `hexdump` (the CLI's dump is compared with it), `fincore` (residency counts),
# `/usr/bin/time` (peak RSS of the CLI), `losetup` (block devices), `kill` (stopping a
# command while its file is truncated), `strace` (the system calls a command makes),
# `xxhsum` (`mmf sum` is compared with it).
set -euo pipefail
need=()
command -v hexdump >/dev/null || need+=(bsdextrautils)
command -v fincore >/dev/null || need+=(util-linux)
[ -x /usr/bin/time ] || need+=(time)
command -v losetup >/dev/null || need+=(mount)
[ -x /bin/kill ] || need+=(procps)
command -v strace >/dev/null || need+=(strace)
command -v xxhsum >/dev/null || need+=(xxhash)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
echo "ok: hexdump, fincore, time, losetup, kill, strace, xxhsum, rustfmt, clippy"
