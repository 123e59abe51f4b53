//! The benchmarks themselves (Linux: they compare with Linux system calls).

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use criterion::{Criterion, Throughput, criterion_group};
use mmf::{Access, Mapping};

const MIB: usize = 1 << 20;

/// The shared 1 GiB data file, in the page cache.
fn data_file() -> File {
    mmf_bench::data_file(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// The work done on every byte: a wrapping sum of little-endian u64 words, in four
/// independent lanes so that it runs faster than memory delivers (one accumulator would
/// make every contestant compute-bound and hide the differences being measured).
fn sum(bytes: &[u8]) -> u64 {
    let mut lanes = [0u64; 4];
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let word = u64::from_le_bytes(chunk[i * 8..i * 8 + 8].try_into().unwrap());
            *lane = lane.wrapping_add(word);
        }
    }
    let rest = chunks.remainder().iter().map(|&b| u64::from(b));
    lanes.into_iter().chain(rest).fold(0, u64::wrapping_add)
}

fn seq_read(c: &mut Criterion, file: &File) {
    let mut g = c.benchmark_group("seq_read_1GiB");
    g.throughput(Throughput::Bytes(mmf_bench::gib()))
        .sample_size(20)
        .measurement_time(mmf_bench::secs(8));
    g.bench_function("mmf_view", |b| {
        b.iter(|| {
            let view = Mapping::from_file(file, Access::ReadOnly).unwrap().view(..).unwrap();
            // SAFETY: nothing writes or truncates the benchmark's file while it runs.
            sum(unsafe { view.as_slice() })
        })
    });
    g.bench_function("memmap2", |b| {
        b.iter(|| {
            // SAFETY: as above.
            let map = unsafe { memmap2::Mmap::map(file) }.unwrap();
            sum(&map)
        })
    });
    let mut buf = vec![0u8; MIB];
    g.bench_function("mmf_read_at_1MiB", |b| {
        b.iter(|| {
            let view = Mapping::from_file(file, Access::ReadOnly).unwrap().view(..).unwrap();
            let mut total = 0u64;
            for at in (0..view.len()).step_by(MIB) {
                view.read_at(at, &mut buf).unwrap();
                total = total.wrapping_add(sum(&buf));
            }
            total
        })
    });
    g.bench_function("read_1MiB", |b| {
        b.iter(|| {
            let mut f = file;
            f.seek(SeekFrom::Start(0)).unwrap();
            let mut total = 0u64;
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break total;
                }
                total = total.wrapping_add(sum(&buf[..n]));
            }
        })
    });
    g.finish();
}

/// One million offsets spread over the file (xorshift; 8-byte aligned).
fn random_offsets() -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..1_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % (mmf_bench::gib() / 8)) * 8
        })
        .collect()
}

fn random_read(c: &mut Criterion, file: &File) {
    let offsets = random_offsets();
    let view = Mapping::from_file(file, Access::ReadOnly).unwrap().view(..).unwrap();
    let mut g = c.benchmark_group("random_read_8B");
    g.throughput(Throughput::Elements(offsets.len() as u64)).sample_size(10);
    g.measurement_time(mmf_bench::secs(10));
    g.bench_function("mmf_read_at", |b| {
        b.iter(|| {
            let mut total = 0u64;
            let mut word = [0u8; 8];
            for &off in &offsets {
                view.read_at(off as usize, &mut word).unwrap();
                total = total.wrapping_add(u64::from_le_bytes(word));
            }
            total
        })
    });
    g.bench_function("pread", |b| {
        b.iter(|| {
            let mut total = 0u64;
            let mut word = [0u8; 8];
            for &off in &offsets {
                file.read_exact_at(&mut word, off).unwrap();
                total = total.wrapping_add(u64::from_le_bytes(word));
            }
            total
        })
    });
    // SAFETY: nothing writes or truncates the benchmark's file while it runs.
    let map = unsafe { memmap2::Mmap::map(file) }.unwrap();
    g.bench_function("raw_load_memmap2", |b| {
        b.iter(|| {
            let mut total = 0u64;
            for &off in &offsets {
                let at = off as usize;
                let word: [u8; 8] = map[at..at + 8].try_into().unwrap();
                total = total.wrapping_add(u64::from_le_bytes(black_box(word)));
            }
            total
        })
    });
    g.bench_function("mmf_atomic_u64_load", |b| {
        b.iter(|| {
            let mut total = 0u64;
            for &off in &offsets {
                let value = view.atomic_u64(off as usize).unwrap().load(Ordering::Relaxed);
                total = total.wrapping_add(value);
            }
            total
        })
    });
    g.finish();
}

