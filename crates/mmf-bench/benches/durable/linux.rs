//! The benchmarks themselves (Linux: they compare with Linux system calls).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, criterion_group};
use mmf::{Access, Mapping, MappingOptions, ViewOptions};

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Bytes that do not compress, `len` of them.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

/// A 64 MiB file written, made durable and read through two views, so its pages sit in
/// the page cache (in large folios where the kernel uses them) and are mapped.
fn cached_file() -> (PathBuf, File) {
    let path = dir().join(mmf_bench::file_name("mmf-bench-durable-64MiB.bin"));
    std::fs::write(&path, noise(64 * MIB)).unwrap();
    let file = File::options().read(true).write(true).open(&path).unwrap();
    file.sync_all().unwrap();
    (path, file)
}

/// The page each iteration dirties: a different one every time, 1 MiB + 4 KiB apart, so
/// that no two consecutive iterations share a folio.
fn pages() -> impl FnMut() -> usize {
    let mut i = 0usize;
    move || {
        i += 1;
        (i * (MIB + PAGE)) % (64 * MIB - PAGE)
    }
}

fn commit_page(c: &mut Criterion) {
    let (_path, file) = cached_file();
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let view = mapping.view_mut(..).unwrap();
    let log = ViewOptions::new().write_through(true).map_mut(&mapping).unwrap();
    let mut sum = 0u64;
    // Read every page through both views: cached and mapped, as in a database's file.
    for at in (0..view.len()).step_by(PAGE) {
        let mut b = [0u8; 1];
        view.read_at(at, &mut b).unwrap();
        log.read_at(at, &mut b).unwrap();
        sum += u64::from(b[0]);
    }
    std::hint::black_box(sum);

    let mut g = c.benchmark_group("durable_commit_page");
    g.sample_size(50).measurement_time(mmf_bench::secs(6));
    let record = *b"record!!";
    let mut next = pages();
    g.bench_function("mmf_write_through", |b| {
        b.iter(|| {
            let at = next() + 100;
            log.write_at(at, &record).unwrap();
            log.flush_range(at, record.len()).unwrap();
        })
    });
    g.bench_function("mmf_view", |b| {
        b.iter(|| {
            let at = next() + 100;
            view.write_at(at, &record).unwrap();
            view.flush_range(at, record.len()).unwrap();
        })
    });
    // SAFETY: nothing truncates the benchmark's file while it runs.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
    g.bench_function("memmap2_flush_range", |b| {
        b.iter(|| {
            let at = next() + 100;
            map[at..at + record.len()].copy_from_slice(&record);
            map.flush_range(at, record.len()).unwrap();
        })
    });
    let block = noise(PAGE);
    g.bench_function("pwrite_4KiB_fdatasync", |b| {
        b.iter(|| {
            let at = next();
            file.write_all_at(&block, at as u64).unwrap();
            file.sync_data().unwrap();
        })
    });
    g.finish();

    // Each commit timed on its own, for the latency distribution.
    let n = if mmf_bench::quick() { 50 } else { 3000 };
    let timed = |commit: &mut dyn FnMut()| -> Vec<u64> {
        (0..n)
            .map(|_| {
                let t = std::time::Instant::now();
                commit();
                t.elapsed().as_nanos() as u64
            })
            .collect()
    };
    let mut all = vec![
        (
            "durable_commit_page/mmf_write_through".to_string(),
            timed(&mut || {
                let at = next() + 100;
                log.write_at(at, &record).unwrap();
                log.flush_range(at, record.len()).unwrap();
            }),
        ),
        (
            "durable_commit_page/pwrite_4KiB_fdatasync".to_string(),
            timed(&mut || {
                let at = next();
                file.write_all_at(&block, at as u64).unwrap();
                file.sync_data().unwrap();
            }),
        ),
    ];
    let title = "Durable commit of one page: each commit's latency";
    let criterion = dir().join("../criterion");
    mmf_bench::write_percentiles(&criterion, "durable_commit", title, &mut all).unwrap();
}

