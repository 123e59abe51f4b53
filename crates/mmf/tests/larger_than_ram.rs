//! Whole-file streaming in bounded memory: a child process writes a file of real data
//! (no holes) through a [`Stream`], drops it from the page cache, reads it back through
//! another stream, and reports its peak resident set size (`VmHWM` in
//! `/proc/self/status`), which must stay at most 256 MiB whatever the file's size.
//!
//! Knobs (environment):
//! - `MMF_LARGE_FILE_BYTES`: the file's size (default 256 MiB, what CI runs);
//! - `MMF_LARGE_FILE_DIR`: where to put it (default the temporary directory).
//!
//! The long run, on a file larger than RAM (this machine has 24 GiB; check `df` first):
//!
//! ```text
//! MMF_LARGE_FILE_BYTES=$((32 << 30)) MMF_LARGE_FILE_DIR=/var/tmp \
//!     cargo test --release -p mmf --test larger_than_ram -- --nocapture
//! ```
#![cfg(target_os = "linux")]

use std::io::{Read, Write};

use mmf::{Access, Mapping, MappingOptions, Stream};
use mmf_testkit::{Peer, role, tell};

const MIB: u64 = 1 << 20;

/// The peak resident set size of this process so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The bytes of MiB number `n`: different in every MiB, so a misplaced window shows.
fn fill(n: u64, buf: &mut [u8]) {
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for word in buf.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        word.copy_from_slice(&x.to_le_bytes());
    }
}

/// A fold of the bytes that notices order.
fn fold(acc: u64, bytes: &[u8]) -> u64 {
    bytes.chunks_exact(8).fold(acc, |a, w| {
        (a.rotate_left(5) ^ u64::from_le_bytes(w.try_into().unwrap())).wrapping_mul(31)
    })
}

#[test]
fn a_file_streams_through_in_bounded_memory() {
    if let Some((role, _)) = role() {
        assert_eq!(role, "streamer");
        let size = std::env::var("MMF_LARGE_FILE_BYTES").map_or(256 * MIB, |s| s.parse().unwrap());
        let size = size.next_multiple_of(MIB);
        let dir =
            std::env::var_os("MMF_LARGE_FILE_DIR").map_or_else(std::env::temp_dir, Into::into);
        let file = tempfile::tempfile_in(dir).unwrap();
        let mapping =
            MappingOptions::new().access(Access::ReadWrite).size(size).map_file(&file).unwrap();
        let mut buf = vec![0u8; MIB as usize];
        let (mut written, start) = (0u64, std::time::Instant::now());
        let mut out = Stream::new_mut(&mapping).unwrap();
        for n in 0..size / MIB {
            fill(n, &mut buf);
            out.write_all(&buf).unwrap();
            written = fold(written, &buf);
        }
        drop(out);
        let write_s = start.elapsed().as_secs_f64();
        // Cold: write back and drop the file's pages, so the read comes from the disk.
        file.sync_all().unwrap();
        mmf::cache::evict(&file).unwrap();
        let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
        let (mut read, start) = (0u64, std::time::Instant::now());
        let mut input = Stream::new(&mapping);
        let mut total = 0;
        loop {
            let n = input.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            read = fold(read, &buf[..n]);
            total += n as u64;
        }
        let read_s = start.elapsed().as_secs_f64();
        let gib = size as f64 / f64::from(1 << 30);
        eprintln!(
            "{gib:.1} GiB: written {:.2} GiB/s, read cold {:.2} GiB/s",
            gib / write_s,
            gib / read_s
        );
        tell(&format!("bytes {total} {}", written == read));
        tell(&format!("peak {}", peak_rss_kib()));
        return;
    }
    let test = "a_file_streams_through_in_bounded_memory";
    let mut child = Peer::spawn(test, "streamer", "");
    let size = std::env::var("MMF_LARGE_FILE_BYTES").map_or(256 * MIB, |s| s.parse().unwrap());
    assert_eq!(child.expect("bytes"), format!("{} true", size.next_multiple_of(MIB)));
    let peak: u64 = child.expect("peak").parse().unwrap();
    assert!(peak <= 256 * 1024, "peak RSS {peak} KiB over 256 MiB");
    eprintln!("peak RSS {} MiB", peak / 1024);
    child.wait_success();
}