/// 1 MiB copies out of a cached file, over 256 MiB of it: mmf's guarded `read_at` against
/// `pread` into the same buffer and `memcpy` out of the mapped slice.
fn copy_out(c: &mut Criterion, file: &File) {
    let span = mmf_bench::size(256 << 20) as usize;
    let view = Mapping::from_file(file, Access::ReadOnly).unwrap().view(..span as u64).unwrap();
    let mut buf = vec![0u8; MIB];
    let mut g = c.benchmark_group("copy_out_1MiB");
    g.throughput(Throughput::Bytes(span as u64)).sample_size(20);
    g.measurement_time(mmf_bench::secs(6));
    g.bench_function("mmf_read_at", |b| {
        b.iter(|| {
            for at in (0..span).step_by(MIB) {
                view.read_at(at, &mut buf).unwrap();
            }
            black_box(&buf);
        })
    });
    g.bench_function("pread", |b| {
        b.iter(|| {
            for at in (0..span).step_by(MIB) {
                file.read_exact_at(&mut buf, at as u64).unwrap();
            }
            black_box(&buf);
        })
    });
    // SAFETY: nothing writes or truncates the benchmark's file while it runs.
    let slice = unsafe { view.as_slice() };
    g.bench_function("memcpy_as_slice", |b| {
        b.iter(|| {
            for at in (0..span).step_by(MIB) {
                buf.copy_from_slice(&slice[at..at + MIB]);
            }
            black_box(&buf);
        })
    });
    g.finish();
}

/// 1 MiB copies into a cached, already written 256 MiB file: `write_at` against `pwrite`
/// from the same buffer and `memcpy` into the mapped slice; and view to view, `copy_from`
/// against `memcpy` between the two slices and `pread` into the destination's slice.
fn copy_in(c: &mut Criterion, source: &File) {
    let span = mmf_bench::size(256 << 20) as usize;
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(mmf_bench::file_name("mmf-bench-256MiB-rw.bin"));
    std::fs::write(&path, vec![1u8; span]).expect("write the target file");
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let target = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let mut view = target.view_mut(..).unwrap();
    let data = vec![7u8; MIB];
    let mut g = c.benchmark_group("copy_in_1MiB");
    g.throughput(Throughput::Bytes(span as u64)).sample_size(20);
    g.measurement_time(mmf_bench::secs(6));
    g.bench_function("mmf_write_at", |b| {
        b.iter(|| {
            for at in (0..span).step_by(MIB) {
                view.write_at(at, &data).unwrap();
            }
        })
    });
    g.bench_function("pwrite", |b| {
        b.iter(|| {
            for at in (0..span).step_by(MIB) {
                file.write_all_at(&data, at as u64).unwrap();
            }
        })
    });
    g.bench_function("memcpy_as_mut_slice", |b| {
        // SAFETY: only this benchmark touches the target file while it runs.
        let slice = unsafe { view.as_mut_slice() };
        b.iter(|| {
            for at in (0..span).step_by(MIB) {
                slice[at..at + MIB].copy_from_slice(&data);
            }
        })
    });
    g.finish();

    let src = Mapping::from_file(source, Access::ReadOnly).unwrap().view(..span as u64).unwrap();
    let mut g = c.benchmark_group("copy_from_1MiB");
    g.throughput(Throughput::Bytes(span as u64)).sample_size(20);
    g.measurement_time(mmf_bench::secs(6));
    g.bench_function("mmf_copy_from", |b| {
        b.iter(|| {
            for at in (0..span).step_by(MIB) {
                view.copy_from(at, &src, at, MIB).unwrap();
            }
        })
    });
    g.bench_function("pread_into_slice", |b| {
        // SAFETY: only this benchmark touches the target file while it runs.
        let slice = unsafe { view.as_mut_slice() };
        b.iter(|| {
            for at in (0..span).step_by(MIB) {
                source.read_exact_at(&mut slice[at..at + MIB], at as u64).unwrap();
            }
        })
    });
    g.bench_function("memcpy_slices", |b| {
        // SAFETY: as above, and nothing writes the source file.
        let (to, from) = unsafe { (view.as_mut_slice(), src.as_slice()) };
        b.iter(|| {
            for at in (0..span).step_by(MIB) {
                to[at..at + MIB].copy_from_slice(&from[at..at + MIB]);
            }
        })
    });
    g.finish();
    drop(view);
    let _ = std::fs::remove_file(&path);
}

fn map_unmap(c: &mut Criterion, file: &File) {
    const LEN: usize = 64 * 1024;
    let mapping = Mapping::from_file(file, Access::ReadOnly).unwrap();
    let mut g = c.benchmark_group("map_unmap_64KiB");
    let mut i = 0u64;
    let mut next_offset = move || {
        i = (i + 1) % (mmf_bench::gib() / LEN as u64);
        i * LEN as u64
    };
    g.bench_function("mmf_view", |b| {
        b.iter(|| {
            let off = next_offset();
            black_box(mapping.view(off..off + LEN as u64).unwrap());
        })
    });
    g.bench_function("raw_mmap_munmap", |b| {
        b.iter(|| {
            let off = next_offset();
            // SAFETY: a new shared read-only mapping at an address of the kernel's choosing
            // changes no existing mapping.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    LEN,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    off as libc::off_t,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            black_box(p);
            // SAFETY: `p` is the mapping just created and nothing refers to it.
            assert_eq!(unsafe { libc::munmap(p, LEN) }, 0);
        })
    });
    g.bench_function("memmap2", |b| {
        b.iter(|| {
            let off = next_offset();
            // SAFETY: nothing writes or truncates the benchmark's file while it runs.
            black_box(
                unsafe { memmap2::MmapOptions::new().offset(off).len(LEN).map(file) }.unwrap(),
            );
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let file = data_file();
    seq_read(c, &file);
    random_read(c, &file);
    copy_out(c, &file);
    copy_in(c, &file);
    map_unmap(c, &file);
}

criterion_group!(core, benches);
