#!/usr/bin/env bash
# The long run of issue 17: mmf's whole-file commands on a file larger than RAM.
#
# Writes a file of real data (no holes: every byte reaches the disk) of
# MMF_LARGE_FILE_BYTES (default 32 GiB, past this machine's 24 GiB of RAM) in
# MMF_LARGE_FILE_DIR (default /var/tmp), then, each from a cold cache (root: it drops
# the page cache through /proc/sys/vm/drop_caches):
#   - `cat FILE > /dev/null` against `mmf sum FILE` and `xxhsum -H3 FILE`, alternated
#     MMF_LARGE_ROUNDS times (default 3): wall time, speed ratio, peak RSS, equal sums;
#   - `mmf touch`, `mmf dump` (to /dev/null): time and peak RSS;
#   - the streams test (`tests/larger_than_ram.rs`) at the same size, peak RSS (skipped
#     with MMF_LARGE_SKIP_STREAMS=1);
#   - `mmf cp` of the first MMF_LARGE_CP_BYTES (default 5/8 of the size: source and copy
#     together past RAM) against `cp`.
# Needs the size plus 1.25x it free on that disk (the copy); it removes its files.
# Usage: scripts/large-run.sh   (from the repository root; builds the release `mmf`)
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${MMF_LARGE_FILE_BYTES:-$((32 << 30))}
DIR=${MMF_LARGE_FILE_DIR:-/var/tmp}
ROUNDS=${MMF_LARGE_ROUNDS:-3}
CP_BYTES=${MMF_LARGE_CP_BYTES:-$((BYTES / 8 * 5))}
FILE="$DIR/mmf-large-run.bin"
COPY="$DIR/mmf-large-run.copy"
[ "$(id -u)" -eq 0 ] || { echo "large-run: needs root to drop the page cache" >&2; exit 1; }
free_bytes=$(df --output=avail -B1 "$DIR" | tail -1)
need=$((BYTES + CP_BYTES + (1 << 30)))
if [ "$free_bytes" -lt "$need" ]; then
    echo "large-run: $DIR has $((free_bytes >> 30)) GiB free, the run needs $((need >> 30)) GiB" >&2
    echo "  (set MMF_LARGE_FILE_DIR to a disk with room, or MMF_LARGE_FILE_BYTES lower)" >&2
    exit 1
fi
trap 'rm -f "$FILE" "$COPY" "$DIR/mmf-large-chunk.bin"' EXIT
cargo build --release -q -p mmf-cli
MMF=target/release/mmf
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# run NAME CMD...: wall seconds and peak RSS (KiB) of one command from a cold cache; its
# output to /dev/null, except a checksum tool's line (kept in /tmp/mmf-large-run.out).
run() {
    local name=$1; shift
    local out=/dev/null
    case $name in *sum) out=/tmp/mmf-large-run.out ;; esac
    cold
    /usr/bin/time -f "%e %M" -o /tmp/mmf-large-run.time "$@" > "$out"
    read -r secs rss < /tmp/mmf-large-run.time
    printf '%-12s %8.2f s  %7.2f GiB/s  peak RSS %6d MiB\n' \
        "$name" "$secs" "$(echo "$BYTES / $secs / 1073741824" | bc -l)" $((rss / 1024))
    echo "$secs" > "/tmp/mmf-large-run.$name"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, kernel $(uname -r)"
echo "file: $FILE, $((BYTES >> 30)) GiB of pseudo-random data; $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)"

if [ -z "${MMF_LARGE_SKIP_STREAMS:-}" ]; then
    echo "== streams test at $((BYTES >> 30)) GiB (writes its own file, reads it back cold)"
    MMF_LARGE_FILE_BYTES=$BYTES MMF_LARGE_FILE_DIR=$DIR \
        cargo test --release -q -p mmf --test larger_than_ram -- --nocapture 2>&1 | grep -E "RSS|GiB|test result" || true
fi

echo "== writing the file"
head -c $((256 << 20)) /dev/urandom > "$DIR/mmf-large-chunk.bin"
: > "$FILE"
for _ in $(seq 1 $((BYTES / (256 << 20)))); do cat "$DIR/mmf-large-chunk.bin" >> "$FILE"; done
rm -f "$DIR/mmf-large-chunk.bin"
truncate -s "$BYTES" "$FILE"
sync

echo "== sum against cat, cold cache each time ($ROUNDS rounds)"
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r"
    run cat cat "$FILE"
    run mmf-sum "$MMF" sum "$FILE"
    mmf_sum=$(awk '{print $NF}' /tmp/mmf-large-run.out)
    run xxhsum xxhsum -H3 "$FILE"
    xx_sum=$(awk '{print $NF}' /tmp/mmf-large-run.out)
    [ "$mmf_sum" = "$xx_sum" ] || { echo "large-run: sums differ: mmf $mmf_sum, xxhsum $xx_sum" >&2; exit 1; }
    echo "  sums equal ($mmf_sum); mmf sum at $(echo "$(cat /tmp/mmf-large-run.cat) / $(cat /tmp/mmf-large-run.mmf-sum)" | bc -l | cut -c1-5)x cat's speed"
done

echo "== touch and dump"
run mmf-touch "$MMF" touch "$FILE"
run mmf-dump "$MMF" dump "$FILE"

echo "== cp of the first $((CP_BYTES >> 30)) GiB (source and copy together past RAM)"
truncate -s "$CP_BYTES" "$FILE"
BYTES=$CP_BYTES
run cp cp "$FILE" "$COPY"
rm -f "$COPY"
run mmf-cp "$MMF" cp "$FILE" "$COPY"
cmp "$FILE" "$COPY" && echo "  copy equal"
echo "  mmf cp at $(echo "$(cat /tmp/mmf-large-run.cp) / $(cat /tmp/mmf-large-run.mmf-cp)" | bc -l | cut -c1-5)x cp's speed"
