//! The machine the figures come from: CPU, cores, memory, kernel, the file system the
//! benches wrote to, and its memory bandwidth measured now (the same run as the benches).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// What the report says about where and when it was measured.
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// `MemTotal` in GiB.
    pub memory_gib: f64,
    /// The OS and kernel (`uname -sr`).
    pub kernel: String,
    /// The file system type and device of the benches' files (`df -T`).
    pub filesystem: String,
    /// Read bandwidth in GB/s (10^9 bytes): the best of 5 sums of a 1 GiB buffer.
    pub read_gbps: f64,
    /// Copy bandwidth in GB/s: the best of 5 copies of 256 MiB.
    pub copy_gbps: f64,
    /// UTC date and time of the report.
    pub date: String,
    /// The commit measured (`git describe --always --dirty` when the benches began:
    /// `<criterion>/commit.txt`, written by `scripts/bench-report.sh`).
    pub commit: String,
}

fn run(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn meminfo_gib() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = text
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / (1024.0 * 1024.0)
}

/// Describes this machine and measures its memory bandwidth (`quick`: 64 MiB buffers,
/// two passes).
pub fn describe(bench_dir: &Path, quick: bool) -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| "unknown".into(), |s| s.trim().to_string());
    let df = run("df", &["-T", &bench_dir.to_string_lossy()]);
    let filesystem = df
        .lines()
        .nth(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} on {}", f.get(1).unwrap_or(&"?"), f.first().unwrap_or(&"?"))
        })
        .unwrap_or_else(|| "unknown".into());
    let (read_gbps, copy_gbps) = bandwidth(quick);
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: meminfo_gib(),
        kernel: run("uname", &["-sr"]),
        filesystem,
        read_gbps,
        copy_gbps,
        date: run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        // The commit when the benches began (the script writes it there), else now.
        commit: std::fs::read_to_string(bench_dir.join("commit.txt"))
            .map(|c| c.trim().to_string())
            .unwrap_or_else(|_| run("git", &["describe", "--always", "--dirty"])),
    }
}

/// Read (sum of u64) and copy bandwidth of one core, in GB/s.
fn bandwidth(quick: bool) -> (f64, f64) {
    let (read_len, copy_len, passes) =
        if quick { (64 << 20, 64 << 20, 2) } else { (1 << 30, 256 << 20, 5) };
    let buf: Vec<u64> = (0..read_len / 8).map(|i| i as u64).collect();
    let mut best_read = f64::MAX;
    for _ in 0..passes {
        let t = Instant::now();
        let sum = buf.iter().fold(0u64, |a, &x| a.wrapping_add(x));
        std::hint::black_box(sum);
        best_read = best_read.min(t.elapsed().as_secs_f64());
    }
    drop(buf);
    let src = vec![1u8; copy_len];
    let mut dst = vec![0u8; copy_len];
    dst.fill(2); // fault the pages in: the copy measures memory, not page faults
    let mut best_copy = f64::MAX;
    for _ in 0..passes {
        let t = Instant::now();
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&dst);
        best_copy = best_copy.min(t.elapsed().as_secs_f64());
    }
    (read_len as f64 / best_read / 1e9, copy_len as f64 / best_copy / 1e9)
}
