//! The benchmarks themselves (Linux: they compare with Linux system calls and evict with
//! `posix_fadvise`).

use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use mmf::{Access, Mapping, MappingOptions, Stream};
use xxhash_rust::xxh3::Xxh3;

use crate::folios;

const MIB: usize = 1 << 20;

/// The shared 1 GiB data file, in the page cache.
fn data_file() -> File {
    mmf_bench::data_file(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")))
}

fn warm(mut file: &File) {
    let mut buf = vec![0; MIB];
    file.seek(SeekFrom::Start(0)).unwrap();
    while file.read(&mut buf).expect("warm the page cache") > 0 {}
}

/// Drops the file's pages from the page cache.
fn evict(file: &File) {
    mmf::cache::evict(file).expect("evict");
}

/// A cheap fold over every byte, the same work for every contestant.
fn fold(bytes: &[u8]) -> u64 {
    bytes
        .chunks_exact(8)
        .fold(0u64, |a, w| a.wrapping_add(u64::from_le_bytes(w.try_into().unwrap())))
}

/// Reads `reader` to its end in pieces of `buf.len()`, folding each.
fn drain(mut reader: impl Read, buf: &mut [u8]) -> u64 {
    let mut total = 0u64;
    loop {
        match reader.read(buf).unwrap() {
            0 => return total,
            n => total = total.wrapping_add(fold(&buf[..n])),
        }
    }
}

/// XXH3-64 of everything `reader` gives, in pieces of `buf.len()`.
fn hash(mut reader: impl Read, buf: &mut [u8]) -> u64 {
    let mut hasher = Xxh3::new();
    loop {
        match reader.read(buf).unwrap() {
            0 => return hasher.digest(),
            n => hasher.update(&buf[..n]),
        }
    }
}

fn stream_read(c: &mut Criterion, file: &File) {
    folios::cache_sequentially(file);
    stream_read_group(c, file, "stream_read_1GiB");
    folios::cache_in_small_folios(file);
    stream_read_group(c, file, "stream_read_1GiB_4KiB_folios");
    folios::cache_sequentially(file);
}

fn stream_read_group(c: &mut Criterion, file: &File, name: &str) {
    folios::report(name, file);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(mmf_bench::gib()))
        .sample_size(15)
        .measurement_time(mmf_bench::secs(8));
    let mut buf = vec![0u8; 64 << 10];
    let mapping = Mapping::from_file(file, Access::ReadOnly).unwrap();
    g.bench_function("mmf_stream", |b| b.iter(|| drain(Stream::new(&mapping), &mut buf)));
    g.bench_function("bufreader_file", |b| {
        b.iter(|| {
            let mut f = file;
            f.seek(SeekFrom::Start(0)).unwrap();
            drain(BufReader::new(f), &mut buf)
        })
    });
    g.bench_function("read_64KiB", |b| {
        b.iter(|| {
            let mut f = file;
            f.seek(SeekFrom::Start(0)).unwrap();
            drain(f, &mut buf)
        })
    });
    g.finish();
}

fn sum(c: &mut Criterion, file: &File) {
    folios::cache_sequentially(file);
    sum_cached(c, file, "sum_1GiB");
    folios::cache_in_small_folios(file);
    sum_cached(c, file, "sum_1GiB_4KiB_folios");
    sum_cold(c, file);
    warm(file);
}

fn sum_cached(c: &mut Criterion, file: &File, name: &str) {
    folios::report(name, file);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(mmf_bench::gib()))
        .sample_size(15)
        .measurement_time(mmf_bench::secs(8));
    let mapping = Mapping::from_file(file, Access::ReadOnly).unwrap();
    let mut piece = vec![0u8; 256 << 10];
    let mut big = vec![0u8; MIB];
    g.bench_function("mmf_stream_xxh3", |b| {
        b.iter(|| hash(Stream::new(&mapping).with_window(32 << 20), &mut piece))
    });
    let from_start = || {
        let mut f = file;
        f.seek(SeekFrom::Start(0)).unwrap();
        f
    };
    g.bench_function("read_256KiB_xxh3", |b| b.iter(|| hash(from_start(), &mut piece)));
    g.bench_function("read_1MiB_xxh3", |b| b.iter(|| hash(from_start(), &mut big)));
    g.finish();
}

