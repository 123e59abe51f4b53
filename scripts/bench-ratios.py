#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench` run and the ratios the issues ask for.

Reads Criterion's estimates under target/criterion. A ratio is "how many times faster mmf
is" (the alternative's median time / mmf's), except for map+unmap, where it is mmf's time
over the raw syscall pair (lower is better)."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


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


# (group, mmf's bench, the alternative, goal, "speedup" or "slowdown")
RATIOS = [
    ("seq_read_1GiB", "mmf_view", "memmap2", 0.97, "speedup"),
    ("seq_read_1GiB", "mmf_view", "read_1MiB", 1.5, "speedup"),
    ("seq_read_1GiB", "mmf_read_at_1MiB", "read_1MiB", 1.0, "speedup"),
    ("seq_read_1GiB", "mmf_read_at_1MiB", "mmf_view", 0.909, "speedup"),
    ("random_read_8B", "mmf_read_at", "pread", 20.0, "speedup"),
    ("random_read_8B", "mmf_read_at", "raw_load_memmap2", 1.1, "slowdown"),
    ("random_read_8B", "mmf_atomic_u64_load", "raw_load_memmap2", None, "slowdown"),
    ("copy_out_1MiB", "mmf_read_at", "pread", 1.0, "speedup"),
    ("copy_out_1MiB", "mmf_read_at", "memcpy_as_slice", 0.9, "speedup"),
    ("copy_in_1MiB", "mmf_write_at", "pwrite", 1.0, "speedup"),
    ("copy_in_1MiB", "mmf_write_at", "memcpy_as_mut_slice", 0.9, "speedup"),
    ("copy_from_1MiB", "mmf_copy_from", "pread_into_slice", 1.0, "speedup"),
    ("copy_from_1MiB", "mmf_copy_from", "memcpy_slices", 0.9, "speedup"),
    ("map_unmap_64KiB", "mmf_view", "raw_mmap_munmap", 1.15, "slowdown"),
    ("map_unmap_64KiB", "memmap2", "raw_mmap_munmap", None, "slowdown"),
    ("cp_2GiB", "mmf_cp", "cp", 1.0, "speedup"),
    ("touch_2GiB", "mmf_touch", "vmtouch_t", 1.0, "speedup"),
    ("sync_uncontended", "mmf_mutex", "glibc_robust_pshared", 0.6, "slowdown"),
    ("sync_uncontended", "mmf_mutex", "glibc_pshared", None, "slowdown"),
    ("sync_uncontended", "mmf_mutex", "cas_store", None, "slowdown"),
    ("sync_handoff_spin", "mmf_events", "raw_spin", 1.5, "slowdown"),
    ("sync_handoff_sleep", "mmf_events", "raw_futex", 1.1, "slowdown"),
    # Durable writes (issue #11): a commit at most 1.2x the time of pwrite + fdatasync.
    ("durable_commit_page", "mmf_write_through", "pwrite_4KiB_fdatasync", 1 / 1.2, "speedup"),
    ("durable_commit_page", "mmf_view", "pwrite_4KiB_fdatasync", None, "speedup"),
    ("durable_commit_page", "memmap2_flush_range", "pwrite_4KiB_fdatasync", None, "speedup"),
    ("durable_new_256MiB", "mmf_write_through", "write_1MiB_fsync", 1.0, "speedup"),
    ("durable_new_256MiB", "mmf_write_through_no_early_writeback", "write_1MiB_fsync", None, "speedup"),
    ("durable_new_256MiB", "mmf_view", "write_1MiB_fsync", None, "speedup"),
    ("durable_new_256MiB", "memmap2_msync", "write_1MiB_fsync", None, "speedup"),
    ("durable_copy_256MiB", "mmf_cp_sync", "dd_conv_fsync", 1.0, "speedup"),
    ("durable_copy_256MiB", "mmf_write_from", "dd_conv_fsync", 1.0, "speedup"),
    ("durable_copy_256MiB", "mmf_create_write_from", "dd_conv_fsync", 1.0, "speedup"),
    ("flush_clean_1GiB", "mmf_flush", "fdatasync", None, "slowdown"),
    # Channels (issue #15): round trips against the raw anchors of the same run (raw_ring:
    # the floor of a 64-byte message ring) and iceoryx2 (with `--features iceoryx2`; a
    # "group/name" alternative is in another group of the same run); one-way throughput
    # against a pipe and a unix socket.
    ("channel_rtt_spin", "mmf_spsc", "raw_spin", 1.5, "slowdown"),
    ("channel_rtt_spin", "mmf_spsc", "raw_ring", None, "slowdown"),
    ("channel_rtt_spin", "mmf_spsc", "iceoryx2_busy", 0.2, "slowdown"),
    ("channel_rtt_hybrid", "mmf_spsc", "raw_hybrid", 1.5, "slowdown"),
    ("channel_rtt_hybrid", "mmf_spsc", "channel_rtt_parked/iceoryx2_blocking", 0.05, "slowdown"),
    ("channel_rtt_parked", "mmf_spsc", "raw_futex", 1.1, "slowdown"),
    ("channel_rtt_parked", "mmf_spsc", "iceoryx2_blocking", None, "slowdown"),
    ("channel_oneway_64B", "mmf_spsc", "pipe", None, "speedup"),
    ("channel_oneway_64B", "mmf_spsc", "unix_socket", None, "speedup"),
    ("channel_oneway_4KiB", "mmf_spsc", "pipe", None, "speedup"),
    ("channel_oneway_4KiB", "mmf_spsc", "unix_socket", None, "speedup"),
    # Large files (issue #17): streams, checksums, growth.
    ("stream_read_1GiB", "mmf_stream", "bufreader_file", 1.0, "speedup"),
    ("stream_read_1GiB", "mmf_stream", "read_64KiB", 1.0, "speedup"),
    ("sum_1GiB", "mmf_stream_xxh3", "read_256KiB_xxh3", 1.0, "speedup"),
    ("sum_1GiB", "mmf_stream_xxh3", "read_1MiB_xxh3", 1.0, "speedup"),
    ("sum_1GiB_cold", "mmf_stream_xxh3", "read_256KiB_xxh3", 0.9, "speedup"),
    ("append_1GiB", "mmf_grow_write_through", "write_1MiB", 1.0, "speedup"),
    ("append_1GiB", "mmf_grow_view", "write_1MiB", None, "speedup"),
]

print("| benchmark | mmf | alternative | ratio | goal |")
print("|---|---|---|---|---|")
for group, ours, theirs, goal, kind in RATIOS:
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
