//! The benchmarks themselves.

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{BatchSize, Criterion, criterion_group};

/// The big file's size: 2 GiB (less in quick mode).
fn size() -> u64 {
    mmf_bench::size(2 << 30)
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn mmf_bin() -> PathBuf {
    std::env::var_os("MMF_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/mmf"))
}

fn run(program: &Path, args: &[&Path]) {
    let status = Command::new(program).args(args).status().expect("run the command");
    assert!(status.success(), "{} failed", program.display());
}

/// A 2 GiB file of incompressible bytes (not sparse), made once.
fn source() -> PathBuf {
    let path = dir().join(mmf_bench::file_name("mmf-bench-2GiB.bin"));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(size()) {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let chunk: Vec<u8> = (0..(1 << 20) / 8)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()
            })
            .collect();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..size() >> 20 {
            let mut c = chunk.clone();
            c[..8].copy_from_slice(&i.to_le_bytes());
            std::io::Write::write_all(&mut out, &c).unwrap();
        }
    }
    path
}

fn evict(path: &Path) {
    let file = std::fs::File::open(path).unwrap();
    mmf::cache::evict(&file).unwrap();
}

fn sync() {
    run(Path::new("sync"), &[]);
}

fn cp(c: &mut Criterion) {
    let src = source();
    let dst = dir().join(mmf_bench::file_name("mmf-bench-copy.bin"));
    std::io::copy(&mut std::fs::File::open(&src).unwrap(), &mut std::io::sink()).unwrap(); // into the page cache
    let mmf = mmf_bin();
    let mut g = c.benchmark_group("cp_2GiB");
    g.sample_size(10).measurement_time(mmf_bench::secs(15));
    let fresh = || {
        let _ = std::fs::remove_file(&dst);
        sync();
    };
    g.bench_function("cp", |b| {
        b.iter_batched(fresh, |()| run(Path::new("cp"), &[&src, &dst]), BatchSize::PerIteration)
    });
    g.bench_function("mmf_cp", |b| {
        b.iter_batched(
            fresh,
            |()| run(&mmf, &[Path::new("cp"), &src, &dst]),
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let _ = std::fs::remove_file(&dst);
}

/// `mmf cp` and `cp` of cached files from 1 MiB to 2 GiB (the first bytes of the 2 GiB
/// source): how the cost grows with the size, process start included.
fn cp_vs_size(c: &mut Criterion) {
    let big = source();
    let mmf = mmf_bin();
    let dst = dir().join(mmf_bench::file_name("mmf-bench-copy.bin"));
    let mut g = c.benchmark_group("cp_vs_size");
    g.sample_size(10).measurement_time(mmf_bench::secs(6));
    for (label, full) in
        [("1MiB", 1u64 << 20), ("16MiB", 16 << 20), ("256MiB", 256 << 20), ("2GiB", 2 << 30)]
    {
        let len = mmf_bench::size(full);
        let src = if len == size() {
            big.clone()
        } else {
            let path = dir().join(mmf_bench::file_name(&format!("mmf-bench-cp-{label}.bin")));
            if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(len) {
                let mut from = std::io::Read::take(std::fs::File::open(&big).unwrap(), len);
                std::io::copy(&mut from, &mut std::fs::File::create(&path).unwrap()).unwrap();
            }
            path
        };
        std::io::copy(&mut std::fs::File::open(&src).unwrap(), &mut std::io::sink()).unwrap();
        g.throughput(criterion::Throughput::Bytes(len));
        let fresh = || {
            let _ = std::fs::remove_file(&dst);
        };
        g.bench_function(criterion::BenchmarkId::new("cp", label), |b| {
            b.iter_batched(fresh, |()| run(Path::new("cp"), &[&src, &dst]), BatchSize::PerIteration)
        });
        g.bench_function(criterion::BenchmarkId::new("mmf_cp", label), |b| {
            b.iter_batched(
                fresh,
                |()| run(&mmf, &[Path::new("cp"), &src, &dst]),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
    let _ = std::fs::remove_file(&dst);
}

fn touch(c: &mut Criterion) {
    let src = source();
    let mmf = mmf_bin();
    let mut g = c.benchmark_group("touch_2GiB");
    g.sample_size(10).measurement_time(mmf_bench::secs(20));
    g.bench_function("vmtouch_t", |b| {
        b.iter_batched(
            || evict(&src),
            |()| run(Path::new("vmtouch"), &[Path::new("-tq"), &src]),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("mmf_touch", |b| {
        b.iter_batched(
            || evict(&src),
            |()| run(&mmf, &[Path::new("touch"), &src]),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The first 256 MiB of the source, as a file of its own, in the page cache.
fn source_256mib() -> PathBuf {
    let path = dir().join(mmf_bench::file_name("mmf-bench-256MiB.bin"));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(256 << 20) {
        let mut from = std::fs::File::open(source()).unwrap();
        let mut to = std::fs::File::create(&path).unwrap();
        std::io::copy(&mut std::io::Read::take(&mut from, 256 << 20), &mut to).unwrap();
        to.sync_all().unwrap();
    }
    std::io::copy(&mut std::fs::File::open(&path).unwrap(), &mut std::io::sink()).unwrap();
    path
}

/// A new file filled with 256 MiB and made durable, by one process each: `dd` (`read()` +
/// `write()` 1 MiB, then `fsync`), `mmf cp --sync`, `mmf write --from` into an empty file,
/// and `mmf create` followed by `mmf write --from`.
fn durable_copy(c: &mut Criterion) {
    let src = source_256mib();
    let dst = dir().join(mmf_bench::file_name("mmf-bench-durable-copy.bin"));
    let mmf = mmf_bin();
    let mut g = c.benchmark_group("durable_copy_256MiB");
    g.sample_size(10).measurement_time(mmf_bench::secs(10));
    let gone = || {
        let _ = std::fs::remove_file(&dst);
        sync();
    };
    let empty = || {
        gone();
        std::fs::File::create(&dst).unwrap().sync_all().unwrap();
    };
    let input = format!("if={}", src.display());
    let output = format!("of={}", dst.display());
    let dd_args = [&input, &output, "bs=1M", "conv=fsync", "status=none"].map(Path::new);
    g.bench_function("dd_conv_fsync", |b| {
        b.iter_batched(gone, |()| run(Path::new("dd"), &dd_args), BatchSize::PerIteration)
    });
    g.bench_function("mmf_cp_sync", |b| {
        b.iter_batched(
            gone,
            |()| run(&mmf, &[Path::new("cp"), Path::new("--sync"), &src, &dst]),
            BatchSize::PerIteration,
        )
    });
    let write_args = [Path::new("write"), &dst, Path::new("--from"), &src];
    g.bench_function("mmf_write_from", |b| {
        b.iter_batched(empty, |()| run(&mmf, &write_args), BatchSize::PerIteration)
    });
    g.bench_function("mmf_create_write_from", |b| {
        b.iter_batched(
            gone,
            |()| {
                run(&mmf, &[Path::new("create"), &dst, Path::new("--size"), Path::new("256MiB")]);
                run(&mmf, &write_args);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let _ = std::fs::remove_file(&dst);
}

/// The first 16 MiB of the source (1 MiB in quick mode), random bytes, as a file of its
/// own in the page cache.
fn source_16mib() -> PathBuf {
    let len = mmf_bench::size(16 << 20).min(size());
    let path = dir().join(mmf_bench::file_name("mmf-bench-dump-16MiB.bin"));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(len) {
        let mut from = std::fs::File::open(source()).unwrap();
        let mut to = std::fs::File::create(&path).unwrap();
        std::io::copy(&mut std::io::Read::take(&mut from, len), &mut to).unwrap();
    }
    std::io::copy(&mut std::fs::File::open(&path).unwrap(), &mut std::io::sink()).unwrap();
    path
}

/// `dump_16MiB`: `mmf dump` against `hexdump -C` (the same bytes out: the CI checks they
/// are identical) of a cached 16 MiB file of random bytes (no line repeats, so neither
/// squeezes), the output to `/dev/null`.
fn dump(c: &mut Criterion) {
    let src = source_16mib();
    let mmf = mmf_bin();
    let mut g = c.benchmark_group("dump_16MiB");
    g.sample_size(10).measurement_time(mmf_bench::secs(10));
    let quiet = |program: &Path, args: &[&Path]| {
        let status = Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run the command");
        assert!(status.success(), "{} failed", program.display());
    };
    g.bench_function("hexdump_c", |b| {
        b.iter(|| quiet(Path::new("hexdump"), &[Path::new("-C"), &src]))
    });
    g.bench_function("mmf_dump", |b| b.iter(|| quiet(&mmf, &[Path::new("dump"), &src])));
    g.finish();
}

criterion_group!(cli, cp, cp_vs_size, touch, durable_copy, dump);
