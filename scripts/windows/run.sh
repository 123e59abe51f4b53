#!/usr/bin/env bash
# Cargo's runner for the Windows leg: runs a test binary under Wine and, when it ends with
# a status other than 0 or libtest's 101 (a failed test), says so with its run time on
# stderr. Once in CI (2026-12-04) a test binary under Wine ended with status 1 and printed
# nothing, not even libtest's first line; not reproduced in 72 runs by hand (12 in a
# row, 60 in two concurrent loops). The time says whether it died at start (Wine's loader
# or server) or midway, which the status alone does not. Usage: run.sh WINE EXE [ARGS...]
wine=$1
shift
start=$(date +%s%N)
status=0
"$wine" "$@" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 101 ]; then
    took=$((($(date +%s%N) - start) / 1000000))
    echo "run.sh: $(basename "$1") under Wine ended with status $status after ${took} ms" \
        "(101 would be a failed test: this is a crash, an abort or Wine's own failure)" >&2
fi
exit "$status"