fn sum_cold(c: &mut Criterion, file: &File) {
    let mapping = Mapping::from_file(file, Access::ReadOnly).unwrap();
    let mut piece = vec![0u8; 256 << 10];
    let from_start = || {
        let mut f = file;
        f.seek(SeekFrom::Start(0)).unwrap();
        f
    };
    let mut g = c.benchmark_group("sum_1GiB_cold");
    g.throughput(Throughput::Bytes(mmf_bench::gib()))
        .sample_size(10)
        .measurement_time(mmf_bench::secs(30));
    g.bench_function("mmf_stream_xxh3", |b| {
        b.iter_batched(
            || evict(file),
            |()| hash(Stream::new(&mapping).with_window(32 << 20), &mut piece),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("read_256KiB_xxh3", |b| {
        b.iter_batched(|| evict(file), |()| hash(from_start(), &mut piece), BatchSize::PerIteration)
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_1GiB");
    g.throughput(Throughput::Bytes(mmf_bench::gib()))
        .sample_size(10)
        .measurement_time(mmf_bench::secs(30));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let chunk: Vec<u8> = (0..MIB).map(|i| (i * 7 % 251) as u8 + 1).collect();
    let new_file = |name: &str| {
        let path = dir.join(name);
        let mut options = File::options();
        options.read(true).write(true).create(true).truncate(true);
        (options.open(&path).unwrap(), path)
    };
    g.bench_function("mmf_grow_view", |b| {
        b.iter_batched(
            || new_file("mmf-bench-append-grow.bin"),
            |(file, path)| {
                let mapping = MappingOptions::new()
                    .access(Access::ReadWrite)
                    .size(MIB as u64)
                    .map_file(&file)
                    .unwrap();
                let mut log = mapping.view_growable_mut(0, 2 * mmf_bench::gib()).unwrap();
                log.write_at(0, &chunk).unwrap();
                for step in 1..mmf_bench::gib() as usize / MIB {
                    log.grow(((step + 1) * MIB) as u64).unwrap();
                    log.write_at(step * MIB, &chunk).unwrap();
                }
                black_box(log.len());
                drop((log, mapping, file));
                std::fs::remove_file(path).unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("mmf_grow_write_through", |b| {
        b.iter_batched(
            || new_file("mmf-bench-append-grow-wt.bin"),
            |(file, path)| {
                let mapping = MappingOptions::new()
                    .access(Access::ReadWrite)
                    .size(MIB as u64)
                    .map_file(&file)
                    .unwrap();
                let mut log = mapping.view_growable_write_through(0, 2 * mmf_bench::gib()).unwrap();
                log.write_at(0, &chunk).unwrap();
                for step in 1..mmf_bench::gib() as usize / MIB {
                    log.grow(((step + 1) * MIB) as u64).unwrap();
                    log.write_at(step * MIB, &chunk).unwrap();
                }
                black_box(log.len());
                drop((log, mapping, file));
                std::fs::remove_file(path).unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("write_1MiB", |b| {
        b.iter_batched(
            || new_file("mmf-bench-append-write.bin"),
            |(mut file, path)| {
                for _ in 0..mmf_bench::gib() as usize / MIB {
                    file.write_all(&chunk).unwrap();
                }
                drop(file);
                std::fs::remove_file(path).unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// XXH3 of cached files from 1 MiB to 1 GiB: how the cost grows with the size (the
/// report's "cost against size"), mmf's stream against `read()` in 1 MiB pieces.
fn sum_vs_size(c: &mut Criterion, data: &File) {
    let mut g = c.benchmark_group("sum_vs_size");
    g.sample_size(10).measurement_time(mmf_bench::secs(4));
    let mut piece = vec![0u8; 256 << 10];
    let mut big = vec![0u8; MIB];
    for (label, full) in
        [("1MiB", 1u64 << 20), ("16MiB", 16 << 20), ("256MiB", 256 << 20), ("1GiB", 1 << 30)]
    {
        let len = mmf_bench::size(full);
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(mmf_bench::file_name(&format!("mmf-bench-sum-{label}.bin")));
        if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(len) {
            let mut data = data;
            data.seek(SeekFrom::Start(0)).unwrap();
            let mut from = data.take(len);
            std::io::copy(&mut from, &mut File::create(&path).unwrap()).unwrap();
        }
        let file = File::open(&path).unwrap();
        warm(&file);
        let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
        g.throughput(Throughput::Bytes(len));
        g.bench_with_input(BenchmarkId::new("mmf_stream_xxh3", label), &len, |b, _| {
            b.iter(|| hash(Stream::new(&mapping).with_window(32 << 20), &mut piece))
        });
        g.bench_with_input(BenchmarkId::new("read_1MiB_xxh3", label), &len, |b, _| {
            b.iter(|| {
                let mut f = &file;
                f.seek(SeekFrom::Start(0)).unwrap();
                hash(f, &mut big)
            })
        });
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    let file = data_file();
    stream_read(c, &file);
    sum(c, &file);
    sum_vs_size(c, &file);
    append(c);
}

criterion_group!(large, all);