/// A fresh path for the next new file: the previous one removed (outside the timing).
fn fresh(path: &Path) -> PathBuf {
    let _ = std::fs::remove_file(path);
    path.to_owned()
}

fn new_file(c: &mut Criterion) {
    let len = mmf_bench::size(256 << 20) as usize;
    const CHUNK: usize = MIB;
    const AHEAD: usize = 8 * MIB;
    let data = noise(len);
    let path = dir().join(mmf_bench::file_name("mmf-bench-durable-new.bin"));
    let create =
        |path: &Path| File::options().read(true).write(true).create_new(true).open(path).unwrap();
    let mapped = |file: &File| {
        MappingOptions::new().access(Access::ReadWrite).size(len as u64).map_file(file).unwrap()
    };

    let mut g = c.benchmark_group("durable_new_256MiB");
    g.sample_size(10).measurement_time(mmf_bench::secs(10));
    g.bench_function("mmf_write_through", |b| {
        b.iter_batched(
            || fresh(&path),
            |path| {
                let file = create(&path);
                let log = ViewOptions::new().write_through(true).map_mut(&mapped(&file)).unwrap();
                for at in (0..len).step_by(CHUNK) {
                    log.write_at(at, &data[at..at + CHUNK]).unwrap();
                    if (at + CHUNK) % AHEAD == 0 {
                        log.flush_async_range(at + CHUNK - AHEAD, AHEAD).unwrap();
                    }
                }
                log.flush().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("mmf_write_through_no_early_writeback", |b| {
        b.iter_batched(
            || fresh(&path),
            |path| {
                let file = create(&path);
                let log = ViewOptions::new().write_through(true).map_mut(&mapped(&file)).unwrap();
                for at in (0..len).step_by(CHUNK) {
                    log.write_at(at, &data[at..at + CHUNK]).unwrap();
                }
                log.flush().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("mmf_view", |b| {
        b.iter_batched(
            || fresh(&path),
            |path| {
                let file = create(&path);
                let view = mapped(&file).view_mut(..).unwrap();
                for at in (0..len).step_by(CHUNK) {
                    view.write_at(at, &data[at..at + CHUNK]).unwrap();
                }
                view.flush().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("memmap2_msync", |b| {
        b.iter_batched(
            || fresh(&path),
            |path| {
                let file = create(&path);
                file.set_len(len as u64).unwrap();
                // SAFETY: the file is this benchmark's own and nothing truncates it.
                let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
                map.copy_from_slice(&data);
                map.flush().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("write_1MiB_fsync", |b| {
        b.iter_batched(
            || fresh(&path),
            |path| {
                let mut file = create(&path);
                for chunk in data.chunks(CHUNK) {
                    file.write_all(chunk).unwrap();
                }
                file.sync_all().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

fn flush_clean(c: &mut Criterion) {
    let len = mmf_bench::size(1 << 30) as usize;
    let path = dir().join(mmf_bench::file_name("mmf-bench-durable-1GiB.bin"));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(len as u64) {
        let chunk = noise(MIB);
        let mut out = File::create(&path).unwrap();
        for _ in 0..len / MIB {
            out.write_all(&chunk).unwrap();
        }
    }
    let file = File::options().read(true).write(true).open(&path).unwrap();
    file.sync_all().unwrap();
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let view = mapping.view_mut(..).unwrap();
    // Map every page (one read each), then make everything clean.
    for at in (0..len).step_by(PAGE) {
        view.read_at(at, &mut [0u8; 1]).unwrap();
    }
    view.flush().unwrap();

    let mut g = c.benchmark_group("flush_clean_1GiB");
    g.sample_size(50).measurement_time(mmf_bench::secs(4));
    g.bench_function("mmf_flush", |b| b.iter(|| view.flush().unwrap()));
    g.bench_function("fdatasync", |b| b.iter(|| file.sync_data().unwrap()));
    g.finish();
}

fn benches(c: &mut Criterion) {
    commit_page(c);
    new_file(c);
    flush_clean(c);
}

criterion_group!(durable, benches);
