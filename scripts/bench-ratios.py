#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench` run and the ratios the issues ask for.

Reads Criterion's estimates under target/criterion. A ratio is "how many times faster mmf
is" (the alternative's median time / mmf's), except for map+unmap, where it is mmf's time
over the raw syscall pair (lower is better)."""
import json
import os
import pathlib
import sys

default = os.environ.get("CRITERION_HOME", "target/criterion")
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else default)


def median_ns(group, name):
    path = root / group / name / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


# (group, mmf's bench, the alternative, goal, "speedup" or "slowdown"): the comparisons
# the issues ask for, kept in crates/mmf-bench/goals.json (the report reads it too).
GOALS = pathlib.Path(__file__).resolve().parent.parent / "crates/mmf-bench/goals.json"
RATIOS = [
    (g["group"], r["mmf"], r["alt"], r["goal"], r["kind"])
    for g in json.loads(GOALS.read_text())["groups"]
    for r in g["ratios"]
]

print("| benchmark | mmf | alternative | ratio | goal |")
print("|---|---|---|---|---|")
for group, ours, theirs, goal, kind in RATIOS:
    # An alternative may live in another group: "group/name".
    other_group, theirs = theirs.split("/") if "/" in theirs else (group, theirs)
    a, b = median_ns(group, ours), median_ns(other_group, theirs)
    if a is None or b is None:
        continue
    if kind == "speedup":
        ratio, ok = b / a, goal is None or b / a >= goal
        goal_text = f">= {goal:.3g}x" if goal else "-"
    else:
        ratio, ok = a / b, goal is None or a / b <= goal
        goal_text = f"<= {goal:.3g}x" if goal else "-"
    mark = "" if goal is None else (" ✓" if ok else " ✗")
    print(f"| {group} | {ours} {fmt(a)} | {theirs} {fmt(b)} | {ratio:.3f}x{mark} | {goal_text} |")
