#!/usr/bin/env bash
# The Windows leg: builds the workspace for x86_64-pc-windows-gnu with Debian's Rust 1.96
# and mingw, lints it, and runs the whole test suite under Wine 8. Installs what it needs on a
# fresh Debian 12 machine (root or sudo). Facts behind each step: ../shared/WINDOWS-LEG.md.
#
#   scripts/test-windows.sh            # clippy + tests + `mmf hello` compared with Linux's
#   MMF_WINDOWS_TARGET_DIR=DIR ...     # where the Windows build and its Wine prefix live
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=x86_64-pc-windows-gnu
target_dir=${MMF_WINDOWS_TARGET_DIR:-$root/target/windows}
start=$(date +%s)

# 1. Debian packages: Rust 1.96 with std's source (for -Zbuild-std), clippy, mingw, Wine.
pkgs=(rustc-web cargo-web rust-web-src rust-web-clippy gcc-mingw-w64-x86-64 wine64)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
wine=$(dpkg -L wine64 | grep -E '/wine64$' | grep -v '/share/' | head -n1)
[ -x "$wine" ] || { echo "wine64 loader not found in package wine64" >&2; exit 1; }

# 2. A Wine prefix of our own, with the ProcessPrng shim Rust's std needs under Wine 8.
export WINEPREFIX=$target_dir/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
mkdir -p "$target_dir"
shim=$target_dir/bcryptprimitives.dll
if [ ! -f "$shim" ] || [ scripts/windows/processprng.c -nt "$shim" ]; then
    x86_64-w64-mingw32-gcc -O2 -shared -o "$shim" scripts/windows/processprng.c -ladvapi32
fi
if [ ! -d "$WINEPREFIX/drive_c/windows/system32" ]; then
    echo "setting up the Wine prefix (first run only)"
    "$wine" cmd /c exit >/dev/null 2>&1 || true
    "$root/scripts/windows/wait-wineserver.sh" "$wine"
fi
cp "$shim" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"

# 3. Build, lint, test with Debian's toolchain and Wine as the runner. /usr/bin goes first
#    on PATH for these commands only, so that `cargo clippy` finds Debian's cargo-clippy
#    and clippy-driver (rustup's 1.95 ones reject a std built by rustc 1.96).
export RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$root/scripts/windows/run.sh $wine"
wcargo() { PATH=/usr/bin:$PATH /usr/bin/cargo "$1" -Zbuild-std --target "$target" --target-dir "$target_dir" "${@:2}"; }

echo "== Windows: clippy -D warnings =="
wcargo clippy --workspace --all-targets -- -D warnings

echo "== Windows: tests under Wine =="
# A Linux helper for tests/faults_windows.rs: it truncates a file a Windows view maps (what
# Windows itself refuses), on request, since a Windows program cannot start it under Wine.
truncator=/tmp/mmf-wine-truncator
mkdir -p "$truncator"
(
    while true; do
        for request in "$truncator"/*.request; do
            [ -e "$request" ] || continue
            truncate -s 4096 "${request%.request}"
            mv "$request" "${request%.request}.done"
        done
        sleep 0.05
    done
) &
truncator_pid=$!
server_pid=""
cargo_pid=""
work=""
# Whatever ends the script (a failure, Ctrl-C, CI's timeout): the truncator, the Wine
# processes and their server go too, and nothing of theirs is left for the next run.
cleanup() {
    set +e # every step, whatever fails
    if [ -n "$cargo_pid" ]; then # the subshell running `wcargo`, and its cargo
        pkill -TERM -P "$cargo_pid" 2>/dev/null || true
        kill "$cargo_pid" 2>/dev/null || true
    fi
    [ -z "$truncator_pid" ] || kill "$truncator_pid" 2>/dev/null
    rm -rf "$truncator"
    if [ -n "$server_pid" ]; then
        wineserver -k 2>/dev/null || true
        kill "$server_pid" 2>/dev/null || true
    fi
    [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The tests' wineserver is started here, persistent (`-p`: it does not shut down between
# test binaries, which a binary starting at that moment could meet), its messages in a log.
# Twice in CI a test binary died of `wine client error: recvmsg: Connection reset by peer`
# (the server went away under it; not reproduced by hand): if it happens again, the log and
# the server's exit status say why.
server_log=$target_dir/wineserver.log
wineserver -k 2>/dev/null || true
wineserver -w 2>/dev/null || true
wineserver -f -p >"$server_log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do # until it listens, so that no client starts a server of its own
    [ -S "/proc/$server_pid/cwd/socket" ] && break
    sleep 0.1
done
status=0
# In the background and waited for: bash runs a trap only once a foreground command ends,
# and the tests take minutes.
wcargo test --workspace --no-fail-fast &
cargo_pid=$!
wait "$cargo_pid" || status=$?
cargo_pid=""
kill "$truncator_pid" 2>/dev/null || true
truncator_pid="" # reaped: the number may be another process's by the time the trap runs
rm -rf "$truncator"
server_state=$(ps -o stat= -p "$server_pid" || true) # Z or nothing: it died
if [ -n "$server_state" ] && [ "${server_state#Z}" = "$server_state" ]; then
    wineserver -k 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
else
    server_status=0
    wait "$server_pid" || server_status=$?
    server_pid=""
    echo "the wineserver died during the tests (exit status $server_status; above 128: a signal)"
    [ "$status" -ne 0 ] || status=1
fi
if [ -s "$server_log" ]; then
    echo "the wineserver said:"
    tail -n 40 "$server_log"
fi
[ "$status" -eq 0 ] || exit "$status"

echo "== Windows: mmf hello is byte-identical to Linux's =="
wcargo build -p mmf-cli --release
work=$(mktemp -d)
(cd "$work" && "$wine" "$target_dir/$target/release/mmf.exe" hello --path win.file >/dev/null)
cargo run -q --release -p mmf-cli -- hello --path "$work/linux.file" >/dev/null
cmp "$work/win.file" "$work/linux.file"
echo "identical: $(stat -c %s "$work/win.file") bytes"

echo "== Windows: mmf dump is byte-identical to hexdump -C =="
head -c 100000 /dev/urandom > "$work/data"
head -c 5000 /dev/zero >> "$work/data"
for range in "0 100" "1 33" "4095 4097" "99990 200" "100001 3000" "0 105000"; do
    set -- $range
    diff <(cd "$work" && "$wine" "$target_dir/$target/release/mmf.exe" dump data --offset "$1" --len "$2") \
        <(hexdump -C -s "$1" -n "$2" "$work/data")
done
echo "identical on 6 ranges"

echo "Windows leg: $(( $(date +%s) - start )) s"
